"""Shared helpers: render the template for real and load what it produced."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from package_builder.archive import file_hashes, write_json, write_sha256sums
from package_builder.build import CONSUMER_SETTINGS
from sample_artifacts import write_samples

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
VERSION = "20241201_143022"
MANIFEST_FILE = "deployment_manifest.json"
# What a builder's metadata.json may hold as a top-level "monitoring" key,
# which the build refuses (the package's monitoring section is its own).
GIVEN_MONITORING_SECTIONS = [
    pytest.param("x", id="text"),
    pytest.param(7, id="number"),
    pytest.param([1], id="list"),
    pytest.param({"features": 1}, id="object"),
]
T = TypeVar("T")


@dataclass
class Rendered:
    """The outcome of one ``cookiecutter`` command."""

    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    package_dir: Path
    zip_path: Path


def cookiecutter_command(
    output_dir: Path,
    *answers: str,
    template: Path = TEMPLATE_DIR,
    version: str = VERSION,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The cookiecutter command line that renders ``template`` into
    ``output_dir`` with ``answers``, without prompting."""
    return [
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
    ]


def run_cookiecutter(
    output_dir: Path,
    *answers: str,
    cwd: Path | None = None,
    template: Path = TEMPLATE_DIR,
    version: str = VERSION,
    extra_args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Rendered:
    """Run the cookiecutter command line as a builder would, non-interactively
    (``env``: variables to add to the environment)."""
    result = subprocess.run(
        cookiecutter_command(
            output_dir,
            *answers,
            template=template,
            version=version,
            extra_args=extra_args,
        ),
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        # Output buffered as a builder's is (a pipe is block-buffered).
        env={
            **{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
            **(env or {}),
        },
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


def consumer_environment(**settings: str) -> dict[str, str]:
    """``os.environ`` without the consumer settings (MODEL_*, LOG_*), plus
    ``settings``: a developer's own MODEL_THRESHOLD must not change a test.
    No byte-code is written into the package folders."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in CONSUMER_SETTINGS
    }
    environment.update(PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    environment.update(settings)
    return environment


def run_validate_model(
    package_dir: Path, *arguments: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a package's validate_model.py in its folder, as a consumer would.

    ``env`` defaults to ``consumer_environment()``.
    """
    return subprocess.run(
        [sys.executable, "validate_model.py", *arguments],
        cwd=package_dir,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=dict(consumer_environment() if env is None else env),
        timeout=600,  # a hang fails the test, not the whole run
    )


def run_concurrently(jobs: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """Call every job at once, one thread each up to the CPU count; return
    the results by name. For jobs that wait on a subprocess (validate_model.py
    imports scikit-learn for a second or two), so that a module's many runs
    overlap."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
    return {name: future.result() for name, future in futures.items()}


def write_only_file() -> Path | None:
    """A file that no process can read, root included: a write-only sysctl
    (root reads an ordinary file whatever its mode, so ``chmod 000`` would
    not do). None where there is none (not Linux)."""
    for name in ("vm/compact_memory", "net/ipv4/route/flush"):
        path = Path("/proc/sys", name)
        try:
            path.open("rb").close()
        except PermissionError:
            return path
        except OSError:
            continue
    return None


def render_with_metadata(
    tmp_path: Path, model: Path, given: dict[str, Any], *answers: str
) -> Rendered:
    """Package ``model`` with ``given`` as the builder's metadata.json (and
    ``answers``), without a zip, into ``tmp_path / "out"``; check that it
    builds."""
    (tmp_path / "given.json").write_text(json.dumps(given), encoding="utf-8")
    rendered = run_cookiecutter(
        tmp_path / "out",
        f"model_path={model}",
        f"metadata_path={tmp_path / 'given.json'}",
        "create_zip=no",
        *answers,
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered


def copy_package(package_dir: Path, parent: Path) -> Path:
    """A private copy of a rendered package folder, to edit."""
    return Path(shutil.copytree(package_dir, Path(parent) / package_dir.name))


def resign_package(
    package_dir: Path, edit_manifest: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Make a deliberately edited package intact again, as if it had been
    built that way elsewhere: apply ``edit_manifest`` to the manifest, hash
    every file that ``file_integrity`` names again (with the build's own
    archive functions), update the sizes in ``model_artifacts``, rewrite
    deployment_manifest.json and SHA256SUMS. Returns the new manifest."""
    path = package_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if edit_manifest is not None:
        edit_manifest(manifest)
    names = list(manifest["file_integrity"])
    manifest["file_integrity"] = file_hashes(package_dir, names)

    def size(name: str | None) -> int:
        path = package_dir / name if name else None
        return path.stat().st_size if path and path.is_file() else 0

    files = manifest["files"]
    manifest["model_artifacts"] = {
        "model_size_bytes": size(files["model_file"]),
        "scaler_size_bytes": size(files.get("scaler_file")),
        "total_package_size": sum(size(name) for name in names),
    }
    write_json(path, manifest)
    write_sha256sums(package_dir, known=manifest["file_integrity"])
    return manifest


SKLEARN = importlib.metadata.version("scikit-learn")


def same_length_other_version(version: str) -> str:
    """Another version string of the same length: 1.9.1 -> 1.0.1."""
    major, minor = version.split(".", 2)[:2]
    other = str((int(minor[0]) + 1) % 10) + minor[1:]
    return version.replace(f"{major}.{minor}", f"{major}.{other}", 1)


def repickle_version(path: Path, version: str) -> None:
    """Rewrite the scikit-learn version pickled into ``path`` at the byte
    level. The string keeps its length, so the pickle stays valid: only the
    recorded ``_sklearn_version`` changes."""
    old = SKLEARN.encode()
    assert len(version) == len(old)
    prefix = b"\x8c" + bytes([len(old)])  # SHORT_BINUNICODE of that length
    data = path.read_bytes()
    assert data.count(prefix + old) >= 1
    path.write_bytes(data.replace(prefix + old, prefix + version.encode()))


def template_copy(parent: Path) -> Path:
    """A private copy of the template under ``parent``, to edit."""
    return Path(
        shutil.copytree(
            TEMPLATE_DIR,
            parent / "template",
            ignore=shutil.ignore_patterns(".git", ".nox", "dist"),
        )
    )


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``, hidden ones too, by relative path: the
    bytes of a file, None for a folder."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        if path.is_file()
        else None
        for path in sorted(folder.rglob("*"))
    }


def builders_model(
    folder: Path, module_source: str, model: str, dump_options: str = ""
) -> dict[str, str]:
    """Dump ``model``, an expression over X (200 rows, 3 columns) that uses
    the builder's own module ``house_models`` (``module_source``), into
    ``folder``/house.joblib (``dump_options``: more arguments of joblib.dump,
    ", compress=3"); return the environment that finds the module."""
    code = folder / "code"
    code.mkdir()
    (code / "house_models.py").write_text(module_source, encoding="utf-8")
    env = {"PYTHONPATH": str(code)}
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import joblib, numpy, house_models; "
            "X = numpy.random.default_rng(0).normal(size=(200, 3)); "
            f"joblib.dump({model}, 'house.joblib'{dump_options})",
        ],
        cwd=folder,
        env={**os.environ, **env},
        check=True,
    )
    return env


def unreadable_file(path: Path) -> Path:
    """Make ``path`` a file that exists but that no process can read, root
    included (``chmod 000`` does not stop root): a link to a write-only
    sysctl. Skips the test where there is none (not Linux)."""
    for name in ("vm/compact_memory", "net/ipv4/route/flush"):
        target = Path("/proc/sys", name)
        try:
            target.open("rb").close()
        except PermissionError:
            path.symlink_to(target)
            return path
        except OSError:
            continue
    pytest.skip("no write-only /proc/sys file to stand for an unreadable file")


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With REQUIRE_ALL_TESTS set (as .ci/run sets it), a skipped test fails
    the run: a missing tool or library must not pass for a green suite."""
    if not os.environ.get("REQUIRE_ALL_TESTS") or exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write("\n")
        reporter.write_line(
            f"REQUIRE_ALL_TESTS: {len(skipped)} test(s) skipped; install what "
            "they need (pytest -rs names it)",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
