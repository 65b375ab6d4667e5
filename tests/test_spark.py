"""Scoring on Spark (spark_scoring.py) and pickling ModelInference, for real.

Spark runs in ``local[2]`` mode bound to the loopback interface: a JVM, a
driver and two Python workers, which are separate processes that cannot
import the package's modules by name (they are not on their path), so the
shipped zip is the only way they get the model. One SparkSession serves the
whole module. The Spark tests skip when pyspark cannot be imported
(``nox -s tests`` installs it); the pickling tests need no Spark.

The demo package's zip is shared with other tests: it is only read here,
and tampering happens to copies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import (
    MANIFEST_FILE,
    Rendered,
    consumer_environment,
    copy_package,
    resign_package,
    run_validate_model,
    unreadable_file,
)
from local_spark import ENVIRONMENT, local_session
from package_builder.build import load_package_module

pytestmark = [
    # pyspark 4 does not fully support pandas 3 yet, and says so.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

ROWS = 200_000
NOT_MATCHING = "package integrity check failed, nothing was loaded: model.joblib: "
FINITE = "every value must be a finite number"


class _WritesMarker:
    """Unpickling this object creates the file named by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def load_module(path: Path) -> ModuleType:
    """Import a package's .py file under a name of its own (nothing is put
    on sys.path, so the Spark workers cannot import it either)."""
    name = f"{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def rewrite_zip(source: Path, target: Path, replace: dict[str, bytes]) -> None:
    """Copy a zip entry by entry, with the entries named in ``replace``
    (paths inside the package folder) given new contents."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            inner = info.filename.split("/", 1)[1]
            data = replace.pop(inner, None)
            new.writestr(info, old.read(info) if data is None else data)
    assert not replace, f"not in the zip: {list(replace)}"


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip a package folder with one top folder, as the build does."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return target


# Spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One SparkSession in local[2] mode on 127.0.0.1, stopped at the end."""
    pytest.importorskip(
        "pyspark",
        reason="pyspark is not installed (pip install -r requirements-spark.txt; "
        "nox -s tests installs it)",
    )
    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    os.environ.update(ENVIRONMENT)
    session = local_session("model-package-tests")
    try:
        yield session
    finally:
        session.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def scoring(demo: Rendered) -> ModuleType:
    """The demo package's spark_scoring.py, imported from the package folder."""
    return load_module(demo.package_dir / "spark_scoring.py")


@pytest.fixture(scope="module")
def inference(demo: Rendered) -> Any:
    """ModelInference on the demo package in this process: the reference."""
    module = load_package_module(demo.package_dir)
    return module.ModelInference(demo.package_dir, environ={})


def generated(spark: Any, inference: Any, rows: int, partitions: int = 4) -> Any:
    """Rows around the scaler's mean, every 50th far out; the feature columns
    in reverse order between an id and a text column, one feature an int,
    one a float, one a decimal."""
    from pyspark.sql import functions as F

    names = inference.feature_names
    mean, scale = inference.scaler.mean_, inference.scaler.scale_
    spread = F.when(F.col("id") % 50 == 0, F.lit(6.0)).otherwise(F.lit(1.0))
    columns = {
        name: F.randn(seed=index) * spread * float(scale[index]) + float(mean[index])
        for index, name in enumerate(names)
    }
    columns[names[0]] = F.round(columns[names[0]]).cast("int")
    columns[names[1]] = columns[names[1]].cast("float")
    columns[names[2]] = columns[names[2]].cast("decimal(20,6)")
    return spark.range(rows, numPartitions=partitions).select(
        "id",
        *(column.alias(name) for name, column in reversed(columns.items())),
        F.concat(F.lit("host-"), (F.col("id") % 97).cast("string")).alias("host"),
    )


