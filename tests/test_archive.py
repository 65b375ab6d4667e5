"""Unit tests for package_builder.archive: hashing, atomic writes and the zip.

These tests use real files in tmp_path and the real ``sha256sum`` and
``unzip`` tools, as a deployer checking a package would.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from package_builder.archive import (
    CHUNK_BYTES,
    DEFLATE_LEVEL,
    SUMS_FILE,
    copy_file,
    drop_previous,
    file_hashes,
    package_files,
    restore_previous,
    set_aside_previous,
    sha256_file,
    write_json,
    write_sha256sums,
    write_zip,
)
from package_builder.build import os_error_reason

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_NAME = "model_20241201_143022_deployment"
# Even seconds: a zip stores times at two-second resolution.
TIMESTAMP = datetime(2024, 12, 1, 14, 30, 22, tzinfo=timezone.utc)
PACKAGE_CONTENT = {
    "model.joblib": bytes(range(256)) * 40,
    "metadata.json": b'{"model_info": {}}\n',
    "README.md": "# Modèle\n".encode(),
    "docs/notes.txt": b"first line\nsecond line\n",
    "docs/deep/empty.txt": b"",
}

needs_sha256sum = pytest.mark.skipif(
    shutil.which("sha256sum") is None, reason="needs the sha256sum tool"
)
needs_unzip = pytest.mark.skipif(
    shutil.which("unzip") is None, reason="needs the unzip tool"
)


def deterministic_bytes(size: int, seed: int = 7) -> bytes:
    """Return ``size`` reproducible, non-repeating bytes."""
    return random.Random(seed).randbytes(size)


def make_package(parent: Path, name: str = PACKAGE_NAME) -> Path:
    """Write a small package folder with files in subfolders; return it."""
    folder = parent / name
    for relative, content in PACKAGE_CONTENT.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def listing(folder: Path) -> list[str]:
    """Return the names directly inside ``folder``, sorted."""
    return sorted(os.listdir(folder))


def sha256sum_check(sums_file: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``sha256sum -c`` on ``sums_file`` inside ``cwd``."""
    return subprocess.run(
        ["sha256sum", "-c", sums_file], cwd=cwd, capture_output=True, text=True
    )


