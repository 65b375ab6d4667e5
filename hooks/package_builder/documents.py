"""Build metadata.json and deployment_manifest.json (standard library only).

Both follow the schemas of the package specification: every key is present,
and a value nobody knows is null, never invented.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .answers import AnswerError, Answers, feature_names_problem, unreadable
from .archive import SUMS_FILE, file_hashes, package_files

PACKAGE_FORMAT_VERSION = "1.0"
MODEL_FILE = "model.joblib"
SCALER_FILE = "scaler.joblib"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "deployment_manifest.json"
VALIDATION_SCRIPT = "validate_model.py"
INFERENCE_EXAMPLE = "inference_example.py"
API_SERVICE = "serve.py"
SPARK_SCORING = "spark_scoring.py"
SPARK_REQUIREMENTS_FILE = "requirements-spark.txt"
REQUIREMENTS_FILE = "requirements.txt"
README_FILE = "README.md"

METADATA_SCHEMA: dict[str, list[str]] = {
    "model_info": [
        "version",
        "created_at",
        "model_type",
        "training_source",
        "export_file",
        "training_id",
    ],
    "training_info": [
        "training_samples",
        "feature_names",
        "feature_count",
        "export_file_size",
        "training_duration",
        "model_parameters",
    ],
    "evaluation_info": [
        "basic_metrics",
        "cross_validation_score",
        "feature_importance",
    ],
    "deployment_info": ["status", "deployed_at", "deployed_by"],
}
BASIC_METRICS = [
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "threshold_value",
    "anomaly_ratio",
]
REQUIRED_GIVEN_SECTIONS = ["model_info", "training_info", "evaluation_info"]
# The kind of value the specification's schema gives each key that a
# training service's metadata.json may hold; null is allowed everywhere.
GIVEN_KINDS: dict[str, dict[str, str]] = {
    "model_info": {
        **dict.fromkeys(METADATA_SCHEMA["model_info"], "string"),
        "created_at": "time",
    },
    "training_info": {
        "training_samples": "count",
        "feature_count": "count",
        "export_file_size": "count",
        "training_duration": "seconds",
        "model_parameters": "object",
    },
    "evaluation_info": {
        "basic_metrics": "object",
        "cross_validation_score": "number",
        "feature_importance": "object",
    },
    "evaluation_info.basic_metrics": {
        **dict.fromkeys(["accuracy", "precision", "recall", "f1_score"], "share"),
        "anomaly_ratio": "share",
        "threshold_value": "number",
    },
}
KIND_RULES: dict[str, tuple[Any, str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "count": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a whole number, 0 or more",
    ),
    "seconds": (lambda v: _is_number(v) and v >= 0, "a number of seconds, 0 or more"),
    "number": (lambda v: _is_number(v), "a number"),
    "share": (lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
    "time": (
        lambda v: isinstance(v, str) and _is_iso_time(v),
        "an ISO 8601 time such as 2024-12-01T14:30:22Z",
    ),
}


def _is_iso_time(text: str) -> bool:
    if text.endswith("Z"):  # UTC; Python before 3.11 does not read the Z
        text = text[:-1] + "+00:00"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ModelFacts:
    """What loading the model and scaler told about them."""

    model_type: str
    model_parameters: dict[str, Any]
    feature_names: list[str]
    threshold: float
    training_samples: int | None = None
    anomaly_ratio: float | None = None
    environment: dict[str, str | None] = field(default_factory=dict)
    # The class of the detector itself (a Pipeline's last step).
    detector_type: str = ""
    # The class of the model itself (Pipeline for a Pipeline).
    model_class: str = ""


def _letters(text: str) -> str:
    """``text`` lower-cased, letters and digits only: IsolationForest and
    isolation_forest compare equal."""
    return "".join(char for char in text.lower() if char.isalnum())


def _names_model(model_type: str, facts: ModelFacts) -> bool:
    """Whether a given model_type names the model: its detector's class as
    words of their own ("IsolationForest", "sklearn.ensemble.IsolationForest",
    "isolation_forest_v1", "Isolation Forest model", "Pipeline(StandardScaler,
    IsolationForest)"), optionally followed by a version (IsolationForestV2,
    IsolationForest2), or the class of the model itself ("Pipeline",
    "sklearn.pipeline.Pipeline"). A name that runs on from letters before or
    after the class's (SGDOneClassSVM for a OneClassSVM), or from more digits
    (Detector30 for a Detector3), names another."""
    words = re.findall(
        r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", facts.detector_type
    )
    detector = r"[\s_-]*".join(map(re.escape, words))
    # A version after it: IsolationForest2, _v2, V2 (after a class that ends
    # in a digit, only with a separator or a v).
    version = (
        r"(?:[\s_-]+[vV]?\d+|[vV]\d+)?"
        if words and words[-1].isdigit()
        else r"(?:[\s_-]*[vV]?\d+)?"
    )
    if words and re.search(
        rf"(?<![A-Za-z0-9]){detector}{version}(?![A-Za-z0-9])",
        model_type,
        re.IGNORECASE,
    ):
        return True
    return bool(facts.model_class) and _letters(
        model_type.rsplit(".", 1)[-1]
    ) == _letters(facts.model_class)


def iso_time(moment: datetime) -> str:
    """Return ``moment`` as ISO 8601 UTC with a Z suffix."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Deeper than any metadata: more would exhaust Python's recursion on the way
