"""Production inference for this deployment package.

    from inference_example import ModelInference

    inference = ModelInference()        # verifies every hash, then loads
    result = inference.predict([{"auth_failure_ratio": 0.1, ...}])
    print(result["anomaly_count"], "of", result["total_samples"])

Everything model-specific (file names, hashes, feature names, threshold,
batch size) is read from deployment_manifest.json, so this file is the same
in every package.

Scores follow one convention: ``score = -estimator.score_samples(X)``, higher
means more anomalous, and a row is an anomaly (prediction 1) when
``score > threshold``. The default threshold is the model's own decision
boundary, ``-offset_``, so predictions equal ``estimator.predict(X) == -1``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

MANIFEST_FILE = "deployment_manifest.json"
_HASH_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


class IntegrityError(RuntimeError):
    """A package file is missing or does not match the manifest's SHA-256."""


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(model_dir: Path | str) -> dict[str, Any]:
    """Read deployment_manifest.json from ``model_dir``."""
    path = Path(model_dir) / MANIFEST_FILE
    try:
        with open(path, encoding="utf-8") as stream:
            manifest = json.load(stream)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: pass the extracted package folder as model_dir"
        ) from None
    except json.JSONDecodeError as error:
        raise IntegrityError(
            f"{path} is not valid JSON ({error}): re-download the package"
        ) from None
    if not isinstance(manifest, dict):
        raise IntegrityError(f"{path} is not a JSON object: re-download the package")
    return manifest


def integrity_report(
    model_dir: Path | str, manifest: Mapping[str, Any]
) -> list[tuple[str, str | None]]:
    """Check every file the manifest names against its recorded SHA-256.

    Returns ``(file name, problem)`` pairs in manifest order; ``problem`` is
    None for a file that matches. A file listed under ``files`` without a
    hash under ``file_integrity`` is a problem too: it could not be checked.
    """
    model_dir = Path(model_dir)
    hashes = manifest.get("file_integrity")
    if not isinstance(hashes, dict) or not hashes:
        return [(MANIFEST_FILE, "has no file_integrity hashes")]
    report: list[tuple[str, str | None]] = []
    for name, expected in hashes.items():
        path = model_dir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            report.append((name, "is not a file name inside the package"))
        elif not path.is_file():
            report.append((name, "missing"))
        elif sha256_file(path) != expected:
            report.append((name, "SHA-256 does not match the manifest"))
        else:
            report.append((name, None))
    for name in (manifest.get("files") or {}).values():
        if name and name not in hashes:
            report.append((name, "has no SHA-256 in the manifest"))
    return report


def verify_package(model_dir: Path | str, manifest: Mapping[str, Any]) -> None:
    """Raise IntegrityError unless every file matches the manifest."""
    problems = [
        f"{name}: {problem}"
        for name, problem in integrity_report(model_dir, manifest)
        if problem
    ]
    if problems:
        raise IntegrityError(
            "package integrity check failed, nothing was loaded: "
            + "; ".join(problems)
            + ". Re-download the package and run validate_model.py"
        )


def final_estimator(model: Any) -> Any:
    """Return the estimator that makes the decision (the last Pipeline step)."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def anomaly_scores(model: Any, X: Any) -> np.ndarray:
    """Return anomaly scores of ``X``: higher means more anomalous."""
    return -np.asarray(model.score_samples(X), dtype=float)


def model_threshold(model: Any) -> float:
    """Return the model's own decision boundary on the anomaly score."""
    return float(-final_estimator(model).offset_)


def _named_if_fitted_with_names(step: Any, X: np.ndarray) -> Any:
    """Give ``X`` column names when ``step`` was fitted on a DataFrame."""
    names = getattr(step, "feature_names_in_", None)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def _is_number(value: Any) -> bool:
    return (
        type(value) is float
        or type(value) is int
        or (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)))
    )


