"""Turn a rendered package folder into a finished, verified deployment package.

The steps, in order: put model.joblib (and scaler.joblib) in the folder,
check them, write metadata.json, render README.md and requirements.txt with
the model's facts, write deployment_manifest.json with the hashes and the
self-test, write SHA256SUMS, run the package's own validate_model.py, and
zip the folder. Running it again on the same folder gives the same files.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2

from .answers import AnswerError, Answers
from .archive import SUMS_FILE, copy_file, write_json, write_sha256sums, write_zip
from .documents import (
    API_SERVICE,
    INFERENCE_EXAMPLE,
    MANIFEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    README_FILE,
    REQUIREMENTS_FILE,
    SCALER_FILE,
    VALIDATION_SCRIPT,
    build_manifest,
    build_metadata,
    read_given_metadata,
)

RENDERED_BY_BUILD = [README_FILE, REQUIREMENTS_FILE]
SELF_TEST_STEPS = [0.0, 1.0, -1.0, 3.0, 8.0]
# Variables a consumer sets to tune the package; the builder's own must not
# change what the build's self-validation sees.
CONSUMER_SETTINGS = {
    "MODEL_THRESHOLD",
    "MODEL_BATCH_SIZE",
    "MODEL_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
}


class BuildError(RuntimeError):
    """The package could not be built; the message says why and what to do."""


def require_scikit_learn() -> None:
    """Fail with an install hint unless the libraries that load a model import."""
    missing = [
        name
        for name in ("sklearn", "joblib", "numpy")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise BuildError(
            f"{', '.join(missing)} cannot be imported by the Python running "
            f"cookiecutter ({sys.executable}), and loading the model needs them: "
            "pip install scikit-learn (with pipx: pipx inject cookiecutter "
            "scikit-learn)"
        )


def load_package_module(folder: Path) -> ModuleType:
    """Import the package's own inference_example.py without writing byte-code."""
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location(
        f"inference_example_{abs(hash(folder))}", folder / INFERENCE_EXAMPLE
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def place_artifacts(answers: Answers, folder: Path) -> dict[str, Any] | None:
    """Copy the builder's artifacts in, or train the demo; return the demo facts."""
    if answers.model_file is None:
        from .demo import train_demo

        return train_demo(folder, threshold=answers.threshold)
    copy_file(answers.model_file, folder / MODEL_FILE)
    if answers.scaler_file is not None:
        copy_file(answers.scaler_file, folder / SCALER_FILE)
    else:
        (folder / SCALER_FILE).unlink(missing_ok=True)
    return None


def self_test_inputs(scaler: Any, width: int) -> list[list[float]]:
    """Rows for the self-test when no held-out data is at hand.

    Centred on the scaler's mean and stepped by its scale (or on 0 by 1),
    out to 8 scales so that at least one row is far from the training data.
    """
    centre = getattr(scaler, "mean_", None)
    scale = getattr(scaler, "scale_", None)
    centre = [0.0] * width if centre is None else [float(v) for v in centre]
    scale = [1.0] * width if scale is None else [float(v) for v in scale]
    return [
        [c + step * s for c, s in zip(centre, scale, strict=True)]
        for step in SELF_TEST_STEPS
    ]


def check_ranges_known(answers: Answers, monitoring: dict[str, Any]) -> None:
    """Refuse out_of_range=warn/error when a feature's reference range is unknown."""
    if answers.out_of_range == "allow":
        return
    unknown = [
        name
        for name, statistics in monitoring["features"].items()
        if statistics["min"] is None or statistics["max"] is None
    ]
    if unknown:
        raise AnswerError(
            "out_of_range",
            answers.out_of_range,
            f"the reference range of {', '.join(unknown)} is unknown without "
            "reference data; give reference_data_path, or answer allow",
        )


def render_documents(answers: Answers, folder: Path, context: dict[str, Any]) -> None:
    """Render README.md and requirements.txt from the template's sources."""
    sources = answers.template_dir / "{{cookiecutter.package_name}}"
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sources),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    for name in RENDERED_BY_BUILD:
        text = environment.get_template(name).render(**context)
        (folder / name).write_text(text, encoding="utf-8", newline="\n")


