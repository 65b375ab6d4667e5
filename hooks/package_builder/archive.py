"""Copy, hash and zip a package folder (standard library only).

Files are streamed in chunks, so memory does not grow with the model. Every
output is written under a temporary name and moved into place last, so a
failure leaves no half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no lock tells a running build (build_running)
    fcntl = None

CHUNK_BYTES = 1 << 20
# zlib level of every zip entry. On a pickled 52 MB IsolationForest, level 3
# deflates 2.1 times as fast as zlib's default (6) for a zip 4% larger; level 1
# saves little more time for 10% more bytes (see tests/benchmark.py).
DEFLATE_LEVEL = 3
SUMS_FILE = "SHA256SUMS"
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc"}
FILE_MODE = 0o644
DIR_MODE = 0o755


def sha256_stream(stream: IO[bytes]) -> str:
    """Return the SHA-256 hex digest of what is left to read in ``stream``."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of ``path``, read in chunks."""
    with open(path, "rb") as stream:
        return sha256_stream(stream)


@contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; move it onto ``path`` on success."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
        with os.fdopen(descriptor, mode, **text) as stream:
            yield stream
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def copy_file(source: Path, destination: Path) -> str:
    """Copy ``source`` to ``destination`` atomically, in chunks.

    Returns the SHA-256 of the bytes written, hashed as they pass.
    """
    digest = hashlib.sha256()
    with open(source, "rb") as stream, atomic_write(destination) as target:
        for chunk in iter(lambda: _read(stream, source), b""):
            digest.update(chunk)
            target.write(chunk)
    return digest.hexdigest()


def _read(stream: IO[bytes], path: Path) -> bytes:
    """The next chunk of ``stream``; a failure names ``path``, the file read
    (a failed write names none), so that the error can say which failed."""
    try:
        return stream.read(CHUNK_BYTES)
    except OSError as error:
        raise OSError(error.errno, error.strerror, os.fspath(path)) from error


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON with a final newline."""
    with atomic_write(path, "w") as stream:
        stream.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def package_files(folder: Path, exclude: set[str] = frozenset()) -> list[str]:
    """Return every file under ``folder`` as sorted POSIX relative paths.

    Byte-code caches are left out; so are the names in ``exclude``.
    """
    names = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in dirs:
            if Path(root, name).is_symlink():
                relative = Path(root, name).relative_to(folder).as_posix()
                raise ValueError(
                    f"{relative} in {folder} is a link to a folder: "
                    "a package holds regular files only"
                )
        for name in files:
            path = Path(root, name)
            relative = path.relative_to(folder).as_posix()
            if path.suffix in SKIPPED_SUFFIXES or relative in exclude:
                continue
            if path.is_symlink() or not path.is_file():
                raise ValueError(
                    f"{relative} in {folder} is not a regular file: "
                    "a package holds regular files only"
                )
            names.append(relative)
    return sorted(names)


def file_hashes(
    folder: Path, names: list[str], known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return ``{name: sha256}`` for each of ``names`` inside ``folder``.

    ``known`` holds digests already computed for files that have not changed
    since; only the other files are read.
    """
    known = known or {}
    return {name: known.get(name) or sha256_file(folder / name) for name in names}