def expected(inference: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """``predict`` in this process on the rows Spark gave back (the decimal
    feature as floats: predict refuses Decimal objects, score_dataframe
    converts that column)."""
    features = frame[inference.feature_names].copy()
    decimal = inference.feature_names[2]
    features[decimal] = features[decimal].astype("float64")
    return inference.predict(features)


def archives(spark: Any) -> list[str]:
    return list(spark.sparkContext.listArchives)


def test_spark_scores_equal_predict_in_one_process(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered
) -> None:
    """200,000 rows scored on local[2] with the zip next to the package folder
    (found by default, checked against its .sha256): every input column comes
    back, with its type, then score (double) and prediction (int), equal to
    predict's in one process exactly."""
    df = generated(spark, inference, ROWS)
    scored = scoring.score_dataframe(df, environ={})
    result = scored.toPandas()
    assert scored.columns == [*df.columns, "score", "prediction"]
    types = dict(scored.dtypes)
    assert (types["score"], types["prediction"]) == ("double", "int")
    assert [f.dataType for f in scored.schema.fields[: len(df.columns)]] == [
        f.dataType for f in df.schema.fields
    ]
    assert len(result) == ROWS
    result = result.sort_values("id", ignore_index=True)
    assert result["id"].tolist() == list(range(ROWS))
    assert result["host"].iloc[100] == "host-3"
    want = expected(inference, result)
    np.testing.assert_array_equal(result["score"].to_numpy(), want["scores"])
    np.testing.assert_array_equal(result["prediction"].to_numpy(), want["predictions"])
    anomalies = int(result["prediction"].sum())
    assert 0 < anomalies < ROWS
    shipped = [a for a in archives(spark) if demo.zip_path.name in a]
    assert len(shipped) == 1 and shipped[0].endswith(
        "#" + scoring.read_package_zip(demo.zip_path).default_alias()
    )


def test_second_call_reuses_the_shipped_zip(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered
) -> None:
    """Scoring again ships nothing more, and an explicit alias is honoured."""
    df = generated(spark, inference, 1000, partitions=2)
    scoring.score_dataframe(df, environ={}).count()
    before = archives(spark)
    default = scoring.read_package_zip(demo.zip_path).default_alias()
    assert [a for a in before if a.endswith(f"{demo.zip_path}#{default}")]
    scoring.score_dataframe(df, environ={}).count()
    assert archives(spark) == before
    scored = scoring.score_dataframe(
        df, demo.zip_path, alias="demo-model", environ={}
    ).toPandas()
    (added,) = [a for a in archives(spark) if a not in before]
    assert added.endswith(f"{demo.zip_path}#demo-model")
    want = expected(inference, scored)
    np.testing.assert_array_equal(scored["score"].to_numpy(), want["scores"])


@pytest.mark.parametrize("drop", [0, 16])
def test_missing_feature_column_fails_before_any_job(
    spark: Any, scoring: ModuleType, inference: Any, drop: int
) -> None:
    """A DataFrame without a feature column raises predict's ValueError in
    score_dataframe itself: no job runs, nothing is shipped."""
    name = inference.feature_names[drop]
    df = generated(spark, inference, 10, partitions=1).drop(name)
    before = archives(spark)
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup(None)
    with pytest.raises(ValueError, match=f"^Feature '{name}' not found in input "):
        scoring.score_dataframe(df, environ={})
    assert archives(spark) == before
    assert tracker.getJobIdsForGroup(None) == jobs


@pytest.mark.parametrize("kind", ["string", "boolean"])
def test_non_numeric_feature_column_fails_before_any_job(
    spark: Any, scoring: ModuleType, inference: Any, kind: str
) -> None:
    """A feature column that cannot hold numbers is refused on the driver."""
    name = inference.feature_names[3]
    df = generated(spark, inference, 10, partitions=1)
    df = df.withColumn(name, df[name].cast(kind))
    with pytest.raises(ValueError, match=f"^Feature '{name}' is a column of type "):
        scoring.score_dataframe(df, environ={})


def test_result_column_in_the_input_is_refused(
    spark: Any, scoring: ModuleType, inference: Any
) -> None:
    df = generated(spark, inference, 10, partitions=1).withColumnRenamed(
        "host", "score"
    )
    with pytest.raises(ValueError, match="already has a 'score' column"):
        scoring.score_dataframe(df, environ={})


@pytest.mark.parametrize(
    ("column", "clashes_with"), [("Score", "score"), ("PREDICTION", "prediction")]
)
def test_result_column_in_another_case_is_refused(
    spark: Any, scoring: ModuleType, inference: Any, column: str, clashes_with: str
) -> None:
    """Spark resolves column names case-insensitively by default, so a
    ``Score`` column would make every later use of ``score`` ambiguous:
    refused at once, naming the column and the fix, nothing shipped."""
    from pyspark.sql import functions as F

    assert spark.conf.get("spark.sql.caseSensitive") == "false"
    df = generated(spark, inference, 10, partitions=1).withColumn(column, F.lit(1))
    before = archives(spark)
    with pytest.raises(
        ValueError,
        match=f"^the DataFrame has a column '{column}', which Spark does not tell "
        f"apart from the '{clashes_with}' column the output adds "
        + re.escape("(spark.sql.caseSensitive is false): rename or drop it")
        + "$",
    ):
        scoring.score_dataframe(df, environ={})
    assert archives(spark) == before


def test_result_column_in_another_case_is_kept_when_case_sensitive(
    spark: Any, scoring: ModuleType, inference: Any
) -> None:
    """With spark.sql.caseSensitive=true, ``Score`` is another column than
    ``score``: it is passed through, and both can be used."""
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        df = generated(spark, inference, 10, partitions=1).withColumn("Score", F.lit(1))
        scored = scoring.score_dataframe(df, environ={})
        assert scored.columns[-3:] == ["Score", "score", "prediction"]
        rows = scored.select("Score", "score").collect()
    finally:
        spark.conf.unset("spark.sql.caseSensitive")
    assert [row["Score"] for row in rows] == [1] * 10
    assert all(isinstance(row["score"], float) for row in rows)


def test_feature_columns_in_another_case_are_found_unless_case_sensitive(
    spark: Any, scoring: ModuleType, inference: Any
) -> None:
    """With spark.sql.caseSensitive false, Spark's default, feature columns
    named in another case (AUTH_FAILURE_RATIO) hold the features, as Spark
    itself resolves them: the scores are predict's. With it true, they are
    missing."""
    df = generated(spark, inference, 100, partitions=2)
    features = inference.feature_names
    upper = df.toDF(*[c.upper() if c in features else c for c in df.columns])
    scored = scoring.score_dataframe(upper, environ={})
    assert scored.columns == [*upper.columns, "score", "prediction"]
    result = scored.toPandas().sort_values("id", ignore_index=True)
    want = expected(inference, result.rename(columns={n.upper(): n for n in features}))
    np.testing.assert_array_equal(result["score"].to_numpy(), want["scores"])
    np.testing.assert_array_equal(result["prediction"].to_numpy(), want["predictions"])
    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        with pytest.raises(
            ValueError, match=re.escape(f"Feature '{features[0]}' not found in input")
        ):
            scoring.score_dataframe(upper, environ={})
    finally:
        spark.conf.unset("spark.sql.caseSensitive")


@pytest.mark.parametrize("exact", [False, True], ids=["neither-exact", "one-exact"])
def test_feature_in_two_cases_is_refused(
    spark: Any, scoring: ModuleType, inference: Any, exact: bool
) -> None:
    """Two columns that name one feature in different cases, with Spark not
    telling them apart: refused at once, naming both, also when one of them
    is named exactly as the feature."""
    from pyspark.sql import functions as F

    name = inference.feature_names[0]
    other = name if exact else name.capitalize()
    df = generated(spark, inference, 10, partitions=1)
    spark.conf.set("spark.sql.caseSensitive", "true")  # to make such a frame
    try:
        df = df.withColumnRenamed(name, other).withColumn(
            name.upper(), F.col(other) * 1000
        )
    finally:
        spark.conf.unset("spark.sql.caseSensitive")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"Feature '{name}' matches the columns '{other}', "
            f"'{name.upper()}', which Spark does not tell apart"
        ),
    ):
        scoring.score_dataframe(df, environ={})


