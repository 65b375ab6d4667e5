"""Production inference for this deployment package.

    from inference_example import ModelInference

    inference = ModelInference()        # verifies every hash, then loads
    result = inference.predict([{"auth_failure_ratio": 0.1, ...}])
    print(result["anomaly_count"], "of", result["total_samples"])

Everything model-specific (file names, hashes, feature names, threshold,
batch size) is read from deployment_manifest.json, so this file is the same
in every package.

Environment variables override the manifest's inference_config when the
class is constructed; an invalid value is refused there, naming the variable:
MODEL_THRESHOLD (a finite number), MODEL_BATCH_SIZE (rows, 1 or more),
MODEL_TIMEOUT (finite seconds, more than 0), LOG_LEVEL (DEBUG, INFO, WARNING, ERROR
or CRITICAL) and LOG_FORMAT (text or json: one structured record per call).

Scores follow one convention: ``score = -estimator.score_samples(X)``, higher
means more anomalous, and a row is an anomaly (prediction 1) when
``score > threshold``. The default threshold is the model's own decision
boundary, ``-offset_``, so predictions equal ``estimator.predict(X) == -1``
(for a OneClassSVM, whose ``score_samples`` adds ``offset_`` back onto
``decision_function``, but for rows on the boundary itself, within rounding).
"""

import sys

# Run as a script, this folder is off sys.path from the first import on: a
# file here named like a library (json.py, joblib.py, pandas.py) must never
# stand in for it. The package loads its own files by their paths. For code
# that ran the script (runpy, IPython's %run), the entry goes back once the
# script has ended, also when a missing library stopped it. (sys is built
# in; os is loaded at start-up or frozen, never looked for on sys.path.)
if __name__ == "__main__":
    import os

    _FOLDER_ENTRY = None
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == os.path.dirname(
        os.path.realpath(__file__)
    ):
        _FOLDER_ENTRY = sys.path.pop(0)

    def _restore_import_path() -> None:
        """Give this folder's entry back to the code that ran the script."""
        if _FOLDER_ENTRY is not None:
            sys.path.insert(0, _FOLDER_ENTRY)


import csv
import decimal
import errno
import hashlib
import io
import json
import logging
import math
import numbers
import operator
import os
import pickle
import signal
import stat
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from itertools import chain, compress, islice, pairwise, repeat
from pathlib import Path
from typing import Any

try:
    import joblib
    import numpy as np
    import sklearn
except ImportError as error:
    if __name__ != "__main__":
        raise
    _restore_import_path()
    print(f"error: {error}: pip install -r requirements.txt", file=sys.stderr)
    raise SystemExit(2) from None

try:
    from sklearn.exceptions import InconsistentVersionWarning
except ImportError:  # scikit-learn < 1.3 has no such warning
    _VERSION_WARNINGS: tuple[type[Warning], ...] = ()
else:
    _VERSION_WARNINGS = (InconsistentVersionWarning,)

MANIFEST_FILE = "deployment_manifest.json"
SUMS_FILE = "SHA256SUMS"
# Larger than any manifest or SHA256SUMS: more is not read into memory.
_MAX_LIST_BYTES = 64 * 1024 * 1024
MISSING_FEATURE_POLICIES = ("error", "zero")
OUT_OF_RANGE_POLICIES = ("allow", "warn", "error")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HASH_CHUNK_BYTES = 1 << 20
# Input keys that are not features are logged (at DEBUG) once per name, for
# this many names at most.
_MAX_NOTED_KEYS = 1000
_SHOWN_CHARACTERS = 60
# Rows named in one log message (a message says how many more there are).
_LOGGED_ROWS = 5
# The warnings of a call, logged or (on the command line) printed, naming
# rows or lines: the feature, where, and for a range, the values and range.
_OUTSIDE_RANGE = "Feature '%s' in %s %s, outside the reference range [%r, %r]"
_FILLED = "Feature '%s' not found in input (%s): filled with 0.0"

logger = logging.getLogger("inference_example")


class IntegrityError(RuntimeError):
    """A package file is missing, cannot be read, or does not match the
    manifest's SHA-256."""


class VersionMismatchError(RuntimeError):
    """An artifact was pickled by another scikit-learn version than the one
    installed; its trees may not load or score the same."""


class ConfigurationError(ValueError):
    """A setting from the environment or the manifest cannot be used."""


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unreadable(error: OSError) -> str:
    """The problem of a package file that exists but cannot be read (no
    permission, an I/O error), as validate_model.py words it."""
    return f"cannot be read ({error.strerror or type(error).__name__})"


def _not_a_file(path: Path, missing: str = "missing") -> str | None:
    """Why ``path`` is no package file: ``missing``, or not a regular file (a
    folder, a device, a pipe: never read); None for a regular file."""
    if path.is_file():
        return None
    return "not a regular file" if path.exists() else missing


def _read_list(path: Path) -> bytes | None:
    """The bytes of the manifest or SHA256SUMS at ``path``; None when it is
    larger than any such file (more is never read). Raises OSError."""
    with open(path, "rb") as stream:
        data = stream.read(_MAX_LIST_BYTES + 1)
    return None if len(data) > _MAX_LIST_BYTES else data


def _hash_problem(path: Path, expected: str, recorded_in: str) -> str | None:
    """Why the file ``path`` does not have the SHA-256 ``expected`` (which
    ``recorded_in`` holds): missing, cannot be read, or another digest; None
    when it has it."""
    absent = _not_a_file(path)
    if absent:
        return absent
    try:
        digest = sha256_file(path)
    except OSError as error:
        return _unreadable(error)
    if digest != expected:
        return f"SHA-256 does not match {recorded_in}"
    return None


def read_manifest(model_dir: Path | str) -> dict[str, Any]:
    """Read deployment_manifest.json from ``model_dir``.

    Raises:
        FileNotFoundError: ``model_dir`` is not a folder, or holds no manifest.
        OSError: the manifest cannot be read (the subclass that reading it
            raised: PermissionError...).
        IntegrityError: the manifest is not a regular file, is larger than
            any manifest, or is not a JSON object.
    """
    folder = Path(os.path.abspath(model_dir))
    if not folder.is_dir():
        unzip = (
            "unzip it and pass the extracted folder"
            if folder.suffix.lower() == ".zip"
            else "pass the extracted package folder"
        )
        raise FileNotFoundError(f"{folder} is not a folder: {unzip}")
    path = folder / MANIFEST_FILE
    if path.exists() and not (path.is_file() or path.is_dir()):
        # A device or a pipe: never read (a folder fails as it is opened).
        raise IntegrityError(f"{path} is not a regular file: re-download the package")
    try:
        data = _read_list(path)
        if data is None:
            raise IntegrityError(
                f"{path} is larger than {_MAX_LIST_BYTES} bytes, more than any "
                "manifest: re-download the package"
            )
        manifest = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: pass the extracted package folder"
        ) from None
    except IsADirectoryError:
        raise IsADirectoryError(
            f"{path} is not a regular file (a folder): re-download the package"
        ) from None
    except PermissionError as error:
        raise PermissionError(
            f"{path} {_unreadable(error)}: give the user running this read access "
            "to the package's files, or re-download the package"
        ) from None
    except OSError as error:
        raise type(error)(
            f"{path} {_unreadable(error)}: re-download the package"
        ) from None
    except (ValueError, RecursionError) as error:  # also not UTF-8
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise IntegrityError(
            f"{path} is not valid JSON ({reason}): re-download the package"
        ) from None
    if not isinstance(manifest, dict):
        raise IntegrityError(f"{path} is not a JSON object: re-download the package")
    return manifest


def integrity_report(
    model_dir: Path | str, manifest: Mapping[str, Any]
) -> list[tuple[str, str | None]]:
    """Check every file the manifest names against its recorded SHA-256.

    Returns ``(file name, problem)`` pairs in manifest order; ``problem`` is
    None for a file that matches. A file listed under ``files`` without a
    hash under ``file_integrity`` is a problem too: it could not be checked.
    So is a file that exists but cannot be read (``cannot be read
    (Permission denied)``): every such file is reported, nothing is raised.
    """
    model_dir = Path(model_dir)
    hashes = manifest.get("file_integrity")
    if not isinstance(hashes, dict) or not hashes:
        return [(MANIFEST_FILE, "has no file_integrity hashes")]
    report: list[tuple[str, str | None]] = []
    for name, expected in hashes.items():
        path = model_dir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            report.append((name, "is not a file name inside the package"))
        else:
            report.append((name, _hash_problem(path, expected, "the manifest")))
    files = manifest.get("files")
    for name in files.values() if isinstance(files, dict) else ():
        if isinstance(name, str) and name and name not in hashes:
            report.append((name, "has no SHA-256 in the manifest"))
        elif name is not None and not isinstance(name, str):
            report.append((MANIFEST_FILE, f"files holds {_shown(name)}, not a name"))
    report.extend((MANIFEST_FILE, problem) for problem in _incomplete(manifest))
    sums = model_dir / SUMS_FILE
    absent = _not_a_file(sums, "missing (it holds the manifest's SHA-256)")
    if absent:
        report.append((SUMS_FILE, absent))
        return report
    try:
        data = _read_list(sums)
    except OSError as error:
        report.append((SUMS_FILE, _unreadable(error)))
        return report
    if data is None:
        report.append((SUMS_FILE, f"larger than {_MAX_LIST_BYTES} bytes"))
        return report
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        report.append((SUMS_FILE, "is not UTF-8 text, so not a list of SHA-256s"))
        return report
    report.extend(_sums_report(model_dir, text, hashes))
    return report


def _incomplete(manifest: Mapping[str, Any]) -> list[str]:
    """What the manifest lacks of the entries every package has: the file
    names of the model and metadata.json, the feature names."""
    files = manifest.get("files")
    problems = [
        f"files has no {key}"
        for key in ("model_file", "metadata_file")
        if not isinstance(files, dict) or not files.get(key)
    ]
    training = manifest.get("training_info")
    names = training.get("feature_names") if isinstance(training, dict) else None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) for n in names)
    ):
        problems.append("training_info has no feature_names list")
    return problems


def _sums_report(
    model_dir: Path, text: str, hashes: Mapping[str, str]
) -> list[tuple[str, str | None]]:
    """Check SHA256SUMS: it must agree with file_integrity, and the files it
    alone lists (the manifest, which it must list) must match it."""
    report: list[tuple[str, str | None]] = []
    listed = set()
    for number, line in enumerate(text.splitlines(), start=1):
        digest, _, name = line.partition("  ")
        listed.add(name)
        if len(digest) != 64 or not name:
            report.append((SUMS_FILE, f"line {number} is not '<sha256>  <file>'"))
        elif name in hashes:
            if hashes[name] != digest:
                report.append(
                    (name, f"SHA-256 in {SUMS_FILE} differs from the manifest")
                )
        elif Path(name).is_absolute() or ".." in Path(name).parts:
            report.append((name, "is not a file name inside the package"))
        else:
            report.append((name, _hash_problem(model_dir / name, digest, SUMS_FILE)))
    if MANIFEST_FILE not in listed:
        report.append((MANIFEST_FILE, f"not listed in {SUMS_FILE}, so not checked"))
    return report


def verify_package(model_dir: Path | str, manifest: Mapping[str, Any]) -> None:
    """Raise IntegrityError unless every file matches the manifest."""
    problems = [
        (name, problem)
        for name, problem in integrity_report(model_dir, manifest)
        if problem
    ]
    if problems:
        unreadable = any(
            problem.startswith("cannot be read") for _, problem in problems
        )
        raise IntegrityError(
            "package integrity check failed, nothing was loaded: "
            + "; ".join(f"{name}: {problem}" for name, problem in problems)
            + (
                ". Give the user running this read access to the package's "
                "files, or re-download the package"
                if unreadable
                else ". Re-download the package and run validate_model.py"
            )
        )


def load_artifact(path: Path, allow_version_mismatch: bool = False) -> Any:
    """Unpickle ``path`` (verify it first: unpickling runs code).

    Raises:
        VersionMismatchError: scikit-learn reports that the file was pickled
            by another version, unless ``allow_version_mismatch`` is true.
        ModuleNotFoundError: the pickle needs a module this Python cannot
            import (install requirements.txt).
        pickle.UnpicklingError: the file is not a loadable pickle (corrupted).
        OSError: the file cannot be read.
    """
    with warnings.catch_warnings():
        if not allow_version_mismatch:
            for category in _VERSION_WARNINGS:
                warnings.simplefilter("error", category)
        try:
            return joblib.load(path)
        except _VERSION_WARNINGS as warning:
            built_with = warning.original_sklearn_version
            raise VersionMismatchError(
                f"{path.name} was pickled with scikit-learn {built_with} but "
                f"{sklearn.__version__} is installed, and pickled trees may not load "
                f"or score the same across versions: pip install "
                f"scikit-learn=={built_with} (requirements.txt pins it), or pass "
                "allow_version_mismatch=True (validate_model.py "
                "--allow-version-mismatch) to load it anyway"
            ) from None
        except OSError:
            raise
        except ImportError as error:
            # The file matched its hash: it is whole, but needs other code.
            raise ModuleNotFoundError(
                f"{path.name} needs the module {error.name!r}, which this Python "
                "cannot import: pip install -r requirements.txt; if it is not "
                "listed there, the model was pickled with code that is not part "
                "of this package, and the package must be rebuilt without it",
                name=error.name,
            ) from error
        except Exception as error:
            raise pickle.UnpicklingError(
                f"{path.name} cannot be unpickled ({type(error).__name__}: {error}): "
                "the file is corrupted; re-download the package and verify it "
                "(python validate_model.py)"
            ) from error


