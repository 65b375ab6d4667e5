"""Check the builder's answers and turn them into typed values.

Standard library only: the pre-generation hook runs this on cookiecutter's
own interpreter, which may have nothing else installed.
"""

from __future__ import annotations

import contextlib
import getpass
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Used with fullmatch, and anchored \A...\Z besides: "$" would also match
# before a final newline, and let "pkg\n" pass.
VERSION_PATTERN = re.compile(r"\A\d{8}_\d{6}\Z", re.ASCII)
VERSION_FORMAT = "%Y%m%d_%H%M%S"
FOLDER_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# The answers that name a joblib file.
PICKLED_ANSWERS = ("model_path", "scaler_path")
# The longest file name the build writes is the zip's .sha256 file while it
# is written: "." + package_name + ".zip.sha256." + 8 random characters.
# Most file systems allow 255 bytes.
MAX_PACKAGE_NAME = 200
YES = {"yes", "y", "true", "1", "on"}
NO = {"no", "n", "false", "0", "off"}
# The columns the package's batch scorers (command line, Spark) add to their
# output; a feature of the same name would clash with them.
RESULT_COLUMNS = ("score", "prediction")
MISSING_FEATURE_POLICIES = ("error", "zero")
OUT_OF_RANGE_POLICIES = ("allow", "warn", "error")


class AnswerError(ValueError):
    """An answer that cannot be used; the message names it and the fix."""

    def __init__(self, what: str, value: Any, fix: str) -> None:
        super().__init__(f"{what} ({value!r}): {fix}")


class TypedFloat(float):
    """A float that keeps the answer as the builder typed it (``typed``), so
    that a later message shows '1e-400' rather than the 0.0 it reads as."""

    __slots__ = ("typed",)

    def __new__(cls, number: float, typed: Any = None) -> TypedFloat:
        self = super().__new__(cls, number)
        self.typed = number if typed is None else typed
        return self


@dataclass(frozen=True)
class Answers:
    """Every answer of cookiecutter.json, checked and typed."""

    version: str
    package_name: str
    model_file: Path | None
    scaler_file: Path | None
    metadata_file: Path | None
    feature_names: list[str] | None
    training_source: str | None
    training_id: str | None
    export_file: str | None
    deployed_by: str
    threshold: TypedFloat | None
    score_percentile: int
    batch_size: int
    timeout_seconds: int
    missing_features: str
    out_of_range: str
    include_api_service: bool
    create_zip: bool
    template_dir: Path
    output_dir: Path
    reference_file: Path | None = None

    @property
    def build_time(self) -> datetime:
        """The version as a UTC time."""
        return parse_version(self.version)