def file_mode(path: Path) -> int:
    """Return the permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


# sha256_file


def test_sha256_file_of_empty_file(tmp_path: Path) -> None:
    """The hash of an empty file is the SHA-256 of no bytes."""
    path = tmp_path / "empty"
    path.write_bytes(b"")

    assert sha256_file(path) == hashlib.sha256(b"").hexdigest()


def test_sha256_file_of_file_larger_than_one_chunk(tmp_path: Path) -> None:
    """A file spanning several read chunks hashes like its whole bytes."""
    content = deterministic_bytes(3 * (1 << 20) + 17)
    assert len(content) > 3 * CHUNK_BYTES
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    assert sha256_file(path) == hashlib.sha256(content).hexdigest()


# write_sha256sums


def test_sha256sums_lists_every_other_file_sorted(tmp_path: Path) -> None:
    """SHA256SUMS holds '<hash>  <posix name>' for every file but itself, sorted."""
    folder = make_package(tmp_path)

    returned = write_sha256sums(folder)

    expected = {
        name: hashlib.sha256(content).hexdigest()
        for name, content in PACKAGE_CONTENT.items()
    }
    lines = (folder / SUMS_FILE).read_text(encoding="utf-8").splitlines()
    assert lines == [f"{expected[name]}  {name}" for name in sorted(expected)]
    assert returned == expected


def test_sha256sums_reuse_known_digests_and_hash_the_rest(tmp_path: Path) -> None:
    """Digests passed as known are written as given; other files are hashed."""
    folder = make_package(tmp_path)
    first, *others = sorted(PACKAGE_CONTENT)
    known = {first: "0" * 64}

    returned = write_sha256sums(folder, known=known)

    assert returned[first] == "0" * 64
    for name in others:
        assert returned[name] == hashlib.sha256(PACKAGE_CONTENT[name]).hexdigest()


def test_sha256sums_written_again_does_not_list_itself(tmp_path: Path) -> None:
    """Rewriting SHA256SUMS over a folder that has one leaves itself out."""
    folder = make_package(tmp_path)
    write_sha256sums(folder)
    first = (folder / SUMS_FILE).read_bytes()

    write_sha256sums(folder)

    assert (folder / SUMS_FILE).read_bytes() == first
    assert SUMS_FILE not in first.decode()


@needs_sha256sum
def test_sha256sums_passes_sha256sum_check(tmp_path: Path) -> None:
    """`sha256sum -c SHA256SUMS` accepts the file the package ships."""
    folder = make_package(tmp_path)
    write_sha256sums(folder)

    result = sha256sum_check(SUMS_FILE, folder)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "docs/deep/empty.txt: OK" in result.stdout


@needs_sha256sum
def test_sha256sums_check_fails_after_one_byte_changes(tmp_path: Path) -> None:
    """`sha256sum -c` reports a file whose byte changed after SHA256SUMS."""
    folder = make_package(tmp_path)
    write_sha256sums(folder)
    model = folder / "model.joblib"
    content = bytearray(model.read_bytes())
    content[100] ^= 0x01
    model.write_bytes(bytes(content))

    result = sha256sum_check(SUMS_FILE, folder)

    assert result.returncode != 0
    assert "model.joblib: FAILED" in result.stdout


def test_sha256sums_file_is_world_readable(tmp_path: Path) -> None:
    """SHA256SUMS gets mode 0o644, not the private mode of a temporary file."""
    folder = make_package(tmp_path)

    write_sha256sums(folder)

    assert file_mode(folder / SUMS_FILE) == 0o644


# package_files


def test_package_files_are_sorted_posix_paths(tmp_path: Path) -> None:
    """package_files lists every file as a sorted relative POSIX path."""
    folder = make_package(tmp_path)

    assert package_files(folder) == sorted(PACKAGE_CONTENT)


def test_package_files_skip_bytecode_caches(tmp_path: Path) -> None:
    """__pycache__ folders (at any depth) and .pyc files are left out."""
    folder = make_package(tmp_path)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "validate_model.cpython-311.pyc").write_bytes(b"x")
    (folder / "__pycache__" / "stray.txt").write_bytes(b"x")
    (folder / "docs" / "__pycache__").mkdir()
    (folder / "docs" / "__pycache__" / "notes.txt").write_bytes(b"x")
    (folder / "loose.pyc").write_bytes(b"x")
    (folder / "docs" / "other.pyc").write_bytes(b"x")

    assert package_files(folder) == sorted(PACKAGE_CONTENT)


def test_package_files_honour_exclude(tmp_path: Path) -> None:
    """Names in exclude, top-level or in a subfolder, are left out."""
    folder = make_package(tmp_path)

    names = package_files(folder, exclude={"metadata.json", "docs/notes.txt"})

    assert names == sorted(set(PACKAGE_CONTENT) - {"metadata.json", "docs/notes.txt"})


def test_package_files_refuse_symlinked_file(tmp_path: Path) -> None:
    """A symlink to a file raises ValueError naming the link."""
    folder = make_package(tmp_path)
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (folder / "docs" / "linked.txt").symlink_to(tmp_path / "outside.txt")

    with pytest.raises(ValueError, match=r"docs/linked\.txt") as error:
        package_files(folder)

    assert "not a regular file" in str(error.value)


def test_package_files_refuse_symlinked_folder(tmp_path: Path) -> None:
    """A symlink to a folder raises ValueError naming the link."""
    folder = make_package(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.csv").write_bytes(b"a,b\n1,2\n")
    (folder / "data").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValueError, match=r"data"):
        package_files(folder)


# write_zip


def zip_of(tmp_path: Path, folder: Path, name: str = "out") -> tuple[Path, str]:
    """Write the zip of ``folder`` into a fresh folder; return it and its digest."""
    out = tmp_path / name
    out.mkdir()
    zip_path = out / f"{folder.name}.zip"
    return zip_path, write_zip(folder, zip_path, TIMESTAMP)


def test_zip_has_one_top_folder_named_like_the_package(tmp_path: Path) -> None:
    """Every entry sits under one top folder named like the package folder."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)

    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()

    assert names[0] == f"{PACKAGE_NAME}/"
    assert all(name.startswith(f"{PACKAGE_NAME}/") for name in names)
    assert names[1:] == [f"{PACKAGE_NAME}/{name}" for name in sorted(PACKAGE_CONTENT)]