@dataclass(frozen=True)
class Settings:
    """Inference settings: the manifest's inference_config, then the
    environment variables that override it."""

    threshold: float | None
    batch_size: int
    timeout_seconds: float
    missing_features: str
    out_of_range: str
    log_level: str | None
    log_format: str | None
    overrides: tuple[str, ...]


_SETTING_CHOICES = {
    "missing_features": MISSING_FEATURE_POLICIES,
    "out_of_range": OUT_OF_RANGE_POLICIES,
    "log_level": LOG_LEVELS,
    "log_format": LOG_FORMATS,
}
_SETTING_FIXES = {
    "threshold": "give a finite number",
    "batch_size": "give a whole number of rows, 1 or more",
    "timeout": "give a finite number of seconds greater than 0",
}


def _setting(source: str, value: Any, kind: str) -> Any:
    """Parse one setting; raise ConfigurationError naming ``source``."""
    text = str(value).strip()
    if kind in _SETTING_CHOICES:
        choices = _SETTING_CHOICES[kind]
        normal = text.upper() if kind == "log_level" else text.lower()
        if normal in choices:
            return normal
        fix = "give one of: " + ", ".join(choices)
    else:
        # Read as a CSV cell is: plain ASCII notation, not float()'s "1_0"
        # or digits of other scripts.
        number = math.nan if isinstance(value, bool) else _csv_number(text)
        if not isinstance(number, float):
            number = math.nan
        valid = (
            math.isfinite(number)
            and {
                "threshold": True,
                "batch_size": number >= 1 and number.is_integer(),
                "timeout": number > 0,
            }[kind]
        )
        if valid and kind == "batch_size":
            # Digits exactly: a float of more than 15 digits would round.
            return int(text) if text.isascii() and text.isdigit() else int(number)
        if valid:
            return number
        fix = _SETTING_FIXES[kind]
    raise ConfigurationError(f"{source}={_shown(value)} cannot be used: {fix}")


