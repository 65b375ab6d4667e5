"""Reference statistics: metadata.json's ``monitoring`` section and the
self-test rows picked from the reference data.

The "scaled" sample is packaged with reference data (sample_artifacts.py
writes reference_rows() as scaled/reference.csv); the other samples and the
demo show the other sources.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import joblib
import numpy as np
import pytest
from conftest import Rendered, answers_for, run_cookiecutter, run_validate_model
from package_builder.demo import TEST_SIZE, make_dataset
from package_builder.monitoring import QUANTILES, histogram, pick_examples
from sample_artifacts import FEATURES, make_data, reference_rows
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

STATISTICS_KEYS = {"count", "min", "max", "mean", "std", "quantiles", "histogram"}
SECTION_KEYS = {
    "format_version",
    "source",
    "partial",
    "note",
    "reference",
    "conventions",
    "threshold",
    "features",
    "score",
    "anomaly_count",
    "anomaly_ratio",
    "scaler",
}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def monitoring_of(rendered: Rendered) -> dict:
    return read_json(rendered.package_dir / "metadata.json")["monitoring"]


def assert_statistics_of(stats: dict, values: np.ndarray) -> None:
    """``stats`` are NumPy's statistics of ``values``, exactly, and its
    histogram bins ``values`` as documented."""
    assert set(stats) == STATISTICS_KEYS
    assert stats["count"] == len(values)
    assert stats["min"] == values.min()
    assert stats["max"] == values.max()
    assert stats["mean"] == np.mean(values)
    assert stats["std"] == np.std(values, ddof=0)
    assert list(stats["quantiles"]) == ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
    expected = np.quantile(values, list(QUANTILES.values()))
    assert list(stats["quantiles"].values()) == expected.tolist()
    edges, counts = stats["histogram"]["edges"], stats["histogram"]["counts"]
    assert len(counts) == len(edges) + 1 <= 10
    assert sum(counts) == len(values)
    assert all(count > 0 for count in counts)
    assert edges == sorted(set(edges))
    assert all(edge in values and edge < values.max() for edge in edges)
    bins = np.searchsorted(edges, values, side="left")
    assert counts == np.bincount(bins, minlength=len(counts)).tolist()


def test_feature_statistics_equal_numpys_on_the_reference_data(
    rendered_samples: dict[str, Rendered],
) -> None:
    """Per feature: count, min, max, mean, std (ddof=0), the seven quantiles
    (NumPy's linear method) and a histogram whose counts sum to the count."""
    monitoring = monitoring_of(rendered_samples["scaled"])
    X = reference_rows()

    assert set(monitoring) == SECTION_KEYS
    assert (monitoring["source"], monitoring["partial"]) == ("reference_data", False)
    assert monitoring["conventions"]["std_ddof"] == 0
    assert list(monitoring["features"]) == FEATURES
    for column, name in enumerate(FEATURES):
        assert_statistics_of(monitoring["features"][name], X[:, column])


def test_score_statistics_and_anomaly_ratio_are_those_of_the_model(
    rendered_samples: dict[str, Rendered],
) -> None:
    """The score statistics are those of -score_samples on the reference
    rows, and the anomaly ratio is the share above the package's threshold."""
    package_dir = rendered_samples["scaled"].package_dir
    monitoring = monitoring_of(rendered_samples["scaled"])
    manifest = read_json(package_dir / "deployment_manifest.json")
    model = joblib.load(package_dir / "model.joblib")
    scaler = joblib.load(package_dir / "scaler.joblib")
    X = reference_rows()
    scores = -model.score_samples(scaler.transform(X))
    threshold = manifest["inference_config"]["threshold"]

    assert_statistics_of(monitoring["score"], scores)
    assert monitoring["threshold"] == threshold
    flagged = int(np.sum(scores > threshold))
    assert flagged == int(np.sum(model.predict(scaler.transform(X)) == -1))
    assert monitoring["anomaly_count"] == flagged > 0
    assert monitoring["anomaly_ratio"] == flagged / len(X)


def test_reference_file_is_named_and_hashed_not_copied(
    rendered_samples: dict[str, Rendered], artifacts: tuple[Path, dict]
) -> None:
    """The section names the reference file, its SHA-256 and row count; the
    file itself does not ship in the package."""
    directory, _ = artifacts
    source = directory / "scaled" / "reference.csv"
    rendered = rendered_samples["scaled"]
    reference = monitoring_of(rendered)["reference"]

    assert reference == {
        "origin": "reference_data_path",
        "file": "reference.csv",
        "format": "csv",
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "rows": len(reference_rows()),
    }
    assert not (rendered.package_dir / "reference.csv").exists()


def test_self_test_rows_come_from_the_reference_data_with_an_anomaly(
    rendered_samples: dict[str, Rendered],
) -> None:
    """The self-test holds a handful of reference rows, the highest-scoring
    one (an anomaly) first, and some normal ones."""
    package_dir = rendered_samples["scaled"].package_dir
    self_test = read_json(package_dir / "deployment_manifest.json")["self_test"]
    monitoring = monitoring_of(rendered_samples["scaled"])
    rows = {tuple(row) for row in reference_rows().tolist()}

    assert 5 <= len(self_test["inputs"]) <= 8
    for record in self_test["inputs"]:
        assert list(record) == FEATURES
        assert tuple(record.values()) in rows
    assert self_test["scores"][0] == monitoring["score"]["max"]
    assert self_test["predictions"][0] == 1
    assert 0 in self_test["predictions"]


def test_demo_statistics_come_from_its_training_data(demo: Rendered) -> None:
    """The demo's section describes the rows its scaler and forest were
    fitted on; its self-test keeps the labelled held-out examples."""
    metadata = read_json(demo.package_dir / "metadata.json")
    monitoring = metadata["monitoring"]
    dataset = metadata["training_info"]["dataset"]
    X, y, _ = make_dataset(
        dataset["n_samples"], dataset["anomaly_fraction"], dataset["seed"]
    )
    X_train, *_ = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=dataset["seed"], stratify=y
    )
    model = joblib.load(demo.package_dir / "model.joblib")
    scaler = joblib.load(demo.package_dir / "scaler.joblib")

    assert (monitoring["source"], monitoring["partial"]) == ("reference_data", False)
    assert monitoring["reference"]["origin"] == "demo training data"
    assert (
        monitoring["reference"]["rows"] == metadata["training_info"]["training_samples"]
    )
    for column, name in enumerate(metadata["training_info"]["feature_names"]):
        assert_statistics_of(monitoring["features"][name], X_train[:, column])
    assert_statistics_of(
        monitoring["score"], -model.score_samples(scaler.transform(X_train))
    )
    assert 0 < monitoring["anomaly_ratio"] < 0.1
    manifest = read_json(demo.package_dir / "deployment_manifest.json")
    assert manifest["self_test"]["predictions"] == [1, 1, 0, 0, 0]


