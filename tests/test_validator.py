"""validate_model.py as a consumer runs it: exit codes, output, the gates.

Each package below is a private copy of the demo package, edited on purpose
and re-signed (``resign_package``) where it must look intact, as if it had
been built elsewhere. Every run is ``python validate_model.py ...`` in the
package folder; the module's runs happen at once (``run_concurrently``) and
each test reads its own.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from conftest import (
    MANIFEST_FILE,
    SKLEARN,
    TEMPLATE_DIR,
    Rendered,
    consumer_environment,
    copy_package,
    repickle_version,
    resign_package,
    run_concurrently,
    run_cookiecutter,
    run_validate_model,
    same_length_other_version,
)
from package_builder.archive import sha256_file, write_json
from package_builder.build import load_package_module
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.preprocessing import StandardScaler

NUMPY = importlib.metadata.version("numpy")
LOADING = "🤖 Loading model..."
SUCCESS = "🎉 Model validation completed successfully!"
GOLDEN_SCORE_ROW = 2
GOLDEN_PREDICTION_ROW = 3
DEMO_FEATURE_COUNT = 17
OTHER_FEATURE_COUNT = DEMO_FEATURE_COUNT - 1
MODULE_FILE = "inference_example.py"
MISMATCH_FIX = "the package's files do not belong together: have it rebuilt"


PICKLED_WITH = same_length_other_version(SKLEARN)


def record_build_version(package: str, version: str) -> Callable[[Path], None]:
    """Say in metadata.json that ``package`` was ``version`` at build time."""

    def prepare(folder: Path) -> None:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        metadata["build_environment"][package] = version
        write_json(folder / "metadata.json", metadata)
        resign_package(folder)

    return prepare


def pickled_elsewhere(folder: Path) -> None:
    """model.joblib as scikit-learn PICKLED_WITH would have written it."""
    repickle_version(folder / "model.joblib", PICKLED_WITH)
    resign_package(folder)


def edit_self_test(key: str, row: int) -> Callable[[Path], None]:
    """Change one expected value of the recorded self-test, then re-sign."""

    def edit(manifest: dict[str, Any]) -> None:
        values = manifest["self_test"][key]
        values[row] = values[row] + 1e-6 if key == "scores" else 1 - values[row]

    return lambda folder: resign_package(folder, edit)


def corrupt_model(folder: Path) -> None:
    """A model.joblib whose first bytes are zeros, re-signed."""
    model = folder / "model.joblib"
    model.write_bytes(bytes(64) + model.read_bytes()[64:])
    resign_package(folder)


def plant_bytecode(folder: Path) -> None:
    """Leave byte-code in __pycache__ that Python would take for the compiled
    inference_example.py (its header holds the source's mtime and size), but
    that prints PLANTED and exits 3."""
    source = folder / MODULE_FILE
    stat = source.stat()
    code = compile(
        "import sys\nprint('PLANTED')\nraise SystemExit(3)\n", str(source), "exec"
    )
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir()
    cached.write_bytes(
        importlib._bootstrap_external._code_to_timestamp_pyc(
            code, int(stat.st_mtime), stat.st_size
        )
    )


VARIANTS: dict[str, Callable[[Path], None] | None] = {
    "intact": None,
    "sklearn-recorded-1.0.2": record_build_version("scikit-learn", "1.0.2"),
    "numpy-recorded-other": record_build_version(
        "numpy", "1.21.0" if NUMPY != "1.21.0" else "1.26.4"
    ),
    "pickled-elsewhere": pickled_elsewhere,
    "golden-score": edit_self_test("scores", GOLDEN_SCORE_ROW),
    "golden-score-nan": lambda folder: resign_package(
        folder,
        lambda manifest: manifest["self_test"]["scores"].__setitem__(
            GOLDEN_SCORE_ROW, float("nan")
        ),
    ),
    "golden-prediction": edit_self_test("predictions", GOLDEN_PREDICTION_ROW),
    "corrupt-model": corrupt_model,
    "damaged-module": lambda folder: cut_inference_module(folder, "class Model"),
    "stripped-module": lambda folder: cut_inference_module(folder, ""),
    "files-added": lambda folder: (
        (folder / "joblib.py").write_text(""),
        (folder / "scored.csv").write_text("a\n"),
        (folder / "notes").mkdir(),
    ),
    "module-imports-numpx": lambda folder: misspell_import(
        folder, "import numpy as np", "import numpx as np"
    ),
    "module-imports-numpx-resigned": lambda folder: (
        misspell_import(folder, "import numpy as np", "import numpx as np"),
        resign_package(folder),
    ),
    "planted-bytecode": plant_bytecode,
    "module-vouched-by-manifest-only": lambda folder: edit_module_and_manifest(folder),
    "module-vouched-in-sums-too": lambda folder: edit_module_and_manifest(
        folder, also_in_sums=True
    ),
    **(
        {
            "sums-a-device": lambda folder: replace_by(
                folder / "SHA256SUMS", "/dev/zero"
            ),
            "sums-a-pipe": lambda folder: replace_by(folder / "SHA256SUMS", None),
        }
        if hasattr(os, "mkfifo") and Path("/dev/zero").exists()
        else {}
    ),
    "module-vouched-without-sums": lambda folder: (
        edit_module_and_manifest(folder),
        (folder / "SHA256SUMS").unlink(),
    ),
    "module-unlisted": lambda folder: (
        misspell_import(folder, "import numpy as np", "import numpx as np"),
        resign_package(
            folder, lambda manifest: manifest["file_integrity"].pop(MODULE_FILE)
        ),
    ),
    "requirements-edited-with-sums": lambda folder: edit_requirements_and_sums(folder),
    "manifest-feature-count": lambda folder: resign_package(
        folder,
        lambda manifest: manifest["training_info"].__setitem__(
            "feature_count", OTHER_FEATURE_COUNT
        ),
    ),
    "metadata-feature-count": lambda folder: (
        edit_json(
            folder / "metadata.json",
            lambda metadata: metadata["training_info"].__setitem__(
                "feature_count", OTHER_FEATURE_COUNT
            ),
        ),
        resign_package(folder),
    ),
    "scaler-of-other-width": lambda folder: replace_artifact(
        folder, "scaler.joblib", fitted_on_columns("scaler", OTHER_FEATURE_COUNT)
    ),
    "model-of-other-width": lambda folder: replace_artifact(
        folder, "model.joblib", fitted_on_columns("model", OTHER_FEATURE_COUNT)
    ),
    "scaler-named-otherwise": lambda folder: name_columns_swapped(
        folder, "scaler.joblib"
    ),
    "model-named-otherwise": lambda folder: name_columns_swapped(
        folder, "model.joblib"
    ),
    "self-test-short-scores": lambda folder: resign_package(
        folder, lambda manifest: manifest["self_test"]["scores"].pop()
    ),
    "self-test-short-predictions": lambda folder: resign_package(
        folder, lambda manifest: manifest["self_test"]["predictions"].pop()
    ),
}


def cut_inference_module(folder: Path, tail: str) -> None:
    """Cut inference_example.py just before its ModelInference class, then
    add ``tail``; re-sign the package, as if it had been built so."""
    path = folder / MODULE_FILE
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("class ModelInference")] + tail)
    resign_package(folder)


def edit_module_and_manifest(folder: Path, also_in_sums: bool = False) -> None:
    """Put code that passes any validation (it prints EDITED and exits 0) at
    the top of inference_example.py, and its SHA-256 in the manifest (and,
    ``also_in_sums``, in the module's line of SHA256SUMS), but not the new
    manifest's SHA-256 in SHA256SUMS, which vouches for the manifest."""
    path = folder / MODULE_FILE
    old = sha256_file(path)
    path.write_text(
        "print('EDITED')\nraise SystemExit(0)\n" + path.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["file_integrity"][MODULE_FILE] = sha256_file(path)
    write_json(folder / MANIFEST_FILE, manifest)
    if also_in_sums:
        sums = folder / "SHA256SUMS"
        text = sums.read_text(encoding="utf-8")
        assert text.count(old) == 1
        sums.write_text(text.replace(old, sha256_file(path)), encoding="utf-8")


def edit_requirements_and_sums(folder: Path) -> None:
    """Loosen requirements.txt's scikit-learn pin and put the file's new
    SHA-256 in SHA256SUMS (``sha256sum -c`` passes), but not in the manifest,
    which still holds the old one."""
    path = folder / "requirements.txt"
    old = sha256_file(path)
    pin = f"scikit-learn=={SKLEARN}"
    text = path.read_text(encoding="utf-8")
    assert text.count(pin) == 1
    path.write_text(text.replace(pin, f"scikit-learn>={SKLEARN}"), encoding="utf-8")
    sums = folder / "SHA256SUMS"
    listed = sums.read_text(encoding="utf-8")
    assert listed.count(f"{old}  requirements.txt") == 1
    sums.write_text(listed.replace(old, sha256_file(path)), encoding="utf-8")


def edit_json(path: Path, edit: Callable[[Any], None]) -> None:
    """Apply ``edit`` to the JSON document in ``path`` and write it back."""
    document = json.loads(path.read_text(encoding="utf-8"))
    edit(document)
    write_json(path, document)


def feature_names_of(folder: Path) -> list[str]:
    """The feature names the package's manifest lists."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest["training_info"]["feature_names"]


def swapped(names: list[str]) -> list[str]:
    """``names`` with the first two swapped."""
    return [names[1], names[0], *names[2:]]


def fitted_on_columns(kind: str, width: int) -> Any:
    """A StandardScaler (``kind`` "scaler") or an IsolationForest ("model")
    fitted on ``width`` columns of random numbers."""
    rows = np.random.default_rng(0).normal(size=(200, width))
    if kind == "scaler":
        return StandardScaler().fit(rows)
    return IsolationForest(n_estimators=10, random_state=0).fit(rows)


def replace_artifact(folder: Path, name: str, artifact: Any) -> None:
    """Dump ``artifact`` into the package's file ``name``, then re-sign."""
    joblib.dump(artifact, folder / name)
    resign_package(folder)


def name_columns_swapped(folder: Path, name: str) -> None:
    """The package's scaler or model (``name``) as if it had been fitted on a
    DataFrame whose first two columns bore each other's names: the same
    numbers, but ``feature_names_in_`` (what scikit-learn records from a
    DataFrame's columns) not the manifest's order; re-signed."""
    artifact = joblib.load(folder / name)
    artifact.feature_names_in_ = np.asarray(
        swapped(feature_names_of(folder)), dtype=object
    )
    replace_artifact(folder, name, artifact)


def replace_by(path: Path, device: str | None) -> None:
    """Replace the file ``path`` by a link to ``device`` (/dev/zero: endless
    bytes), or by a named pipe that nothing writes to (None): reading either
    would never end."""
    path.unlink()
    if device is None:
        os.mkfifo(path)
    else:
        path.symlink_to(device)


def misspell_import(folder: Path, line: str, misspelt: str) -> None:
    """Replace one import line of inference_example.py (not re-signed):
    importing the file would then fail as if a library were missing."""
    path = folder / MODULE_FILE
    text = path.read_text(encoding="utf-8")
    assert text.count(line) == 1, line
    path.write_text(text.replace(line, misspelt), encoding="utf-8")


@dataclass(frozen=True)
class Run:
    """One ``python validate_model.py ARGS`` in a variant's folder."""

    variant: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


INVALID_SETTINGS = {
    "MODEL_THRESHOLD": ("abc", "give a finite number"),
    "MODEL_BATCH_SIZE": ("0", "give a whole number of rows, 1 or more"),
    "MODEL_TIMEOUT": ("-1", "give a finite number of seconds greater than 0"),
    "LOG_LEVEL": ("loud", "give one of: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    "LOG_FORMAT": ("xml", "give one of: text, json"),
}
JSON_SETTING = "MODEL_BATCH_SIZE"  # that one runs with --json

RUNS = {
    "default": Run("intact"),
    "json": Run("intact", ("--json",)),
    "quiet": Run("intact", ("--quiet",)),
    "bad-argument": Run("intact", ("--bogus",)),
    "no-such-folder": Run("intact", ("no-such-folder",)),
    **{
        f"invalid-{name}": Run(
            "intact",
            ("--json",) if name == JSON_SETTING else (),
            {name: value},
        )
        for name, (value, _) in INVALID_SETTINGS.items()
    },
    "sklearn-mismatch": Run("sklearn-recorded-1.0.2"),
    "sklearn-mismatch-allowed": Run(
        "sklearn-recorded-1.0.2", ("--allow-version-mismatch",)
    ),
    "notes": Run("numpy-recorded-other", env={"MODEL_THRESHOLD": "0"}),
    "pickled-elsewhere": Run("pickled-elsewhere"),
    "pickled-elsewhere-allowed": Run(
        "pickled-elsewhere", ("--allow-version-mismatch",)
    ),
    "golden-score": Run("golden-score", ("--json",)),
    "golden-score-nan": Run("golden-score-nan"),
    "golden-prediction": Run("golden-prediction", ("--quiet",)),
    "corrupt-model": Run("corrupt-model"),
    "damaged-module": Run("damaged-module"),
    "stripped-module": Run("stripped-module"),
    "files-added": Run("files-added", ("--json",)),
    "module-numpx": Run("module-imports-numpx"),
    "module-numpx-json": Run("module-imports-numpx", ("--json",)),
    "module-numpx-quiet": Run("module-imports-numpx", ("--quiet",)),
    "module-numpx-resigned": Run("module-imports-numpx-resigned"),
    "module-unlisted": Run("module-unlisted"),
    "module-vouched-by-manifest-only": Run("module-vouched-by-manifest-only"),
    "module-vouched-by-manifest-only-json": Run(
        "module-vouched-by-manifest-only", ("--json",)
    ),
    "module-vouched-in-sums-too": Run("module-vouched-in-sums-too"),
    "module-vouched-without-sums": Run("module-vouched-without-sums"),
    **(
        {"sums-a-device": Run("sums-a-device"), "sums-a-pipe": Run("sums-a-pipe")}
        if hasattr(os, "mkfifo") and Path("/dev/zero").exists()
        else {}
    ),
    "planted-bytecode": Run("planted-bytecode"),
    "requirements-edited-with-sums": Run("requirements-edited-with-sums", ("--json",)),
    "manifest-feature-count": Run("manifest-feature-count"),
    "metadata-feature-count": Run("metadata-feature-count"),
    "scaler-of-other-width": Run("scaler-of-other-width"),
    "model-of-other-width": Run("model-of-other-width"),
    "scaler-named-otherwise": Run("scaler-named-otherwise"),
    "model-named-otherwise": Run("model-named-otherwise"),
    "self-test-short-scores": Run("self-test-short-scores"),
    "self-test-short-predictions": Run("self-test-short-predictions"),
}


@pytest.fixture(scope="module")
def packages(demo: Rendered, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every variant's package folder."""
    folders = {}
    for variant, prepare in VARIANTS.items():
        folder = copy_package(demo.package_dir, tmp_path_factory.mktemp(variant))
        if prepare is not None:
            prepare(folder)
        folders[variant] = folder
    return folders


@pytest.fixture(scope="module")
def runs(packages: dict[str, Path]) -> dict[str, subprocess.CompletedProcess]:
    """Every run in RUNS, all at once."""
    return run_concurrently(
        {
            name: (
                lambda run=run: run_validate_model(
                    packages[run.variant],
                    *run.args,
                    env=consumer_environment(**run.env),
                )
            )
            for name, run in RUNS.items()
        }
    )


@pytest.fixture(scope="module")
def self_test(demo: Rendered) -> dict[str, Any]:
    """The demo package's recorded self-test."""
    manifest = json.loads((demo.package_dir / MANIFEST_FILE).read_text())
    return manifest["self_test"]


def lines_of(result: subprocess.CompletedProcess) -> list[str]:
    """The report lines, from the text output or from --json's "lines"."""
    if result.stdout.startswith("{"):
        return json.loads(result.stdout)["lines"]
    return result.stdout.splitlines()


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


# Exit codes and output modes


def test_valid_package_prints_the_specified_lines_in_order(
    runs: dict, self_test: dict[str, Any]
) -> None:
    """``python validate_model.py`` exits 0 and prints the spec's expected
    output in the spec's order, with the recorded self-test predictions and
    their score range, and ends with the 🎉 line."""
    result = runs["default"]
    assert result.returncode == 0, explain(result)
    scores = self_test["scores"]
    expected = [
        "🔍 Validating model deployment...",
        "📁 Checking file integrity...",
        "✅ model.joblib: OK",
        "✅ scaler.joblib: OK",
        "✅ metadata.json: OK",
        LOADING,
        "✅ Model loaded successfully",
        "   Model type: IsolationForest",
        "✅ Scaler loaded successfully",
        "   Scaler type: StandardScaler",
        "🧪 Testing model inference...",
        "✅ Inference test successful",
        f"   Sample predictions: {self_test['predictions']}",
        f"   Score range: {min(scores):.3f} to {max(scores):.3f}",
        SUCCESS,
    ]
    lines = result.stdout.splitlines()
    remaining = iter(lines)  # each wanted line is searched for after the last
    for wanted in expected:
        assert any(line == wanted for line in remaining), (
            f"{wanted!r} missing or out of order:\n{result.stdout}"
        )
    assert lines[-1] == SUCCESS


def test_json_report_of_a_valid_package(runs: dict, self_test: dict) -> None:
    """``--json`` prints one JSON document: valid, exit_code 0, no error,
    every check passed, the self-test predictions and score range."""
    result = runs["json"]
    assert result.returncode == 0, explain(result)
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["exit_code"] == 0
    assert report["error"] is None
    checks = report["checks"]
    for check in ("integrity", "environment", "loading", "inference", "features"):
        assert checks[check]["passed"] is True, check
    assert checks["integrity"]["files"]["model.joblib"] == "OK"
    assert checks["loading"]["model"] == "IsolationForest"
    assert checks["inference"]["predictions"] == self_test["predictions"]
    assert checks["inference"]["score_range"] == pytest.approx(
        [min(self_test["scores"]), max(self_test["scores"])], abs=1e-9
    )
    assert report["lines"][-1] == SUCCESS


def test_json_report_of_a_failed_self_test(runs: dict, self_test: dict) -> None:
    """``--json`` on a failing package: valid false, exit_code 1, the error,
    and still the self-test predictions and score range that were computed."""
    result = runs["golden-score"]
    assert result.returncode == 1, explain(result)
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["exit_code"] == 1
    assert report["error"].startswith("self-test scores differ")
    inference = report["checks"]["inference"]
    assert inference["passed"] is False
    assert inference["predictions"] == self_test["predictions"]
    assert inference["score_range"] == pytest.approx(
        [min(self_test["scores"]), max(self_test["scores"])], abs=1e-5
    )
    assert report["checks"]["integrity"]["passed"] is True


def test_json_report_of_an_environment_failure(runs: dict) -> None:
    """``--json`` when the environment is wrong: valid false, exit_code 2,
    the environment check failed, the error names the variable."""
    result = runs[f"invalid-{JSON_SETTING}"]
    assert result.returncode == 2, explain(result)
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["exit_code"] == 2
    assert report["error"].startswith(f"{JSON_SETTING}=")
    assert report["checks"]["environment"]["passed"] is False
    assert "loading" not in report["checks"]


def test_json_report_holds_every_problem_of_a_file(runs: dict) -> None:
    """requirements.txt edited and its new SHA-256 put in SHA256SUMS, not in
    the manifest: exit 1 before loading, one ❌ line for each of its two
    problems, and ``--json``'s integrity check holds both for the file,
    joined by "; " (the second does not replace the first)."""
    result = runs["requirements-edited-with-sums"]
    assert result.returncode == 1, explain(result)
    report = json.loads(result.stdout)
    not_matching = "SHA-256 does not match the manifest"
    sums_differ = "SHA-256 in SHA256SUMS differs from the manifest"
    integrity = report["checks"]["integrity"]
    assert integrity["passed"] is False
    assert integrity["files"].pop("requirements.txt") == (
        f"{not_matching}; {sums_differ}"
    )
    assert set(integrity["files"].values()) == {"OK"}
    lines = report["lines"]
    assert f"❌ requirements.txt: {not_matching}" in lines
    assert f"❌ requirements.txt: {sums_differ}" in lines
    assert lines[-1] == (
        "❌ Validation failed: file integrity check failed, no model was loaded: "
        "re-download the package and verify it"
    )
    assert LOADING not in lines


def test_quiet_prints_nothing_on_success(runs: dict) -> None:
    """``--quiet`` on a valid package: exit 0 and no output at all."""
    result = runs["quiet"]
    assert result.returncode == 0, explain(result)
    assert result.stdout == ""


def test_quiet_prints_only_the_failure(runs: dict) -> None:
    """``--quiet`` on a failing package: exit 1 and only the ❌ line."""
    result = runs["golden-prediction"]
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines() == [
        "❌ Validation failed: self-test predictions differ from the recorded "
        f"ones in rows [{GOLDEN_PREDICTION_ROW}]: {MISMATCH_FIX}"
    ]


@pytest.mark.parametrize(("variant", "code"), [("intact", 0), ("corrupt-model", 1)])
def test_reader_that_stops_early_does_not_change_the_verdict(
    packages: dict[str, Path], variant: str, code: int
) -> None:
    """``python validate_model.py | head -1``: the first line reaches the
    reader, the rest is dropped without a traceback, and the exit status is
    still the verdict (0 valid, 1 not)."""
    process = subprocess.Popen(
        [sys.executable, "validate_model.py"],
        cwd=packages[variant],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=consumer_environment(),
    )
    first = process.stdout.readline().decode("utf-8")
    process.stdout.close()  # the reader goes before the report ends
    stderr = process.stderr.read().decode("utf-8")
    assert process.wait() == code, stderr
    assert first == "🔍 Validating model deployment...\n"
    assert stderr == ""


def test_output_that_cannot_be_written_is_said_and_the_verdict_stands(
    packages: dict[str, Path],
) -> None:
    """stdout on a full disk (/dev/full): one line on stderr says the report
    cannot be written, no traceback, and the exit status is the verdict."""
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "validate_model.py"],
            cwd=packages["intact"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=consumer_environment(),
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "validate_model.py: the report cannot be written to standard output (No "
        "space left on device); the exit status still gives the verdict\n"
    )


def test_output_that_cannot_encode_the_symbols_gets_escapes(
    packages: dict[str, Path],
) -> None:
    """A stdout whose encoding has no emoji (PYTHONIOENCODING=ascii, as a
    file on a Windows code page): the report's symbols are escaped, the
    package still validates, no traceback."""
    result = subprocess.run(
        [sys.executable, "validate_model.py"],
        cwd=packages["intact"],
        capture_output=True,
        env=consumer_environment(PYTHONIOENCODING="ascii"),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("ascii").splitlines()
    assert lines[0] == "\\U0001f50d Validating model deployment..."
    assert lines[-1] == "\\U0001f389 Model validation completed successfully!"
    assert result.stderr == b""


def test_bad_argument_exits_2_with_usage(runs: dict) -> None:
    """An unknown option: exit 2, argparse's usage and error on stderr."""
    result = runs["bad-argument"]
    assert result.returncode == 2, explain(result)
    assert result.stdout == ""
    assert "usage: validate_model.py" in result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr


def test_missing_package_folder_exits_2(runs: dict) -> None:
    """A PACKAGE_DIR that does not exist: exit 2, naming it."""
    result = runs["no-such-folder"]
    assert result.returncode == 2, explain(result)
    assert result.stdout.splitlines() == [
        "🔍 Validating model deployment...",
        "❌ Validation failed: no-such-folder is not a folder: give the extracted "
        "package folder",
    ]


def test_another_package_folder_is_checked_with_its_own_code(
    demo: Rendered, tmp_path: Path
) -> None:
    """``python validate_model.py PACKAGE_DIR`` checks that folder with that
    package's own inference_example.py: a damaged package beside the script
    does not fail it, and an altered module in it does, named as its own."""
    here = copy_package(demo.package_dir, tmp_path / "here")
    there = copy_package(demo.package_dir, tmp_path / "there")
    (here / "SHA256SUMS").write_text("not a list of SHA-256s\n", encoding="utf-8")

    valid = run_validate_model(here, str(there))

    assert valid.returncode == 0, explain(valid)
    assert valid.stdout.splitlines()[-1] == SUCCESS
    with open(there / MODULE_FILE, "a", encoding="utf-8") as module:
        module.write("# edited\n")
    altered = run_validate_model(here, str(there))
    assert altered.returncode == 1, explain(altered)
    assert altered.stdout.splitlines()[:3] == [
        "🔍 Validating model deployment...",
        "📁 Checking file integrity...",
        "❌ inference_example.py: SHA-256 does not match the manifest",
    ]


def test_a_folder_that_is_no_package_is_named_so(demo: Rendered) -> None:
    """PACKAGE_DIR a folder without a manifest (the package's parent, say):
    exit 1, "not found: pass the extracted package folder", not advice to
    re-download a package."""
    result = run_validate_model(demo.package_dir, str(demo.package_dir.parent))
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines() == [
        "🔍 Validating model deployment...",
        f"❌ Validation failed: {demo.package_dir.parent / MANIFEST_FILE} not "
        "found: pass the extracted package folder",
    ]


def test_a_package_of_another_template_version_is_left_to_its_own_script(
    demo: Rendered, tmp_path: Path
) -> None:
    """PACKAGE_DIR whose validate_model.py is not this one (a package built
    by another version of the template, whose code this script's checks may
    not fit): exit 2, saying to run that package's own validate_model.py;
    it validates there."""
    there = copy_package(demo.package_dir, tmp_path / "there")
    with open(there / "validate_model.py", "a", encoding="utf-8") as script:
        script.write("# another version\n")
    resign_package(there)

    result = run_validate_model(demo.package_dir, str(there))

    assert result.returncode == 2, explain(result)
    assert result.stdout.splitlines()[-1] == (
        f"❌ Validation failed: {there} was built with another validate_model.py "
        "than this one, whose checks may not fit it: run its own, python "
        f"{there / 'validate_model.py'}"
    )
    assert run_validate_model(there).returncode == 0


def test_a_missing_manifest_in_the_scripts_own_package_is_a_missing_file(
    demo: Rendered, tmp_path: Path
) -> None:
    """``python validate_model.py`` in a package that lost its manifest: the
    integrity check names the missing file (exit 1), and does not ask for a
    package folder that was not given."""
    package = copy_package(demo.package_dir, tmp_path / "copy")
    (package / MANIFEST_FILE).unlink()

    result = run_validate_model(package)

    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines() == [
        "🔍 Validating model deployment...",
        "📁 Checking file integrity...",
        f"❌ {MANIFEST_FILE}: missing",
        "❌ Validation failed: file integrity check failed, inference_example.py "
        "was not imported: re-download the package and verify it",
    ]


def test_the_script_copied_out_of_its_package_asks_for_one(
    demo: Rendered, tmp_path: Path
) -> None:
    """validate_model.py copied to a folder of tools and run there without
    an argument: no package there at all, so it asks for the package folder
    (exit 1), and given one it validates it."""
    tools = tmp_path / "tools"
    tools.mkdir()
    shutil.copyfile(demo.package_dir / "validate_model.py", tools / "validate_model.py")

    alone = run_validate_model(tools)
    given = run_validate_model(tools, str(demo.package_dir))

    assert alone.returncode == 1, explain(alone)
    assert alone.stdout.splitlines()[-1] == (
        f"❌ Validation failed: {tools / MANIFEST_FILE} not found: pass the "
        "extracted package folder"
    )
    assert given.returncode == 0, explain(given)
    assert given.stdout.splitlines()[-1] == SUCCESS


def test_an_altered_script_in_another_package_is_an_altered_file(
    demo: Rendered, tmp_path: Path
) -> None:
    """PACKAGE_DIR whose validate_model.py was altered (not re-signed): an
    integrity failure naming it (exit 1), not another template version to
    run."""
    there = copy_package(demo.package_dir, tmp_path / "there")
    with open(there / "validate_model.py", "a", encoding="utf-8") as script:
        script.write("# altered\n")

    result = run_validate_model(demo.package_dir, str(there))

    assert result.returncode == 1, explain(result)
    assert "❌ validate_model.py: SHA-256 does not match the manifest" in (
        result.stdout.splitlines()
    )
    assert "run its own" not in result.stdout


@pytest.mark.parametrize("name", INVALID_SETTINGS)
def test_invalid_environment_variable_exits_2(runs: dict, name: str) -> None:
    """MODEL_THRESHOLD, MODEL_BATCH_SIZE, MODEL_TIMEOUT, LOG_LEVEL or
    LOG_FORMAT with an unusable value: exit 2 before loading, with a ❌ line
    naming the variable, its value and what to give instead."""
    value, fix = INVALID_SETTINGS[name]
    result = runs[f"invalid-{name}"]
    assert result.returncode == 2, explain(result)
    lines = lines_of(result)
    assert lines[-1] == f"❌ Validation failed: {name}={value!r} cannot be used: {fix}"
    assert LOADING not in lines


# The environment gate


def test_scikit_learn_mismatch_exits_2_naming_both_versions(runs: dict) -> None:
    """metadata.json says scikit-learn 1.0.2 built the model: exit 2 before
    loading, a ❌ line naming both versions, the fix and the override."""
    result = runs["sklearn-mismatch"]
    assert result.returncode == 2, explain(result)
    lines = result.stdout.splitlines()
    message = (
        f"scikit-learn {SKLEARN} differs from 1.0.2, which built the model; "
        "pickled trees are not portable across versions"
    )
    assert f"❌ {message}" in lines
    assert lines[-1] == (
        f"❌ Validation failed: {message}: pip install -r requirements.txt (it "
        "pins scikit-learn==1.0.2), or run with --allow-version-mismatch to check "
        "it anyway"
    )
    assert LOADING not in lines


def test_python_without_the_libraries_exits_2_as_the_readme_shows(
    demo: Rendered,
) -> None:
    """A Python that cannot import the package's libraries (``-S``: no
    site-packages): exit 2 and, after the heading, one line naming the first
    missing module and the install command, the line the README's
    troubleshooting shows."""
    result = subprocess.run(
        [sys.executable, "-S", "validate_model.py"],
        cwd=demo.package_dir,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=consumer_environment(),
    )
    assert result.returncode == 2, explain(result)
    line = (
        "❌ Validation failed: No module named 'joblib': run pip install -r "
        "requirements.txt"
    )
    assert result.stdout.splitlines() == ["🔍 Validating model deployment...", line]
    readme = (demo.package_dir / "README.md").read_text(encoding="utf-8")
    assert f"\n{line}\n" in readme


def test_scikit_learn_mismatch_allowed_is_a_warning(runs: dict) -> None:
    """The same package with ``--allow-version-mismatch``: exit 0, the
    mismatch is a ⚠️ line, and the self-test decides."""
    result = runs["sklearn-mismatch-allowed"]
    assert result.returncode == 0, explain(result)
    lines = result.stdout.splitlines()
    assert (
        f"⚠️  scikit-learn {SKLEARN} differs from 1.0.2, which built the model; "
        "pickled trees are not portable across versions: allowed by "
        "--allow-version-mismatch"
    ) in lines
    assert lines[-1] == SUCCESS


def test_other_library_difference_is_reported_not_fatal(runs: dict) -> None:
    """A numpy version that differs from the build's: a ⚠️ line, exit 0."""
    result = runs["notes"]
    assert result.returncode == 0, explain(result)
    recorded = "1.21.0" if NUMPY != "1.21.0" else "1.26.4"
    lines = result.stdout.splitlines()
    assert (
        f"⚠️  numpy differs from the build ({recorded} -> {NUMPY}): reported, not "
        "fatal; the self-test below shows whether scores changed"
    ) in lines
    assert f"✅ scikit-learn {SKLEARN}: same as the build" in lines
    assert lines[-1] == SUCCESS


def test_model_threshold_in_the_environment_does_not_change_the_self_test(
    runs: dict, self_test: dict
) -> None:
    """MODEL_THRESHOLD=0 (every row an anomaly, if it applied) is named in an
    information line; the self-test uses the package's own threshold: exit 0 with the
    recorded predictions."""
    result = runs["notes"]
    assert result.returncode == 0, explain(result)
    lines = result.stdout.splitlines()
    assert (
        "ℹ️  MODEL_THRESHOLD is set: it overrides inference_config in "
        "ModelInference (this self-test uses the package's own values)"
    ) in lines
    assert f"   Sample predictions: {self_test['predictions']}" in lines
    assert set(self_test["predictions"]) == {0, 1}


# A model pickled by another scikit-learn version


def test_repickled_model_warns_with_plain_joblib(packages: dict) -> None:
    """The byte-edited model.joblib is still a valid pickle: plain
    joblib.load loads it and scikit-learn warns that it was pickled with the
    other version."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = joblib.load(packages["pickled-elsewhere"] / "model.joblib")
    versions = {
        warning.message.original_sklearn_version
        for warning in caught
        if issubclass(warning.category, InconsistentVersionWarning)
    }
    assert versions == {PICKLED_WITH}
    assert type(model).__name__ == "IsolationForest"


def test_model_pickled_by_another_version_exits_2(runs: dict) -> None:
    """The recorded build environment matches, but model.joblib says another
    scikit-learn pickled it: exit 2 at loading, naming both versions, the pin
    and the override."""
    result = runs["pickled-elsewhere"]
    assert result.returncode == 2, explain(result)
    lines = result.stdout.splitlines()
    assert LOADING in lines
    assert lines[-1].startswith(
        f"❌ Validation failed: model.joblib was pickled with scikit-learn "
        f"{PICKLED_WITH} but {SKLEARN} is installed"
    )
    assert f"pip install scikit-learn=={PICKLED_WITH}" in lines[-1]
    assert "--allow-version-mismatch" in lines[-1]


def test_model_pickled_by_another_version_allowed(runs: dict) -> None:
    """With ``--allow-version-mismatch`` the same package loads and passes its
    self-test: exit 0."""
    result = runs["pickled-elsewhere-allowed"]
    assert result.returncode == 0, explain(result)
    assert result.stdout.splitlines()[-1] == SUCCESS


def test_model_inference_refuses_a_model_pickled_by_another_version(
    packages: dict, self_test: dict
) -> None:
    """ModelInference raises VersionMismatchError naming both versions; with
    ``allow_version_mismatch=True`` it loads (scikit-learn's warning shows)
    and scores the self-test as recorded."""
    folder = packages["pickled-elsewhere"]
    module = load_package_module(folder)
    with pytest.raises(
        module.VersionMismatchError,
        match=re.escape(
            f"model.joblib was pickled with scikit-learn {PICKLED_WITH} but "
            f"{SKLEARN} is installed"
        ),
    ):
        module.ModelInference(folder, environ={})
    with pytest.warns(InconsistentVersionWarning):
        inference = module.ModelInference(
            folder, allow_version_mismatch=True, environ={}
        )
    result = inference.predict(self_test["inputs"])
    assert result["scores"] == pytest.approx(self_test["scores"], abs=1e-9)


# The golden self-test and loading


def test_edited_expected_score_fails_naming_the_row(runs: dict) -> None:
    """One recorded self-test score off by 1e-6 (package re-signed): exit 1,
    the ❌ line names the row and the difference."""
    result = runs["golden-score"]
    assert result.returncode == 1, explain(result)
    last = lines_of(result)[-1]
    assert last.startswith(
        "❌ Validation failed: self-test scores differ from the recorded ones in "
        f"rows [{GOLDEN_SCORE_ROW}] (by up to 1e-06, tolerance 1e-09, relative for "
        "scores beyond 1)"
    )


def test_a_recorded_score_that_is_nan_fails_naming_the_row(runs: dict) -> None:
    """A recorded self-test score of NaN (package re-signed) matches no score:
    exit 1, naming the row."""
    result = runs["golden-score-nan"]
    assert result.returncode == 1, explain(result)
    assert lines_of(result)[-1].startswith(
        "❌ Validation failed: self-test scores differ from the recorded ones in "
        f"rows [{GOLDEN_SCORE_ROW}]"
    )


def test_large_scores_are_compared_relative_to_their_size(tmp_path: Path) -> None:
    """An EllipticEnvelope's scores (squared distances) run far beyond 1,
    where the last bits of a float are more than 1e-9: a recorded score off
    by 5e-11 of its size passes, one off by 1e-8 of it fails."""
    import numpy as np
    from sklearn.covariance import EllipticEnvelope

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) * [1.0, 1.0, 1e-3]
    joblib.dump(EllipticEnvelope(random_state=0).fit(X), tmp_path / "model.joblib")
    reference = tmp_path / "reference.csv"
    rows = np.vstack([X[:20], X[:5] + np.array([0.0, 0.0, 0.05])])
    reference.write_text(
        "a,b,c\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in rows.tolist())
    )
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={tmp_path / 'model.joblib'}",
        f"reference_data_path={reference}",
        "feature_names=a,b,c",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr
    scores = json.loads((rendered.package_dir / MANIFEST_FILE).read_text())[
        "self_test"
    ]["scores"]
    row = max(range(len(scores)), key=lambda index: scores[index])
    assert scores[row] > 100
    for share, code in ((5e-11, 0), (1e-8, 1)):
        package = copy_package(rendered.package_dir, tmp_path / f"copy-{share}")

        def edit(manifest: dict[str, Any], share: float = share) -> None:
            recorded = manifest["self_test"]["scores"]
            recorded[row] = recorded[row] * (1 + share)

        resign_package(package, edit)
        result = run_validate_model(package)
        assert result.returncode == code, explain(result)


def test_edited_expected_prediction_fails_naming_the_row(runs: dict) -> None:
    """One recorded self-test prediction flipped (package re-signed): exit 1,
    the ❌ line names the row."""
    result = runs["golden-prediction"]
    assert result.returncode == 1, explain(result)
    assert lines_of(result)[-1] == (
        "❌ Validation failed: self-test predictions differ from the recorded "
        f"ones in rows [{GOLDEN_PREDICTION_ROW}]: {MISMATCH_FIX}"
    )


@pytest.mark.parametrize(
    "run", ["self-test-short-scores", "self-test-short-predictions"]
)
def test_self_test_of_uneven_lengths_fails_without_a_traceback(
    runs: dict, run: str
) -> None:
    """A manifest whose self_test holds one score (or one prediction) fewer
    than inputs (package re-signed): exit 1 at the self-test, one ❌ line
    saying to rebuild the package, no traceback."""
    result = runs[run]
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines()[-2:] == [
        "🧪 Testing model inference...",
        "❌ Validation failed: deployment_manifest.json self_test has inputs, "
        "scores and predictions of different lengths: rebuild the package",
    ], explain(result)
    assert result.stderr == ""


def test_resigned_corrupt_model_fails_at_loading(runs: dict) -> None:
    """A corrupt model.joblib whose hashes were rewritten passes the integrity
    check but not loading: exit 1 with a ``loading failed`` line naming the
    file, the reason (unpickling's own words) and the fix."""
    result = runs["corrupt-model"]
    assert result.returncode == 1, explain(result)
    lines = result.stdout.splitlines()
    assert "✅ model.joblib: OK" in lines
    assert LOADING in lines
    assert re.fullmatch(
        r"❌ Validation failed: loading failed: UnpicklingError: model\.joblib "
        r"cannot be unpickled \(\w+: .+\): the file is corrupted; re-download "
        r"the package and verify it \(python validate_model\.py\)",
        lines[-1],
    ), lines[-1]
    assert not any(line.startswith("✅ Model loaded") for line in lines)


@pytest.mark.parametrize(
    ("variant", "error"),
    [("damaged-module", "SyntaxError: "), ("stripped-module", "ImportError: ")],
)
def test_damaged_inference_module_is_reported_not_a_traceback(
    runs: dict, variant: str, error: str
) -> None:
    """inference_example.py cut short, in the middle of a line (it no longer
    compiles) or before ModelInference (it compiles without it), in a package
    re-signed so (its SHA-256 matches): exit 1 with one ❌ line naming it and
    saying to re-download, no traceback; not a hint to install the
    requirements."""
    result = runs[variant]
    assert result.returncode == 1, explain(result)
    assert "Traceback" not in result.stderr
    assert lines_of(result)[-1].startswith(
        f"❌ Validation failed: inference_example.py cannot be imported ({error}"
    )
    assert lines_of(result)[-1].endswith(
        "the file is damaged; re-download the package and verify it "
        "(sha256sum -c SHA256SUMS)"
    )


def test_files_added_to_the_package_are_named(runs: dict) -> None:
    """Files and folders that are not the package's (joblib.py would be
    imported instead of joblib): a ⚠️ line names them, --json lists them,
    and the package still validates."""
    result = runs["files-added"]
    assert result.returncode == 0, explain(result)
    assert (
        "⚠️  Not part of the package (not checked): joblib.py, notes/, scored.csv; "
        "a .py file here is imported before an installed module of its name"
    ) in lines_of(result)
    report = json.loads(result.stdout)
    assert report["checks"]["integrity"]["not_in_package"] == [
        "joblib.py",
        "notes/",
        "scored.csv",
    ]


def test_files_named_like_standard_modules_are_not_run_by_the_scripts(
    demo: Rendered, tmp_path: Path
) -> None:
    """A .py file added to the folder under the name of a standard module
    that the scripts import (__future__, json, argparse) is not run by
    validate_model.py, inference_example.py's command line nor serve.py:
    none looks in its folder for a module, from its first import on."""
    folder = copy_package(demo.package_dir, tmp_path)
    shutil.copyfile(
        TEMPLATE_DIR / "{{cookiecutter.package_name}}" / "serve.py", folder / "serve.py"
    )
    planted = ["__future__.py", "argparse.py", "json.py"]
    for name in planted:
        (folder / name).write_text(
            f"open({str(tmp_path / name)!r} + '.ran', 'w').close()\n"
            "raise SystemExit(0)\n",
            encoding="utf-8",
        )

    validated, helped, served, helped_as_module = (
        subprocess.run(
            [sys.executable, *command],
            cwd=folder,
            capture_output=True,
            text=True,
            encoding="utf-8",
        )
        for command in (
            ["validate_model.py"],
            ["inference_example.py", "--help"],
            ["serve.py", "--help"],
            ["-m", "inference_example", "--help"],
        )
    )

    assert sorted(path.name for path in tmp_path.glob("*.ran")) == []
    assert served.returncode == 0, served.stderr
    assert served.stdout.startswith("usage: serve.py")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert (
        "⚠️  Not part of the package (not checked): __future__.py, argparse.py, "
        "json.py, serve.py; a .py file here is imported before an installed module "
        "of its name"
    ) in validated.stdout.splitlines()
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: inference_example.py")
    assert helped_as_module.returncode == 0, helped_as_module.stderr
    assert helped_as_module.stdout == helped.stdout


@pytest.mark.parametrize("first", ["libraries", "package"])
@pytest.mark.parametrize(
    ("script", "arguments", "exit_code", "python_options"),
    [
        ("validate_model.py", [], 0, []),
        ("inference_example.py", ["--help"], 0, []),
        ("serve.py", ["--help"], 0, []),
        # -S: no site-packages, so the script stops at importing joblib.
        ("validate_model.py", [], 2, ["-S"]),
        ("inference_example.py", ["--help"], 2, ["-S"]),
        ("serve.py", ["--help"], 1, ["-S"]),
    ],
)
def test_scripts_run_from_other_code_leave_its_import_path_alone(
    demo: Rendered,
    tmp_path: Path,
    script: str,
    arguments: list[str],
    exit_code: int,
    python_options: list[str],
    first: str,
) -> None:
    """Run through runpy (as IPython's %run and other launchers do), a script
    leaves the caller's sys.path as it was, also when the caller put the
    package folder first (as the README's pattern does, or an IPython
    started in it), and also when a missing library stops it: the folder is
    off sys.path only while the script runs, so a file there named like a
    library (argparse.py) is not run."""
    folder = copy_package(demo.package_dir, tmp_path / "copy")
    shutil.copyfile(
        TEMPLATE_DIR / "{{cookiecutter.package_name}}" / "serve.py", folder / "serve.py"
    )
    (folder / "argparse.py").write_text(
        f"open({str(tmp_path / 'planted.ran')!r}, 'w').close()\n", encoding="utf-8"
    )
    entry = str(tmp_path / "libraries") if first == "libraries" else str(folder)
    caller = tmp_path / "caller.py"
    caller.write_text(
        "import runpy, sys\n"
        f"sys.path.insert(0, {entry!r})\n"
        "before = list(sys.path)\n"
        f"sys.argv = [{script!r}, *{arguments!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(folder / script)!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    code = stop.code or 0\n"
        "    if isinstance(code, str):  # as Python itself exits on it\n"
        "        print(code, file=sys.stderr)\n"
        "        code = 1\n"
        "print(code, sys.path == before, sys.path[0])\n",
        encoding="utf-8",
    )

    result = subprocess.run(
        [sys.executable, *python_options, str(caller)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{exit_code} True {entry}"
    if python_options:
        assert "pip install -r requirements.txt" in result.stderr + result.stdout
    assert not (tmp_path / "planted.ran").exists()


# Feature compatibility

CHECKING_FEATURES = "🔢 Checking feature compatibility..."


def assert_features_refused(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit 1 at the feature check with ``❌ Validation failed: <message>``,
    before the self-test, and no traceback."""
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines()[-2:] == [
        CHECKING_FEATURES,
        f"❌ Validation failed: {message}: {MISMATCH_FIX}",
    ], explain(result)
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("run", "source"),
    [
        ("manifest-feature-count", MANIFEST_FILE),
        ("metadata-feature-count", "metadata.json"),
    ],
)
def test_a_feature_count_that_disagrees_with_the_names_fails(
    runs: dict, run: str, source: str
) -> None:
    """training_info.feature_count one short of the feature_names listed, in
    the manifest or in metadata.json (package re-signed): exit 1, naming the
    file, its count and the expected one."""
    assert_features_refused(
        runs[run],
        f"{source} feature_count is {OTHER_FEATURE_COUNT}, expected "
        f"{DEMO_FEATURE_COUNT}",
    )


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (
            "scaler-of-other-width",
            f"the scaler expects {OTHER_FEATURE_COUNT} features, the manifest "
            f"lists {DEMO_FEATURE_COUNT}",
        ),
        (
            "model-of-other-width",
            f"the model expects {OTHER_FEATURE_COUNT} features, the scaler puts "
            f"out {DEMO_FEATURE_COUNT}",
        ),
    ],
)
def test_a_scaler_or_model_fitted_on_another_number_of_features_fails(
    runs: dict, run: str, message: str
) -> None:
    """A scaler.joblib, or a model.joblib, fitted on one feature fewer than
    the package lists (package re-signed): exit 1, naming the step and both
    counts."""
    assert_features_refused(runs[run], message)


@pytest.mark.parametrize(
    ("run", "step", "given_by"),
    [
        ("scaler-named-otherwise", "scaler", "the manifest lists"),
        ("model-named-otherwise", "model", "the scaler puts out"),
    ],
)
def test_a_scaler_or_model_fitted_on_other_column_names_fails(
    runs: dict, packages: dict[str, Path], run: str, step: str, given_by: str
) -> None:
    """The scaler, or the model, as fitted on a DataFrame whose first two
    columns bore each other's names (same numbers, package re-signed): exit
    1, naming the features it was fitted on and those it would be given."""
    names = feature_names_of(packages["intact"])
    assert len(names) == DEMO_FEATURE_COUNT
    assert_features_refused(
        runs[run],
        f"the {step} was fitted on features {swapped(names)}, {given_by} {names}",
    )


# inference_example.py is checked before it is imported

NOT_MATCHING = "SHA-256 does not match the manifest"
MODULE_NOT_IMPORTED = (
    "❌ Validation failed: file integrity check failed, inference_example.py was "
    "not imported: re-download the package and verify it"
)


def assert_module_not_imported(
    result: subprocess.CompletedProcess, problem: str
) -> None:
    """validate_model.py refused to import inference_example.py: exit 1, the
    integrity step's ``❌ <problem>`` line, the failure, and nothing else."""
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines() == [
        "🔍 Validating model deployment...",
        "📁 Checking file integrity...",
        f"❌ {problem}",
        MODULE_NOT_IMPORTED,
    ]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("run", "problem"),
    [
        ("module-numpx", NOT_MATCHING),
        ("module-unlisted", "has no SHA-256 in the manifest"),
    ],
)
def test_tampered_inference_module_is_refused_before_it_is_imported(
    runs: dict, run: str, problem: str
) -> None:
    """inference_example.py edited so that importing it would fail like a
    missing library (``import numpx as np``), its SHA-256 no longer the
    manifest's, or the manifest holding none for it: exit 1, the file named
    as not matching, and it is never imported (no "pip install" advice, no
    other module named)."""
    assert_module_not_imported(runs[run], f"{MODULE_FILE}: {problem}")


def test_signed_module_needing_a_missing_library_is_an_environment_problem(
    runs: dict,
) -> None:
    """The same edit in a package re-signed so (its SHA-256 matches): the
    package vouches for the file, so it is imported, and the library it
    needs but this Python lacks is exit 2 with the install command, as a
    real missing dependency is."""
    result = runs["module-numpx-resigned"]
    assert result.returncode == 2, explain(result)
    assert lines_of(result)[-1] == (
        "❌ Validation failed: No module named 'numpx': run pip install -r "
        "requirements.txt"
    )


@pytest.mark.parametrize(
    ("run", "refused"),
    [
        (
            "module-vouched-by-manifest-only",
            f"{MANIFEST_FILE}: SHA-256 does not match SHA256SUMS",
        ),
        (
            "module-vouched-in-sums-too",
            f"{MANIFEST_FILE}: SHA-256 does not match SHA256SUMS",
        ),
        (
            "module-vouched-without-sums",
            "SHA256SUMS: missing (it holds the manifest's SHA-256)",
        ),
    ],
)
def test_module_vouched_for_by_an_altered_manifest_is_not_imported(
    runs: dict, run: str, refused: str
) -> None:
    """An edited inference_example.py whose new SHA-256 was put in the
    manifest (and in SHA256SUMS's line for it), but not the new manifest's
    in SHA256SUMS (or with SHA256SUMS gone): SHA256SUMS must vouch for the
    manifest, and the manifest for the module, checked with the standard
    library, so the edited code (which would print EDITED and exit 0) never
    runs; exit 1, the file at fault named, also in a --json report."""
    assert_module_not_imported(runs[run], refused)
    as_json = runs["module-vouched-by-manifest-only-json"]
    assert "EDITED" not in as_json.stdout
    report = json.loads(as_json.stdout)
    assert (report["valid"], report["exit_code"]) == (False, 1)
    assert report["lines"][-2:] == [
        f"❌ {MANIFEST_FILE}: SHA-256 does not match SHA256SUMS",
        MODULE_NOT_IMPORTED,
    ]


@pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(),
    reason="needs named pipes and /dev/zero",
)
@pytest.mark.parametrize("run", ["sums-a-device", "sums-a-pipe"])
def test_sha256sums_that_is_not_a_regular_file_is_never_read(
    runs: dict, packages: dict[str, Path], run: str
) -> None:
    """SHA256SUMS replaced by a link to /dev/zero, or by a named pipe: never
    read (the one would fill memory, the other wait for ever); exit 1 naming
    it as not a regular file, and ModelInference says the same."""
    result = runs[run]
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines()[-2:] == [
        "❌ SHA256SUMS: not a regular file",
        MODULE_NOT_IMPORTED,
    ]
    assert result.stderr == ""
    module = load_package_module(packages[run])
    with pytest.raises(module.IntegrityError, match="SHA256SUMS: not a regular file"):
        module.ModelInference(packages[run], environ={})


def test_byte_code_in_pycache_is_not_what_runs(
    runs: dict, packages: dict[str, Path]
) -> None:
    """Byte-code in __pycache__ that Python's import would take for
    inference_example.py's is never run: validate_model.py runs the very
    bytes it checked, and the package validates."""
    folder = packages["planted-bytecode"]
    planted = subprocess.run(
        [sys.executable, "-c", "import inference_example"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (planted.returncode, planted.stdout) == (3, "PLANTED\n")  # it would run
    result = runs["planted-bytecode"]
    assert result.returncode == 0, explain(result)
    assert "PLANTED" not in result.stdout
    assert result.stdout.splitlines()[-1] == SUCCESS


def test_a_module_of_the_same_name_elsewhere_is_not_what_runs(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    """An inference_example.py on PYTHONPATH, which ``import`` would find
    before the package's own (installed libraries come first for this
    script): validate_model.py runs the package's file, and it validates."""
    (tmp_path / "inference_example.py").write_text(
        "print('SHADOW')\nraise SystemExit(3)\n", encoding="utf-8"
    )
    result = run_validate_model(
        packages["intact"], env=consumer_environment(PYTHONPATH=str(tmp_path))
    )
    assert result.returncode == 0, explain(result)
    assert "SHADOW" not in result.stdout
    assert result.stdout.splitlines()[-1] == SUCCESS


def test_tampered_inference_module_in_a_json_report(runs: dict) -> None:
    """``--json`` on the package whose inference_example.py imports numpx:
    one JSON report, valid false, exit_code 1, the integrity check failed on
    inference_example.py."""
    result = runs["module-numpx-json"]
    assert result.returncode == 1, explain(result)
    report = json.loads(result.stdout)
    assert (report["valid"], report["exit_code"]) == (False, 1)
    assert f"❌ Validation failed: {report['error']}" == MODULE_NOT_IMPORTED
    assert report["checks"] == {
        "integrity": {"passed": False, "files": {MODULE_FILE: NOT_MATCHING}}
    }
    assert report["lines"][-2:] == [
        f"❌ {MODULE_FILE}: {NOT_MATCHING}",
        MODULE_NOT_IMPORTED,
    ]


def test_tampered_inference_module_with_quiet(runs: dict) -> None:
    """``--quiet`` on the same package: exit 1 and only the two ❌ lines."""
    result = runs["module-numpx-quiet"]
    assert result.returncode == 1, explain(result)
    assert result.stdout.splitlines() == [
        f"❌ {MODULE_FILE}: {NOT_MATCHING}",
        MODULE_NOT_IMPORTED,
    ]


def site_packages_without(tmp_path: Path, distribution: str) -> Path:
    """A folder of links to every entry of this Python's site-packages but
    ``distribution``'s: with ``python -S`` and it on PYTHONPATH, that library
    is not installed."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    farm = tmp_path / "site-packages"
    farm.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(distribution):
            (farm / entry.name).symlink_to(entry)
    return farm


def test_a_library_missing_for_scoring_is_an_environment_problem(
    rendered_samples: dict[str, Rendered], tmp_path: Path
) -> None:
    """A package whose model was fitted on a DataFrame, validated by a Python
    without pandas: exit 2, the environment's problem, with what to install;
    not exit 1, which calls the package bad. A pandas.py added to the
    package folder is not imported in its place."""
    farm = site_packages_without(tmp_path, "pandas")
    folder = copy_package(rendered_samples["dataframe"].package_dir, tmp_path)
    (folder / "pandas.py").write_text("print('PLANTED')\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-S", "validate_model.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=consumer_environment(PYTHONPATH=str(farm)),
        timeout=600,
    )
    assert "PLANTED" not in result.stdout
    assert result.returncode == 2, explain(result)
    assert result.stdout.splitlines()[-1] == (
        "❌ Validation failed: scoring needs pandas, which this Python cannot "
        "import: pip install -r requirements.txt"
    )