def parse_version(value: Any) -> datetime:
    """Return the UTC time a version string names."""
    text = str(value)
    fix = "use the UTC build time as YYYYMMDD_HHMMSS, e.g. 20241201_143022"
    if not VERSION_PATTERN.fullmatch(text):
        raise AnswerError("version", value, fix)
    try:
        moment = datetime.strptime(text, VERSION_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AnswerError(
            "version", value, "not a real date and time; " + fix
        ) from None
    if not 1980 <= moment.year <= 2107:
        raise AnswerError(
            "version", value, "zip archives hold dates from 1980 to 2107 only; " + fix
        )
    return moment


def _text(context: Mapping[str, Any], key: str) -> str:
    value = context.get(key, "")
    text = "" if value is None else str(value).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding, as the shell gave them
        raise AnswerError(
            key, text, "is not UTF-8 text; type it again in UTF-8"
        ) from None
    return text


def _may_lead_to(typed: str, resolved: str) -> bool:
    """Whether ``resolved`` can be the path ``typed`` made absolute (from some
    working folder): the same path, or, for a relative one, a path that ends
    with it (its leading '..' aside)."""
    path = os.path.normcase(os.path.normpath(os.path.expanduser(typed)))
    resolved = os.path.normcase(os.path.normpath(resolved))
    if os.path.isabs(path):
        return path == resolved
    parts = Path(path).parts
    while parts and parts[0] == os.pardir:
        parts = parts[1:]
    return not parts or Path(resolved).parts[-len(parts) :] == parts


def _file(
    context: Mapping[str, Any], key: str, resolved_key: str | None = None
) -> Path | None:
    typed = _text(context, key)
    resolved_key = resolved_key or f"__{key.removesuffix('_path')}_file"
    resolved = _text(context, resolved_key)
    if not typed:
        return None
    if resolved and not _may_lead_to(typed, resolved):
        # Only a replay gives them apart: cookiecutter --replay restores the
        # path rendered on the first run with the answers, edited or not.
        raise AnswerError(
            key,
            typed,
            f"the replay file records {resolved_key}, the file a replay builds, "
            f"as {resolved}, which this path cannot be; edit both {key} and "
            f"{resolved_key} in the replay file, or render without --replay",
        )
    path = Path(resolved or os.path.abspath(os.path.expanduser(typed)))
    if not path.exists():
        raise AnswerError(key, typed, f"no such file ({path}); {_path_fix(typed)}")
    if not path.is_file():
        raise AnswerError(key, typed, f"{path} is not a regular file; give a file")
    try:
        path.open("rb").close()
    except OSError as error:
        raise unreadable(key, typed, error) from None
    if key in PICKLED_ANSWERS and path.stat().st_size == 0 and _reads_empty(path):
        raise AnswerError(
            key, typed, "is empty (0 bytes); give a file written by joblib.dump"
        )
    return path


def _reads_empty(path: Path) -> bool:
    """Whether ``path``, of size 0, holds nothing: a file of /proc says 0 of
    any size, and one that fails as it is read is left for the build to
    name."""
    try:
        with path.open("rb") as stream:
            return stream.read(1) == b""
    except OSError:
        return False


def _path_fix(typed: str) -> str:
    """What to do about the path ``typed`` that names no file: a path pasted
    in quotes or with shell escapes keeps them in an answer."""
    if len(typed) > 1 and typed[0] in "\"'" and typed[-1] == typed[0]:
        return "give the path without the quotes around it"
    if "\\ " in typed:
        return "give the path without the backslashes before its spaces"
    return "check the path"


def unreadable(key: str, value: Any, error: OSError) -> AnswerError:
    """The error for the file of answer ``key`` that exists but cannot be
    read (no permission, an I/O error), worded as validate_model.py words it."""
    return AnswerError(
        key,
        value,
        f"cannot be read ({error.strerror or type(error).__name__}); give the "
        "user running cookiecutter read access to it, or give a copy it can read",
    )


def written_plainly(text: str) -> bool:
    """Whether ``text`` may write a number as the package reads one: ASCII
    only, without '_' (int() and float() also take 1_000 and the digits of
    other scripts, which pandas and Spark read as text)."""
    return text.isascii() and "_" not in text


def _written_number(key: str, value: Any, text: str, fix: str) -> None:
    """Refuse the forms of a number that only Python reads (int() and float()
    take 1_000 and the digits of other scripts), not a builder's intent."""
    if not written_plainly(text):
        raise AnswerError(
            key, value, f"not a number (use the digits 0-9, without '_'); {fix}"
        )


def _integer(
    context: Mapping[str, Any], key: str, low: int, high: float, fix: str
) -> int:
    value = context.get(key)
    if isinstance(value, bool):
        raise AnswerError(key, value, fix)
    text = str(value).strip()
    _written_number(key, value, text, fix)
    try:
        # int() first: a float would round a long number of digits.
        number: float = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise AnswerError(key, value, fix) from None
    whole = isinstance(number, int) or number.is_integer()
    if not whole or not low <= number <= high:
        raise AnswerError(key, value, fix)
    try:
        float(number)  # as the package reads it: a float
    except OverflowError:
        raise AnswerError(key, value, f"far too large; {fix}") from None
    return int(number)


def _threshold(context: Mapping[str, Any]) -> TypedFloat | None:
    """The threshold, a float that keeps the answer as typed for messages."""
    value = context.get("threshold", "")
    fix = "give a finite number, or leave it empty to use the model's own boundary"
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, bool):
        raise AnswerError("threshold", value, fix)
    text = str(value).strip()
    _written_number("threshold", value, text, fix)
    try:
        number = float(text)
    except ValueError:
        raise AnswerError("threshold", value, fix) from None
    if not math.isfinite(number):
        raise AnswerError("threshold", value, fix)
    return TypedFloat(number, value)


