"""Real renders of the template: the files, documents, hashes and zip they produce."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from conftest import (
    TEMPLATE_DIR,
    VERSION,
    Rendered,
    answers_for,
    consumer_environment,
    render_with_metadata,
    run_cookiecutter,
    run_validate_model,
    template_copy,
    tree,
)
from package_builder.build import load_package_module
from package_builder.demo import TEST_SIZE, make_dataset
from package_builder.documents import numpy_floor
from sample_artifacts import (
    FEATURES,
    make_data,
    reference_rows,
    training_service_metadata,
    write_reference_csv,
)
from sklearn.ensemble import IsolationForest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import (
    PolynomialFeatures,
    PowerTransformer,
    StandardScaler,
)
from sklearn.svm import OneClassSVM

SPEC_FILES = {
    "model.joblib",
    "metadata.json",
    "deployment_manifest.json",
    "validate_model.py",
    "inference_example.py",
    "requirements.txt",
    "README.md",
    "SHA256SUMS",
}
# Beyond the specification: scoring on Spark (spark_scoring.py).
PACKAGE_FILES = SPEC_FILES | {"spark_scoring.py", "requirements-spark.txt"}
TEMPLATE_PACKAGE = TEMPLATE_DIR / "{{cookiecutter.package_name}}"
METADATA_SCHEMA = {
    "model_info": {
        "version": str,
        "created_at": str,
        "model_type": str,
        "training_source": (str, type(None)),
        "export_file": (str, type(None)),
        "training_id": (str, type(None)),
    },
    "training_info": {
        "training_samples": (int, type(None)),
        "feature_names": list,
        "feature_count": int,
        "export_file_size": (int, type(None)),
        "training_duration": (float, type(None)),
        "model_parameters": dict,
    },
    "evaluation_info": {
        "basic_metrics": dict,
        "cross_validation_score": (float, type(None)),
        "feature_importance": (dict, type(None)),
    },
    "deployment_info": {"status": str, "deployed_at": str, "deployed_by": str},
}
MANIFEST_TYPES = {
    "model_version": str,
    "deployment_timestamp": str,
    "package_format_version": str,
    "model_info": dict,
    "training_info": dict,
    "evaluation_info": dict,
    "deployment_info": dict,
    "files": dict,
    "file_integrity": dict,
    "inference_config": dict,
    "model_artifacts": dict,
}
NUMBER = (int, float)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_demo_package_has_exactly_the_specified_files(demo: Rendered) -> None:
    """The demo package holds the spec's files plus SHA256SUMS and the Spark
    scoring files, nothing else."""
    assert files_in(demo.package_dir) == PACKAGE_FILES | {"scaler.joblib"}
    assert sorted(p.name for p in demo.output_dir.iterdir()) == [
        demo.package_dir.name,
        demo.zip_path.name,
        demo.zip_path.name + ".sha256",
    ]


def test_byte_code_left_in_the_template_is_not_packaged(tmp_path: Path) -> None:
    """A __pycache__, or a .pyc beside the scripts (as Python 2 wrote them),
    left in the template's package folder is not in the rendered package:
    the package holds its own files alone."""
    template = template_copy(tmp_path)
    cache = template / "{{cookiecutter.package_name}}" / "__pycache__"
    cache.mkdir()
    (cache / "inference_example.cpython-311.pyc").write_bytes(b"stale")
    (template / "{{cookiecutter.package_name}}" / "serve.pyc").write_bytes(b"stale")
    rendered = run_cookiecutter(tmp_path / "out", "create_zip=no", template=template)
    assert rendered.returncode == 0, rendered.stderr
    assert files_in(rendered.package_dir) == PACKAGE_FILES | {"scaler.joblib"}


def test_render_says_where_the_package_is(demo: Rendered) -> None:
    """The build's last lines name the folder, the zip and its SHA-256 file."""
    assert demo.stdout.splitlines()[-3:] == [
        f"Package folder: {demo.package_dir}",
        f"Package zip:    {demo.zip_path}",
        f"Zip SHA-256:    {demo.zip_path}.sha256",
    ]


def test_no_template_syntax_survives_rendering(demo: Rendered) -> None:
    """No '{{' or '{%' is left in any text file of the package."""
    for name in files_in(demo.package_dir) - {"model.joblib", "scaler.joblib"}:
        text = (demo.package_dir / name).read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text, name


def test_package_code_is_the_template_code(demo: Rendered) -> None:
    """The package's Python files are the template's, byte for byte (so linting
    the template lints every package)."""
    for name in (
        "validate_model.py",
        "inference_example.py",
        "spark_scoring.py",
        "requirements-spark.txt",
    ):
        assert (demo.package_dir / name).read_bytes() == (
            TEMPLATE_PACKAGE / name
        ).read_bytes()


