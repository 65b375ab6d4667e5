"""Unit tests for package_builder.answers and documents.read_given_metadata.

parse_answers gets a context dict shaped like the one cookiecutter hands the
pre-generation hook; a bad answer must be refused with a message that names
the answer, shows what was typed and says how to fix it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import GIVEN_MONITORING_SECTIONS, unreadable_file
from package_builder.answers import (
    RESULT_COLUMNS,
    AnswerError,
    Answers,
    parse_answers,
)
from package_builder.documents import ModelFacts, _names_model, read_given_metadata
from package_builder.reference_data import (
    declared_feature_names,
    read_reference_data,
)

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def context(tmp_path: Path) -> dict[str, Any]:
    """A valid context as cookiecutter produces it, with every answer a string."""
    return {
        "version": "20241201_143022",
        "package_name": "model_20241201_143022_deployment",
        "model_path": "",
        "scaler_path": "",
        "metadata_path": "",
        "feature_names": "",
        "training_source": "",
        "training_id": "",
        "export_file": "",
        "deployed_by": "alice",
        "threshold": "",
        "score_percentile": "90",
        "batch_size": "1000",
        "timeout_seconds": "30",
        "missing_features": "error",
        "out_of_range": "allow",
        "include_api_service": "no",
        "create_zip": "yes",
        "_output_dir": str(tmp_path),
    }


def parse(context: dict[str, Any], **changes: Any) -> Answers:
    """Parse ``context`` with ``changes`` applied."""
    return parse_answers({**context, **changes}, TEMPLATE_DIR)


def refusal(context: dict[str, Any], **changes: Any) -> str:
    """Return the message of the AnswerError that ``changes`` cause."""
    with pytest.raises(AnswerError) as error:
        parse(context, **changes)
    return str(error.value)


def write_file(path: Path, content: bytes = b"model bytes") -> Path:
    """Write ``content`` to ``path`` and return it."""
    path.write_bytes(content)
    return path


# the valid baseline


def test_valid_answers_give_typed_values(
    context: dict[str, Any], tmp_path: Path
) -> None:
    """The default answers come back typed: ints, None for empty, a bool."""
    answers = parse(context)

    assert answers.version == "20241201_143022"
    assert answers.package_name == "model_20241201_143022_deployment"
    assert answers.model_file is None
    assert answers.scaler_file is None
    assert answers.metadata_file is None
    assert answers.feature_names is None
    assert answers.training_source is None
    assert answers.training_id is None
    assert answers.export_file is None
    assert answers.deployed_by == "alice"
    assert answers.threshold is None
    assert answers.score_percentile == 90
    assert type(answers.score_percentile) is int
    assert answers.batch_size == 1000
    assert type(answers.batch_size) is int
    assert answers.timeout_seconds == 30
    assert type(answers.timeout_seconds) is int
    assert answers.missing_features == "error"
    assert answers.out_of_range == "allow"
    assert answers.include_api_service is False
    assert answers.create_zip is True
    assert answers.template_dir == TEMPLATE_DIR
    assert answers.output_dir == tmp_path


def test_build_time_is_the_version_in_utc(context: dict[str, Any]) -> None:
    """build_time is the version read as a UTC datetime."""
    build_time = parse(context).build_time

    assert build_time == datetime(2024, 12, 1, 14, 30, 22, tzinfo=timezone.utc)
    assert build_time.utcoffset() == timedelta(0)


def test_text_answers_are_kept_stripped(context: dict[str, Any]) -> None:
    """Optional text answers are kept, without surrounding spaces."""
    answers = parse(
        context,
        training_source=" netflow export ",
        training_id="train-0042",
        export_file="netflow_2024_01.csv",
    )

    assert answers.training_source == "netflow export"
    assert answers.training_id == "train-0042"
    assert answers.export_file == "netflow_2024_01.csv"


# bad answers

BAD_ANSWERS = [
    # key, value, a phrase the fix must contain
    pytest.param("version", "2024-12-01", "YYYYMMDD_HHMMSS", id="version-dashes"),
    pytest.param(
        "version", "20241301_000000", "not a real date", id="version-month-13"
    ),
    pytest.param("version", "20240230_000000", "not a real date", id="version-feb-30"),
    pytest.param("version", "20241201_240000", "not a real date", id="version-hour-24"),
    pytest.param(
        "version", "19700101_000000", "from 1980 to 2107", id="version-before-1980"
    ),
    pytest.param("version", "", "YYYYMMDD_HHMMSS", id="version-empty"),
    pytest.param("package_name", "../evil", "one folder name", id="name-parent"),
    pytest.param("package_name", "a/b", "one folder name", id="name-slash"),
    pytest.param("package_name", ".hidden", "one folder name", id="name-dot-first"),
    pytest.param("package_name", "a..b", "one folder name", id="name-double-dot"),
    pytest.param("package_name", "a b", "one folder name", id="name-space"),
    pytest.param("package_name", "", "one folder name", id="name-empty"),
    pytest.param("package_name", "pkg\n", "one folder name", id="name-newline"),
    pytest.param("package_name", "m" * 201, "at most 200", id="name-too-long"),
    pytest.param("deployed_by", "caf\udce9", "not UTF-8 text", id="not-utf-8"),
    pytest.param("score_percentile", "0", "from 1 to 99", id="percentile-0"),
    pytest.param("score_percentile", "100", "from 1 to 99", id="percentile-100"),
    pytest.param("score_percentile", "50.5", "from 1 to 99", id="percentile-fraction"),
    pytest.param("score_percentile", "abc", "from 1 to 99", id="percentile-word"),
    pytest.param("score_percentile", True, "from 1 to 99", id="percentile-bool"),
    pytest.param("score_percentile", None, "from 1 to 99", id="percentile-none"),
    pytest.param("batch_size", "0", "1 or more", id="batch-0"),
    pytest.param("batch_size", "-1", "1 or more", id="batch-negative"),
    pytest.param("batch_size", "1.5", "1 or more", id="batch-fraction"),
    pytest.param("batch_size", "lots", "1 or more", id="batch-word"),
    pytest.param("batch_size", "inf", "1 or more", id="batch-inf"),
    pytest.param("batch_size", "1_000", "not a number", id="batch-underscore"),
    pytest.param(
        "score_percentile", "\u0665\u0660", "not a number", id="percentile-arabic"
    ),
    pytest.param("timeout_seconds", "0", "seconds, 1 or more", id="timeout-0"),
    pytest.param(
        "timeout_seconds",
        "1" + "0" * 310,
        "far too large; give a whole number of seconds, 1 or more",
        id="timeout-beyond-a-float",
    ),
    pytest.param(
        "batch_size", "9" * 400, "far too large; give a whole number", id="batch-huge"
    ),
    pytest.param("threshold", "abc", "finite number", id="threshold-word"),
    pytest.param("threshold", "nan", "finite number", id="threshold-nan"),
    pytest.param("threshold", "inf", "finite number", id="threshold-inf"),
    pytest.param("threshold", "-inf", "finite number", id="threshold-minus-inf"),
    pytest.param("threshold", True, "finite number", id="threshold-bool"),
    pytest.param("threshold", "0_5", "not a number", id="threshold-underscore"),
    pytest.param(
        "threshold", "\uff10.5", "not a number", id="threshold-fullwidth-digit"
    ),
    pytest.param("feature_names", "a,,b", "a name is empty", id="features-empty-name"),
    pytest.param(
        "feature_names", "a,", "a name is empty", id="features-trailing-comma"
    ),
    pytest.param(
        "feature_names", "a,b,a", "a appear more than once", id="features-duplicate"
    ),
    pytest.param("create_zip", "maybe", "yes or no", id="zip-maybe"),
    pytest.param("include_api_service", "flask", "yes or no", id="api-flask"),
    pytest.param("missing_features", "ignore", "error, zero", id="missing-ignore"),
    pytest.param("missing_features", "", "error, zero", id="missing-empty"),
    pytest.param("out_of_range", "clip", "allow, warn, error", id="range-clip"),
]


@pytest.mark.parametrize(("key", "value", "fix"), BAD_ANSWERS)
def test_bad_answer_is_refused_naming_key_value_and_fix(
    context: dict[str, Any], key: str, value: Any, fix: str
) -> None:
    """A bad answer raises AnswerError '<key> (<repr of value>): <fix>'."""
    message = refusal(context, **{key: value})

    assert message.startswith(f"{key} ({value!r}): ")
    assert fix in message.removeprefix(f"{key} ({value!r}): ")


def test_duplicate_feature_names_are_all_named(context: dict[str, Any]) -> None:
    """Every repeated feature name is listed, once each, in sorted order."""
    message = refusal(context, feature_names="b,a,b,c,a")

    assert message == (
        "feature_names ('b,a,b,c,a'): a, b appear more than once; every feature "
        "needs a name of its own"
    )


@pytest.mark.parametrize("name", ["score", "prediction", "Score", "PREDICTION"])
def test_feature_named_like_an_output_column_is_refused(
    context: dict[str, Any], name: str
) -> None:
    """A feature may not share its name with a column the batch scorers add."""
    message = refusal(context, feature_names=f"a,{name}")

    assert message.startswith(f"feature_names ('a,{name}'): a feature is named ")
    assert f"{name!r}, like a column the package's batch scorers add" in message


def test_missing_model_file_is_refused_with_typed_and_full_path(
    context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model_path to no file shows the typed value and where it was looked for."""
    monkeypatch.chdir(tmp_path)

    message = refusal(context, model_path=" missing/model.joblib ")

    assert message.startswith("model_path ('missing/model.joblib'): no such file")
    assert str(tmp_path / "missing" / "model.joblib") in message


