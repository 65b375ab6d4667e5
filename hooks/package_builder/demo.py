"""Embedded demo anomaly detector for packages built without a model.

When the package builder is given no trained model, the generated package still
needs a working detector and honest metadata. This module builds one: it
synthesises a seeded wireless-network log feature dataset with injected, labelled
attacks, fits a ``StandardScaler`` and an ``IsolationForest`` on it, evaluates the
pair on held-out rows and writes both with joblib. Because the data carry real
labels, every metric that ends up in ``metadata.json`` (accuracy, F1, cross
validation, feature importance) is actually measured, and because everything is
seeded, the same seed reproduces the same model files byte for byte.

Score convention: ``score = -estimator.score_samples(scaler.transform(X))``
(higher is more anomalous); a row is predicted anomalous when ``score >
threshold``, the default threshold being ``-estimator.offset_``.
"""

from __future__ import annotations

import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

FEATURE_NAMES: list[str] = [
    "auth_failure_ratio",
    "deauth_ratio",
    "beacon_ratio",
    "unique_mac_count",
    "unique_ssid_count",
    "mean_signal_strength",
    "std_signal_strength",
    "mean_data_rate",
    "mean_packet_loss",
    "error_ratio",
    "warning_ratio",
    "mean_hour_of_day",
    "mean_day_of_week",
    "mean_time_between_events",
    "total_devices",
    "max_device_activity",
    "mean_device_activity",
]

ANOMALY_KINDS: tuple[str, ...] = (
    "auth_failure_burst",
    "deauth_flood",
    "night_scan",
    "rogue_ap_beacon_storm",
    "signal_jamming",
)

TEST_SIZE = 0.3
CV_FOLDS = 5
PERMUTATION_REPEATS = 10
N_ESTIMATORS = 100
EXAMPLE_MARGIN = 0.05


