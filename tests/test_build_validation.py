"""The build's own run of validate_model.py (package_builder.build.Validation).

The build starts that Python when it starts, so that its imports overlap the
build's own work, and lets it run the script once the package is complete.
These tests hold it to what a consumer's ``python validate_model.py`` does,
on private copies of the demo package.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Rendered, copy_package, run_validate_model
from package_builder.build import BuildError, Validation

MARKER_SCRIPT = """\
from pathlib import Path
Path("ran.txt").write_text("validate_model.py ran")
"""


def test_build_run_prints_what_a_consumer_run_prints(
    demo: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same package, same output, line for line, as ``python validate_model.py``
    (output block-buffered, as it is for a builder)."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    package = copy_package(demo.package_dir, tmp_path)
    consumer = run_validate_model(package)
    assert consumer.returncode == 0, consumer.stdout + consumer.stderr

    with Validation(package) as validation:
        validation.start()
        output = validation.wait()

    assert consumer.stderr == ""
    assert output == consumer.stdout
    assert "🎉 Model validation completed successfully!" in output.splitlines()


def test_build_run_of_a_tampered_package_raises_with_the_report(
    demo: Rendered, tmp_path: Path
) -> None:
    """A model that no longer matches its hash fails the run; the error carries
    validate_model.py's own report, which names the file."""
    package = copy_package(demo.package_dir, tmp_path)
    model = package / "model.joblib"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")

    with Validation(package) as validation:
        validation.start()
        with pytest.raises(BuildError) as raised:
            validation.wait()

    message = str(raised.value)
    assert message.startswith("the package failed its own validation")
    assert "❌ model.joblib: SHA-256 does not match the manifest" in message


def test_build_run_ignores_the_builders_model_settings(
    demo: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MODEL_THRESHOLD the builder has set (here one that validate_model.py
    would refuse with exit 2) does not reach the build's run."""
    package = copy_package(demo.package_dir, tmp_path)
    monkeypatch.setenv("MODEL_THRESHOLD", "not-a-number")

    with Validation(package) as validation:
        validation.start()
        output = validation.wait()

    assert "MODEL_THRESHOLD" not in output
    assert "🎉 Model validation completed successfully!" in output.splitlines()


def test_build_run_not_started_runs_nothing_and_stops(
    demo: Rendered, tmp_path: Path
) -> None:
    """A build that fails before its package is complete never lets the script
    run, and leaves no process behind; one that starts it does run it."""
    package = copy_package(demo.package_dir, tmp_path)
    (package / "validate_model.py").write_text(MARKER_SCRIPT, encoding="utf-8")

    with Validation(package) as validation:
        process = validation.process
    assert process.returncode is not None
    assert not (package / "ran.txt").exists()

    with Validation(package) as validation:
        validation.start()
        validation.wait()
    assert (package / "ran.txt").read_text() == "validate_model.py ran"


def test_build_run_killed_by_a_signal_fails_the_build(
    demo: Rendered, tmp_path: Path
) -> None:
    """A validate_model.py that never exits by itself (killed, as by the
    out-of-memory killer: a negative return code) fails the build with
    what it printed: no zip of a package that was not seen to pass."""
    package = copy_package(demo.package_dir, tmp_path)
    (package / "validate_model.py").write_text(
        "import os, signal\n"
        "print('checking...', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n",
        encoding="utf-8",
    )

    with Validation(package) as validation:
        validation.start()
        with pytest.raises(BuildError) as raised:
            validation.wait()

    assert validation.process.returncode == -9
    assert str(raised.value) == (
        "the package failed its own validation, so no zip was written:\nchecking...\n"
    )


def test_build_run_does_not_see_the_builders_pythonpath(
    demo: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that only the builder's PYTHONPATH provides cannot be imported
    by the build's run, as it cannot by a consumer's: a model that needs it
    at scoring time fails here."""
    modules = tmp_path / "builder_modules"
    modules.mkdir()
    (modules / "builders_helper.py").write_text("", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(modules))
    package = copy_package(demo.package_dir, tmp_path)
    (package / "validate_model.py").write_text(
        "import importlib.util\nprint(importlib.util.find_spec('builders_helper'))\n",
        encoding="utf-8",
    )

    with Validation(package) as validation:
        validation.start()
        output = validation.wait()

    assert output == "None\n"
