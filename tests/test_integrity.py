"""A tampered package is refused before any pickle is loaded.

Every case is a private copy of the demo package, changed on purpose, then
checked as a consumer would: ``python validate_model.py`` in the folder (all
cases at once, see ``run_concurrently``) and ``ModelInference(folder)`` from
the package's own inference_example.py. To keep the runs few, one copy per
kind of change has all three core files changed that way; the report lists
each file on its own line, and each test reads its file's line.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import (
    MANIFEST_FILE,
    Rendered,
    copy_package,
    resign_package,
    run_concurrently,
    run_validate_model,
    write_only_file,
)
from package_builder.archive import write_json
from package_builder.build import load_package_module

CORE_FILES = ("model.joblib", "scaler.joblib", "metadata.json")
CHANGES = ("replaced", "edited", "truncated", "missing")
NOT_MATCHING = "SHA-256 does not match the manifest"
LOADING = "🤖 Loading model..."
MODULE_NOT_IMPORTED = (
    "❌ Validation failed: file integrity check failed, inference_example.py was "
    "not imported: re-download the package and verify it"
)
CANNOT_BE_READ = "cannot be read (Permission denied)"
READ_ACCESS_FIX = (
    "give the user running this read access to the package's files, or "
    "re-download the package"
)


class _WritesMarker:
    """Unpickling this object creates the file named by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@dataclass
class Case:
    """One tampered copy of the demo package and its validate_model.py run."""

    package: Path
    marker: Path
    result: subprocess.CompletedProcess | None = None

    @property
    def lines(self) -> list[str]:
        return self.result.stdout.splitlines()