def test_features_named_alike_in_other_cases_each_find_their_column(
    scoring: ModuleType,
) -> None:
    """Features whose names differ only in case (Bytes and bytes) each take
    the column named exactly after them when Spark does not tell case apart;
    a third column in yet another case is refused, naming the columns."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    manifest = {"training_info": {"feature_names": ["Bytes", "bytes"]}}
    archive = scoring.PackageArchive(None, "package", manifest, "0" * 64, None)
    schema = StructType(
        [StructField(name, DoubleType()) for name in ("id", "bytes", "Bytes")]
    )
    assert scoring.check_columns(schema, archive) == {
        "Bytes": "Bytes",
        "bytes": "bytes",
    }
    schema.add(StructField("BYTES", DoubleType()))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Feature 'Bytes' matches the columns 'Bytes', 'BYTES', which Spark "
            "does not tell apart"
        ),
    ):
        scoring.check_columns(schema, archive)


def test_columns_named_with_dots_come_back_unchanged(
    spark: Any, scoring: ModuleType, inference: Any
) -> None:
    """Columns that are not features, named ``a.b`` (which Spark would read
    as field b of a column a) and ```x``` (backticks in the name): returned
    unchanged, in their place, with the scores predict gives."""
    from pyspark.sql import functions as F

    df = (
        generated(spark, inference, 100, partitions=2)
        .withColumn("a.b", F.col("id") * 2)
        .withColumn("`x`", F.lit("q"))
    )
    scored = scoring.score_dataframe(df, environ={})
    assert scored.columns == [*df.columns, "score", "prediction"]
    assert scored.schema.fields[: len(df.columns)] == df.schema.fields
    result = scored.toPandas().sort_values("id", ignore_index=True)
    assert result["a.b"].tolist() == [2 * row for row in range(100)]
    assert set(result["`x`"]) == {"q"}
    want = expected(inference, result)
    np.testing.assert_array_equal(result["score"].to_numpy(), want["scores"])
    np.testing.assert_array_equal(result["prediction"].to_numpy(), want["predictions"])


def test_folder_given_as_the_zip_is_refused(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered, tmp_path: Path
) -> None:
    """A folder passed as package_zip: the message says it is a folder, not
    the zip, and what to pass (for a package folder, its zip or
    build_package_zip)."""
    df = generated(spark, inference, 10, partitions=1)
    with pytest.raises(
        IsADirectoryError,
        match="^"
        + re.escape(
            f"{tmp_path} is a folder, not the package's zip: pass the zip file "
            "itself (<package folder>.zip, as the build writes it)"
        )
        + "$",
    ):
        scoring.score_dataframe(df, tmp_path, environ={})
    folder = demo.package_dir
    with pytest.raises(
        IsADirectoryError,
        match=re.escape(
            f"{folder} is a folder, not the package's zip: pass the zip file "
            f"itself ({folder.name}.zip, as the build writes it), or "
            f"build_package_zip({str(folder)!r}) to zip this package folder"
        ),
    ):
        scoring.score_dataframe(df, str(folder), shipped_as="demo", environ={})


def readme_job(readme: str, shipped_as: str | None) -> str:
    """The score_job.py example under "On a cluster" in a rendered README: its
    first Python block (the zip shipped by score_dataframe) or its second
    (shipped with spark-submit, ``shipped_as``)."""
    section = readme.split("### On a cluster", 1)[1].split("\n### ", 1)[0]
    blocks = [block.split("\n```", 1)[0] for block in section.split("```python\n")]
    assert len(blocks) == 3, blocks
    return blocks[1 if shipped_as is None else 2]


@pytest.mark.parametrize("shipped_as", [None, "model"])
def test_readme_cluster_job_runs_as_written(
    spark: Any,
    inference: Any,
    demo: Rendered,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shipped_as: str | None,
) -> None:
    """The README's score_job.py examples run as written, on this Spark
    (getOrCreate returns the test session), with only the placeholder paths
    replaced: they read the events, score them, and write what predict
    gives."""
    readme = (demo.package_dir / "README.md").read_text(encoding="utf-8")
    job = readme_job(readme, shipped_as)
    events, scored = tmp_path / "events.parquet", tmp_path / "scored.parquet"
    generated(spark, inference, 2000, partitions=2).write.parquet(str(events))
    job = (
        job.replace("/path/to/", f"{demo.output_dir}/")
        .replace('"events.parquet"', repr(str(events)))
        .replace('"scored.parquet"', repr(str(scored)))
    )
    for name in ("MODEL_THRESHOLD", "MODEL_BATCH_SIZE", "MODEL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if shipped_as is not None:
        # What spark-submit --archives <zip>#model --py-files spark_scoring.py does.
        spark.sparkContext.addArchive(f"{demo.zip_path}#{shipped_as}")
        sys.path.insert(0, str(demo.package_dir))
    try:
        exec(compile(job, "score_job.py", "exec"), {"__name__": "__main__"})
    finally:
        sys.modules.pop("spark_scoring", None)
    result = pd.read_parquet(scored).sort_values("id", ignore_index=True)
    assert result["id"].tolist() == list(range(2000))
    want = expected(inference, result)
    np.testing.assert_array_equal(result["score"].to_numpy(), want["scores"])
    np.testing.assert_array_equal(result["prediction"].to_numpy(), want["predictions"])


def test_unusable_alias_is_refused(
    spark: Any, scoring: ModuleType, inference: Any
) -> None:
    """An alias that is no folder name, or too long for one (Spark would take
    it, then fail every later job of the session): a ValueError before
    anything is shipped."""
    df = generated(spark, inference, 10, partitions=1)
    before = archives(spark)
    with pytest.raises(ValueError, match="alias 'a/b' cannot be used"):
        scoring.score_dataframe(df, alias="a/b", environ={})
    with pytest.raises(
        ValueError, match=r"cannot be used: give a folder name of at most 255"
    ):
        scoring.score_dataframe(df, alias="a" * 256, environ={})
    with pytest.raises(ValueError, match="not both"):
        scoring.score_dataframe(df, alias="a", shipped_as="b", environ={})
    assert archives(spark) == before
    assert spark.range(3).count() == 3


def test_the_same_build_at_another_path_reuses_its_alias(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered, tmp_path: Path
) -> None:
    """A copy of the zip elsewhere is the same build: its default alias (from
    the zip's SHA-256) is reused, nothing more shipped. Another zip put at a
    path under an alias that already holds a build: a ValueError at once
    that says so, not a job failing on the executors."""
    df = generated(spark, inference, 10, partitions=1)
    scoring.score_dataframe(df, environ={}).count()
    before = archives(spark)
    copy = shutil.copyfile(demo.zip_path, tmp_path / "copy.zip")
    scored = scoring.score_dataframe(df, copy, environ={}).toPandas()
    assert archives(spark) == before
    np.testing.assert_array_equal(
        scored["score"].to_numpy(), expected(inference, scored)["scores"]
    )
    scoring.score_dataframe(df, copy, alias="swapped", environ={}).count()
    rewrite_zip(demo.zip_path, copy, {"README.md": b"another build"})
    with pytest.raises(
        ValueError, match="the alias 'swapped' already holds another zip"
    ):
        scoring.score_dataframe(df, copy, alias="swapped", environ={})


@pytest.mark.parametrize(
    "environ",
    [[("MODEL_THRESHOLD", "0")], "MODEL_THRESHOLD=0"],
    ids=["list", "string"],
)
def test_environ_that_is_not_a_mapping_is_a_type_error(
    spark: Any, scoring: ModuleType, inference: Any, environ: Any
) -> None:
    """As for ModelInference: a TypeError that says what environ takes."""
    df = generated(spark, inference, 10, partitions=1)
    with pytest.raises(TypeError, match=r"^environ must map variable names"):
        scoring.score_dataframe(df, environ=environ)


def test_a_setting_of_none_is_unset_as_for_model_inference(
    spark: Any, scoring: ModuleType, inference: Any
) -> None:
    """environ={"MODEL_THRESHOLD": None} leaves the threshold the package's,
    as ModelInference does; it used to fail the job with 'None'."""
    df = generated(spark, inference, 20, partitions=1)
    scored = scoring.score_dataframe(df, environ={"MODEL_THRESHOLD": None}).toPandas()
    want = expected(inference, scored)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), want["predictions"])


@pytest.mark.parametrize("sidecar", ["not-utf-8", "folder", "broken-link"])
def test_a_sidecar_that_cannot_be_read_as_a_digest_is_refused(
    spark: Any,
    scoring: ModuleType,
    inference: Any,
    demo: Rendered,
    tmp_path: Path,
    sidecar: str,
) -> None:
    """A .sha256 beside the zip that is not UTF-8, a folder, or a link to
    nothing: the zip cannot be checked, so it is refused on the driver (an
    IntegrityError, not a UnicodeDecodeError, nor the zip taken as
    unchecked)."""
    zip_path = shutil.copyfile(demo.zip_path, tmp_path / demo.zip_path.name)
    beside = tmp_path / f"{zip_path.name}.sha256"
    if sidecar == "folder":
        beside.mkdir()
    elif sidecar == "broken-link":
        beside.symlink_to(tmp_path / "gone.sha256")
    else:
        beside.write_bytes(b"\xff\xfe  model.zip\n")
    df = generated(spark, inference, 10, partitions=1)
    with pytest.raises(scoring.IntegrityError, match=re.escape(str(beside))):
        scoring.score_dataframe(df, zip_path, environ={})


@pytest.mark.parametrize("bad", ["null", "nan"])
def test_bad_value_fails_the_job_with_predicts_message(
    spark: Any, scoring: ModuleType, inference: Any, bad: str
) -> None:
    """A null or NaN feature value fails the job; the error carries predict's
    message, naming the feature, and says that a null arrives as nan and
    what to do about it."""
    from pyspark.sql import functions as F

    name = inference.feature_names[5]
    df = generated(spark, inference, 2000, partitions=2)
    value = F.lit(None) if bad == "null" else F.lit(float("nan"))
    df = df.withColumn(name, F.when(F.col("id") == 1234, value).otherwise(F.col(name)))
    scored = scoring.score_dataframe(df, environ={})
    with pytest.raises(
        Exception, match=f"Feature '{name}' in row \\d+ is nan: {FINITE}"
    ) as raised:
        scored.collect()
    assert (
        "a null arrives here as nan: drop or fill such rows first, for example "
        "df.dropna(subset=[...the features])"
    ) in str(raised.value)


def test_tampered_zip_fails_the_job_before_unpickling(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered, tmp_path: Path
) -> None:
    """model.joblib replaced inside the zip (one that would create a marker
    file if it were unpickled), the zip re-written, no .sha256 beside it: the
    executors refuse it with ModelInference's integrity message and unpickle
    nothing."""
    marker = tmp_path / "unpickled"
    tampered = tmp_path / demo.zip_path.name
    rewrite_zip(
        demo.zip_path,
        tampered,
        {"model.joblib": pickle.dumps(_WritesMarker(marker))},
    )
    df = generated(spark, inference, 100, partitions=2)
    scored = scoring.score_dataframe(df, tampered, environ={})
    with pytest.raises(
        Exception, match=re.escape(NOT_MATCHING + "SHA-256 does not match")
    ):
        scored.collect()
    assert not marker.exists()


def with_marker(module: bytes, marker: Path) -> bytes:
    """inference_example.py with a last line that creates ``marker`` when the
    module runs."""
    return (
        module + f"\nimport pathlib\npathlib.Path({str(marker)!r}).touch()\n".encode()
    )


@pytest.mark.parametrize(
    ("hash_dropped", "problem"),
    [
        (False, "SHA-256 does not match the manifest"),
        (True, "has no SHA-256 in the manifest"),
    ],
    ids=["module-replaced", "hash-dropped"],
)
def test_module_that_cannot_be_checked_fails_the_job_before_it_runs(
    spark: Any,
    scoring: ModuleType,
    inference: Any,
    demo: Rendered,
    tmp_path: Path,
    hash_dropped: bool,
    problem: str,
) -> None:
    """inference_example.py replaced inside the zip (by code that would
    create a marker file when it runs), its manifest hash kept or dropped,
    no .sha256 beside the zip: the executors refuse it, naming the file and
    the problem, and never run it."""
    marker = tmp_path / "imported"
    replaced = {
        "inference_example.py": with_marker(
            (demo.package_dir / "inference_example.py").read_bytes(), marker
        )
    }
    if hash_dropped:
        manifest = json.loads((demo.package_dir / MANIFEST_FILE).read_bytes())
        del manifest["file_integrity"]["inference_example.py"]
        replaced[MANIFEST_FILE] = json.dumps(manifest, indent=2).encode()
    tampered = tmp_path / demo.zip_path.name
    rewrite_zip(demo.zip_path, tampered, replaced)
    df = generated(spark, inference, 100, partitions=2)
    scored = scoring.score_dataframe(df, tampered, environ={})
    with pytest.raises(
        Exception,
        match=re.escape(
            "package integrity check failed, nothing was loaded: "
            f"inference_example.py: {problem}. Re-download the package and run "
            "validate_model.py"
        ),
    ):
        scored.collect()
    assert not marker.exists()


def test_archive_with_another_manifest_than_the_drivers_fails_the_job(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered, tmp_path: Path
) -> None:
    """The driver reads the demo zip, but the archive shipped beforehand under
    the alias is another build, intact in itself (re-signed, with a module
    that would create a marker file when it runs): the executors refuse it,
    saying its manifest is not the one the driver read, and run nothing."""
    marker = tmp_path / "imported"
    other = copy_package(demo.package_dir, tmp_path / "other")
    module = other / "inference_example.py"
    module.write_bytes(with_marker(module.read_bytes(), marker))
    resign_package(other)
    other_zip = zip_folder(other, tmp_path / "other" / demo.zip_path.name)
    alias = "another-manifest"
    spark.sparkContext.addArchive(f"{other_zip}#{alias}")
    df = generated(spark, inference, 100, partitions=2)
    scored = scoring.score_dataframe(df, demo.zip_path, shipped_as=alias, environ={})
    with pytest.raises(
        Exception,
        match=re.escape(
            f"package integrity check failed, nothing was loaded: {MANIFEST_FILE} in "
        )
        + r"\S+"
        + re.escape(
            f"/{alias}/{demo.package_dir.name} is not the manifest the driver read "
            "(the archive changed after it was shipped?): ship the zip again under "
            "a new alias"
        ),
    ):
        scored.collect()
    assert not marker.exists()


def test_zip_that_does_not_match_its_sidecar_is_refused_on_the_driver(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered, tmp_path: Path
) -> None:
    """The same tampered zip with the build's .sha256 beside it: refused by
    score_dataframe, nothing shipped."""
    tampered = tmp_path / demo.zip_path.name
    rewrite_zip(demo.zip_path, tampered, {"model.joblib": b"another model"})
    sidecar = demo.zip_path.name + ".sha256"
    shutil.copyfile(demo.output_dir / sidecar, tmp_path / sidecar)
    before = archives(spark)
    df = generated(spark, inference, 10, partitions=1)
    with pytest.raises(
        scoring.IntegrityError,
        match=f"nothing was shipped: {demo.zip_path.name}: SHA-256 does not match "
        f"{sidecar}",
    ):
        scoring.score_dataframe(df, tampered, environ={})
    assert archives(spark) == before


def test_without_a_zip_the_package_folder_is_zipped(
    spark: Any,
    inference: Any,
    demo: Rendered,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A package folder with no zip next to it: its own files are zipped and
    shipped (not a stray file), and the settings come from the driver's
    environment at the call, or from ``environ``."""
    package = copy_package(demo.package_dir, tmp_path)
    (package / "scored.csv").write_text("not part of the package\n")
    scoring = load_module(package / "spark_scoring.py")
    df = generated(spark, inference, 3000, partitions=2)
    monkeypatch.setenv("MODEL_THRESHOLD", "0.6")
    from_driver = scoring.score_dataframe(df).toPandas()
    monkeypatch.setenv("MODEL_THRESHOLD", "0.9")
    from_environ = scoring.score_dataframe(df, environ={}).toPandas()
    (built,) = scoring._BUILT_ZIPS.values()
    with zipfile.ZipFile(built) as archive:
        names = {name.split("/", 1)[1] for name in archive.namelist()}
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert names == {*manifest["file_integrity"], MANIFEST_FILE, "SHA256SUMS"}
    from_driver, from_environ = (
        frame.sort_values("id", ignore_index=True)
        for frame in (from_driver, from_environ)
    )
    want = expected(inference, from_environ)
    np.testing.assert_array_equal(from_environ["score"].to_numpy(), want["scores"])
    np.testing.assert_array_equal(from_driver["score"].to_numpy(), want["scores"])
    np.testing.assert_array_equal(
        from_driver["prediction"].to_numpy(), (from_driver["score"] > 0.6).astype(int)
    )
    np.testing.assert_array_equal(
        from_environ["prediction"].to_numpy(), want["predictions"]
    )
    assert not np.array_equal(
        from_driver["prediction"].to_numpy(), from_environ["prediction"].to_numpy()
    )


def rewrite_manifest(package: Path, edit: Callable[[bytes], bytes]) -> None:
    manifest = package / MANIFEST_FILE
    manifest.write_bytes(edit(manifest.read_bytes()))


def make_sums_unreadable(package: Path) -> None:
    (package / "SHA256SUMS").unlink()
    unreadable_file(package / "SHA256SUMS")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda package: rewrite_manifest(
                package,
                lambda data: data.replace(b'"model_version"', b'"model_versio"'),
            ),
            f"{MANIFEST_FILE}: SHA-256 does not match SHA256SUMS",
        ),
        (
            lambda package: rewrite_manifest(package, lambda data: b"[1, 2]"),
            f"{MANIFEST_FILE}: not a deployment manifest (no file_integrity)",
        ),
        (
            lambda package: rewrite_manifest(package, lambda data: b"{not json"),
            f"{MANIFEST_FILE}: not a deployment manifest (no file_integrity)",
        ),
        (make_sums_unreadable, "SHA256SUMS: cannot be read (Permission denied)"),
        (
            lambda package: (package / "SHA256SUMS").write_bytes(b"\xff\xfe  x\n"),
            "SHA256SUMS: is not UTF-8 text, so not a list of SHA-256s",
        ),
        (
            lambda package: (package / "SHA256SUMS").write_text("", encoding="utf-8"),
            f"{MANIFEST_FILE}: not listed in SHA256SUMS, so not checked",
        ),
        (
            lambda package: (package / "SHA256SUMS").write_text(
                f"{'0' * 64}  {MANIFEST_FILE}\n"
                + (package / "SHA256SUMS").read_text(encoding="utf-8"),
                encoding="utf-8",
            ),
            f"{MANIFEST_FILE}: SHA-256 does not match SHA256SUMS",
        ),
    ],
    ids=[
        "edited",
        "a-list",
        "not-json",
        "sums-unreadable",
        "sums-binary",
        "unlisted",
        "listed-twice",
    ],
)
def test_a_folder_whose_manifest_is_not_signed_is_not_zipped(
    demo: Rendered,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: Callable[[Path], None],
    problem: str,
) -> None:
    """build_package_zip checks the manifest against SHA256SUMS before it
    zips a folder (the driver refuses what every executor would), and a
    manifest that is not one, or a SHA256SUMS that cannot be read, is an
    IntegrityError, not a KeyError, a JSONDecodeError or a PermissionError:
    nothing is zipped."""
    package = copy_package(demo.package_dir, tmp_path / "copy")
    edit(package)
    scoring = load_module(package / "spark_scoring.py")
    temporary = tmp_path / "temporary"  # where a zip would be made
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    with pytest.raises(scoring.IntegrityError) as raised:
        scoring.build_package_zip(package)
    assert str(raised.value) == (
        f"package integrity check failed, nothing was shipped: {problem}. "
        "Re-download the package and run validate_model.py"
    )
    assert list(temporary.iterdir()) == []