# to the package (copying the sections, writing them indented).
MAX_METADATA_NESTING = 100
# Larger than any metadata, as given and as written indented into the
# package (whose manifest, holding much of it, its readers take up to 64 MiB
# of): metadata.json describes a model, not its data.
MAX_METADATA_BYTES = 8 * 1024 * 1024


class _NotMetadata(ValueError):
    """What makes a given metadata.json unusable, as its refusal says it."""


def _refuse_constant(name: str) -> None:
    raise _NotMetadata(
        f"holds {name}, which is not a JSON number; fix it in the metadata, or "
        "write null"
    )


def _too_large(text: str) -> _NotMetadata:
    shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
    return _NotMetadata(
        f"holds the number {shown}, too large for a float (readers of JSON "
        "take it as Infinity, which is not JSON); fix it in the metadata"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _too_large(text)
    return value


def _float_sized_int(text: str) -> int:
    """A JSON whole number, refused beyond a float's range (as _finite_float
    refuses a fraction), before Python's limit on digits would."""
    if len(text.lstrip("-")) > len(str(int(sys.float_info.max))):
        raise _too_large(text)
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise _too_large(text)
    return value


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _NotMetadata(
                f"gives the key {json.dumps(key)[:80]} twice in one object, so "
                "which one counts is unclear; keep one of them in the metadata"
            )
        data[key] = value
    return data


def _too_deep(data: Any) -> str | None:
    """The top-level key (or list index) under which lists and objects nest
    in ``data`` more than MAX_METADATA_NESTING deep, if anywhere (a loop, not
    a recursion)."""
    pending: list[tuple[Any, int, str | None]] = [(data, 0, None)]
    while pending:
        value, depth, top = pending.pop()
        if isinstance(value, (dict, list)):
            if depth == MAX_METADATA_NESTING:
                return top
            items = value.items() if isinstance(value, dict) else enumerate(value)
            pending.extend(
                (item, depth + 1, str(name) if top is None else top)
                for name, item in items
            )
    return None


def _not_unicode(data: Any) -> str | None:
    """Where in ``data`` a text (a key or a value) is not valid Unicode, if
    anywhere: JSON's \\u escapes can write half of a surrogate pair (\\ud800),
    which no Unicode encoding stores, so metadata.json could not be written."""
    pending: list[tuple[str, Any]] = [("", data)]  # a loop: files nest deeply
    while pending:
        where, value = pending.pop()
        if isinstance(value, str) and not _is_unicode(value):
            return _shown(where)
        if isinstance(value, dict):
            for key in value:
                if not _is_unicode(key):
                    return f"the key {_shown(_key_path(where, key))}"
            items = [(_key_path(where, key), item) for key, item in value.items()]
        elif isinstance(value, list):
            items = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        else:
            continue
        pending.extend(reversed(items))  # popped in the file's order
    return None


def _key_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    """``text`` with what cannot be encoded written as escapes (\\ud800)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def read_given_metadata(path: Path) -> dict[str, Any]:
    """Read the training service's metadata.json and check its sections and
    the kind of each value the specification's schema defines."""
    try:
        with open(path, "rb") as stream:
            given = stream.read(MAX_METADATA_BYTES + 1)
        too_large = _NotMetadata(
            f"takes more than {MAX_METADATA_BYTES} bytes (as given, or written "
            "indented as the package holds it), more than any metadata of a "
            "model; leave large data out of it"
        )
        if len(given) > MAX_METADATA_BYTES:
            raise too_large
        data = json.loads(
            given.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_float_sized_int,
            object_pairs_hook=_object_without_repeats,
        )
        deep = _too_deep(data)
        if deep is not None:
            raise _NotMetadata(
                f"nests lists or objects more than {MAX_METADATA_NESTING} deep "
                f"under {json.dumps(deep[:80])}{'...' if len(deep) > 80 else ''}; "
                "give the training service's metadata.json"
            )
        written = json.dumps(data, indent=2, ensure_ascii=False)
        if len(written.encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
            raise too_large
    except OSError as error:
        raise unreadable("metadata_path", str(path), error) from None
    except _NotMetadata as error:
        raise AnswerError("metadata_path", str(path), str(error)) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise AnswerError(
            "metadata_path",
            str(path),
            f"not valid JSON ({error}); give the training service's metadata.json",
        ) from None
    except RecursionError:
        raise AnswerError(
            "metadata_path",
            str(path),
            "nests lists or objects too deeply to read; give the training "
            "service's metadata.json",
        ) from None
    if not isinstance(data, dict):
        raise AnswerError("metadata_path", str(path), "must hold a JSON object")
    where = _not_unicode(data)
    if where is not None:
        raise AnswerError(
            "metadata_path",
            str(path),
            f"{where} is not valid Unicode text (a \\u escape writes half of a "
            "surrogate pair); fix it in the metadata: write the character itself, "
            "or both halves of its pair",
        )
    for section in REQUIRED_GIVEN_SECTIONS:
        if not isinstance(data.get(section), dict):
            raise AnswerError(
                "metadata_path",
                str(path),
                f"has no '{section}' object; it must have the specification's "
                f"sections {', '.join(REQUIRED_GIVEN_SECTIONS)}",
            )
    # The build computes the package's monitoring section (monitoring.py).
    if not is_unknown(data.get("monitoring")):
        raise AnswerError(
            "metadata_path",
            str(path),
            f"has a 'monitoring' key ({json.dumps(data['monitoring'])[:80]}), but "
            "the package's monitoring section is the build's own (reference "
            "statistics computed from reference_data_path, else from the "
            "scaler); remove the key from the metadata (and give "
            "reference_data_path for statistics of your data)",
        )
    names = data["training_info"].get("feature_names")
    if is_unknown(names) and names is not None:  # "" or {} says nothing
        names = data["training_info"]["feature_names"] = None
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) and n for n in names)
    ):
        raise AnswerError(
            "metadata_path",
            str(path),
            "training_info.feature_names must be a list of non-empty strings",
        )
    problem = names and feature_names_problem(names)
    if problem:
        raise AnswerError(
            "metadata_path", str(path), f"training_info.feature_names: {problem}"
        )
    for where, kinds in GIVEN_KINDS.items():
        section = data
        for part in where.split("."):
            section = section.get(part) if isinstance(section, dict) else None
        for key, kind in kinds.items():
            value = section.get(key) if isinstance(section, dict) else None
            accepts, meaning = KIND_RULES[kind]
            if is_unknown(value) and not accepts(value):
                # "" or {} where another kind belongs says nothing, as null.
                if value is not None:
                    section[key] = None
                continue
            if not accepts(value):
                raise AnswerError(
                    "metadata_path",
                    str(path),
                    f"{where}.{key} is {json.dumps(value)[:80]}, which is not "
                    f"{meaning}; fix it in the metadata, or set it to null",
                )
    return data


