"""The ``monitoring`` section of metadata.json: reference statistics.

Needs NumPy (and scikit-learn, to load the package): only the
post-generation hook imports this module.

With reference data (the builder's ``reference_data_path``, or the demo's
own training rows) the section holds, per feature and for the anomaly score,
count, min, max, mean, standard deviation, seven quantiles and a histogram
whose bins a run-time drift report can compare live data against (PSI); and
the share of reference rows flagged at the package's threshold. The scores
come from the package's own ``ModelInference``. Without reference data it
holds what the scaler knows and says that it is partial.

Conventions (recorded in the section under ``conventions``):

- ``std`` is the population standard deviation (``ddof=0``): NumPy's
  default, and what a ``StandardScaler`` records, so a section made from the
  scaler means the same thing.
- quantiles use NumPy's default method (``linear``).
- histograms cut at the reference deciles, taken as reference values
  (``inverted_cdf``), with repeated cuts and cuts at the maximum dropped:
  every bin holds about a tenth of the reference rows (fewer bins for a
  feature with few distinct values; one for a feature of one value, which a
  drift report then gives no PSI) and no bin is empty, so PSI never
  divides by a zero reference share. Equal-width bins would put nearly all
  of a skewed feature (packet loss, ratios) into one bin and hide its drift.
  ``edges`` are the inner cuts; the outer bins are open, so every live value
  has a bin: value ``v`` falls in bin ``numpy.searchsorted(edges, v,
  side="left")``, i.e. bin ``i`` holds ``edges[i-1] < v <= edges[i]``.

Every number is a plain JSON int or float computed in file order, so the
same data give the same JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .answers import Answers
from .documents import SCALER_FILE
from .reference_data import ReferenceData, read_reference_data

FORMAT_VERSION = 1
STD_DDOF = 0
QUANTILES = {
    "p1": 0.01,
    "p5": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
HISTOGRAM_BINS = 10
CONVENTIONS = {
    "std_ddof": STD_DDOF,
    "quantile_method": "linear",
    "histogram_bins": HISTOGRAM_BINS,
    "histogram_edges": (
        "inner cuts at the reference deciles (inverted_cdf: each cut is a "
        "reference value), repeated cuts and cuts at the maximum dropped; the "
        "outer bins are open and no reference bin is empty"
    ),
    "histogram_bin_of_value": "numpy.searchsorted(edges, value, side='left')",
}
# Self-test rows picked from the reference data.
EXAMPLE_ANOMALIES = 2
EXAMPLE_TYPICAL = 3
# Scaler attributes that hold one value per input feature.
# Made-up self-test rows: the centre, one scale either side, 3 and 8 out.
SELF_TEST_STEPS = [0.0, 1.0, -1.0, 3.0, 8.0]
SCALER_ATTRIBUTES = ("mean_", "scale_", "var_", "data_min_", "data_max_", "center_")
EMPTY_STATISTICS = {
    "count": None,
    "min": None,
    "max": None,
    "mean": None,
    "std": None,
    "quantiles": None,
    "histogram": None,
}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def histogram(values: np.ndarray) -> dict[str, list]:
    """Bin ``values`` at their own deciles (see the module's conventions)."""
    ordered = np.sort(values, kind="stable")
    n = len(ordered)
    # inverted_cdf: the smallest value whose empirical CDF reaches j/10,
    # i.e. ordered[ceil(n * j / 10) - 1], in exact integer arithmetic.
    cuts = [
        ordered[(n * j + HISTOGRAM_BINS - 1) // HISTOGRAM_BINS - 1]
        for j in range(1, HISTOGRAM_BINS)
    ]
    edges = np.unique(np.asarray(cuts, dtype=float))
    edges = edges[edges < ordered[-1]]
    bins = np.searchsorted(edges, values, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    return {
        "edges": [float(edge) for edge in edges],
        "counts": [int(count) for count in counts],
    }


def statistics(values: np.ndarray) -> dict[str, Any]:
    """Count, range, mean, std, quantiles and histogram of finite ``values``."""
    values = np.asarray(values, dtype=float)
    quantiles = np.quantile(values, list(QUANTILES.values()))
    return {
        "count": len(values),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": _number(values.mean()),
        "std": _number(values.std(ddof=STD_DDOF)),
        "quantiles": {
            key: float(value) for key, value in zip(QUANTILES, quantiles, strict=True)
        },
        "histogram": histogram(values),
    }


def pick_examples(scores: np.ndarray, threshold: float) -> list[int]:
    """Row indices for the self-test: the highest-scoring rows flagged as
    anomalies (up to 2), the lowest-scoring row, and the 3 rows scoring
    nearest the median; anomalies are included when the data have any.
    Rows within a hair of the threshold are never picked (their prediction
    could flip with the last bit of a score), ties go to the earlier row, and
    an empty list means no row is a clear call."""
    margin = 1e-6 * max(1.0, abs(threshold))
    clear = np.abs(scores - threshold) > margin
    flagged = clear & (scores > threshold)
    highest_first = np.argsort(-scores, kind="stable")
    lowest_first = np.argsort(scores, kind="stable")
    nearest_first = np.argsort(np.abs(scores - np.median(scores)), kind="stable")
    picks = [
        *highest_first[flagged[highest_first]][:EXAMPLE_ANOMALIES],
        *lowest_first[clear[lowest_first]][:1],
    ]
    chosen = list(dict.fromkeys(int(i) for i in picks))
    typical = nearest_first[clear[nearest_first]][: EXAMPLE_TYPICAL + len(chosen)]
    typical = [int(i) for i in typical if int(i) not in chosen]
    return chosen + typical[:EXAMPLE_TYPICAL]


def made_up_examples(section: dict[str, Any], names: list[str]) -> list[list[float]]:
    """Self-test rows when there are no reference rows to pick them from.

    ``section`` is the monitoring section without reference data. Each
    feature is centred on its recorded mean (else the middle of its recorded
    range, else the scaler's ``center_``, else 0) and stepped by its standard
    deviation (else a quarter of its range, else the scaler's ``scale_``,
    else 1), out to 8 steps, so that at least one row is far from the
    training data.
    """
    attributes = (section.get("scaler") or {}).get("attributes") or {}
    centres, scales = [], []
    for name in names:
        known = section["features"].get(name) or {}
        low, high = known.get("min"), known.get("max")
        middle = quarter = None
        if low is not None and high is not None:
            middle, quarter = (low + high) / 2, (high - low) / 4
        # A MinMaxScaler's scale_ is 1 / its range: only used without a range.
        centre = [known.get("mean"), middle, attributes.get("center_", {}).get(name)]
        scale = [known.get("std"), quarter, attributes.get("scale_", {}).get(name)]
        centres.append(next((v for v in centre if v is not None), 0.0))
        scales.append(next((v for v in scale if v), 1.0))
    return [
        [c + step * s for c, s in zip(centres, scales, strict=True)]
        for step in SELF_TEST_STEPS
    ]


def load_reference(
    answers: Answers, feature_names: list[str], demo: dict[str, Any] | None
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The reference rows (columns in feature order) and where they came from.

    Raises:
        AnswerError: the reference file is unusable (see reference_data).
    """
    if demo is not None:
        rows = np.asarray(demo["reference_rows"], dtype=float)
        return rows, {
            "origin": "demo training data",
            "file": None,
            "format": None,
            "sha256": None,
            "rows": len(rows),
        }
    if answers.reference_file is None:
        return None
    data: ReferenceData = read_reference_data(answers.reference_file, feature_names)
    rows = np.column_stack(
        [np.frombuffer(data.columns[name], dtype=float) for name in feature_names]
    )
    return rows, {
        "origin": "reference_data_path",
        "file": data.file_name,
        "format": data.file_format,
        "sha256": data.sha256,
        "rows": data.rows,
    }


def _section(source: str, partial: bool, note: str, threshold: float) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "source": source,
        "partial": partial,
        "note": note,
        "reference": None,
        "conventions": CONVENTIONS,
        "threshold": threshold,
        "features": {},
        "score": None,
        "anomaly_count": None,
        "anomaly_ratio": None,
        "scaler": None,
    }


def _scaler_section(
    scaler: Any, where: str, names: list[str], threshold: float
) -> dict[str, Any] | None:
    """What a fitted scaler records about each input feature, or None."""
    width = len(names)
    attributes = {}
    for attribute in SCALER_ATTRIBUTES:
        value = getattr(scaler, attribute, None)
        if value is not None and np.ndim(value) == 1 and len(value) == width:
            attributes[attribute] = [_number(v) for v in value]
    if not attributes:
        return None
    seen = getattr(scaler, "n_samples_seen_", None)
    counts = (
        [int(v) for v in seen]
        if np.ndim(seen) == 1 and len(seen) == width
        else [int(seen) if seen is not None else None] * width
    )
    features = {}
    for column, name in enumerate(names):
        known = {key: values[column] for key, values in attributes.items()}
        variance = known.get("var_")
        features[name] = EMPTY_STATISTICS | {
            "count": counts[column],
            "min": known.get("data_min_"),
            "max": known.get("data_max_"),
            "mean": known.get("mean_"),
            "std": None if variance is None else _number(math.sqrt(variance)),
        }
    kind = type(scaler).__name__
    section = _section(
        "scaler",
        True,
        f"Partial: no reference data was given, so only what the {kind} in "
        f"{where} records about the training data is known (mean and standard "
        "deviation for a StandardScaler, min and max for a MinMaxScaler); no "
        "quantiles, histograms or score statistics. Build with "
        "reference_data_path for those.",
        threshold,
    )
    section["features"] = features
    section["scaler"] = {
        "type": kind,
        "file": where,
        "n_samples_seen": counts[0] if len(set(counts)) == 1 else counts,
        "attributes": {
            key: dict(zip(names, values, strict=True))
            for key, values in attributes.items()
        },
    }
    return section


def _partial_section(inference: Any, names: list[str]) -> dict[str, Any]:
    """The section without reference data: from the scaler, else empty."""
    threshold = float(inference.threshold)
    steps = getattr(inference.model, "steps", None)
    if inference.scaler is not None:
        found = _scaler_section(inference.scaler, SCALER_FILE, names, threshold)
        if found is not None:
            return found
    elif steps:
        name, first = steps[0]
        if getattr(first, "n_features_in_", None) == len(names):
            found = _scaler_section(
                first, f"model.joblib (Pipeline step '{name}')", names, threshold
            )
            if found is not None:
                return found
    section = _section(
        "none",
        True,
        "Partial: no reference data was given and the package has no scaler "
        "that records feature statistics, so nothing is known about the "
        "distribution of the features or the scores. Build with "
        "reference_data_path for those.",
        threshold,
    )
    section["features"] = {name: dict(EMPTY_STATISTICS) for name in names}
    return section


def reference_monitoring(
    inference: Any,
    reference: tuple[np.ndarray, dict[str, Any]] | None,
    demo: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[list[float]] | None]:
    """Return metadata.json's ``monitoring`` section and, with reference
    data, self-test rows picked from it (else None).

    ``inference`` is the package's own ModelInference, which scores the
    reference rows; ``reference`` is what ``load_reference`` returned.
    """
    names = inference.feature_names
    if reference is None:
        return _partial_section(inference, names), None
    rows, described = reference
    scores = np.asarray(inference.score(rows), dtype=float)
    threshold = float(inference.threshold)
    flagged = int(np.count_nonzero(scores > threshold))
    origin = (
        "the demo's own training data"
        if demo is not None
        else f"the reference data {described['file']}"
    )
    section = _section(
        "reference_data",
        False,
        f"Statistics of {described['rows']} rows of {origin}; scores from the "
        "package's own ModelInference.",
        threshold,
    )
    section["reference"] = described
    section["features"] = {
        name: statistics(rows[:, column]) for column, name in enumerate(names)
    }
    section["score"] = statistics(scores)
    section["anomaly_count"] = flagged
    section["anomaly_ratio"] = flagged / len(rows)
    examples = [
        [float(value) for value in rows[i]] for i in pick_examples(scores, threshold)
    ]
    return section, examples