def run_validation(folder: Path) -> str:
    """Run the package's validate_model.py; return its output or raise BuildError."""
    result = subprocess.run(
        [sys.executable, "-B", VALIDATION_SCRIPT],
        cwd=folder,
        capture_output=True,
        text=True,
        env={
            **{
                name: value
                for name, value in os.environ.items()
                if name not in CONSUMER_SETTINGS
            },
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
        },
    )
    if result.returncode != 0:
        raise BuildError(
            "the package failed its own validation, so no zip was written:\n"
            + result.stdout
            + result.stderr
        )
    return result.stdout


def build_package(answers: Answers, folder: Path) -> Path | None:
    """Build the package in ``folder``; return the zip's path (None if not zipped)."""
    require_scikit_learn()
    from .artifacts import inspect_artifacts
    from .monitoring import load_reference, reference_monitoring

    package = load_package_module(folder)
    given = (
        read_given_metadata(answers.metadata_file) if answers.metadata_file else None
    )
    demo = place_artifacts(answers, folder)
    # A SHA256SUMS from an earlier build would not match the new manifest.
    (folder / SUMS_FILE).unlink(missing_ok=True)
    if not answers.include_api_service:
        (folder / API_SERVICE).unlink(missing_ok=True)
    scaler_path = folder / SCALER_FILE
    declared: dict[str, list[str] | None] = {"feature_names": answers.feature_names}
    if given:
        declared["metadata_path"] = given["training_info"].get("feature_names")
    if demo:
        declared["demo model"] = demo["feature_names"]
    facts = inspect_artifacts(
        folder / MODEL_FILE,
        scaler_path if scaler_path.is_file() else None,
        declared,
        answers.threshold,
        package,
    )
    reference = load_reference(answers, facts.feature_names, demo)
    metadata = build_metadata(answers, facts, given=given, demo=demo)
    # A first manifest lets the package's own ModelInference load the
    # artifacts, once; it scores the reference rows and the self-test. Its
    # range policy waits for the monitoring section, computed with it. No
    # verification: the hashes were computed from these very files a moment
    # ago, and the build's validation run below checks them all.
    write_json(folder / METADATA_FILE, metadata)
    write_json(
        folder / MANIFEST_FILE,
        build_manifest(
            replace(answers, out_of_range="allow"), metadata, folder, facts.threshold
        ),
    )
    inference = package.ModelInference(folder, verify=False, environ={})
    metadata["monitoring"], reference_examples = reference_monitoring(
        inference, reference, demo
    )
    check_ranges_known(answers, metadata["monitoring"])
    write_json(folder / METADATA_FILE, metadata)
    render_documents(
        answers,
        folder,
        {
            "answers": answers,
            "metadata": metadata,
            "threshold": facts.threshold,
            "sklearn_version": facts.environment["scikit-learn"],
            "model_size_bytes": (folder / MODEL_FILE).stat().st_size,
            "scaler_size_bytes": (
                scaler_path.stat().st_size if scaler_path.is_file() else 0
            ),
            "has_scaler": scaler_path.is_file(),
        },
    )
    rows = (
        demo["holdout_examples"]
        if demo
        else reference_examples
        or self_test_inputs(inference.scaler, len(facts.feature_names))
    )
    records = [dict(zip(facts.feature_names, row, strict=True)) for row in rows]
    result = inference.predict(records)
    manifest = build_manifest(answers, metadata, folder, facts.threshold)
    manifest["self_test"] = {
        "inputs": records,
        "scores": result["scores"],
        "predictions": result["predictions"],
    }
    write_json(folder / MANIFEST_FILE, manifest)
    write_sha256sums(folder, known=manifest["file_integrity"])
    run_validation(folder)
    if not answers.create_zip:
        return None
    zip_path = answers.output_dir / f"{folder.name}.zip"
    write_zip(folder, zip_path, answers.build_time)
    return zip_path