def test_without_reference_data_the_section_is_the_scalers_and_partial(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """Without reference data: the scaler's mean and standard deviation per
    feature, marked partial, no score statistics; the self-test is stepped
    out from the scaler's mean."""
    directory, samples = artifacts
    answers = {
        key: value
        for key, value in samples["scaled"].items()
        if key != "reference_data_path"
    }
    rendered = run_cookiecutter(tmp_path, *answers_for(answers), cwd=directory)
    assert rendered.returncode == 0, rendered.stderr
    monitoring = monitoring_of(rendered)
    scaler = joblib.load(rendered.package_dir / "scaler.joblib")

    assert set(monitoring) == SECTION_KEYS
    assert (monitoring["source"], monitoring["partial"]) == ("scaler", True)
    assert "reference_data_path" in monitoring["note"]
    assert monitoring["reference"] is None
    assert monitoring["score"] is None
    assert monitoring["anomaly_ratio"] is None
    for column, name in enumerate(FEATURES):
        stats = monitoring["features"][name]
        assert set(stats) == STATISTICS_KEYS
        assert stats["mean"] == scaler.mean_[column]
        assert stats["std"] == math.sqrt(scaler.var_[column])
        assert stats["count"] == scaler.n_samples_seen_
        assert stats["quantiles"] is stats["histogram"] is stats["min"] is None
    assert monitoring["scaler"]["type"] == "StandardScaler"
    assert monitoring["scaler"]["file"] == "scaler.joblib"
    assert monitoring["scaler"]["attributes"]["mean_"] == dict(
        zip(FEATURES, scaler.mean_.tolist(), strict=True)
    )
    assert monitoring["scaler"]["attributes"]["scale_"] == dict(
        zip(FEATURES, scaler.scale_.tolist(), strict=True)
    )
    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    first = manifest["self_test"]["inputs"][0]
    assert list(first.values()) == scaler.mean_.tolist()
    assert "Partial." in (rendered.package_dir / "README.md").read_text()


def test_without_scaler_or_reference_data_the_section_says_so(
    rendered_samples: dict[str, Rendered],
) -> None:
    """Without reference data or scaler, every statistic is null and the
    section says that nothing is known."""
    monitoring = monitoring_of(rendered_samples["no_scaler"])

    assert set(monitoring) == SECTION_KEYS
    assert (monitoring["source"], monitoring["partial"]) == ("none", True)
    assert "no scaler" in monitoring["note"]
    assert monitoring["features"] == {
        name: dict.fromkeys(STATISTICS_KEYS) for name in FEATURES
    }
    assert monitoring["score"] is monitoring["scaler"] is None


def test_pipeline_scaler_step_gives_the_partial_section(
    rendered_samples: dict[str, Rendered],
) -> None:
    """A Pipeline that starts with a StandardScaler gives its statistics."""
    package_dir = rendered_samples["dataframe"].package_dir
    monitoring = monitoring_of(rendered_samples["dataframe"])
    scaler = joblib.load(package_dir / "model.joblib").steps[0][1]

    assert (monitoring["source"], monitoring["partial"]) == ("scaler", True)
    assert monitoring["scaler"]["file"] == (
        "model.joblib (Pipeline step 'standardscaler')"
    )
    means = [stats["mean"] for stats in monitoring["features"].values()]
    assert means == scaler.mean_.tolist()
    # The self-test steps out from that mean too, in the features' own
    # units, not from raw zeros far from every training value.
    self_test = read_json(package_dir / "deployment_manifest.json")["self_test"]
    assert list(self_test["inputs"][0].values()) == scaler.mean_.tolist()
    assert (
        list(self_test["inputs"][1].values()) == (scaler.mean_ + scaler.scale_).tolist()
    )


def test_without_reference_data_a_min_max_scaler_centres_the_self_test(
    tmp_path: Path,
) -> None:
    """A MinMaxScaler records the training range: the self-test starts in its
    middle and steps by a quarter of it."""
    X, _ = make_data(500)
    scaler = MinMaxScaler().fit(X)
    model = IsolationForest(n_estimators=30, random_state=0).fit(scaler.transform(X))
    joblib.dump(scaler, tmp_path / "scaler.joblib")
    joblib.dump(model, tmp_path / "model.joblib")
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        f"scaler_path={tmp_path / 'scaler.joblib'}",
        f"feature_names={','.join(FEATURES)}",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr
    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    inputs = [list(row.values()) for row in manifest["self_test"]["inputs"]]
    middle = (scaler.data_min_ + scaler.data_max_) / 2
    quarter = (scaler.data_max_ - scaler.data_min_) / 4
    assert inputs[0] == pytest.approx(middle.tolist(), rel=1e-12)
    assert inputs[1] == pytest.approx((middle + quarter).tolist(), rel=1e-12)
    assert run_validate_model(rendered.package_dir).returncode == 0


def test_parquet_reference_data_gives_the_same_statistics(
    rendered_samples: dict[str, Rendered],
    artifacts: tuple[Path, dict],
    tmp_path: Path,
) -> None:
    """With pyarrow, the reference rows as Parquet give the same section."""
    if importlib.util.find_spec("pyarrow") is None:
        pytest.skip("pyarrow is not installed (it is optional): Parquet is refused")
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory, samples = artifacts
    X = reference_rows()
    table = pa.table({name: X[:, column] for column, name in enumerate(FEATURES)})
    pq.write_table(table, tmp_path / "reference.parquet")
    answers = {
        **samples["scaled"],
        "reference_data_path": str(tmp_path / "reference.parquet"),
    }
    rendered = run_cookiecutter(tmp_path / "out", *answers_for(answers), cwd=directory)
    assert rendered.returncode == 0, rendered.stderr
    from_parquet = monitoring_of(rendered)
    from_csv = monitoring_of(rendered_samples["scaled"])

    assert from_parquet["reference"]["format"] == "parquet"
    assert from_parquet["reference"]["rows"] == len(X)
    for key in ("features", "score", "anomaly_count", "anomaly_ratio"):
        assert from_parquet[key] == from_csv[key], key


# the histogram and the self-test choice, on small arrays


def test_histogram_cuts_are_deciles_taken_as_values() -> None:
    """Cuts are ordered[ceil(n * j / 10) - 1], the inverted-CDF deciles."""
    values = np.arange(1.0, 21.0)[::-1]  # 20 values, not in order

    result = histogram(values)

    assert result["edges"] == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]
    assert result["counts"] == [2] * 10