def test_zip_entries_are_sorted(tmp_path: Path) -> None:
    """Zip entries come in sorted order, whatever order the disk lists them in."""
    folder = tmp_path / PACKAGE_NAME
    folder.mkdir()
    for name in ["zeta.txt", "b/x.txt", "alpha.txt", "a-b/y.txt", "a/z.txt"]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name, encoding="utf-8")
    zip_path, _ = zip_of(tmp_path, folder)

    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()

    assert names == sorted(names)
    assert len(names) == 6


def test_zip_entries_carry_the_given_timestamp(tmp_path: Path) -> None:
    """Every entry's date is the timestamp given, not the files' mtimes."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)

    with zipfile.ZipFile(zip_path) as archive:
        dates = {info.filename: info.date_time for info in archive.infolist()}

    assert set(dates.values()) == {(2024, 12, 1, 14, 30, 22)}


def test_zip_entries_have_fixed_permissions(tmp_path: Path) -> None:
    """Files are stored as 0o644 regular files, the top folder as a 0o755 folder."""
    folder = make_package(tmp_path)
    (folder / "model.joblib").chmod(0o600)
    (folder / "README.md").chmod(0o755)
    zip_path, _ = zip_of(tmp_path, folder)

    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()

    directory, files = infos[0], infos[1:]
    assert directory.is_dir()
    assert stat.S_ISDIR(directory.external_attr >> 16)
    assert stat.S_IMODE(directory.external_attr >> 16) == 0o755
    for info in files:
        assert stat.S_ISREG(info.external_attr >> 16), info.filename
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644, info.filename


@needs_unzip
def test_zip_passes_unzip_test(tmp_path: Path) -> None:
    """`unzip -t` finds no error in the zip."""
    folder = make_package(tmp_path)
    (folder / "big.bin").write_bytes(deterministic_bytes(CHUNK_BYTES + 5))
    zip_path, _ = zip_of(tmp_path, folder)

    result = subprocess.run(
        ["unzip", "-t", str(zip_path)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout


def test_zip_extracts_to_identical_files(tmp_path: Path) -> None:
    """Extracting the zip gives back the package's files, byte for byte."""
    folder = make_package(tmp_path)
    (folder / "big.bin").write_bytes(deterministic_bytes(CHUNK_BYTES + 5))
    zip_path, _ = zip_of(tmp_path, folder)
    target = tmp_path / "extracted"

    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(target)

    extracted = target / PACKAGE_NAME
    assert package_files(extracted) == package_files(folder)
    for name in package_files(folder):
        assert (extracted / name).read_bytes() == (folder / name).read_bytes(), name


def test_zip_leaves_out_bytecode_caches(tmp_path: Path) -> None:
    """__pycache__ folders and .pyc files do not go into the zip."""
    folder = make_package(tmp_path)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "validate_model.cpython-311.pyc").write_bytes(b"x")
    (folder / "stray.pyc").write_bytes(b"x")
    zip_path, _ = zip_of(tmp_path, folder)

    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()

    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_zip_of_same_files_and_timestamp_has_same_bytes(tmp_path: Path) -> None:
    """Two zips of the same folder, written to different paths, are identical."""
    folder = make_package(tmp_path)

    first, _ = zip_of(tmp_path, folder, "first")
    second, _ = zip_of(tmp_path, folder, "second")

    assert first.read_bytes() == second.read_bytes()