def test_model_path_to_a_folder_is_refused(
    context: dict[str, Any], tmp_path: Path
) -> None:
    """A model_path naming a folder is refused as not a regular file."""
    message = refusal(context, model_path=str(tmp_path))

    assert message.startswith(f"model_path ({str(tmp_path)!r}): ")
    assert "not a regular file" in message


def test_missing_scaler_file_is_refused(
    context: dict[str, Any], tmp_path: Path
) -> None:
    """A scaler_path to no file is refused under its own name."""
    model = write_file(tmp_path / "model.joblib")
    missing = str(tmp_path / "scaler.joblib")

    message = refusal(context, model_path=str(model), scaler_path=missing)

    assert message.startswith(f"scaler_path ({missing!r}): no such file")


UNREADABLE = (
    "cannot be read (Permission denied); give the user running cookiecutter "
    "read access to it, or give a copy it can read"
)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("model_path", "model.joblib"),
        ("scaler_path", "scaler.joblib"),
        ("metadata_path", "metadata.json"),
        ("reference_data_path", "reference.csv"),
    ],
)
def test_unreadable_file_is_refused_under_its_name(
    context: dict[str, Any], tmp_path: Path, key: str, name: str
) -> None:
    """A given file that exists but cannot be read (no permission) is refused
    with the answers, under its own name, saying so and what to do."""
    model = write_file(tmp_path / "readable.joblib")
    given = str(unreadable_file(tmp_path / name))

    message = refusal(context, **{"model_path": str(model), key: given})

    assert message == f"{key} ({given!r}): {UNREADABLE}"


