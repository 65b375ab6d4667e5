"""Fast scoring: ModelInference scores with FlatForest, a flattened copy of
the IsolationForest, and its scores are scikit-learn's own, bit for bit."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import TEMPLATE_DIR, Rendered, copy_package, resign_package
from package_builder.build import load_package_module
from sample_artifacts import make_data
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler
from sklearn.svm import OneClassSVM

# inference_example.py is copied into packages unrendered: test it in place.
PACKAGE = load_package_module(TEMPLATE_DIR / "{{cookiecutter.package_name}}")
FlatForest = PACKAGE.FlatForest

FOREST_PARAMS = {
    "defaults": {},
    "max_samples_int": {"n_estimators": 20, "max_samples": 50},
    "max_samples_above_rows": {"n_estimators": 8, "max_samples": 5000},
    "max_samples_float": {"n_estimators": 20, "max_samples": 0.3},
    "max_samples_1": {"n_estimators": 5, "max_samples": 1},
    "max_samples_2": {"n_estimators": 5, "max_samples": 2},
    "max_features_float": {"n_estimators": 20, "max_features": 0.6},
    "max_features_int": {"n_estimators": 20, "max_features": 2},
    "bootstrap": {"n_estimators": 20, "bootstrap": True},
    "contamination": {"n_estimators": 20, "contamination": 0.05},
    "everything": {
        "n_estimators": 15,
        "max_samples": 0.8,
        "max_features": 0.5,
        "bootstrap": True,
        "contamination": 0.1,
    },
}
SETUPS = ["array", "dataframe", "scaler", "other_scaler", "pipeline", "frame_pipeline"]
COLUMNS = [f"c{index}" for index in range(5)]


def training_rows(seed: int = 0) -> np.ndarray:
    """The samples' traffic data with a coarse column, so that many rows
    tie with thresholds."""
    X, _ = make_data(1000, seed=seed)
    X[:, 2] = np.round(X[:, 2])
    return X


def fit(setup: str, params: dict[str, Any]) -> tuple[Any, Any]:
    """Fit (model, separate scaler or None) the way ``setup`` says."""
    X = training_rows()
    forest = IsolationForest(random_state=3, **params)
    frame = pd.DataFrame(X, columns=COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # max_samples above rows
        if setup == "array":
            return forest.fit(X), None
        if setup == "dataframe":
            return forest.fit(frame), None
        if setup in ("scaler", "other_scaler"):
            scaler = (StandardScaler() if setup == "scaler" else MinMaxScaler()).fit(X)
            return forest.fit(scaler.transform(X)), scaler
        pipeline = make_pipeline(StandardScaler(), forest)
        return pipeline.fit(frame if setup == "frame_pipeline" else X), None


def sklearn_scores(model: Any, scaler: Any, X: np.ndarray) -> np.ndarray:
    """What ModelInference computed before fast scoring: -score_samples."""
    if scaler is not None:
        X = scaler.transform(X)
    return PACKAGE.anomaly_scores(model, PACKAGE._named_if_fitted_with_names(model, X))


def sklearn_predictions(model: Any, scaler: Any, X: np.ndarray) -> np.ndarray:
    if scaler is not None:
        X = scaler.transform(X)
    return model.predict(PACKAGE._named_if_fitted_with_names(model, X)) == -1


def forest_of(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def rows_on_splits(model: Any, scaler: Any, n_rows: int, seed: int = 1) -> np.ndarray:
    """Input rows whose values reach the forest exactly at one of the split
    thresholds of their feature (as float32), or one float32 step beside it,
    mixed with ordinary rows."""
    forest = forest_of(model)
    width = forest.n_features_in_
    pools: list[list[np.ndarray]] = [[np.zeros(1)] for _ in range(width)]
    for tree, used in zip(forest.estimators_, forest.estimators_features_, strict=True):
        split = tree.tree_.children_left != -1
        feature = tree.tree_.feature[split]
        # A tree grown on a subset of the features numbers them in the subset.
        columns = feature if len(used) == width else np.asarray(used)[feature]
        for column in range(width):
            pools[column].append(tree.tree_.threshold[split][columns == column])
    rng = np.random.default_rng(seed)
    at = np.column_stack(
        [rng.choice(np.concatenate(pool), size=n_rows) for pool in pools]
    ).astype(np.float32)
    step = rng.integers(-1, 2, size=at.shape)
    toward = np.where(step > 0, np.inf, -np.inf).astype(np.float32)
    at = np.where(step == 0, at, np.nextafter(at, toward)).astype(np.float64)
    before = scaler
    if before is None and hasattr(model, "steps"):
        before = model.steps[0][1]
    if isinstance(before, StandardScaler):
        at = at * before.scale_ + before.mean_
    elif isinstance(before, MinMaxScaler):
        at = (at - before.min_) / before.scale_
    ordinary = make_data(n_rows, seed=seed)[0][:n_rows]
    return np.where(rng.random(at.shape) < 0.7, at, ordinary)


@pytest.fixture(params=["heap", "compact"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both numberings of the flattened nodes: a forest small enough for
    the heap (every forest here), and the same forest numbered compactly, as
    a forest too large for the heap would be."""
    if request.param == "compact":
        monkeypatch.setattr(PACKAGE, "_MAX_HEAP_SLOTS", 0)
    return request.param