def test_zip_of_copied_folder_with_other_mtimes_has_same_bytes(
    tmp_path: Path,
) -> None:
    """A copy of the folder with other file times zips to the same bytes."""
    folder = make_package(tmp_path / "original")
    copy = tmp_path / "copy" / PACKAGE_NAME
    shutil.copytree(folder, copy)
    for index, name in enumerate(sorted(PACKAGE_CONTENT)):
        moment = 1_500_000_000 + 86_400 * index
        os.utime(copy / name, (moment, moment))
    assert (copy / "model.joblib").stat().st_mtime != (
        folder / "model.joblib"
    ).stat().st_mtime

    original_zip, original_digest = zip_of(tmp_path, folder, "out_original")
    copy_zip, copy_digest = zip_of(tmp_path, copy, "out_copy")

    assert original_zip.read_bytes() == copy_zip.read_bytes()
    assert original_digest == copy_digest


def test_zip_changes_when_a_file_changes(tmp_path: Path) -> None:
    """A zip of a folder with one changed byte has different bytes."""
    folder = make_package(tmp_path)
    before, before_digest = zip_of(tmp_path, folder, "before")
    (folder / "docs" / "notes.txt").write_bytes(b"first line\nsecond linE\n")

    after, after_digest = zip_of(tmp_path, folder, "after")

    assert before.read_bytes() != after.read_bytes()
    assert before_digest != after_digest


def test_zip_returns_its_sha256(tmp_path: Path) -> None:
    """write_zip returns the SHA-256 of the zip it wrote."""
    folder = make_package(tmp_path)

    zip_path, digest = zip_of(tmp_path, folder)

    assert digest == hashlib.sha256(zip_path.read_bytes()).hexdigest()


def test_zip_entries_are_deflated_at_the_set_level(tmp_path: Path) -> None:
    """Each entry holds its file deflated at DEFLATE_LEVEL, not zlib's default."""
    folder = make_package(tmp_path)
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    content = " ".join(
        f"{rng.choice(words)}{rng.randrange(100)}" for _ in range(20_000)
    ).encode()
    (folder / "model.joblib").write_bytes(content)

    def deflated(level: int) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        return compressor.compress(content) + compressor.flush()

    zip_path, _ = zip_of(tmp_path, folder)

    with zipfile.ZipFile(zip_path) as archive:
        entry = archive.getinfo(f"{PACKAGE_NAME}/model.joblib")
        with open(zip_path, "rb") as stream:
            stream.seek(entry.header_offset + 26)
            name_length, extra_length = struct.unpack("<HH", stream.read(4))
            stream.seek(name_length + extra_length, os.SEEK_CUR)
            stored = stream.read(entry.compress_size)
    assert entry.compress_type == zipfile.ZIP_DEFLATED
    assert deflated(DEFLATE_LEVEL) != deflated(6)
    assert stored == deflated(DEFLATE_LEVEL)


def test_zip_sidecar_holds_hash_and_zip_name(tmp_path: Path) -> None:
    """<zip>.sha256 holds '<sha256 of the zip>  <zip file name>' and a newline."""
    folder = make_package(tmp_path)

    zip_path, _ = zip_of(tmp_path, folder)

    sidecar = zip_path.with_name(f"{zip_path.name}.sha256")
    expected = f"{hashlib.sha256(zip_path.read_bytes()).hexdigest()}  {zip_path.name}\n"
    assert sidecar.read_bytes() == expected.encode("ascii")


