"""Write sample model artifacts, as a builder would bring them.

Used by the tests and by ``nox -s render``:

    python tests/sample_artifacts.py OUTPUT_DIR

writes one folder per sample into OUTPUT_DIR and prints, per sample, the
cookiecutter answers that package it (paths relative to OUTPUT_DIR).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["bytes_in", "bytes_out", "login_failures", "session_seconds", "port_count"]
SEED = 7


def make_data(n_rows: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Return feature rows and labels: mostly normal traffic, 5% outliers."""
    rng = np.random.default_rng(seed)
    normal = rng.normal([500, 300, 1, 120, 3], [80, 50, 1, 30, 1], (n_rows, 5))
    n_outliers = n_rows // 20
    outliers = rng.normal([5000, 20, 30, 2, 40], [500, 10, 5, 1, 5], (n_outliers, 5))
    X = np.vstack([normal, outliers])
    y = np.r_[np.zeros(n_rows, dtype=int), np.ones(n_outliers, dtype=int)]
    order = rng.permutation(len(X))
    return X[order], y[order]


def reference_rows(n_rows: int = 300, seed: int = SEED + 1) -> np.ndarray:
    """Representative inputs for the "scaled" sample's reference data: new
    rows from the training distribution, outliers included."""
    X, _ = make_data(n_rows, seed)
    return X


def write_reference_csv(path: Path, X: np.ndarray, names: list[str]) -> None:
    """Write ``X`` as CSV: the feature columns in reverse order, after a
    text column that is not a feature; values as repr(float), so they read
    back exactly."""
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["host", *reversed(names)])
        for number, row in enumerate(X.tolist()):
            writer.writerow([f"host-{number}", *map(repr, reversed(row))])


def training_service_metadata(names: list[str]) -> dict:
    """metadata.json as the training service writes it (no deployment_info)."""
    return {
        "model_info": {
            "version": "20240101_000000",
            "created_at": "2024-01-01T00:00:00Z",
            "model_type": "IsolationForest",
            "training_source": "netflow export",
            "export_file": "netflow_2024_01.csv",
            "training_id": "train-0042",
        },
        "training_info": {
            "training_samples": 2000,
            "feature_names": names,
            "feature_count": len(names),
            "export_file_size": 1048576,
            "training_duration": 1.5,
            "model_parameters": {"n_estimators": 50},
        },
        "evaluation_info": {
            "basic_metrics": {
                "accuracy": 0.97,
                "precision": 0.8,
                "recall": 0.9,
                "f1_score": 0.85,
                "threshold_value": 0.5,
                "anomaly_ratio": 0.05,
            },
            "cross_validation_score": 0.84,
            "feature_importance": {name: 0.2 for name in names},
        },
    }


def write_samples(directory: Path) -> dict[str, dict[str, str]]:
    """Write every sample into ``directory``; return the answers for each."""
    X, _ = make_data(2000)
    samples: dict[str, dict[str, str]] = {}

    folder = directory / "scaled"
    folder.mkdir(parents=True, exist_ok=True)
    scaler = StandardScaler().fit(X)
    model = IsolationForest(n_estimators=50, random_state=SEED).fit(scaler.transform(X))
    joblib.dump(model, folder / "model.joblib")
    joblib.dump(scaler, folder / "scaler.joblib")
    (folder / "metadata.json").write_text(
        json.dumps(training_service_metadata(FEATURES), indent=2)
    )
    write_reference_csv(folder / "reference.csv", reference_rows(), FEATURES)
    samples["scaled"] = {
        "model_path": "scaled/model.joblib",
        "scaler_path": "scaled/scaler.joblib",
        "metadata_path": "scaled/metadata.json",
        "reference_data_path": "scaled/reference.csv",
    }

    folder = directory / "no_scaler"
    folder.mkdir(parents=True, exist_ok=True)
    model = IsolationForest(n_estimators=30, contamination=0.05, random_state=SEED).fit(
        X
    )
    joblib.dump(model, folder / "model.joblib")
    samples["no_scaler"] = {
        "model_path": "no_scaler/model.joblib",
        "feature_names": ",".join(FEATURES),
    }

    folder = directory / "dataframe"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(X, columns=[f"col_{name}" for name in FEATURES])
    pipeline = make_pipeline(
        StandardScaler(), IsolationForest(n_estimators=40, random_state=SEED)
    ).fit(frame)
    joblib.dump(pipeline, folder / "model.joblib")
    samples["dataframe"] = {"model_path": "dataframe/model.joblib"}
    return samples


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__.strip())
    print(json.dumps(write_samples(Path(sys.argv[1])), indent=2))