def test_archive_shipped_beforehand_is_used_as_it_is(
    spark: Any, scoring: ModuleType, inference: Any, demo: Rendered
) -> None:
    """As with ``spark-submit --archives <zip>#<alias>``: the driver reads the
    manifest from the archive Spark unpacked, and nothing more is shipped."""
    spark.sparkContext.addArchive(f"{demo.zip_path}#shipped-demo")
    before = archives(spark)
    df = generated(spark, inference, 2000, partitions=2)
    scored = scoring.score_dataframe(df, shipped_as="shipped-demo", environ={})
    result = scored.toPandas()
    assert archives(spark) == before
    want = expected(inference, result)
    np.testing.assert_array_equal(result["score"].to_numpy(), want["scores"])
    with pytest.raises(FileNotFoundError, match="no package archive named 'absent'"):
        scoring.score_dataframe(df, shipped_as="absent", environ={})


def test_missing_feature_filled_with_zero_like_predict(
    spark: Any, inference: Any, demo: Rendered, tmp_path: Path
) -> None:
    """A package built with missing_features=zero (here: the demo re-signed
    so) fills a missing column with 0.0 on Spark as predict does."""
    package = copy_package(demo.package_dir, tmp_path)

    def fill_zero(manifest: dict[str, Any]) -> None:
        manifest["inference_config"]["missing_features"] = "zero"

    resign_package(package, fill_zero)
    zip_path = zip_folder(package, tmp_path / f"{package.name}.zip")
    scoring = load_module(package / "spark_scoring.py")
    zero = load_package_module(package).ModelInference(package, environ={})
    name = inference.feature_names[4]
    df = generated(spark, inference, 2000, partitions=2).drop(name)
    result = scoring.score_dataframe(df, zip_path, environ={}).toPandas()
    assert name not in result.columns
    features = result.drop(columns=["score", "prediction"])
    decimal = inference.feature_names[2]
    features[decimal] = features[decimal].astype("float64")
    want = zero.predict(features)
    np.testing.assert_array_equal(result["score"].to_numpy(), want["scores"])