def tamper(path: Path, change: str, marker: Path, other_metadata: Path) -> None:
    """Change one core file: replace it with another (for a pickle: one whose
    loading would create ``marker``), edit it in place, cut it to half its
    size, or delete it."""
    before = path.read_bytes()
    if change == "missing":
        path.unlink()
        return
    if change == "replaced" and path.suffix == ".joblib":
        path.write_bytes(pickle.dumps(_WritesMarker(marker)))
    elif change == "replaced":
        shutil.copyfile(other_metadata, path)  # a real training-service file
    elif change == "edited" and path.suffix == ".json":
        metadata = json.loads(before)
        metadata["evaluation_info"]["basic_metrics"]["accuracy"] = 1.0
        write_json(path, metadata)
    elif change == "edited":
        data = bytearray(before)
        data[len(data) // 2] ^= 0xFF  # one byte, same size
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(before[: len(before) // 2])
    assert path.read_bytes() != before


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as stream:
        stream.write(data)


def edit_manifest_threshold(package: Path) -> None:
    """Lower the threshold in deployment_manifest.json without re-signing:
    every row would become an anomaly."""
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["inference_config"]["threshold"] = 0.0
    write_json(package / MANIFEST_FILE, manifest)


def contradict_sums(package: Path) -> None:
    """Give model.joblib another digest in SHA256SUMS than in the manifest."""
    sums = package / "SHA256SUMS"
    other = hashlib.sha256(b"another model").hexdigest()
    text = re.sub(r"(?m)^[0-9a-f]{64}(?=  model\.joblib$)", other, sums.read_text())
    assert other in text
    sums.write_text(text)


def drop_model_hash(package: Path) -> None:
    """Remove model.joblib from file_integrity, then re-sign, so that the
    manifest and SHA256SUMS are otherwise consistent."""

    def edit(manifest: dict) -> None:
        del manifest["file_integrity"]["model.joblib"]

    resign_package(package, edit)


def delete_sums_and_relax_manifest(package: Path) -> None:
    """Delete SHA256SUMS, then let the manifest fill missing features with 0.0:
    without SHA256SUMS nothing else holds the manifest's own digest."""
    (package / "SHA256SUMS").unlink()
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["inference_config"]["missing_features"] = "zero"
    write_json(package / MANIFEST_FILE, manifest)


def unlist_manifest_from_sums(package: Path) -> None:
    """Drop the manifest's line from SHA256SUMS and edit the manifest."""
    sums = package / "SHA256SUMS"
    lines = sums.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.endswith(f"  {MANIFEST_FILE}\n")]
    assert len(kept) == len(lines) - 1
    sums.write_text("".join(kept))
    edit_manifest_threshold(package)


OUTSIDE = "is not a file name inside the package"


def names_outside(package: Path) -> dict[str, str]:
    """Two names of files beside the package folder, not in it: one relative
    (``../outside.txt``), one absolute."""
    return {
        "relative": "../outside.txt",
        "absolute": str(package.parent.resolve() / "absolute.txt"),
    }


def write_files_outside(package: Path) -> dict[str, str]:
    """Write the files ``names_outside`` names; return their SHA-256s by name."""
    digests = {}
    for name in names_outside(package).values():
        path = package / name  # an absolute name replaces the folder
        path.write_text(f"not a file of the package: {name}\n", encoding="utf-8")
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def list_outside_in_manifest(package: Path) -> None:
    """Add the files outside the package to file_integrity, then re-sign: their
    hashes, the other files' and SHA256SUMS all match."""
    digests = write_files_outside(package)
    resign_package(package, lambda manifest: manifest["file_integrity"].update(digests))


def list_outside_in_sums(package: Path) -> None:
    """Add a line for each file outside the package to SHA256SUMS, with the
    file's right SHA-256."""
    lines = [
        f"{digest}  {name}\n" for name, digest in write_files_outside(package).items()
    ]
    append_bytes(package / "SHA256SUMS", "".join(lines).encode())


EXTRA_CASES: dict[str, Callable[[Path], None]] = {
    "manifest-edited": edit_manifest_threshold,
    "sums-contradicts-manifest": contradict_sums,
    "model-hash-dropped": drop_model_hash,
    "outside-in-manifest": list_outside_in_manifest,
    "outside-in-sums": list_outside_in_sums,
    "sums-deleted": delete_sums_and_relax_manifest,
    "manifest-unlisted": unlist_manifest_from_sums,
    "manifest-not-json": lambda package: (package / MANIFEST_FILE).write_text("{"),
    "sums-not-utf-8": lambda package: append_bytes(package / "SHA256SUMS", b"\xff"),
    "manifest-not-utf-8": lambda package: append_bytes(
        package / MANIFEST_FILE, b"\xff"
    ),
}


@pytest.fixture(scope="module")
def cases(
    demo: Rendered,
    artifacts: tuple[Path, dict],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Case]:
    """Every tampered package, each validated by validate_model.py."""
    other_metadata = artifacts[0] / "scaled" / "metadata.json"
    cases: dict[str, Case] = {}
    for change in CHANGES:
        folder = tmp_path_factory.mktemp(change)
        case = Case(copy_package(demo.package_dir, folder), folder / "ran")
        for name in CORE_FILES:
            tamper(case.package / name, change, case.marker, other_metadata)
        cases[change] = case
    for key, prepare in EXTRA_CASES.items():
        folder = tmp_path_factory.mktemp(key)
        case = Case(copy_package(demo.package_dir, folder), folder / "ran")
        prepare(case.package)
        cases[key] = case
    results = run_concurrently(
        {
            key: (lambda case=case: run_validate_model(case.package))
            for key, case in cases.items()
        }
    )
    for key, result in results.items():
        cases[key].result = result
    return cases


def integrity_refusal(package: Path) -> str:
    """The message of the IntegrityError that ModelInference raises, as it
    must, for ``package``."""
    module = load_package_module(package)
    with pytest.raises(module.IntegrityError) as raised:
        module.ModelInference(package, environ={})
    return str(raised.value)


@pytest.fixture
def package(demo: Rendered, tmp_path: Path) -> Path:
    """A private copy of the demo package to tamper with."""
    return copy_package(demo.package_dir, tmp_path)


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("name", CORE_FILES)
def test_changed_core_file_is_refused_before_loading(
    cases: dict[str, Case], name: str, change: str
) -> None:
    """A replaced, edited, truncated or missing model.joblib, scaler.joblib or
    metadata.json: validate_model.py exits 1 with ``❌ <file>: <problem>``
    (and no ``✅ <file>: OK``) and never prints "🤖 Loading model...";
    ModelInference raises IntegrityError naming the file; a replacement
    pickle's code never runs."""
    case = cases[change]
    problem = "missing" if change == "missing" else NOT_MATCHING
    assert case.result.returncode == 1, case.result.stdout + case.result.stderr
    assert f"❌ {name}: {problem}" in case.lines
    assert f"✅ {name}: OK" not in case.lines
    assert "✅ validate_model.py: OK" in case.lines
    assert LOADING not in case.lines
    assert case.lines[-1] == (
        "❌ Validation failed: file integrity check failed, no model was loaded: "
        "re-download the package and verify it"
    )
    module = load_package_module(case.package)
    with pytest.raises(module.IntegrityError, match=re.escape(f"{name}: {problem}")):
        module.ModelInference(case.package, environ={})
    assert not case.marker.exists()


def test_edited_manifest_is_caught_by_sha256sums(cases: dict[str, Case]) -> None:
    """A threshold edited in deployment_manifest.json (its file hashes still
    right) is caught through SHA256SUMS: exit 1 with ``❌
    deployment_manifest.json: SHA-256 does not match SHA256SUMS``, before
    inference_example.py, which that manifest would vouch for, is imported;
    nothing loaded, and ModelInference refuses."""
    case = cases["manifest-edited"]
    assert case.result.returncode == 1, case.result.stdout + case.result.stderr
    assert case.lines[-2:] == [
        "❌ deployment_manifest.json: SHA-256 does not match SHA256SUMS",
        MODULE_NOT_IMPORTED,
    ]
    module = load_package_module(case.package)
    with pytest.raises(
        module.IntegrityError,
        match=re.escape("deployment_manifest.json: SHA-256 does not match"),
    ):
        module.ModelInference(case.package, environ={})


def test_sha256sums_disagreeing_with_the_manifest_is_refused(
    cases: dict[str, Case],
) -> None:
    """A SHA256SUMS line whose digest differs from the manifest's: exit 1
    with ``❌ model.joblib: SHA-256 in SHA256SUMS differs from the manifest``;
    ModelInference refuses too."""
    case = cases["sums-contradicts-manifest"]
    problem = "SHA-256 in SHA256SUMS differs from the manifest"
    assert case.result.returncode == 1, case.result.stdout + case.result.stderr
    assert f"❌ model.joblib: {problem}" in case.lines
    assert LOADING not in case.lines
    module = load_package_module(case.package)
    with pytest.raises(
        module.IntegrityError, match=re.escape(f"model.joblib: {problem}")
    ):
        module.ModelInference(case.package, environ={})


def test_file_listed_without_a_hash_is_refused(cases: dict[str, Case]) -> None:
    """model.joblib named under ``files`` but without a hash in
    file_integrity (manifest and SHA256SUMS otherwise consistent): exit 1 with
    ``❌ model.joblib: has no SHA-256 in the manifest`` and nothing loaded,
    even though SHA256SUMS alone would pass the file (its ``✅`` must not hide
    the ``❌``); ModelInference refuses too."""
    case = cases["model-hash-dropped"]
    problem = "has no SHA-256 in the manifest"
    assert f"❌ model.joblib: {problem}" in case.lines
    assert case.result.returncode == 1, case.result.stdout + case.result.stderr
    assert LOADING not in case.lines
    module = load_package_module(case.package)
    with pytest.raises(
        module.IntegrityError, match=re.escape(f"model.joblib: {problem}")
    ):
        module.ModelInference(case.package, environ={})


@pytest.mark.parametrize("listed_in", ["manifest", "sums"])
def test_file_name_outside_the_package_is_refused(
    cases: dict[str, Case], listed_in: str
) -> None:
    """A file_integrity entry or a SHA256SUMS line naming a file outside the
    package (``../outside.txt``, an absolute path), a real file with that very
    SHA-256: validate_model.py exits 1 with ``❌ <name>: is not a file name
    inside the package`` for each, the only problems, and loads nothing;
    ModelInference raises IntegrityError naming them."""
    case = cases[f"outside-in-{listed_in}"]
    names = names_outside(case.package).values()
    assert case.result.returncode == 1, case.result.stdout + case.result.stderr
    problems = [
        line
        for line in case.lines
        if line.startswith("❌ ") and not line.startswith("❌ Validation failed")
    ]
    assert sorted(problems) == sorted(f"❌ {name}: {OUTSIDE}" for name in names)
    assert "✅ model.joblib: OK" in case.lines
    assert LOADING not in case.lines
    assert case.lines[-1] == (
        "❌ Validation failed: file integrity check failed, no model was loaded: "
        "re-download the package and verify it"
    )
    refusal = integrity_refusal(case.package)
    for name in names:
        assert f"{name}: {OUTSIDE}" in refusal


@pytest.mark.parametrize(
    ("key", "line"),
    [
        ("sums-deleted", "❌ SHA256SUMS: missing (it holds the manifest's SHA-256)"),
        (
            "manifest-unlisted",
            "❌ deployment_manifest.json: not listed in SHA256SUMS, so not checked",
        ),
        (
            "sums-not-utf-8",
            "❌ SHA256SUMS: is not UTF-8 text, so not a list of SHA-256s",
        ),
    ],
)
def test_manifest_without_its_digest_is_refused(
    cases: dict[str, Case], key: str, line: str
) -> None:
    """With SHA256SUMS deleted, or without the manifest's line, an edited
    manifest cannot be checked: validate_model.py exits 1 saying so, before
    loading anything, and ModelInference refuses too."""
    case = cases[key]
    assert case.result.returncode == 1, case.result.stdout + case.result.stderr
    assert line in case.lines
    assert LOADING not in case.lines
    module = load_package_module(case.package)
    with pytest.raises(module.IntegrityError, match=re.escape(line[2:])):
        module.ModelInference(case.package, environ={})


@pytest.mark.parametrize("key", ["manifest-not-json", "manifest-not-utf-8"])
def test_manifest_that_is_not_json_is_refused(cases: dict[str, Case], key: str) -> None:
    """A manifest cut to ``{``, or with a byte that is not UTF-8:
    validate_model.py says it no longer matches SHA256SUMS and exits 1, no
    traceback, and ``--json`` prints the same failure as a report;
    ModelInference says it is not valid JSON."""
    case = cases[key]
    path = case.package / MANIFEST_FILE
    assert case.result.returncode == 1
    assert case.result.stderr == ""
    assert case.lines[-2:] == [
        "❌ deployment_manifest.json: SHA-256 does not match SHA256SUMS",
        MODULE_NOT_IMPORTED,
    ]
    result = run_validate_model(case.package, "--json")
    report = json.loads(result.stdout)
    assert (result.returncode, report["valid"], report["exit_code"]) == (1, False, 1)
    assert f"❌ Validation failed: {report['error']}" == MODULE_NOT_IMPORTED
    module = load_package_module(case.package)
    with pytest.raises(
        module.IntegrityError, match=re.escape(f"{path} is not valid JSON")
    ):
        module.ModelInference(case.package, environ={})


UNREADABLE = write_only_file()


@pytest.mark.skipif(
    UNREADABLE is None, reason="no write-only /proc/sys file to stand for one"
)
@pytest.mark.parametrize(
    ("name", "not_loaded"),
    [
        ("model.joblib", "no model was loaded"),
        ("inference_example.py", "inference_example.py was not imported"),
    ],
)
def test_unreadable_package_file_is_reported(
    package: Path, name: str, not_loaded: str
) -> None:
    """A package file that this user cannot read (``chmod 000`` for anyone
    but root; here a link to a write-only sysctl, which root cannot read
    either): validate_model.py exits 1 with ``❌ <file>: cannot be read
    (Permission denied)`` and the fix, no traceback; ``--json`` prints the
    same failure as a report, that file the only one with a problem."""
    (package / name).unlink()
    (package / name).symlink_to(UNREADABLE)
    results = run_concurrently(
        {
            "text": lambda: run_validate_model(package),
            "json": lambda: run_validate_model(package, "--json"),
        }
    )
    problem = CANNOT_BE_READ
    error = f"file integrity check failed, {not_loaded}: {name} {problem}: "
    error += READ_ACCESS_FIX
    text = results["text"]
    assert (text.returncode, text.stderr) == (1, ""), text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert f"❌ {name}: {problem}" in lines
    assert lines[-1] == f"❌ Validation failed: {error}"
    assert LOADING not in text.stdout
    result = results["json"]
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    report = json.loads(result.stdout)
    assert (report["valid"], report["exit_code"], report["error"]) == (
        False,
        1,
        error,
    )
    integrity = report["checks"]["integrity"]
    assert integrity["passed"] is False
    problems = {f: status for f, status in integrity["files"].items() if status != "OK"}
    assert problems == {name: problem}


@pytest.mark.skipif(
    UNREADABLE is None, reason="no write-only /proc/sys file to stand for one"
)
def test_every_unreadable_package_file_is_named(package: Path) -> None:
    """model.joblib, scaler.joblib and SHA256SUMS that this user cannot read
    (links to a write-only sysctl): ModelInference raises IntegrityError
    naming each of them and the fix, not a bare PermissionError.
    validate_model.py, which must read SHA256SUMS before it imports
    inference_example.py, names SHA256SUMS and the fix; with SHA256SUMS
    readable again, it shows a ``❌ <file>: cannot be read (Permission
    denied)`` line for each other file, and its failure names them all."""
    unreadable = ("model.joblib", "scaler.joblib", "SHA256SUMS")
    sums = (package / "SHA256SUMS").read_bytes()
    for name in unreadable:
        (package / name).unlink()
        (package / name).symlink_to(UNREADABLE)
    refusal = integrity_refusal(package)
    assert refusal == (
        "package integrity check failed, nothing was loaded: "
        + "; ".join(f"{name}: {CANNOT_BE_READ}" for name in unreadable)
        + ". Give the user running this read access to the package's files, or "
        "re-download the package"
    )
    result = run_validate_model(package)
    assert (result.returncode, result.stderr) == (1, ""), result.stdout
    assert result.stdout.splitlines()[-2:] == [
        f"❌ SHA256SUMS: {CANNOT_BE_READ}",
        "❌ Validation failed: file integrity check failed, inference_example.py "
        f"was not imported: SHA256SUMS {CANNOT_BE_READ}: {READ_ACCESS_FIX}",
    ]
    (package / "SHA256SUMS").unlink()
    (package / "SHA256SUMS").write_bytes(sums)
    unreadable = unreadable[:2]
    result = run_validate_model(package)
    assert (result.returncode, result.stderr) == (1, ""), result.stdout
    lines = result.stdout.splitlines()
    for name in unreadable:
        assert f"❌ {name}: {CANNOT_BE_READ}" in lines
    assert LOADING not in lines
    assert lines[-1] == (
        "❌ Validation failed: file integrity check failed, no model was loaded: "
        + "; ".join(f"{name} {CANNOT_BE_READ}" for name in unreadable)
        + f": {READ_ACCESS_FIX}"
    )


CORRUPTIONS = {
    "zeroed-start": lambda data: bytes(64) + data[64:],
    "truncated": lambda data: data[: len(data) // 2],
    "text": lambda data: b"this is not a pickle\n",
}


def corrupt_model(package: Path, corruption: str) -> None:
    model = package / "model.joblib"
    model.write_bytes(CORRUPTIONS[corruption](model.read_bytes()))


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_unverified_corrupt_model_is_an_unpickling_error_naming_it(
    package: Path, corruption: str
) -> None:
    """The spec's error scenario 2: with ``verify=False`` a corrupted
    model.joblib is unpickled and raises pickle.UnpicklingError naming
    model.joblib and the fix (re-download the package), never an
    IntegrityError; verified, the same file is an IntegrityError and is
    never unpickled."""
    corrupt_model(package, corruption)
    module = load_package_module(package)
    with pytest.raises(
        pickle.UnpicklingError, match=re.escape("model.joblib")
    ) as raised:
        module.ModelInference(package, verify=False, environ={})
    assert not isinstance(raised.value, module.IntegrityError)
    assert "re-download" in str(raised.value).lower()
    with pytest.raises(
        module.IntegrityError, match=re.escape(f"model.joblib: {NOT_MATCHING}")
    ):
        module.ModelInference(package, environ={})


@pytest.mark.parametrize(
    "edit",
    [
        lambda manifest: manifest["files"].__setitem__("model_file", ["x"]),
        lambda manifest: manifest["inference_config"].__setitem__("batch_size", 0),
    ],
    ids=["model_file-a-list", "batch_size-0"],
)
def test_manifest_edited_into_nonsense_is_refused_as_altered(
    package: Path, edit: Callable[[dict], None]
) -> None:
    """A manifest edited (not re-signed) to hold a list as a file name, or a
    batch size of 0: ModelInference and validate_model.py refuse it as
    altered (it no longer matches SHA256SUMS), before any of it is used: no
    TypeError, no advice to fix a setting."""
    manifest = json.loads((package / MANIFEST_FILE).read_text(encoding="utf-8"))
    edit(manifest)
    write_json(package / MANIFEST_FILE, manifest)
    altered = f"{MANIFEST_FILE}: SHA-256 does not match SHA256SUMS"
    module = load_package_module(package)
    with pytest.raises(module.IntegrityError, match=re.escape(altered)):
        module.ModelInference(package, environ={})
    result = run_validate_model(package)
    assert (result.returncode, result.stderr) == (1, ""), result.stdout
    assert f"❌ {altered}" in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda manifest: manifest["files"].__setitem__("model_file", None),
            "files has no model_file",
        ),
        (
            lambda manifest: manifest["files"].pop("metadata_file"),
            "files has no metadata_file",
        ),
        (
            lambda manifest: manifest["training_info"].pop("feature_names"),
            "training_info has no feature_names list",
        ),
        (
            lambda manifest: manifest["training_info"].__setitem__(
                "feature_names", "bytes_in,bytes_out"
            ),
            "training_info has no feature_names list",
        ),
        (
            lambda manifest: manifest["training_info"].__setitem__("feature_names", []),
            "training_info has no feature_names list",
        ),
    ],
    ids=[
        "no-model-file",
        "no-metadata-file",
        "no-feature-names",
        "names-a-string",
        "names-empty",
    ],
)
def test_a_signed_manifest_without_what_every_package_has_is_named(
    package: Path, edit: Callable[[dict], None], problem: str
) -> None:
    """A manifest re-signed after an entry every package needs was taken out
    (the model's file name, metadata.json's, the feature names): refused by
    ModelInference and validate_model.py as incomplete, naming the entry,
    not a KeyError or a TypeError; nothing is unpickled."""
    resign_package(package, edit)
    module = load_package_module(package)
    with pytest.raises(
        module.IntegrityError, match=re.escape(f"{MANIFEST_FILE}: {problem}")
    ):
        module.ModelInference(package, environ={})
    result = run_validate_model(package)
    assert (result.returncode, result.stderr) == (1, ""), result.stdout
    assert f"❌ {MANIFEST_FILE}: {problem}" in result.stdout.splitlines()
    assert LOADING not in result.stdout


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("kind", ["folder", "device"])
def test_a_package_file_that_is_not_a_regular_file_is_named_so(
    package: Path, kind: str
) -> None:
    """model.joblib replaced by a folder, or by a link to a device (which
    would never end if hashed): reported as not a regular file, not as
    missing; nothing loaded."""
    (package / "model.joblib").unlink()
    if kind == "folder":
        (package / "model.joblib").mkdir()
    else:
        (package / "model.joblib").symlink_to("/dev/zero")
    result = run_validate_model(package)
    assert (result.returncode, result.stderr) == (1, ""), result.stdout
    assert "❌ model.joblib: not a regular file" in result.stdout.splitlines()
    assert LOADING not in result.stdout


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_manifest_that_is_not_a_regular_file_is_never_read(
    demo: Rendered, package: Path
) -> None:
    """A manifest replaced by a link to /dev/zero (endless bytes), in a
    package that another package's validate_model.py checks, and for
    ModelInference: refused as not a regular file, no MemoryError."""
    (package / MANIFEST_FILE).unlink()
    (package / MANIFEST_FILE).symlink_to("/dev/zero")
    module = load_package_module(demo.package_dir)
    with pytest.raises(module.IntegrityError, match="is not a regular file"):
        module.ModelInference(package, environ={})
    result = subprocess.run(
        [sys.executable, str(demo.package_dir / "validate_model.py"), str(package)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )
    assert (result.returncode, result.stderr) == (1, ""), result.stdout
    assert result.stdout.splitlines()[-2:] == [
        f"❌ {MANIFEST_FILE}: not a regular file",
        "❌ Validation failed: file integrity check failed, inference_example.py "
        "was not imported: re-download the package and verify it",
    ]


def test_a_sha256sums_line_not_in_its_format_is_named(package: Path) -> None:
    """Lines of SHA256SUMS that are not ``<sha256>  <file>`` (a blank one, a
    short digest): ModelInference and validate_model.py name each by its
    number, and nothing is loaded."""
    sums = package / "SHA256SUMS"
    lines = sums.read_text(encoding="utf-8").splitlines()
    sums.write_text("\n".join([*lines, "", "abc  model.joblib"]) + "\n")
    blank, short = len(lines) + 1, len(lines) + 2
    refusal = integrity_refusal(package)
    assert refusal == (
        "package integrity check failed, nothing was loaded: "
        f"SHA256SUMS: line {blank} is not '<sha256>  <file>'; "
        f"SHA256SUMS: line {short} is not '<sha256>  <file>'. "
        "Re-download the package and run validate_model.py"
    )
    result = run_validate_model(package)
    assert result.returncode == 1, result.stdout + result.stderr
    for number in (blank, short):
        assert (
            f"❌ SHA256SUMS: line {number} is not '<sha256>  <file>'"
            in result.stdout.splitlines()
        )
    assert LOADING not in result.stdout


def test_a_file_name_that_is_not_text_is_refused_as_such(package: Path) -> None:
    """A manifest whose ``files`` holds a list where a name goes, re-signed so
    that every hash matches: refused as altered, naming what it holds, not
    a TypeError."""
    resign_package(
        package, lambda manifest: manifest["files"].update(model=["model.joblib"])
    )
    refusal = integrity_refusal(package)
    assert refusal == (
        "package integrity check failed, nothing was loaded: "
        "deployment_manifest.json: files holds ['model.joblib'], not a name. "
        "Re-download the package and run validate_model.py"
    )


@pytest.mark.skipif(
    UNREADABLE is None, reason="no write-only /proc/sys file to stand for one"
)
def test_an_unreadable_file_beside_an_altered_one_gets_the_read_access_fix(
    package: Path,
) -> None:
    """One file this user cannot read and another altered: both named, and
    the fix says to give read access first (re-downloading alone would not
    make the unreadable file readable)."""
    (package / "model.joblib").unlink()
    (package / "model.joblib").symlink_to(UNREADABLE)
    append_bytes(package / "scaler.joblib", b"\0")
    refusal = integrity_refusal(package)
    assert refusal == (
        "package integrity check failed, nothing was loaded: "
        f"model.joblib: {CANNOT_BE_READ}; scaler.joblib: {NOT_MATCHING}. "
        "Give the user running this read access to the package's files, or "
        "re-download the package"
    )


@pytest.mark.parametrize("name", ["SHA256SUMS", MANIFEST_FILE])
def test_a_checked_file_larger_than_any_of_its_kind_is_refused(
    package: Path, name: str
) -> None:
    """A SHA256SUMS or manifest padded past 64 MiB (sparse: no disk used) is
    refused as larger than any such file, read no further than that:
    validate_model.py names it before importing anything, and
    ModelInference refuses too."""
    os.truncate(package / name, 64 * 1024 * 1024 + 1)
    result = run_validate_model(package)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        f"❌ {name}: larger than 67108864 bytes",
        MODULE_NOT_IMPORTED,
    ]
    module = load_package_module(package)
    with pytest.raises(module.IntegrityError, match="larger than 67108864 bytes"):
        module.ModelInference(package, environ={})
