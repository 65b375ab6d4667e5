"""The template through pytest-cookies, the way cookiecutter's own API runs it."""

from __future__ import annotations

import json

from conftest import VERSION, run_validate_model
from cookiecutter.exceptions import FailedHookException


def test_bake_with_defaults_builds_a_valid_package(cookies) -> None:
    """Baking with the defaults gives the demo package and its zip, and the
    package passes its own validate_model.py."""
    result = cookies.bake(extra_context={"version": VERSION})
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    assert result.project_path.name == f"model_{VERSION}_deployment"
    manifest = json.loads(
        (result.project_path / "deployment_manifest.json").read_text()
    )
    assert manifest["model_version"] == VERSION
    zip_path = result.project_path.with_name(result.project_path.name + ".zip")
    assert zip_path.is_file()
    validation = run_validate_model(result.project_path)
    assert validation.returncode == 0, validation.stdout
    assert validation.stdout.splitlines()[-1] == (
        "🎉 Model validation completed successfully!"
    )


def test_bake_with_a_bad_answer_fails_in_the_pre_gen_hook(cookies) -> None:
    """A bad answer makes the pre-generation hook fail; no project is made."""
    result = cookies.bake(extra_context={"version": VERSION, "batch_size": "0"})
    assert result.exit_code != 0
    assert isinstance(result.exception, FailedHookException)
    assert result.project_path is None
