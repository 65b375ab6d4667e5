"""Validate this deployment package before it serves traffic.

    python validate_model.py [PACKAGE_DIR] [--json] [--quiet]
                             [--allow-version-mismatch]

Checks, in order, and stops at the first step that fails:
1. file integrity: every file in deployment_manifest.json matches its
   SHA-256, before anything is unpickled (a joblib file runs code on load);
   inference_example.py, which this script imports, is checked with the
   standard library alone before it is imported (SHA256SUMS vouches for the
   manifest, the manifest for it), and the bytes checked are the ones run
   (not byte-code in __pycache__);
2. environment: the versions recorded at build time (metadata.json,
   build_environment) beside the installed ones. A different scikit-learn
   fails, because pickled trees are not portable across versions, unless
   --allow-version-mismatch is given; other differences are reported. The
   MODEL_* and LOG_* environment variables must hold valid values;
3. loading: the model and the scaler load (scikit-learn's
   InconsistentVersionWarning is an error, with the same override);
4. feature compatibility: the manifest, metadata.json, the scaler and the
   model agree on the feature names and count;
5. inference: the self-test inputs recorded at build time give the recorded
   scores (within 1e-9, relative for scores beyond 1) and predictions.

PACKAGE_DIR (default: this script's folder) is checked with its own
inference_example.py, as its consumers will run it; another package folder
only when its validate_model.py is this one (else: run its own).

--json prints one JSON report on stdout instead of the lines; --quiet prints
only what failed.

Exit status: 0 the package is valid; 1 it is not (a file is missing,
unreadable or altered, the self-test or the features disagree); 2 usage or
environment (bad arguments, a library missing or of another scikit-learn
version, an invalid environment variable).
"""

import sys

# Run as a script, this folder is off sys.path from the first import on: a
# file here named like a library (json.py, joblib.py, pandas.py) must never
# stand in for it. The package loads its own files by their paths. For code
# that ran the script (runpy, IPython's %run), the entry goes back once the
# script has ended, also when a missing library stopped it. (sys is built
# in; os is loaded at start-up or frozen, never looked for on sys.path.)
if __name__ == "__main__":
    import os

    _FOLDER_ENTRY = None
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == os.path.dirname(
        os.path.realpath(__file__)
    ):
        _FOLDER_ENTRY = sys.path.pop(0)

    def _restore_import_path() -> None:
        """Give this folder's entry back to the code that ran the script."""
        if _FOLDER_ENTRY is not None:
            sys.path.insert(0, _FOLDER_ENTRY)


import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import types
from pathlib import Path
from typing import Any

MODULE = "inference_example"
MODULE_FILE = f"{MODULE}.py"
SCRIPT_FILE = "validate_model.py"
MANIFEST_FILE = "deployment_manifest.json"
SUMS_FILE = "SHA256SUMS"
SCORE_TOLERANCE = 1e-9
EXIT_VALID, EXIT_INVALID, EXIT_ENVIRONMENT = 0, 1, 2
# What to do about package files that disagree among themselves.
MISMATCH_FIX = "the package's files do not belong together: have it rebuilt"
NOT_READABLE_FIX = (
    "give the user running this read access to the package's files, or "
    "re-download the package"
)


class ValidationFailed(Exception):
    """The package is not valid; the message says which file or value."""

    exit_code = EXIT_INVALID


class EnvironmentProblem(ValidationFailed):
    """The package may be fine, but this environment cannot run it as built."""

    exit_code = EXIT_ENVIRONMENT


def unreadable(error: OSError) -> str:
    """The problem of a file that could not be read, as a report line says it."""
    return f"cannot be read ({error.strerror or type(error).__name__})"