def read_settings(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Settings:
    """Combine inference_config with the environment variables that override it.

    Raises:
        ConfigurationError: a value is invalid; the message names its source.
    """
    environ = os.environ if environ is None else environ
    if not isinstance(environ, Mapping):
        raise TypeError(
            "environ must map variable names to values (os.environ, a dict), "
            f"not {type(environ).__name__}"
        )
    overrides = tuple(
        name
        for name in (
            "MODEL_THRESHOLD",
            "MODEL_BATCH_SIZE",
            "MODEL_TIMEOUT",
            "LOG_LEVEL",
            "LOG_FORMAT",
        )
        if str("" if environ.get(name) is None else environ[name]).strip()
    )

    def pick(variable: str | None, key: str, kind: str, default: Any) -> Any:
        if variable in overrides:
            return _setting(variable, environ[variable], kind)
        value = config.get(key) if key else None
        if value is None:
            return default
        return _setting(f"inference_config.{key}", value, kind)

    return Settings(
        threshold=pick("MODEL_THRESHOLD", "threshold", "threshold", None),
        batch_size=pick("MODEL_BATCH_SIZE", "batch_size", "batch_size", 1000),
        timeout_seconds=pick("MODEL_TIMEOUT", "timeout_seconds", "timeout", 30.0),
        missing_features=pick(None, "missing_features", "missing_features", "error"),
        out_of_range=pick(None, "out_of_range", "out_of_range", "allow"),
        log_level=pick("LOG_LEVEL", "", "log_level", None),
        log_format=pick("LOG_FORMAT", "", "log_format", None),
        overrides=overrides,
    )


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the
    record's structured ``fields`` (for predict: samples, anomalies, latency)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str | None, log_format: str | None) -> None:
    """Send this module's log records to stderr at ``level`` in ``log_format``.

    Does nothing when both are None, leaving logging to the application.
    """
    if level is None and log_format is None:
        return
    for handler in [h for h in logger.handlers if getattr(h, "_from_settings", 0)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._from_settings = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonLogFormatter()
        if log_format == "json"
        else logging.Formatter(TEXT_LOG_FORMAT)
    )
    logger.addHandler(handler)
    logger.setLevel(level or "INFO")
    logger.propagate = False


def final_estimator(model: Any) -> Any:
    """Return the estimator that makes the decision (the last Pipeline step)."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def anomaly_scores(model: Any, X: Any) -> np.ndarray:
    """Return anomaly scores of ``X``: higher means more anomalous."""
    return -np.asarray(model.score_samples(X), dtype=float)


def model_threshold(model: Any) -> float:
    """Return the model's own decision boundary on the anomaly score.

    That is ``-offset_``, which some detectors (OneClassSVM) hold as an
    array of one value.
    """
    return -np.asarray(final_estimator(model).offset_, dtype=float).item()


def _named_if_fitted_with_names(step: Any, X: np.ndarray) -> Any:
    """Give ``X`` column names when ``step`` was fitted on a DataFrame."""
    names = getattr(step, "feature_names_in_", None)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _shown(value: Any) -> str:
    """``repr(value)`` for a message, cut to _SHOWN_CHARACTERS (a value sent by
    a client can be megabytes long)."""
    text = repr(value)
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return f"{text[: _SHOWN_CHARACTERS - 3]}... ({len(text)} characters)"


def _rows_text(rows: Sequence[int], word: str = "row") -> str:
    """``row 3``, ``rows 0, 3, 7``, or the first _LOGGED_ROWS and how many more
    (``word``: what the numbers count, such as ``line``)."""
    if len(rows) == 1:
        return f"{word} {rows[0]}"
    shown = ", ".join(str(row) for row in rows[:_LOGGED_ROWS])
    more = len(rows) - _LOGGED_ROWS
    return f"{word}s {shown}" + (f" and {more} more" if more > 0 else "")


@dataclass
class _Notes:
    """The warnings of one preprocessing (features filled with 0.0, values
    outside the reference range), kept in ``messages`` instead of logged,
    with each row named by its entry in ``lines``: the batch command line
    names a row by its input line."""

    lines: Sequence[int]
    messages: list[str] = field(default_factory=list)

    def where(self, rows: Sequence[int]) -> str:
        """``line 7``, ``lines 2, 5, 9``...: the lines of ``rows``."""
        return _rows_text([self.lines[row] for row in rows], "line")


def _is_number(value: Any) -> bool:
    """A real number, not a bool: int, float, numpy's, Fraction, or Decimal
    (which database drivers return for NUMERIC columns)."""
    return (
        type(value) is float
        or type(value) is int
        or (
            isinstance(value, (numbers.Real, decimal.Decimal))
            and not isinstance(value, (bool, np.bool_))
        )
    )


def _is_finite_number(value: Any) -> bool:
    """A number (not a bool) that a float holds: no NaN, infinity or huge int."""
    try:
        return _is_number(value) and math.isfinite(value)
    except (OverflowError, ValueError):  # an int beyond floats; Decimal('sNaN')
        return False


# ---------------------------------------------------------------------------
# Fast exact scoring: the fitted IsolationForest flattened into numpy arrays.
#
# scikit-learn's score_samples walks the trees one Python call per tree, so a
# single record costs milliseconds. FlatForest is built once, when the
# package is loaded, and scores all rows in all trees with a few vectorised
# numpy operations per tree level. It repeats scikit-learn's arithmetic
# exactly (the rows cast to float32 and compared with the same thresholds,
# the same per-leaf path lengths added tree by tree, the same final formula),
# so its scores are bit-identical; FlatForest.build checks that on probe rows
# before it is used. Anything it does not recognise (another estimator, a
# scikit-learn without the internals it reads, NaN in the input) is left to
# scikit-learn.
# ---------------------------------------------------------------------------

# The top tree levels are scored by comparing whole feature columns with each
# node's threshold; deeper levels gather one node per (tree, row).
_BROADCAST_LEVELS = 2
_BROADCAST_MIN_ROWS = 16
# Rows are scored in chunks of about this many (tree, row) pairs, to stay in
# the CPU cache.
_CHUNK_PAIRS = 1 << 15
_MAX_CHUNK_ROWS = 1024
_BLOCK_BYTES = 1 << 20
# Forests that fit in this many slots padded to complete binary trees are
# numbered as heaps (faster: no child table); larger ones compactly.
_MAX_HEAP_SLOTS = 1 << 22
_KEY_BITS = 32
_PROBE_ROWS = 64
_NUMBER_TYPES = frozenset({float, int, np.float64, np.float32, np.int64, np.int32})


def _float32_floor(values: np.ndarray) -> np.ndarray:
    """Return the largest float32 at or below each float64 value.

    For a float32 ``x``, ``x <= t`` exactly when ``x <= _float32_floor(t)``,
    so a tree's float64 thresholds can be compared in float32.
    """
    with np.errstate(over="ignore"):
        floor = values.astype(np.float32)
    above = floor.astype(np.float64) > values
    floor[above] = np.nextafter(floor[above], np.float32(-np.inf))
    return floor


def _order_keys(values: np.ndarray) -> np.ndarray:
    """Return int64 keys in [0, 2**32) that order float32 ``values`` as ``<``
    does (-0.0 and 0.0 share a key; NaN must not occur)."""
    bits = np.add(values, np.float32(0.0), dtype=np.float32).view(np.int32)
    flip = (bits >> 31).view(np.uint32) | np.uint32(1 << 31)
    return (bits.view(np.uint32) ^ flip).astype(np.int64)


def _average_path_length(n_samples: int) -> np.ndarray:
    """scikit-learn's average path length of an isolation tree grown on
    ``n_samples`` rows, as a 1-element array, by the same numpy operations."""
    n = np.array([[float(n_samples)]])
    length = np.zeros(n.shape)
    grown = n > 2
    length[n == 2] = 1.0
    length[grown] = (
        2.0 * (np.log(n[grown] - 1.0) + np.euler_gamma)
        - 2.0 * (n[grown] - 1.0) / n[grown]
    )
    return length.reshape(1)


class _StandardScaling:
    """``StandardScaler.transform`` of float64 rows: ``(X - mean_) / scale_``,
    the operations scikit-learn performs, without its input checks. Rows of
    another dtype (float32 from an earlier Pipeline step), which scikit-learn
    scales in their own precision, go to the scaler's own transform."""

    # It never writes to float64 rows, the only ones of a caller's it gets;
    # rows of another dtype, which it hands to the scaler's own transform,
    # are an earlier step's (see _OwnTransform).
    writes_input = False

    def __init__(self, scaler: Any) -> None:
        self.scaler = scaler
        self.own = _OwnTransform(scaler)
        self.n_features = int(scaler.n_features_in_)
        self.mean = np.asarray(scaler.mean_, np.float64) if scaler.with_mean else None
        self.scale = (
            np.asarray(scaler.scale_, np.float64)
            if scaler.with_std and scaler.scale_ is not None
            else None
        )
        for vector in (self.mean, self.scale):
            if vector is not None and vector.shape != (self.n_features,):
                raise ValueError("the scaler's statistics do not fit its features")

    def __call__(self, X: np.ndarray) -> np.ndarray | None:
        if X.dtype != np.float64:
            return self.own(X)
        # A value too large to scale becomes +-inf, as in scikit-learn, and
        # is scored as scikit-learn scores it: numpy's overflow warning would
        # only alarm.
        with np.errstate(over="ignore"):
            if self.mean is not None:
                X = X - self.mean
            if self.scale is not None:
                X = X / self.scale if self.mean is None else np.divide(X, self.scale, X)
        return X

    def agrees(self) -> bool:
        """Whether this gives the scaler's own transform exactly, on rows
        around its means."""
        rows = np.random.default_rng(0).normal(size=(8, self.n_features))
        if self.scale is not None:
            rows *= self.scale
        if self.mean is not None:
            rows += self.mean
        own = self.scaler.transform(_named_if_fitted_with_names(self.scaler, rows))
        return bool(np.array_equal(self(rows), own))


class _OwnTransform:
    """Any other transformer: its own ``transform``, used when that returns a
    plain float array (otherwise the whole call is left to scikit-learn)."""

    # It may write to the rows it is given (copy=False, or a function that
    # does): FlatForest never gives it the caller's.
    writes_input = True

    def __init__(self, step: Any) -> None:
        self.step = step
        self.n_features = getattr(step, "n_features_in_", None)

    def __call__(self, X: np.ndarray) -> np.ndarray | None:
        try:
            out = self.step.transform(_named_if_fitted_with_names(self.step, X))
        except Exception:  # scikit-learn will raise it again, or not
            return None
        if isinstance(out, np.ndarray) and out.ndim == 2 and out.dtype.kind == "f":
            return out
        return None

    def agrees(self) -> bool:
        """Its own transform agrees with itself."""
        return True


def _transform_step(step: Any) -> _StandardScaling | _OwnTransform:
    from sklearn.preprocessing import StandardScaler

    if type(step) is StandardScaler:
        return _StandardScaling(step)
    if not callable(getattr(step, "transform", None)):
        raise TypeError(f"Pipeline step {type(step).__name__} has no transform")
    return _OwnTransform(step)


class FlatForest:
    """A fitted IsolationForest and the scalers before it, as numpy arrays.

    ``FlatForest.build(model, scaler)`` returns one for an IsolationForest
    (or a Pipeline ending in one) that it reproduces exactly, else None.
    ``anomaly_scores(X)`` then equals ``-model.score_samples(scaler.transform(X))``
    bit for bit.

    Layout: the nodes of all trees in one set of arrays (``codes`` and
    ``leaves``), numbered so that a row at node n goes on to one of two
    neighbours: 2n and 2n + 1 when the trees, padded to complete binary
    trees of the forest's depth, fit in ``_MAX_HEAP_SLOTS`` (a heap; a leaf
    above the last level sends every row left, threshold +inf, to its
    leftmost descendant there), else ``children[n]`` and ``children[n] + 1``
    (nothing padded; a leaf is its own left child). After as many steps as
    the deepest tree has levels every row is at its leaf, whose ``leaves``
    entry is the path length scikit-learn credits it. The top levels, which
    ``_leaves_reached`` compares column-wise, use small tables padded to
    complete trees in either case.

    Many rows are scored a block of trees at a time (``block_trees``), so
    that the block's tables stay in a CPU cache.
    """

    def __init__(self, forest: Any, steps: list[Any]) -> None:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        n_trees = len(trees)
        n_features = int(forest.n_features_in_)
        depth = max((int(tree.max_depth) for tree in trees), default=-1)
        if not n_trees or depth < 0:
            raise ValueError("the forest has no trees")
        self.steps = steps
        self.n_inputs = steps[0].n_features if steps else n_features
        self.n_features = n_features
        self.n_trees = n_trees
        self.depth = depth
        self.top_levels = min(_BROADCAST_LEVELS, depth)

        # Trees use columns of X[:, estimators_features_[t]] when the forest
        # subsampled features, else of X itself (as score_samples does).
        subsampled = forest._max_features != n_features
        # All trees' nodes in one array, each tree's after the previous ones;
        # a node's feature as a column of X.
        # (In place where it can be: a large forest has millions of nodes.)
        sizes = np.array([tree.node_count for tree in trees])
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        left = np.concatenate([tree.children_left for tree in trees])
        right = np.concatenate([tree.children_right for tree in trees])
        is_leaf = left == -1  # scikit-learn's TREE_LEAF
        shift = np.repeat(first, sizes)
        left += shift
        right += shift
        del shift
        feature = np.concatenate([tree.feature for tree in trees])
        np.maximum(feature, 0, out=feature)
        if subsampled:
            used = [np.asarray(f, np.int64) for f in forest.estimators_features_]
            starts = np.concatenate([[0], np.cumsum([len(f) for f in used])[:-1]])
            feature = np.concatenate(used)[feature + np.repeat(starts, sizes)]
        threshold = np.concatenate([tree.threshold for tree in trees])
        path_length = np.concatenate(forest._decision_path_lengths, dtype=np.float64)
        path_length += np.concatenate(forest._average_path_length_per_tree)
        path_length -= 1.0
        top = self.top_levels
        # Numbering (see the class docstring). Heap: the node at position p
        # of level d of tree t is ((n_trees + t) << d) + p, so its children
        # are 2n and 2n + 1 with no table, and the padding of a leaf above
        # the last level sends rows left to its leftmost descendant there.
        # Compact, when padding would take too much memory: nodes numbered
        # level by level, children found in ``children``, a leaf its own child.
        heap = n_trees << (depth + 1) <= _MAX_HEAP_SLOTS
        size = n_trees << (depth + 1) if heap else int(sizes.sum())
        # Many rows are scored a block of trees at a time, the block's tables
        # (codes, leaves, children: 8 bytes an entry) small enough to stay in
        # a CPU cache, and in chunks of rows of about _CHUNK_PAIRS (tree, row)
        # pairs a block.
        table_bytes = size * (16 if heap else 24)
        self.block_trees = int(
            np.clip(_BLOCK_BYTES * n_trees // table_bytes, 1, n_trees)
        )
        self.chunk_rows = int(
            np.clip(_CHUNK_PAIRS // self.block_trees, 16, _MAX_CHUNK_ROWS)
        )
        if n_features * self.chunk_rows >= 1 << 31:
            raise ValueError("too many features to flatten")
        leaf_code = _order_keys(np.array([np.inf], np.float32))[0]
        self.codes = np.full(size, leaf_code)
        self.leaves = np.zeros(size)
        self.children = None if heap else np.arange(size)
        # Top levels: tables of complete trees (padding sends rows left), and
        # where a compact forest's rows are after them, by (tree, position).
        top_features = [np.zeros(n_trees << d, np.int64) for d in range(top)]
        top_floors = [np.full(n_trees << d, np.inf, np.float32) for d in range(top)]
        self.top_nodes = None if heap else np.zeros(n_trees << top, np.int64)
        split_features, split_floors = [], []
        # Walk all trees level by level: (node, tree, position) triples.
        nodes, tree_of = first, np.arange(n_trees)
        positions = np.zeros(n_trees, np.int64)
        base = 0
        for d in range(depth + 1):
            count = len(nodes)
            leaf = is_leaf[nodes]
            inner = ~leaf
            if d == depth and inner.any():
                raise ValueError("a tree is deeper than its max_depth")
            if heap:
                numbers = ((n_trees + tree_of) << d) + positions
                lands = ((n_trees + tree_of[leaf]) << depth) + (
                    positions[leaf] << (depth - d)
                )
            else:
                numbers = np.arange(base, base + count)
                lands = numbers[leaf]
                self.children[numbers[inner]] = (
                    base + count + 2 * np.arange(np.count_nonzero(inner))
                )
                if d < top:  # a leaf above the last top level
                    slots = (tree_of[leaf] << top) + (positions[leaf] << (top - d))
                    self.top_nodes[slots] = numbers[leaf]
                elif d == top:
                    self.top_nodes[(tree_of << top) + positions] = numbers
            self.leaves[lands] = path_length[nodes[leaf]]
            level_features = feature[nodes[inner]]
            level_floors = _float32_floor(threshold[nodes[inner]])
            self.codes[numbers[inner]] = (
                (level_features * self.chunk_rows) << _KEY_BITS
            ) | _order_keys(level_floors)
            if d < top:
                slots = (tree_of[inner] << d) + positions[inner]
                top_features[d][slots] = level_features
                top_floors[d][slots] = level_floors
            split_features.append(level_features)
            split_floors.append(level_floors)
            base += count
            # Children, each left one before its right one.
            nodes = np.stack([left[nodes[inner]], right[nodes[inner]]], 1).ravel()
            tree_of = np.repeat(tree_of[inner], 2)
            positions = np.stack([2 * positions[inner], 2 * positions[inner] + 1], 1)
            positions = positions.ravel()
        # Where each tree's rows start after the top levels: a heap number,
        # or a top_nodes entry.
        self.tree_starts = (
            (np.arange(n_trees, dtype=np.int64) + (n_trees if heap else 0)) << top
        )[:, None]
        self.top_features = [
            top_features[d].reshape(n_trees, 1 << d) for d in range(top)
        ]
        self.top_thresholds = [
            top_floors[d].reshape(n_trees, 1 << d, 1) for d in range(top)
        ]
        # A row's x code for feature f: the offset of f's column in a chunk's
        # x codes (f * chunk_rows) above the order key of its value. A node's
        # code has its feature's offset above the order key of its threshold,
        # so "x > threshold" is "x code > node code", and the offset plus the
        # row's number is where to gather that x code from.
        self.column_codes = (
            np.arange(n_features, dtype=np.int64)[:, None] * self.chunk_rows
        ) << _KEY_BITS
        self.row_numbers = np.tile(
            np.arange(self.chunk_rows, dtype=np.int64), self.block_trees
        )
        self.denominator = n_trees * _average_path_length(forest._max_samples)
        self.probe = _probe_rows(
            np.concatenate(split_features), np.concatenate(split_floors), n_features
        )

    @classmethod
    def build(cls, model: Any, scaler: Any = None) -> "FlatForest | None":
        """Flatten ``model`` (an IsolationForest, or a Pipeline whose last step
        is one) with the separate ``scaler`` applied before it, if any.

        Returns None, leaving scoring to scikit-learn, for any other model or
        when the flattened forest does not score probe rows exactly as
        scikit-learn does.
        """
        try:
            from sklearn.ensemble import IsolationForest

            steps = [] if scaler is None else [scaler]
            forest = model
            if hasattr(model, "steps"):
                *head, (_, forest) = model.steps
                steps += [step for _, step in head if step not in (None, "passthrough")]
            if type(forest) is not IsolationForest:
                return None
            flat = cls(forest, [_transform_step(step) for step in steps])
            expected = -forest.score_samples(
                _named_if_fitted_with_names(forest, flat.probe)
            )
            if not (
                all(step.agrees() for step in flat.steps)
                and np.array_equal(flat._forest_scores(flat.probe), expected)
            ):
                logger.debug("fast scoring off: it differs from scikit-learn")
                return None
            return flat
        except Exception as error:  # anything unexpected: use scikit-learn
            logger.debug("fast scoring off: %s", error)
            return None

    def anomaly_scores(self, X: np.ndarray) -> np.ndarray | None:
        """``-score_samples`` of the float64 rows ``X`` (scalers included), or
        None when they are for scikit-learn to score, or to refuse: values
        that are not finite, another shape or dtype, a transformer that
        returned something else than a float array or NaN."""
        if not (
            isinstance(X, np.ndarray)
            and X.dtype == np.float64
            and X.ndim == 2
            and X.shape[1] == (self.n_inputs or X.shape[1])
            and np.isfinite(X).all()
        ):
            return None
        given = X
        for step in self.steps:
            if step.writes_input and np.may_share_memory(X, given):
                X = X.copy()
            X = step(X)
            if X is None:
                return None
        if X.shape[1] != self.n_features or np.isnan(X).any():
            return None
        return self._forest_scores(X)

    def _forest_scores(self, X: np.ndarray) -> np.ndarray:
        """``-score_samples`` of rows the forest takes as they are."""
        with np.errstate(over="ignore"):
            columns = np.ascontiguousarray(X.T, dtype=np.float32)
        keys = _order_keys(columns)
        n_rows = columns.shape[1]
        depths = np.empty(n_rows)
        # Chunks of at most chunk_rows rows, of equal sizes (no small tail).
        n_chunks = -(-n_rows // self.chunk_rows)
        bounds = [n_rows * i // n_chunks for i in range(n_chunks + 1)]
        for start, stop in pairwise(bounds):
            depths[start:stop] = self._depths(
                columns[:, start:stop], keys[:, start:stop]
            )
        denominator = self.denominator
        return 2 ** (
            -np.divide(
                depths, denominator, out=np.ones_like(depths), where=denominator != 0
            )
        )

    def _depths(self, columns: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """For each row (a column of ``columns``, float32 features, and of
        ``keys``, their order keys), the sum over the trees, in tree order,
        of the path length of the leaf the row reaches."""
        n_trees, n_rows = self.n_trees, columns.shape[1]
        # Top levels (not worth it for a few rows: fewer numpy calls matter
        # more then), and blocks of trees (one block for a few rows).
        few = n_rows < _BROADCAST_MIN_ROWS
        top = 0 if few else self.top_levels
        block = n_trees if few else self.block_trees
        x_codes = np.empty((self.n_features, self.chunk_rows), np.int64)
        np.bitwise_or(keys, self.column_codes, out=x_codes[:, :n_rows])
        x_codes = x_codes.ravel()
        path_lengths = np.empty((n_trees, n_rows))
        for first in range(0, n_trees, block):
            trees = slice(first, min(first + block, n_trees))
            node = self._leaves_reached(columns, x_codes, trees, top)
            self.leaves.take(node, out=path_lengths[trees].ravel(), mode="clip")
        # Add tree after tree from zero, as scikit-learn does. numpy reduces
        # axis 0 of a (trees, rows) array that way, but sums pairwise along a
        # contiguous axis, which is what a single row makes it: accumulate.
        if n_rows == 1:
            return np.add.accumulate(path_lengths[:, 0])[-1:]
        return np.add.reduce(path_lengths, axis=0)

    def _leaves_reached(
        self, columns: np.ndarray, x_codes: np.ndarray, trees: slice, top: int
    ) -> np.ndarray:
        """The leaf each (tree, row) pair of the trees ``trees`` reaches, tree
        by tree, as node numbers."""
        n_rows = columns.shape[1]
        n_trees = trees.stop - trees.start
        # Top levels: every node's decision for every row, then each row's
        # branch at a level picked by its branches above.
        position = np.zeros((n_trees, n_rows), np.uint8)
        branches_taken: list[np.ndarray] = []
        for d in range(top):
            features, thresholds = self.top_features[d], self.top_thresholds[d]
            branches = [
                columns.take(features[trees, p], axis=0) > thresholds[trees, p]
                for p in range(1 << d)
            ]
            for went_right in reversed(branches_taken):
                branches = [
                    left ^ ((left ^ right) & went_right)
                    for left, right in zip(branches[::2], branches[1::2], strict=True)
                ]
            branches_taken.append(branches[0])
            position <<= 1
            position |= branches[0]
        starts = self.tree_starts[trees] >> (self.top_levels - top)
        node = np.add(starts, position).ravel()
        if top and self.top_nodes is not None:
            node = self.top_nodes.take(node)
        if top == self.depth:
            return node
        # Deeper levels: gather each (tree, row)'s node code and the row's x
        # code for that node's feature; the row goes to the node's right child
        # (2 * node + 1, or children[node] + 1) where node code - x code is
        # negative, else to its left child.
        code = np.empty_like(node)
        index = np.empty_like(node)
        x_code = np.empty_like(node)
        if n_rows == self.chunk_rows and n_trees == self.block_trees:
            index_by_tree, row_numbers = index, self.row_numbers
        else:
            index_by_tree = index.reshape(n_trees, n_rows)
            row_numbers = self.row_numbers[:n_rows]
        for _ in range(top, self.depth):
            self.codes.take(node, out=code, mode="clip")
            np.right_shift(code, _KEY_BITS, out=index)
            index_by_tree += row_numbers
            x_codes.take(index, out=x_code, mode="clip")
            code -= x_code
            code >>= 63
            if self.children is None:
                node <<= 1
                node -= code
            else:
                self.children.take(node, out=index, mode="clip")
                np.subtract(index, code, out=node)
        return node


def _probe_rows(
    features: np.ndarray, floors: np.ndarray, n_features: int
) -> np.ndarray:
    """Rows to compare a FlatForest with scikit-learn on: each value is
    random, or a split threshold of that feature (as float32) or the float32
    just below or above it, so that both sides of many splits are taken."""
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(_PROBE_ROWS, n_features)).astype(np.float32)
    split = np.isfinite(floors)
    features, floors = features[split], floors[split]
    for column in range(n_features):
        pool = floors[features == column]
        if len(pool):
            chosen = rng.choice(pool, size=_PROBE_ROWS)
            step = rng.integers(-1, 2, size=_PROBE_ROWS)
            toward = np.where(step > 0, np.inf, -np.inf).astype(np.float32)
            moved = np.where(step == 0, chosen, np.nextafter(chosen, toward))
            keep = rng.random(_PROBE_ROWS) < 0.2
            probe[:, column] = np.where(keep, probe[:, column], moved)
    return probe.astype(np.float64)


def _records_array(
    records: Sequence[Any], getter: Any, width: int
) -> np.ndarray | None:
    """The float64 array of ``records`` when every record is a dict holding
    every feature as a finite int or float; None sends them through the
    per-value checks, which say what is wrong."""
    if not (records and width) or set(map(type, records)) != {dict}:
        return None
    try:
        values = (
            list(map(getter, records))
            if width == 1
            else list(chain.from_iterable(map(getter, records)))
        )
    except KeyError:
        return None
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return None
    try:
        X = np.array(values, dtype=np.float64).reshape(len(records), width)
    except (OverflowError, ValueError):
        return None
    return X if np.isfinite(X).all() else None


def _numeric_array(values: np.ndarray) -> np.ndarray | None:
    """A float64 copy of an int or float array (None for another dtype)."""
    if values.dtype.kind not in "fiu":
        return None
    return values.astype(np.float64, order="C")


# Rows converted one by one (records with a missing feature or a value that
# is not a float or int) are copied into the array this many at a time, and
# the call's deadline is looked at as often.
_CONVERSION_ROWS = 4096


class _Absent:
    """The value of a feature that a record does not have: of no number type."""

    __slots__ = ()


_ABSENT = _Absent()


def _row_name(row: int | None) -> str | None:
    return None if row is None else f"row {row}"


def _in_row(row: int | None) -> str:
    """`` in row 3`` for a message; nothing for a record checked on its own."""
    return "" if row is None else f" in row {row}"


def _not_finite(name: str, value: Any, row: int | None) -> str:
    return (
        f"Feature '{name}'{_in_row(row)} is {_shown(value)}: every value must be "
        "a finite number"
    )


@dataclass(frozen=True)
class _Deadline:
    """When a ``predict`` or ``drift_report`` call must be done by: its
    timeout_seconds, read once when it starts."""

    call: str
    started: float
    timeout: float

    def check(self, done: int, total: int, doing: str = "") -> None:
        """Raise TimeoutError once the call has taken longer than its timeout
        (``done`` of ``total`` rows converted or scored)."""
        if time.monotonic() - self.started > self.timeout:
            raise TimeoutError(
                f"{self.call} exceeded timeout_seconds={self.timeout} {doing}after "
                f"{done} of {total} rows: send smaller batches"
            )


class ModelInference:
    """Load a verified deployment package and score feature records.

    Args:
        model_dir: the extracted package folder (default: current directory).
        verify: check every file's SHA-256 against the manifest before any
            file is unpickled. A joblib file runs code when loaded, so turn
            this off only for files you have just verified yourself.
        allow_version_mismatch: load artifacts that scikit-learn says were
            pickled by another version (normally VersionMismatchError).
        environ: where to read MODEL_THRESHOLD, MODEL_BATCH_SIZE,
            MODEL_TIMEOUT, LOG_LEVEL and LOG_FORMAT (default ``os.environ``;
            ``{}`` uses the manifest's inference_config alone).
        fast_scoring: score an IsolationForest with a flattened copy of the
            forest, built and checked against scikit-learn when loading (its
            scores are scikit-learn's bit for bit). False scores with
            scikit-learn alone and loads a large forest faster.

    Raises:
        FileNotFoundError: ``model_dir`` is not a folder, or holds no
            deployment_manifest.json.
        OSError: the manifest cannot be read (the subclass reading it
            raised: PermissionError...).
        IntegrityError: a file is missing, altered or cannot be read, or the
            manifest lacks an entry every package has; nothing was unpickled.
        VersionMismatchError: see ``allow_version_mismatch``.
        ConfigurationError: an environment variable, or the manifest's
            inference_config, has an invalid value.
        ModuleNotFoundError: a library the model needs is not installed.
        pickle.UnpicklingError: with ``verify=False``, a corrupted file
            (verified, it is an IntegrityError first).
    """

    def __init__(
        self,
        model_dir: Path | str = ".",
        verify: bool = True,
        allow_version_mismatch: bool = False,
        environ: Mapping[str, str] | None = None,
        fast_scoring: bool = True,
    ) -> None:
        self.model_dir = Path(model_dir)
        # Where the files were found, for a pickle: the working directory
        # may change before it is made.
        self._absolute_dir = Path(os.path.abspath(self.model_dir))
        self._allow_version_mismatch = allow_version_mismatch
        self._manifest = read_manifest(self.model_dir)
        if verify:  # first: nothing of an altered manifest is used
            verify_package(self.model_dir, self._manifest)
        settings = read_settings(self._manifest.get("inference_config") or {}, environ)
        configure_logging(settings.log_level, settings.log_format)
        files = self._manifest.get("files", {})
        self._model = self._load(files["model_file"])
        scaler_file = files.get("scaler_file")
        self._scaler = self._load(scaler_file) if scaler_file else None
        self._feature_names = list(self._manifest["training_info"]["feature_names"])
        self._feature_set = frozenset(self._feature_names)
        self._feature_getter = (
            operator.itemgetter(*self._feature_names) if self._feature_names else None
        )
        self._fast_scorer = (
            FlatForest.build(self._model, self._scaler) if fast_scoring else None
        )
        self._ignored_keys: set[str] = set()
        self._threshold = (
            model_threshold(self._model)
            if settings.threshold is None
            else settings.threshold
        )
        self._settings = settings
        with open(self.model_dir / files["metadata_file"], encoding="utf-8") as stream:
            self._metadata = json.load(stream)
        self._monitoring = self._metadata.get("monitoring")
        self._low, self._high = _reference_bounds(self._monitoring, self._feature_names)
        self.batch_size = settings.batch_size
        self.timeout_seconds = settings.timeout_seconds
        self.missing_features = settings.missing_features
        self._set_out_of_range(settings.out_of_range, "inference_config.out_of_range")

    def _load(self, name: str) -> Any:
        """Unpickle the package's file ``name`` (__init__ has verified it,
        unless told not to)."""
        return load_artifact(self.model_dir / name, self._allow_version_mismatch)

    @property
    def manifest(self) -> dict[str, Any]:
        """The deployment manifest."""
        return self._manifest

    @property
    def model(self) -> Any:
        """The loaded scikit-learn model."""
        return self._model

    @property
    def scaler(self) -> Any | None:
        """The feature scaler, or None when the package has none."""
        return self._scaler

    @property
    def threshold(self) -> float:
        """Rows whose anomaly score is above this are anomalies."""
        return self._threshold

    @property
    def feature_names(self) -> list[str]:
        """The features a record must have, in training order."""
        return list(self._feature_names)

    @property
    def fast_scoring(self) -> bool:
        """True when the flattened forest scores, False when scikit-learn does."""
        return self._fast_scorer is not None

    @property
    def batch_size(self) -> int:
        """Rows scored at once inside ``predict``; settable (1 or more)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = _setting("batch_size", value, "batch_size")

    @property
    def timeout_seconds(self) -> float:
        """Time limit of one ``predict`` or ``drift_report`` call; settable
        (finite, more than 0)."""
        return self._timeout_seconds

    @timeout_seconds.setter
    def timeout_seconds(self, value: float) -> None:
        self._timeout_seconds = _setting("timeout_seconds", value, "timeout")

    @property
    def missing_features(self) -> str:
        """``error`` (refuse a record without some feature) or ``zero`` (fill
        0.0 and log it); settable."""
        return self._missing_features

    @missing_features.setter
    def missing_features(self, value: str) -> None:
        self._missing_features = _setting("missing_features", value, "missing_features")

    @property
    def out_of_range(self) -> str:
        """``allow``, ``warn`` or ``error``: what a value outside the reference
        range gets; settable (``warn`` and ``error`` need the reference range)."""
        return self._out_of_range

    @out_of_range.setter
    def out_of_range(self, value: str) -> None:
        self._set_out_of_range(value, "out_of_range")

    def _set_out_of_range(self, value: str, source: str) -> None:
        policy = _setting(source, value, "out_of_range")
        if policy != "allow" and not (
            np.isfinite(self._low).all() and np.isfinite(self._high).all()
        ):
            raise ConfigurationError(
                f"{source}={policy!r} needs the reference range of every feature, "
                "and metadata.json's monitoring section has none: rebuild the "
                "package with reference_data_path"
            )
        self._out_of_range = policy

    @property
    def settings(self) -> Settings:
        """Every setting in effect (the settable ones as they are now), and in
        ``overrides`` the environment variables that set them when loading."""
        return replace(
            self._settings,
            batch_size=self._batch_size,
            timeout_seconds=self._timeout_seconds,
            missing_features=self._missing_features,
            out_of_range=self._out_of_range,
        )

    @property
    def metadata(self) -> dict[str, Any]:
        """metadata.json, as read when loading (after verification)."""
        return self._metadata

    @property
    def monitoring(self) -> dict[str, Any] | None:
        """metadata.json's reference statistics (None in a package without)."""
        return self._monitoring

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the package folder and the settings, never the model.

        Unpickling constructs ModelInference again from the folder's absolute
        path, where it is unpickled: every file is verified first (always,
        even if this instance was made with ``verify=False``), then loaded.
        A pickle is a few hundred bytes, and a file changed since raises
        IntegrityError. The settings travel with it: ``allow_version_mismatch``,
        ``fast_scoring``, the environment variables that set this instance's
        values (as an ``environ`` of their own: the unpickling process's
        environment is not read, and nothing else of ``os.environ`` is
        pickled), and the current ``batch_size``, ``timeout_seconds``,
        ``missing_features`` and ``out_of_range``.
        """
        settings = self._settings
        values = {
            "MODEL_THRESHOLD": repr(self._threshold),
            "MODEL_BATCH_SIZE": str(settings.batch_size),
            "MODEL_TIMEOUT": repr(settings.timeout_seconds),
            "LOG_LEVEL": settings.log_level,
            "LOG_FORMAT": settings.log_format,
        }
        environ = {name: values[name] for name in settings.overrides}
        arguments = (
            str(self._absolute_dir),
            True,
            self._allow_version_mismatch,
            environ,
            self.fast_scoring,
        )
        state = {
            "_batch_size": self.batch_size,
            "_timeout_seconds": self.timeout_seconds,
            "_missing_features": self.missing_features,
            "_out_of_range": self.out_of_range,
        }
        return (type(self), arguments, state)

    def preprocess_features(self, features: Any) -> np.ndarray:
        """Turn records into a float array with columns in training order.

        ``features`` is a list of dicts (feature name -> number), a pandas
        DataFrame with the feature columns, or a 2-D array whose columns are
        already in ``feature_names`` order. Extra keys are ignored (logged
        once each at DEBUG). A missing feature is an error, or, when the
        package was built with ``missing_features=zero``, filled with 0.0
        and logged at WARNING. A value outside the reference range is scored
        (``out_of_range=allow``), logged (``warn``) or refused (``error``);
        a 0.0 filled in for a missing feature is not input, and not checked.

        Raises:
            ValueError: a feature is missing, a value is not a finite number,
                or (with ``out_of_range=error``) it is outside the reference
                range.
        """
        return self._preprocess(features, None)

    def _preprocess(
        self, features: Any, deadline: _Deadline | None, notes: _Notes | None = None
    ) -> np.ndarray:
        """preprocess_features, within a call's deadline (None: no limit).
        Its warnings go to ``notes`` (None: they are logged)."""
        X, filled = self._as_array(features, deadline, notes=notes)
        if self.out_of_range != "allow":
            self._check_ranges(X, filled, notes=notes)
        return X

    def _record_problem(self, record: Any) -> str | None:
        """Why ``preprocess_features`` refuses ``record``, found by its own
        checks run on that record alone and worded without a row number (the
        batch command line names the record's line); None when it takes it.
        Nothing is logged."""
        try:
            X, filled = self._as_array([record], probe=True)
            if self.out_of_range == "error":
                self._check_ranges(X, filled, probe=True)
        except ValueError as error:
            return str(error)
        return None

    def _check_ranges(
        self,
        X: np.ndarray,
        filled: np.ndarray | None,
        probe: bool = False,
        notes: _Notes | None = None,
    ) -> None:
        """Refuse (error) or log (warn) values outside the reference range:
        one WARNING per feature and call, however many rows. ``filled`` says
        where X holds 0.0 for a missing feature (None: nowhere): the package
        put those there, the input did not, so they are not checked.
        ``probe``: a record checked on its own (its row is not named);
        ``notes``: where the warnings go instead of the log."""
        outside = np.less(X, self._low) | np.greater(X, self._high)
        if filled is not None:
            outside &= ~filled
        if not outside.any():
            return
        for column in np.flatnonzero(outside.any(axis=0)):
            name = self._feature_names[column]
            rows = np.flatnonzero(outside[:, column])
            low, high = float(self._low[column]), float(self._high[column])
            values = X[rows, column]
            if self.out_of_range == "error":
                first = int(rows[0])
                raise ValueError(
                    f"Feature '{name}'{_in_row(None if probe else first)} is "
                    f"{float(values[0])!r}, outside the reference range "
                    f"[{low!r}, {high!r}]: this package refuses such values "
                    "(inference_config.out_of_range is error)"
                )
            seen = (
                f"is {float(values[0])!r}"
                if len(rows) == 1
                else f"has {len(rows)} values from {float(values.min())!r} to "
                f"{float(values.max())!r}"
            )
            if notes is not None:
                notes.messages.append(
                    _OUTSIDE_RANGE % (name, notes.where(rows), seen, low, high)
                )
                continue
            logger.warning(
                _OUTSIDE_RANGE,
                name,
                _rows_text(rows),
                seen,
                low,
                high,
                extra={
                    "fields": {
                        "event": "out_of_range",
                        "feature": name,
                        "count": len(rows),
                        "rows": rows[:_LOGGED_ROWS].tolist(),
                    }
                },
            )

    def _as_array(
        self,
        features: Any,
        deadline: _Deadline | None = None,
        probe: bool = False,
        notes: _Notes | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """preprocess_features without the out_of_range policy.

        Returns the array and where it holds 0.0 for a missing feature (a
        bool array of its shape; None when nothing was filled). Rows
        converted one by one look at ``deadline`` as they go. ``probe``: one
        record checked on its own (see _record_problem): its row is not
        named, and nothing is logged. ``notes``: where the warnings about
        filled features of a list of records go instead of the log.
        """
        names = self._feature_names
        width = len(names)
        if hasattr(features, "columns") and hasattr(features, "to_numpy"):
            columns = [str(column) for column in features.columns]
            repeated = sorted(
                name
                for name, count in Counter(columns).items()
                if count > 1 and name in self._feature_set
            )
            if repeated:
                raise ValueError(
                    f"the DataFrame has more than one column named {repeated[0]!r}: "
                    "keep one column per feature"
                )
            features = features.set_axis(columns, axis=1)
            absent = [name for name in names if name not in features.columns]
            for name in absent:
                self._refuse_missing(name, f"all {len(features)} rows")
                self._log_filled(name, f"all {len(features)} rows")
            if absent:
                features = features.assign(**dict.fromkeys(absent, 0.0))
            self._note_ignored(columns)
            frame = features[names]
            filled = None
            if absent:
                filled = np.zeros(frame.shape, dtype=bool)
                filled[:, [names.index(name) for name in absent]] = True
            X = _numeric_array(frame.to_numpy()) if frame.shape[1] == width else None
            if X is None:
                X, _ = self._filled_array(
                    frame.to_numpy(dtype=object), False, deadline, probe
                )
            else:
                self._check_finite(X)
            return X, filled
        if isinstance(features, np.ndarray):
            if features.ndim != 2 or features.shape[1] != width:
                raise ValueError(
                    f"array input must have shape (n_rows, {width}) with "
                    f"columns in feature_names order, got {features.shape}"
                )
            if isinstance(features, np.ma.MaskedArray):
                masked = np.argwhere(np.ma.getmaskarray(features))
                if len(masked):
                    row, column = masked[0]
                    raise ValueError(
                        f"Feature '{names[column]}' in row {row} is masked: "
                        f"fill or drop the {len(masked)} masked value(s) first"
                    )
                features = features.data
            X = _numeric_array(features)
            if X is None:
                return self._filled_array(features, False, deadline, probe)
            self._check_finite(X)
            return X, None
        if isinstance(features, Sequence) and not isinstance(features, (str, bytes)):
            X = _records_array(features, self._feature_getter, width)
            if X is not None:
                if not probe and logger.isEnabledFor(logging.DEBUG):
                    self._note_ignored(
                        set().union(*(r for r in features if len(r) != width))
                    )
                return X, None
            X, filled = self._filled_array(features, True, deadline, probe)
            if not probe:
                if logger.isEnabledFor(logging.DEBUG):
                    self._note_ignored(set().union(*features))
                if filled is not None:
                    for column in np.flatnonzero(filled.any(axis=0)):
                        rows = np.flatnonzero(filled[:, column])
                        if notes is None:
                            self._log_filled(names[column], _rows_text(rows))
                        else:
                            notes.messages.append(
                                _FILLED % (names[column], notes.where(rows))
                            )
            return X, filled
        hint = ""
        if isinstance(features, Mapping):
            columns = any(
                isinstance(value, (list, tuple, np.ndarray))
                for value in features.values()
            )
            hint = (
                ": its values are columns, so pass pandas.DataFrame(features) (or "
                "a list of dicts, one per record)"
                if columns
                else ": wrap one record in a list"
            )
        raise ValueError(
            "features must be a list of dicts, a DataFrame or a 2-D array, "
            f"got {type(features).__name__}{hint}"
        )

    def _filled_array(
        self,
        items: Sequence[Any],
        records: bool,
        deadline: _Deadline | None,
        probe: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows that are not a plain float array (``records``: dicts;
        else rows of an array), checked and copied into a preallocated float
        array _CONVERSION_ROWS rows at a time, the call's deadline looked at
        as often. Returns the array and where it holds 0.0 for a missing
        feature (None: nowhere)."""
        count, width = len(items), len(self._feature_names)
        X = np.empty((count, width))
        fill = records and self.missing_features == "zero"
        filled = np.zeros((count, width), dtype=bool) if fill else None
        values_of = self._record_values if records else self._row_values
        rows = iter(items)
        for start in range(0, count, _CONVERSION_ROWS):
            if start and deadline is not None:
                deadline.check(start, count, "while reading its input, ")
            block = list(islice(rows, _CONVERSION_ROWS))
            where = slice(start, start + len(block))
            out = X[where], None if filled is None else filled[where]
            if not (records and self._dict_columns(block, *out)):
                if filled is not None:
                    filled[where] = False
                self._block_rows(block, start, values_of, probe, *out)
        return X, (filled if fill and filled.any() else None)

    def _dict_columns(
        self, block: list[Any], X: np.ndarray, filled: np.ndarray | None
    ) -> bool:
        """Records into ``X`` a column at a time, at C speed, when each is a
        dict and each value it has is a finite float or int; a feature that
        is missing is filled in bulk (``filled``: where, None when missing
        features are refused). False leaves the block to _block_rows, which
        says what is wrong (or takes values of other number types, such as
        Decimal)."""
        if set(map(type, block)) != {dict}:
            return False
        keys = set().union(*block)
        for column, name in enumerate(self._feature_names):
            if name not in keys:  # in no record of the block
                if filled is None:
                    return False
                X[:, column] = 0.0
                filled[:, column] = True
                continue
            values = list(map(dict.get, block, repeat(name), repeat(_ABSENT)))
            kinds = set(map(type, values))
            present = None
            if _Absent in kinds:
                if filled is None:
                    return False
                present = list(map(dict.__contains__, block, repeat(name)))
                values = list(compress(values, present))
                kinds.discard(_Absent)
            if not kinds <= _NUMBER_TYPES:
                return False
            try:
                numbers = np.array(values, dtype=np.float64)
            except (OverflowError, ValueError):
                return False
            if not np.isfinite(numbers).all():
                return False
            if present is None:
                X[:, column] = numbers
            else:
                missing = np.logical_not(present)
                X[:, column] = 0.0
                X[~missing, column] = numbers
                filled[:, column] = missing
        return True

    def _block_rows(
        self,
        block: list[Any],
        start: int,
        values_of: Any,
        probe: bool,
        X: np.ndarray,
        filled: np.ndarray | None,
    ) -> None:
        """Items into ``X`` one by one: ``values_of(item, row)`` gives an
        item's checked values and the columns filled in it (``filled``)."""
        flat: list[Any] = []
        for offset, item in enumerate(block):
            values, missing = values_of(item, None if probe else start + offset)
            flat.extend(values)
            if missing:
                filled[offset, missing] = True
        X[:] = np.array(flat, dtype=np.float64).reshape(X.shape)

    def _record_values(self, record: Any, row: int | None) -> tuple[list[Any], Any]:
        """The feature values of one record in order, checked (see
        _checked_values); ``row`` is its place in the input (None: not named)."""
        names = self._feature_names
        if type(record) is dict:
            values = list(map(record.get, names, repeat(_ABSENT)))
        elif isinstance(record, Mapping):
            # "in" first: indexing a defaultdict or a Counter would invent
            # the value, and a mapping's get() indexes it.
            values = [
                record[name] if name in record else _ABSENT  # noqa: SIM401
                for name in names
            ]
        else:
            raise ValueError(
                f"{_row_name(row) or 'the record'} is of type "
                f"{type(record).__name__}, expected a dict (a JSON object) of "
                "feature name -> number"
            )
        return self._checked_values(values, row)

    def _row_values(self, values: np.ndarray, row: int | None) -> tuple[list[Any], Any]:
        """One row of an array that is not of numbers, checked."""
        return self._checked_values(values.tolist(), row)

    def _checked_values(
        self, values: list[Any], row: int | None
    ) -> tuple[list[Any], Any]:
        """One row's values in feature order (_ABSENT for a missing feature):
        a missing one is refused, or filled with 0.0 (missing_features=zero);
        any other value that is not a finite number is refused. Returns the
        values and the columns filled (a list, or a slice for all).

        Raises:
            ValueError: naming the feature, and ``row`` unless it is None.
        """
        kinds = set(map(type, values))
        if kinds <= _NUMBER_TYPES:
            try:
                if all(map(math.isfinite, values)):
                    return values, []
            except OverflowError:  # an int beyond floats: said below
                pass
        elif kinds == {_Absent}:  # no feature at all: every column filled at once
            self._refuse_missing(self._feature_names[0], _row_name(row))
            return [0.0] * len(values), slice(None)
        filled = []
        for column, value in enumerate(values):
            name = self._feature_names[column]
            if value is _ABSENT:
                self._refuse_missing(name, _row_name(row))
                values[column] = 0.0
                filled.append(column)
            elif not _is_finite_number(value):
                raise ValueError(_not_finite(name, value, row))
        return values, filled

    def _check_finite(self, X: np.ndarray) -> None:
        """Refuse the first value of a float array (by row, then column) that
        is not finite."""
        finite = np.isfinite(X)
        if not finite.all():
            row, column = divmod(int(np.argmin(finite)), X.shape[1])
            raise ValueError(
                _not_finite(self._feature_names[column], float(X[row, column]), row)
            )

    def _refuse_missing(self, name: str, where: str | None) -> None:
        """Refuse a missing feature, unless the package fills it (zero);
        ``where`` says which rows lack it (None: not said)."""
        if self.missing_features != "zero":
            place = f" ({where})" if where else ""
            raise ValueError(
                f"Feature '{name}' not found in input{place}: every record "
                "needs all features in ModelInference.feature_names"
            )

    def _log_filled(self, name: str, where: str) -> None:
        """One WARNING per feature and call for the values filled with 0.0."""
        logger.warning(
            _FILLED,
            name,
            where,
            extra={
                "fields": {"event": "missing_feature", "feature": name, "where": where}
            },
        )

    def _note_ignored(self, keys: Any) -> None:
        """Log at DEBUG, once per name, input keys that are not features.

        Only the first _MAX_NOTED_KEYS names are remembered (and logged), so
        that clients sending ever new keys cannot grow memory without end.
        """
        room = _MAX_NOTED_KEYS - len(self._ignored_keys)
        if room <= 0 or not logger.isEnabledFor(logging.DEBUG):
            return
        # Remembered and logged as cut reprs: a key may be megabytes long, or
        # hold a line break that would forge a log line.
        new = {_shown(str(key)) for key in keys if key not in self._feature_set}
        new -= self._ignored_keys
        if new:
            new = set(sorted(new)[:room])
            self._ignored_keys |= new
            logger.debug(
                "ignoring input keys that are not features: %s",
                ", ".join(sorted(new)),
                extra={"fields": {"event": "ignored_keys", "keys": sorted(new)}},
            )

    def score(self, X: np.ndarray) -> np.ndarray:
        """Return anomaly scores for an array from ``preprocess_features``.

        An IsolationForest is scored by its flattened copy (FlatForest), which
        gives scikit-learn's scores bit for bit, much faster; anything else,
        by scikit-learn. ``X`` is left as it is.
        """
        if self._fast_scorer is not None:
            scores = self._fast_scorer.anomaly_scores(X)
            if scores is not None:
                return scores
        if self._scaler is not None or hasattr(self._model, "steps"):
            # A transformer may write to the rows it is given (copy=False).
            X = X.copy()
        if self._scaler is not None:
            X = self._scaler.transform(_named_if_fitted_with_names(self._scaler, X))
        return anomaly_scores(self._model, _named_if_fitted_with_names(self._model, X))

    def _deadline(self, call: str) -> _Deadline:
        """The deadline of a call starting now."""
        # timeout_seconds read once: another thread may set it meanwhile.
        return _Deadline(call, time.monotonic(), self.timeout_seconds)

    def _batched_scores(self, X: np.ndarray, deadline: _Deadline) -> np.ndarray:
        """Score ``X`` batch_size rows at a time, within the call's deadline."""
        scores = np.empty(len(X))
        # Read once: another thread may set it while this call runs.
        batch_size = self.batch_size
        for start in range(0, len(X), batch_size):
            deadline.check(start, len(X))
            stop = start + batch_size
            scores[start:stop] = self.score(X[start:stop])
        return scores

    def drift_monitor(
        self, psi_warn: float | None = None, psi_alert: float | None = None
    ) -> "DriftMonitor":
        """A DriftMonitor against this package's reference statistics.

        Its expected anomaly ratio is the manifest's, measured at the package's
        threshold: None when MODEL_THRESHOLD moves it.
        """
        config = self._manifest.get("inference_config") or {}
        expected = config.get("anomaly_ratio")
        if config.get("threshold") != self._threshold:
            expected = None
        return DriftMonitor(
            self._monitoring,
            self._feature_names,
            expected,
            PSI_WARN if psi_warn is None else psi_warn,
            PSI_ALERT if psi_alert is None else psi_alert,
        )

    def drift_report(
        self,
        features: Any,
        psi_warn: float | None = None,
        psi_alert: float | None = None,
    ) -> dict[str, Any]:
        """Compare ``features`` (the forms ``predict`` takes) with the reference.

        Returns a JSON-serializable report: per feature the PSI against the
        reference histogram and the values outside the reference range, the
        PSI of the scores, the observed anomaly ratio beside the expected one,
        and an overall ``status``: ``alert`` when any PSI reaches
        ``psi_alert`` (default 0.25), ``warn`` when any reaches ``psi_warn``
        (default 0.1), ``ok`` otherwise, ``unknown`` when the package has no
        reference histograms or no rows were given. Rows are counted as they
        are scored: values outside the reference range whatever
        ``out_of_range`` says, and a 0.0 filled in for a missing feature
        (``missing_features=zero``) as that feature's value.

        Raises:
            ValueError: bad input, as for ``predict`` (but values outside the
                reference range, which are counted), or bad PSI levels.
            TimeoutError: converting and scoring took longer than
                ``timeout_seconds``.
        """
        deadline = self._deadline("drift_report")
        monitor = self.drift_monitor(psi_warn, psi_alert)
        X, _ = self._as_array(features, deadline)
        scores = self._batched_scores(X, deadline)
        monitor.add(X, scores, scores > self._threshold)
        return monitor.report()

    def predict(self, features: Any) -> dict[str, Any]:
        """Score records and flag anomalies.

        Returns a dict of plain Python values: ``predictions`` (0 normal,
        1 anomaly), ``scores``, ``threshold``, ``anomaly_count`` and
        ``total_samples``.

        Raises:
            ValueError: bad input (see ``preprocess_features``).
            TimeoutError: converting and scoring took longer than
                ``timeout_seconds``.
        """
        deadline = self._deadline("predict")
        X = self._preprocess(features, deadline)
        scores = self._batched_scores(X, deadline)
        predictions = (scores > self._threshold).astype(int)
        result = {
            "predictions": predictions.tolist(),
            "scores": scores.tolist(),
            "threshold": self._threshold,
            "anomaly_count": int(predictions.sum()),
            "total_samples": len(X),
        }
        if logger.isEnabledFor(logging.INFO):
            latency_ms = (time.monotonic() - deadline.started) * 1000
            logger.info(
                "predict: %d samples, %d anomalies, %.3f ms",
                result["total_samples"],
                result["anomaly_count"],
                latency_ms,
                extra={
                    "fields": {
                        "event": "predict",
                        "samples": result["total_samples"],
                        "anomalies": result["anomaly_count"],
                        "latency_ms": round(latency_ms, 3),
                        "model_version": self._manifest.get("model_version"),
                    }
                },
            )
        return result


# ---------------------------------------------------------------------------
# Drift: live data against the reference statistics in metadata.json
# ---------------------------------------------------------------------------

PSI_WARN = 0.1
PSI_ALERT = 0.25
# The share given to a bin that holds no live rows, so that PSI stays finite.
PSI_FLOOR = 1e-4
STATUS_ORDER = ("unknown", "ok", "warn", "alert")


def population_stability_index(
    reference_counts: Sequence[float], live_counts: Sequence[float]
) -> float | None:
    """PSI of two histograms over the same bins: sum (q - p) * ln(q / p).

    ``p`` and ``q`` are the reference and live shares per bin, each at least
    PSI_FLOOR. None when either histogram is empty.
    """
    reference = np.asarray(reference_counts, dtype=float)
    live = np.asarray(live_counts, dtype=float)
    if reference.sum() <= 0 or live.sum() <= 0:
        return None
    p = np.maximum(reference / reference.sum(), PSI_FLOOR)
    q = np.maximum(live / live.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _psi_status(value: float | None, warn: float, alert: float) -> str:
    if value is None:
        return "unknown"
    return "alert" if value >= alert else "warn" if value >= warn else "ok"


class _Histogram:
    """Live counts over a reference histogram's bins (open outer bins)."""

    def __init__(self, statistics: Mapping[str, Any] | None) -> None:
        histogram = (statistics or {}).get("histogram") or {}
        edges = histogram.get("edges")
        self.reference = histogram.get("counts")
        self.edges = None if edges is None else np.asarray(edges, dtype=float)
        self.live = None if edges is None else np.zeros(len(edges) + 1, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        if self.edges is not None and len(values):
            bins = np.searchsorted(self.edges, values, side="left")
            self.live += np.bincount(bins, minlength=len(self.live))

    def psi(self) -> float | None:
        """None without a reference histogram, or with one bin (a feature
        whose reference values were all one value): PSI would be 0 whatever
        came."""
        if self.reference is None or len(self.reference) < 2:
            return None
        return population_stability_index(self.reference, self.live)


class _ScaledSums:
    """Column sums kept as ``sums * 2 ** exponents``, each column's values
    divided by a power of two above their size before they are added: finite
    values up to the largest float add up without overflow, to a finite
    mean. (Dividing by a power of two is exact, so ordinary values give the
    plain sums.)"""

    def __init__(self, width: int) -> None:
        self.sums = np.zeros(width)
        self.exponents = np.zeros(width, dtype=int)

    def add(self, X: np.ndarray) -> None:
        """Add the columns of the finite 2-D array ``X``."""
        if not len(X):
            return
        X = X.astype(np.float64, copy=False)
        largest = np.maximum(X.max(axis=0), -X.min(axis=0))
        exponents = np.maximum(self.exponents, np.frexp(largest)[1])
        self.sums = np.ldexp(self.sums, self.exponents - exponents)
        self.sums += np.ldexp(X, -exponents).sum(axis=0)
        self.exponents = exponents

    def means(self, rows: int) -> list[float | None]:
        """Each column's mean over ``rows`` rows (None: no rows)."""
        if not rows:
            return [None] * len(self.sums)
        with np.errstate(over="ignore"):
            means = np.ldexp(self.sums / rows, self.exponents)
        return [_finite_or_none(mean) for mean in means.tolist()]


def _finite_or_none(value: float | None) -> float | None:
    """A number for a JSON report: NaN and infinity are not JSON, so None."""
    return value if value is None or math.isfinite(value) else None


class DriftMonitor:
    """Accumulate live rows and their scores; compare them with the reference.

    ``monitoring`` is metadata.json's ``monitoring`` section. Feed it with
    ``add`` (as many times as needed, e.g. once per chunk of a file) and read
    the result with ``report``.
    """

    def __init__(
        self,
        monitoring: Mapping[str, Any] | None,
        feature_names: list[str],
        expected_anomaly_ratio: float | None,
        psi_warn: float = PSI_WARN,
        psi_alert: float = PSI_ALERT,
    ) -> None:
        if not (
            _is_finite_number(psi_warn)
            and _is_finite_number(psi_alert)
            and 0 < psi_warn <= psi_alert
        ):
            raise ValueError(
                f"psi_warn={_shown(psi_warn)} and psi_alert={_shown(psi_alert)}: "
                "give finite numbers, 0 < psi_warn <= psi_alert"
            )
        self.monitoring = dict(monitoring or {})
        self.feature_names = feature_names
        self.expected_anomaly_ratio = expected_anomaly_ratio
        self.psi_warn = psi_warn
        self.psi_alert = psi_alert
        statistics = self.monitoring.get("features") or {}
        self._reference = [statistics.get(name) or {} for name in feature_names]
        self._histograms = [_Histogram(stats) for stats in self._reference]
        self._score_histogram = _Histogram(self.monitoring.get("score"))
        self._low, self._high = _reference_bounds(self.monitoring, feature_names)
        width = len(feature_names)
        self._below = np.zeros(width, dtype=np.int64)
        self._above = np.zeros(width, dtype=np.int64)
        self._sums = _ScaledSums(width)
        self.rows = 0
        self.anomalies = 0
        self._score_sums = _ScaledSums(1)

    def add(self, X: np.ndarray, scores: np.ndarray, predictions: np.ndarray) -> None:
        """Count rows of ``preprocess_features`` output with their results.

        Raises:
            ValueError: ``X`` is not a finite float array of one column per
                feature, or ``scores`` and ``predictions`` are not one finite
                value per row; nothing is counted.
        """
        width = len(self.feature_names)
        X = np.asarray(X)
        scores = np.asarray(scores)
        predictions = np.asarray(predictions)
        if X.ndim != 2 or X.shape[1] != width or X.dtype.kind not in "fiu":
            raise ValueError(
                f"X must be a numeric array of shape (n_rows, {width}), as "
                f"preprocess_features returns, got {X.dtype} {X.shape}"
            )
        if (
            scores.shape != (len(X),)
            or predictions.shape != (len(X),)
            or scores.dtype.kind not in "fiu"
            or predictions.dtype.kind not in "biu"
        ):
            raise ValueError(
                f"give one score and one prediction (0 or 1) per row of X "
                f"({len(X)} rows), got {scores.dtype} {scores.shape} and "
                f"{predictions.dtype} {predictions.shape}"
            )
        if not (np.isfinite(X).all() and np.isfinite(scores).all()):
            raise ValueError(
                "X and scores must hold finite numbers only, as "
                "preprocess_features and score give them"
            )
        if not np.isin(predictions, (0, 1)).all():
            raise ValueError(
                "predictions must be 0 (normal) or 1 (anomaly), as predict gives "
                "them, not scikit-learn's 1 and -1"
            )
        for column, histogram in enumerate(self._histograms):
            histogram.add(X[:, column])
        self._score_histogram.add(scores)
        self._below += np.count_nonzero(np.less(X, self._low), axis=0)
        self._above += np.count_nonzero(np.greater(X, self._high), axis=0)
        self._sums.add(X)
        self._score_sums.add(scores.reshape(-1, 1))
        self.rows += len(X)
        self.anomalies += int(np.count_nonzero(predictions))

    def report(self) -> dict[str, Any]:
        """The drift report, in plain JSON types."""
        rows = self.rows
        means = self._sums.means(rows)
        features = {}
        reasons = []
        statuses = []
        for column, name in enumerate(self.feature_names):
            reference = self._reference[column]
            psi = self._histograms[column].psi()
            status = _psi_status(psi, self.psi_warn, self.psi_alert)
            statuses.append(status)
            outside = int(self._below[column] + self._above[column])
            features[name] = {
                "psi": psi,
                "status": status,
                "mean": means[column],
                "reference_mean": reference.get("mean"),
                "out_of_range": {
                    "count": outside,
                    "share": outside / rows if rows else None,
                    "below": int(self._below[column]),
                    "above": int(self._above[column]),
                    "reference_min": reference.get("min"),
                    "reference_max": reference.get("max"),
                },
            }
            if status in ("warn", "alert"):
                reasons.append(f"feature '{name}': PSI {psi:.3f} ({status})")
        score_psi = self._score_histogram.psi()
        score_status = _psi_status(score_psi, self.psi_warn, self.psi_alert)
        statuses.append(score_status)
        if score_status in ("warn", "alert"):
            reasons.append(f"score: PSI {score_psi:.3f} ({score_status})")
        known = [status for status in statuses if status != "unknown"]
        overall = max(known, key=STATUS_ORDER.index) if known else "unknown"
        return {
            "status": overall,
            "reasons": reasons,
            "samples": rows,
            "thresholds": {"psi_warn": self.psi_warn, "psi_alert": self.psi_alert},
            "reference": {
                "source": self.monitoring.get("source"),
                "partial": self.monitoring.get("partial"),
                "rows": (self.monitoring.get("reference") or {}).get("rows"),
            },
            "features": features,
            "score": {
                "psi": score_psi,
                "status": score_status,
                "mean": self._score_sums.means(rows)[0],
                "reference_mean": (self.monitoring.get("score") or {}).get("mean"),
            },
            "anomaly_ratio": {
                "observed": self.anomalies / rows if rows else None,
                "expected": self.expected_anomaly_ratio,
                "anomalies": self.anomalies,
            },
        }


def _reference_bounds(
    monitoring: Mapping[str, Any] | None, feature_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's reference min and max (-inf and inf where unknown)."""
    statistics = (monitoring or {}).get("features") or {}
    low, high = [], []
    for name in feature_names:
        known = statistics.get(name) or {}
        low.append(-np.inf if known.get("min") is None else float(known["min"]))
        high.append(np.inf if known.get("max") is None else float(known["max"]))
    return np.array(low), np.array(high)


# ---------------------------------------------------------------------------
# Batch scoring from the command line
#
#     python inference_example.py INPUT [-o OUTPUT]
#
# INPUT is a CSV file with a header row, a JSON-lines file (one object per
# line), or "-" for standard input. It is read and scored chunk by chunk, so
# memory stays bounded whatever its size. The output has the input's rows
# plus the columns "score" and "prediction", in the input's format.
# ---------------------------------------------------------------------------

CLI_FORMATS = ("csv", "jsonl")
# An output named "-" is standard output (as an input named "-" is stdin).
STANDARD_OUTPUT = "-"
RESULT_COLUMNS = ("score", "prediction")
# What JSON allows around its values (str.strip() would take more).
JSON_WHITESPACE = " \t\n\r"
MAX_REPORTED_ROWS = 20
PROGRESS_SECONDS = 2.0


class InputError(ValueError):
    """Rows of a batch input that cannot be scored, with their line numbers."""


# What JSON calls the values json.loads returns, for messages.
JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """What JSON calls ``value``: an object, an array, a string..."""
    return JSON_TYPES.get(type(value), type(value).__name__)


class RepeatedKeyError(ValueError):
    """A JSON object gives one key twice: which value was meant is a guess."""


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) < len(pairs):
        seen: set[str] = set()
        key = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise RepeatedKeyError(f"gives the key {_shown(key)} twice")
    return record


def read_json(text: str | bytes) -> Any:
    """``json.loads(text)``, refusing an object that gives a key twice
    (RepeatedKeyError), where json.loads would keep the last value."""
    return json.loads(text, object_pairs_hook=_refuse_repeated_keys)


@dataclass
class _Row:
    """One input row: its line number, its values by name, how to write it
    (its CSV cells, or its JSON line's text), and why it could not be read
    (None: it was)."""

    line: int
    record: dict[str, Any]
    original: Any
    problem: str | None = None


def _csv_rows(reader: Any, header: list[str], names: list[str]) -> Any:
    """Yield the rows of a strict CSV reader, each numbered by the line it
    starts on (a quoted cell may span lines); feature cells become floats
    where they parse (the rest stay text, and the row is refused when
    scored)."""
    wanted = [(index, name) for index, name in enumerate(header) if name in names]
    start = reader.line_num + 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells:
                continue
            problem = (
                f"has {len(cells)} fields, the header has {len(header)}"
                if len(cells) != len(header)
                else None
            )
            record = {
                name: _csv_number(cells[index])
                for index, name in wanted
                if index < len(cells)
            }
            yield _Row(line, record, cells, problem)
    except csv.Error as error:
        # Nothing after a broken quote can be read for sure: the run stops.
        raise InputError(f"line {start} is not CSV ({_csv_problem(error)})") from None


def _csv_problem(error: csv.Error) -> str:
    """What a strict CSV reader's error means, in words."""
    text = str(error)
    if "unexpected end of data" in text:
        return "a cell's opening quote (\") is never closed"
    if "field larger than field limit" in text:
        return f"{text}: a cell that long, or a quote never closed"
    if "expected after" in text:
        return f"{text}: text follows a cell's closing quote"
    return text


_INFINITIES = ("inf", "infinity")


def _csv_number(text: str) -> float | str:
    """The number in a CSV cell (or a setting's text), else the text
    (refused when scored).

    Stricter than float(), which also reads "1_0" as 10 and digits of other
    scripts: ASCII only, no digit separators. A number too large for a float
    ("1e400", 400 digits) stays text, so its error shows it as written
    rather than as inf.
    """
    if text.isascii() and "_" not in text:
        try:
            number = float(text)
        except ValueError:
            return text
        if math.isinf(number) and text.strip().lstrip("+-").lower() not in _INFINITIES:
            return text
        return number
    return text


_ARRAY_TO_LINES = "jq -c '.[]' FILE writes an array's objects so"
_BODY_TO_LINES = (
    "jq -c '.features[]' FILE writes the records of an API request body "
    '{"features": [...]} so'
)
_NOT_JSON_LINES = {
    # A first line that is a bare [ or {: one document over many lines.
    "[": "the input is one JSON document, not JSON lines: give one object per "
    f"line ({_ARRAY_TO_LINES})",
    "{": "the input is one JSON document, not JSON lines: give one object per "
    "line (jq -c . FILE writes an object so; jq -c '.features[]' FILE, the "
    'records of an API request body {"features": [...]})',
    # A first line that holds records, not one.
    "array": "the input's first line is a JSON array of records, not a record: "
    f"give one object per line ({_ARRAY_TO_LINES})",
    "body": "the input's first line is an API request body, not a record: give one "
    f"object per line ({_BODY_TO_LINES})",
}


def _records_line(record: Any) -> str | None:
    """What a first JSON line holds when it holds records, not one: "array"
    (an array of objects) or "body" (an API request body {"features": [objects]},
    with no other key); else None."""

    def records(value: Any) -> bool:
        return (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(item, dict) for item in value)
        )

    if records(record):
        return "array"
    if isinstance(record, dict) and record.keys() == {"features"}:
        return "body" if records(record["features"]) else None
    return None


def _jsonl_rows(stream: Any) -> Any:
    """Yield the rows of a JSON-lines stream."""
    first = True  # the first line that is not blank
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        was_first, first = first, False
        try:
            record = read_json(text)
        except RepeatedKeyError as error:
            yield _Row(line, {}, None, f"{error}: give each key once")
            continue
        except (ValueError, RecursionError) as error:
            # ValueError: not JSON, or an integer of more than 4300 digits.
            if was_first and text.strip() in ("[", "{"):  # JSON written whole
                raise InputError(_NOT_JSON_LINES[text.strip()]) from None
            reason = "nested too deeply" if isinstance(error, RecursionError) else error
            yield _Row(line, {}, None, f"is not valid JSON ({reason})")
            continue
        holds = _records_line(record) if was_first else None
        if holds:
            raise InputError(_NOT_JSON_LINES[holds])
        if not isinstance(record, dict):
            yield _Row(line, {}, None, f"is {json_type(record)}, not a JSON object")
            continue
        yield _Row(line, record, text)


class BatchScorer:
    """Score a CSV or JSON-lines stream in chunks and write the results.

    Args:
        inference: the loaded package.
        input_format: "csv" or "jsonl".
        chunk_size: rows read and scored at once (default: batch_size).
        skip_bad_rows: leave bad rows out and go on, instead of stopping.
        progress: where to report progress and warnings (None: silent).
        skipped: where to report each row left out (None: the progress
            stream): rows missing from the output are never silent on the
            command line, --quiet or not.
        drift: a DriftMonitor that sees every scored row (None: no drift).
    """

    def __init__(
        self,
        inference: ModelInference,
        input_format: str,
        chunk_size: int | None = None,
        skip_bad_rows: bool = False,
        progress: Any = None,
        drift: DriftMonitor | None = None,
        skipped: Any = None,
    ) -> None:
        self.inference = inference
        self.input_format = input_format
        self.chunk_size = chunk_size or inference.batch_size
        self.skip_bad_rows = skip_bad_rows
        self.progress = progress
        self.skipped = progress if skipped is None else skipped
        self.drift = drift
        self.rows = 0
        self.anomalies = 0
        self.bad_rows: list[tuple[int, str]] = []
        self.started = time.monotonic()

    def run(self, source: Any, sink: Any) -> None:
        """Read ``source`` (a text stream), write results to ``sink``.

        Raises:
            InputError: a row cannot be scored (unless skip_bad_rows), the
                input has no rows, or it already has a result column.
        """
        self.started = time.monotonic()
        last_report = self.started
        if self.input_format == "csv":
            # Strict: a stray quote is an error, not the rest of the file
            # read as one cell.
            reader = csv.reader(source, strict=True)
            try:
                header = next(reader, None)
            except csv.Error as error:
                raise InputError(
                    f"the CSV header is not CSV ({_csv_problem(error)})"
                ) from None
            if header is None:
                raise InputError("the CSV input is empty: it needs a header row")
            self._check_columns(header)
            repeated = sorted(name for name, n in Counter(header).items() if n > 1)
            if repeated:
                raise InputError(
                    f"the CSV header names the column {repeated[0]!r} more than "
                    "once: keep one column of each name"
                )
            missing = [n for n in self.inference.feature_names if n not in header]
            if missing and self.inference.missing_features != "zero":
                raise InputError(
                    f"the CSV header has no column for the features {missing}: "
                    "every feature in ModelInference.feature_names is needed"
                )
            rows = _csv_rows(reader, header, self.inference.feature_names)
            writer = csv.writer(sink, lineterminator="\n")
            writer.writerow([*header, *RESULT_COLUMNS])

            def write(row: _Row, score: float, prediction: int) -> None:
                writer.writerow([*row.original, repr(score), prediction])

        else:
            rows = _jsonl_rows(source)

            def write(row: _Row, score: float, prediction: int) -> None:
                # The line as it came (json.dumps would respell its numbers,
                # 1e400 as Infinity), the results added before its last "}".
                self._check_columns(row.record)
                text = row.original.rstrip(JSON_WHITESPACE)[:-1]
                text = text.rstrip(JSON_WHITESPACE) + (", " if row.record else "")
                sink.write(f'{text}"score": {score!r}, "prediction": {prediction}}}\n')

        chunk: list[_Row] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= self.chunk_size:
                self._score(chunk, write)
                chunk = []
                now = time.monotonic()
                if self.progress is not None and now - last_report >= PROGRESS_SECONDS:
                    last_report = now
                    self.report_progress()
        if chunk:
            self._score(chunk, write)
        if self.rows == 0:
            raise InputError(
                f"none of its {len(self.bad_rows)} rows could be scored"
                if self.bad_rows
                else "the input has no rows to score"
            )

    def _check_columns(self, columns: Any) -> None:
        taken = [name for name in RESULT_COLUMNS if name in columns]
        if taken:
            raise InputError(
                f"the input already has a {taken[0]!r} column, which the output "
                "adds: rename or drop it"
            )

    def _score(self, chunk: list[_Row], write: Any) -> None:
        inference = self.inference
        if any(row.problem for row in chunk):
            # A line that could not be read (a CSV line of another width,
            # JSON that is not an object...): never scored, even when the
            # features it does have are numbers.
            chunk = self._drop_bad_rows(chunk)
        try:
            X, notes = self._preprocess(chunk)
        except ValueError:
            chunk = self._drop_bad_rows(chunk)
            X, notes = self._preprocess(chunk)
        if self.progress is not None:
            for message in notes.messages:
                print(message, file=self.progress)
        scores = inference.score(X) if len(X) else np.empty(0)
        predictions = scores > inference.threshold
        if self.drift is not None:
            self.drift.add(X, scores, predictions)
        for row, score, prediction in zip(
            chunk, scores.tolist(), predictions.astype(int).tolist(), strict=True
        ):
            write(row, score, prediction)
            self.rows += 1  # counted as written: a later row may stop the run
        self.anomalies += int(np.count_nonzero(predictions))

    def _preprocess(self, chunk: list[_Row]) -> tuple[np.ndarray, _Notes]:
        """preprocess_features of the chunk's records, and its warnings
        (a filled feature...) naming input lines, for the progress stream:
        predict's log would name rows counted from the chunk's start."""
        notes = _Notes([row.line for row in chunk])
        X = self.inference._preprocess([row.record for row in chunk], None, notes)
        return X, notes

    def _drop_bad_rows(self, chunk: list[_Row]) -> list[_Row]:
        good = []
        for row in chunk:
            # predict's own checks, on this row alone: they cannot disagree.
            problem = row.problem or self.inference._record_problem(row.record)
            if problem is None:
                good.append(row)
                continue
            self.bad_rows.append((row.line, problem))
            if self.skip_bad_rows and self.skipped is not None:
                print(f"skipped line {row.line}: {problem}", file=self.skipped)
        if not self.skip_bad_rows:
            raise InputError(self.bad_rows_text())
        return good

    def bad_rows_text(self) -> str:
        """The bad rows found so far, with their line numbers."""
        shown = "; ".join(
            f"line {line}: {problem}"
            for line, problem in self.bad_rows[:MAX_REPORTED_ROWS]
        )
        more = len(self.bad_rows) - MAX_REPORTED_ROWS
        return (
            f"{len(self.bad_rows)} bad row(s): {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + " (fix them, or pass --skip-bad-rows to leave them out)"
        )

    def report_progress(self) -> None:
        """Print the rows scored so far on the progress stream."""
        print(
            f"scored {self.rows} rows, {self.anomalies} anomalies, "
            f"{len(self.bad_rows)} skipped, "
            f"{time.monotonic() - self.started:.1f} s",
            file=self.progress,
            flush=True,
        )


def _input_format(path: str, given: str | None) -> str:
    """The input's format, as given or told by its name; a folder is refused
    here, before it is opened (Windows says "Permission denied" of one)."""
    if path != "-" and os.path.isdir(path):
        raise InputError(f"cannot read {path}: it is a folder; give a file")
    if given:
        return given
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise InputError(
        f"cannot tell the format of {path!r} from its name: "
        "pass --format csv or --format jsonl"
    )


# What to do when an output cannot be written, by the error's errno.
_WRITE_FIXES = {
    errno.ENOSPC: "free some space on its disk, or write it to another disk",
    errno.EDQUOT: "free some of your disk quota, or write it to another disk",
    errno.ENOENT: "its folder does not exist: create it, or give another path",
    errno.EACCES: (
        "this user may not write there (or, on Windows, another program has "
        "the file open): give another path"
    ),
    errno.EROFS: "its disk is read-only: give a path on another disk",
}


def _cannot_write(name: Any, error: OSError) -> OSError:
    """The error of an output that cannot be written, naming it and, where
    the cause is one of _WRITE_FIXES's, saying what to do."""
    fix = _WRITE_FIXES.get(error.errno)
    return OSError(
        f"cannot write {name}: {error.strerror or error}" + (f": {fix}" if fix else "")
    )


class _Output:
    """A text stream whose errors (a full disk...) name what it writes to;
    a reader that went away (BrokenPipeError) is left as it is. Closing it
    closes the stream."""

    def __init__(self, stream: Any, name: str) -> None:
        self.stream = stream
        self.name = name

    @contextmanager
    def _named(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as error:
            raise _cannot_write(self.name, error) from None

    def write(self, text: str) -> int:
        with self._named():
            return self.stream.write(text)

    def flush(self) -> None:
        with self._named():
            self.stream.flush()

    def close(self) -> None:
        with self._named():
            self.stream.close()

    def __enter__(self) -> "_Output":
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


@contextmanager
def _replaced_when_done(path: Path) -> Iterator[_Output]:
    """A text stream to a temporary file next to ``path``, renamed to it when
    the block ends without an error and removed otherwise. The file gets the
    permissions of the file it replaces, or those a new file gets (the
    umask's), not the temporary file's; an existing file that the user may
    not write is refused at once. Its errors name ``path``.

    A symbolic link is written through: its target is replaced. A device or
    a pipe (``/dev/null``, ``/dev/stdout``, a FIFO) is written to directly.
    """
    if path.is_dir():
        raise OSError(f"cannot write {path}: it is a folder; give a file name")
    name = str(path)
    if _written_in_place(path):
        try:
            stream = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as error:
            raise _cannot_write(name, error) from None
        with _Output(stream, name) as output:
            yield output
        return
    path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as error:
        raise _cannot_write(name, error) from None
    else:
        # Renaming over it needs the folder's permission alone: ask the file's.
        if not os.access(path, os.W_OK):
            raise OSError(
                f"cannot write {name}: it is read-only for this user: make it "
                "writable, or give another file name"
            )
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise _cannot_write(name, error) from None
    try:
        with _Output(open(handle, "w", encoding="utf-8", newline=""), name) as output:
            yield output
        try:
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except OSError as error:
            raise _cannot_write(name, error) from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _written_in_place(path: Path | str) -> bool:
    """Whether ``path`` is something that exists and is not a regular file
    (a device, a pipe): an output written to where it is, never replaced."""
    return os.path.exists(path) and not os.path.isfile(path)


_STANDARD_STREAMS = {0: "standard input", 1: "standard output"}


def _same_file(targets: Mapping[str, Any]) -> str | None:
    """Say which two of the labelled files are one: each a path, 0 or 1 for
    standard input or output (redirected from or to a file), or None (not
    given). A device or a pipe may take more than one output."""
    seen: dict[Any, str] = {}
    for label, target in targets.items():
        if target is None:
            continue
        try:
            info = os.fstat(target) if isinstance(target, int) else os.stat(target)
        except OSError:  # a file to come: known by its path
            key: Any = None if isinstance(target, int) else os.path.realpath(target)
        else:
            regular = stat.S_ISREG(info.st_mode)
            key = (info.st_dev, info.st_ino) if regular else None
        if key is None:
            continue
        shown = (
            f"{label} ({_STANDARD_STREAMS[target]})"
            if isinstance(target, int)
            else f"{label} {target}"
        )
        if key in seen:
            return f"{shown} is the same file as {seen[key]}"
        seen[key] = shown
    return None


# Signals that stop the command line as SIGTERM does (those the platform has:
# Windows has no SIGHUP or SIGQUIT).
STOP_SIGNALS = [
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT")
    if hasattr(signal, name)
]


def _exit_on_signal(signum: int, frame: Any) -> None:
    """Stop like Ctrl-C does, so that unfinished output files are removed."""
    raise SystemExit(128 + signum)


def _output_argument(text: str) -> Path | str:
    """An output argument: ``-`` is standard output, anything else a path."""
    if not text:
        import argparse

        raise argparse.ArgumentTypeError("empty: give a file name, or - for stdout")
    return STANDARD_OUTPUT if text == STANDARD_OUTPUT else Path(text)


def _open_input(path: str) -> Any:
    """The input file (not a folder: see _input_format), opened as text; its
    errors name it and the fix."""
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise OSError(f"cannot read {path}: no such file; check the path") from None
    except OSError as error:
        fix = (
            "give the user running this read access to it, or a copy it can read"
            if error.errno in (errno.EACCES, errno.EPERM)
            else "check the path"
        )
        raise OSError(f"cannot read {path}: {error.strerror or error}; {fix}") from None


def _self_test(inference: ModelInference) -> int:
    """Print the result of the package's self-test inputs."""
    inputs = inference.manifest["self_test"]["inputs"]
    try:
        result = inference.predict(inputs)
    except TimeoutError:
        source = (
            "MODEL_TIMEOUT"
            if "MODEL_TIMEOUT" in inference.settings.overrides
            else "inference_config.timeout_seconds"
        )
        print(
            f"error: the self-test's {len(inputs)} rows were not scored within "
            f"timeout_seconds={inference.timeout_seconds} ({source}): set "
            "MODEL_TIMEOUT to more seconds",
            file=sys.stderr,
        )
        return 2
    stdout = _Output(sys.stdout, "standard output")
    try:
        stdout.write(json.dumps(result, indent=2) + "\n")
        stdout.flush()
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: score a file, or print the self-test's predictions."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Score a CSV or JSON-lines file with this deployment package. "
        "Without INPUT, score the package's self-test inputs and print the result.",
        epilog="Exit status: 0 scored; 1 bad input rows or a package that fails "
        "its checks; 2 usage (bad arguments, files that cannot be read or "
        "written, bad settings, a self-test slower than timeout_seconds).",
    )
    parser.add_argument("input", nargs="?", help="CSV or JSON-lines file, or -")
    parser.add_argument(
        "-o",
        "--output",
        type=_output_argument,
        help="result file, or - for stdout (the default)",
    )
    parser.add_argument("--format", choices=CLI_FORMATS, help="input format")
    parser.add_argument("--chunk-size", type=int, help="rows scored at once")
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="report bad rows on stderr and leave them out, instead of stopping",
    )
    parser.add_argument(
        "--drift-report",
        type=_output_argument,
        metavar="PATH",
        help="also write a JSON drift report of every scored row to PATH "
        "(- for stdout, when -o names a file)",
    )
    parser.add_argument(
        "--psi-warn",
        type=float,
        help=f"the drift report's warn level (default {PSI_WARN})",
    )
    parser.add_argument(
        "--psi-alert",
        type=float,
        help=f"the drift report's alert level (default {PSI_ALERT})",
    )
    parser.add_argument(
        "--model-dir",
        default=Path(__file__).resolve().parent,
        help="the package folder (default: the folder of this script)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress, summary or warnings on stderr (skipped rows and "
        "errors are still reported)",
    )
    args = parser.parse_args(argv)
    if args.input is None:
        for_input = [
            option
            for option, value in (
                ("-o", args.output),
                ("--format", args.format),
                ("--chunk-size", args.chunk_size),
                ("--skip-bad-rows", args.skip_bad_rows or None),
                ("--drift-report", args.drift_report),
                ("--psi-warn", args.psi_warn),
                ("--psi-alert", args.psi_alert),
            )
            if value is not None
        ]
        if for_input:
            parser.error(
                f"{', '.join(for_input)}: for scoring INPUT, which was not given "
                "(without INPUT the self-test runs and prints its result)"
            )
    if args.chunk_size is not None and args.chunk_size < 1:
        parser.error(f"--chunk-size {args.chunk_size}: give 1 or more rows")
    if args.drift_report is None and (args.psi_warn, args.psi_alert) != (None, None):
        parser.error(
            "--psi-warn and --psi-alert set the drift report's levels: add "
            "--drift-report PATH"
        )
    psi_warn = PSI_WARN if args.psi_warn is None else args.psi_warn
    psi_alert = PSI_ALERT if args.psi_alert is None else args.psi_alert
    if not (math.isfinite(psi_warn) and math.isfinite(psi_alert)) or not (
        0 < psi_warn <= psi_alert
    ):
        parser.error(
            f"--psi-warn {psi_warn} and --psi-alert {psi_alert}: give finite "
            "numbers, 0 < --psi-warn <= --psi-alert"
        )
    # The scored rows and the drift report: a path, or None for stdout.
    output = None if args.output in (None, STANDARD_OUTPUT) else args.output
    report_path = None if args.drift_report == STANDARD_OUTPUT else args.drift_report
    if args.drift_report == STANDARD_OUTPUT and output is None:
        parser.error(
            "--drift-report -: the scored rows go to stdout already; give -o a "
            "file, or --drift-report a file"
        )
    if sys.stdout is None:  # started with it closed (>&-)
        stdout_for = None
        if args.input is None:
            stdout_for = (
                "without INPUT the self-test's result goes there: run it with "
                "standard output open, or redirected to a file (> FILE)"
            )
        elif output is None:
            stdout_for = "the scored rows go there: pass -o FILE"
        elif args.drift_report == STANDARD_OUTPUT:
            stdout_for = "--drift-report - writes there: pass --drift-report FILE"
        if stdout_for:
            print(
                f"error: standard output is closed, and {stdout_for}", file=sys.stderr
            )
            return 2
    try:
        inference = ModelInference(args.model_dir)
    except (ConfigurationError, VersionMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:  # --model-dir is no folder: a usage error
        print(f"error: {error}", file=sys.stderr)
        return 2 if not Path(args.model_dir).is_dir() else 1
    except (IntegrityError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.input is None:
        return _self_test(inference)
    progress = None if args.quiet else sys.stderr
    files = {
        "the input": 0 if args.input == "-" else args.input,
        "--output": 1 if output is None else output,
    }
    if args.drift_report is not None:
        files["--drift-report"] = 1 if report_path is None else report_path
    clash = _same_file(files)
    if clash:
        print(f"error: {clash}: give each its own file", file=sys.stderr)
        return 2
    try:
        drift = (
            inference.drift_monitor(psi_warn, psi_alert) if args.drift_report else None
        )
        input_format = _input_format(args.input, args.format)
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not text.
        source = (
            io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
            if args.input == "-"
            else _open_input(args.input)
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scorer = BatchScorer(
        inference,
        input_format,
        args.chunk_size,
        args.skip_bad_rows,
        progress,
        drift,
        skipped=sys.stderr,
    )
    stdout = _Output(sys.stdout, "standard output")
    try:
        with source, ExitStack() as outputs:
            sink = (
                stdout
                if output is None
                else outputs.enter_context(_replaced_when_done(output))
            )
            report = None
            if drift is not None:
                report = (
                    stdout
                    if report_path is None
                    else outputs.enter_context(_replaced_when_done(report_path))
                )
            scorer.run(source, sink)
            if drift is not None:
                json.dump(drift.report(), report, indent=2, allow_nan=False)
                report.write("\n")
            # Now, not when the files are closed: an output that cannot be
            # written (a full disk) leaves neither behind.
            sink.flush()
            if report is not None:
                report.flush()
    except InputError as error:
        # Stdout, a device or a pipe has had the rows up to the error.
        if output is not None and not _written_in_place(output):
            said = f"; {output} was not written"
        elif scorer.rows:
            rows = (
                f"{scorer.rows} scored rows were"
                if scorer.rows > 1
                else "1 scored row was"
            )
            where = "stdout" if output is None else output
            said = f"; {rows} already written to {where}"
        else:
            said = ""
        print(f"error: {args.input}: {error}{said}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as error:
        print(
            f"error: {args.input} is not UTF-8 text ({error.reason}): save it as UTF-8",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        raise  # the reader went away: not an error of the input or output
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if progress is not None:
        scorer.report_progress()
        if drift is not None:
            where = "stdout" if report_path is None else report_path
            print(f"drift report: {where}", file=progress)
    return 0


def _run_command_line() -> int:
    """main(), with Ctrl-C, SIGTERM, SIGHUP (its terminal closed), SIGQUIT
    and a reader that goes away (``| head``) ending the run quietly;
    unfinished output files are removed on the way out. A signal already
    ignored (SIGHUP under nohup) stays ignored."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _exit_on_signal)
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted: nothing more was written", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # Python would fail again flushing stdout at exit: point it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    try:
        raise SystemExit(_run_command_line())
    finally:
        _restore_import_path()