@pytest.mark.parametrize("key", ["scaler_path", "metadata_path", "reference_data_path"])
def test_scaler_or_metadata_without_model_is_refused(
    context: dict[str, Any], tmp_path: Path, key: str
) -> None:
    """A scaler or metadata file without a model_path is refused under its name."""
    given = str(write_file(tmp_path / "given.file"))

    message = refusal(context, **{key: given})

    assert message.startswith(f"{key} ({given!r}): ")
    assert "give model_path too" in message


def test_given_files_are_accepted(context: dict[str, Any], tmp_path: Path) -> None:
    """Existing model, scaler and metadata files come back as their paths."""
    model = write_file(tmp_path / "model.joblib")
    scaler = write_file(tmp_path / "scaler.joblib")
    metadata = write_file(tmp_path / "metadata.json", b"{}")

    answers = parse(
        context,
        model_path=str(model),
        scaler_path=str(scaler),
        metadata_path=str(metadata),
    )

    assert answers.model_file == model
    assert answers.scaler_file == scaler
    assert answers.metadata_file == metadata


def test_relative_model_path_is_resolved_from_working_folder(
    context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the hook's resolved path, model_path is taken from the cwd."""
    model = write_file(tmp_path / "model.joblib")
    monkeypatch.chdir(tmp_path)

    answers = parse(context, model_path="model.joblib")

    assert answers.model_file == model
    assert answers.model_file.is_absolute()


def test_hook_resolved_model_path_wins_over_working_folder(
    context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The absolute __model_file cookiecutter passes is used, not the cwd."""
    (tmp_path / "artifacts").mkdir()
    model = write_file(tmp_path / "artifacts" / "model.joblib")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    answers = parse(context, model_path="model.joblib", __model_file=str(model))

    assert answers.model_file == model


def test_replayed_path_other_than_the_typed_one_is_refused(
    context: dict[str, Any], tmp_path: Path
) -> None:
    """A __model_file that model_path cannot lead to (a replay file whose
    model_path was edited) is refused, naming both and the fix."""
    model = write_file(tmp_path / "model.joblib")
    write_file(tmp_path / "other.joblib")

    message = refusal(context, model_path="other.joblib", __model_file=str(model))

    assert message == (
        f"model_path ('other.joblib'): the replay file records __model_file, the "
        f"file a replay builds, as {model}, which this path cannot be; edit both "
        "model_path and __model_file in the replay file, or render without --replay"
    )


@pytest.mark.parametrize(
    "typed",
    [
        "model.joblib",
        "../artifacts/model.joblib",
        "./artifacts/../artifacts/model.joblib",
    ],
)
def test_replayed_path_the_typed_one_can_lead_to_is_used(
    context: dict[str, Any], tmp_path: Path, typed: str
) -> None:
    """A relative model_path is accepted with any __model_file it can lead to
    from some working folder (a replay from another folder)."""
    (tmp_path / "artifacts").mkdir()
    model = write_file(tmp_path / "artifacts" / "model.joblib")

    assert parse(context, model_path=typed, __model_file=str(model)).model_file == model
    absolute = parse(context, model_path=str(model), __model_file=str(model))
    assert absolute.model_file == model


# accepted forms


def test_numbers_given_as_ints_are_accepted(context: dict[str, Any]) -> None:
    """Ints, as a YAML config file gives them, are accepted as they are."""
    answers = parse(context, score_percentile=90, batch_size=500, timeout_seconds=5)

    assert answers.score_percentile == 90
    assert answers.batch_size == 500
    assert answers.timeout_seconds == 5


def test_long_whole_numbers_are_kept_exactly(context: dict[str, Any]) -> None:
    """A batch size with more digits than a float holds is kept as written,
    not rounded; "2e3" and "2000.0" still mean 2000."""
    digits = "9" * 30
    assert parse(context, batch_size=digits).batch_size == int(digits)
    assert parse(context, batch_size="2e3").batch_size == 2000
    assert parse(context, batch_size="2000.0").batch_size == 2000


def test_whole_numbers_with_spaces_or_point_zero_are_accepted(
    context: dict[str, Any],
) -> None:
    """' 95 ' and '200.0' are whole numbers and are accepted."""
    answers = parse(context, score_percentile=" 95 ", batch_size="200.0")

    assert answers.score_percentile == 95
    assert answers.batch_size == 200
    assert type(answers.batch_size) is int


def test_percentile_bounds_are_accepted(context: dict[str, Any]) -> None:
    """score_percentile 1 and 99 are the inclusive bounds."""
    assert parse(context, score_percentile="1").score_percentile == 1
    assert parse(context, score_percentile="99").score_percentile == 99


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("0.55", 0.55, id="text"),
        pytest.param(" -1.25 ", -1.25, id="negative-spaced"),
        pytest.param(0, 0.0, id="int-zero"),
        pytest.param(0.3, 0.3, id="float"),
        pytest.param("1e-3", 0.001, id="exponent"),
    ],
)
def test_threshold_is_read_as_float(
    context: dict[str, Any], value: Any, expected: float
) -> None:
    """A finite threshold comes back as a float, zero included."""
    threshold = parse(context, threshold=value).threshold

    assert threshold == expected
    assert isinstance(threshold, float)
    assert threshold.typed == value


@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_threshold_means_the_models_own(
    context: dict[str, Any], value: Any
) -> None:
    """An empty threshold gives None: the model's own boundary is used."""
    assert parse(context, threshold=value).threshold is None


@pytest.mark.parametrize("value", ["zero", "ZERO", " zero "])
def test_missing_features_zero(context: dict[str, Any], value: str) -> None:
    assert parse(context, missing_features=value).missing_features == "zero"


def test_include_api_service_defaults_to_no(context: dict[str, Any]) -> None:
    context.pop("include_api_service")
    assert parse(context).include_api_service is False
    assert parse(context, include_api_service="yes").include_api_service is True


@pytest.mark.parametrize("value", [False, "no", "NO", " n ", "false", "0", "off"])
def test_create_zip_no(context: dict[str, Any], value: Any) -> None:
    """False and the spellings of no turn the zip off."""
    assert parse(context, create_zip=value).create_zip is False


@pytest.mark.parametrize("value", [True, "yes", "YES", "y", "true", "1", "on"])
def test_create_zip_yes(context: dict[str, Any], value: Any) -> None:
    """True and the spellings of yes turn the zip on."""
    assert parse(context, create_zip=value).create_zip is True


def test_feature_names_are_split_and_stripped(context: dict[str, Any]) -> None:
    """' a , b ,c ' gives the names a, b, c in the order given."""
    assert parse(context, feature_names=" a , b ,c ").feature_names == ["a", "b", "c"]


def test_empty_deployed_by_falls_back_to_login_name(
    context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty deployed_by is replaced by the login name."""
    monkeypatch.setenv("LOGNAME", "builder")

    assert parse(context, deployed_by="").deployed_by == "builder"
    assert parse(context, deployed_by="   ").deployed_by == "builder"


def test_empty_deployed_by_is_never_empty(context: dict[str, Any]) -> None:
    """Whatever the environment, an empty deployed_by gives a non-empty name."""
    deployed_by = parse(context, deployed_by="").deployed_by

    assert isinstance(deployed_by, str)
    assert deployed_by.strip()


def test_missing_output_dir_means_the_working_folder(
    context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without _output_dir the package goes into the working folder."""
    monkeypatch.chdir(tmp_path)
    del context["_output_dir"]

    assert parse(context).output_dir == tmp_path


@pytest.mark.parametrize("version", ["19800101_000000", "21071231_235959"])
def test_versions_at_the_ends_of_the_zip_years_are_taken(
    context: dict[str, Any], version: str
) -> None:
    """The first and last moments a zip can date, 1980 and 2107, are versions."""
    answers = parse(
        context, version=version, package_name=f"model_{version}_deployment"
    )
    assert answers.version == version


def test_a_package_name_of_the_longest_length_is_taken(
    context: dict[str, Any],
) -> None:
    """A package_name of exactly 200 characters, the most, is taken (201 is
    refused: see the refusals above)."""
    assert parse(context, package_name="m" * 200).package_name == "m" * 200


def test_version_after_2107_is_refused(context: dict[str, Any]) -> None:
    """A version a zip cannot date (after 2107) is refused up front."""
    message = refusal(
        context,
        version="21080101_000000",
        package_name="model_21080101_000000_deployment",
    )

    assert message.startswith(
        "version ('21080101_000000'): zip archives hold dates from 1980 to 2107 only; "
    )


# read_given_metadata

MINIMAL_METADATA = {"model_info": {}, "training_info": {}, "evaluation_info": {}}


def metadata_file(tmp_path: Path, content: Any) -> Path:
    """Write ``content`` (text, or data to dump as JSON) as metadata.json."""
    path = tmp_path / "metadata.json"
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    return path


def metadata_refusal(path: Path) -> str:
    """Return the message of the AnswerError that reading ``path`` raises."""
    with pytest.raises(AnswerError) as error:
        read_given_metadata(path)
    message = str(error.value)
    assert message.startswith(f"metadata_path ({str(path)!r}): ")
    return message


def test_metadata_minimal_file_is_accepted(tmp_path: Path) -> None:
    """A file with the three required sections, even empty, is read back."""
    path = metadata_file(tmp_path, MINIMAL_METADATA)

    assert read_given_metadata(path) == MINIMAL_METADATA


def test_metadata_empty_values_say_nothing_whatever_the_kind(tmp_path: Path) -> None:
    """An empty string ("") and {} say nothing, as null does, also where the
    schema wants a number or a time: they are read as null (the build fills
    in what the model knows), while "" for a string and {} for an object
    stay."""
    data = {
        "model_info": {"created_at": "", "training_source": ""},
        "training_info": {
            "training_samples": "",
            "feature_count": {},
            "feature_names": "",
        },
        "evaluation_info": {
            "basic_metrics": {"accuracy": "", "threshold_value": {}},
            "feature_importance": {},
        },
    }
    read = read_given_metadata(metadata_file(tmp_path, data))
    assert read["model_info"] == {"created_at": None, "training_source": ""}
    assert read["training_info"] == {
        "training_samples": None,
        "feature_count": None,
        "feature_names": None,
    }
    assert read["evaluation_info"] == {
        "basic_metrics": {"accuracy": None, "threshold_value": None},
        "feature_importance": {},
    }


def test_metadata_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    """A file nesting lists deeper than the JSON reader goes is refused."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    assert "nests lists or objects too deeply to read" in metadata_refusal(path)


def nested_notes(levels: int) -> dict[str, Any]:
    """Metadata whose training_info.notes nests lists ``levels`` deep."""
    notes: list = []
    for _ in range(levels - 1):
        notes = [notes]
    return {**MINIMAL_METADATA, "training_info": {"notes": notes}}


def test_metadata_nested_deeper_than_any_metadata_is_refused(tmp_path: Path) -> None:
    """Lists 500 deep, which the JSON reader takes but copying and writing
    them indented into the package would not (a RecursionError): refused
    naming the limit. 50 deep is read back."""
    shallow = nested_notes(50)
    assert read_given_metadata(metadata_file(tmp_path, shallow)) == shallow

    path = tmp_path / "deep.json"
    path.write_text(json.dumps(nested_notes(500)), encoding="utf-8")
    assert metadata_refusal(path).endswith(
        '): nests lists or objects more than 100 deep under "training_info"; '
        "give the training service's metadata.json"
    )


@pytest.mark.parametrize(
    "notes",
    [
        pytest.param("x" * (8 * 1024 * 1024), id="as-given"),
        # 200 kB as given, 10 MB written indented 40 lists deep.
        pytest.param(
            json.loads("[" * 40 + ",".join(["0"] * 120_000) + "]" * 40),
            id="written-indented",
        ),
    ],
)
def test_metadata_larger_than_any_metadata_is_refused(
    tmp_path: Path, notes: Any
) -> None:
    """Metadata of more than 8 MiB, as given or as the package would hold it
    written indented (its manifest copies much of it, and consumers read at
    most 64 MiB of a manifest): refused before anything is built."""
    data = {**MINIMAL_METADATA, "training_info": {"notes": notes}}
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    assert metadata_refusal(path).endswith(
        f"): takes more than {8 * 1024 * 1024} bytes (as given, or written "
        "indented as the package holds it), more than any metadata of a model; "
        "leave large data out of it"
    )


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("1" + "0" * 400, "1" + "0" * 39 + "... (401 characters)"),
        ("-" + "9" * 5000, "-" + "9" * 39 + "... (5001 characters)"),
        ("2" * 309, "2" * 40 + "... (309 characters)"),  # as many digits
        ("1e999", "1e999"),
    ],
    ids=["401-digits", "5001-digits", "309-digits-above", "1e999"],
)
def test_metadata_number_too_large_for_a_float_is_refused(
    tmp_path: Path, number: str, shown: str
) -> None:
    """A whole number or a fraction beyond a float's range, which other JSON
    readers take as Infinity (and Python refuses past 4300 digits, asking
    for a setting the builder cannot give): refused naming it, shortened."""
    text = json.dumps({**MINIMAL_METADATA, "training_info": {"training_duration": 0}})
    path = metadata_file(
        tmp_path,
        text.replace('"training_duration": 0', f'"training_duration": {number}'),
    )

    assert metadata_refusal(path).endswith(
        f"): holds the number {shown}, too large for a float (readers of JSON "
        "take it as Infinity, which is not JSON); fix it in the metadata"
    )


@pytest.mark.parametrize(
    ("model_type", "names_it"),
    [
        ("IsolationForest", True),
        ("sklearn.ensemble.IsolationForest", True),
        ("isolation_forest_v1", True),
        ("IsolationForest_v2", True),
        ("IsolationForestV2", True),
        ("IsolationForest2", True),
        ("Isolation Forest model", True),
        ("Pipeline(StandardScaler, Isolation Forest)", True),
        ("Pipeline", True),  # the model's own class
        ("NotAnIsolationForest", False),
        ("IsolationForests", False),
        ("OneClassSVM", False),
    ],
)
def test_a_given_model_type_names_the_model_by_its_class_as_words(
    model_type: str, names_it: bool
) -> None:
    """metadata's model_type names a Pipeline ending in an IsolationForest
    when it holds the detector's class as words of their own (any case,
    joined or not, with other words around) or the Pipeline's own class; a
    longer class name that contains it names another class."""
    facts = ModelFacts(
        model_type="Pipeline(StandardScaler, IsolationForest)",
        model_parameters={},
        feature_names=["a"],
        threshold=0.5,
        detector_type="IsolationForest",
        model_class="Pipeline",
    )
    assert _names_model(model_type, facts) is names_it


def test_metadata_with_feature_names_is_accepted(tmp_path: Path) -> None:
    """training_info.feature_names as a list of names is accepted."""
    data = {**MINIMAL_METADATA, "training_info": {"feature_names": ["a", "b"]}}

    assert read_given_metadata(metadata_file(tmp_path, data)) == data


def test_metadata_not_json_is_refused(tmp_path: Path) -> None:
    """A file that is not JSON is refused as not valid JSON."""
    message = metadata_refusal(metadata_file(tmp_path, "model_info: {}\n"))

    assert "not valid JSON" in message


def test_metadata_not_utf8_is_refused(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is refused, not a UnicodeDecodeError."""
    path = tmp_path / "metadata.json"
    path.write_bytes(b'{"model_info": "\xff\xfe"}')

    assert "not valid JSON" in metadata_refusal(path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            '{"model_info": {"training_id": "\\ud800"}}',
            "model_info.training_id",
            id="value",
        ),
        pytest.param(
            '{"training_info": {"feature_names": ["a", "b\\udfff"]}}',
            "training_info.feature_names[1]",
            id="in-a-list",
        ),
        pytest.param(
            '{"evaluation_info": {"feature_importance": {"\\ud800": 1}}}',
            "the key evaluation_info.feature_importance.\\ud800",
            id="key",
        ),
    ],
)
def test_metadata_text_that_is_not_unicode_is_refused(
    tmp_path: Path, text: str, where: str
) -> None:
    """Half of a surrogate pair, written as a JSON \\u escape, is no Unicode
    text: refused naming where it is, not a UnicodeEncodeError later."""
    data = {**MINIMAL_METADATA, **json.loads(text)}
    path = metadata_file(tmp_path, json.dumps(data))

    message = metadata_refusal(path)

    assert f"): {where} is not valid Unicode text" in message