def check_layout(flat: Any, layout: str) -> None:
    assert flat is not None
    assert (flat.children is None) == (layout == "heap")


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("params", FOREST_PARAMS.values(), ids=FOREST_PARAMS.keys())
def test_flat_forest_scores_are_scikit_learns(
    params: dict[str, Any], setup: str, layout: str
) -> None:
    """For every IsolationForest configuration, fitted on arrays or
    DataFrames, scaled or not, in a Pipeline or not, and either numbering:
    the same scores, bit for bit, and the same predictions, on rows at the
    split thresholds too."""
    model, scaler = fit(setup, params)
    flat = FlatForest.build(model, scaler)
    check_layout(flat, layout)
    X = np.vstack([rows_on_splits(model, scaler, 300), make_data(100, seed=5)[0]])
    scores = flat.anomaly_scores(X)
    assert np.array_equal(scores, sklearn_scores(model, scaler, X))
    threshold = -forest_of(model).offset_
    assert np.array_equal(scores > threshold, sklearn_predictions(model, scaler, X))


@pytest.mark.parametrize("n_rows", [1, 2, 3, 5, 217, 218, 219, 437, 1100])
def test_every_batch_size_sums_trees_in_order(
    n_rows: int, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-tree path lengths are added in scikit-learn's order whatever
    the number of rows, however they are cut into chunks and the trees into
    blocks (made small here, as a large forest's are)."""
    monkeypatch.setattr(PACKAGE, "_BLOCK_BYTES", 1 << 17)
    model, scaler = fit("scaler", {"n_estimators": 150, "max_samples": 400})
    flat = FlatForest.build(model, scaler)
    check_layout(flat, layout)
    assert flat.chunk_rows < 1100
    assert 1 < flat.block_trees < 150
    X = rows_on_splits(model, scaler, n_rows, seed=n_rows)
    assert np.array_equal(flat.anomaly_scores(X), sklearn_scores(model, scaler, X))


class Subclassed(IsolationForest):
    """An IsolationForest subclass may score differently."""


def without_internals(X: np.ndarray) -> IsolationForest:
    forest = IsolationForest(n_estimators=5, random_state=0).fit(X)
    del forest._decision_path_lengths
    return forest


@pytest.mark.parametrize(
    "make_model",
    [
        lambda X: OneClassSVM(gamma="scale").fit(X),
        lambda X: EllipticEnvelope(random_state=0).fit(X),
        lambda X: LocalOutlierFactor(novelty=True).fit(X),
        lambda X: Subclassed(n_estimators=5, random_state=0).fit(X),
        lambda X: make_pipeline(StandardScaler(), OneClassSVM(gamma="scale")).fit(X),
        without_internals,
    ],
    ids=["svm", "envelope", "lof", "subclass", "svm_pipeline", "no_internals"],
)
def test_anything_else_is_left_to_scikit_learn(make_model: Any) -> None:
    assert FlatForest.build(make_model(training_rows())) is None


def test_compact_numbering_holds_each_node_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A heap pads every tree to the forest's depth; numbered compactly, the
    flattened forest has one entry per node of the fitted trees, and scores
    the same."""
    model, scaler = fit("scaler", {"n_estimators": 30, "max_samples": 1000})
    forest = forest_of(model)
    nodes = sum(tree.tree_.node_count for tree in forest.estimators_)
    depth = max(tree.tree_.max_depth for tree in forest.estimators_)
    heap = FlatForest.build(model, scaler)
    monkeypatch.setattr(PACKAGE, "_MAX_HEAP_SLOTS", 0)
    compact = FlatForest.build(model, scaler)
    assert heap.children is None and len(heap.codes) == 30 << (depth + 1)
    assert compact.children is not None and len(compact.codes) == nodes
    X = rows_on_splits(model, scaler, 500)
    assert np.array_equal(compact.anomaly_scores(X), heap.anomaly_scores(X))


def test_unusable_input_is_left_to_scikit_learn() -> None:
    model, scaler = fit("scaler", {"n_estimators": 10})
    flat = FlatForest.build(model, scaler)
    X = training_rows()[:20]
    with_nan = X.copy()
    with_nan[3, 1] = np.nan
    assert flat.anomaly_scores(with_nan) is None
    assert flat.anomaly_scores(X[:, :4]) is None
    assert flat.anomaly_scores(X.astype(np.float32)) is None
    assert np.array_equal(flat.anomaly_scores(X), sklearn_scores(model, scaler, X))


def test_float32_rows_reaching_a_standard_scaler_are_scaled_in_float32() -> None:
    """A Pipeline step that hands float32 rows to a StandardScaler:
    scikit-learn scales them in float32, and so does the flattened forest,
    on rows that land at the split thresholds too."""
    model = make_pipeline(
        FunctionTransformer(np.float32),
        StandardScaler(),
        IsolationForest(n_estimators=50, random_state=0),
    ).fit(training_rows())
    flat = FlatForest.build(model)
    assert flat is not None
    X = rows_on_splits(model, model.steps[1][1], 3000)
    scores = flat.anomaly_scores(X)
    assert np.array_equal(scores, sklearn_scores(model, None, X))
    threshold = -forest_of(model).offset_
    assert np.array_equal(scores > threshold, sklearn_predictions(model, None, X))


def writes_in_place() -> Any:
    """A Pipeline whose first step scales the rows it is given in place
    (copy=False), then takes square roots: a row below the training minimum
    becomes NaN there, which only scikit-learn scores."""
    return make_pipeline(
        MinMaxScaler(copy=False),
        FunctionTransformer(np.sqrt),
        IsolationForest(n_estimators=20, random_state=0),
    ).fit(training_rows().copy())


def test_the_flat_forest_never_writes_to_the_rows_it_scores() -> None:
    """Rows it scores, and rows it leaves to scikit-learn (one of them
    becomes NaN), are as they were after anomaly_scores."""
    model = writes_in_place()
    flat = FlatForest.build(model)
    assert flat is not None
    inside = training_rows()[:200]
    below = inside.copy()
    below[0, 0] = inside[:, 0].min() - 1000.0
    for X, scored in ((inside, True), (below, False)):
        given = X.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # sqrt of a negative
            scores = flat.anomaly_scores(X)
        assert np.array_equal(X, given)
        assert (scores is not None) == scored
    assert np.array_equal(
        flat.anomaly_scores(inside), sklearn_scores(model, None, inside.copy())
    )


# ModelInference on rendered packages


def load(package_dir: Path) -> Any:
    return load_package_module(package_dir).ModelInference(package_dir, environ={})


def package_rows(inference: Any, n_rows: int, seed: int) -> np.ndarray:
    """Held-out rows in the package's features: near the scaler's means, or
    the samples' traffic data."""
    width = len(inference.feature_names)
    if width == 5:
        return make_data(n_rows, seed=seed)[0][:n_rows]
    scaler = inference.scaler
    rng = np.random.default_rng(seed)
    return rng.normal(scaler.mean_, scaler.scale_ * 2, (n_rows, width))


def expected_result(inference: Any, X: np.ndarray) -> tuple[list, list]:
    """Scores and predictions straight from scikit-learn."""
    scores = sklearn_scores(inference.model, inference.scaler, X)
    return scores.tolist(), (scores > inference.threshold).astype(int).tolist()


@pytest.fixture(scope="module")
def packages(demo: Rendered, rendered_samples: dict[str, Rendered]) -> dict:
    return {
        "demo": demo.package_dir,
        **{name: r.package_dir for name, r in rendered_samples.items()},
    }


@pytest.mark.parametrize("package", ["demo", "scaled", "no_scaler", "dataframe"])
def test_packages_predict_through_the_flat_forest(
    package: str, packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every rendered package scores with its FlatForest, not score_samples,
    and gets scikit-learn's scores and predictions from dicts, a DataFrame
    and an array alike."""
    inference = load(packages[package])
    assert inference._fast_scorer is not None
    X = package_rows(inference, 2500, seed=21)
    scores, predictions = expected_result(inference, X)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("scikit-learn's score_samples was called")

    for estimator in (inference.model, forest_of(inference.model)):
        monkeypatch.setattr(estimator, "score_samples", refuse, raising=False)
    names = inference.feature_names
    inputs = {
        "dicts": [dict(zip(names, row, strict=True)) for row in X.tolist()],
        "dataframe": pd.DataFrame(X, columns=names),
        "array": X,
    }
    for name, features in inputs.items():
        result = inference.predict(features)
        assert result["scores"] == scores, name
        assert result["predictions"] == predictions, name
        assert result["anomaly_count"] == sum(predictions), name
    assert 0 < sum(predictions) < len(X)
    one = inference.predict(inputs["dicts"][7:8])
    assert one["scores"] == scores[7:8] and one["predictions"] == predictions[7:8]


def test_demo_inputs_of_every_kind_give_the_same_scores(demo: Rendered) -> None:
    """Numpy scalars, ints, extra keys, a DataFrame with extra columns in
    another order, an int array: the same numbers give the same scores."""
    inference = load(demo.package_dir)
    names = inference.feature_names
    X = np.round(package_rows(inference, 40, seed=4), 1)
    X[:, 3] = np.round(X[:, 3])
    expected, _ = expected_result(inference, X)
    rows = X.tolist()
    as_ints = [
        {
            name: int(v) if i == 3 else v
            for i, (name, v) in enumerate(zip(names, r, strict=True))
        }
        for r in rows
    ]
    variants = {
        "floats": [dict(zip(names, r, strict=True)) for r in rows],
        "numpy64": [dict(zip(names, map(np.float64, r), strict=True)) for r in rows],
        "numpy32_exact": [
            {
                n: np.float32(v) if np.float32(v) == v else v
                for n, v in zip(names, r, strict=True)
            }
            for r in rows
        ],
        "ints": as_ints,
        "numpy_ints": [
            {n: np.int64(v) if type(v) is int else v for n, v in r.items()}
            for r in as_ints
        ],
        "extra_keys": [
            {"host": "a", **dict(zip(names, r, strict=True)), "zone": 3} for r in rows
        ],
        "dataframe": pd.DataFrame(X[:, ::-1], columns=names[::-1]).assign(host="a"),
        "array": X,
        "object_array": X.astype(object),
    }
    for name, features in variants.items():
        assert inference.predict(features)["scores"] == expected, name
    whole = np.round(X).astype(np.int64)
    assert (
        inference.predict(whole)["scores"]
        == inference.predict(whole.astype(float))["scores"]
    )


@pytest.mark.parametrize(
    "value", [True, None, "1.5", float("nan"), float("inf"), -float("inf"), np.bool_(1)]
)
def test_bad_values_keep_their_messages(demo: Rendered, value: Any) -> None:
    inference = load(demo.package_dir)
    names = inference.feature_names
    records = [dict.fromkeys(names, 1.0) for _ in range(3)]
    records[1][names[4]] = value
    with pytest.raises(ValueError, match=rf"Feature '{names[4]}' in row 1 is "):
        inference.predict(records)
    frame = pd.DataFrame(records)
    with pytest.raises(ValueError, match=rf"Feature '{names[4]}' in row 1 is "):
        inference.predict(frame)


def test_missing_feature_keeps_its_message(demo: Rendered) -> None:
    inference = load(demo.package_dir)
    records = [dict.fromkeys(inference.feature_names, 0.5) for _ in range(3)]
    del records[2]["deauth_ratio"]
    with pytest.raises(
        ValueError, match=r"Feature 'deauth_ratio' not found in input \(row 2\)"
    ):
        inference.predict(records)


def test_unsupported_model_in_a_package_uses_scikit_learn(
    demo: Rendered, tmp_path: Path
) -> None:
    """A package whose model FlatForest does not know still scores with
    scikit-learn, as before."""
    package_dir = copy_package(demo.package_dir, tmp_path)
    inference = load(package_dir)
    X = package_rows(inference, 300, seed=8)
    joblib.dump(
        OneClassSVM(gamma="scale", nu=0.05).fit(inference.scaler.transform(X)),
        package_dir / "model.joblib",
    )
    resign_package(package_dir)
    inference = load(package_dir)
    assert inference._fast_scorer is None
    assert inference.predict(X)["scores"] == expected_result(inference, X)[0]


@pytest.mark.parametrize("fast_scoring", [True, False])
def test_a_transformer_that_writes_in_place_scores_each_row_once(
    rendered_samples: dict[str, Rendered], tmp_path: Path, fast_scoring: bool
) -> None:
    """A Pipeline step with copy=False scales rows in place, and a row that it
    turns into NaN leaves the batch to scikit-learn: every row still gets
    scikit-learn's score (scaled once, not twice), the same as on its own,
    and the caller's array is as it was; a drift report counts the rows as
    given, not as scaled."""
    package_dir = copy_package(rendered_samples["no_scaler"].package_dir, tmp_path)
    model = writes_in_place()
    joblib.dump(model, package_dir / "model.joblib")
    resign_package(package_dir)
    module = load_package_module(package_dir)
    inference = module.ModelInference(
        package_dir, environ={}, fast_scoring=fast_scoring
    )
    X = make_data(100, seed=8)[0]
    X[0, 0] = X[:, 0].min() - 1000.0  # below the training minimum
    given = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sqrt of a negative
        expected = sklearn_scores(model, None, X.copy())
        result = inference.predict(X)
        alone = inference.predict(X[5:6])
        report = inference.drift_report(X)
        assert np.isnan(model[:-1].transform(X[:1].copy())).any()
    assert np.array_equal(X, given)
    means = [report["features"][name]["mean"] for name in inference.feature_names]
    assert np.allclose(means, X.mean(axis=0), rtol=1e-12)
    assert result["scores"] == expected.tolist()
    assert (
        result["predictions"] == (expected > inference.threshold).astype(int).tolist()
    )
    assert alone["scores"] == expected[5:6].tolist()


def test_non_finite_values_reaching_score_are_for_scikit_learn(
    demo: Rendered,
) -> None:
    """score() on an array with NaN or inf does what scikit-learn does:
    NaN gets scikit-learn's score, inf its StandardScaler's error."""
    inference = load(demo.package_dir)
    X = package_rows(inference, 10, seed=9)
    X[2, 5] = np.nan
    assert inference._fast_scorer.anomaly_scores(X) is None
    assert np.array_equal(
        inference.score(X), sklearn_scores(inference.model, inference.scaler, X)
    )
    X[2, 5] = np.inf
    assert inference._fast_scorer.anomaly_scores(X) is None
    with pytest.raises(ValueError, match="infinity"):
        inference.score(X)


@pytest.mark.parametrize("package", ["demo", "scaled", "dataframe"])
def test_values_too_large_to_scale_score_as_in_scikit_learn(
    package: str, packages: dict[str, Path]
) -> None:
    """A finite value whose scaled size overflows (1e308, the largest float,
    either sign) becomes +-inf in scikit-learn's scaler, and the package
    scores it exactly as scikit-learn does, without a warning of its own."""
    inference = load(packages[package])
    assert inference._fast_scorer is not None
    names = inference.feature_names
    base = package_rows(inference, 1, seed=5)[0]
    X = np.repeat(base[None, :], 4 * len(names), axis=0)
    huge = [1e308, -1e308, np.finfo(np.float64).max, -np.finfo(np.float64).max]
    for index, value in enumerate(huge):
        X[index * len(names) + np.arange(len(names)), np.arange(len(names))] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflow
        scores, predictions = expected_result(inference, X)
    records = [dict(zip(names, row, strict=True)) for row in X.tolist()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = inference.predict(records)
    assert result["scores"] == scores
    assert result["predictions"] == predictions
    assert all(np.isfinite(scores))


def test_fast_scoring_off_scores_with_scikit_learn_alone(demo: Rendered) -> None:
    """fast_scoring=False builds no flattened forest, calls scikit-learn, and
    gives the same results; the property says which scores, and a pickled
    instance keeps the choice."""
    ModelInference = load_package_module(demo.package_dir).ModelInference
    fast = ModelInference(demo.package_dir, environ={})
    plain = ModelInference(demo.package_dir, environ={}, fast_scoring=False)
    assert fast.fast_scoring is True
    assert plain.fast_scoring is False and plain._fast_scorer is None
    X = package_rows(plain, 500, seed=4)
    assert plain.predict(X) == fast.predict(X)
    assert pickle.loads(pickle.dumps(plain)).fast_scoring is False
    assert pickle.loads(pickle.dumps(fast)).fast_scoring is True


def off_by_one_ulp(flat_forest: type) -> type:
    """``flat_forest`` (a module's FlatForest) with a fault in its
    flattening: every leaf's path length one ulp too long."""

    class OffByOneUlp(flat_forest):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.leaves = np.nextafter(self.leaves, np.inf)

    return OffByOneUlp


def test_flattening_that_differs_from_scikit_learn_is_not_used(
    demo: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flattened forest whose scores of the probe rows are a few ulps off
    scikit-learn's is caught when it is built: build returns None, and
    ModelInference says fast_scoring is False and gives scikit-learn's
    scores, bit for bit."""
    model, scaler = fit("scaler", {"n_estimators": 20})
    faulty = off_by_one_ulp(FlatForest)
    unchecked = faulty(forest_of(model), [PACKAGE._transform_step(scaler)])
    probe_scores = unchecked._forest_scores(unchecked.probe)
    expected = -forest_of(model).score_samples(unchecked.probe)
    assert not np.array_equal(probe_scores, expected)  # the fault shows
    assert np.allclose(probe_scores, expected, rtol=1e-14, atol=0)  # barely
    assert FlatForest.build(model, scaler) is not None
    assert faulty.build(model, scaler) is None

    module = load_package_module(demo.package_dir)
    monkeypatch.setattr(module, "FlatForest", off_by_one_ulp(module.FlatForest))
    inference = module.ModelInference(demo.package_dir, environ={})
    assert inference.fast_scoring is False
    X = package_rows(inference, 500, seed=6)
    scores, predictions = expected_result(inference, X)
    result = inference.predict(X)
    assert result["scores"] == scores
    assert result["predictions"] == predictions
