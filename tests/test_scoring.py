"""The generated package scores exactly as the estimator itself does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import Rendered
from package_builder.build import load_package_module
from sample_artifacts import make_data

SNIPPETS = Path(__file__).parent / "snippets"


@pytest.mark.parametrize("package", ["scaled", "no_scaler", "dataframe"])
def test_scores_and_predictions_equal_the_estimators_own(
    package: str, rendered_samples: dict[str, Rendered]
) -> None:
    """On held-out rows, scores are -score_samples and predictions equal
    predict(X) == -1, whatever the scaler or Pipeline."""
    package_dir = rendered_samples[package].package_dir
    inference = load_package_module(package_dir).ModelInference(package_dir)
    X, _ = make_data(400, seed=99)
    model = joblib.load(package_dir / "model.joblib")
    if package == "dataframe":
        rows = pd.DataFrame(X, columns=inference.feature_names)
        expected_scores = -model.score_samples(rows)
        expected_predictions = model.predict(rows) == -1
    else:
        rows = X
        if package == "scaled":
            rows = joblib.load(package_dir / "scaler.joblib").transform(X)
        expected_scores = -model.score_samples(rows)
        expected_predictions = model.predict(rows) == -1
    records = [
        dict(zip(inference.feature_names, row, strict=True)) for row in X.tolist()
    ]
    result = inference.predict(records)
    assert np.array_equal(result["scores"], expected_scores)
    assert result["predictions"] == expected_predictions.astype(int).tolist()
    assert result["anomaly_count"] == int(expected_predictions.sum())
    assert result["total_samples"] == len(X)
    assert 0 < result["anomaly_count"] < len(X)


def test_demo_scores_match_the_forest(demo: Rendered) -> None:
    """The demo package's predictions are the IsolationForest's own."""
    inference = load_package_module(demo.package_dir).ModelInference(demo.package_dir)
    X = inference.preprocess_features(inference.manifest["self_test"]["inputs"])
    scaled = inference.scaler.transform(X)
    result = inference.predict(X)
    assert np.array_equal(result["scores"], -inference.model.score_samples(scaled))
    assert (
        result["predictions"]
        == (inference.model.predict(scaled) == -1).astype(int).tolist()
    )
    assert result["threshold"] == -inference.model.offset_


def test_missing_feature_names_the_feature(demo: Rendered) -> None:
    """A record without a feature raises the spec's ValueError naming it."""
    inference = load_package_module(demo.package_dir).ModelInference(demo.package_dir)
    record = dict.fromkeys(inference.feature_names, 0.0)
    del record["auth_failure_ratio"]
    with pytest.raises(
        ValueError, match="Feature 'auth_failure_ratio' not found in input"
    ):
        inference.predict([record])


def test_spec_pattern_1_runs_as_written(demo: Rendered) -> None:
    """The specification's Pattern 1 code runs in the demo package folder,
    and the record it sends, ordinary traffic, is not flagged: the demo's
    normal traffic is drawn around the specification's example."""
    result = subprocess.run(
        [sys.executable, "-c", (SNIPPETS / "pattern_1.py").read_text()],
        cwd=demo.package_dir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Anomalies: 0/1\n"
