"""Bad answers and bad artifacts: one ERROR line, a non-zero exit, nothing left."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import (
    GIVEN_MONITORING_SECTIONS,
    SKLEARN,
    TEMPLATE_DIR,
    VERSION,
    Rendered,
    answers_for,
    builders_model,
    cookiecutter_command,
    render_with_metadata,
    repickle_version,
    run_cookiecutter,
    same_length_other_version,
    template_copy,
    tree,
    unreadable_file,
)
from package_builder.artifacts import _written_by_joblib
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

# (answers, the start of the ERROR line), checked before any file is written.
BAD_ANSWERS = {
    "version-with-dashes": (["version=2024-12-01"], "ERROR: version ('2024-12-01')"),
    "version-month-13": (
        ["version=20241301_000000"],
        "ERROR: version ('20241301_000000')",
    ),
    "version-before-1980": (
        ["version=19700101_000000"],
        "ERROR: version ('19700101_000000')",
    ),
    "version-with-slashes": (
        ["version=2024/12/01"],
        "ERROR: version ('2024/12/01'): use the UTC build time as YYYYMMDD_HHMMSS",
    ),
    "version-with-a-space": (
        ["version=2024-01-01 00:00:00"],
        "ERROR: version ('2024-01-01 00:00:00'): use the UTC build time",
    ),
    "package-name-not-ascii": (
        ["package_name=pkg-é"],
        "ERROR: package_name ('pkg-é'): must be one folder name made of ASCII letters",
    ),
    "package-name-too-long": (
        ["package_name=" + "m" * 300],
        "ERROR: package_name ('mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm'...): 300 "
        "characters; use at most 200",
    ),
    "package-name-escapes": (
        ["package_name=../escaped"],
        "ERROR: package_name ('../escaped')",
    ),
    "package-name-trailing-newline": (
        ["package_name=pkg\n"],
        "ERROR: package_name ('pkg\\n'): must be one folder name",
    ),
    "model-missing": (
        ["model_path=missing.joblib"],
        "ERROR: model_path ('missing.joblib')",
    ),
    "model-is-a-folder": (["model_path=."], "ERROR: model_path ('.')"),
    "model-empty": (
        ["model_path=empty.joblib"],
        "ERROR: model_path ('empty.joblib'): is empty (0 bytes); give a file "
        "written by joblib.dump",
    ),
    "scaler-empty": (
        ["model_path=scaler.joblib", "scaler_path=empty.joblib"],
        "ERROR: scaler_path ('empty.joblib'): is empty (0 bytes)",
    ),
    "model-path-in-quotes": (
        ['model_path="model.joblib"'],
        "); give the path without the quotes around it",
    ),
    "model-path-with-escaped-spaces": (
        ["model_path=my\\ models/model.joblib"],
        "); give the path without the backslashes before its spaces",
    ),
    "scaler-without-model": (
        ["scaler_path=scaler.joblib"],
        "ERROR: scaler_path ('scaler.joblib')",
    ),
    "batch-size-zero": (["batch_size=0"], "ERROR: batch_size ('0')"),
    "batch-size-text": (["batch_size=many"], "ERROR: batch_size ('many')"),
    "batch-size-underscores": (
        ["batch_size=1_000"],
        "ERROR: batch_size ('1_000'): not a number (use the digits 0-9, without '_')",
    ),
    "percentile-100": (["score_percentile=100"], "ERROR: score_percentile ('100')"),
    "percentile-0": (["score_percentile=0"], "ERROR: score_percentile ('0')"),
    "timeout-zero": (["timeout_seconds=0"], "ERROR: timeout_seconds ('0')"),
    "threshold-text": (["threshold=high"], "ERROR: threshold ('high')"),
    "threshold-nan": (["threshold=nan"], "ERROR: threshold ('nan')"),
    "threshold-inf": (["threshold=inf"], "ERROR: threshold ('inf')"),
    "threshold-underscores": (
        ["threshold=0_5"],
        "ERROR: threshold ('0_5'): not a number (use the digits 0-9, without '_')",
    ),
    "feature-name-empty": (["feature_names=a,,b"], "ERROR: feature_names ('a,,b')"),
    "feature-name-twice": (["feature_names=a,b,a"], "ERROR: feature_names ('a,b,a')"),
    "create-zip-maybe": (["create_zip=maybe"], "ERROR: create_zip ('maybe')"),
}


def assert_refused(rendered: Rendered, message: str) -> None:
    """The run failed with ``message`` and left nothing in the output folder."""
    assert rendered.returncode != 0
    assert message in rendered.stderr + rendered.stdout
    assert list(rendered.output_dir.iterdir()) == []


def assert_refused_in_one_line(rendered: Rendered, line: str, hook: str) -> None:
    """The ``hook`` (pre_gen_project, post_gen_project) refused the run with
    ``line`` as the one line of its output and no traceback (cookiecutter's
    own report goes to stdout), and nothing was left."""
    assert_refused(rendered, line)
    assert f"because {hook} hook script didn't exit" in rendered.stdout
    assert rendered.stderr.splitlines() == [line]


@pytest.mark.parametrize(
    ("answers", "message"), list(BAD_ANSWERS.values()), ids=list(BAD_ANSWERS)
)
def test_bad_answer_is_refused_before_anything_is_written(
    answers: list[str], message: str, tmp_path: Path
) -> None:
    """Each bad answer ends the run with its ERROR line and leaves no file."""
    output = tmp_path / "out"
    output.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "scaler.joblib").write_bytes(b"not used")
    (workdir / "empty.joblib").write_bytes(b"")
    rendered = run_cookiecutter(output, *answers, cwd=workdir)
    assert_refused(rendered, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "work"]


@pytest.fixture(scope="module")
def bad_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifacts that load but do not make a working detector."""
    directory = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    scaler = StandardScaler().fit(X)
    joblib.dump(scaler, directory / "scaler_as_model.joblib")
    joblib.dump(scaler, directory / "scaler4.joblib")
    joblib.dump(
        make_pipeline(scaler, IsolationForest(n_estimators=10, random_state=0)).fit(X),
        directory / "pipeline4.joblib",
    )
    joblib.dump(
        IsolationForest(n_estimators=10, random_state=0).fit(X),
        directory / "model4.joblib",
    )
    joblib.dump(
        StandardScaler().fit(rng.normal(size=(50, 3))), directory / "scaler3.joblib"
    )
    named = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    joblib.dump(StandardScaler().fit(named), directory / "scaler_abcd.joblib")
    renamed = pd.DataFrame(X, columns=["w", "x", "y", "z"])
    forest = IsolationForest(n_estimators=10, random_state=0).fit(renamed)
    joblib.dump(forest, directory / "model_wxyz.joblib")
    clashing = pd.DataFrame(X, columns=["a", "b", "c", "score"])
    joblib.dump(
        IsolationForest(n_estimators=10, random_state=0).fit(clashing),
        directory / "model_score.joblib",
    )
    # A name with half of a surrogate pair: what a file name read with
    # errors="surrogateescape" gives.
    names = pd.Index(["a", "b", "c", "caf\udce9"], dtype=object)
    unpaired = pd.DataFrame(X, columns=names)
    joblib.dump(
        IsolationForest(n_estimators=10, random_state=0).fit(unpaired),
        directory / "model_surrogate.joblib",
    )
    for name, offset in {"nan": np.nan, "inf": np.inf, "minus5": -5.0}.items():
        # A boundary no fit gives: a threshold (-offset_) of nan, -inf or 5.
        broken = IsolationForest(n_estimators=10, random_state=0).fit(X)
        broken.offset_ = offset
        joblib.dump(broken, directory / f"offset_{name}.joblib")
    for name, step in {"none": None, "passthrough": "passthrough"}.items():
        first = Pipeline([("skip", step), ("forest", IsolationForest(n_estimators=10))])
        joblib.dump(first.fit(X), directory / f"pipeline_{name}_first.joblib")
    joblib.dump(
        Pipeline([("scale", StandardScaler()), ("end", "passthrough")]).fit(X),
        directory / "pipeline_passthrough_last.joblib",
    )
    (directory / "text.joblib").write_text("this is not a pickle\n")
    joblib.dump(IsolationForest(), directory / "unfitted.joblib")
    joblib.dump(LocalOutlierFactor().fit(X), directory / "lof.joblib")
    joblib.dump(GaussianMixture(2, random_state=0).fit(X), directory / "gm.joblib")
    joblib.dump(KernelDensity().fit(X), directory / "kde.joblib")
    nested = make_pipeline(StandardScaler(), IsolationForest(n_estimators=10))
    joblib.dump(
        Pipeline([("pre", StandardScaler()), ("model", nested)]).fit(X),
        directory / "nested_pipeline.joblib",
    )
    # A function of the script that saved the model: its __main__.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import joblib, numpy\n"
            "from sklearn.ensemble import IsolationForest\n"
            "from sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import FunctionTransformer\n"
            "def double(X):\n"
            "    return X * 2\n"
            "X = numpy.random.default_rng(0).normal(size=(100, 4))\n"
            "model = make_pipeline(FunctionTransformer(double), IsolationForest())\n"
            "joblib.dump(model.fit(X), 'main_function.joblib')\n"
            # Named as a function of the build's own hook script is.
            "def build(X):\n"
            "    return X * 2\n"
            "model = make_pipeline(FunctionTransformer(build), IsolationForest())\n"
            "joblib.dump(model.fit(X), 'main_build.joblib')\n",
        ],
        cwd=directory,
        check=True,
    )
    # Half of a surrogate pair, as a JSON escape: no Unicode text.
    (directory / "surrogate.json").write_text(
        '{"model_info": {"training_id": "\\ud800"}, '
        '"training_info": {"feature_names": ["a", "b", "c", "d"]}, '
        '"evaluation_info": {}}'
    )
    (directory / "not_json.json").write_text("{model_info: ")
    # Text, whose first letter a pickle reads as an opcode that imports.
    (directory / "features.csv").write_text("cpu,mem,disk,net\n1,2,3,4\n")
    (directory / "train.py").write_text("import numpy\n")
    (directory / "count.csv").write_text("count\n1\n2\n")
    (directory / "list.json").write_text("[]")
    metadata = {
        "model_info": {},
        "training_info": {"feature_names": ["w", "x", "y", "z"]},
        "evaluation_info": {},
    }
    (directory / "other_names.json").write_text(json.dumps(metadata))
    for name, names in {"abc_names.json": ["a", "b", "c"], "no_names.json": []}.items():
        told = {**metadata, "training_info": {"feature_names": names}}
        (directory / name).write_text(json.dumps(told))
    lies = {
        "nan_accuracy.json": ("evaluation_info", {"basic_metrics": {"accuracy": 0}}),
        "text_samples.json": ("training_info", {"training_samples": "lots"}),
        "share_above_one.json": ("evaluation_info", {"basic_metrics": {"recall": 7}}),
        "other_type.json": ("model_info", {"model_type": "OneClassSVM"}),
        "containing_type.json": ("model_info", {"model_type": "NotAnIsolationForest"}),
        "overflowing_duration.json": ("training_info", {"training_duration": 1.5}),
        "repeated_key.json": ("model_info", {"training_id": "run-1"}),
        "other_parameters_text.json": (
            "training_info",
            {"model_parameters": {"n_estimators": "5"}},
        ),
        "other_parameters.json": (
            "training_info",
            {"model_parameters": {"n_estimators": 5}},
        ),
        "vague_time.json": ("model_info", {"created_at": "yesterday"}),
        "five_features.json": ("training_info", {"feature_count": 5}),
    }
    for name, (section, values) in lies.items():
        told = {
            "model_info": {},
            "training_info": {"feature_names": ["a", "b", "c", "d"]},
            "evaluation_info": {},
        }
        told[section].update(values)
        text = json.dumps(told)
        if name == "nan_accuracy.json":
            text = text.replace('"accuracy": 0', '"accuracy": NaN')
        elif name == "overflowing_duration.json":
            text = text.replace(
                '"training_duration": 1.5', '"training_duration": 1e999'
            )
        elif name == "repeated_key.json":
            text = text.replace('"run-1"', '"run-1", "training_id": "run-2"')
        (directory / name).write_text(text)
    del metadata["evaluation_info"]
    (directory / "no_evaluation.json").write_text(json.dumps(metadata))
    return directory


