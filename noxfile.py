"""Sessions for rendering, validating, testing and linting the template.

nox -s render validate   # build the demo and sample packages into dist/, check them
nox -s tests             # the test suite
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
SNIPPETS = ROOT / "tests" / "snippets"
BUILD_DEPS = ["cookiecutter", "scikit-learn", "pandas", "joblib"]
# Scoring on Spark (tests/test_spark.py, the benchmark's Spark row); Java too.
SPARK_DEPS = ["pyspark[sql]>=3.5"]
TEST_DEPS = [*BUILD_DEPS, "pytest", "pytest-cookies", "flask>=3.0,<4", *SPARK_DEPS]
LINT_DEPS = ["ruff"]
LINT_PATHS = ["hooks", "tests", "noxfile.py", "local_extensions.py"]
SAMPLE_VERSIONS = {
    "scaled": "20241201_120001",
    "no_scaler": "20241201_120002",
    "dataframe": "20241201_120003",
}
DEMO_VERSION = "20241201_120000"
API_SERVICE_VERSION = "20241201_120004"  # the demo model with serve.py

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (real cookiecutter renders; pass pytest arguments)."""
    session.install(*TEST_DEPS)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def render(session: nox.Session) -> None:
    """Render the demo (also with serve.py) and the sample packages into dist/
    (posargs: extra answers)."""
    session.install(*BUILD_DEPS)
    if DIST.exists():
        shutil.rmtree(DIST)
    DIST.mkdir()
    artifacts = Path(session.create_tmp()).resolve() / "artifacts"
    if artifacts.exists():
        shutil.rmtree(artifacts)
    samples = json.loads(
        session.run(
            "python",
            str(ROOT / "tests" / "sample_artifacts.py"),
            str(artifacts),
            silent=True,
        )
    )
    cookiecutter = ["cookiecutter", str(ROOT), "--no-input", "--output-dir", str(DIST)]
    session.run(*cookiecutter, f"version={DEMO_VERSION}", *session.posargs)
    session.run(
        *cookiecutter,
        f"version={API_SERVICE_VERSION}",
        "include_api_service=yes",
        *session.posargs,
    )
    for name, answers in samples.items():
        with session.chdir(artifacts):
            session.run(
                *cookiecutter,
                f"version={SAMPLE_VERSIONS[name]}",
                *(f"{key}={value}" for key, value in answers.items()),
                *session.posargs,
            )
    session.log(
        f"packages in {DIST}: " + ", ".join(p.name for p in sorted(DIST.glob("*.zip")))
    )


@nox.session
def validate(session: nox.Session) -> None:
    """Unzip each package in dist/, install its requirements.txt into a fresh
    virtual environment, and run validate_model.py and a prediction there; where
    the package has serve.py, start it and POST one record."""
    zips = sorted(DIST.glob("model_*_deployment.zip"))
    if not zips:
        session.error("no packages in dist/: run `nox -s render` first")
    for zip_path in zips:
        workdir = Path(session.create_tmp()).resolve() / zip_path.stem
        if workdir.exists():
            shutil.rmtree(workdir)
        shutil.unpack_archive(zip_path, workdir)
        (package,) = workdir.iterdir()
        venv = workdir / "venv"
        session.run(sys.executable, "-m", "venv", str(venv), external=True)
        bin_dir = "Scripts" if sys.platform == "win32" else "bin"
        python = str(venv / bin_dir / "python")
        with session.chdir(package):
            session.run(
                python,
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                "requirements.txt",
                external=True,
            )
            session.run(python, "validate_model.py", external=True)
            snippet = (
                "pattern_1.py" if DEMO_VERSION in zip_path.name else "one_record.py"
            )
            code = (SNIPPETS / snippet).read_text(encoding="utf-8")
            session.run(python, "-c", code, external=True, silent=False)
            if (package / "serve.py").is_file():
                code = (SNIPPETS / "api_service.py").read_text(encoding="utf-8")
                session.run(python, "-c", code, external=True, silent=False)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check the hooks, tests, noxfile and the package's files."""
    session.install(*LINT_DEPS)
    package = ROOT / "{{cookiecutter.package_name}}"
    session.run("ruff", "check", *LINT_PATHS, str(package))
    session.run("ruff", "format", "--check", *LINT_PATHS, str(package))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark scoring, loading and packaging against bare scikit-learn and
    cp/sha256sum/zip; print a table, write dist/bench.json (posargs: --quick,
    --json PATH, --model-mb 50 200, ...; see tests/benchmark.py --help)."""
    session.install(*BUILD_DEPS, *SPARK_DEPS)
    workdir = Path(session.create_tmp()).resolve()
    session.run(
        "python",
        str(ROOT / "tests" / "benchmark.py"),
        "--workdir",
        str(workdir),
        *session.posargs,
    )