@needs_sha256sum
def test_zip_sidecar_passes_sha256sum_check(tmp_path: Path) -> None:
    """`sha256sum -c <zip>.sha256` in the zip's folder accepts the zip."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)

    result = sha256sum_check(f"{zip_path.name}.sha256", zip_path.parent)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{zip_path.name}: OK" in result.stdout


def test_zip_success_leaves_only_zip_and_sidecar(tmp_path: Path) -> None:
    """After a zip is written, no temporary file is left beside it."""
    folder = make_package(tmp_path)

    zip_path, _ = zip_of(tmp_path, folder)

    assert listing(zip_path.parent) == [
        f"{PACKAGE_NAME}.zip",
        f"{PACKAGE_NAME}.zip.sha256",
    ]
    assert file_mode(zip_path) == 0o644


def test_zip_beside_the_package_folder_leaves_no_temporary(tmp_path: Path) -> None:
    """A zip written next to the package folder, as the build does, is alone there."""
    folder = make_package(tmp_path)
    before = package_files(folder)

    write_zip(folder, tmp_path / f"{PACKAGE_NAME}.zip", TIMESTAMP)

    assert listing(tmp_path) == [
        PACKAGE_NAME,
        f"{PACKAGE_NAME}.zip",
        f"{PACKAGE_NAME}.zip.sha256",
    ]
    assert package_files(folder) == before


def test_failed_zip_leaves_nothing_behind(tmp_path: Path) -> None:
    """A zip that fails (a symlink in the folder) leaves no zip, sidecar or temp."""
    folder = make_package(tmp_path)
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (folder / "linked.txt").symlink_to(tmp_path / "outside.txt")
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(ValueError, match=r"linked\.txt"):
        write_zip(folder, out / f"{PACKAGE_NAME}.zip", TIMESTAMP)

    assert listing(out) == []


@pytest.mark.parametrize("blocked", ["zip", "zip.sha256"])
def test_zip_or_sidecar_name_taken_by_a_folder_leaves_neither(
    tmp_path: Path, blocked: str
) -> None:
    """A folder where the zip or its .sha256 goes: IsADirectoryError naming
    it, and no zip, sidecar or temporary is written (a zip is never there
    without its .sha256)."""
    folder = make_package(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{PACKAGE_NAME}.{blocked}").mkdir()

    with pytest.raises(
        IsADirectoryError, match=re.escape(f"{PACKAGE_NAME}.{blocked} is a folder")
    ):
        write_zip(folder, out / f"{PACKAGE_NAME}.zip", TIMESTAMP)

    assert listing(out) == [f"{PACKAGE_NAME}.{blocked}"]


class NotPublished(Exception):
    """What a before_publish check raises in these tests."""


def refuse() -> None:
    raise NotPublished


def test_zip_refused_before_publishing_keeps_the_previous_zip(tmp_path: Path) -> None:
    """When before_publish raises, the complete new archive is discarded: the
    earlier zip and sidecar stay, and no temporary is left."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)
    sidecar = zip_path.with_name(f"{zip_path.name}.sha256")
    old_zip, old_sidecar = zip_path.read_bytes(), sidecar.read_bytes()
    (folder / "README.md").write_bytes(b"# changed\n")

    with pytest.raises(NotPublished):
        write_zip(folder, zip_path, TIMESTAMP, before_publish=refuse)

    assert zip_path.read_bytes() == old_zip
    assert sidecar.read_bytes() == old_sidecar
    assert listing(zip_path.parent) == [zip_path.name, sidecar.name]


def test_zip_refused_before_publishing_leaves_nothing(tmp_path: Path) -> None:
    """A first zip whose before_publish raises leaves the folder empty."""
    folder = make_package(tmp_path)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(NotPublished):
        write_zip(folder, out / f"{PACKAGE_NAME}.zip", TIMESTAMP, before_publish=refuse)

    assert listing(out) == []