def test_validate_model_prints_the_specified_lines(demo: Rendered) -> None:
    """validate_model.py exits 0 and prints the specification's output lines."""
    result = run_validate_model(demo.package_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for expected in [
        "🔍 Validating model deployment...",
        "📁 Checking file integrity...",
        "✅ model.joblib: OK",
        "✅ scaler.joblib: OK",
        "✅ metadata.json: OK",
        "🤖 Loading model...",
        "✅ Model loaded successfully",
        "   Model type: IsolationForest",
        "✅ Scaler loaded successfully",
        "   Scaler type: StandardScaler",
        "🧪 Testing model inference...",
        "✅ Inference test successful",
        "🎉 Model validation completed successfully!",
    ]:
        assert expected in lines
    assert any(line.startswith("   Sample predictions: [") for line in lines)
    assert any(line.startswith("   Score range: ") for line in lines)
    assert "✅ 17 features agree: manifest, metadata.json, scaler, model" in lines


def _readme_expected_output(package_dir: Path) -> list[str]:
    """The validate_model.py output that the package's README shows."""
    readme = (package_dir / "README.md").read_text(encoding="utf-8")
    block = readme.split("Expected output", 1)[1].split("```text\n", 1)[1]
    return block.split("\n```", 1)[0].splitlines()


def _matches(shown: str, printed: str) -> bool:
    """A README line matches a printed one; '…' stands for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))
    return re.fullmatch(pattern, printed) is not None


@pytest.mark.parametrize("package", ["demo", "scaled", "no_scaler", "dataframe"])
def test_readme_shows_what_validate_model_prints(
    package: str, demo: Rendered, rendered_samples: dict[str, Rendered]
) -> None:
    """The README's expected output is validate_model.py's, line for line,
    with '…' only where the values are the self-test's or the machine's."""
    package_dir = (demo if package == "demo" else rendered_samples[package]).package_dir
    printed = run_validate_model(package_dir).stdout.splitlines()
    shown = _readme_expected_output(package_dir)
    assert len(shown) == len(printed), (shown, printed)
    for line, (expected, actual) in enumerate(zip(shown, printed, strict=True)):
        assert _matches(expected, actual), (line, expected, actual)


@pytest.mark.parametrize("package", ["demo", "scaled", "no_scaler", "dataframe"])
def test_readme_configuration_table_is_the_manifests(
    package: str, demo: Rendered, rendered_samples: dict[str, Rendered]
) -> None:
    """The README's table of deployment_manifest.json's inference_config
    gives each key's value in the manifest (null as `null`)."""
    package_dir = (demo if package == "demo" else rendered_samples[package]).package_dir
    config = read_json(package_dir / "deployment_manifest.json")["inference_config"]
    readme = (package_dir / "README.md").read_text(encoding="utf-8")
    table = readme.split("→ `inference_config` of this package:", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table.split("\n\n", 2)[1], re.M)
    assert [key for key, _ in rows] == list(config)
    for key, shown in rows:
        value = config[key]
        expected = "`null`" if value is None else str(value)
        assert shown.strip("`") == expected.strip("`"), (key, shown, value)


def test_pipeline_package_says_its_model_transforms_the_features(
    rendered_samples: dict[str, Rendered],
) -> None:
    """A Pipeline model without a scaler file: validate_model.py and the
    README say that the Pipeline transforms the features, not that they go
    to the model unscaled."""
    package_dir = rendered_samples["dataframe"].package_dir
    result = run_validate_model(package_dir)
    assert result.returncode == 0, result.stdout
    assert (
        "ℹ️  No scaler file: the model's Pipeline transforms the features in its "
        "first steps"
    ) in result.stdout.splitlines()
    assert "unscaled" not in result.stdout
    readme = (package_dir / "README.md").read_text(encoding="utf-8")
    assert (
        "| Scaler | none of its own: the model's Pipeline transforms the features "
        "in its first steps |"
    ) in readme.splitlines()


@pytest.mark.parametrize("package", ["demo", "scaled", "no_scaler", "dataframe"])
def test_metadata_and_manifest_have_every_key_with_its_type(
    package: str, demo: Rendered, rendered_samples: dict[str, Rendered]
) -> None:
    """metadata.json and deployment_manifest.json hold every key of the spec's
    schemas, with the spec's types (null where a value is unknown)."""
    rendered = demo if package == "demo" else rendered_samples[package]
    metadata = read_json(rendered.package_dir / "metadata.json")
    for section, keys in METADATA_SCHEMA.items():
        assert set(keys) <= set(metadata[section]), section
        for key, kind in keys.items():
            assert isinstance(metadata[section][key], kind), (section, key)
    metrics = metadata["evaluation_info"]["basic_metrics"]
    for key in ["accuracy", "precision", "recall", "f1_score", "anomaly_ratio"]:
        assert metrics[key] is None or isinstance(metrics[key], NUMBER), key
        # The demo's held-out evaluation measures every one.
        assert package != "demo" or isinstance(metrics[key], NUMBER), key
    assert isinstance(metrics["threshold_value"], NUMBER)
    assert metadata["deployment_info"]["status"] == "deployed"
    assert metadata["deployment_info"]["deployed_at"] == "2024-12-01T14:30:22Z"
    assert metadata["training_info"]["feature_count"] == len(
        metadata["training_info"]["feature_names"]
    )

    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    for key, kind in MANIFEST_TYPES.items():
        assert isinstance(manifest[key], kind), key
    assert manifest["model_version"] == VERSION
    assert manifest["package_format_version"] == "1.0"
    assert set(manifest["model_info"]) == {
        "model_type",
        "training_source",
        "training_id",
        "export_file",
    }
    assert manifest["training_info"] == metadata["training_info"]
    assert set(manifest["files"]) >= {
        "model_file",
        "scaler_file",
        "metadata_file",
        "validation_script",
        "inference_example",
        "requirements",
    }
    config = manifest["inference_config"]
    assert isinstance(config["threshold"], float)
    assert config["anomaly_ratio"] is None or isinstance(config["anomaly_ratio"], float)
    assert package != "demo" or isinstance(config["anomaly_ratio"], float)
    assert (config["score_percentile"], config["batch_size"]) == (90, 1000)
    assert config["timeout_seconds"] == 30
    artifacts = manifest["model_artifacts"]
    assert (
        artifacts["model_size_bytes"]
        == (rendered.package_dir / "model.joblib").stat().st_size
    )
    assert all(isinstance(v, int) for v in artifacts.values())


def test_hashes_equal_an_independent_sha256(demo: Rendered) -> None:
    """file_integrity covers every file but the manifest and SHA256SUMS, and each
    hash equals hashlib's; `sha256sum -c SHA256SUMS` passes."""
    manifest = read_json(demo.package_dir / "deployment_manifest.json")
    hashes = manifest["file_integrity"]
    assert set(hashes) == files_in(demo.package_dir) - {
        "deployment_manifest.json",
        "SHA256SUMS",
    }
    assert list(hashes)[:3] == ["model.joblib", "scaler.joblib", "metadata.json"]
    for name, digest in hashes.items():
        assert digest == sha256(demo.package_dir / name), name
    total = sum((demo.package_dir / name).stat().st_size for name in hashes)
    assert manifest["model_artifacts"]["total_package_size"] == total
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"],
        cwd=demo.package_dir,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "deployment_manifest.json: OK" in check.stdout


def test_zip_has_one_top_folder_and_passes_unzip_test(demo: Rendered) -> None:
    """The zip holds one top folder with every package file, `unzip -t` passes,
    and its .sha256 sidecar checks."""
    with zipfile.ZipFile(demo.zip_path) as archive:
        names = archive.namelist()
    top = demo.package_dir.name
    assert {name.split("/")[0] for name in names} == {top}
    assert {name[len(top) + 1 :] for name in names if not name.endswith("/")} == (
        files_in(demo.package_dir)
    )
    assert subprocess.run(["unzip", "-t", str(demo.zip_path)]).returncode == 0
    check = subprocess.run(
        ["sha256sum", "-c", demo.zip_path.name + ".sha256"], cwd=demo.output_dir
    )
    assert check.returncode == 0


def test_rendered_zip_entries_carry_the_time_of_the_version(demo: Rendered) -> None:
    """Every entry of a rendered package's zip is dated with the UTC time its
    version names (YYYYMMDD_HHMMSS), as zipfile reads it."""
    named = datetime.strptime(VERSION, "%Y%m%d_%H%M%S").timetuple()[:6]
    with zipfile.ZipFile(demo.zip_path) as archive:
        dates = {info.filename: info.date_time for info in archive.infolist()}
    assert len(dates) == len(files_in(demo.package_dir)) + 1  # and the top folder
    assert set(dates.values()) == {named}, dates


def test_unzipped_package_validates_from_anywhere(
    demo: Rendered, tmp_path: Path
) -> None:
    """validate_model.py checks the folder it is given, from anywhere: run
    from elsewhere, one extracted copy's script passes an intact copy and
    fails a tampered one, naming the file."""
    for copy in ("intact", "tampered"):
        subprocess.run(
            ["unzip", "-q", str(demo.zip_path), "-d", str(tmp_path / copy)],
            check=True,
        )
    intact = tmp_path / "intact" / demo.package_dir.name
    tampered = tmp_path / "tampered" / demo.package_dir.name
    with open(tampered / "model.joblib", "ab") as stream:
        stream.write(b"\0")
    script = str(intact / "validate_model.py")

    def validate(folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, script, str(folder)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=consumer_environment(),
        )

    passed = validate(intact)
    assert passed.returncode == 0, passed.stdout
    assert passed.stdout.splitlines()[-1] == (
        "🎉 Model validation completed successfully!"
    )
    failed = validate(tampered)
    assert failed.returncode == 1, failed.stdout
    assert any(
        line.startswith("❌ model.joblib: ") for line in failed.stdout.splitlines()
    ), failed.stdout


def test_artifact_paths_starting_with_a_tilde_are_in_the_home_folder(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """model_path=~/... (quoted, so no shell expands it) is found in the
    builder's home folder, whatever folder cookiecutter runs in."""
    directory, _ = artifacts
    home = tmp_path / "home"
    (home / "arts").mkdir(parents=True)
    for name in ("model.joblib", "scaler.joblib", "metadata.json"):
        shutil.copy(directory / "scaled" / name, home / "arts" / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rendered = run_cookiecutter(
        tmp_path / "out",
        "model_path=~/arts/model.joblib",
        "scaler_path=~/arts/scaler.joblib",
        "metadata_path=~/arts/metadata.json",
        "create_zip=no",
        cwd=elsewhere,
        env={"HOME": str(home)},
    )
    assert rendered.returncode == 0, rendered.stderr
    for name in ("model.joblib", "scaler.joblib"):
        assert (rendered.package_dir / name).read_bytes() == (
            home / "arts" / name
        ).read_bytes()


def test_demo_metrics_are_measured(demo: Rendered) -> None:
    """The demo's metadata carries real metrics with the methods named."""
    metadata = read_json(demo.package_dir / "metadata.json")
    evaluation = metadata["evaluation_info"]
    metrics = evaluation["basic_metrics"]
    assert 0.9 < metrics["accuracy"] <= 1.0
    assert 0.5 < metrics["recall"] <= 1.0
    assert metrics["threshold_value"] == pytest.approx(0.5)
    assert 0 < evaluation["cross_validation_score"] <= 1
    assert "F1" in evaluation["cross_validation_method"]
    assert set(evaluation["feature_importance"]) == set(
        metadata["training_info"]["feature_names"]
    )
    assert evaluation["feature_importance_method"]
    assert metadata["training_info"]["training_duration"] > 0
    assert metadata["training_info"]["training_samples"] > 1000


def test_demo_metrics_are_those_of_its_held_out_rows(demo: Rendered) -> None:
    """The demo's basic_metrics are the rendered package's own predictions on
    the held-out split of the dataset metadata.json names, scored against its
    labels by scikit-learn, to the 6 decimals recorded."""
    metadata = read_json(demo.package_dir / "metadata.json")
    dataset = metadata["training_info"]["dataset"]
    X, y, _ = make_dataset(
        dataset["n_samples"], dataset["anomaly_fraction"], dataset["seed"]
    )
    X_train, X_test, _, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=dataset["seed"], stratify=y
    )
    assert len(X_train) == metadata["training_info"]["training_samples"]
    inference = load_package_module(demo.package_dir).ModelInference(
        demo.package_dir, environ={}
    )
    result = inference.predict(X_test)
    predicted = result["predictions"]
    measured = {
        "accuracy": accuracy_score(y_test, predicted),
        "precision": precision_score(y_test, predicted),
        "recall": recall_score(y_test, predicted),
        "f1_score": f1_score(y_test, predicted),
        "threshold_value": result["threshold"],
        "anomaly_ratio": result["anomaly_count"] / result["total_samples"],
    }
    assert metadata["evaluation_info"]["basic_metrics"] == {
        name: round(float(value), 6) for name, value in measured.items()
    }


def test_requirements_pin_the_model_scikit_learn(demo: Rendered) -> None:
    """requirements.txt has the spec's floors, pins scikit-learn exactly, and
    asks for numpy 2 when the artifacts' pickles name numpy._core (as numpy 2
    writes them), a module numpy 1 does not have, saying why."""
    import sklearn

    pickles = b"".join(
        (demo.package_dir / name).read_bytes()
        for name in ("model.joblib", "scaler.joblib")
    )
    core = b"numpy._core" in pickles
    text = (demo.package_dir / "requirements.txt").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "joblib>=1.3.0",
        "numpy>=2.0" if core else "numpy>=1.21.0",
        f"scikit-learn=={sklearn.__version__}",
        "pandas>=1.3.0",
    ]
    why = "# numpy 2 or later: the model's pickles name numpy._core"
    assert (why in text) == core


@pytest.mark.parametrize(
    "modules, floor",
    [
        ({"sklearn.ensemble._iforest", "numpy._core.multiarray", "numpy"}, "2.0"),
        ({"numpy._core"}, "2.0"),
        ({"sklearn.ensemble._iforest", "numpy.core.multiarray", "numpy"}, "1.21.0"),
        ({"numpy._corex"}, "1.21.0"),
        (set(), "1.21.0"),
    ],
)
def test_numpy_floor_follows_the_modules_the_pickles_name(
    modules: set[str], floor: str
) -> None:
    """Pickles that name numpy._core (written by numpy 2) need numpy 2; those
    that name numpy.core (numpy 1) load under either, so keep the
    specification's floor."""
    assert numpy_floor(modules) == floor


def test_demo_model_is_reproducible(demo: Rendered, tmp_path: Path) -> None:
    """Rendering the demo again gives the same model and scaler bytes."""
    again = run_cookiecutter(tmp_path)
    assert again.returncode == 0, again.stderr
    for name in ("model.joblib", "scaler.joblib"):
        assert sha256(again.package_dir / name) == sha256(demo.package_dir / name)


def test_replay_from_another_folder_rebuilds_the_same_package(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """``--replay`` run from another folder, with the template path typed
    relative to that folder, finds the hooks and builds the same zip."""
    directory, samples = artifacts
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replays'}\n", encoding="utf-8")
    # The first run's folder lies deeper than the second's.
    first, second = tmp_path / "first" / "a" / "b" / "c", tmp_path / "second"
    first.mkdir(parents=True)
    second.mkdir()
    built = run_cookiecutter(
        first,
        *(
            f"{key}={directory / value}"
            for key, value in samples["no_scaler"].items()
            if key.endswith("_path")
        ),
        f"feature_names={samples['no_scaler']['feature_names']}",
        cwd=first,
        template=Path(os.path.relpath(TEMPLATE_DIR, first)),
        extra_args=("--config-file", str(config)),
    )
    assert built.returncode == 0, built.stderr
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            os.path.relpath(TEMPLATE_DIR, second),
            "--replay",
            "--config-file",
            str(config),
            "--output-dir",
            str(second),
        ],
        cwd=second,
        capture_output=True,
        text=True,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert sha256(second / built.zip_path.name) == sha256(built.zip_path)


def test_artifacts_by_relative_paths_keep_the_training_metadata(
    rendered_samples: dict[str, Rendered], artifacts: tuple[Path, dict]
) -> None:
    """Relative model, scaler and metadata paths resolve against the directory
    cookiecutter ran in; the training service's values are kept."""
    directory, _ = artifacts
    rendered = rendered_samples["scaled"]
    for name in ("model.joblib", "scaler.joblib"):
        assert sha256(rendered.package_dir / name) == sha256(
            directory / "scaled" / name
        )
    given = read_json(directory / "scaled" / "metadata.json")
    metadata = read_json(rendered.package_dir / "metadata.json")
    assert metadata["model_info"]["training_id"] == "train-0042"
    assert metadata["training_info"]["export_file_size"] == 1048576
    assert metadata["evaluation_info"] == given["evaluation_info"]
    assert metadata["deployment_info"]["deployed_by"]


def test_readme_gives_the_anomaly_ratio_drift_reports_expect(tmp_path: Path) -> None:
    """A model with contamination "auto" and no metadata, with reference
    data: the README gives the share of reference rows flagged as the ratio
    drift_report expects, and does not say that none was recorded."""
    X, _ = make_data(500)
    model = IsolationForest(n_estimators=20, random_state=0).fit(X)
    joblib.dump(model, tmp_path / "model.joblib")
    write_reference_csv(tmp_path / "reference.csv", reference_rows(), FEATURES)
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        f"feature_names={','.join(FEATURES)}",
        f"reference_data_path={tmp_path / 'reference.csv'}",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr
    monitoring = read_json(rendered.package_dir / "metadata.json")["monitoring"]
    share = f"{round(monitoring['anomaly_ratio'] * 100, 2):g}%"
    readme = (rendered.package_dir / "README.md").read_text(encoding="utf-8")
    assert (
        "No anomaly ratio was recorded with the model; on its reference data this\n"
        f"package flags {share} of the rows"
    ) in readme
    assert (f"rows ({share}): the ratio `drift_report` expects.") in readme
    assert "No anomaly ratio was recorded for this package" not in readme


def test_a_builders_threshold_gets_no_anomaly_ratio_measured_at_another(
    tmp_path: Path,
) -> None:
    """contamination=0.05 is the share flagged at the model's own boundary,
    not at a threshold the builder sets: without reference data no ratio is
    recorded or expected; with it, the reference rows flagged at that
    threshold are. drift_report expects that ratio, and none once
    MODEL_THRESHOLD moves the threshold."""
    X, _ = make_data(500)
    model = IsolationForest(n_estimators=20, contamination=0.05, random_state=0)
    joblib.dump(model.fit(X), tmp_path / "model.joblib")
    write_reference_csv(tmp_path / "reference.csv", reference_rows(), FEATURES)
    answers = [
        f"model_path={tmp_path / 'model.joblib'}",
        f"feature_names={','.join(FEATURES)}",
        "threshold=0.45",
        "create_zip=no",
    ]
    bare = run_cookiecutter(tmp_path / "bare", *answers)
    assert bare.returncode == 0, bare.stderr
    metadata = read_json(bare.package_dir / "metadata.json")
    assert metadata["evaluation_info"]["basic_metrics"]["threshold_value"] == 0.45
    assert metadata["evaluation_info"]["basic_metrics"]["anomaly_ratio"] is None
    config = read_json(bare.package_dir / "deployment_manifest.json")[
        "inference_config"
    ]
    assert config["anomaly_ratio"] is None
    readme = (bare.package_dir / "README.md").read_text(encoding="utf-8")
    assert "No anomaly ratio was recorded for this package at its threshold" in readme
    assert "| Anomaly ratio | not recorded |" in readme
    assert "(5%)" not in readme

    referenced = run_cookiecutter(
        tmp_path / "referenced",
        *answers,
        f"reference_data_path={tmp_path / 'reference.csv'}",
    )
    assert referenced.returncode == 0, referenced.stderr
    monitoring = read_json(referenced.package_dir / "metadata.json")["monitoring"]
    config = read_json(referenced.package_dir / "deployment_manifest.json")[
        "inference_config"
    ]
    assert config["anomaly_ratio"] == monitoring["anomaly_ratio"] > 0.05
    readme = (referenced.package_dir / "README.md").read_text(encoding="utf-8")
    assert "| Anomaly ratio | not recorded |" in readme
    assert "(5%)" not in readme
    package = load_package_module(referenced.package_dir)
    inference = package.ModelInference(referenced.package_dir, environ={})
    report = inference.drift_report(reference_rows())
    assert report["anomaly_ratio"]["observed"] == monitoring["anomaly_ratio"]
    assert report["anomaly_ratio"]["expected"] == monitoring["anomaly_ratio"]
    moved = package.ModelInference(
        referenced.package_dir, environ={"MODEL_THRESHOLD": "0.6"}
    )
    report = moved.drift_report(reference_rows())
    assert report["anomaly_ratio"]["expected"] is None
    assert report["anomaly_ratio"]["observed"] < monitoring["anomaly_ratio"]


def test_given_metrics_get_no_threshold_they_were_not_measured_at(
    tmp_path: Path,
) -> None:
    """Metrics from the training service that do not say at which threshold
    they were measured keep threshold_value null, whatever threshold the
    builder gives, and their anomaly ratio is not taken as the share this
    package expects to flag at its own."""
    X, _ = make_data(500)
    model = IsolationForest(n_estimators=20, random_state=0)
    joblib.dump(model.fit(X), tmp_path / "model.joblib")
    given = {
        "model_info": {},
        "training_info": {"feature_names": FEATURES},
        "evaluation_info": {"basic_metrics": {"precision": 0.8, "anomaly_ratio": 0.05}},
    }
    rendered = render_with_metadata(
        tmp_path, tmp_path / "model.joblib", given, "threshold=0.7"
    )
    metadata = read_json(rendered.package_dir / "metadata.json")
    assert metadata["evaluation_info"]["basic_metrics"] == {
        "accuracy": None,
        "precision": 0.8,
        "recall": None,
        "f1_score": None,
        "threshold_value": None,
        "anomaly_ratio": 0.05,
    }
    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    assert manifest["inference_config"]["threshold"] == 0.7
    assert manifest["inference_config"]["anomaly_ratio"] is None


def test_package_without_scaler_has_no_scaler_anywhere(
    rendered_samples: dict[str, Rendered],
) -> None:
    """Without a scaler: no scaler.joblib, scaler_file null, no scaler hash, size 0."""
    rendered = rendered_samples["no_scaler"]
    assert files_in(rendered.package_dir) == PACKAGE_FILES
    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    assert manifest["files"]["scaler_file"] is None
    assert "scaler.joblib" not in manifest["file_integrity"]
    assert manifest["model_artifacts"]["scaler_size_bytes"] == 0
    result = run_validate_model(rendered.package_dir)
    assert result.returncode == 0, result.stdout
    assert "No scaler in this package" in result.stdout


def test_model_without_metadata_records_unknowns_as_null(
    rendered_samples: dict[str, Rendered],
) -> None:
    """Without metadata, what the model cannot tell is null, never invented."""
    metadata = read_json(rendered_samples["no_scaler"].package_dir / "metadata.json")
    metrics = metadata["evaluation_info"]["basic_metrics"]
    assert [metrics[k] for k in ("accuracy", "precision", "recall", "f1_score")] == [
        None
    ] * 4
    assert metrics["anomaly_ratio"] == 0.05  # the model's contamination
    assert metadata["training_info"]["training_duration"] is None
    assert metadata["model_info"]["model_type"] == "IsolationForest"
    assert metadata["training_info"]["model_parameters"]["n_estimators"] == 30


def test_every_answer_given_reaches_the_package(tmp_path: Path) -> None:
    """The answers a builder gives land where the README says: the free-text
    ones in metadata.json (and the manifest's model_info), the deployment
    facts from this build, and the inference settings in inference_config,
    which the package's ModelInference then uses."""
    import platform

    X, _ = make_data(300)
    joblib.dump(
        IsolationForest(n_estimators=20, random_state=0).fit(X),
        tmp_path / "model.joblib",
    )
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        f"feature_names={','.join(FEATURES)}",
        "training_source=netflow export",
        "training_id=train-0042",
        "export_file=netflow_2024_12.csv",
        "deployed_by=Jane Builder",
        "score_percentile=75",
        "batch_size=50",
        "timeout_seconds=5",
        "missing_features=zero",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr
    metadata = read_json(rendered.package_dir / "metadata.json")
    given = {
        "training_source": "netflow export",
        "training_id": "train-0042",
        "export_file": "netflow_2024_12.csv",
    }
    assert {key: metadata["model_info"][key] for key in given} == given
    assert metadata["deployment_info"] == {
        "status": "deployed",
        "deployed_at": "2024-12-01T14:30:22Z",
        "deployed_by": "Jane Builder",
    }
    assert metadata["build_environment"]["python"] == platform.python_version()
    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    assert {key: manifest["model_info"][key] for key in given} == given
    assert manifest["deployment_info"] == metadata["deployment_info"]
    config = manifest["inference_config"]
    assert {
        key: config[key]
        for key in (
            "score_percentile",
            "batch_size",
            "timeout_seconds",
            "missing_features",
            "out_of_range",
        )
    } == {
        "score_percentile": 75,
        "batch_size": 50,
        "timeout_seconds": 5,
        "missing_features": "zero",
        "out_of_range": "allow",
    }
    inference = load_package_module(rendered.package_dir).ModelInference(
        rendered.package_dir, environ={}
    )
    assert (inference.batch_size, inference.timeout_seconds) == (50, 5)
    assert inference.missing_features == "zero"


def test_dataframe_model_brings_its_own_feature_names(
    rendered_samples: dict[str, Rendered],
) -> None:
    """A Pipeline fitted on a DataFrame names the features itself."""
    metadata = read_json(rendered_samples["dataframe"].package_dir / "metadata.json")
    assert metadata["training_info"]["feature_names"][0] == "col_bytes_in"
    assert (
        metadata["model_info"]["model_type"]
        == "Pipeline(StandardScaler, IsolationForest)"
    )


def table_problems(markdown: str) -> list[str]:
    """Lines that break a Markdown table: a table row after a line that is
    neither a row nor a table's start, or a table without its ``|---|`` line."""
    problems = []
    lines = markdown.splitlines()
    in_code = False
    for number, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("|"):
            continue
        before = lines[number - 1] if number else ""
        after = lines[number + 1] if number + 1 < len(lines) else ""
        starts_table = not before.startswith("|") and after.startswith("|---")
        if not (before.startswith("|") or starts_table):
            problems.append(f"line {number + 1}: {line[:60]}")
    return problems


def test_every_readme_table_is_whole(
    demo: Rendered, rendered_samples: dict[str, Rendered]
) -> None:
    """Every table row of the rendered READMEs belongs to a table: a header,
    its ``|---|`` line, then rows, with no blank line or text among them."""
    packages = [demo, *rendered_samples.values()]
    for rendered in packages:
        readme = (rendered.package_dir / "README.md").read_text(encoding="utf-8")
        assert table_problems(readme) == [], rendered.package_dir.name
    template_readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert table_problems(template_readme) == []


def test_given_metadata_cannot_misdescribe_the_model(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """The training service's metadata.json with an empty model_parameters,
    its own ``dataset`` text and model_type spelled isolation_forest: the
    package builds; model_parameters are the model's own; the README names
    the model as loaded and claims no synthetic dataset of the demo."""
    directory, samples = artifacts
    metadata = training_service_metadata(FEATURES)
    metadata["model_info"]["model_type"] = "isolation_forest"
    metadata["training_info"]["model_parameters"] = {}
    metadata["training_info"]["dataset"] = "production logs, January"
    given = tmp_path / "metadata.json"
    given.write_text(json.dumps(metadata))
    answers = {**samples["scaled"], "metadata_path": str(given)}
    rendered = run_cookiecutter(tmp_path / "out", *answers_for(answers), cwd=directory)
    assert rendered.returncode == 0, rendered.stderr
    built = read_json(rendered.package_dir / "metadata.json")
    model = joblib.load(directory / samples["scaled"]["model_path"])
    assert built["training_info"]["model_parameters"]["n_estimators"] == 50
    assert set(built["training_info"]["model_parameters"]) == set(model.get_params())
    assert built["training_info"]["dataset"] == "production logs, January"
    assert built["model_info"]["model_type"] == "isolation_forest"
    readme = (rendered.package_dir / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Model 20241201_143022: IsolationForest anomaly")
    assert "synthetic" not in readme
    assert "✅ Model loaded successfully\n   Model type: IsolationForest\n" in readme


def render_model_and_scaler(
    tmp_path: Path, model: Any, scaler: Any, *answers: str
) -> Rendered:
    """Dump ``model`` and ``scaler`` into ``tmp_path`` and render a package of
    them (into ``tmp_path / "out"``) that builds."""
    joblib.dump(model, tmp_path / "model.joblib")
    joblib.dump(scaler, tmp_path / "scaler.joblib")
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        f"scaler_path={tmp_path / 'scaler.joblib'}",
        *answers,
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered


def assert_validates_and_scores(
    rendered: Rendered, model: Any, scaler: Any, rows: np.ndarray
) -> None:
    """The package passes validate_model.py with every feature check, and
    scores ``rows`` (columns a, b, c...) as scikit-learn does."""
    names = "abcdefghij"[: rows.shape[1]]
    result = run_validate_model(rendered.package_dir)
    assert result.returncode == 0, result.stdout
    assert (
        f"✅ {len(names)} features agree: manifest, metadata.json, scaler, model"
    ) in result.stdout.splitlines()
    inference = load_package_module(rendered.package_dir).ModelInference(
        rendered.package_dir, environ={}
    )
    records = [dict(zip(names, row, strict=True)) for row in rows.tolist()]
    expected = -model.score_samples(scaler.transform(rows))
    assert inference.predict(records)["scores"] == expected.tolist()


def test_a_transformer_that_widens_the_features_is_packaged(tmp_path: Path) -> None:
    """A PolynomialFeatures "scaler" (4 features in, 14 out) before an
    IsolationForest fitted on its output: the package builds, passes its own
    validation, and scores as scikit-learn does."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 4))
    widen = PolynomialFeatures(degree=2, include_bias=False).fit(X)
    model = IsolationForest(n_estimators=20, random_state=0).fit(widen.transform(X))
    rendered = render_model_and_scaler(tmp_path, model, widen, "feature_names=a,b,c,d")
    assert_validates_and_scores(rendered, model, widen, rng.normal(size=(40, 4)) * 2)


def test_a_transformer_that_takes_positive_values_only_is_packaged(
    tmp_path: Path,
) -> None:
    """A Box-Cox PowerTransformer refuses rows of zeros, so the self-test
    rows cannot be made up: without reference data the build is refused,
    naming reference_data_path, and so is reference data with a zero; with
    positive reference data, the package builds, validates and scores as
    scikit-learn does."""
    rng = np.random.default_rng(12)
    X = rng.lognormal(size=(300, 3))
    box_cox = PowerTransformer(method="box-cox").fit(X)
    model = IsolationForest(n_estimators=20, random_state=0).fit(box_cox.transform(X))
    joblib.dump(model, tmp_path / "model.joblib")
    joblib.dump(box_cox, tmp_path / "scaler.joblib")
    answers = [
        f"model_path={tmp_path / 'model.joblib'}",
        f"scaler_path={tmp_path / 'scaler.joblib'}",
        "feature_names=a,b,c",
    ]
    refused = run_cookiecutter(tmp_path / "refused", *answers)
    assert refused.returncode != 0
    assert (
        "ERROR: reference_data_path (''): the self-test needs rows the model can "
        "score, and the rows made up without reference data cannot be (The "
        "Box-Cox transformation can only be applied to strictly positive data)"
    ) in refused.stderr
    assert list((tmp_path / "refused").iterdir()) == []
    with_zero = tmp_path / "with_zero.csv"
    with_zero.write_text("a,b,c\n1.0,2.0,3.0\n0.0,1.0,1.0\n", encoding="utf-8")
    unscorable = run_cookiecutter(
        tmp_path / "unscorable", *answers, f"reference_data_path={with_zero}"
    )
    assert unscorable.returncode != 0
    assert (
        f"ERROR: reference_data_path ('{with_zero}'): the model cannot score these "
        "rows (The Box-Cox transformation can only be applied to strictly "
        "positive data); give rows like the ones it was trained on"
    ) in unscorable.stderr
    reference = tmp_path / "reference.csv"
    rows = rng.lognormal(size=(200, 3))
    reference.write_text(
        "a,b,c\n" + "".join(",".join(map(repr, row)) + "\n" for row in rows.tolist()),
        encoding="utf-8",
    )
    rendered = run_cookiecutter(
        tmp_path / "out", *answers, f"reference_data_path={reference}"
    )
    assert rendered.returncode == 0, rendered.stderr
    assert_validates_and_scores(rendered, model, box_cox, rows[:40])


def test_model_fitted_on_named_columns_names_an_unnamed_scalers_features(
    tmp_path: Path,
) -> None:
    """A StandardScaler fitted on an array, then an IsolationForest fitted on
    its output as a DataFrame with named columns: the model's names are the
    features' names; the package builds, validates and scores as
    scikit-learn does."""
    import pandas as pd

    rng = np.random.default_rng(12)
    X = rng.normal(size=(300, 3))
    scaler = StandardScaler().fit(X)
    names = ["rx_bytes", "tx_bytes", "retries"]
    model = IsolationForest(n_estimators=20, random_state=0).fit(
        pd.DataFrame(scaler.transform(X), columns=names)
    )
    rendered = render_model_and_scaler(tmp_path, model, scaler)
    metadata = read_json(rendered.package_dir / "metadata.json")
    assert metadata["training_info"]["feature_names"] == names
    assert run_validate_model(rendered.package_dir).returncode == 0
    inference = load_package_module(rendered.package_dir).ModelInference(
        rendered.package_dir, environ={}
    )
    rows = rng.normal(size=(30, 3))
    records = [dict(zip(names, row, strict=True)) for row in rows.tolist()]
    scaled = pd.DataFrame(scaler.transform(rows), columns=names)
    assert (
        inference.predict(records)["scores"] == (-model.score_samples(scaled)).tolist()
    )


def test_model_fitted_on_a_mixing_scalers_named_output_does_not_name_features(
    tmp_path: Path,
) -> None:
    """A PCA fitted on an array, then an IsolationForest fitted on its output
    as a DataFrame (pc1, pc2, pc3): those names are the PCA's outputs, not
    the features it takes. Without feature names the build is refused
    saying so, and nothing is left; with them it builds on those names and
    scores as scikit-learn does."""
    import pandas as pd
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(13)
    X = rng.normal(size=(300, 3))
    pca = PCA(3).fit(X)
    outputs = ["pc1", "pc2", "pc3"]
    model = IsolationForest(n_estimators=20, random_state=0).fit(
        pd.DataFrame(pca.transform(X), columns=outputs)
    )
    joblib.dump(model, tmp_path / "model.joblib")
    joblib.dump(pca, tmp_path / "scaler.joblib")
    answers = [
        f"model_path={tmp_path / 'model.joblib'}",
        f"scaler_path={tmp_path / 'scaler.joblib'}",
    ]
    refused = run_cookiecutter(tmp_path / "refused", *answers)
    assert refused.returncode != 0
    assert (
        "ERROR: feature_names (''): the scaler was fitted on a bare array, and the "
        "model's column names ['pc1', 'pc2', 'pc3'] name what the PCA puts out, "
        "which it does not say are the features it takes, each kept in its "
        "column; give feature_names=name1,name2,... (3 names)"
    ) in refused.stderr.splitlines()
    assert list((tmp_path / "refused").iterdir()) == []

    names = ["rssi", "snr", "retries"]
    rendered = run_cookiecutter(
        tmp_path / "out", *answers, f"feature_names={','.join(names)}"
    )
    assert rendered.returncode == 0, rendered.stderr
    metadata = read_json(rendered.package_dir / "metadata.json")
    assert metadata["training_info"]["feature_names"] == names
    inference = load_package_module(rendered.package_dir).ModelInference(
        rendered.package_dir, environ={}
    )
    rows = rng.normal(size=(30, 3))
    records = [dict(zip(names, row, strict=True)) for row in rows.tolist()]
    scaled = pd.DataFrame(pca.transform(rows), columns=outputs)
    assert inference.predict(records)["scores"] == pytest.approx(
        (-model.score_samples(scaled)).tolist(), rel=0, abs=1e-12
    )


def test_readme_says_how_the_demo_is_scored(demo: Rendered) -> None:
    """The demo's README says that its IsolationForest is scored by a flattened
    copy."""
    readme = (demo.package_dir / "README.md").read_text(encoding="utf-8")
    assert "`ModelInference` scores this IsolationForest with a flattened" in readme
    assert "scored by scikit-learn itself" not in readme
    assert "on the boundary itself" not in readme


def test_readme_tells_the_two_anomaly_ratios_apart(demo: Rendered) -> None:
    """The evaluation's anomaly ratio and the share the package expects to
    flag (its reference data's, drift_report's baseline) are two numbers,
    and the README says which is which."""
    metadata = read_json(demo.package_dir / "metadata.json")
    manifest = read_json(demo.package_dir / "deployment_manifest.json")
    evaluated = metadata["evaluation_info"]["basic_metrics"]["anomaly_ratio"]
    expected = manifest["inference_config"]["anomaly_ratio"]
    assert evaluated != expected
    readme = (demo.package_dir / "README.md").read_text(encoding="utf-8")
    text = " ".join(readme.split())
    assert (
        "The anomaly ratio is the share of records the model flagged in its "
        "evaluation (here: the share of held-out rows it flagged). The share this "
        "package expects to flag in production is another measure, "
        f"`inference_config.anomaly_ratio` ({expected}), taken at its threshold "
        "on its reference data"
    ) in text
    assert f"| Anomaly ratio | {evaluated} |" in readme


def test_readme_calls_a_contamination_ratio_what_it_is(tmp_path: Path) -> None:
    """A model packaged without metadata.json: its anomaly ratio is its
    contamination setting, and the README says so rather than calling it an
    evaluation's measure."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 3))
    scaler = StandardScaler().fit(X)
    model = IsolationForest(n_estimators=20, contamination=0.05, random_state=0)
    rendered = render_model_and_scaler(
        tmp_path,
        model.fit(scaler.transform(X)),
        scaler,
        "feature_names=a,b,c",
        "create_zip=no",
    )
    metadata = read_json(rendered.package_dir / "metadata.json")
    assert metadata["evaluation_info"]["basic_metrics"]["anomaly_ratio"] == 0.05
    readme = (rendered.package_dir / "README.md").read_text(encoding="utf-8")
    assert (
        "The anomaly ratio is the model's `contamination` setting: the share of its "
        "training rows beyond its own boundary, not a measured evaluation."
    ) in readme.splitlines()
    assert "flagged in its evaluation" not in readme


def test_another_outlier_detector_is_packaged_and_scored_by_scikit_learn(
    tmp_path: Path,
) -> None:
    """A OneClassSVM (score_samples and offset_, not a forest) builds, passes
    its own validation, scores as scikit-learn does, and its README says
    scikit-learn scores it."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    model = OneClassSVM(gamma="scale", nu=0.05).fit(X)
    model_path = tmp_path / "svm.joblib"
    joblib.dump(model, model_path)
    rendered = run_cookiecutter(
        tmp_path / "out", f"model_path={model_path}", "feature_names=a,b,c"
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (
        not load_package_module(rendered.package_dir)
        .ModelInference(rendered.package_dir, environ={})
        .fast_scoring
    )
    readme = (rendered.package_dir / "README.md").read_text(encoding="utf-8")
    assert "This model is scored by scikit-learn itself." in readme
    assert "scores this IsolationForest with a flattened copy" not in readme
    assert "# Model 20241201_143022: OneClassSVM anomaly detector" in readme
    assert (
        "`model.predict(X) == -1`, but on the boundary itself: this model's "
        "`score_samples` is `decision_function + offset_`"
    ) in " ".join(readme.split())
    inference = load_package_module(rendered.package_dir).ModelInference(
        rendered.package_dir, environ={}
    )
    rows = rng.normal(size=(50, 3)) * 3
    records = [dict(zip("abc", row, strict=True)) for row in rows.tolist()]
    result = inference.predict(records)
    assert result["scores"] == (-model.score_samples(rows)).tolist()
    assert result["predictions"] == (model.predict(rows) == -1).astype(int).tolist()
    assert run_validate_model(rendered.package_dir).returncode == 0


def test_same_version_and_artifacts_give_identical_zip_bytes(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """Two renders of the same artifacts with the same version give the same zip."""
    directory, samples = artifacts
    first = run_cookiecutter(
        tmp_path / "a", *answers_for(samples["scaled"]), cwd=directory, extra_args=()
    )
    second = run_cookiecutter(
        tmp_path / "b", *answers_for(samples["scaled"]), cwd=directory
    )
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()


def test_a_parameter_shown_by_its_address_gives_identical_zips(
    tmp_path: Path,
) -> None:
    """A model parameter recorded by its repr, whose default form holds a
    memory address (a RandomState as random_state), is recorded without it:
    two renders still give the same zip."""
    X = np.random.default_rng(0).normal(size=(100, 3))
    model = IsolationForest(n_estimators=5, random_state=np.random.RandomState(0))
    joblib.dump(model.fit(X), tmp_path / "model.joblib")
    answers = (f"model_path={tmp_path / 'model.joblib'}", "feature_names=a,b,c")
    first = run_cookiecutter(tmp_path / "a", *answers)
    second = run_cookiecutter(tmp_path / "b", *answers)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    metadata = json.loads((first.package_dir / "metadata.json").read_text())
    parameters = metadata["training_info"]["model_parameters"]
    assert parameters["random_state"] == "RandomState(MT19937)"
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()


def test_rerunning_the_hook_on_the_same_folder_is_idempotent(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """Rendering again over the same folder (as cruft does) changes no byte,
    and leaves nothing beside the package folder, zip and .sha256."""
    directory, samples = artifacts
    answers = answers_for(samples["no_scaler"])
    first = run_cookiecutter(tmp_path, *answers, cwd=directory)
    assert first.returncode == 0, first.stderr
    outputs = sorted(path.name for path in tmp_path.iterdir())
    before = {
        name: sha256(first.package_dir / name) for name in files_in(first.package_dir)
    }
    zip_before = first.zip_path.read_bytes()
    again = run_cookiecutter(
        tmp_path, *answers, cwd=directory, extra_args=("--overwrite-if-exists",)
    )
    assert again.returncode == 0, again.stderr
    after = {
        name: sha256(again.package_dir / name) for name in files_in(again.package_dir)
    }
    assert after == before
    assert again.zip_path.read_bytes() == zip_before
    assert sorted(path.name for path in tmp_path.iterdir()) == outputs
    assert outputs == sorted(
        [first.package_dir.name, first.zip_path.name, f"{first.zip_path.name}.sha256"]
    )


def test_failed_rebuild_over_a_package_leaves_it_as_it_was(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """Rendering again over a package with answers that fail once the model
    is loaded (a file that is not a pickle): the ERROR line, and the earlier
    package folder, zip and .sha256 exactly as they were, with nothing else
    beside them."""
    directory, samples = artifacts
    out = tmp_path / "out"
    first = run_cookiecutter(out, *answers_for(samples["scaled"]), cwd=directory)
    assert first.returncode == 0, first.stderr
    before = tree(out)
    not_a_model = tmp_path / "model.joblib"
    not_a_model.write_text("not a pickle\n")
    failed = run_cookiecutter(
        out,
        *answers_for({**samples["scaled"], "model_path": str(not_a_model)}),
        cwd=directory,
        extra_args=("--overwrite-if-exists",),
    )
    assert failed.returncode != 0
    assert f"ERROR: model_path ('{not_a_model}'): cannot be loaded" in failed.stderr
    assert tree(out) == before
    assert run_validate_model(first.package_dir).returncode == 0


def test_rebuild_over_a_folder_with_other_files_is_refused(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A file that is not the package's own in the folder rendered over (it
    would be packaged and hashed), or a folder that holds no package: refused
    before anything is written, naming it; everything stays as it was."""
    directory, samples = artifacts
    answers = answers_for(samples["no_scaler"])
    first = run_cookiecutter(tmp_path / "a", *answers, cwd=directory)
    assert first.returncode == 0, first.stderr
    (first.package_dir / ".env").write_text("SECRET=x\n")
    foreign = tmp_path / "b" / first.package_dir.name
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine\n")
    cases = {
        first.package_dir: "holds .env, which is not a file of the package built "
        "there; a rebuild would package it: move it out, or give another version",
        foreign: "already holds notes.txt and no package built by this template: "
        "remove it, or give another version",
    }
    for folder, message in cases.items():
        before = tree(folder.parent)
        again = run_cookiecutter(
            folder.parent,
            *answers,
            cwd=directory,
            extra_args=("--overwrite-if-exists",),
        )
        assert again.returncode != 0
        assert f"ERROR: package_name ('{folder.name}'): {folder} {message}" in (
            again.stderr
        )
        assert tree(folder.parent) == before


def test_rebuild_from_the_packages_own_artifacts_is_refused(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A rebuild whose model_path lies in the folder it replaces is refused
    before anything moves, saying to copy the file out; the package stays."""
    directory, samples = artifacts
    answers = answers_for(samples["no_scaler"])
    first = run_cookiecutter(tmp_path, *answers, cwd=directory)
    assert first.returncode == 0, first.stderr
    before = tree(tmp_path)
    own_model = first.package_dir / "model.joblib"
    again = run_cookiecutter(
        tmp_path,
        *answers,
        f"model_path={own_model}",
        cwd=directory,
        extra_args=("--overwrite-if-exists",),
    )
    assert again.returncode != 0
    assert (
        f"ERROR: model_path ('{own_model}'): lies in {first.package_dir}, the "
        "package folder this build replaces; copy it out of that folder first"
    ) in again.stderr
    assert tree(tmp_path) == before


def test_no_zip_beside_a_zip_of_an_earlier_build_is_refused(tmp_path: Path) -> None:
    """create_zip=no where a zip of that name exists: refused (the zip would
    not match the new folder), and the zip stays."""
    first = run_cookiecutter(tmp_path / "out")
    assert first.returncode == 0, first.stderr
    shutil.rmtree(first.package_dir)
    before = tree(tmp_path / "out")
    again = run_cookiecutter(tmp_path / "out", "create_zip=no")
    assert again.returncode != 0
    assert (
        f"ERROR: create_zip ('no'): {first.zip_path} from an earlier build would "
        "stay beside a package it does not match: remove it, or answer yes"
    ) in again.stderr
    assert tree(tmp_path / "out") == before


def test_no_zip_when_asked(tmp_path: Path) -> None:
    """create_zip=no leaves the validated folder and no zip; its README
    does not tell the reader to unzip, check or download a zip (only the
    Spark section speaks of zips, which score_dataframe makes itself)."""
    rendered = run_cookiecutter(tmp_path, "create_zip=no")
    assert rendered.returncode == 0, rendered.stderr
    assert [p.name for p in tmp_path.iterdir()] == [rendered.package_dir.name]
    readme = (rendered.package_dir / "README.md").read_text(encoding="utf-8")
    before_spark, spark_and_after = readme.split("## Scoring on Spark")
    outside_spark = before_spark + spark_and_after.split("## Configuration")[1]
    assert ".zip" not in outside_spark
    assert "unzip" not in outside_spark
    assert "sha256sum -c SHA256SUMS" in readme


def test_a_file_added_to_the_template_is_packaged_and_hashed(tmp_path: Path) -> None:
    """A file a builder adds to the template's package folder ships, hashed."""
    template = template_copy(tmp_path)
    (template / "{{cookiecutter.package_name}}" / "CHANGELOG.md").write_text(
        "Model {{ cookiecutter.version }}\n"
    )
    rendered = run_cookiecutter(tmp_path / "out", "create_zip=yes", template=template)
    assert rendered.returncode == 0, rendered.stderr
    added = rendered.package_dir / "CHANGELOG.md"
    assert added.read_text() == f"Model {VERSION}\n"
    manifest = read_json(rendered.package_dir / "deployment_manifest.json")
    assert manifest["file_integrity"]["CHANGELOG.md"] == sha256(added)
    assert (
        f"{sha256(added)}  CHANGELOG.md"
        in (rendered.package_dir / "SHA256SUMS").read_text()
    )
    with zipfile.ZipFile(rendered.zip_path) as archive:
        assert f"{rendered.package_dir.name}/CHANGELOG.md" in archive.namelist()


@pytest.mark.parametrize(
    "answer, refused_by",
    [
        ("", None),
        ("version=2024", "pre_gen_project"),
        ("threshold=7", "post_gen_project"),
    ],
)
def test_rendered_hooks_leave_no_copy_with_the_answers(
    tmp_path: Path, answer: str, refused_by: str | None
) -> None:
    """Cookiecutter writes each hook, rendered with every answer, to the
    temporary folder and never removes it; each hook removes its copy, after
    a build and after a refusal alike."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    answers = ["deployed_by=Jane Builder", *([answer] if answer else [])]
    rendered = run_cookiecutter(
        tmp_path / "out", *answers, env={"TMPDIR": str(temporary)}
    )
    if refused_by is None:
        assert rendered.returncode == 0, rendered.stderr
    else:
        assert rendered.returncode != 0
        assert f"{refused_by} hook script didn't exit successfully" in rendered.stdout
    assert list(temporary.iterdir()) == []


def test_without_its_removal_a_rendered_hook_is_left_with_the_answers(
    tmp_path: Path,
) -> None:
    """The control of the test above: from a template whose pre-generation
    hook does not remove itself, cookiecutter leaves its rendered copy in
    that temporary folder, holding the answers."""
    template = template_copy(tmp_path)
    hook = template / "hooks" / "pre_gen_project.py"
    text = hook.read_text(encoding="utf-8")
    assert text.count("    forget_rendered_hook(Path(__file__))\n") == 1
    hook.write_text(
        text.replace("    forget_rendered_hook(Path(__file__))\n", ""), encoding="utf-8"
    )
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    rendered = run_cookiecutter(
        tmp_path / "out",
        "deployed_by=Jane Builder",
        "version=2024",
        template=template,
        env={"TMPDIR": str(temporary)},
    )
    assert rendered.returncode != 0
    (left,) = temporary.iterdir()
    assert left.suffix == ".py"
    assert "Jane Builder" in left.read_text(encoding="utf-8")