class ModuleRefused(Exception):
    """A file of the package checked before any of its code runs (its
    inference_example.py, or another package's validate_model.py) is not
    vouched for by the manifest beside it, or the manifest by SHA256SUMS."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


# Larger than any of these files of a package: more is not read into memory.
MAX_CHECKED_BYTES = 64 * 1024 * 1024


def checked_module_source(folder: Path, name: str = MODULE_FILE) -> tuple[Path, bytes]:
    """Read ``folder``'s inference_example.py (or its script ``name``) and
    check it with the standard library alone, along the chain a consumer
    checks by hand: SHA256SUMS vouches for the manifest, the manifest for the
    file. The module's code runs on import, and a damaged one can fail like a
    missing library would (``import numpx``).

    Returns the file and its bytes, to be run as they are (never a byte-code
    file in __pycache__, which may be stale or planted, nor a module of that
    name installed elsewhere). Raises ModuleRefused, naming the file at
    fault, when a link of the chain is missing, unreadable or does not match:
    nothing runs that these files do not vouch for.
    """
    sums = folder / SUMS_FILE
    manifest_path = folder / MANIFEST_FILE
    try:
        text = read_checked(sums, "missing (it holds the manifest's SHA-256)").decode()
    except UnicodeDecodeError:
        raise ModuleRefused(
            sums, "is not UTF-8 text, so not a list of SHA-256s"
        ) from None
    listed = {
        name: digest
        for digest, _, name in (line.partition("  ") for line in text.splitlines())
    }
    if MANIFEST_FILE not in listed:
        raise ModuleRefused(manifest_path, f"not listed in {SUMS_FILE}, so not checked")
    manifest_bytes = read_checked(manifest_path, "missing")
    if hashlib.sha256(manifest_bytes).hexdigest() != listed[MANIFEST_FILE]:
        raise ModuleRefused(manifest_path, f"SHA-256 does not match {SUMS_FILE}")
    path = folder / name
    try:
        expected = json.loads(manifest_bytes)["file_integrity"][name]
    except (ValueError, RecursionError, TypeError, KeyError):
        expected = None
    if not isinstance(expected, str):
        raise ModuleRefused(path, "has no SHA-256 in the manifest")
    source = read_checked(path, "missing")
    if hashlib.sha256(source).hexdigest() != expected:
        raise ModuleRefused(path, "SHA-256 does not match the manifest")
    return path, source


def read_checked(path: Path, missing: str) -> bytes:
    """The bytes of the package file ``path``; ModuleRefused, naming it, when
    it is not there (``missing`` says so), not a regular file (a folder, a
    device, a pipe: never read), larger than any such file, or unreadable."""
    try:
        if not path.is_file():
            raise ModuleRefused(
                path, "not a regular file" if path.exists() else missing
            )
        with open(path, "rb") as stream:
            data = stream.read(MAX_CHECKED_BYTES + 1)
    except OSError as error:
        raise ModuleRefused(path, unreadable(error)) from None
    if len(data) > MAX_CHECKED_BYTES:
        raise ModuleRefused(path, f"larger than {MAX_CHECKED_BYTES} bytes")
    return data


def import_inference_module(
    report: "Report", package_dir: Path
) -> ValidationFailed | None:
    """Check the package's inference_example.py, then import what this script
    uses from it (into this module's namespace), running the very bytes
    checked: a package is validated with its own code, and another package
    folder only by a validate_model.py like its own (one of the same
    template version). Return the failure if a step fails."""
    global ConfigurationError, IntegrityError, ModelInference
    global VersionMismatchError, integrity_report, read_manifest, read_settings
    if not package_dir.is_dir():
        return EnvironmentProblem(
            f"{package_dir} is not a folder: give the extracted package folder"
        )
    own = Path(os.path.abspath(__file__))
    elsewhere = package_dir.resolve() != own.resolve().parent
    manifest = package_dir / MANIFEST_FILE
    # Not a package at all (this script copied elsewhere, run without one):
    # in its own folder, a package that lost its manifest still has the rest.
    if not os.path.lexists(manifest) and (
        elsewhere or not os.path.lexists(package_dir / SUMS_FILE)
    ):
        return ValidationFailed(
            f"{manifest} not found: pass the extracted package folder"
        )
    try:
        checked = checked_module_source(package_dir)
        if elsewhere:
            theirs, script = checked_module_source(package_dir, SCRIPT_FILE)
            if script != read_checked(own, "missing"):
                return EnvironmentProblem(
                    f"{package_dir} was built with another validate_model.py "
                    f"than this one, whose checks may not fit it: run its own, "
                    f"python {theirs}"
                )
    except ModuleRefused as refused:
        return refuse_module(report, refused.path, refused.problem)
    try:
        run_as_module(*checked)
        from inference_example import (
            ConfigurationError,
            IntegrityError,
            ModelInference,
            VersionMismatchError,
            integrity_report,
            read_manifest,
            read_settings,
        )
    except ImportError as error:
        if error.name != MODULE:  # else inference_example.py is incomplete
            return EnvironmentProblem(f"{error}: run pip install -r requirements.txt")
        return damaged_module(error)
    except Exception as error:
        return damaged_module(error)
    return None


def damaged_module(error: Exception) -> ValidationFailed:
    """The failure of an inference_example.py that matches the manifest (or
    has none to match) but does not import."""
    return ValidationFailed(
        "inference_example.py cannot be imported "
        f"({type(error).__name__}: {error}): the file is damaged; "
        "re-download the package and verify it (sha256sum -c SHA256SUMS)"
    )


def run_as_module(path: Path, source: bytes) -> None:
    """Run ``source``, read from ``path``, as the module inference_example."""
    module = types.ModuleType(MODULE)
    module.__file__ = str(path)
    sys.modules[MODULE] = module  # dataclasses and pickle look it up there
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[MODULE]
        raise


class Report:
    """Prints the validation as it goes and collects it for --json.

    ``mode`` is "text" (every line), "quiet" (failures only) or "json"
    (nothing until the end, then one JSON document).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.checks: dict[str, dict[str, Any]] = {}
        self.lines: list[str] = []

    def line(self, text: str, failed: bool = False) -> None:
        """Record a report line; print it unless the mode keeps it back."""
        self.lines.append(text)
        if self.mode == "text" or (self.mode == "quiet" and failed):
            self.print(text)

    @staticmethod
    def print(text: str) -> None:
        """Print ``text`` to stdout; once its reader has gone (``| head``) or
        it cannot be written (a full disk: said on stderr), print nothing
        more: the exit status still gives the verdict."""
        try:
            print(text, flush=True)
        except OSError as error:
            if not isinstance(error, BrokenPipeError):
                print(
                    f"validate_model.py: the report cannot be written to standard "
                    f"output ({error.strerror or error}); the exit status still "
                    "gives the verdict",
                    file=sys.stderr,
                )
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def check(self, name: str, **details: Any) -> None:
        """Record what the check ``name`` saw, for --json."""
        self.checks.setdefault(name, {}).update(details)

    def finish(self, package_dir: Path, failure: ValidationFailed | None) -> int:
        """Print the verdict (or the JSON report); return the exit status."""
        code = EXIT_VALID if failure is None else failure.exit_code
        if failure is None:
            self.line("🎉 Model validation completed successfully!")
        else:
            self.line(f"❌ Validation failed: {failure}", failed=True)
        if self.mode == "json":
            self.print(
                json.dumps(
                    {
                        "valid": failure is None,
                        "exit_code": code,
                        "error": None if failure is None else str(failure),
                        "package_dir": str(package_dir),
                        "checks": self.checks,
                        "lines": self.lines,
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
        return code


def refuse_module(report: Report, path: Path, problem: str) -> ValidationFailed:
    """Report the file of the package that failed checked_module_source, as
    check_integrity reports a file; return the failure."""
    name = path.name
    report.line("📁 Checking file integrity...")
    report.line(f"❌ {name}: {problem}", failed=True)
    report.check("integrity", passed=False, files={name: problem})
    message = f"file integrity check failed, {MODULE_FILE} was not imported"
    if problem.startswith("cannot be read"):
        return ValidationFailed(f"{message}: {name} {problem}: {NOT_READABLE_FIX}")
    return ValidationFailed(f"{message}: re-download the package and verify it")


def check_integrity(report: Report, package_dir: Path, manifest: dict) -> None:
    """Step 1: every file against the manifest and the manifest against
    SHA256SUMS, before anything is unpickled."""
    report.line("📁 Checking file integrity...")
    results = integrity_report(package_dir, manifest)
    files: dict[str, str] = {}
    for name, problem in results:
        # A name can be reported twice (manifest, then SHA256SUMS): an OK from
        # one must not hide a problem found by the other.
        if problem:
            report.line(f"❌ {name}: {problem}", failed=True)
            earlier = files.get(name, "OK")
            files[name] = problem if earlier == "OK" else f"{earlier}; {problem}"
        else:
            report.line(f"✅ {name}: OK")
            files.setdefault(name, "OK")
    failed = any(status != "OK" for status in files.values())
    own = {Path(name).parts[0] for name in files}
    own |= {MANIFEST_FILE, SUMS_FILE, "__pycache__"}
    others = sorted(
        entry.name + ("/" if entry.is_dir() else "")
        for entry in package_dir.iterdir()
        if entry.name not in own
    )
    if others:
        report.line(
            f"⚠️  Not part of the package (not checked): {', '.join(others)}"
            + (
                "; a .py file here is imported before an installed module of its name"
                if any(name.endswith(".py") for name in others)
                else ""
            )
        )
    report.check("integrity", passed=not failed, files=files, not_in_package=others)
    if failed:
        unread = [
            f"{name} {status}"
            for name, status in files.items()
            if status.startswith("cannot be read")
        ]
        raise ValidationFailed(
            "file integrity check failed, no model was loaded: "
            + (
                f"{'; '.join(unread)}: {NOT_READABLE_FIX}"
                if unread
                else "re-download the package and verify it"
            )
        )


def installed_versions(names: list[str]) -> dict[str, str | None]:
    """The installed version of each distribution name (python: the interpreter)."""
    versions: dict[str, str | None] = {}
    for name in names:
        if name == "python":
            versions[name] = platform.python_version()
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def check_environment(report: Report, metadata: dict, allow_mismatch: bool) -> None:
    """Step 2: the installed versions beside the build's, and the MODEL_* and
    LOG_* environment variables."""
    report.line("🧰 Checking environment...")
    built = metadata.get("build_environment") or {}
    installed = installed_versions(list(built) or ["python", "scikit-learn"])
    width = max(len(name) for name in installed)
    report.line(f"   {'package':<{width}}  {'built with':<12}  installed")
    for name, version in installed.items():
        recorded = built.get(name) or "not recorded"
        report.line(f"   {name:<{width}}  {recorded:<12}  {version or 'not installed'}")
    differences = [
        name for name in built if built[name] and built[name] != installed[name]
    ]
    report.check(
        "environment",
        built=built,
        installed=installed,
        differences=differences,
        allow_version_mismatch=allow_mismatch,
    )
    sklearn_built = built.get("scikit-learn")
    for name in differences:
        if name == "scikit-learn":
            continue
        report.line(
            f"⚠️  {name} differs from the build ({built[name]} -> "
            f"{installed[name] or 'not installed'}): reported, not fatal; the "
            "self-test below shows whether scores changed"
        )
    if "scikit-learn" in differences:
        message = (
            f"scikit-learn {installed['scikit-learn'] or 'is not installed'} "
            f"differs from {sklearn_built}, which built the model; pickled trees "
            "are not portable across versions"
        )
        if not allow_mismatch:
            report.line(f"❌ {message}", failed=True)
            report.check("environment", passed=False)
            raise EnvironmentProblem(
                f"{message}: pip install -r requirements.txt (it pins "
                f"scikit-learn=={sklearn_built}), or run with "
                "--allow-version-mismatch to check it anyway"
            )
        report.line(f"⚠️  {message}: allowed by --allow-version-mismatch")
    elif sklearn_built:
        report.line(f"✅ scikit-learn {sklearn_built}: same as the build")
    else:
        report.line("⚠️  metadata.json records no build environment to compare")
    try:
        # The variables alone (no inference_config), from os.environ: what
        # ModelInference would refuse, or take over the manifest's values.
        settings = read_settings({}, None)
    except ConfigurationError as error:
        report.check("environment", passed=False)
        raise EnvironmentProblem(str(error)) from None
    for name in settings.overrides:
        report.line(
            f"ℹ️  {name} is set: it overrides inference_config in ModelInference "
            "(this self-test uses the package's own values)"
        )
    report.check("environment", passed=True, overrides=list(settings.overrides))


def load(report: Report, package_dir: Path, allow_mismatch: bool) -> "ModelInference":
    """Step 3: load the package as a consumer does (its files were verified
    in step 1), with the range policy off for the self-test's inputs."""
    report.line("🤖 Loading model...")
    try:
        inference = ModelInference(
            package_dir,
            verify=False,  # check_integrity has just verified every file
            allow_version_mismatch=allow_mismatch,
            environ={},
        )
    except (VersionMismatchError, ModuleNotFoundError) as error:
        report.check("loading", passed=False)
        raise EnvironmentProblem(str(error)) from None
    except Exception as error:
        report.check("loading", passed=False)
        raise ValidationFailed(
            f"loading failed: {type(error).__name__}: {error}"
        ) from error
    model_type = type(inference.model).__name__
    report.line("✅ Model loaded successfully")
    report.line(f"   Model type: {model_type}")
    scaler_type = None
    if inference.scaler is not None:
        scaler_type = type(inference.scaler).__name__
        report.line("✅ Scaler loaded successfully")
        report.line(f"   Scaler type: {scaler_type}")
    elif getattr(inference.model, "steps", None):
        report.line(
            "ℹ️  No scaler file: the model's Pipeline transforms the features "
            "in its first steps"
        )
    else:
        report.line("ℹ️  No scaler in this package: features go to the model unscaled")
    report.check("loading", passed=True, model=model_type, scaler=scaler_type)
    # The self-test checks the numbers; the range policy is for live traffic.
    inference.out_of_range = "allow"
    return inference


def check_inference(report: Report, inference: "ModelInference") -> None:
    """Step 5: the self-test's inputs give the recorded scores and
    predictions."""
    report.line("🧪 Testing model inference...")
    self_test = inference.manifest.get("self_test") or {}
    inputs = self_test.get("inputs")
    report.check("inference", passed=False)
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
    except ModuleNotFoundError as error:  # pandas, for a model fitted on a DataFrame
        raise EnvironmentProblem(
            f"scoring needs {error.name}, which this Python cannot import: "
            "pip install -r requirements.txt"
        ) from None
    except Exception as error:
        raise ValidationFailed(
            f"inference failed: {type(error).__name__}: {error}"
        ) from error
    differences = [
        abs(score - expected)
        for score, expected in zip(result["scores"], self_test["scores"], strict=True)
    ]
    scores = result["scores"]
    report.check(
        "inference",
        predictions=result["predictions"],
        expected_predictions=self_test["predictions"],
        score_range=[min(scores), max(scores)],
        max_score_difference=max(differences),
        tolerance=SCORE_TOLERANCE,
    )
    # Relative beyond 1: a detector whose scores run to millions (an
    # EllipticEnvelope's distances) differs there in its last bits alone.
    bad_rows = [
        row
        for row, (diff, expected) in enumerate(
            zip(differences, self_test["scores"], strict=True)
        )
        if not diff <= SCORE_TOLERANCE * max(1.0, abs(expected))  # nan too
    ]
    if bad_rows:
        raise ValidationFailed(
            f"self-test scores differ from the recorded ones in rows {bad_rows} "
            f"(by up to {max(differences):.3g}, tolerance {SCORE_TOLERANCE}, "
            "relative for scores beyond 1): the "
            "installed libraries compute different numbers; install "
            f"requirements.txt exactly (if it is, {MISMATCH_FIX})"
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
            f"self-test predictions differ from the recorded ones in rows "
            f"{bad_rows}: {MISMATCH_FIX}"
        )
    report.check("inference", passed=True)
    report.line("✅ Inference test successful")
    report.line(f"   Sample predictions: {result['predictions']}")
    report.line(f"   Score range: {min(scores):.3f} to {max(scores):.3f}")


def scaler_output(
    scaler: Any, fitted_names: Any, names: list[str]
) -> tuple[int | None, list[str] | None]:
    """How many columns the scaler puts out for the features ``names``, and
    their names where they are known: its own output names when it was
    fitted with names; else ``names`` when it gives each column its input's
    name (a StandardScaler does; a PCA mixes them, so its columns have no
    such names). (None, None) when not even the count is known: the scaler
    neither names its output nor transforms a row of zeros (Box-Cox takes
    positive values)."""
    try:
        out = [
            str(name)
            for name in (
                scaler.get_feature_names_out()
                if fitted_names is not None
                else scaler.get_feature_names_out(names)
            )
        ]
    except Exception:  # not implemented, or not for this transformer
        out = None
    if out is not None:
        known = fitted_names is not None or out == list(names)
        return len(out), out if known else None
    import numpy as np

    try:
        produced = np.asarray(scaler.transform(np.zeros((1, len(names))))).shape[1]
    except Exception:
        return None, None
    return produced, None


def check_features(
    report: Report, metadata_file: str, metadata: dict, inference: "ModelInference"
) -> None:
    """Step 4: the manifest, metadata.json, the scaler and the model agree on
    the feature names and count."""
    report.line("🔢 Checking feature compatibility...")
    report.check("features", passed=False)
    names = inference.feature_names
    training_info = metadata["training_info"]
    sources = {
        "deployment_manifest.json": (names, inference.manifest["training_info"]),
        metadata_file: (training_info.get("feature_names"), training_info),
    }
    for source, (source_names, info) in sources.items():
        if source_names != names:
            raise ValidationFailed(
                f"{source} lists features {source_names}, expected {names}: "
                f"{MISMATCH_FIX}"
            )
        if info.get("feature_count") != len(names):
            raise ValidationFailed(
                f"{source} feature_count is {info.get('feature_count')!r}, "
                f"expected {len(names)}: {MISMATCH_FIX}"
            )
    checked = ["manifest", metadata_file]
    # The model takes what the scaler puts out (which a transformer such as
    # PolynomialFeatures may widen); without a scaler, the features.
    given_width, given_names = len(names), names
    given_by = "the manifest lists"
    for label, step in (("scaler", inference.scaler), ("model", inference.model)):
        if step is None or given_width is None:
            continue
        width = getattr(step, "n_features_in_", None)
        if width is not None and width != given_width:
            raise ValidationFailed(
                f"the {label} expects {width} features, {given_by} {given_width}: "
                f"{MISMATCH_FIX}"
            )
        fitted_names = getattr(step, "feature_names_in_", None)
        if (
            fitted_names is not None
            and given_names is not None
            and list(fitted_names) != given_names
        ):
            raise ValidationFailed(
                f"the {label} was fitted on features {list(fitted_names)}, "
                f"{given_by} {given_names}: {MISMATCH_FIX}"
            )
        checked.append(label)
        if label == "scaler":
            given_width, given_names = scaler_output(step, fitted_names, names)
            given_by = "the scaler puts out"
    report.check("features", passed=True, feature_names=names, agree=checked)
    report.line(f"✅ {len(names)} features agree: {', '.join(checked)}")


def validate(report: Report, package_dir: Path, allow_mismatch: bool) -> None:
    """Run every check; raise ValidationFailed at the first that fails."""
    try:
        manifest = read_manifest(package_dir)
    except (OSError, ValueError, IntegrityError) as error:
        raise ValidationFailed(str(error)) from error
    report.check("manifest", model_version=manifest.get("model_version"))
    check_integrity(report, package_dir, manifest)
    metadata_file = manifest.get("files", {}).get("metadata_file", "metadata.json")
    with open(package_dir / metadata_file, encoding="utf-8") as stream:
        metadata = json.load(stream)
    check_environment(report, metadata, allow_mismatch)
    inference = load(report, package_dir, allow_mismatch)
    check_features(report, metadata_file, metadata, inference)
    check_inference(report, inference)


def main(argv: list[str] | None = None) -> int:
    """Validate the package folder given on the command line; return the exit
    status."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Exit status: 0 valid, 1 invalid, 2 usage or environment.",
    )
    parser.add_argument(
        "package_dir",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="the extracted package folder (default: the folder of this script)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="print one JSON report instead of lines"
    )
    output.add_argument("--quiet", action="store_true", help="print only failures")
    parser.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="check a package whose scikit-learn version differs from the build's",
    )
    args = parser.parse_args(argv)
    # A stdout that cannot encode the report's symbols (a file on a Windows
    # code page, PYTHONIOENCODING=ascii) gets them as escapes, not a crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    report = Report("json" if args.json else "quiet" if args.quiet else "text")
    report.line("🔍 Validating model deployment...")
    failure = import_inference_module(report, args.package_dir)
    if failure is None:
        try:
            validate(report, args.package_dir, args.allow_version_mismatch)
        except ValidationFailed as error:
            failure = error
    return report.finish(args.package_dir, failure)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    finally:
        _restore_import_path()