def test_zip_calls_before_publish_once_with_the_archive_complete(
    tmp_path: Path,
) -> None:
    """before_publish runs once, after every file is in the archive and
    before the zip appears under its name; the zip then has every file."""
    folder = make_package(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    zip_path = out / f"{PACKAGE_NAME}.zip"
    seen: list[list[str]] = []

    def check() -> None:
        assert not zip_path.exists()
        (temporary,) = out.iterdir()
        with zipfile.ZipFile(temporary) as archive:
            seen.append(archive.namelist())

    digest = write_zip(folder, zip_path, TIMESTAMP, before_publish=check)

    with zipfile.ZipFile(zip_path) as archive:
        assert seen == [archive.namelist()]
    assert len(seen[0]) == len(PACKAGE_CONTENT) + 1
    assert digest == hashlib.sha256(zip_path.read_bytes()).hexdigest()


def test_zip_that_cannot_replace_the_earlier_one_keeps_its_sidecar(
    tmp_path: Path,
) -> None:
    """The new .sha256 file goes in place before the zip; when the zip then
    cannot replace the earlier one (an immutable file, a zip open on
    Windows; here a folder put in its way), the earlier .sha256 file comes
    back, so that what is there still checks, and the error names the zip."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)
    sidecar = zip_path.with_name(f"{zip_path.name}.sha256")
    old_sidecar = sidecar.read_bytes()
    (folder / "README.md").write_bytes(b"# changed\n")

    def block() -> None:
        zip_path.unlink()
        (zip_path / "kept").mkdir(parents=True)

    with pytest.raises(OSError) as raised:
        write_zip(folder, zip_path, TIMESTAMP, before_publish=block)

    assert sidecar.read_bytes() == old_sidecar
    assert listing(zip_path.parent) == [zip_path.name, sidecar.name]
    assert os_error_reason(raised.value, "the zip", zip_path.parent).startswith(
        f"the zip could not be written as {zip_path} ("
    )


def test_first_zip_that_cannot_be_placed_leaves_no_sidecar(tmp_path: Path) -> None:
    """Without an earlier zip, a zip that cannot be moved into place takes
    its new .sha256 file away with it."""
    folder = make_package(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    zip_path = out / f"{PACKAGE_NAME}.zip"

    with pytest.raises(OSError):
        write_zip(
            folder,
            zip_path,
            TIMESTAMP,
            before_publish=lambda: (zip_path / "kept").mkdir(parents=True),
        )

    assert listing(out) == [zip_path.name]
    assert listing(zip_path) == ["kept"]


def test_failed_zip_keeps_the_previous_zip(tmp_path: Path) -> None:
    """A failed rebuild leaves the earlier zip and its sidecar as they were."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)
    sidecar = zip_path.with_name(f"{zip_path.name}.sha256")
    old_zip, old_sidecar = zip_path.read_bytes(), sidecar.read_bytes()
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (folder / "linked.txt").symlink_to(tmp_path / "outside.txt")

    with pytest.raises(ValueError):
        write_zip(folder, zip_path, TIMESTAMP)

    assert zip_path.read_bytes() == old_zip
    assert sidecar.read_bytes() == old_sidecar
    assert listing(zip_path.parent) == [zip_path.name, sidecar.name]


# write_json


def test_write_json_is_indented_utf8_with_final_newline(tmp_path: Path) -> None:
    """write_json writes two-space indented UTF-8 JSON ending in one newline."""
    path = tmp_path / "metadata.json"
    data = {"deployed_by": "Zoë", "values": [1, 2.5, None]}

    write_json(path, data)

    text = path.read_bytes().decode("utf-8")
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    assert "Zoë" in text
    assert json.loads(text) == data
    assert file_mode(path) == 0o644
    assert listing(tmp_path) == ["metadata.json"]


def test_failed_write_json_keeps_previous_content(tmp_path: Path) -> None:
    """Data that is not JSON leaves the old file unchanged and no temporary."""
    path = tmp_path / "metadata.json"
    write_json(path, {"version": 1})
    previous = path.read_bytes()

    with pytest.raises(TypeError):
        write_json(path, {"version": {1, 2}})

    assert path.read_bytes() == previous
    assert listing(tmp_path) == ["metadata.json"]


def test_failed_write_json_creates_no_file(tmp_path: Path) -> None:
    """Data that is not JSON, written to a new name, leaves the folder empty."""
    with pytest.raises(TypeError):
        write_json(tmp_path / "new.json", {1, 2})

    assert listing(tmp_path) == []


# copy_file


def test_copy_file_copies_bytes_exactly(tmp_path: Path) -> None:
    """The copy has the source's bytes, mode 0o644, and no temporary is left."""
    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    source_dir.mkdir()
    target_dir.mkdir()
    content = deterministic_bytes(CHUNK_BYTES + 123, seed=3)
    source = source_dir / "model.joblib"
    source.write_bytes(content)
    source.chmod(0o600)
    destination = target_dir / "model.joblib"

    copy_file(source, destination)

    assert destination.read_bytes() == content
    assert file_mode(destination) == 0o644
    assert listing(target_dir) == ["model.joblib"]


def test_copy_file_returns_the_sha256_of_the_copy(tmp_path: Path) -> None:
    """copy_file hashes the bytes as it copies them: the digest is the file's."""
    content = deterministic_bytes(3 * CHUNK_BYTES + 5, seed=11)
    source, destination = tmp_path / "source.bin", tmp_path / "model.joblib"
    source.write_bytes(content)

    digest = copy_file(source, destination)

    assert digest == hashlib.sha256(content).hexdigest()
    assert digest == sha256_file(destination)


def test_file_hashes_use_known_digests_and_read_the_rest(tmp_path: Path) -> None:
    """A digest passed as known is taken as given (the file is not read);
    every other file is hashed."""
    folder = make_package(tmp_path)
    names = sorted(PACKAGE_CONTENT)

    hashes = file_hashes(folder, names, known={"model.joblib": "f" * 64})

    assert hashes["model.joblib"] == "f" * 64
    for name in set(names) - {"model.joblib"}:
        assert hashes[name] == hashlib.sha256(PACKAGE_CONTENT[name]).hexdigest()
    assert list(hashes) == names


def test_copy_file_replaces_existing_destination(tmp_path: Path) -> None:
    """Copying onto an existing file replaces its bytes."""
    source, destination = tmp_path / "new.bin", tmp_path / "model.joblib"
    source.write_bytes(b"new")
    destination.write_bytes(b"old and longer")

    copy_file(source, destination)

    assert destination.read_bytes() == b"new"
    assert listing(tmp_path) == ["model.joblib", "new.bin"]


def test_failed_copy_file_leaves_no_temporary(tmp_path: Path) -> None:
    """Copying a missing file raises and leaves the destination as it was."""
    destination = tmp_path / "model.joblib"
    destination.write_bytes(b"old")

    with pytest.raises(FileNotFoundError):
        copy_file(tmp_path / "missing.joblib", destination)

    assert destination.read_bytes() == b"old"
    assert listing(tmp_path) == ["model.joblib"]


# standard library only


def import_without_site_packages(*modules: str) -> subprocess.CompletedProcess:
    """Import ``modules`` from hooks/ in a Python that has no site-packages."""
    imports = ", ".join(f"package_builder.{module}" for module in modules)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, 'hooks'); import {imports}",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_hook_modules_need_the_standard_library_only() -> None:
    """answers, archive and documents import with site-packages disabled."""
    result = import_without_site_packages("answers", "archive", "documents")

    assert result.returncode == 0, result.stderr


