"""Shared helpers: render the template for real and load what it produced."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sample_artifacts import write_samples

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
VERSION = "20241201_143022"


@dataclass
class Rendered:
    """The outcome of one ``cookiecutter`` command."""

    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    package_dir: Path
    zip_path: Path


def run_cookiecutter(
    output_dir: Path,
    *answers: str,
    cwd: Path | None = None,
    template: Path = TEMPLATE_DIR,
    version: str = VERSION,
    extra_args: tuple[str, ...] = (),
) -> Rendered:
    """Run the cookiecutter command line as a builder would, non-interactively."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(template),
            "--no-input",
            "--output-dir",
            str(output_dir),
            *extra_args,
            f"version={version}",
            *answers,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    name = f"model_{version}_deployment"
    return Rendered(
        result.returncode,
        result.stdout,
        result.stderr,
        Path(output_dir),
        Path(output_dir, name),
        Path(output_dir, f"{name}.zip"),
    )


def run_validate_model(package_dir: Path) -> subprocess.CompletedProcess:
    """Run a package's validate_model.py in its folder, as a consumer would."""
    return subprocess.run(
        [sys.executable, "validate_model.py"],
        cwd=package_dir,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )


def answers_for(sample: dict[str, str]) -> list[str]:
    """Turn a sample's answers into ``key=value`` arguments."""
    return [f"{key}={value}" for key, value in sample.items()]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Sample artifacts in a folder outside the template, and their answers."""
    directory = tmp_path_factory.mktemp("artifacts")
    return directory, write_samples(directory)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The demo package, rendered once for the whole session."""
    rendered = run_cookiecutter(tmp_path_factory.mktemp("demo"))
    assert rendered.returncode == 0, rendered.stderr
    return rendered


@pytest.fixture(scope="session")
def rendered_samples(
    tmp_path_factory: pytest.TempPathFactory, artifacts: tuple[Path, dict]
) -> dict[str, Rendered]:
    """Each sample packaged from relative paths, run from the artifacts' folder."""
    directory, samples = artifacts
    results = {}
    for name, sample in samples.items():
        rendered = run_cookiecutter(
            tmp_path_factory.mktemp(name), *answers_for(sample), cwd=directory
        )
        assert rendered.returncode == 0, rendered.stderr
        results[name] = rendered
    return results