# Pickling ModelInference (no Spark needed)


@pytest.fixture
def package(demo: Rendered, tmp_path: Path) -> Path:
    """A private copy of the demo package."""
    return copy_package(demo.package_dir, tmp_path)


def records(inference: Any, rows: int = 20) -> list[dict[str, float]]:
    rng = np.random.default_rng(5)
    X = rng.normal(inference.scaler.mean_, inference.scaler.scale_ * 3, (rows, 17))
    return [dict(zip(inference.feature_names, row, strict=True)) for row in X]


def test_pickle_carries_folder_and_settings_not_the_model(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pickled ModelInference is a few hundred bytes; unpickled, it loads
    the package again and scores the same, with the settings of the original
    (not the unpickling process's environment)."""
    module = load_package_module(package)
    original = module.ModelInference(
        package, environ={"MODEL_THRESHOLD": "0.55", "LOG_LEVEL": ""}
    )
    original.batch_size = 7
    data = pickle.dumps(original)
    assert len(data) < 1000, len(data)
    assert b"sklearn" not in data and b"IsolationForest" not in data
    monkeypatch.setenv("MODEL_THRESHOLD", "0.95")
    monkeypatch.setenv("MODEL_TIMEOUT", "abc")  # would be refused if read
    clone = pickle.loads(data)
    assert clone.model is not original.model
    assert (clone.threshold, clone.batch_size) == (0.55, 7)
    assert clone.settings == original.settings
    assert clone.settings.overrides == ("MODEL_THRESHOLD",)
    batch = records(original)
    assert clone.predict(batch) == original.predict(batch)


def test_unpickling_verifies_the_files_again(package: Path, tmp_path: Path) -> None:
    """model.joblib replaced between pickling and unpickling: unpickling
    raises IntegrityError and loads nothing, even for an instance made with
    verify=False."""
    module = load_package_module(package)
    data = [
        pickle.dumps(module.ModelInference(package, verify=verify, environ={}))
        for verify in (True, False)
    ]
    marker = tmp_path / "unpickled"
    (package / "model.joblib").write_bytes(pickle.dumps(_WritesMarker(marker)))
    for pickled in data:
        with pytest.raises(module.IntegrityError, match=re.escape(NOT_MATCHING)):
            pickle.loads(pickled)
    assert not marker.exists()


def test_spark_files_are_package_files(package: Path) -> None:
    """spark_scoring.py and requirements-spark.txt are named in the manifest's
    files and hashed; a changed one fails validate_model.py (exit 1, naming
    it) and ModelInference."""
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    files = {"spark_scoring.py", "requirements-spark.txt"}
    assert {
        manifest["files"]["spark_scoring"],
        manifest["files"]["spark_requirements"],
    } == files
    assert files <= set(manifest["file_integrity"])
    requirements = (package / "requirements-spark.txt").read_text().splitlines()
    assert "-r requirements.txt" in requirements
    assert any(line.startswith("pyspark[sql]>=") for line in requirements)
    for name in files:
        with open(package / name, "a", encoding="utf-8") as stream:
            stream.write("\n# changed\n")
    result = run_validate_model(package)
    assert result.returncode == 1, result.stdout + result.stderr
    for name in files:
        assert f"❌ {name}: SHA-256 does not match the manifest" in result.stdout
    module = load_package_module(package)
    with pytest.raises(
        module.IntegrityError, match=re.escape("spark_scoring.py: SHA-256")
    ):
        module.ModelInference(package, environ={})


ROUND_TRIP = """
import json, multiprocessing, sys

from inference_example import ModelInference


def score(inference, records):
    return {
        "threshold": inference.threshold,
        "batch_size": inference.batch_size,
        "result": inference.predict(records),
    }


if __name__ == "__main__":
    records = json.loads(sys.argv[1])
    inference = ModelInference(environ={"MODEL_BATCH_SIZE": "5"})
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        other = pool.apply(score, (inference, records))
    print(json.dumps({"here": score(inference, records), "other": other}))
"""


def test_pickled_instance_is_rebuilt_in_another_process(
    package: Path, tmp_path: Path
) -> None:
    """multiprocessing (spawn) sends a ModelInference to a fresh Python: it is
    rebuilt there from the folder and scores the same."""
    script = tmp_path / "round_trip.py"
    script.write_text(ROUND_TRIP, encoding="utf-8")
    module = load_package_module(package)
    batch = records(module.ModelInference(package, environ={}))
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(batch)],
        cwd=package,
        capture_output=True,
        text=True,
        env=consumer_environment(PYTHONPATH=str(package)),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert runs["other"] == runs["here"]
    assert runs["other"]["batch_size"] == 5