def test_metadata_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    """A metadata file that exists but cannot be read (no permission) is
    refused as such, not with a PermissionError."""
    path = unreadable_file(tmp_path / "metadata.json")

    assert metadata_refusal(path).endswith(f"): {UNREADABLE}")


@pytest.mark.parametrize("monitoring", GIVEN_MONITORING_SECTIONS)
def test_metadata_with_a_monitoring_section_is_refused(
    tmp_path: Path, monitoring: Any
) -> None:
    """A top-level 'monitoring' key, whatever it holds, is refused naming it:
    the package's monitoring section is the one the build computes."""
    data = {**MINIMAL_METADATA, "monitoring": monitoring}

    message = metadata_refusal(metadata_file(tmp_path, data))

    assert f"): has a 'monitoring' key ({json.dumps(monitoring)}), but " in message
    assert "; remove the key from the metadata" in message


@pytest.mark.parametrize("monitoring", [None, "", {}])
def test_metadata_with_an_empty_monitoring_section_is_accepted(
    tmp_path: Path, monitoring: Any
) -> None:
    """A 'monitoring' key that says nothing (null, empty) is read back, as
    other keys that say nothing are: the build fills it in."""
    data = {**MINIMAL_METADATA, "monitoring": monitoring}

    assert read_given_metadata(metadata_file(tmp_path, data)) == data


