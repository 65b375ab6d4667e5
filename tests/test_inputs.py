"""What ModelInference accepts, refuses and reports, as a caller sees it.

In-process tests use the package's own inference_example.py on the rendered
demo and sample packages; the spec's integration snippets, LOG_FORMAT=json,
LOG_LEVEL and an environment variable set in ``os.environ`` run as
subprocesses in a package folder, all at once with this module's render of
a package built with ``missing_features=zero`` (see ``background``).
"""

from __future__ import annotations

import csv
import decimal
import fractions
import json
import logging
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import (
    MANIFEST_FILE,
    VERSION,
    Rendered,
    consumer_environment,
    copy_package,
    run_concurrently,
    run_cookiecutter,
)
from package_builder.build import load_package_module

SNIPPETS = Path(__file__).parent / "snippets"
LOGGER = "inference_example"
PATTERN_3_REPEATS = 500  # 5 self-test rows x 500 = 2500 rows: 3 chunks of 1000


def self_test_of(package_dir: Path) -> dict[str, Any]:
    manifest = json.loads((package_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest["self_test"]


def run_python(
    code: str, cwd: Path, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` in ``cwd`` with ``settings`` in its os.environ."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=consumer_environment(**settings),
    )


JSON_LOG_SCRIPT = """
import json
from inference_example import ModelInference

with open("deployment_manifest.json", encoding="utf-8") as stream:
    records = json.load(stream)["self_test"]["inputs"]
inference = ModelInference()
inference.predict(records)
inference.predict(records[:2])
"""

LOG_LEVEL_SCRIPT = """
import json
from inference_example import ModelInference

with open("deployment_manifest.json", encoding="utf-8") as stream:
    records = json.load(stream)["self_test"]["inputs"]
inference = ModelInference()
with_site = [{**record, "site": "lab-3"} for record in records]
print(inference.predict(with_site)["total_samples"])
print(inference.predict(with_site[:2])["total_samples"])
"""

SAFE_PREDICT_DRIVER = """
import json

with open("deployment_manifest.json", encoding="utf-8") as stream:
    records = json.load(stream)["self_test"]["inputs"]
print(f"predicted {safe_predict(records)['total_samples']} samples")
incomplete = [dict(records[0])]
del incomplete[0]["auth_failure_ratio"]
try:
    safe_predict(incomplete)
except ValueError as error:
    print(f"gave up: {error}")
"""


def write_large_dataset(package_dir: Path) -> None:
    """large_dataset.csv: the package's self-test inputs, repeated."""
    records = self_test_of(package_dir)["inputs"]
    with open(package_dir / "large_dataset.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records * PATTERN_3_REPEATS)


@pytest.fixture(scope="module")
def background(
    demo: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The module's slow work, all at once: the missing_features=zero renders
    (one of them with out_of_range=error) and the subprocess runs."""
    batch_dir = copy_package(demo.package_dir, tmp_path_factory.mktemp("pattern3"))
    write_large_dataset(batch_dir)
    return run_concurrently(
        {
            "zero": lambda: run_cookiecutter(
                tmp_path_factory.mktemp("zero"),
                "missing_features=zero",
                "create_zip=no",
            ),
            "zero-error": lambda: run_cookiecutter(
                tmp_path_factory.mktemp("zero_error"),
                "missing_features=zero",
                "out_of_range=error",
                "create_zip=no",
            ),
            "os-environ": lambda: run_python(
                "from inference_example import ModelInference\nModelInference()\n",
                demo.package_dir,
                MODEL_BATCH_SIZE="1.5",
            ),
            "json-log": lambda: run_python(
                JSON_LOG_SCRIPT, demo.package_dir, LOG_FORMAT="json"
            ),
            "log-warning": lambda: run_python(
                LOG_LEVEL_SCRIPT, demo.package_dir, LOG_LEVEL="WARNING"
            ),
            "log-debug": lambda: run_python(
                LOG_LEVEL_SCRIPT, demo.package_dir, LOG_LEVEL="DEBUG"
            ),
            "pattern-3": lambda: run_python(
                (SNIPPETS / "pattern_3.py").read_text(), batch_dir
            ),
            "safe-predict": lambda: run_python(
                (SNIPPETS / "error_recovery.py").read_text() + SAFE_PREDICT_DRIVER,
                demo.package_dir,
            ),
        }
    )


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    """LOG_LEVEL / LOG_FORMAT configure the shared "inference_example" logger
    (own handler, no propagation): put it back after each test."""
    log = logging.getLogger(LOGGER)
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved


@pytest.fixture(scope="module")
def module(demo: Rendered) -> Any:
    """The demo package's own inference_example module."""
    return load_package_module(demo.package_dir)


@pytest.fixture(scope="module")
def inference(module: Any, demo: Rendered) -> Any:
    """ModelInference on the demo package, inference_config alone."""
    return module.ModelInference(demo.package_dir, environ={})


@pytest.fixture(scope="module")
def self_test(demo: Rendered) -> dict[str, Any]:
    return self_test_of(demo.package_dir)


@pytest.fixture
def records(self_test: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo's self-test inputs: 5 records, a fresh copy per test."""
    return [dict(record) for record in self_test["inputs"]]


@pytest.fixture(scope="module")
def zero_package(background: dict[str, Any]) -> Path:
    """The demo model built with missing_features=zero."""
    rendered = background["zero"]
    assert rendered.returncode == 0, rendered.stderr
    return rendered.package_dir


@pytest.fixture(scope="module")
def zero_error_package(background: dict[str, Any]) -> Path:
    """The demo model built with missing_features=zero and out_of_range=error."""
    rendered = background["zero-error"]
    assert rendered.returncode == 0, rendered.stderr
    return rendered.package_dir


@pytest.fixture
def zero_inference(zero_package: Path) -> Any:
    module = load_package_module(zero_package)
    inference = module.ModelInference(zero_package, environ={})
    assert inference.missing_features == "zero"
    return inference


# The three input forms


@pytest.mark.parametrize("package", ["demo", "scaled", "no_scaler", "dataframe"])
def test_list_dataframe_and_array_give_identical_results(
    package: str, request: pytest.FixtureRequest
) -> None:
    """The same rows as a list of dicts, a DataFrame (columns in another
    order) and a 2-D array in feature_names order give the same result,
    whose scores are the recorded self-test's."""
    if package == "demo":
        package_dir = request.getfixturevalue("demo").package_dir
    else:
        package_dir = request.getfixturevalue("rendered_samples")[package].package_dir
    inference = load_package_module(package_dir).ModelInference(package_dir, environ={})
    names = inference.feature_names
    self_test = self_test_of(package_dir)
    records = self_test["inputs"]
    frame = pd.DataFrame(records)[names[::-1]]
    array = np.array([[record[name] for name in names] for record in records])
    from_records = inference.predict(records)
    assert inference.predict(frame) == from_records
    assert inference.predict(array) == from_records
    assert from_records["scores"] == pytest.approx(self_test["scores"], abs=1e-9)
    assert from_records["predictions"] == self_test["predictions"]


@pytest.mark.parametrize("form", ["records", "dataframe", "array"])
def test_results_are_plain_json_types(
    inference: Any, records: list[dict], form: str
) -> None:
    """Whatever the input form, the result holds plain Python types:
    json.dumps works and round-trips, predictions are ints, scores floats."""
    names = inference.feature_names
    features = {
        "records": records,
        "dataframe": pd.DataFrame(records),
        "array": np.array([[record[name] for name in names] for record in records]),
    }[form]
    result = inference.predict(features)
    assert json.loads(json.dumps(result)) == result
    assert set(result) == {
        "predictions",
        "scores",
        "threshold",
        "anomaly_count",
        "total_samples",
    }
    assert all(type(value) is int for value in result["predictions"])
    assert all(type(value) is float for value in result["scores"])
    assert type(result["threshold"]) is float
    assert type(result["anomaly_count"]) is int
    assert type(result["total_samples"]) is int
    assert type(result["predictions"]) is list and type(result["scores"]) is list


def test_empty_list_gives_a_zero_sample_result(inference: Any) -> None:
    """``predict([])`` scores nothing and says so."""
    assert inference.predict([]) == {
        "predictions": [],
        "scores": [],
        "threshold": inference.threshold,
        "anomaly_count": 0,
        "total_samples": 0,
    }


def test_numpy_scalars_are_accepted(inference: Any, records: list[dict]) -> None:
    """Values that are numpy scalars (float64, float32, int64) score like the
    same Python numbers."""
    kinds = [np.float64, np.float32, np.int64]
    converted = [
        {
            name: kinds[index % 3](value if index % 3 != 2 else round(value))
            for index, (name, value) in enumerate(record.items())
        }
        for record in records
    ]
    plain = [
        {name: float(value) for name, value in record.items()} for record in converted
    ]
    assert inference.predict(converted) == inference.predict(plain)


def test_decimal_values_are_accepted(inference: Any, records: list[dict]) -> None:
    """Decimals (what database drivers give for NUMERIC columns) and
    Fractions score like the same floats; a Decimal NaN is refused."""
    exact = [
        {
            name: decimal.Decimal(repr(value))
            if index % 2
            else fractions.Fraction(value)
            for index, (name, value) in enumerate(record.items())
        }
        for record in records
    ]
    assert inference.predict(exact) == inference.predict(records)
    records[1]["beacon_ratio"] = decimal.Decimal("sNaN")
    with pytest.raises(ValueError, match="Feature 'beacon_ratio' in row 1 is "):
        inference.predict(records)


# Refusals


def test_missing_feature_is_refused_naming_feature_and_row(
    inference: Any, records: list[dict]
) -> None:
    """A record without a feature: the spec's ``ValueError: Feature '<name>'
    not found in input``, with the row."""
    del records[2]["deauth_ratio"]
    with pytest.raises(ValueError) as raised:
        inference.predict(records)
    message = str(raised.value)
    assert message.startswith("Feature 'deauth_ratio' not found in input (row 2)")


def test_missing_dataframe_column_is_refused(
    inference: Any, records: list[dict]
) -> None:
    """A DataFrame without a feature column: the same ValueError, for all
    its rows."""
    frame = pd.DataFrame(records).drop(columns="deauth_ratio")
    with pytest.raises(
        ValueError,
        match=re.escape("Feature 'deauth_ratio' not found in input (all 5 rows)"),
    ):
        inference.predict(frame)


BAD_VALUES = {
    "text": "abc",
    "numeric-text": "0.5",
    "true": True,
    "false": False,
    "none": None,
    "nan": math.nan,
    "inf": math.inf,
    "minus-inf": -math.inf,
    "list": [0.5],
}


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES)
def test_non_number_is_refused_naming_feature_and_row(
    inference: Any, records: list[dict], value: Any
) -> None:
    """A value that is not a finite number (text, even numeric text, a bool,
    None, NaN, +/-inf, a list) is refused: ``Feature 'beacon_ratio' in row 1
    is <value>: every value must be a finite number``."""
    records[1]["beacon_ratio"] = value
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"Feature 'beacon_ratio' in row 1 is {value!r}: every value must be a "
            "finite number"
        ),
    ):
        inference.predict(records)


def test_masked_array_values_are_refused_and_unmasked_ones_scored(
    inference: Any, records: list[dict]
) -> None:
    """A masked cell is a missing value, refused naming feature and row; a
    masked array with nothing masked scores like its data."""
    X = inference.preprocess_features(records)
    masked = np.ma.masked_array(X.copy(), mask=np.zeros_like(X, dtype=bool))
    assert inference.predict(masked) == inference.predict(X)
    masked.data[1, 2] = 1e6
    masked.mask[1, 2] = True
    name = inference.feature_names[2]
    with pytest.raises(
        ValueError,
        match=re.escape(f"Feature '{name}' in row 1 is masked: fill or drop the 1"),
    ):
        inference.predict(masked)


def test_integer_too_large_for_a_float_is_refused_naming_feature_and_row(
    inference: Any, records: list[dict]
) -> None:
    """A whole number beyond float range (JSON allows 10**400) is not a
    finite number either: ValueError naming the feature and the row, with the
    value cut to its first digits and its length."""
    records[1]["beacon_ratio"] = 10**400
    with pytest.raises(ValueError) as raised:
        inference.predict(records)
    assert str(raised.value) == (
        f"Feature 'beacon_ratio' in row 1 is 1{'0' * 56}... (401 characters): "
        "every value must be a finite number"
    )


@pytest.mark.parametrize("form", ["dataframe", "array"])
def test_nan_in_dataframe_or_array_is_refused(
    inference: Any, records: list[dict], form: str
) -> None:
    """NaN in a DataFrame or an array is refused the same way, naming the
    feature and the (positional) row."""
    names = inference.feature_names
    frame = pd.DataFrame(records, index=range(100, 105))[names]
    frame.loc[103, "beacon_ratio"] = math.nan
    features = frame if form == "dataframe" else frame.to_numpy()
    with pytest.raises(
        ValueError, match=re.escape("Feature 'beacon_ratio' in row 3 is nan")
    ):
        inference.predict(features)


REFUSED_SHAPES = {
    "bare-dict": (
        "record",
        "features must be a list of dicts, a DataFrame or a 2-D array, got dict: "
        "wrap one record in a list",
    ),
    "string": (
        "text",
        "features must be a list of dicts, a DataFrame or a 2-D array, got str",
    ),
    "list-of-lists": (
        "rows",
        "row 0 is of type list, expected a dict (a JSON object) of feature name "
        "-> number",
    ),
    "1-d-array": ("vector", "array input must have shape (n_rows, 17)"),
}


@pytest.mark.parametrize(
    ("kind", "message"), REFUSED_SHAPES.values(), ids=REFUSED_SHAPES
)
def test_wrong_container_is_refused_with_a_hint(
    inference: Any, records: list[dict], kind: str, message: str
) -> None:
    """A bare dict (hint: wrap it in a list), a string, rows that are lists,
    or a 1-D array: a ValueError that says what is expected."""
    features = {
        "record": records[0],
        "text": "auth_failure_ratio=0.1",
        "rows": [list(record.values()) for record in records],
        "vector": np.array(list(records[0].values())),
    }[kind]
    with pytest.raises(ValueError, match=re.escape(message)):
        inference.predict(features)


@pytest.mark.parametrize("column", [list, tuple, np.array])
def test_a_dict_of_columns_is_refused_with_the_dataframe_hint(
    inference: Any, records: list[dict], column: Any
) -> None:
    """A dict of columns (feature name -> list, tuple or array of values):
    a ValueError whose hint is to pass pandas.DataFrame(features), which
    then scores as the records do; not to wrap it in a list."""
    columns = {name: column([r[name] for r in records]) for name in records[0]}
    with pytest.raises(ValueError) as refused:
        inference.predict(columns)
    assert str(refused.value) == (
        "features must be a list of dicts, a DataFrame or a 2-D array, got dict: "
        "its values are columns, so pass pandas.DataFrame(features) (or a list "
        "of dicts, one per record)"
    )
    assert inference.predict(pd.DataFrame(columns)) == inference.predict(records)


# missing_features=zero and extra keys: what the log says


def test_zero_policy_fills_and_warns_once_per_fill(
    zero_inference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Built with missing_features=zero: each missing value becomes 0.0, with
    one WARNING per feature naming its rows; the result equals passing 0.0."""
    complete = self_test_of(zero_inference.model_dir)["inputs"]
    records = [dict(record) for record in complete]
    explicit = [dict(record) for record in complete]
    for row, name in [
        (0, "auth_failure_ratio"),
        (0, "deauth_ratio"),
        (2, "beacon_ratio"),
    ]:
        del records[row][name]
        explicit[row][name] = 0.0
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    filled = zero_inference.predict(records)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Feature 'auth_failure_ratio' not found in input (row 0): filled with 0.0",
        "Feature 'deauth_ratio' not found in input (row 0): filled with 0.0",
        "Feature 'beacon_ratio' not found in input (row 2): filled with 0.0",
    ]
    assert {r.name for r in warnings} == {LOGGER}
    assert filled == zero_inference.predict(explicit)
    assert filled["scores"] != zero_inference.predict(complete)["scores"]


def test_zero_policy_logs_one_warning_per_feature_and_call(
    zero_inference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """1000 records without a feature: one WARNING naming the first rows and
    how many more, not one per row."""
    complete = self_test_of(zero_inference.model_dir)["inputs"]
    records = [dict(complete[i % len(complete)]) for i in range(1000)]
    for record in records:
        del record["deauth_ratio"]
    caplog.set_level(logging.WARNING, logger=LOGGER)
    zero_inference.predict(records)
    assert [r.getMessage() for r in caplog.records] == [
        "Feature 'deauth_ratio' not found in input (rows 0, 1, 2, 3, 4 and 995 "
        "more): filled with 0.0"
    ]


@pytest.mark.parametrize("form", ["records", "dataframe"])
def test_zero_policy_fills_are_exempt_from_the_range_check(
    zero_error_package: Path, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    """Built with missing_features=zero and out_of_range=error: a missing
    feature whose 0.0 is outside the reference range is filled and scored as
    a 0.0 would be without the range check, with the fill's WARNING alone
    (the caller never sent that 0.0); so under warn, with no range warning.
    A 0.0 the caller sends is refused as the value it is."""
    module = load_package_module(zero_error_package)
    inference = module.ModelInference(zero_error_package, environ={})
    assert (inference.missing_features, inference.out_of_range) == ("zero", "error")
    statistics = inference.monitoring["features"]
    records = [dict(record) for record in self_test_of(zero_error_package)["inputs"]]
    name = next(n for n in inference.feature_names if statistics[n]["min"] > 0)
    low, high = statistics[name]["min"], statistics[name]["max"]
    del records[1][name]
    sent = [{name: 0.0, **record} for record in records]  # 0.0 where it is missing
    features: Any = records
    explicit = sent
    where = "row 1"
    if form == "dataframe":  # the column missing from every row
        features = pd.DataFrame(records).drop(columns=name)
        explicit = [{**record, name: 0.0} for record in records]
        where = f"all {len(records)} rows"
    allowed = module.ModelInference(zero_error_package, environ={})
    allowed.out_of_range = "allow"
    fill = f"Feature '{name}' not found in input ({where}): filled with 0.0"
    for policy in ("error", "warn"):
        inference.out_of_range = policy
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            result = inference.predict(features)
        assert [r.getMessage() for r in caplog.records] == [fill]
        assert result == allowed.predict(explicit)
    inference.out_of_range = "error"
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"Feature '{name}' in row 1 is 0.0, outside the reference range "
            f"[{low!r}, {high!r}]"
        ),
    ):
        inference.predict(sent)


def test_zero_policy_fills_a_missing_dataframe_column(
    zero_inference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A DataFrame without a column under missing_features=zero: one
    WARNING for all its rows; the result equals a column of 0.0."""
    frame = pd.DataFrame(self_test_of(zero_inference.model_dir)["inputs"])
    caplog.set_level(logging.WARNING, logger=LOGGER)
    filled = zero_inference.predict(frame.drop(columns="deauth_ratio"))
    assert [r.getMessage() for r in caplog.records] == [
        "Feature 'deauth_ratio' not found in input (all 5 rows): filled with 0.0"
    ]
    assert filled == zero_inference.predict(frame.assign(deauth_ratio=0.0))


def test_extra_keys_are_ignored_and_logged_once_at_debug(
    module: Any, demo: Rendered, records: list[dict], caplog: pytest.LogCaptureFixture
) -> None:
    """Keys that are not features (even with text values) are ignored; each
    new name is logged once, at DEBUG, however often it comes."""
    inference = module.ModelInference(demo.package_dir, environ={})
    expected = inference.predict(records)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with_site = [{**record, "site": "lab-3"} for record in records]
    assert inference.predict(with_site) == expected
    assert inference.predict(with_site) == expected
    assert (
        inference.predict([{**records[0], "site": "x", "rack": 7}])["scores"]
        == expected["scores"][:1]
    )
    ignored = [r for r in caplog.records if "not features" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in ignored] == [
        ("DEBUG", "ignoring input keys that are not features: 'site'"),
        ("DEBUG", "ignoring input keys that are not features: 'rack'"),
    ]


def test_extra_keys_are_logged_cut_and_escaped(
    module: Any, demo: Rendered, records: list[dict], caplog: pytest.LogCaptureFixture
) -> None:
    """A key of 200,000 characters, or one with a line break, is logged as a
    repr cut to 60 characters: no huge log line, no forged one."""
    inference = module.ModelInference(demo.package_dir, environ={})
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    forged = "x\n2026-01-01 CRITICAL inference_example: FORGED"
    inference.predict([{**records[0], "k" * 200_000: 1, forged: 2}])
    (message,) = [
        r.getMessage() for r in caplog.records if "not features" in r.getMessage()
    ]
    assert "\n" not in message
    assert len(message) < 200
    assert "'x\\n2026-01-01 CRITICAL" in message
    assert "... (200002 characters)" in message


def test_remembered_extra_key_names_are_bounded(
    module: Any, demo: Rendered, records: list[dict], caplog: pytest.LogCaptureFixture
) -> None:
    """Clients sending ever new keys do not grow memory: with DEBUG off no
    name is kept; with it on, at most the first _MAX_NOTED_KEYS names are
    logged and kept."""
    inference = module.ModelInference(demo.package_dir, environ={})
    limit = module._MAX_NOTED_KEYS

    def fresh_keys(start: int) -> list[dict]:
        return [
            {**records[0], **{f"k{start + i}_{j}": 1 for j in range(10)}}
            for i in range(limit // 5)
        ]

    caplog.set_level(logging.INFO, logger=LOGGER)
    inference.predict(fresh_keys(0))
    assert inference._ignored_keys == set()
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for start in range(0, 3 * limit, limit // 5):
        inference.predict(fresh_keys(start))
    assert len(inference._ignored_keys) == limit
    logged = sum(
        len(r.getMessage().split(": ", 1)[1].split(", "))
        for r in caplog.records
        if "not features" in r.getMessage()
    )
    assert logged == limit


def test_mapping_records_are_read_not_filled(module: Any, demo: Rendered) -> None:
    """A defaultdict (or Counter) record without a feature is refused like a
    dict, and the caller's record is left as it was."""
    from collections import Counter, defaultdict

    inference = module.ModelInference(demo.package_dir, environ={})
    for record in (defaultdict(float, {"beacon_ratio": 0.1}), Counter(beacon_ratio=1)):
        with pytest.raises(ValueError, match="not found in input"):
            inference.predict([record])
        assert list(record) == ["beacon_ratio"]


def test_repeated_dataframe_column_is_refused_naming_it(
    inference: Any, records: list[dict]
) -> None:
    """A DataFrame with two columns of one feature's name: a ValueError that
    names the column and says to keep one."""
    frame = pd.DataFrame(records)
    doubled = pd.concat([frame, frame[["beacon_ratio"]]], axis=1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "the DataFrame has more than one column named 'beacon_ratio': keep one "
            "column per feature"
        ),
    ):
        inference.predict(doubled)


def test_zip_or_file_instead_of_folder_is_a_file_not_found_error(
    module: Any, demo: Rendered, tmp_path: Path
) -> None:
    """The zip, or a file of the package, as model_dir: FileNotFoundError
    saying it is not a folder (for the zip: unzip it); a folder without a
    manifest: FileNotFoundError with the manifest's absolute path."""
    archive = tmp_path / "model_x_deployment.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(
            f"{archive} is not a folder: unzip it and pass the extracted folder"
        ),
    ):
        module.ModelInference(archive)
    manifest = demo.package_dir / MANIFEST_FILE
    with pytest.raises(FileNotFoundError) as not_a_folder:
        module.ModelInference(manifest)
    assert str(not_a_folder.value) == (
        f"{manifest} is not a folder: pass the extracted package folder"
    )
    with pytest.raises(FileNotFoundError) as no_manifest:
        module.ModelInference(tmp_path)
    assert str(no_manifest.value) == (
        f"{tmp_path / MANIFEST_FILE} not found: pass the extracted package folder"
    )


def test_a_manifest_that_is_a_folder_is_an_os_error_naming_the_fix(
    module: Any, demo: Rendered, tmp_path: Path
) -> None:
    """A deployment_manifest.json that is a folder raises IsADirectoryError,
    as reading it does, saying what it is and to re-download the package
    (not to give read access: test_batch_cli has the unreadable one)."""
    package = copy_package(demo.package_dir, tmp_path)
    manifest = package / MANIFEST_FILE
    manifest.unlink()
    manifest.mkdir()
    with pytest.raises(IsADirectoryError) as unreadable:
        module.ModelInference(package)
    assert str(unreadable.value) == (
        f"{manifest} is not a regular file (a folder): re-download the package"
    )


# Batches and time limits


def recording_class(module: Any, pause: float = 0.0) -> type:
    """ModelInference that records how many rows each ``score`` call gets
    (and, with ``pause``, takes that long over each): it observes, then
    scores as the package does."""

    class Recording(module.ModelInference):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.scored_rows: list[int] = []
            super().__init__(*args, **kwargs)

        def score(self, X: np.ndarray) -> np.ndarray:
            self.scored_rows.append(len(X))
            time.sleep(pause)
            return super().score(X)

    return Recording


def test_batch_size_bounds_the_rows_scored_at_once(
    module: Any, demo: Rendered, inference: Any, records: list[dict]
) -> None:
    """MODEL_BATCH_SIZE=2 scores 5 records as 2 + 2 + 1 rows, with the same
    result as one batch of the manifest's 1000."""
    Recording = recording_class(module)
    batched = Recording(demo.package_dir, environ={"MODEL_BATCH_SIZE": "2"})
    assert batched.predict(records) == inference.predict(records)
    assert batched.scored_rows == [2, 2, 1]
    whole = Recording(demo.package_dir, environ={})
    whole.predict(records * 3)
    assert whole.scored_rows == [15]


def test_batch_size_set_during_a_call_applies_to_the_next_call(
    module: Any, demo: Rendered, inference: Any, records: list[dict]
) -> None:
    """batch_size set (from another thread, say) while predict runs: that
    call goes on in its own batches and scores every row; the next call
    takes the new size."""
    Recording = recording_class(module)

    class Retuned(Recording):
        def score(self, X: np.ndarray) -> np.ndarray:
            self.batch_size = 1000 if self.batch_size == 2 else 2
            return super().score(X)

    retuned = Retuned(demo.package_dir, environ={"MODEL_BATCH_SIZE": "2"})
    assert retuned.predict(records) == inference.predict(records)
    assert retuned.scored_rows == [2, 2, 1]
    assert retuned.batch_size == 1000  # set to 1000, 2, then 1000 again
    retuned.scored_rows.clear()
    assert retuned.predict(records) == inference.predict(records)
    assert retuned.scored_rows == [5]


def test_timeout_stops_between_batches(
    module: Any, demo: Rendered, records: list[dict]
) -> None:
    """MODEL_TIMEOUT=1 with batches of 1 row that take 2 s each: after the
    first batch, TimeoutError says how far it got; no more is scored. (A
    second of room to read the 5 records before the first batch, and a
    batch twice the timeout: the outcome holds on a loaded machine.)"""
    Slow = recording_class(module, pause=2.0)
    slow = Slow(
        demo.package_dir, environ={"MODEL_TIMEOUT": "1", "MODEL_BATCH_SIZE": "1"}
    )
    with pytest.raises(
        TimeoutError,
        match=re.escape(
            "predict exceeded timeout_seconds=1.0 after 1 of 5 rows: send smaller "
            "batches"
        ),
    ):
        slow.predict(records)
    assert slow.scored_rows == [1]


def test_timeout_is_checked_while_records_are_converted(
    zero_inference: Any,
) -> None:
    """Records converted one by one (here: with missing features, filled)
    are scored as the same rows with explicit zeros; with a timeout the
    conversion cannot meet, TimeoutError is raised while reading the input,
    before any row is scored."""
    complete = self_test_of(zero_inference.model_dir)["inputs"]
    count = 10_000
    records = [{} if row % 3 else dict(complete[row % 5]) for row in range(count)]
    for row in range(0, count, 7):
        records[row].pop("deauth_ratio", None)
    explicit = [
        {name: record.get(name, 0.0) for name in zero_inference.feature_names}
        for record in records
    ]
    assert zero_inference.predict(records) == zero_inference.predict(explicit)
    zero_inference.timeout_seconds = 1e-9
    with pytest.raises(
        TimeoutError,
        match=r"^predict exceeded timeout_seconds=1e-09 while reading its input, "
        rf"after \d+ of {count} rows: send smaller batches$",
    ):
        zero_inference.predict([{}] * count)


# Environment variables


def test_settings_come_from_inference_config_without_environment(
    inference: Any, demo: Rendered
) -> None:
    """With no variables set, batch size, timeout and threshold are the
    manifest's inference_config."""
    manifest = json.loads((demo.package_dir / MANIFEST_FILE).read_text())
    config = manifest["inference_config"]
    assert inference.batch_size == config["batch_size"]
    assert inference.timeout_seconds == config["timeout_seconds"]
    assert inference.threshold == config["threshold"]
    assert inference.settings.overrides == ()


def test_settings_are_the_values_in_effect_after_they_are_set(
    module: Any, demo: Rendered
) -> None:
    """settings gives what is in effect: values set on the instance after
    loading, and still the variables that set values when it loaded."""
    inference = module.ModelInference(
        demo.package_dir, environ={"MODEL_BATCH_SIZE": "7"}
    )
    inference.batch_size = 5
    inference.timeout_seconds = 3
    inference.missing_features = "zero"
    settings = inference.settings
    assert (settings.batch_size, settings.timeout_seconds) == (5, 3.0)
    assert (settings.missing_features, settings.out_of_range) == ("zero", "allow")
    assert settings.overrides == ("MODEL_BATCH_SIZE",)


def test_model_threshold_changes_threshold_and_predictions(
    module: Any, demo: Rendered, self_test: dict, records: list[dict]
) -> None:
    """MODEL_THRESHOLD set to the lowest self-test score: that is the
    threshold, and every other row becomes an anomaly."""
    scores = self_test["scores"]
    lowest = min(scores)
    expected = [int(score > lowest) for score in scores]
    assert expected != self_test["predictions"]
    tuned = module.ModelInference(
        demo.package_dir, environ={"MODEL_THRESHOLD": repr(lowest)}
    )
    result = tuned.predict(records)
    assert tuned.threshold == result["threshold"] == lowest
    assert result["predictions"] == expected
    assert tuned.settings.overrides == ("MODEL_THRESHOLD",)


def test_batch_size_and_timeout_variables_are_applied(
    module: Any, demo: Rendered
) -> None:
    """MODEL_BATCH_SIZE=7 and MODEL_TIMEOUT=2.5 become batch_size 7 (an int)
    and timeout_seconds 2.5."""
    tuned = module.ModelInference(
        demo.package_dir,
        environ={"MODEL_BATCH_SIZE": " 7 ", "MODEL_TIMEOUT": "2.5"},
    )
    assert (tuned.batch_size, type(tuned.batch_size)) == (7, int)
    assert tuned.timeout_seconds == 2.5


def test_a_batch_size_of_many_digits_is_taken_exactly(
    module: Any, demo: Rendered
) -> None:
    """MODEL_BATCH_SIZE of 23 digits is that whole number, not the float
    nearest it (which would end in ...1611392)."""
    digits = "9" * 23
    tuned = module.ModelInference(
        demo.package_dir, environ={"MODEL_BATCH_SIZE": digits}
    )
    assert tuned.batch_size == int(digits)


def test_environ_that_is_not_a_mapping_is_a_type_error(
    module: Any, demo: Rendered
) -> None:
    """``environ`` given as a list of pairs: a TypeError that says what it
    takes, not an AttributeError from inside."""
    with pytest.raises(
        TypeError,
        match=r"^environ must map variable names to values \(os.environ, a dict\), "
        "not list$",
    ):
        module.ModelInference(demo.package_dir, environ=[("MODEL_BATCH_SIZE", "7")])


def test_environ_values_that_are_not_strings_are_read_as_text(
    module: Any, demo: Rendered
) -> None:
    """An ``environ`` mapping with numbers (not os.environ's strings) works
    like their text; None, like an empty value, leaves the setting unset."""
    tuned = module.ModelInference(
        demo.package_dir, environ={"MODEL_THRESHOLD": 0.6, "MODEL_BATCH_SIZE": 7}
    )
    assert (tuned.threshold, tuned.batch_size) == (0.6, 7)
    unset = module.ModelInference(demo.package_dir, environ={"MODEL_TIMEOUT": None})
    assert (
        unset.timeout_seconds == unset.manifest["inference_config"]["timeout_seconds"]
    )
    zero = module.ModelInference(demo.package_dir, environ={"MODEL_THRESHOLD": 0.0})
    assert zero.threshold == 0.0
    with pytest.raises(module.ConfigurationError, match="MODEL_BATCH_SIZE=0"):
        module.ModelInference(demo.package_dir, environ={"MODEL_BATCH_SIZE": 0})


def test_pickle_names_the_folder_found_when_loaded(
    module: Any, demo: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded by a relative path, then pickled after the working directory
    changed: the pickle still names the package folder."""
    import pickle

    monkeypatch.chdir(demo.package_dir)
    inference = module.ModelInference(".", environ={})
    monkeypatch.chdir(demo.package_dir.parent)
    clone = pickle.loads(pickle.dumps(inference))
    assert clone.model_dir == demo.package_dir


def test_settable_attributes_are_checked_and_survive_pickling(
    module: Any, demo: Rendered, records: list[dict]
) -> None:
    """batch_size, timeout_seconds, missing_features and out_of_range can be
    set on an instance; a value that cannot be used raises ConfigurationError
    naming the attribute and leaves the old value; a pickle carries them."""
    import pickle

    inference = module.ModelInference(demo.package_dir, environ={})
    bad = {
        "batch_size": [-1, 0, 2.5, "many", None, True],
        "timeout_seconds": [-1, 0, "soon", None, math.inf],
        "missing_features": ["ignore", None, 0],
        "out_of_range": ["bogus", None],
    }
    for name, values in bad.items():
        before = getattr(inference, name)
        for value in values:
            with pytest.raises(
                module.ConfigurationError,
                match=re.escape(f"{name}={value!r} cannot be used"),
            ):
                setattr(inference, name, value)
            assert getattr(inference, name) == before
    inference.batch_size = 2
    inference.timeout_seconds = 9.5
    inference.missing_features = "ZERO"
    inference.out_of_range = "error"
    expected = ("zero", "error")
    assert (inference.missing_features, inference.out_of_range) == expected
    assert inference.predict(records) == module.ModelInference(
        demo.package_dir, environ={}
    ).predict(records)
    clone = pickle.loads(pickle.dumps(inference))
    assert (clone.batch_size, clone.timeout_seconds) == (2, 9.5)
    assert (clone.missing_features, clone.out_of_range) == expected


INVALID_SETTINGS = [
    ("MODEL_THRESHOLD", "abc"),
    ("MODEL_THRESHOLD", "nan"),
    ("MODEL_THRESHOLD", "inf"),
    ("MODEL_BATCH_SIZE", "abc"),
    ("MODEL_BATCH_SIZE", "0"),
    ("MODEL_BATCH_SIZE", "-1"),
    ("MODEL_BATCH_SIZE", "nan"),
    ("MODEL_BATCH_SIZE", "1.5"),
    ("MODEL_TIMEOUT", "abc"),
    ("MODEL_TIMEOUT", "0"),
    ("MODEL_TIMEOUT", "-1"),
    ("MODEL_TIMEOUT", "nan"),
    ("MODEL_TIMEOUT", "inf"),
    ("MODEL_TIMEOUT", "1e400"),
    # Python-only number forms: a digit separator, digits of other scripts.
    ("MODEL_THRESHOLD", "1_0"),
    ("MODEL_BATCH_SIZE", "\u0661\u0660"),  # ARABIC-INDIC DIGITS ONE, ZERO
    ("MODEL_TIMEOUT", "\uff15"),  # FULLWIDTH DIGIT FIVE
    ("LOG_LEVEL", "loud"),
    ("LOG_FORMAT", "xml"),
]


@pytest.mark.parametrize(("name", "value"), INVALID_SETTINGS)
def test_invalid_variable_is_refused_at_construction(
    module: Any, demo: Rendered, name: str, value: str
) -> None:
    """An unusable value raises ConfigurationError when ModelInference is
    constructed, naming the variable and the value."""
    with pytest.raises(
        module.ConfigurationError, match=re.escape(f"{name}={value!r} cannot be used")
    ):
        module.ModelInference(demo.package_dir, environ={name: value})


def test_invalid_variable_in_os_environ_is_refused(background: dict) -> None:
    """MODEL_BATCH_SIZE=1.5 exported in the shell: ``ModelInference()`` in
    the package folder fails with the ConfigurationError naming it."""
    result = background["os-environ"]
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "inference_example.ConfigurationError: MODEL_BATCH_SIZE='1.5' cannot be "
        "used: give a whole number of rows, 1 or more"
    )


def test_json_log_format_writes_one_record_per_predict(
    background: dict, self_test: dict
) -> None:
    """LOG_FORMAT=json: each predict call writes exactly one JSON line on
    stderr with samples, anomalies and latency_ms; nothing else is written."""
    result = background["json-log"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    predictions = self_test["predictions"]
    assert [(e["samples"], e["anomalies"]) for e in entries] == [
        (5, sum(predictions)),
        (2, sum(predictions[:2])),
    ]
    for entry in entries:
        assert list(entry) == [
            "time",
            "level",
            "logger",
            "message",
            "event",
            "samples",
            "anomalies",
            "latency_ms",
            "model_version",
        ]
        assert entry["level"] == "INFO"
        assert entry["logger"] == LOGGER
        assert entry["event"] == "predict"
        assert entry["model_version"] == VERSION
        assert isinstance(entry["latency_ms"], float) and entry["latency_ms"] >= 0
        assert entry["message"] == (
            f"predict: {entry['samples']} samples, {entry['anomalies']} anomalies, "
            f"{entry['latency_ms']:.3f} ms"
        )
        stamp = datetime.fromisoformat(entry["time"])
        assert stamp.utcoffset() == timedelta(0)
        assert abs(datetime.now(timezone.utc) - stamp) < timedelta(hours=1)


def test_log_level_warning_silences_info_and_debug(background: dict) -> None:
    """LOG_LEVEL=WARNING: two predict calls with a key that is not a
    feature (INFO per call, DEBUG for the key) write nothing to stderr."""
    result = background["log-warning"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["5", "2"]
    assert result.stderr == ""


def test_log_level_debug_logs_ignored_keys_once(background: dict) -> None:
    """LOG_LEVEL=DEBUG: the same calls log, in the text format on stderr,
    the ignored key at DEBUG once and one INFO line per predict call."""
    result = background["log-debug"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["5", "2"]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    lines = result.stderr.splitlines()
    ignored = [line for line in lines if "not features" in line]
    assert len(ignored) == 1, result.stderr
    assert re.fullmatch(
        rf"{stamp} DEBUG {LOGGER}: ignoring input keys that are not features: "
        "'site'",
        ignored[0],
    )
    predicts = [line for line in lines if f" INFO {LOGGER}: predict: " in line]
    assert [line.split(": predict: ")[1].split(",")[0] for line in predicts] == [
        "5 samples",
        "2 samples",
    ]


# The specification's code, run as written


def test_spec_pattern_3_batch_processing_runs_as_written(
    background: dict, self_test: dict
) -> None:
    """The spec's Pattern 3 reads large_dataset.csv (2500 rows) in chunks of
    1000 and prints each chunk's anomaly count."""
    result = background["pattern-3"]
    assert result.returncode == 0, result.stderr
    per_copy = sum(self_test["predictions"])
    rows = len(self_test["inputs"]) * PATTERN_3_REPEATS
    chunks = [min(1000, rows - start) for start in range(0, rows, 1000)]
    assert result.stdout.splitlines() == [
        f"Batch anomalies: {per_copy * chunk // len(self_test['inputs'])}"
        for chunk in chunks
    ]


def test_spec_error_recovery_safe_predict_works_as_written(background: dict) -> None:
    """The spec's ``safe_predict`` (with the ``import time`` its snippet
    lacks): it returns the result; on a record without a feature it logs
    three failed attempts at ERROR and re-raises the ValueError."""
    result = background["safe-predict"]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "predicted 5 samples"
    assert lines[1].startswith(
        "gave up: Feature 'auth_failure_ratio' not found in input (row 0)"
    )
    failures = [
        line for line in result.stderr.splitlines() if "Prediction attempt" in line
    ]
    assert [line.split(" failed: ")[0] for line in failures] == [
        f"ERROR:__main__:Prediction attempt {attempt}" for attempt in (1, 2, 3)
    ]
    assert all(
        "Feature 'auth_failure_ratio' not found in input" in line for line in failures
    )