def test_standard_library_check_catches_a_third_party_import() -> None:
    """The same check fails for artifacts, which needs scikit-learn."""
    result = import_without_site_packages("artifacts")

    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def package_with_manifest(parent: Path) -> Path:
    """make_package plus a manifest naming its files and a SHA256SUMS."""
    folder = make_package(parent)
    names = package_files(folder)
    write_json(
        folder / "deployment_manifest.json",
        {"file_integrity": {name: sha256_file(folder / name) for name in names}},
    )
    write_sha256sums(folder)
    return folder


def test_previous_build_set_aside_comes_back_whole(tmp_path: Path) -> None:
    """set_aside_previous empties the folder into a hidden sibling;
    restore_previous puts every file back, removing what was written since."""
    folder = package_with_manifest(tmp_path)
    before = {name: (folder / name).read_bytes() for name in package_files(folder)}
    set_aside_previous(folder, "deployment_manifest.json")
    assert listing(folder) == []
    assert listing(tmp_path) == [f".{PACKAGE_NAME}.previous", PACKAGE_NAME]
    (folder / "half-written.txt").write_text("x")
    restore_previous(folder)
    assert {name: (folder / name).read_bytes() for name in package_files(folder)} == (
        before
    )
    assert listing(tmp_path) == [PACKAGE_NAME]


def test_files_of_an_interrupted_build_block_a_new_render(tmp_path: Path) -> None:
    """Files an interrupted build left set aside are refused, also before a
    new, empty folder: a failed build would otherwise move them into it, and
    cookiecutter then removes the folder it made, with them."""
    folder = tmp_path / PACKAGE_NAME
    folder.mkdir()
    kept = tmp_path / f".{PACKAGE_NAME}.previous"
    kept.mkdir()
    (kept / "model.joblib").write_bytes(b"earlier")
    with pytest.raises(ValueError, match="holds the files of an earlier build"):
        set_aside_previous(folder, "deployment_manifest.json")
    assert (kept / "model.joblib").read_bytes() == b"earlier"