def test_metadata_json_list_is_refused(tmp_path: Path) -> None:
    """A JSON list instead of an object is refused."""
    message = metadata_refusal(metadata_file(tmp_path, [MINIMAL_METADATA]))

    assert "must hold a JSON object" in message


@pytest.mark.parametrize("section", ["model_info", "training_info", "evaluation_info"])
def test_metadata_missing_section_is_refused_by_name(
    tmp_path: Path, section: str
) -> None:
    """A file missing a required section is refused, naming the section."""
    data = {key: value for key, value in MINIMAL_METADATA.items() if key != section}

    message = metadata_refusal(metadata_file(tmp_path, data))

    assert f"has no '{section}' object" in message


def test_metadata_section_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    """A required section holding a list instead of an object is refused."""
    data = {**MINIMAL_METADATA, "training_info": []}

    message = metadata_refusal(metadata_file(tmp_path, data))

    assert "'training_info'" in message


@pytest.mark.parametrize(
    "names",
    [
        pytest.param("a,b", id="text"),
        pytest.param(["a", 2], id="number-in-list"),
        pytest.param(["a", ""], id="empty-name"),
        pytest.param({"a": 1}, id="object"),
    ],
)
def test_metadata_feature_names_not_list_of_strings_is_refused(
    tmp_path: Path, names: Any
) -> None:
    """training_info.feature_names that is not a list of names is refused."""
    data = {**MINIMAL_METADATA, "training_info": {"feature_names": names}}

    message = metadata_refusal(metadata_file(tmp_path, data))

    assert "training_info.feature_names must be a list" in message


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        pytest.param(["a", "a", "c"], "a appear more than once", id="repeated"),
        pytest.param(["a", "score"], "a feature is named 'score'", id="score"),
    ],
)
def test_metadata_feature_names_that_cannot_name_features_are_refused(
    tmp_path: Path, names: list[str], problem: str
) -> None:
    """Names in the metadata follow the rules of the feature_names answer."""
    data = {**MINIMAL_METADATA, "training_info": {"feature_names": names}}

    message = metadata_refusal(metadata_file(tmp_path, data))

    assert f"training_info.feature_names: {problem}" in message


