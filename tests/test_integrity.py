"""A tampered package is refused before any pickle is loaded."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from conftest import Rendered, run_validate_model
from package_builder.build import load_package_module


class _WritesMarker:
    """Unpickling this object creates the file named by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture
def package(demo: Rendered, tmp_path: Path) -> Path:
    """A private copy of the demo package to tamper with."""
    return Path(shutil.copytree(demo.package_dir, tmp_path / demo.package_dir.name))


@pytest.mark.parametrize("name", ["model.joblib", "scaler.joblib"])
def test_replaced_pickle_is_never_loaded(
    package: Path, tmp_path: Path, name: str
) -> None:
    """A replaced joblib file fails the hash check: validate_model.py exits 1
    naming it, ModelInference raises, and the pickle's code never runs."""
    marker = tmp_path / "pickle-code-ran"
    (package / name).write_bytes(pickle.dumps(_WritesMarker(marker)))
    result = run_validate_model(package)
    assert result.returncode == 1
    assert f"❌ {name}: SHA-256 does not match the manifest" in result.stdout
    assert "🤖 Loading model..." not in result.stdout
    module = load_package_module(package)
    with pytest.raises(module.IntegrityError, match=name):
        module.ModelInference(package)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("delete", "missing"),
        ("truncate", "SHA-256 does not match the manifest"),
        ("edit", "SHA-256 does not match the manifest"),
    ],
)
def test_changed_metadata_fails_validation(
    package: Path, change: str, problem: str
) -> None:
    """A missing, truncated or edited metadata.json fails with its name."""
    metadata = package / "metadata.json"
    if change == "delete":
        metadata.unlink()
    elif change == "truncate":
        metadata.write_bytes(metadata.read_bytes()[:100])
    else:
        metadata.write_text(metadata.read_text().replace("deployed", "Deployed"))
    result = run_validate_model(package)
    assert result.returncode == 1
    assert f"❌ metadata.json: {problem}" in result.stdout