def test_files_and_token_of_a_killed_build_are_named_in_one_refusal(
    tmp_path: Path,
) -> None:
    """Everything killed, the guard too: the set-aside files and the guard's
    token are left, and the one refusal says what to do with both."""
    folder = tmp_path / PACKAGE_NAME
    folder.mkdir()
    kept = tmp_path / f".{PACKAGE_NAME}.previous"
    kept.mkdir()
    (kept / "model.joblib").write_bytes(b"earlier")
    (tmp_path / f".{PACKAGE_NAME}.guard").mkdir()
    with pytest.raises(ValueError) as refusal:
        set_aside_previous(folder, "deployment_manifest.json")
    assert str(refusal.value).endswith(
        f"to drop them, remove .{PACKAGE_NAME}.previous; either way, remove "
        f".{PACKAGE_NAME}.guard"
    )


def test_previous_build_is_dropped_after_success(tmp_path: Path) -> None:
    """drop_previous removes what was set aside; restore_previous then does
    nothing."""
    folder = package_with_manifest(tmp_path)
    set_aside_previous(folder, "deployment_manifest.json")
    (folder / "new.txt").write_text("new")
    drop_previous(folder)
    restore_previous(folder)
    assert listing(tmp_path) == [PACKAGE_NAME]
    assert listing(folder) == ["new.txt"]


def test_previous_build_left_by_an_interrupted_build_is_refused(tmp_path: Path) -> None:
    """A second set_aside_previous while the first's files are still aside
    raises ValueError naming them, and moves nothing."""
    folder = package_with_manifest(tmp_path)
    set_aside_previous(folder, "deployment_manifest.json")
    (folder / "README.md").write_text("rendered again\n")
    (folder / "deployment_manifest.json").write_text("{}")
    kept = tmp_path / f".{PACKAGE_NAME}.previous"
    with pytest.raises(ValueError, match=re.escape(f"{kept} holds the files of an")):
        set_aside_previous(folder, "deployment_manifest.json")
    assert listing(folder) == ["README.md", "deployment_manifest.json"]


def test_a_first_zip_that_cannot_be_renamed_into_place_leaves_no_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename of a first build's zip fails (a disk error, a file open on
    Windows; simulated: os.replace refuses the zip): its .sha256 file, moved
    into place just before, is taken away again; nothing is left."""
    folder = make_package(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    zip_path = out / f"{PACKAGE_NAME}.zip"
    replace = os.replace

    def refuse_the_zip(source: str, target: str) -> None:
        if Path(target) == zip_path:
            raise PermissionError(13, "Permission denied", source, None, target)
        replace(source, target)

    monkeypatch.setattr(os, "replace", refuse_the_zip)
    with pytest.raises(PermissionError):
        write_zip(folder, zip_path, TIMESTAMP)
    monkeypatch.undo()

    assert listing(out) == []


def test_a_stop_once_the_zip_is_in_place_keeps_its_new_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop (Ctrl-C) that lands just after the new zip replaced the earlier
    one (simulated: the rename happens, then KeyboardInterrupt): the new
    .sha256 file stays beside it, so what is there still checks."""
    folder = make_package(tmp_path)
    zip_path, _ = zip_of(tmp_path, folder)
    sidecar = zip_path.with_name(f"{zip_path.name}.sha256")
    (folder / "README.md").write_bytes(b"# changed\n")
    replace = os.replace

    def replace_then_stop(source: str, target: str) -> None:
        replace(source, target)
        if Path(target) == zip_path:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace_then_stop)
    with pytest.raises(KeyboardInterrupt):
        write_zip(folder, zip_path, TIMESTAMP)
    monkeypatch.undo()

    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert sidecar.read_text() == f"{digest}  {zip_path.name}\n"