def test_cookiecutter_filter_applies_the_package_name_rules() -> None:
    """local_extensions.py, which cookiecutter loads before any hook, checks
    package_name by the same rules as parse_answers."""
    from package_builder.answers import FOLDER_NAME, MAX_PACKAGE_NAME

    import local_extensions

    assert local_extensions.MAX_PACKAGE_NAME == MAX_PACKAGE_NAME
    assert local_extensions.FOLDER_NAME.pattern == FOLDER_NAME.pattern


def test_result_columns_are_the_package_scorers_own() -> None:
    """The names refused for features are the columns the package adds."""
    source = (
        TEMPLATE_DIR / "{{cookiecutter.package_name}}" / "inference_example.py"
    ).read_text(encoding="utf-8")
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "RESULT_COLUMNS"
    }
    assert assigned == {"RESULT_COLUMNS": RESULT_COLUMNS}


# reference_data_path and reference_data.read_reference_data

NAMES = ["a", "b", "c"]


def csv_file(tmp_path: Path, text: str | bytes, name: str = "reference.csv") -> Path:
    """Write ``text`` as the reference file ``name``."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def reference_refusal(path: Path, names: list[str] | None = NAMES) -> str:
    """Return the message of the AnswerError that reading ``path`` raises."""
    with pytest.raises(AnswerError) as error:
        read_reference_data(path, names)
    return str(error.value)


def test_reference_data_path_is_resolved_like_the_other_paths(
    context: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative reference_data_path resolves from the working folder; the
    hook's __reference_file wins; empty means none."""
    model = write_file(tmp_path / "model.joblib")
    reference = csv_file(tmp_path, "a,b,c\n1,2,3\n")
    monkeypatch.chdir(tmp_path)

    assert parse(context, model_path=str(model)).reference_file is None
    relative = parse(
        context, model_path=str(model), reference_data_path="reference.csv"
    )
    assert relative.reference_file == reference
    monkeypatch.chdir(tmp_path.parent)
    resolved = parse(
        context,
        model_path=str(model),
        reference_data_path="reference.csv",
        __reference_file=str(reference),
    )
    assert resolved.reference_file == reference