def test_histogram_of_few_distinct_values_has_fewer_bins_none_empty() -> None:
    """A feature with few distinct values gets one bin per value at most,
    the top value included, and no empty bin; a constant gets one bin."""
    values = np.array([0.0] * 50 + [1.0] * 30 + [5.0] * 20)

    assert histogram(values) == {"edges": [0.0, 1.0], "counts": [50, 30, 20]}
    assert histogram(np.full(7, 3.5)) == {"edges": [], "counts": [7]}
    assert histogram(np.array([2.0])) == {"edges": [], "counts": [1]}


def test_examples_without_anomalies_are_the_lowest_and_typical_rows() -> None:
    """With no row above the threshold, the self-test has the lowest-scoring
    row and the rows nearest the median score, and never a borderline row."""
    scores = np.array([0.30, 0.40, 0.41, 0.42, 0.50, 0.43, 0.39])

    picked = pick_examples(scores, threshold=0.5)

    assert picked == [0, 2, 1, 3]
    assert 4 not in picked
    assert pick_examples(np.array([0.5, 0.5]), threshold=0.5) == []


def test_examples_put_the_highest_anomalies_first() -> None:
    """Up to two rows above the threshold, highest first, then the lowest
    row and the rows nearest the median (0.41); ties go to the earlier row."""
    scores = np.array([0.3, 0.2, 0.9, 0.95, 0.9, 0.4, 0.41, 0.42, 0.2])

    assert pick_examples(scores, threshold=0.5) == [3, 2, 1, 6, 5, 7]
