"""Validate this deployment package before it serves traffic.

    python validate_model.py [PACKAGE_DIR]

Checks, in order, and stops at the first step that fails:
1. file integrity: every file in deployment_manifest.json matches its
   SHA-256, before anything is unpickled (a joblib file runs code on load);
2. loading: the model and the scaler load;
3. inference: the self-test inputs recorded at build time give the recorded
   scores (within 1e-9) and predictions;
4. feature compatibility: the manifest, metadata.json, the scaler and the
   model agree on the feature names and count.

Exit status: 0 when the package is valid, 1 when it is not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

try:
    from inference_example import ModelInference, integrity_report, read_manifest
except ImportError as error:  # numpy, joblib or scikit-learn not installed
    print(f"❌ {error}: run pip install -r requirements.txt")
    raise SystemExit(1) from None

SCORE_TOLERANCE = 1e-9


class ValidationFailed(Exception):
    """A check failed; the message says which file or value and what to do."""


def check_integrity(package_dir: Path, manifest: dict[str, Any]) -> None:
    print("📁 Checking file integrity...")
    failed = False
    for name, problem in integrity_report(package_dir, manifest):
        if problem:
            failed = True
            print(f"❌ {name}: {problem}")
        else:
            print(f"✅ {name}: OK")
    if failed:
        raise ValidationFailed(
            "file integrity check failed, no model was loaded: "
            "re-download the package and verify it"
        )


def load(package_dir: Path) -> ModelInference:
    print("🤖 Loading model...")
    try:
        inference = ModelInference(package_dir, verify=False)
    except Exception as error:
        raise ValidationFailed(
            f"loading failed: {type(error).__name__}: {error}"
        ) from error
    print(f"✅ Model loaded successfully ({type(inference.model).__name__})")
    if inference.scaler is not None:
        print(f"✅ Scaler loaded successfully ({type(inference.scaler).__name__})")
    else:
        print("ℹ️  No scaler in this package: features go to the model unscaled")
    return inference


def check_inference(inference: ModelInference) -> None:
    print("🧪 Testing model inference...")
    self_test = inference.manifest.get("self_test") or {}
    inputs = self_test.get("inputs")
    if not inputs:
        raise ValidationFailed(
            "deployment_manifest.json has no self_test inputs: rebuild the package"
        )
    counts = {len(inputs), len(self_test.get("scores") or ())}
    if counts != {len(self_test.get("predictions") or ())}:
        raise ValidationFailed(
            "deployment_manifest.json self_test has inputs, scores and predictions "
            "of different lengths: rebuild the package"
        )
    try:
        result = inference.predict(inputs)
    except Exception as error:
        raise ValidationFailed(
            f"inference failed: {type(error).__name__}: {error}"
        ) from error
    bad_rows = [
        row
        for row, (score, expected) in enumerate(
            zip(result["scores"], self_test["scores"], strict=True)
        )
        if abs(score - expected) > SCORE_TOLERANCE
    ]
    if bad_rows:
        raise ValidationFailed(
            f"self-test scores differ from the recorded ones in rows {bad_rows} "
            f"(tolerance {SCORE_TOLERANCE}): the installed libraries compute "
            "different numbers; install requirements.txt exactly"
        )
    bad_rows = [
        row
        for row, (got, expected) in enumerate(
            zip(result["predictions"], self_test["predictions"], strict=True)
        )
        if got != expected
    ]
    if bad_rows:
        raise ValidationFailed(
            f"self-test predictions differ from the recorded ones in rows {bad_rows}"
        )
    scores = result["scores"]
    print("✅ Inference test successful")
    print(f"   Sample predictions: {result['predictions']}")
    print(f"   Score range: {min(scores):.3f} to {max(scores):.3f}")


def check_features(package_dir: Path, inference: ModelInference) -> None:
    print("🔢 Checking feature compatibility...")
    names = inference.feature_names
    metadata_file = inference.manifest["files"]["metadata_file"]
    with open(package_dir / metadata_file, encoding="utf-8") as stream:
        training_info = json.load(stream)["training_info"]
    sources = {
        "deployment_manifest.json": (names, inference.manifest["training_info"]),
        metadata_file: (training_info.get("feature_names"), training_info),
    }
    for source, (source_names, info) in sources.items():
        if source_names != names:
            raise ValidationFailed(
                f"{source} lists features {source_names}, expected {names}"
            )
        if info.get("feature_count") != len(names):
            raise ValidationFailed(
                f"{source} feature_count is {info.get('feature_count')!r}, "
                f"expected {len(names)}"
            )
    checked = ["manifest", metadata_file]
    for label, step in (("scaler", inference.scaler), ("model", inference.model)):
        if step is None:
            continue
        width = getattr(step, "n_features_in_", None)
        if width is not None and width != len(names):
            raise ValidationFailed(
                f"the {label} expects {width} features, the manifest lists {len(names)}"
            )
        fitted_names = getattr(step, "feature_names_in_", None)
        if fitted_names is not None and list(fitted_names) != names:
            raise ValidationFailed(
                f"the {label} was fitted on features {list(fitted_names)}, "
                f"the manifest lists {names}"
            )
        checked.append(label)
    print(f"✅ {len(names)} features agree: {', '.join(checked)}")


def validate(package_dir: Path) -> None:
    """Run every check; raise ValidationFailed at the first that fails."""
    print("🔍 Validating model deployment...")
    try:
        manifest = read_manifest(package_dir)
    except (OSError, ValueError) as error:
        raise ValidationFailed(str(error)) from error
    check_integrity(package_dir, manifest)
    inference = load(package_dir)
    check_inference(inference)
    check_features(package_dir, inference)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "package_dir",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="the extracted package folder (default: the folder of this script)",
    )
    args = parser.parse_args(argv)
    try:
        validate(args.package_dir)
    except ValidationFailed as failure:
        print(f"❌ Validation failed: {failure}")
        return 1
    print("🎉 Model validation completed successfully!")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