def test_missing_reference_file_is_refused(
    context: dict[str, Any], tmp_path: Path
) -> None:
    """A reference_data_path to no file is refused under its own name."""
    model = write_file(tmp_path / "model.joblib")
    missing = str(tmp_path / "nowhere.csv")

    message = refusal(context, model_path=str(model), reference_data_path=missing)

    assert message.startswith(f"reference_data_path ({missing!r}): no such file")


def test_reference_csv_is_read_by_feature_name(tmp_path: Path) -> None:
    """Feature columns are read by name, in any order, exactly as written;
    other columns, a BOM and blank lines are ignored."""
    path = csv_file(
        tmp_path,
        '\ufeffid,c,b,a,label\nx,3,2,1,normal\n\ny,0.1,-2e3, 7 ,"attack, big"\n',
    )

    data = read_reference_data(path, NAMES)

    assert data.rows == 2
    assert data.file_name == "reference.csv"
    assert data.file_format == "csv"
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {name: list(values) for name, values in data.columns.items()} == {
        "a": [1.0, 7.0],
        "b": [2.0, -2000.0],
        "c": [3.0, 0.1],
    }


def test_reference_csv_without_names_checks_its_form_only(tmp_path: Path) -> None:
    """Before the model is loaded (no names known), only the form is checked:
    any column may hold text."""
    path = csv_file(tmp_path, "a,b\n1,text\n")

    data = read_reference_data(path, None)

    assert (data.rows, data.columns) == (1, {})


BAD_REFERENCE_FILES = [
    # file name, content, a phrase the fix must contain
    pytest.param("r.csv", "", "is empty", id="empty"),
    pytest.param("r.csv", "\n\n", "no header row", id="blank-lines-only"),
    pytest.param("r.csv", "a,b,c\n", "has a header but no rows", id="header-only"),
    pytest.param(
        "r.csv", "a,b\n1,2\n", "has no column for the features ['c']", id="missing"
    ),
    pytest.param(
        "r.csv", "a;b;c\n1;2;3\n", "(is it separated by commas?)", id="semicolons"
    ),
    pytest.param(
        "r.csv",
        "a,b,c,a\n1,2,3,4\n",
        "more than one column named ['a']",
        id="feature-twice",
    ),
    pytest.param(
        "r.csv",
        "a,b,c\n1,2,3\n1,abc,3\n1,x,3\n",
        "line 3, column 'b' is 'abc' (and 1 more such values): every feature "
        "value must be a finite number",
        id="text-value",
    ),
    pytest.param("r.csv", "a,b,c\n1,,3\n", "column 'b' is ''", id="empty-cell"),
    pytest.param("r.csv", "a,b,c\n1,nan,3\n", "column 'b' is 'nan'", id="nan"),
    pytest.param(
        "r.csv",
        "a,b,c\n1_000,2,3\n",
        "line 2, column 'a' is '1_000': every feature value must be a finite number",
        id="digit-separator",
    ),
    pytest.param(
        "r.csv",
        "a,b,c\n1,2,\uff13\n",
        "line 2, column 'c' is '\uff13': every feature value must be a finite number",
        id="full-width-digit",
    ),
    pytest.param("r.csv", "a,b,c\n1,2,-inf\n", "column 'c' is '-inf'", id="inf"),
    pytest.param(
        "r.csv",
        "a,b,c\n1,2,3\n1,2\n",
        "line 3 has 2 fields, the header has 3",
        id="short-row",
    ),
    pytest.param("r.csv", b"a,b,c\n1,2,\xff\n", "is not UTF-8 text", id="latin-1"),
    pytest.param(
        "r.csv",
        "a,b,c\n1,2,3" + "0" * 200_000 + "\n",
        "is not valid CSV at line 2 (field larger than field limit",
        id="huge-field",
    ),
    pytest.param(
        "r.csv",
        'a,b,c\n1,2,3\n"1,2,3\n4,5,6\n',
        "is not valid CSV at line 3 (a cell's opening quote (\") is never closed); "
        "fix that line",
        id="quote-never-closed",
    ),
    pytest.param(
        "r.csv",
        'a,b,c\n"1"x,2,3\n',
        "is not valid CSV at line 2 (',' expected after '\"': text follows a "
        "cell's closing quote); fix that line",
        id="text-after-a-closing-quote",
    ),
    pytest.param(
        "r.csv",
        '\n\n"a,b,c\n1,2,3\n',
        "is not valid CSV at line 3 (a cell's opening quote",
        id="header-quote-never-closed-after-blank-lines",
    ),
    pytest.param(
        "r.csv",
        'a,b,c,note\n1,2,3,"two\nlines"\n1,x,3,"two\nlines"\n',
        "line 4, column 'b' is 'x'",
        id="bad-row-of-two-lines",
    ),
    pytest.param(
        "r.xlsx", "a,b,c\n1,2,3\n", "cannot tell the format", id="unknown-suffix"
    ),
]