def write_sha256sums(
    folder: Path, known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Write SHA256SUMS (``sha256sum -c`` format) over every other file.

    ``known`` is passed to file_hashes (the manifest's ``file_integrity``).
    """
    hashes = file_hashes(folder, package_files(folder, exclude={SUMS_FILE}), known)
    with atomic_write(folder / SUMS_FILE, "w") as stream:
        stream.writelines(f"{digest}  {name}\n" for name, digest in hashes.items())
    return hashes


def sidecar_path(zip_path: Path) -> Path:
    """The ``.sha256`` file written beside ``zip_path`` (``sha256sum`` format)."""
    return zip_path.with_name(zip_path.name + ".sha256")


def previous_dir(folder: Path) -> Path:
    """Where ``set_aside_previous`` keeps the earlier build of ``folder``."""
    return folder.with_name(f".{folder.name}.previous")


def guard_token(folder: Path) -> Path:
    """The folder whose existence says that a guard watches ``folder``
    (see stopping.py)."""
    return folder.with_name(f".{folder.name}.guard")


def hold_folder(folder: Path) -> int | None:
    """Lock ``folder`` while the descriptor returned stays open (until the
    process ends, at the latest), so that another render can tell that a
    build still runs there (``build_running``). None where no lock is
    taken: no fcntl, or another process holds one."""
    if fcntl is None:
        return None
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def build_running(folder: Path) -> bool:
    """Whether a build that still runs holds ``folder`` (``hold_folder``)."""
    if fcntl is None:
        return False
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)
    return False


def set_aside_previous(folder: Path, manifest_name: str) -> None:
    """Move an earlier build's files out of ``folder`` (rendering again over
    it), so that a failed build can put them back: see ``restore_previous``.

    Raises ValueError, moving nothing, when ``folder`` holds a file that is
    not the earlier package's own (named in its manifest ``manifest_name``),
    when a build still runs there, when an interrupted build left its
    previous files or its guard's token behind, or when the files cannot be
    moved (a folder that is not writable).
    """
    kept = previous_dir(folder)
    if build_running(folder):
        raise ValueError(
            f"another build still runs in {folder} (if its cookiecutter was "
            "stopped, it is putting the folder back): wait for it to end, then "
            "render again"
        )
    if kept.exists():  # even before an empty folder: it would be put back there
        token = guard_token(folder)
        also = f"; either way, remove {token.name}" if token.exists() else ""
        raise ValueError(
            f"{kept} holds the files of an earlier build that was interrupted: "
            f"to put them back, empty {folder} (the interrupted build's own "
            f"files), move them into it and remove {kept.name}; to drop them, "
            f"remove {kept.name}{also}"
        )
    if guard_token(folder).exists():
        raise ValueError(
            f"{guard_token(folder)} was left by a build that was killed: "
            "remove it, then render again"
        )
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    found = package_files(folder)
    try:
        manifest = json.loads((folder / manifest_name).read_text(encoding="utf-8"))
        own = {*manifest["file_integrity"], manifest_name, SUMS_FILE}
    except (OSError, ValueError, TypeError, KeyError):
        raise ValueError(
            f"{folder} already holds {found[0] if found else 'folders'} and no "
            "package built by this template: remove it, or give another version"
        ) from None
    strangers = [name for name in found if name not in own]
    if strangers:
        raise ValueError(
            f"{folder} holds {strangers[0]}, which is not a file of the package "
            "built there; a rebuild would package it: move it out, or give "
            "another version"
        )
    try:
        kept.mkdir()
    except OSError as error:
        raise ValueError(
            f"the earlier build in {folder} cannot be set aside in {kept} "
            f"({error.strerror}): make {folder.parent} writable, then render again"
        ) from None
    moved: list[str] = []
    try:
        for entry in sorted(folder.iterdir()):
            os.replace(entry, kept / entry.name)
            moved.append(entry.name)
    except OSError as error:
        for name in moved:  # nothing moved after all
            os.replace(kept / name, folder / name)
        kept.rmdir()
        raise ValueError(
            f"the earlier build in {folder} cannot be set aside ({error.strerror}: "
            f"{error.filename}): make {folder} and what it holds writable "
            "(chmod -R u+w), then render again"
        ) from None


def restore_previous(folder: Path) -> None:
    """Put back the earlier build that ``set_aside_previous`` moved away,
    removing what the failed build wrote (nothing, if none was set aside)."""
    kept = previous_dir(folder)
    if not kept.is_dir():
        return
    _empty(folder)
    for entry in kept.iterdir():
        os.replace(entry, folder / entry.name)
    kept.rmdir()


def discard_build(folder: Path, set_aside: bool) -> bool:
    """Remove what a stopped build wrote in ``folder``: the earlier build set
    aside comes back (``restore_previous``); without one, ``folder`` is left
    empty.

    ``set_aside`` says whether the build had set an earlier one aside. If it
    had and that is gone, someone else has put it back (or removed it): the
    folder is no longer the build's, and is left alone (False).
    """
    if previous_dir(folder).is_dir():
        restore_previous(folder)
    elif set_aside:
        return False
    else:
        _empty(folder)
    return True


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def drop_previous(folder: Path) -> None:
    """Remove the earlier build set aside: the new one is complete."""
    shutil.rmtree(previous_dir(folder), ignore_errors=True)


def write_zip(
    folder: Path,
    zip_path: Path,
    timestamp: datetime,
    before_publish: Callable[[], None] | None = None,
) -> str:
    """Zip ``folder`` as ``zip_path`` with one top folder; return its SHA-256.

    The archive is deterministic: entries sorted, every date set to
    ``timestamp``, fixed permissions. The same files and timestamp give the
    same bytes. Its SHA-256 is written beside it (``sidecar_path``).

    ``before_publish`` runs once the archive is complete, before it is moved
    to ``zip_path``; if it raises, no zip is left. The build waits for its
    validation run there, so that validating and zipping overlap. The
    ``.sha256`` file is moved into place before the zip, so a zip is never
    there without it; should the zip then fail to move into place, the
    earlier ``.sha256`` file comes back, matching the earlier zip again.
    """
    sidecar = sidecar_path(zip_path)
    for path in (zip_path, sidecar):
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder: move it away and build again")
    try:
        earlier = sidecar.read_bytes() if sidecar.is_file() else None
    except OSError:
        earlier = None  # unreadable: on failure, no sidecar beats a wrong one
    written: list[int] = []  # the new zip's inode, once it is being written
    try:
        return _write_zip(folder, zip_path, timestamp, before_publish, written)
    except BaseException:
        try:  # stopped once the new zip was in place: its new sidecar stays
            in_place = bool(written) and zip_path.stat().st_ino == written[0]
        except OSError:  # no zip there: a first build's
            in_place = False
        with suppress(OSError):  # the error that ended the build comes first
            if not in_place and sidecar.read_bytes() != earlier:
                if earlier is None:
                    sidecar.unlink()
                else:
                    with atomic_write(sidecar) as stream:
                        stream.write(earlier)
        raise


def _write_zip(
    folder: Path,
    zip_path: Path,
    timestamp: datetime,
    before_publish: Callable[[], None] | None,
    written: list[int],
) -> str:
    top = folder.name
    date_time = timestamp.timetuple()[:6]
    names = package_files(folder)
    sidecar = sidecar_path(zip_path)
    with atomic_write(zip_path, "w+b") as stream:
        written.append(os.fstat(stream.fileno()).st_ino)
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            entry = zipfile.ZipInfo(f"{top}/", date_time)
            entry.create_system = 3
            entry.external_attr = (0o040000 | DIR_MODE) << 16 | 0x10
            archive.writestr(entry, b"")
            for name in names:
                entry = zipfile.ZipInfo(f"{top}/{name}", date_time)
                entry.create_system = 3
                entry.external_attr = (0o100000 | FILE_MODE) << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                # ZipFile.open(entry) takes the level from the entry:
                # compress_level from Python 3.13, _compresslevel before.
                if hasattr(entry, "compress_level"):
                    entry.compress_level = DEFLATE_LEVEL
                else:
                    entry._compresslevel = DEFLATE_LEVEL
                entry.file_size = (folder / name).stat().st_size
                with (
                    open(folder / name, "rb") as source,
                    archive.open(entry, "w") as target,
                ):
                    path = folder / name
                    while chunk := _read(source, path):
                        target.write(chunk)
        stream.seek(0)
        digest = sha256_stream(stream)
        if before_publish is not None:
            before_publish()
        with atomic_write(sidecar, "w") as text:
            text.write(f"{digest}  {zip_path.name}\n")
    return digest
