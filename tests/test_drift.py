"""Drift against the reference statistics, and the out_of_range policies."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import (
    Rendered,
    answers_for,
    consumer_environment,
    copy_package,
    resign_package,
    run_concurrently,
    run_cookiecutter,
    run_validate_model,
)
from package_builder.build import load_package_module
from package_builder.demo import TEST_SIZE, make_dataset
from sklearn.model_selection import train_test_split


@pytest.fixture(scope="module")
def demo_rows() -> tuple[np.ndarray, np.ndarray]:
    """The demo's reference rows (its training split) and its held-out rows."""
    X, y, _ = make_dataset(6000, 0.04, 42)
    X_train, X_test, _, _ = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=42, stratify=y
    )
    return X_train, X_test


@pytest.fixture(scope="module")
def inference(demo: Rendered) -> Any:
    """The demo package's ModelInference."""
    module = load_package_module(demo.package_dir)
    return module.ModelInference(demo.package_dir, environ={})


def test_reference_data_itself_has_zero_psi(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """The reference rows fall in the reference bins exactly: PSI 0, status ok,
    nothing out of range, and the observed anomaly ratio is the recorded one."""
    reference, _ = demo_rows
    report = inference.drift_report(reference)
    assert report["status"] == "ok"
    assert report["samples"] == len(reference)
    for name, feature in report["features"].items():
        assert feature["psi"] == pytest.approx(0.0, abs=1e-12), name
        assert feature["out_of_range"]["count"] == 0
        assert feature["mean"] == pytest.approx(feature["reference_mean"])
    assert report["score"]["psi"] == pytest.approx(0.0, abs=1e-12)
    monitoring = json.loads((inference.model_dir / "metadata.json").read_text())[
        "monitoring"
    ]
    assert report["anomaly_ratio"]["observed"] == monitoring["anomaly_ratio"]
    json.dumps(report)


def test_a_sample_of_the_reference_is_ok_and_a_shifted_one_alerts(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """Held-out rows from the same distribution stay under the warn level; the
    same rows with one feature tripled cross the alert level for that feature
    and are partly out of range."""
    _, held_out = demo_rows
    same = inference.drift_report(held_out)
    assert same["status"] == "ok", same["reasons"]
    assert max(f["psi"] for f in same["features"].values()) < 0.1

    shifted = held_out.copy()
    column = inference.feature_names.index("mean_data_rate")
    shifted[:, column] *= 3
    report = inference.drift_report(shifted)
    feature = report["features"]["mean_data_rate"]
    assert report["status"] == "alert"
    assert feature["psi"] > 0.25
    assert feature["status"] == "alert"
    assert feature["out_of_range"]["above"] > 0
    assert any("mean_data_rate" in reason for reason in report["reasons"])
    others = [f["psi"] for n, f in report["features"].items() if n != "mean_data_rate"]
    assert max(others) < 0.1


# README: "a share under 1e-4 counts as 1e-4".
PSI_FLOOR = 1e-4


def psi_by_hand(histogram: dict, values: np.ndarray) -> tuple[float, list[int]]:
    """PSI as the README defines it, over a metadata.json histogram: value
    ``v`` falls in bin ``i`` when ``edges[i-1] < v <= edges[i]`` (outer bins
    open), ``p`` and ``q`` are the reference and window shares of each bin,
    each at least PSI_FLOOR, and PSI is ``sum((q - p) * ln(q / p))``. Returns
    the PSI and the window's count per bin."""
    edges, counts = histogram["edges"], histogram["counts"]
    assert len(counts) == len(edges) + 1
    live = [0] * len(counts)
    for value in values.tolist():
        live[sum(value > edge for edge in edges)] += 1
    total = sum(counts)
    psi = 0.0
    for reference_count, live_count in zip(counts, live, strict=True):
        p = max(reference_count / total, PSI_FLOOR)
        q = max(live_count / len(values), PSI_FLOOR)
        psi += (q - p) * math.log(q / p)
    return psi, live


def test_psi_is_the_documented_formula_over_the_reference_bins(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """The held-out rows with at most the 4th edge's unique MACs and a score
    under the 7th score edge: the upper bins of both are empty (so the 1e-4
    floor counts), and many MAC counts lie on an edge (so the binning side
    counts). Every feature's PSI, and the score's, is the README's formula
    computed by hand from metadata.json's monitoring histograms."""
    monitoring = json.loads((inference.model_dir / "metadata.json").read_text())[
        "monitoring"
    ]
    _, held_out = demo_rows
    name = "unique_mac_count"
    column = inference.feature_names.index(name)
    edges = monitoring["features"][name]["histogram"]["edges"]
    score_edges = monitoring["score"]["histogram"]["edges"]
    scores = np.array(inference.predict(held_out)["scores"])
    chosen = (held_out[:, column] <= edges[3]) & (scores <= score_edges[6])
    window = held_out[chosen]
    assert len(window) >= 100
    assert np.isin(window[:, column], edges).any()

    report = inference.drift_report(window)
    assert report["samples"] == len(window)
    for feature, statistics in monitoring["features"].items():
        values = window[:, inference.feature_names.index(feature)]
        expected, live = psi_by_hand(statistics["histogram"], values)
        if feature == name:
            assert 0 in live
        assert report["features"][feature]["psi"] == pytest.approx(
            expected, rel=1e-9, abs=1e-12
        ), feature
    expected, live = psi_by_hand(monitoring["score"]["histogram"], scores[chosen])
    assert 0 in live
    assert report["score"]["psi"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_drift_report_takes_every_input_form(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """Records, a DataFrame and an array give the same report."""
    rows = demo_rows[1][:300]
    frame = pd.DataFrame(rows, columns=inference.feature_names)
    records = frame.to_dict("records")
    reports = [inference.drift_report(form) for form in (rows, frame, records)]
    assert reports[0] == reports[1] == reports[2]


def test_thresholds_are_configurable(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """Lower thresholds turn the same small drift into warn or alert; bad
    thresholds are refused."""
    rows = demo_rows[1]
    loose = inference.drift_report(rows)
    strict = inference.drift_report(rows, psi_warn=1e-6, psi_alert=1.0)
    assert loose["status"] == "ok"
    assert strict["status"] == "warn"
    assert strict["thresholds"] == {"psi_warn": 1e-6, "psi_alert": 1.0}
    for warn, alert in [(0.3, 0.2), ("0.1", 0.25), (0.1, float("inf")), (0, 0.1)]:
        with pytest.raises(ValueError, match="give finite numbers, 0 < psi_warn"):
            inference.drift_report(rows, psi_warn=warn, psi_alert=alert)


def test_drift_monitor_refuses_what_it_cannot_count(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """DriftMonitor.add refuses, counting nothing, rows of another width,
    results that are not one per row, and values that are not finite; the
    report afterwards is that of the rows it did take."""
    X = inference.preprocess_features(demo_rows[1][:50])
    scores = inference.score(X)
    predictions = (scores > inference.threshold).astype(int)
    monitor = inference.drift_monitor()
    monitor.add(X, scores, predictions)
    before = monitor.report()
    width = len(inference.feature_names)
    bad = {
        "width": (np.zeros((2, 3)), scores[:2], predictions[:2], "shape (n_rows, 17)"),
        "frame": (pd.DataFrame(X).astype(str), scores, predictions, "numeric array"),
        "counts": (X[:2], scores[:3], predictions[:2], "one score and one"),
        "nan": (np.full((1, width), np.nan), scores[:1], predictions[:1], "finite"),
        "labels": (X, scores, np.where(predictions == 1, -1, 1), "0 (normal) or 1"),
    }
    for rows, row_scores, row_predictions, message in bad.values():
        with pytest.raises(ValueError, match=re.escape(message)):
            monitor.add(rows, row_scores, row_predictions)
    assert monitor.report() == before


def test_empty_input_gives_an_unknown_status(inference: Any) -> None:
    """No rows: nothing to compare, status unknown, no PSI."""
    report = inference.drift_report([])
    assert report["status"] == "unknown"
    assert report["samples"] == 0
    assert report["score"]["psi"] is None


def test_partial_reference_gives_unknown_psi(
    rendered_samples: dict[str, Rendered],
) -> None:
    """A package without reference data has no histograms: PSI is unknown, and
    the report says its reference is partial."""
    package = rendered_samples["no_scaler"].package_dir
    inference = load_package_module(package).ModelInference(package, environ={})
    rows = np.ones((10, len(inference.feature_names)))
    report = inference.drift_report(rows)
    assert report["status"] == "unknown"
    assert report["reference"]["partial"] is True
    assert all(f["psi"] is None for f in report["features"].values())


def test_feature_with_one_reference_bin_has_no_psi(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """A feature whose reference values were all one value has a one-bin
    histogram, where PSI would be 0 whatever came: its PSI is None and its
    status unknown, while out_of_range counts the rows above that value; the
    other features are compared as before."""
    monitoring = json.loads(json.dumps(inference.monitoring))
    name = inference.feature_names[0]
    constant = monitoring["features"][name]
    value = constant["max"]
    constant["histogram"] = {"edges": [], "counts": [constant["count"]]}
    constant["min"] = value
    module = sys.modules[type(inference).__module__]
    monitor = module.DriftMonitor(monitoring, inference.feature_names, None)
    X = inference.preprocess_features(demo_rows[0][:500])
    X[:, 0] = value + 1.0
    scores = inference.score(X)
    monitor.add(X, scores, scores > inference.threshold)
    report = monitor.report()
    feature = report["features"][name]
    assert (feature["psi"], feature["status"]) == (None, "unknown")
    assert (feature["out_of_range"]["above"], feature["out_of_range"]["share"]) == (
        500,
        1.0,
    )
    others = [f for key, f in report["features"].items() if key != name]
    assert all(f["psi"] is not None for f in others)
    assert report["status"] != "unknown"


def test_values_below_and_above_the_reference_range_are_counted(
    inference: Any, demo_rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """Ten reference rows, one feature's value set 3 times under its reference
    min, 2 times over its max and once at each bound: the report counts
    exactly 3 below and 2 above (the bounds are inside), and none elsewhere."""
    name = "mean_data_rate"
    column = inference.feature_names.index(name)
    low = inference.monitoring["features"][name]["min"]
    high = inference.monitoring["features"][name]["max"]
    rows = demo_rows[0][:10].copy()
    below, above = [low - 1.0, low - 0.5, low - 1e-3], [high + 1.0, high + 7.0]
    rows[:7, column] = [*below, *above, low, high]
    report = inference.drift_report(rows)
    assert report["features"][name]["out_of_range"] == {
        "count": 5,
        "share": 0.5,
        "below": 3,
        "above": 2,
        "reference_min": low,
        "reference_max": high,
    }
    for other, feature in report["features"].items():
        if other != name:
            assert feature["out_of_range"]["count"] == 0, other


@pytest.fixture(scope="module")
def policy_packages(demo: Rendered, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo package re-signed with out_of_range warn and error."""
    packages = {}
    for policy in ("warn", "error"):
        package = copy_package(demo.package_dir, tmp_path_factory.mktemp(policy))

        def edit(manifest: dict, policy: str = policy) -> None:
            manifest["inference_config"]["out_of_range"] = policy

        resign_package(package, edit)
        packages[policy] = package
    return packages


def _outlier(inference: Any) -> tuple[list[dict], str, float]:
    monitoring = json.loads((inference.model_dir / "metadata.json").read_text())[
        "monitoring"
    ]
    name = inference.feature_names[2]
    record = {
        n: monitoring["features"][n]["quantiles"]["p50"]
        for n in inference.feature_names
    }
    record[name] = monitoring["features"][name]["max"] + 1.0
    return [record, record], name, monitoring["features"][name]["max"]


def test_out_of_range_error_names_feature_row_and_range(policy_packages: dict) -> None:
    """out_of_range=error: ValueError with the feature, the row and the range."""
    package = policy_packages["error"]
    inference = load_package_module(package).ModelInference(package, environ={})
    records, name, high = _outlier(inference)
    with pytest.raises(ValueError) as error:
        inference.predict(records)
    message = str(error.value)
    assert f"Feature '{name}'" in message
    assert "row 0" in message
    assert f"{high!r}]" in message
    assert "outside the reference range" in message


def test_out_of_range_warn_logs_and_scores(
    policy_packages: dict, demo: Rendered, caplog: pytest.LogCaptureFixture
) -> None:
    """out_of_range=warn: one WARNING per feature and call, naming the rows
    and the values; the scores are those of allow."""
    package = policy_packages["warn"]
    inference = load_package_module(package).ModelInference(package, environ={})
    records, name, high = _outlier(inference)
    with caplog.at_level("WARNING", logger="inference_example"):
        result = inference.predict(records)
        inference.predict(records * 500)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    low = inference.monitoring["features"][name]["min"]
    assert warnings == [
        f"Feature '{name}' in rows 0, 1 has 2 values from {high + 1.0!r} to "
        f"{high + 1.0!r}, outside the reference range [{low!r}, {high!r}]",
        f"Feature '{name}' in rows 0, 1, 2, 3, 4 and 995 more has 1000 values "
        f"from {high + 1.0!r} to {high + 1.0!r}, outside the reference range "
        f"[{low!r}, {high!r}]",
    ]
    allow = load_package_module(demo.package_dir).ModelInference(
        demo.package_dir, environ={}
    )
    assert result == allow.predict(records)


def test_allow_is_the_default_and_scores_anything(
    inference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The default policy scores values outside the reference range
    silently: nothing is logged, and the scores are those of the rows as
    given."""
    assert inference.out_of_range == "allow"
    records, _, _ = _outlier(inference)
    with caplog.at_level("DEBUG", logger="inference_example"):
        result = inference.predict(records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []
    X = np.array([[record[n] for n in inference.feature_names] for record in records])
    assert result["scores"] == inference.score(X).tolist()


def test_drift_report_counts_what_out_of_range_error_refuses(
    rendered_samples: dict[str, Rendered],
) -> None:
    """With out_of_range=error, rows over a feature's reference max that
    predict refuses are still taken by drift_report, which counts them as
    out of range."""
    package = rendered_samples["scaled"].package_dir
    inference = load_package_module(package).ModelInference(package, environ={})
    inference.out_of_range = "error"
    records, name, high = _outlier(inference)
    with pytest.raises(ValueError, match=f"Feature '{name}' in row 0"):
        inference.predict(records)
    report = inference.drift_report(records)
    assert report["samples"] == 2
    assert report["features"][name]["out_of_range"] == {
        "count": 2,
        "share": 1.0,
        "below": 0,
        "above": 2,
        "reference_min": inference.monitoring["features"][name]["min"],
        "reference_max": high,
    }


def test_drift_report_counts_a_filled_feature_as_the_zero_scored(
    rendered_samples: dict[str, Rendered],
) -> None:
    """missing_features=zero: the 0.0 filled in for a missing feature, which
    out_of_range never checks, is counted by drift_report as that feature's
    value (the README says so): its mean and out_of_range counts are those
    of the zeros scored, as if the caller had sent 0.0."""
    package = rendered_samples["scaled"].package_dir
    inference = load_package_module(package).ModelInference(package, environ={})
    inference.missing_features = "zero"
    records = _outlier(inference)[0]
    reference = inference.monitoring["features"]
    # A feature whose reference values are all above 0.0: a zero is below.
    missing = next(n for n in inference.feature_names if reference[n]["min"] > 0.0)
    without = [{n: v for n, v in record.items() if n != missing} for record in records]
    zeros = [{**record, missing: 0.0} for record in records]
    report = inference.drift_report(without)
    assert report == inference.drift_report(zeros)
    assert report["features"][missing]["mean"] == 0.0
    assert report["features"][missing]["out_of_range"] == {
        "count": 2,
        "share": 1.0,
        "below": 2,
        "above": 0,
        "reference_min": reference[missing]["min"],
        "reference_max": reference[missing]["max"],
    }


def test_cli_writes_a_drift_report(
    demo: Rendered, demo_rows: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """--drift-report PATH writes the report of every scored row, chunk by chunk,
    equal to drift_report on the whole input."""
    rows = demo_rows[1][:500]
    frame = pd.DataFrame(
        rows,
        columns=load_package_module(demo.package_dir)
        .ModelInference(demo.package_dir, environ={})
        .feature_names,
    )
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    report_path = tmp_path / "drift.json"
    result = subprocess.run(
        [
            sys.executable,
            str(demo.package_dir / "inference_example.py"),
            str(source),
            "-o",
            str(tmp_path / "out.csv"),
            "--chunk-size",
            "64",
            "--drift-report",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        env=consumer_environment(),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    inference = load_package_module(demo.package_dir).ModelInference(
        demo.package_dir, environ={}
    )
    expected = inference.drift_report(pd.read_csv(source))
    assert report["samples"] == 500
    got, want = leaves(report), leaves(expected)
    assert got.keys() == want.keys()
    texts = {path for path, value in want.items() if isinstance(value, str)}
    assert {path: got[path] for path in texts} == {path: want[path] for path in texts}
    # Sums kept chunk by chunk: means may differ from one pass in the last bits.
    numbers = want.keys() - texts
    assert {path: got[path] for path in numbers} == pytest.approx(
        {path: want[path] for path in numbers}, rel=1e-12, abs=1e-12
    )


def leaves(report: Any, where: str = "") -> dict[str, Any]:
    """Every value of a drift report by its path: numbers as they are; texts,
    None and booleans as their repr, to be compared exactly."""
    if isinstance(report, dict):
        return {
            path: value
            for key, item in report.items()
            for path, value in leaves(item, f"{where}.{key}").items()
        }
    if isinstance(report, list):
        return {
            path: value
            for index, item in enumerate(report)
            for path, value in leaves(item, f"{where}[{index}]").items()
        }
    if isinstance(report, (int, float)) and not isinstance(report, bool):
        return {where: report}
    return {where: repr(report)}


def _score_file_with_drift(
    package: Path, source: Path, folder: Path, *options: str
) -> subprocess.CompletedProcess:
    """Run the package's command line on ``source`` with ``--drift-report``
    (written to ``folder``/drift.json, the scores to ``folder``/out.csv)."""
    folder.mkdir()
    return subprocess.run(
        [
            sys.executable,
            str(package / "inference_example.py"),
            str(source),
            "-o",
            str(folder / "out.csv"),
            "--drift-report",
            str(folder / "drift.json"),
            "--quiet",
            *options,
        ],
        capture_output=True,
        text=True,
        env=consumer_environment(),
    )


def test_cli_psi_options_set_the_report_levels(
    demo: Rendered,
    inference: Any,
    demo_rows: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    """--psi-warn 0.02 --psi-alert 0.03 turn held-out rows whose every feature
    is ok at the defaults (0.1, 0.25) into a report with features at warn and
    at alert, each judged by the PSI it reaches, and an alert status."""
    rows = demo_rows[1][:500]
    source = tmp_path / "in.csv"
    pd.DataFrame(rows, columns=inference.feature_names).to_csv(source, index=False)
    defaults = inference.drift_report(rows)
    assert defaults["status"] == "ok"
    assert {f["status"] for f in defaults["features"].values()} == {"ok"}

    result = _score_file_with_drift(
        demo.package_dir,
        source,
        tmp_path / "run",
        "--psi-warn",
        "0.02",
        "--psi-alert",
        "0.03",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "run" / "drift.json").read_text())
    assert report["thresholds"] == {"psi_warn": 0.02, "psi_alert": 0.03}
    statuses = {name: f["status"] for name, f in report["features"].items()}
    assert statuses == {
        name: "alert" if f["psi"] >= 0.03 else "warn" if f["psi"] >= 0.02 else "ok"
        for name, f in defaults["features"].items()
    }
    assert {"ok", "warn", "alert"} <= set(statuses.values())
    assert report["status"] == "alert"
    alerting = [name for name, status in statuses.items() if status == "alert"]
    assert all(
        any(
            f"feature '{name}'" in reason and "(alert)" in reason
            for reason in report["reasons"]
        )
        for name in alerting
    ), report["reasons"]


def test_cli_refuses_psi_options_out_of_order_or_not_numbers(
    demo: Rendered,
    inference: Any,
    demo_rows: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    """--psi-warn over --psi-alert, or either not a finite number, exits 2
    naming the options, their values and the fix before the package loads,
    and writes no file; so does either option without --drift-report."""
    source = tmp_path / "in.csv"
    frame = pd.DataFrame(demo_rows[1][:20], columns=inference.feature_names)
    frame.to_csv(source, index=False)
    refusals = {
        "reversed": (
            ("--psi-warn", "0.5", "--psi-alert", "0.1"),
            "inference_example.py: error: --psi-warn 0.5 and --psi-alert 0.1: give "
            "finite numbers, 0 < --psi-warn <= --psi-alert\n",
        ),
        "nan": (
            ("--psi-warn", "nan"),
            "inference_example.py: error: --psi-warn nan and --psi-alert 0.25: give "
            "finite numbers, 0 < --psi-warn <= --psi-alert\n",
        ),
        "zero": (
            ("--psi-warn", "0", "--psi-alert", "0"),
            "inference_example.py: error: --psi-warn 0.0 and --psi-alert 0.0: give "
            "finite numbers, 0 < --psi-warn <= --psi-alert\n",
        ),
        "text": (
            ("--psi-alert", "high"),
            "argument --psi-alert: invalid float value: 'high'",
        ),
    }
    results = run_concurrently(
        {
            key: (
                lambda key=key, options=options: _score_file_with_drift(
                    demo.package_dir, source, tmp_path / key, *options
                )
            )
            for key, (options, _) in refusals.items()
        }
    )
    for key, (_, message) in refusals.items():
        result = results[key]
        assert result.returncode == 2, (key, result.stderr)
        assert message in result.stderr, (key, result.stderr)
        assert not any((tmp_path / key).iterdir()), key
    for key in ("reversed", "nan", "zero"):
        assert results[key].stderr.startswith("usage: inference_example.py"), key
        assert results[key].stderr.endswith(refusals[key][1]), key

    # Without --drift-report the levels would be ignored.
    output = tmp_path / "no-report" / "out.csv"
    output.parent.mkdir()
    alone = subprocess.run(
        [
            sys.executable,
            str(demo.package_dir / "inference_example.py"),
            str(source),
            "-o",
            str(output),
            "--psi-alert",
            "0.3",
        ],
        capture_output=True,
        text=True,
        env=consumer_environment(),
    )
    assert alone.returncode == 2, alone.stderr
    assert alone.stderr.endswith(
        "inference_example.py: error: --psi-warn and --psi-alert set the drift "
        "report's levels: add --drift-report PATH\n"
    )
    assert not output.exists()


def test_huge_values_give_a_finite_report_and_no_warnings(
    demo: Rendered,
    inference: Any,
    demo_rows: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    """Values near the largest float (1e308), whose sum overflows: the
    report's mean is theirs, the report is valid JSON (no Infinity or NaN),
    and --quiet leaves stderr empty (no numpy warning)."""
    # A column that the scaler divides by 1 or more, so scoring stays finite.
    column = int(np.argmax(inference.scaler.scale_))
    name = inference.feature_names[column]
    rows = demo_rows[1][:200].copy()
    rows[:, column] = 1e308
    source = tmp_path / "in.csv"
    pd.DataFrame(rows, columns=inference.feature_names).to_csv(source, index=False)
    report_path = tmp_path / "drift.json"
    result = subprocess.run(
        [
            sys.executable,
            str(demo.package_dir / "inference_example.py"),
            str(source),
            "-o",
            str(tmp_path / "out.csv"),
            "--drift-report",
            str(report_path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=consumer_environment(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    report = json.loads(report_path.read_text(), parse_constant=refuse)
    assert report["features"][name]["mean"] == pytest.approx(1e308)
    assert report == json.loads(
        json.dumps(inference.drift_report(rows), allow_nan=False)
    )


def test_range_policy_without_reference_data_is_refused(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """out_of_range=warn needs every feature's reference range: a build
    without reference data is refused with one ERROR line, nothing left."""
    directory, samples = artifacts
    rendered = run_cookiecutter(
        tmp_path / "out",
        *answers_for(samples["no_scaler"]),
        "out_of_range=warn",
        cwd=directory,
    )
    assert rendered.returncode != 0
    assert (
        "ERROR: out_of_range ('warn'): the reference range of bytes_in, bytes_out"
        in rendered.stderr
    )
    assert "give reference_data_path, or answer allow" in rendered.stderr
    assert not any((tmp_path / "out").iterdir())


def test_self_test_ignores_the_range_policy(
    policy_packages: dict, tmp_path: Path
) -> None:
    """A self-test row outside the reference range still validates under
    out_of_range=error: the self-test checks numbers, not the policy."""
    package = copy_package(policy_packages["error"], tmp_path)
    module = load_package_module(package)
    outlier, name, _ = _outlier(module.ModelInference(package, environ={}))

    def edit(manifest: dict) -> None:
        manifest["self_test"]["inputs"][0] = outlier[0]
        allowed = module.ModelInference(package, verify=False, environ={})
        allowed.out_of_range = "allow"
        result = allowed.predict([outlier[0]])
        manifest["self_test"]["scores"][0] = result["scores"][0]
        manifest["self_test"]["predictions"][0] = result["predictions"][0]

    resign_package(package, edit)
    result = run_validate_model(package)
    assert result.returncode == 0, result.stdout
    with pytest.raises(ValueError, match=f"Feature '{name}' in row 0"):
        module.ModelInference(package, environ={}).predict(outlier)