def feature_names_problem(names: list[str]) -> str | None:
    """Why ``names`` cannot name a package's features, or None if they can."""
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return (
                f"the feature name {name!r} is not valid Unicode text (it holds "
                "half of a surrogate pair), which no UTF-8 file can hold; rename "
                "the feature (and refit the model if it was fitted on named "
                "columns)"
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return (
            f"{', '.join(repeated)} appear more than once; every feature needs a "
            "name of its own"
        )
    # Spark tells column names apart regardless of case, by default.
    clashing = [name for name in names if name.lower() in RESULT_COLUMNS]
    if clashing:
        return (
            f"a feature is named {clashing[0]!r}, like a column the package's "
            f"batch scorers add to their output ({', '.join(RESULT_COLUMNS)}, "
            "in any case); rename the feature (and refit the model if it was "
            "fitted on named columns)"
        )
    return None


def _feature_names(context: Mapping[str, Any]) -> list[str] | None:
    value = _text(context, "feature_names")
    if not value:
        return None
    names = [name.strip() for name in value.split(",")]
    if any(not name for name in names):
        raise AnswerError(
            "feature_names", value, "a name is empty; give names separated by commas"
        )
    problem = feature_names_problem(names)
    if problem:
        raise AnswerError("feature_names", value, problem)
    return names


def _choice(context: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = context.get(key, choices[0])
    text = str(value).strip().lower()
    if text not in choices:
        raise AnswerError(key, value, f"answer one of: {', '.join(choices)}")
    return text


def _switch(context: Mapping[str, Any], key: str, default: str = "yes") -> bool:
    value = context.get(key, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise AnswerError(key, value, "answer yes or no")


def parse_answers(context: Mapping[str, Any], template_dir: Path) -> Answers:
    """Check every answer; raise AnswerError for the first one that is bad.

    ``template_dir`` is the template's folder, as the hook found it.
    """
    version = _text(context, "version")
    parse_version(version)
    package_name = _text(context, "package_name")
    # As given, not stripped: cookiecutter names the folder after it so.
    typed_name = context.get("package_name")
    typed_name = "" if typed_name is None else str(typed_name)
    if not FOLDER_NAME.fullmatch(typed_name) or ".." in typed_name:
        raise AnswerError(
            "package_name",
            typed_name,
            "use one folder name of ASCII letters, digits, '.', '_' and '-'",
        )
    if len(package_name) > MAX_PACKAGE_NAME:
        raise AnswerError(
            "package_name",
            package_name,
            f"{len(package_name)} characters; use at most {MAX_PACKAGE_NAME}, "
            "so that the zip and its files can be named after it",
        )
    model_file = _file(context, "model_path")
    scaler_file = _file(context, "scaler_path")
    metadata_file = _file(context, "metadata_path")
    reference_file = _file(context, "reference_data_path", "__reference_file")
    extras = {
        "scaler_path": scaler_file,
        "metadata_path": metadata_file,
        "reference_data_path": reference_file,
    }
    for given, file in extras.items():
        if model_file is None and file is not None:
            raise AnswerError(
                given,
                _text(context, given),
                "the demo model brings its own; give model_path too, or leave it empty",
            )
    return Answers(
        version=version,
        package_name=package_name,
        model_file=model_file,
        scaler_file=scaler_file,
        metadata_file=metadata_file,
        feature_names=_feature_names(context),
        training_source=_text(context, "training_source") or None,
        training_id=_text(context, "training_id") or None,
        export_file=_text(context, "export_file") or None,
        deployed_by=_text(context, "deployed_by") or _login_name(),
        threshold=_threshold(context),
        score_percentile=_integer(
            context, "score_percentile", 1, 99, "give a whole number from 1 to 99"
        ),
        batch_size=_integer(
            context, "batch_size", 1, math.inf, "give a whole number of rows, 1 or more"
        ),
        timeout_seconds=_integer(
            context,
            "timeout_seconds",
            1,
            math.inf,
            "give a whole number of seconds, 1 or more",
        ),
        missing_features=_choice(context, "missing_features", MISSING_FEATURE_POLICIES),
        out_of_range=_choice(context, "out_of_range", OUT_OF_RANGE_POLICIES),
        include_api_service=_switch(context, "include_api_service", default="no"),
        create_zip=_switch(context, "create_zip"),
        template_dir=template_dir,
        output_dir=Path(_text(context, "_output_dir") or os.getcwd()),
        reference_file=reference_file,
    )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def forget_rendered_hook(hook: Path) -> None:
    """Remove ``hook`` when it is the copy that cookiecutter rendered into
    the temporary folder and leaves there, holding every answer (paths, the
    builder's name); a hook anywhere else is left alone."""
    if hook.parent.resolve() == Path(tempfile.gettempdir()).resolve():
        with contextlib.suppress(OSError):
            hook.unlink()