@pytest.mark.parametrize(("name", "content", "fix"), BAD_REFERENCE_FILES)
def test_bad_reference_file_is_refused(
    tmp_path: Path, name: str, content: str | bytes, fix: str
) -> None:
    """A reference file that cannot give statistics is refused as
    'reference_data_path (<path>): <fix>'."""
    path = csv_file(tmp_path, content, name)

    message = reference_refusal(path)

    assert message.startswith(f"reference_data_path ({str(path)!r}): ")
    assert fix in message


def test_semicolons_and_decimal_commas_before_the_names_are_known(
    tmp_path: Path,
) -> None:
    """Read before the model names the features, a file separated by
    semicolons whose numbers have decimal commas gets the separator hint."""
    path = csv_file(tmp_path, "a;b;c\n1,5;2;3\n", "r.csv")

    assert reference_refusal(path, None).endswith(
        "line 2 has 2 fields, the header has 1 (is it separated by commas?); "
        "give every row a value for each column"
    )


def test_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow, a Parquet reference file is refused with the install
    command and the CSV alternative."""
    # A None entry in sys.modules is how Python marks a module as absent:
    # find_spec returns None and import raises ImportError, as on a machine
    # without pyarrow.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    path = csv_file(tmp_path, b"PAR1", "reference.parquet")

    message = reference_refusal(path)

    assert "reading Parquet needs pyarrow" in message
    assert "pip install pyarrow" in message
    assert "give the data as a .csv file" in message


def test_declared_feature_names_come_from_the_answer_then_the_metadata() -> None:
    """Before the model is loaded, feature names are known from the
    feature_names answer, else the given metadata, else not at all."""
    metadata = {"training_info": {"feature_names": ["m1", "m2"]}}

    assert declared_feature_names(["a"], metadata) == ["a"]
    assert declared_feature_names(None, metadata) == ["m1", "m2"]
    assert declared_feature_names(None, {"training_info": {}}) is None
    assert declared_feature_names(None, None) is None


PARQUET_COLUMNS = {
    # test id: (columns of the file, a phrase the fix must contain)
    "text-column": (
        {"a": [1.0], "b": ["x"], "c": [3.0]},
        "column 'b' holds string values",
    ),
    "missing-column": ({"a": [1.0], "b": [2.0]}, "no column for the features ['c']"),
    "null": ({"a": [1.0, None], "b": [2, 3], "c": [3.0, 4.0]}, "row 2 of 2"),
    "nan": (
        {"a": [1.0], "b": [2.0], "c": [float("nan")]},
        "row 1 of 1, column 'c' is nan",
    ),
    "no-rows": ({"a": [], "b": [], "c": []}, "has no rows"),
}


@pytest.mark.parametrize(
    ("columns", "fix"), list(PARQUET_COLUMNS.values()), ids=list(PARQUET_COLUMNS)
)
def test_bad_parquet_reference_is_refused(
    tmp_path: Path, columns: dict[str, list], fix: str
) -> None:
    """With pyarrow, Parquet reference data is checked like CSV."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow is optional")
    import pyarrow.parquet as pq

    path = tmp_path / "reference.parquet"
    # Lists infer their type (text, numbers); an empty one is a float column.
    table = pa.table(
        {
            name: pa.array(values, type=None if values else pa.float64())
            for name, values in columns.items()
        }
    )
    pq.write_table(table, path)

    message = reference_refusal(path)

    assert message.startswith(f"reference_data_path ({str(path)!r}): ")
    assert fix in message


def test_parquet_reference_is_read_by_feature_name(tmp_path: Path) -> None:
    """With pyarrow, integer and float columns are read by name."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow is optional")
    import pyarrow.parquet as pq

    path = tmp_path / "reference.pq"
    pq.write_table(
        pa.table({"c": [3.5, 0.25], "id": ["p", "q"], "a": [1, 2], "b": [0.0, -1.0]}),
        path,
    )
    corrupt = csv_file(tmp_path, b"PAR1 not really", "corrupt.parquet")

    data = read_reference_data(path, NAMES)

    assert (data.rows, data.file_format) == (2, "parquet")
    assert {name: list(values) for name, values in data.columns.items()} == {
        "a": [1.0, 2.0],
        "b": [0.0, -1.0],
        "c": [3.5, 0.25],
    }
    assert "cannot be read as Parquet" in reference_refusal(corrupt)