def _normal_traffic(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Sample ``n`` windows of ordinary traffic with plausible correlations,
    typical of which is the specification's example record (Pattern 1): 25
    devices, 15 MACs, 8 SSIDs, -45 dBm, 54 Mbit/s, 120 s between events."""
    hour = np.clip(rng.normal(13.0, 3.5, n), 0.0, 23.0)
    day = rng.integers(0, 7, n).astype(np.float64)
    daytime = np.exp(-0.5 * ((hour - 13.0) / 4.0) ** 2)
    weekday = np.where(day < 5, 1.0, 0.6)
    devices = rng.poisson(5.0 + 21.0 * daytime * weekday).astype(np.float64)
    devices = np.maximum(devices, 1.0)
    macs = np.maximum(rng.binomial(devices.astype(np.int64), 0.6), 1).astype(np.float64)
    ssids = 3.0 + rng.poisson(5.0, n)

    signal = rng.normal(-48.0, 5.0, n) - 0.1 * (devices - 25.0)
    signal = np.clip(signal, -85.0, -30.0)
    signal_std = rng.gamma(9.0, 0.6, n)
    rate_quality = 1.0 / (1.0 + np.exp(-(signal + 65.0) / 5.0))
    data_rate = (6.0 + 50.0 * rate_quality) * rng.lognormal(0.0, 0.15, n)
    data_rate = np.clip(data_rate, 1.0, 150.0)
    loss = 0.004 * np.maximum(0.0, -60.0 - signal) + rng.beta(1.2, 80.0, n)
    loss = np.clip(loss, 0.0, 1.0)

    auth_failure = rng.beta(4.0, 36.0, n)
    deauth = rng.beta(3.0, 57.0, n)
    beacon = rng.beta(12.0, 28.0, n)
    error = np.clip(0.2 * loss + 0.05 * auth_failure + rng.beta(1.0, 100.0, n), 0, 1)
    warning = np.clip(rng.beta(2.0, 80.0, n) + 0.5 * error, 0.0, 1.0)
    gap = 3000.0 / devices * rng.lognormal(0.0, 0.3, n)

    mean_activity = rng.beta(4.0, 6.0, n)
    max_activity = mean_activity + (1.0 - mean_activity) * rng.beta(5.0, 3.0, n)
    return {
        "auth_failure_ratio": auth_failure,
        "deauth_ratio": deauth,
        "beacon_ratio": beacon,
        "unique_mac_count": macs,
        "unique_ssid_count": ssids,
        "mean_signal_strength": signal,
        "std_signal_strength": signal_std,
        "mean_data_rate": data_rate,
        "mean_packet_loss": loss,
        "error_ratio": error,
        "warning_ratio": warning,
        "mean_hour_of_day": hour,
        "mean_day_of_week": day,
        "mean_time_between_events": gap,
        "total_devices": devices,
        "max_device_activity": max_activity,
        "mean_device_activity": mean_activity,
    }


def _inject(rng: np.random.Generator, cols: dict[str, np.ndarray], kind: str) -> None:
    """Overwrite the features that a ``kind`` attack shifts, in place."""
    n = len(cols["deauth_ratio"])
    if kind == "deauth_flood":
        cols["deauth_ratio"] = rng.uniform(0.45, 0.9, n)
        cols["mean_packet_loss"] = rng.uniform(0.3, 0.7, n)
        cols["error_ratio"] = rng.uniform(0.2, 0.5, n)
        cols["mean_time_between_events"] = rng.uniform(0.02, 0.3, n)
        cols["max_device_activity"] = rng.uniform(0.9, 1.0, n)
    elif kind == "auth_failure_burst":
        cols["auth_failure_ratio"] = rng.uniform(0.4, 0.9, n)
        cols["error_ratio"] = rng.uniform(0.35, 0.75, n)
        cols["warning_ratio"] = rng.uniform(0.3, 0.6, n)
        cols["mean_time_between_events"] = rng.uniform(0.1, 1.0, n)
    elif kind == "rogue_ap_beacon_storm":
        cols["beacon_ratio"] = rng.uniform(0.7, 0.97, n)
        cols["unique_ssid_count"] = rng.integers(40, 250, n).astype(np.float64)
        cols["unique_mac_count"] += rng.integers(30, 200, n)
        cols["mean_time_between_events"] = rng.uniform(0.01, 0.2, n)
    elif kind == "signal_jamming":
        cols["mean_signal_strength"] = rng.uniform(-90.0, -82.0, n)
        cols["std_signal_strength"] = rng.uniform(12.0, 22.0, n)
        cols["mean_packet_loss"] = rng.uniform(0.45, 0.9, n)
        cols["mean_data_rate"] = rng.uniform(1.0, 11.0, n)
        cols["error_ratio"] = rng.uniform(0.2, 0.5, n)
    elif kind == "night_scan":
        cols["mean_hour_of_day"] = rng.uniform(1.0, 4.5, n)
        cols["total_devices"] = rng.integers(1, 5, n).astype(np.float64)
        cols["unique_mac_count"] = rng.integers(120, 400, n).astype(np.float64)
        cols["mean_time_between_events"] = rng.uniform(0.02, 0.4, n)
        cols["max_device_activity"] = rng.uniform(0.95, 1.0, n)
        cols["mean_device_activity"] = rng.uniform(0.5, 0.8, n)
    else:
        raise ValueError(f"unknown anomaly kind: {kind}")


def _stack(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Stack named feature columns into a matrix in ``FEATURE_NAMES`` order."""
    return np.column_stack([cols[name] for name in FEATURE_NAMES])


def make_dataset(
    n_samples: int = 6000, anomaly_fraction: float = 0.04, seed: int = 42
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return seeded synthetic wireless-log features ``X``, labels ``y`` and kinds.

    Each row is one time window; ``y`` is 1 for injected anomalies and ``kinds``
    names the anomaly (or ``"normal"``). Rows are shuffled deterministically.
    """
    rng = np.random.default_rng(seed)
    n_anomalies = round(n_samples * anomaly_fraction)
    n_normal = n_samples - n_anomalies
    kind_of = np.array(ANOMALY_KINDS)[np.arange(n_anomalies) % len(ANOMALY_KINDS)]

    blocks = [_stack(_normal_traffic(rng, n_normal))]
    kinds = ["normal"] * n_normal
    for kind in ANOMALY_KINDS:
        count = int(np.sum(kind_of == kind))
        if count == 0:
            continue
        cols = _normal_traffic(rng, count)
        _inject(rng, cols, kind)
        blocks.append(_stack(cols))
        kinds.extend([kind] * count)

    X = np.round(np.vstack(blocks).astype(np.float64), 4)
    y = np.array([kind != "normal" for kind in kinds], dtype=np.int64)
    order = rng.permutation(n_samples)
    return X[order], y[order], [kinds[i] for i in order]


def _fit(X: np.ndarray, seed: int) -> tuple[StandardScaler, IsolationForest]:
    """Fit the scaler and the isolation forest on bare numpy rows."""
    scaler = StandardScaler().fit(X)
    estimator = IsolationForest(
        n_estimators=N_ESTIMATORS, contamination="auto", random_state=seed
    ).fit(scaler.transform(X))
    return scaler, estimator


def _score(
    scaler: StandardScaler, estimator: IsolationForest, X: np.ndarray
) -> np.ndarray:
    """Anomaly score of the project convention (higher = more anomalous)."""
    return -estimator.score_samples(scaler.transform(X))


def _cross_validation_f1(
    X: np.ndarray, y: np.ndarray, seed: int, threshold: float | None
) -> float:
    """Mean F1 over stratified folds, each fold with its own fitted model."""
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    scores = []
    for fit_rows, val_rows in folds.split(X, y):
        scaler, estimator = _fit(X[fit_rows], seed)
        cut = -estimator.offset_ if threshold is None else threshold
        predicted = (_score(scaler, estimator, X[val_rows]) > cut).astype(int)
        scores.append(f1_score(y[val_rows], predicted, zero_division=0))
    return float(np.mean(scores))


def _permutation_importance(
    scaler: StandardScaler,
    estimator: IsolationForest,
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
) -> dict[str, float]:
    """Mean ROC AUC drop of the anomaly score when each feature is shuffled."""
    rng = np.random.default_rng(seed)
    baseline = roc_auc_score(y, _score(scaler, estimator, X))
    importance = {}
    for column, name in enumerate(FEATURE_NAMES):
        drops = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = X.copy()
            shuffled[:, column] = rng.permutation(shuffled[:, column])
            drops.append(
                baseline - roc_auc_score(y, _score(scaler, estimator, shuffled))
            )
        importance[name] = round(float(np.mean(drops)), 6)
    return importance


def _holdout_examples(
    X: np.ndarray, y: np.ndarray, scores: np.ndarray, cut: float
) -> list[list[float]]:
    """Pick 2 anomalies and 3 normal rows, clearly correct predictions first.

    Rows predicted correctly with a margin of at least ``EXAMPLE_MARGIN`` from the
    threshold come first so that the package self-test is not a borderline call.
    """
    clear = ((scores > cut) == (y == 1)) & (np.abs(scores - cut) >= EXAMPLE_MARGIN)
    clear_first = np.argsort(~clear, kind="stable")
    anomalies = [i for i in clear_first if y[i] == 1][:2]
    normals = [i for i in clear_first if y[i] == 0][:3]
    return [[float(v) for v in X[i]] for i in anomalies + normals]


def train_demo(directory: Path, seed: int = 42, threshold: float | None = None) -> dict:
    """Train the demo detector into ``directory`` and return its metadata.

    Writes ``model.joblib`` (the forest) and ``scaler.joblib``; all metrics are
    measured on held-out rows against the injected labels.
    """
    n_samples, anomaly_fraction = 6000, 0.04
    X, y, kinds = make_dataset(n_samples, anomaly_fraction, seed)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=seed, stratify=y
    )

    start = time.perf_counter()
    scaler, estimator = _fit(X_train, seed)
    duration = time.perf_counter() - start

    directory = Path(directory)
    joblib.dump(estimator, directory / "model.joblib")
    joblib.dump(scaler, directory / "scaler.joblib")

    cut = float(-estimator.offset_ if threshold is None else threshold)
    test_scores = _score(scaler, estimator, X_test)
    predicted = (test_scores > cut).astype(int)
    metrics = {
        "accuracy": accuracy_score(y_test, predicted),
        "precision": precision_score(y_test, predicted, zero_division=0),
        "recall": recall_score(y_test, predicted, zero_division=0),
        "f1_score": f1_score(y_test, predicted, zero_division=0),
        "threshold_value": cut,
        "anomaly_ratio": predicted.mean(),
    }
    return {
        "model_type": "IsolationForest",
        "training_source": (
            f"synthetic wireless network logs (model-package demo, seed {seed})"
        ),
        "training_samples": len(X_train),
        "feature_names": list(FEATURE_NAMES),
        "training_duration": round(duration, 4),
        "threshold": cut,
        "basic_metrics": {k: round(float(v), 6) for k, v in metrics.items()},
        "cross_validation_score": round(
            _cross_validation_f1(X_train, y_train, seed, threshold), 6
        ),
        "cross_validation_method": (
            f"mean F1 over {CV_FOLDS}-fold stratified CV against injected labels"
        ),
        "feature_importance": _permutation_importance(
            scaler, estimator, X_test, y_test, seed
        ),
        "feature_importance_method": (
            "permutation importance on held-out rows: mean drop in ROC AUC of the "
            f"anomaly score over {PERMUTATION_REPEATS} shuffles per feature"
        ),
        "holdout_examples": _holdout_examples(X_test, y_test, test_scores, cut),
        # The rows the scaler and forest were fitted on: the demo's reference
        # data for the monitoring statistics.
        "reference_rows": X_train,
        "dataset": {
            "n_samples": n_samples,
            "anomaly_fraction": anomaly_fraction,
            "seed": seed,
            "anomaly_kinds": sorted(set(kinds) - {"normal"}),
        },
    }