class ModelInference:
    """Load a verified deployment package and score feature records.

    Args:
        model_dir: the extracted package folder (default: current directory).
        verify: check every file's SHA-256 against the manifest before any
            file is unpickled. A joblib file runs code when loaded, so turn
            this off only for files you have just verified yourself.
    """

    def __init__(self, model_dir: Path | str = ".", verify: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self._manifest = read_manifest(self.model_dir)
        if verify:
            verify_package(self.model_dir, self._manifest)
        files = self._manifest.get("files", {})
        self._model = joblib.load(self.model_dir / files["model_file"])
        scaler_file = files.get("scaler_file")
        self._scaler = (
            joblib.load(self.model_dir / scaler_file) if scaler_file else None
        )
        self._feature_names = list(self._manifest["training_info"]["feature_names"])
        config = self._manifest.get("inference_config", {})
        threshold = config.get("threshold")
        self._threshold = (
            model_threshold(self._model) if threshold is None else float(threshold)
        )
        self.batch_size = int(config.get("batch_size") or 1000)
        self.timeout_seconds = float(config.get("timeout_seconds") or 30)

    @property
    def manifest(self) -> dict[str, Any]:
        """The deployment manifest."""
        return self._manifest

    @property
    def model(self) -> Any:
        """The loaded scikit-learn model."""
        return self._model

    @property
    def scaler(self) -> Any | None:
        """The feature scaler, or None when the package has none."""
        return self._scaler

    @property
    def threshold(self) -> float:
        """Rows whose anomaly score is above this are anomalies."""
        return self._threshold

    @property
    def feature_names(self) -> list[str]:
        """The features a record must have, in training order."""
        return list(self._feature_names)

    def preprocess_features(self, features: Any) -> np.ndarray:
        """Turn records into a float array with columns in training order.

        ``features`` is a list of dicts (feature name -> number), a pandas
        DataFrame with the feature columns, or a 2-D array whose columns are
        already in ``feature_names`` order. Extra keys are ignored.

        Raises:
            ValueError: a feature is missing, or a value is not a finite number.
        """
        names = self._feature_names
        if hasattr(features, "columns") and hasattr(features, "to_numpy"):
            missing = [name for name in names if name not in features.columns]
            if missing:
                raise ValueError(
                    f"Feature '{missing[0]}' not found in input: the DataFrame "
                    f"needs every column of feature_names"
                )
            rows: Any = features[names].to_numpy(dtype=object).tolist()
        elif isinstance(features, np.ndarray):
            if features.ndim != 2 or features.shape[1] != len(names):
                raise ValueError(
                    f"array input must have shape (n_rows, {len(names)}) with "
                    f"columns in feature_names order, got {features.shape}"
                )
            rows = features.tolist()
        elif isinstance(features, Sequence) and not isinstance(features, (str, bytes)):
            rows = [
                self._record_values(record, row) for row, record in enumerate(features)
            ]
        else:
            hint = (
                ": wrap one record in a list" if isinstance(features, Mapping) else ""
            )
            raise ValueError(
                "features must be a list of dicts, a DataFrame or a 2-D array, "
                f"got {type(features).__name__}{hint}"
            )
        return self._to_finite_array(rows)

    def _record_values(self, record: Any, row: int) -> list[Any]:
        if not isinstance(record, Mapping):
            raise ValueError(
                f"row {row} is a {type(record).__name__}, expected a dict of "
                "feature name -> number"
            )
        values = []
        for name in self._feature_names:
            try:
                values.append(record[name])
            except KeyError:
                raise ValueError(
                    f"Feature '{name}' not found in input (row {row}): every "
                    "record needs all features in ModelInference.feature_names"
                ) from None
        return values

    def _to_finite_array(self, rows: list[list[Any]]) -> np.ndarray:
        names = self._feature_names
        for row, values in enumerate(rows):
            for name, value in zip(names, values, strict=True):
                if not _is_number(value) or not math.isfinite(value):
                    raise ValueError(
                        f"Feature '{name}' in row {row} is {value!r}: "
                        "every value must be a finite number"
                    )
        return np.asarray(rows, dtype=float).reshape(len(rows), len(names))

    def score(self, X: np.ndarray) -> np.ndarray:
        """Return anomaly scores for an array from ``preprocess_features``."""
        if self._scaler is not None:
            X = self._scaler.transform(_named_if_fitted_with_names(self._scaler, X))
        return anomaly_scores(self._model, _named_if_fitted_with_names(self._model, X))

    def predict(self, features: Any) -> dict[str, Any]:
        """Score records and flag anomalies.

        Returns a dict of plain Python values: ``predictions`` (0 normal,
        1 anomaly), ``scores``, ``threshold``, ``anomaly_count`` and
        ``total_samples``.

        Raises:
            ValueError: bad input (see ``preprocess_features``).
            TimeoutError: scoring took longer than ``timeout_seconds``.
        """
        started = time.monotonic()
        X = self.preprocess_features(features)
        scores = np.empty(len(X))
        for start in range(0, len(X), self.batch_size):
            if time.monotonic() - started > self.timeout_seconds:
                raise TimeoutError(
                    f"predict exceeded timeout_seconds={self.timeout_seconds} after "
                    f"{start} of {len(X)} rows: send smaller batches"
                )
            stop = start + self.batch_size
            scores[start:stop] = self.score(X[start:stop])
        predictions = (scores > self._threshold).astype(int)
        return {
            "predictions": predictions.tolist(),
            "scores": scores.tolist(),
            "threshold": self._threshold,
            "anomaly_count": int(predictions.sum()),
            "total_samples": len(X),
        }


if __name__ == "__main__":
    # Example: score the inputs recorded for the package's self-test.
    inference = ModelInference()
    print(
        json.dumps(
            inference.predict(inference.manifest["self_test"]["inputs"]), indent=2
        )
    )