BAD_ARTIFACTS = {
    "not-a-detector": (
        ["model_path=scaler_as_model.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/scaler_as_model.joblib')",
        "not a fitted outlier detector",
    ),
    "unfitted-forest": (
        ["model_path=unfitted.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/unfitted.joblib')",
        "holds an IsolationForest that is not fitted; fit it, then save it",
    ),
    "fitted-gaussian-mixture": (
        ["model_path=gm.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/gm.joblib'): holds a fitted GaussianMixture, "
        "which scores samples but has no offset_",
        "so it is not an outlier detector; give an IsolationForest (or another "
        "detector with offset_",
    ),
    "fitted-kernel-density": (
        ["model_path=kde.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/kde.joblib'): holds a fitted KernelDensity, "
        "which scores samples but has no offset_",
        "so it is not an outlier detector",
    ),
    "lof-without-novelty": (
        ["model_path=lof.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path (",
        "holds a LocalOutlierFactor fitted with novelty=False, which cannot score "
        "new records; fit it with novelty=True",
    ),
    "not-a-pickle": (
        ["model_path=text.joblib"],
        "ERROR: model_path ('{folder}/text.joblib')",
        "cannot be loaded",
    ),
    "scaler-width-differs": (
        [
            "model_path=model4.joblib",
            "scaler_path=scaler3.joblib",
            "feature_names=a,b,c",
        ],
        "ERROR: scaler_path ('{folder}/scaler3.joblib')",
        "produces 3 features, the model takes 4",
    ),
    "pipeline-scales-already": (
        [
            "model_path=pipeline4.joblib",
            "scaler_path=scaler4.joblib",
            "feature_names=a,b,c,d",
        ],
        "ERROR: scaler_path ('{folder}/scaler4.joblib')",
        "holds the same fitted StandardScaler that the model's "
        "Pipeline(StandardScaler, IsolationForest) starts with, so every record "
        "would be scaled twice; leave scaler_path empty",
    ),
    "scaler-and-model-names-differ": (
        ["model_path=model_wxyz.joblib", "scaler_path=scaler_abcd.joblib"],
        "ERROR: scaler_path ('{folder}/scaler_abcd.joblib')",
        "outputs features ['a', 'b', 'c', 'd'], the model was fitted on",
    ),
    "feature-named-score": (
        ["model_path=model_score.joblib"],
        "ERROR: model_path ('a,b,c,score')",
        "a feature is named 'score', like a column the package's batch scorers add",
    ),
    "feature-name-not-unicode": (
        ["model_path=model_surrogate.joblib"],
        "ERROR: model_path ('a,b,c,caf\\udce9'): the feature name 'caf\\udce9' is "
        "not valid Unicode text (it holds half of a surrogate pair), which no "
        "UTF-8 file can hold; rename the feature",
        "",
    ),
    "names-count-differs": (
        ["model_path=model4.joblib", "feature_names=a,b,c"],
        "ERROR: feature_names ('a,b,c')",
        "names 3 features, the model takes 4; give its 4 names, in the order it "
        "was trained on",
    ),
    "names-differ-from-the-models": (
        ["model_path=model_wxyz.joblib", "feature_names=a,b,c,d"],
        "ERROR: feature_names ('a,b,c,d')",
        "differ from the names in model_path: ['w', 'x', 'y', 'z']; give those "
        "names, in that order, or leave feature_names empty",
    ),
    "no-names-anywhere": (
        ["model_path=model4.joblib"],
        "ERROR: feature_names ('')",
        "give feature_names=",
    ),
    "metadata-not-json": (
        ["model_path=model4.joblib", "metadata_path=not_json.json"],
        "ERROR: metadata_path (",
        "not valid JSON",
    ),
    "metadata-lone-surrogate": (
        ["model_path=model4.joblib", "metadata_path=surrogate.json"],
        "ERROR: metadata_path ('{folder}/surrogate.json'): model_info.training_id "
        "is not valid Unicode text",
        "fix it in the metadata",
    ),
    "metadata-a-list": (
        ["model_path=model4.joblib", "metadata_path=list.json"],
        "ERROR: metadata_path (",
        "JSON object",
    ),
    "metadata-without-section": (
        ["model_path=model4.joblib", "metadata_path=no_evaluation.json"],
        "ERROR: metadata_path (",
        "'evaluation_info'",
    ),
    "threshold-above-every-score": (
        ["model_path=model4.joblib", "feature_names=a,b,c,d", "threshold=1"],
        "ERROR: threshold ('1'): ",
        "an IsolationForest's scores lie between 0 and 1, so every record would "
        "be normal",
    ),
    "threshold-underflowing": (
        ["model_path=model4.joblib", "feature_names=a,b,c,d", "threshold=1e-400"],
        "ERROR: threshold ('1e-400'): ",
        "so every record would be an anomaly",
    ),
    "threshold-below-every-score": (
        ["model_path=model4.joblib", "feature_names=a,b,c,d", "threshold=-0.5"],
        "ERROR: threshold ('-0.5'): ",
        "an IsolationForest's scores lie between 0 and 1, so every record would "
        "be an anomaly",
    ),
    "metadata-nan": (
        ["model_path=model4.joblib", "metadata_path=nan_accuracy.json"],
        "ERROR: metadata_path ('{folder}/nan_accuracy.json')",
        "holds NaN, which is not a JSON number; fix it in the metadata, or write null",
    ),
    "metadata-overflowing-number": (
        ["model_path=model4.joblib", "metadata_path=overflowing_duration.json"],
        "ERROR: metadata_path ('{folder}/overflowing_duration.json')",
        "holds the number 1e999, too large for a float (readers of JSON take it "
        "as Infinity, which is not JSON); fix it in the metadata",
    ),
    "metadata-repeated-key": (
        ["model_path=model4.joblib", "metadata_path=repeated_key.json"],
        "ERROR: metadata_path ('{folder}/repeated_key.json')",
        'gives the key "training_id" twice in one object, so which one counts is '
        "unclear; keep one of them in the metadata",
    ),
    "metadata-text-count": (
        ["model_path=model4.joblib", "metadata_path=text_samples.json"],
        "ERROR: metadata_path (",
        'training_info.training_samples is "lots", which is not a whole number, '
        "0 or more; fix it in the metadata, or set it to null",
    ),
    "metadata-share-above-one": (
        ["model_path=model4.joblib", "metadata_path=share_above_one.json"],
        "ERROR: metadata_path (",
        "evaluation_info.basic_metrics.recall is 7, which is not a number from 0 to 1",
    ),
    "metadata-other-model-type": (
        ["model_path=model4.joblib", "metadata_path=other_type.json"],
        "ERROR: metadata_path (",
        "model_info.model_type is 'OneClassSVM', but the model in model_path is "
        "IsolationForest; give the metadata of this model",
    ),
    "metadata-model-type-containing-the-class": (
        ["model_path=model4.joblib", "metadata_path=containing_type.json"],
        "ERROR: metadata_path (",
        "model_info.model_type is 'NotAnIsolationForest', but the model in "
        "model_path is IsolationForest; give the metadata of this model",
    ),
    "metadata-other-parameters": (
        ["model_path=model4.joblib", "metadata_path=other_parameters.json"],
        "ERROR: metadata_path (",
        "training_info.model_parameters.n_estimators is 5, but the model in "
        "model_path has 10; give the metadata of this model",
    ),
    "metadata-other-parameters-as-text": (
        ["model_path=model4.joblib", "metadata_path=other_parameters_text.json"],
        "ERROR: metadata_path (",
        'training_info.model_parameters.n_estimators is "5", but the model in '
        "model_path has 10; give the metadata of this model",
    ),
    "metadata-time-not-iso": (
        ["model_path=model4.joblib", "metadata_path=vague_time.json"],
        "ERROR: metadata_path (",
        'model_info.created_at is "yesterday", which is not an ISO 8601 time',
    ),
    "metadata-names-differ": (
        [
            "model_path=model4.joblib",
            "metadata_path=other_names.json",
            "feature_names=a,b,c,d",
        ],
        "ERROR: metadata_path ('{folder}/other_names.json'): ",
        "training_info.feature_names differ from the names in feature_names: "
        "['a', 'b', 'c', 'd']; fix them in the metadata, or set them to null",
    ),
    "metadata-names-too-few": (
        ["model_path=model4.joblib", "metadata_path=abc_names.json"],
        "ERROR: metadata_path ('{folder}/abc_names.json'): ",
        "training_info.feature_names names 3 features, the model takes 4; fix "
        "them in the metadata, or set them to null",
    ),
    "metadata-feature-count-differs": (
        ["model_path=model4.joblib", "metadata_path=five_features.json"],
        "ERROR: metadata_path ('{folder}/five_features.json'): ",
        "training_info.feature_count is 5, the model has 4 features; give the "
        "metadata of this model, or set feature_count to null",
    ),
    "metadata-names-none": (
        ["model_path=model4.joblib", "metadata_path=no_names.json"],
        "ERROR: metadata_path ('{folder}/no_names.json'): ",
        "training_info.feature_names names 0 features, the model takes 4",
    ),
    "offset-nan": (
        ["model_path=offset_nan.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/offset_nan.joblib'): its offset_ is nan, so "
        "its own threshold (-offset_) would be nan: not a finite number; refit "
        "the model, or give a threshold answer between 0 and 1",
        "",
    ),
    "offset-inf": (
        ["model_path=offset_inf.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/offset_inf.joblib'): its offset_ is inf, so "
        "its own threshold (-offset_) would be -inf: not a finite number;",
        "",
    ),
    "offset-beyond-every-score": (
        ["model_path=offset_minus5.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/offset_minus5.joblib'): its offset_ is -5.0, "
        "so its own threshold (-offset_) would be 5.0: an IsolationForest's scores "
        "lie between 0 and 1, so every record would be normal; refit the model, "
        "or give a threshold answer between 0 and 1",
        "",
    ),
    "pipeline-starting-with-none": (
        ["model_path=pipeline_none_first.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/pipeline_none_first.joblib'): the Pipeline "
        "starts with 'skip' (it is None), passing records on unchanged, so "
        "scikit-learn cannot tell how many features the model takes "
        "(n_features_in_); drop that step: joblib.dump(Pipeline(model.steps[1:]), "
        "path) keeps the fitted steps, no refit needed",
        "",
    ),
    "pipeline-starting-with-passthrough": (
        ["model_path=pipeline_passthrough_first.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/pipeline_passthrough_first.joblib'): the "
        "Pipeline starts with 'skip' (it is 'passthrough'), passing records on "
        "unchanged, so scikit-learn cannot tell",
        "drop that step: joblib.dump(Pipeline(model.steps[1:]), path)",
    ),
    "pipeline-ending-in-a-pipeline": (
        ["model_path=nested_pipeline.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/nested_pipeline.joblib'): holds a "
        "Pipeline(StandardScaler, Pipeline) whose last step is itself a Pipeline; "
        "flatten it: joblib.dump(Pipeline(model.steps[:-1] + "
        "model.steps[-1][1].steps), path) keeps the fitted steps, no refit needed",
        "",
    ),
    "function-of-the-saving-script": (
        ["model_path=main_function.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/main_function.joblib'): holds double, "
        "defined in the script that saved it (__main__), which no other Python "
        "can import; define it in a module of a distribution that the template's "
        "{{{{cookiecutter.package_name}}}}/requirements.txt lists and fit again, "
        "or use scikit-learn's own classes",
        "",
    ),
    "function-of-the-saving-script-named-as-the-hooks": (
        ["model_path=main_build.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/main_build.joblib'): holds build, "
        "defined in the script that saved it (__main__), which no other Python "
        "can import; define it in a module of a distribution that the template's "
        "{{{{cookiecutter.package_name}}}}/requirements.txt lists and fit again, "
        "or use scikit-learn's own classes",
        "",
    ),
    **{
        f"text-as-{name}": (
            [f"{answer}={name}", "feature_names=a,b,c,d"]
            + (["model_path=model4.joblib"] if answer == "scaler_path" else []),
            f"ERROR: {answer} ('{{folder}}/{name}'): cannot be loaded with joblib "
            "(ModuleNotFoundError: No module named ",
            "give a file written by joblib.dump",
        )
        for answer, name in [
            ("model_path", "train.py"),
            ("scaler_path", "features.csv"),
            ("scaler_path", "count.csv"),
        ]
    },
    "pipeline-ending-in-passthrough": (
        ["model_path=pipeline_passthrough_last.joblib", "feature_names=a,b,c,d"],
        "ERROR: model_path ('{folder}/pipeline_passthrough_last.joblib'): holds a "
        "Pipeline(StandardScaler, passthrough), not a fitted outlier detector",
        "",
    ),
}


@pytest.mark.parametrize(
    ("answers", "message", "reason"),
    list(BAD_ARTIFACTS.values()),
    ids=list(BAD_ARTIFACTS),
)
def test_bad_artifact_is_refused_and_nothing_is_left(
    answers: list[str], message: str, reason: str, bad_artifacts: Path, tmp_path: Path
) -> None:
    """An artifact that cannot make a working package is refused with its
    reason, naming the file as the builder gave it (not the package's copy);
    neither the folder nor a zip is left."""
    rendered = run_cookiecutter(tmp_path, *answers, cwd=bad_artifacts)
    assert_refused(rendered, message.format(folder=bad_artifacts))
    assert reason in rendered.stderr


@pytest.mark.parametrize(
    ("answer", "name"),
    [
        ("model_path", "model.joblib"),
        ("scaler_path", "scaler.joblib"),
        ("metadata_path", "metadata.json"),
        ("reference_data_path", "reference.csv"),
    ],
)
def test_unreadable_file_is_refused_before_anything_is_written(
    answer: str, name: str, bad_artifacts: Path, tmp_path: Path
) -> None:
    """A given file that exists but cannot be read (no permission; here a
    link to a write-only sysctl, which root cannot read either) is refused by
    the pre-generation hook in one line naming its answer, not with a
    traceback, nor later as a package file that could not be written."""
    unreadable = unreadable_file(tmp_path / name)
    answers = {
        "model_path": "model4.joblib",
        "feature_names": "a,b,c,d",
        answer: str(unreadable),
    }
    rendered = run_cookiecutter(
        tmp_path / "out", *answers_for(answers), cwd=bad_artifacts
    )
    assert_refused_in_one_line(
        rendered,
        f"ERROR: {answer} ({str(unreadable)!r}): cannot be read (Permission "
        "denied); give the user running cookiecutter read access to it, or give "
        "a copy it can read",
        "pre_gen_project",
    )


def test_model_with_an_unusable_offset_builds_with_a_threshold_answer(
    bad_artifacts: Path, tmp_path: Path
) -> None:
    """The fix that a refused offset_ names works: with a threshold answer,
    the model's own boundary is not used, and the package builds with it."""
    rendered = run_cookiecutter(
        tmp_path,
        "model_path=offset_nan.joblib",
        "feature_names=a,b,c,d",
        "threshold=0.6",
        "create_zip=no",
        cwd=bad_artifacts,
    )
    assert rendered.returncode == 0, rendered.stderr
    manifest = json.loads(
        (rendered.package_dir / "deployment_manifest.json").read_text()
    )
    assert manifest["inference_config"]["threshold"] == 0.6


def test_pipeline_without_its_leading_none_step_builds(
    bad_artifacts: Path, tmp_path: Path
) -> None:
    """The fix that a refused Pipeline starting with a None step names works:
    the same fitted steps without it make a package."""
    model = joblib.load(bad_artifacts / "pipeline_none_first.joblib")
    joblib.dump(Pipeline(model.steps[1:]), tmp_path / "dropped.joblib")
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'dropped.joblib'}",
        "feature_names=a,b,c,d",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr


def test_pipeline_with_a_passthrough_step_is_named_with_it(
    bad_artifacts: Path, tmp_path: Path
) -> None:
    """A Pipeline with a None or 'passthrough' step between others builds,
    and its model_type names that step 'passthrough' (not its class, str)."""
    X = np.random.default_rng(0).normal(size=(300, 4))
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("skip", "passthrough"),
            ("forest", IsolationForest(n_estimators=10, random_state=0)),
        ]
    )
    joblib.dump(model.fit(X), tmp_path / "model.joblib")
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        "feature_names=a,b,c,d",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr
    metadata = json.loads((rendered.package_dir / "metadata.json").read_text())
    assert (
        metadata["model_info"]["model_type"]
        == "Pipeline(StandardScaler, passthrough, IsolationForest)"
    )


@pytest.mark.parametrize(
    ("answer", "artifact", "answers"),
    [
        ("model_path", "model4.joblib", ["feature_names=a,b,c,d"]),
        (
            "scaler_path",
            "scaler4.joblib",
            ["model_path=model4.joblib", "feature_names=a,b,c,d"],
        ),
    ],
    ids=["model", "scaler"],
)
def test_artifact_pickled_by_another_scikit_learn_is_refused_by_the_build(
    answer: str,
    artifact: str,
    answers: list[str],
    bad_artifacts: Path,
    tmp_path: Path,
) -> None:
    """A model or scaler whose pickle records another scikit-learn version
    (rewritten at the byte level, as if dumped there) is refused by the build
    itself, naming both versions and the one to install; nothing is left."""
    other = same_length_other_version(SKLEARN)
    given = tmp_path / "given"
    given.mkdir()
    pickled = Path(shutil.copy(bad_artifacts / artifact, given / "elsewhere.joblib"))
    repickle_version(pickled, other)
    beside = sorted(bad_artifacts.iterdir())
    rendered = run_cookiecutter(
        tmp_path / "out", *answers, f"{answer}={pickled}", cwd=bad_artifacts
    )
    assert_refused(rendered, f"ERROR: {answer} ('{pickled}'): ")
    assert (
        f"ERROR: {answer} ('{pickled}'): was pickled with scikit-learn {other} but "
        f"this Python has {SKLEARN}; build the package with the version that made "
        f"the pickle (pip install scikit-learn=={other}), so that the pinned "
        "requirement and the self-test scores are that version's"
    ) in rendered.stderr.splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given", "out"]
    assert [p.name for p in given.iterdir()] == ["elsewhere.joblib"]
    assert sorted(bad_artifacts.iterdir()) == beside


@pytest.fixture(scope="module")
def bad_references(bad_artifacts: Path) -> Path:
    """Reference data files that cannot give statistics, beside the models of
    bad_artifacts (model4.joblib takes a, b, c, d; model_wxyz.joblib w, x, y, z)."""
    files = {
        "empty.csv": b"",
        "header_only.csv": b"a,b,c,d\n",
        "abc.csv": b"a,b,c\n1,2,3\n",
        "text.csv": b"a,b,c,d\n1,2,3,4\n1,abc,3,4\n",
        "nan.csv": b"a,b,c,d\n1,2,nan,4\n",
        "short_row.csv": b"a,b,c,d\n1,2,3,4\n1,2,3\n",
        "latin1.csv": "a,b,c,d\n1,2,3,4 \u00e9\n".encode("latin-1"),
        "reference.xlsx": b"a,b,c,d\n1,2,3,4\n",
        "reference.parquet": b"PAR1",
        "separator.csv": b"a,b,c,d\n1,2,3,4\n1_000,2,3,4\n",
        "full_width.csv": "a,b,c,d\n1,2,\uff13,4\n".encode(),
    }
    for name, content in files.items():
        (bad_artifacts / name).write_bytes(content)
    return bad_artifacts


ABCD = ["model_path=model4.joblib", "feature_names=a,b,c,d"]
# (answers, the ERROR line's start, the reason); the feature names are known
# before the model is loaded (pre-generation hook) unless the model names them.
BAD_REFERENCES = {
    "missing-file": (
        [*ABCD, "reference_data_path=nowhere.csv"],
        "ERROR: reference_data_path ('nowhere.csv')",
        "no such file",
    ),
    "empty": (
        [*ABCD, "reference_data_path=empty.csv"],
        "ERROR: reference_data_path (",
        "empty.csv'): is empty",
    ),
    "header-only": (
        [*ABCD, "reference_data_path=header_only.csv"],
        "ERROR: reference_data_path (",
        "has a header but no rows",
    ),
    "missing-column": (
        [*ABCD, "reference_data_path=abc.csv"],
        "ERROR: reference_data_path (",
        "has no column for the features ['d']",
    ),
    "text-value": (
        [*ABCD, "reference_data_path=text.csv"],
        "ERROR: reference_data_path (",
        "line 3, column 'b' is 'abc': every feature value must be a finite number",
    ),
    "nan-value": (
        [*ABCD, "reference_data_path=nan.csv"],
        "ERROR: reference_data_path (",
        "line 2, column 'c' is 'nan'",
    ),
    "short-row": (
        [*ABCD, "reference_data_path=short_row.csv"],
        "ERROR: reference_data_path (",
        "line 3 has 3 fields, the header has 4",
    ),
    "not-utf-8": (
        [*ABCD, "reference_data_path=latin1.csv"],
        "ERROR: reference_data_path (",
        "is not UTF-8 text",
    ),
    "unknown-format": (
        [*ABCD, "reference_data_path=reference.xlsx"],
        "ERROR: reference_data_path (",
        "cannot tell the format from the name (.xlsx)",
    ),
    "names-from-the-model-missing": (
        ["model_path=model_wxyz.joblib", "reference_data_path=abc.csv"],
        "ERROR: reference_data_path (",
        "has no column for the features ['w', 'x', 'y', 'z']",
    ),
    "digit-separator": (
        [*ABCD, "reference_data_path=separator.csv"],
        "ERROR: reference_data_path (",
        "separator.csv'): line 3, column 'a' is '1_000': every feature value must "
        "be a finite number",
    ),
    "full-width-digit": (
        [*ABCD, "reference_data_path=full_width.csv"],
        "ERROR: reference_data_path (",
        "full_width.csv'): line 2, column 'c' is '\uff13': every feature value "
        "must be a finite number",
    ),
    "with-the-demo": (
        ["reference_data_path=abc.csv"],
        "ERROR: reference_data_path ('abc.csv')",
        "the demo model brings its own",
    ),
}


@pytest.mark.parametrize(
    ("answers", "message", "reason"),
    list(BAD_REFERENCES.values()),
    ids=list(BAD_REFERENCES),
)
def test_bad_reference_data_is_refused_and_nothing_is_left(
    answers: list[str], message: str, reason: str, bad_references: Path, tmp_path: Path
) -> None:
    """Reference data that cannot give statistics is refused with its reason,
    before (or, when only the model names the features, instead of) building:
    neither folder nor zip is left."""
    rendered = run_cookiecutter(tmp_path, *answers, cwd=bad_references)
    assert_refused(rendered, message)
    assert reason in rendered.stderr


def test_parquet_reference_without_pyarrow_is_refused(
    bad_references: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without pyarrow, Parquet reference data is refused, naming the fix."""
    # Every Python that cookiecutter starts runs this sitecustomize, which
    # marks pyarrow as absent (a None entry in sys.modules), as on a machine
    # without it.
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(
        'import sys\n\nsys.modules["pyarrow"] = None\n', encoding="utf-8"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    rendered = run_cookiecutter(
        tmp_path, *ABCD, "reference_data_path=reference.parquet", cwd=bad_references
    )
    assert_refused(rendered, "ERROR: reference_data_path (")
    assert "reading Parquet needs pyarrow" in rendered.stderr
    assert "pip install pyarrow" in rendered.stderr


@pytest.mark.parametrize("create_zip", ["yes", "no"])
def test_failing_self_validation_leaves_no_folder_and_no_zip(
    tmp_path: Path, create_zip: str
) -> None:
    """When the package fails its own validate_model.py, the build stops with
    its output and leaves neither folder nor zip."""
    template = tmp_path / "template"
    shutil.copytree(
        TEMPLATE_DIR, template, ignore=shutil.ignore_patterns(".git", ".nox", "dist")
    )
    validator = template / "{{cookiecutter.package_name}}" / "validate_model.py"
    validator.write_text(
        validator.read_text().replace(
            "SCORE_TOLERANCE = 1e-9", "SCORE_TOLERANCE = -1.0"
        )
    )
    output = tmp_path / "out"
    rendered = run_cookiecutter(output, f"create_zip={create_zip}", template=template)
    assert rendered.returncode != 0
    assert "ERROR: the package failed its own validation" in rendered.stderr
    assert "❌ Validation failed: self-test scores differ" in rendered.stderr
    assert list(output.iterdir()) == []


def test_output_that_cannot_be_written_is_an_error_line(tmp_path: Path) -> None:
    """A folder where the zip's .sha256 goes: one ERROR line naming it, and
    neither the package folder nor a zip is left beside it."""
    blocked = tmp_path / f"model_{VERSION}_deployment.zip.sha256"
    blocked.mkdir()
    rendered = run_cookiecutter(tmp_path)
    assert rendered.returncode != 0
    assert (
        f"ERROR: the zip could not be written: {blocked} is a folder: move it "
        "away and build again"
    ) in rendered.stderr
    assert [p.name for p in tmp_path.iterdir()] == [blocked.name]


HOUSE_FOREST = (
    "from sklearn.ensemble import IsolationForest\n\n\n"
    "class HouseForest(IsolationForest):\n    pass\n"
)
HOUSE_MODEL = "house_models.HouseForest(n_estimators=10, random_state=0).fit(X)"


def refused_for_its_module(rendered: Rendered, model: Path, provided: str) -> None:
    assert_refused_in_one_line(
        rendered,
        f"ERROR: model_path ({str(model)!r}): needs the module 'house_models' "
        f"({provided}), which the package's requirements.txt does not install, "
        "so a consumer's Python could not load it; save a model made of "
        "scikit-learn's own classes, or install the module's distribution here "
        "and list it in the template's {{cookiecutter.package_name}}/requirements.txt",
        "post_gen_project",
    )


def test_model_that_needs_a_module_of_the_builders_is_refused(
    tmp_path: Path,
) -> None:
    """A model pickled from a class in the builder's own module (found through
    PYTHONPATH) loads in the hook, but no consumer's Python could load it: it
    is refused, naming the module, and nothing is left."""
    env = builders_model(tmp_path, HOUSE_FOREST, HOUSE_MODEL)
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'house.joblib'}",
        "feature_names=a,b,c",
        env=env,
    )
    refused_for_its_module(
        rendered,
        tmp_path / "house.joblib",
        "that no installed distribution is known to provide: a folder on the "
        "path, or an editable install not named like it",
    )


def python_with_house_models(folder: Path, editable: bool = False) -> Path:
    """A Python (a virtual environment) where the builder's module
    house_models (in folder/code, from builders_model) is installed as the
    distribution house-models 1.0 would install it (``editable``: as an
    editable install, whose record names none of the module's files), beside
    everything this Python has; return its interpreter."""
    info = folder / "code" / "house_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: house-models\nVersion: 1.0\n", encoding="utf-8"
    )
    record = "house_models-1.0.dist-info/METADATA,,\n"
    if not editable:
        record += "house_models.py,,\n"
    (info / "RECORD").write_text(record, encoding="utf-8")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = [path for path in sys.path if path.endswith("site-packages")]
    (Path(site) / "builder.pth").write_text(
        "\n".join([str(folder / "code"), *here]) + "\n", encoding="utf-8"
    )
    return python


def render_with_house_models(
    folder: Path, listed: bool, editable: bool = False
) -> Rendered:
    """Render folder/house.joblib (from builders_model) into folder/out with
    a Python where house_models is installed (python_with_house_models),
    from a copy of the template whose requirements.txt lists it if
    ``listed``."""
    python = python_with_house_models(folder, editable)
    template = template_copy(folder)
    if listed:
        requirements = template / "{{cookiecutter.package_name}}" / "requirements.txt"
        with requirements.open("a", encoding="utf-8") as stream:
            stream.write("\nHouse_Models>=1.0  # the builder's own estimators\n")
    command = cookiecutter_command(
        folder / "out",
        f"model_path={folder / 'house.joblib'}",
        "feature_names=a,b,c",
        template=template,
    )
    result = subprocess.run(
        [str(python), *command[1:]], capture_output=True, text=True, encoding="utf-8"
    )
    name = f"model_{VERSION}_deployment"
    return Rendered(
        result.returncode,
        result.stdout,
        result.stderr,
        folder / "out",
        folder / "out" / name,
        folder / "out" / f"{name}.zip",
    )


@pytest.mark.parametrize("editable", [False, True], ids=["installed", "editable"])
@pytest.mark.parametrize("listed", [False, True], ids=["not-listed", "listed"])
def test_model_that_needs_an_installed_distribution_needs_it_listed(
    tmp_path: Path, listed: bool, editable: bool
) -> None:
    """A model whose class comes from a distribution installed in the
    builder's Python loads there, and would pass the build's validation run
    too: it is refused unless the template's requirements.txt lists that
    distribution, so that installing the package's requirements installs it;
    listed, the package builds and its requirements.txt names it. An
    editable install, whose record does not name the module's file, counts
    by its name, like the module's."""
    builders_model(tmp_path, HOUSE_FOREST, HOUSE_MODEL)
    rendered = render_with_house_models(tmp_path, listed, editable)
    if not listed:
        refused_for_its_module(
            rendered,
            tmp_path / "house.joblib",
            "that no installed distribution is known to provide: a folder on the "
            "path, or an editable install not named like it"
            if editable
            else "of the distribution house-models",
        )
        return
    assert rendered.returncode == 0, rendered.stderr
    assert (
        "House_Models>=1.0" in (rendered.package_dir / "requirements.txt").read_text()
    )
    assert rendered.zip_path.is_file()


def test_requirements_count_as_pip_reads_them(tmp_path: Path) -> None:
    """What a requirements.txt installs, for the module check: names as pip
    compares them, comments dropped, a URL by its #egg= name, the extras
    asked for (not the others), what the listed distributions require as
    installed here, and no option (-r, --hash) taken for a name."""
    from package_builder.artifacts import installed_by

    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# the model's libraries\n"
        "scikit-learn==1.9.1  # pinned\n"
        "git+https://example.org/house.git#egg=House_Models\n"
        "acme-tools @ git+https://example.org/acme-tools.git\n"
        "https://example.org/wheels/other-1.0-py3-none-any.whl\n"
        "-r more.txt\n"
        "--hash=sha256:0123\n"
        'pandas[performance, excel]>=1.3 ; python_version >= "3.8"\n',
        encoding="utf-8",
    )
    installed = installed_by(requirements)
    assert {"scikit-learn", "scipy", "threadpoolctl", "house-models"} <= installed
    assert {"acme-tools", "pandas", "numexpr", "bottleneck", "openpyxl"} <= installed
    assert not installed & {"https", "git", "r", "hash", "other", "pytest"}


def test_model_pickled_with_protocol_2_builds(tmp_path: Path) -> None:
    """A pickle of protocol 2 names Python 2's modules for built-ins
    (__builtin__ for a slice), which unpickling reads as Python 3's: the
    model builds, not refused for a module no consumer has."""
    from sklearn.compose import ColumnTransformer

    X = np.random.default_rng(0).normal(size=(100, 3))
    columns = ColumnTransformer([("n", StandardScaler(), slice(0, 3))])
    model = make_pipeline(columns, IsolationForest(n_estimators=5, random_state=0))
    joblib.dump(model.fit(X), tmp_path / "model.joblib", protocol=2)
    assert b"__builtin__" in (tmp_path / "model.joblib").read_bytes()
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        "feature_names=a,b,c",
    )
    assert rendered.returncode == 0, rendered.stderr


def test_a_nested_pickle_read_by_pickle_load_is_recorded_too() -> None:
    """joblib before 1.6 reads an array of Python objects with pickle.load:
    while a file loads, that load records the modules it imports as well."""
    import io
    import pickle
    from fractions import Fraction

    from package_builder.artifacts import _recording_modules

    modules: set[str] = set()
    data = pickle.dumps([Fraction(1, 3)], protocol=2)
    with _recording_modules(modules):
        assert joblib.numpy_pickle.pickle.load(io.BytesIO(data)) == [Fraction(1, 3)]
    assert "fractions" in modules
    assert joblib.numpy_pickle.pickle is pickle


HOUSE_DETECTOR = """\
import numpy as np
from sklearn.ensemble import IsolationForest


class HouseDetector:
    \"\"\"An outlier detector of the builder's own, not a scikit-learn
    estimator: no get_params.\"\"\"

    def fit(self, X):
        self.forest_ = IsolationForest(n_estimators=10, random_state=0).fit(X)
        self.offset_ = self.forest_.offset_
        self.n_features_in_ = X.shape[1]
        return self

    def score_samples(self, X):
        return self.forest_.score_samples(np.asarray(X))

    def decision_function(self, X):
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        return np.where(self.decision_function(X) < 0, -1, 1)
"""


def test_detector_of_its_own_kind_without_get_params_is_packaged(
    tmp_path: Path,
) -> None:
    """A detector of the builder's own that has what scoring needs
    (score_samples, offset_, n_features_in_) but not scikit-learn's
    get_params is packaged, its distribution listed, with no parameters
    recorded, and validates."""
    builders_model(tmp_path, HOUSE_DETECTOR, "house_models.HouseDetector().fit(X)")
    rendered = render_with_house_models(tmp_path, listed=True)
    assert rendered.returncode == 0, rendered.stderr
    metadata = json.loads((rendered.package_dir / "metadata.json").read_text())
    assert metadata["model_info"]["model_type"] == "HouseDetector"
    assert metadata["training_info"]["model_parameters"] == {}


@pytest.mark.parametrize("encoder", ["model_path", "scaler_path"])
def test_artifact_that_takes_text_columns_is_refused(
    tmp_path: Path, encoder: str
) -> None:
    """A Pipeline model, or a scaler, fitted on a text column that it one-hot
    encodes itself cannot take the numbers the package gives it: refused
    naming that artifact and the fix, not a traceback."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "bytes": rng.normal(size=200),
            "proto": pd.Series(rng.choice(["tcp", "udp"], size=200), dtype=object),
        }
    )
    encode = ColumnTransformer(
        [("n", StandardScaler(), ["bytes"]), ("c", OneHotEncoder(), ["proto"])]
    ).fit(frame)
    answers = [f"model_path={tmp_path / 'model.joblib'}"]
    if encoder == "model_path":
        model = Pipeline([("encode", encode), ("forest", IsolationForest())])
        joblib.dump(model.fit(frame), tmp_path / "model.joblib")
    else:
        forest = IsolationForest(random_state=0).fit(encode.transform(frame))
        joblib.dump(forest, tmp_path / "model.joblib")
        joblib.dump(encode, tmp_path / "scaler.joblib")
        answers.append(f"scaler_path={tmp_path / 'scaler.joblib'}")
    rendered = run_cookiecutter(tmp_path / "out", *answers)
    path = tmp_path / ("model.joblib" if encoder == "model_path" else "scaler.joblib")
    artifact = "model" if encoder == "model_path" else "scaler"
    assert_refused(
        rendered,
        f"ERROR: {encoder} ({str(path)!r}): cannot take rows of numbers (TypeError: ",
    )
    assert (
        f"the package gives the {artifact} every feature as a number, so if it "
        "takes text columns (categories it encodes itself), encode them as "
        "numbers before fitting"
    ) in rendered.stderr
    assert "Traceback" not in rendered.stderr


@pytest.mark.parametrize(
    ("start", "module", "joblibs"),
    [
        (b"\x80\x04\x95", "house_models", True),
        (b"ccopy_reg\n_reconstructor\n(cacme.models\nForest\n", "acme", True),
        (b"ccopy_reg\n_reconstructor\n(chouse_models\nHouse\n", "house_models", True),
        (b"count\n1\n2\n", "ount", False),
        (b"cpu,mem\n1,2\n", "pu,mem", False),
    ],
    ids=["protocol-4", "protocol-0-package", "protocol-0", "count-csv", "csv"],
)
def test_a_missing_module_is_told_apart_from_text_read_as_a_pickle(
    tmp_path: Path, start: bytes, module: str, joblibs: bool
) -> None:
    """Whether a file whose unpickling asked for a missing module is one that
    joblib.dump wrote (then the module is what is missing), also a pickle of
    protocol 0 naming a module inside the missing package, or text whose
    letters the unpickler took for a module name."""
    path = tmp_path / "file"
    path.write_bytes(start)
    assert _written_by_joblib(path, module) is joblibs


@pytest.mark.parametrize(
    "dump_options",
    ["", ", protocol=0", ", compress=3", ", compress=('xz', 1)"],
    ids=["default", "protocol-0", "zlib", "xz"],
)
def test_model_that_needs_a_module_cookiecutter_cannot_import_is_refused(
    tmp_path: Path, dump_options: str
) -> None:
    """A model pickled from a class in a module that the Python running
    cookiecutter cannot import is refused naming the module, and saying that
    consumers would need it too (not "give a file written by joblib.dump"),
    however joblib.dump wrote it."""
    builders_model(tmp_path, HOUSE_FOREST, HOUSE_MODEL, dump_options)
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'house.joblib'}",
        "feature_names=a,b,c",
    )
    assert_refused(
        rendered,
        f"ERROR: model_path ('{tmp_path / 'house.joblib'}'): needs the module "
        "'house_models', which the Python running cookiecutter (",
    )
    assert "cannot import, and the package's consumers would need it too" in (
        rendered.stderr
    )
    assert "joblib.dump" not in rendered.stderr


def test_edited_replay_file_is_refused_not_built_from_the_old_model(
    artifacts: tuple[Path, dict], bad_artifacts: Path, tmp_path: Path
) -> None:
    """cookiecutter --replay-file restores the path rendered on the first run
    (__model_file), not the edited model_path: a replay file whose model_path
    was edited alone is refused, naming both, and nothing is left."""
    directory, samples = artifacts
    config = tmp_path / "config.yaml"
    replays = tmp_path / "replays"
    config.write_text(f"replay_dir: {replays}\n", encoding="utf-8")
    first = run_cookiecutter(
        tmp_path / "first",
        *answers_for(samples["no_scaler"]),
        "create_zip=no",
        cwd=directory,
        extra_args=("--config-file", str(config)),
    )
    assert first.returncode == 0, first.stderr
    (recorded,) = replays.iterdir()
    replay = json.loads(recorded.read_text(encoding="utf-8"))
    new_model = bad_artifacts / "model4.joblib"
    replay["cookiecutter"]["model_path"] = str(new_model)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(replay), encoding="utf-8")
    output = tmp_path / "replayed"
    output.mkdir()
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(TEMPLATE_DIR),
            "--replay-file",
            str(edited),
            "--config-file",
            str(config),
            "--output-dir",
            str(output),
        ],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    assert replayed.returncode != 0
    assert (
        f"ERROR: model_path ({str(new_model)!r}): the replay file records "
        "__model_file, the file a replay builds, as "
        f"{directory / samples['no_scaler']['model_path']}, which this path cannot "
        "be; edit both model_path and __model_file in the replay file, or render "
        "without --replay"
    ) in replayed.stderr
    assert list(output.iterdir()) == []


def test_self_test_slower_than_the_timeout_names_timeout_seconds(
    tmp_path: Path,
) -> None:
    """A model too slow to score the self-test's rows within timeout_seconds
    is refused naming timeout_seconds (a detector that sleeps three seconds
    per call, three times the shortest limit, stands in for a huge one: the
    deadline, looked at before each one-row batch, has long passed at the
    second, however loaded the machine)."""
    env = builders_model(
        tmp_path,
        "import time\n\nfrom sklearn.ensemble import IsolationForest\n\n\n"
        "class SlowForest(IsolationForest):\n"
        "    def score_samples(self, X):\n"
        "        time.sleep(3)\n"
        "        return super().score_samples(X)\n",
        "house_models.SlowForest(n_estimators=10, random_state=0).fit(X)",
    )
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'house.joblib'}",
        "feature_names=a,b,c",
        "timeout_seconds=1",
        "batch_size=1",
        env=env,
    )
    assert_refused(rendered, "ERROR: timeout_seconds (1): ")
    assert (
        "scoring the self-test's 5 rows took longer than that, so the package "
        "would time out on the smallest calls; give more seconds"
    ) in rendered.stderr


def built_metadata(tmp_path: Path, model: Path, given: dict) -> dict:
    """Package ``model`` with ``given`` as the builder's metadata.json; check
    that it builds and return the package's metadata.json."""
    rendered = render_with_metadata(tmp_path, model, given)
    return json.loads((rendered.package_dir / "metadata.json").read_text())


def test_metadata_may_record_parameters_as_strings(
    bad_artifacts: Path, tmp_path: Path
) -> None:
    """model_parameters written as strings ("10", as MLflow records them)
    agree with the model's 10: the package builds and keeps them."""
    metadata = {
        "model_info": {"created_at": "2024-01-01T00:00:00Z"},
        "training_info": {
            "feature_names": ["a", "b", "c", "d"],
            "model_parameters": {"n_estimators": "10", "bootstrap": "False"},
        },
        "evaluation_info": {},
    }
    built = built_metadata(tmp_path, bad_artifacts / "model4.joblib", metadata)
    assert built["training_info"]["model_parameters"]["n_estimators"] == "10"


@pytest.mark.parametrize("monitoring", GIVEN_MONITORING_SECTIONS)
def test_metadata_with_its_own_monitoring_section_is_refused(
    bad_artifacts: Path, tmp_path: Path, monitoring: object
) -> None:
    """A builder's metadata.json with a top-level 'monitoring' key is refused
    by the pre-generation hook, naming the key and its value: the package's
    monitoring section is the one the build computes."""
    given = tmp_path / "given.json"
    metadata = {
        "model_info": {},
        "training_info": {"feature_names": ["a", "b", "c", "d"]},
        "evaluation_info": {},
        "monitoring": monitoring,
    }
    given.write_text(json.dumps(metadata), encoding="utf-8")
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={bad_artifacts / 'model4.joblib'}",
        f"metadata_path={given}",
    )
    assert_refused_in_one_line(
        rendered,
        f"ERROR: metadata_path ({str(given)!r}): has a 'monitoring' key "
        f"({json.dumps(monitoring)}), but the package's monitoring section is "
        "the build's own (reference statistics computed from "
        "reference_data_path, else from the scaler); remove the key from the "
        "metadata (and give reference_data_path for statistics of your data)",
        "pre_gen_project",
    )


def test_metadata_keys_beyond_the_schema_are_kept(
    bad_artifacts: Path, tmp_path: Path
) -> None:
    """A builder's keys beyond the schema, at the top level and in a section,
    are kept; a null 'monitoring' says nothing, and the package's monitoring
    section is the build's own."""
    metadata = {
        "model_info": {"team": "netops"},
        "training_info": {"feature_names": ["a", "b", "c", "d"]},
        "evaluation_info": {},
        "notes": {"ticket": "OPS-1"},
        "monitoring": None,
    }
    built = built_metadata(tmp_path, bad_artifacts / "model4.joblib", metadata)
    assert built["notes"] == {"ticket": "OPS-1"}
    assert built["model_info"]["team"] == "netops"
    assert built["monitoring"]["source"] == "none"


def test_metadata_deployment_info_and_build_environment_are_the_builds(
    bad_artifacts: Path, tmp_path: Path
) -> None:
    """A given deployment_info and build_environment (a training service's,
    or an earlier package's metadata.json) describe another build: the
    package's are this build's, as the README says."""
    import sklearn

    metadata = {
        "model_info": {},
        "training_info": {"feature_names": ["a", "b", "c", "d"]},
        "evaluation_info": {},
        "deployment_info": {
            "status": "staging",
            "deployed_at": "2020-01-01T00:00:00Z",
            "deployed_by": "training-service",
        },
        "build_environment": {"scikit-learn": "0.24.2", "python": "3.6.0"},
    }
    built = built_metadata(tmp_path, bad_artifacts / "model4.joblib", metadata)
    deployment = built["deployment_info"]
    assert deployment["status"] == "deployed"
    assert deployment["deployed_at"] == "2024-12-01T14:30:22Z"  # the version's
    assert deployment["deployed_by"] not in ("training-service", "")
    assert built["build_environment"]["scikit-learn"] == sklearn.__version__
    assert built["build_environment"]["python"] == platform.python_version()


@pytest.mark.parametrize("model_type", ["Pipeline", "sklearn.pipeline.Pipeline"])
def test_metadata_may_name_the_pipeline_as_model_type(
    bad_artifacts: Path, tmp_path: Path, model_type: str
) -> None:
    """A Pipeline model's metadata may name the model's own class, Pipeline,
    as well as its detector: the package builds and keeps the name."""
    metadata = {
        "model_info": {"model_type": model_type},
        "training_info": {"feature_names": ["a", "b", "c", "d"]},
        "evaluation_info": {},
    }
    built = built_metadata(tmp_path, bad_artifacts / "pipeline4.joblib", metadata)
    assert built["model_info"]["model_type"] == model_type


def test_unexpected_failure_of_a_rebuild_puts_the_earlier_package_back(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A rebuild that fails where no check expects it (a detector of the
    builder's own that raises when it scores): the traceback, an ERROR line
    saying so, and the earlier package exactly as it was."""
    directory, samples = artifacts
    output = tmp_path / "out"
    first = run_cookiecutter(output, *answers_for(samples["no_scaler"]), cwd=directory)
    assert first.returncode == 0, first.stderr
    before = tree(output)
    env = builders_model(
        tmp_path,
        "from sklearn.ensemble import IsolationForest\n\n\n"
        "class BrokenForest(IsolationForest):\n"
        "    def score_samples(self, X):\n"
        "        raise RuntimeError('scoring is broken')\n",
        "house_models.BrokenForest(n_estimators=10, random_state=0).fit(X)",
    )
    again = run_cookiecutter(
        output,
        f"model_path={tmp_path / 'house.joblib'}",
        "feature_names=a,b,c",
        env=env,
        extra_args=("--overwrite-if-exists",),
    )
    assert again.returncode != 0
    assert "RuntimeError: scoring is broken" in again.stderr
    assert (
        "ERROR: the build failed unexpectedly (the traceback above says where; "
        "please report it); nothing was published"
    ) in again.stderr
    assert tree(output) == before


def test_dataframe_model_without_pandas_says_what_to_install(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """On a Python where pandas cannot be imported (a package on PYTHONPATH
    that raises ImportError stands in for it), a model fitted on a DataFrame
    is refused with one ERROR line naming pandas, and nothing is left; a
    model fitted on an array still builds."""
    blocker = tmp_path / "blocker" / "pandas"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("pandas is blocked")\n')
    env = {"PYTHONPATH": str(blocker.parent)}
    directory, samples = artifacts
    refused = run_cookiecutter(
        tmp_path / "refused", *answers_for(samples["dataframe"]), cwd=directory, env=env
    )
    assert_refused(
        refused,
        "ERROR: the model or the scaler was fitted on a pandas DataFrame, and "
        "scoring it needs pandas, which the Python running cookiecutter",
    )
    assert "pipx inject cookiecutter pandas" in refused.stderr
    built = run_cookiecutter(
        tmp_path / "built", *answers_for(samples["no_scaler"]), cwd=directory, env=env
    )
    assert built.returncode == 0, built.stderr


def test_cookiecutter_without_scikit_learn_says_what_to_install(tmp_path: Path) -> None:
    """On a Python with cookiecutter but no scikit-learn (a pipx install), the
    run stops before writing anything and names the package to install."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "cookiecutter"],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    output = tmp_path / "out"
    result = subprocess.run(
        [
            str(python),
            "-m",
            "cookiecutter",
            str(TEMPLATE_DIR),
            "--no-input",
            "--output-dir",
            str(output),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "ERROR: sklearn, joblib, numpy cannot be imported" in result.stderr
    assert "pipx inject cookiecutter scikit-learn" in result.stderr
    assert not output.exists() or list(output.iterdir()) == []