def is_unknown(value: Any) -> bool:
    """Whether a given value says nothing: null, an empty string or object."""
    return value is None or value == "" or value == {}


def _complete(metadata: dict[str, Any]) -> dict[str, Any]:
    """Return ``metadata`` in schema order, every missing schema key as null.

    Keys beyond the schema are kept, after the schema's own.
    """
    ordered: dict[str, Any] = {}
    for section, keys in METADATA_SCHEMA.items():
        part = metadata.get(section) or {}
        ordered[section] = {key: part.get(key) for key in keys} | part
    evaluation = ordered["evaluation_info"]
    metrics = evaluation["basic_metrics"]
    if not isinstance(metrics, dict):
        metrics = {}
    evaluation["basic_metrics"] = {
        key: metrics.get(key) for key in BASIC_METRICS
    } | metrics
    return ordered | {k: v for k, v in metadata.items() if k not in ordered}


def build_metadata(
    answers: Answers,
    facts: ModelFacts,
    given: dict[str, Any] | None = None,
    demo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return metadata.json for this package.

    ``given`` is the training service's metadata: its values are kept and
    only what it lacks is filled in. ``demo`` is what training the demo
    model measured. Without either, the model describes itself.
    """
    built = iso_time(answers.build_time)
    metadata = copy.deepcopy(given) if given else {}
    training = metadata.setdefault("training_info", {})
    evaluation = metadata.setdefault("evaluation_info", {})
    known = {
        "model_info": {
            "version": answers.version,
            "created_at": built,
            "model_type": facts.model_type,
            "training_source": answers.training_source,
            "export_file": answers.export_file,
            "training_id": answers.training_id,
        },
        "training_info": {
            "training_samples": facts.training_samples,
            "model_parameters": facts.model_parameters,
        },
        "evaluation_info": {
            "basic_metrics": {
                "threshold_value": facts.threshold,
                "anomaly_ratio": facts.anomaly_ratio,
            }
        },
    }
    if demo:
        known["model_info"]["training_source"] = demo["training_source"]
        known["training_info"].update(
            training_samples=demo["training_samples"],
            training_duration=demo["training_duration"],
            dataset=demo["dataset"],
        )
        known["evaluation_info"] = {
            key: demo[key]
            for key in (
                "basic_metrics",
                "cross_validation_score",
                "cross_validation_method",
                "feature_importance",
                "feature_importance_method",
            )
        }
    given_type = metadata.get("model_info", {}).get("model_type")
    if not is_unknown(given_type) and not _names_model(given_type, facts):
        raise AnswerError(
            "metadata_path",
            str(answers.metadata_file),
            f"model_info.model_type is {given_type!r}, but the model in "
            f"model_path is {facts.model_type}; give the metadata of this model",
        )
    given_parameters = metadata.get("training_info", {}).get("model_parameters")
    for key, value in (given_parameters or {}).items():
        actual = facts.model_parameters.get(key, value)
        scalars = (str, int, float, bool, type(None))
        # A string may record any value ("100", as MLflow writes parameters).
        if (
            isinstance(value, scalars)
            and isinstance(actual, scalars)
            and value != actual
            and not (isinstance(value, str) and value == str(actual))
        ):
            raise AnswerError(
                "metadata_path",
                str(answers.metadata_file),
                f"training_info.model_parameters.{key} is {json.dumps(value)}, but "
                f"the model in model_path has {json.dumps(actual)}; give the "
                "metadata of this model",
            )
    for section, values in known.items():
        part = metadata.setdefault(section, {})
        for key, value in values.items():
            if is_unknown(part.get(key)):
                part[key] = value
    metrics = evaluation.get("basic_metrics")
    # Metrics the training service measured, at a threshold it need not
    # state, get nothing of the model's own: its threshold would read as
    # theirs, and its contamination as their anomaly ratio.
    if isinstance(metrics, dict) and all(map(is_unknown, metrics.values())):
        for key, value in known["evaluation_info"]["basic_metrics"].items():
            if is_unknown(metrics.get(key)):
                metrics[key] = value
    given_count = training.get("feature_count")
    if given_count is not None and given_count != len(facts.feature_names):
        raise AnswerError(
            "metadata_path",
            str(answers.metadata_file),
            f"training_info.feature_count is {given_count}, the model has "
            f"{len(facts.feature_names)} features; give the metadata of this "
            "model, or set feature_count to null",
        )
    training["feature_names"] = list(facts.feature_names)
    training["feature_count"] = len(facts.feature_names)
    metadata["deployment_info"] = {
        "status": "deployed",
        "deployed_at": built,
        "deployed_by": answers.deployed_by,
    }
    metadata["build_environment"] = dict(facts.environment)
    return _complete(metadata)


def numpy_floor(pickled_modules: Iterable[str]) -> str:
    """The lowest numpy that requirements.txt allows for artifacts whose
    pickles name ``pickled_modules``: 2.0 when they name numpy._core, where
    numpy 2 keeps what numpy 1 kept in numpy.core (numpy 1 has no such
    module; 1.26's stand-ins load some such pickles, not all); else the
    specification's 1.21.0, since numpy 2 still loads numpy.core's names."""
    core = any(
        name == "numpy._core" or name.startswith("numpy._core.")
        for name in pickled_modules
    )
    return "2.0" if core else "1.21.0"


def expected_anomaly_ratio(metadata: dict[str, Any], threshold: float) -> float | None:
    """The share of records the package should flag at its ``threshold``:
    the share of reference rows it flagged when there are any, else the
    evaluation's ratio when that was measured at this threshold, else None."""
    monitored = (metadata.get("monitoring") or {}).get("anomaly_ratio")
    if monitored is not None:
        return monitored
    metrics = metadata["evaluation_info"]["basic_metrics"]
    if metrics.get("threshold_value") == threshold:
        return metrics.get("anomaly_ratio")
    return None


def build_manifest(
    answers: Answers,
    metadata: dict[str, Any],
    folder: Path,
    threshold: float,
    self_test: dict[str, Any] | None = None,
    known: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return deployment_manifest.json for the files now in ``folder``.

    ``file_integrity`` holds the SHA-256 of every package file except the
    manifest itself and SHA256SUMS (which hashes the manifest); ``known``
    digests (of files unchanged since they were hashed) are not recomputed.
    ``total_package_size`` counts the same files.
    """
    has_scaler = (folder / SCALER_FILE).is_file()
    names = package_files(folder, exclude={MANIFEST_FILE, SUMS_FILE})
    first = [MODEL_FILE, SCALER_FILE, METADATA_FILE]
    ordered = [n for n in first if n in names] + [n for n in names if n not in first]
    manifest = {
        "model_version": answers.version,
        "deployment_timestamp": iso_time(answers.build_time),
        "package_format_version": PACKAGE_FORMAT_VERSION,
        "model_info": {
            key: metadata["model_info"][key]
            for key in ("model_type", "training_source", "training_id", "export_file")
        },
        "training_info": metadata["training_info"],
        "evaluation_info": {
            key: metadata["evaluation_info"][key]
            for key in METADATA_SCHEMA["evaluation_info"]
        },
        "deployment_info": metadata["deployment_info"],
        "files": {
            "model_file": MODEL_FILE,
            "scaler_file": SCALER_FILE if has_scaler else None,
            "metadata_file": METADATA_FILE,
            "validation_script": VALIDATION_SCRIPT,
            "inference_example": INFERENCE_EXAMPLE,
            "requirements": REQUIREMENTS_FILE,
            "readme": README_FILE,
            "spark_scoring": SPARK_SCORING,
            "spark_requirements": SPARK_REQUIREMENTS_FILE,
            **({"api_service": API_SERVICE} if answers.include_api_service else {}),
        },
        "file_integrity": file_hashes(folder, ordered, known),
        "inference_config": {
            "threshold": threshold,
            "anomaly_ratio": expected_anomaly_ratio(metadata, threshold),
            "score_percentile": answers.score_percentile,
            "batch_size": answers.batch_size,
            "timeout_seconds": answers.timeout_seconds,
            "missing_features": answers.missing_features,
            "out_of_range": answers.out_of_range,
        },
        "model_artifacts": {
            "model_size_bytes": (folder / MODEL_FILE).stat().st_size,
            "scaler_size_bytes": (
                (folder / SCALER_FILE).stat().st_size if has_scaler else 0
            ),
            "total_package_size": sum((folder / n).stat().st_size for n in names),
        },
    }
    if self_test is not None:
        manifest["self_test"] = self_test
    return manifest
