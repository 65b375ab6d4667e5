"""Score a Spark DataFrame with this deployment package.

    from spark_scoring import score_dataframe

    scored = score_dataframe(df)      # df: a pyspark.sql.DataFrame
    scored.write.parquet("scored/")   # df's columns, then score and prediction

Needs ``pip install -r requirements-spark.txt`` on the driver and on every
executor (this package's requirements plus PySpark with pandas and pyarrow).

How it works:

1. On the driver, ``score_dataframe`` finds the package's zip (the
   ``package_zip`` argument; by default ``<this folder>.zip`` next to this
   package folder; if there is none, it zips the folder's package files into
   a temporary directory, checking each against the manifest). When the
   zip's ``.sha256`` file lies beside it, the zip must match it. It reads
   ``deployment_manifest.json`` from the zip (nothing is unpickled on the
   driver), checks the DataFrame's schema against the model's features, and
   ships the zip with ``SparkContext.addArchive`` under an alias.
2. Each executor's Python worker finds the unpacked archive, checks that its
   manifest is the one the driver read and that ``inference_example.py``
   matches its hash, imports it, and constructs ``ModelInference``, which
   verifies every file before it unpickles anything. It does this once per
   worker process and keeps the instance for the following tasks.
3. Partitions are scored with ``mapInPandas`` through
   ``ModelInference.predict``: the same scores and predictions as in one
   process, the same errors for bad values.

The driver needs only the standard library and PySpark; scikit-learn is
imported on the executors.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_FILE = "deployment_manifest.json"
SUMS_FILE = "SHA256SUMS"
INFERENCE_MODULE = "inference_example.py"
RESULT_COLUMNS = ("score", "prediction")
# The environment variables ModelInference reads. Only these are taken from
# the driver's environment and sent to the executors, never the rest of it.
SETTING_VARIABLES = (
    "MODEL_THRESHOLD",
    "MODEL_BATCH_SIZE",
    "MODEL_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
)
PACKAGE_DIR = Path(__file__).resolve().parent
# On each Python worker, loaded packages are kept in a module of this name
# (in sys.modules, so that it outlives one task; workers are reused).
WORKER_CACHE_MODULE = "_model_package_spark_workers"
_HASH_CHUNK_BYTES = 1 << 20
# Larger than any SHA256SUMS (as the package's other readers cap it).
_MAX_SUMS_BYTES = 64 * 1024 * 1024
# A folder name that a file system takes (255 bytes at most; the default
# alias, of a package name of 200 at most, is shorter).
_ALIAS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")
# The SHA-256 of the zip shipped under each alias, by Spark application: an
# alias names one build for the application's whole life.
_SHIPPED: dict[tuple[str, str], str] = {}
_SHOWN_COLUMNS = 20

logger = logging.getLogger("spark_scoring")


class IntegrityError(RuntimeError):
    """The zip does not match its .sha256 file, or a package file does not
    match the manifest; nothing was shipped."""


@dataclass(frozen=True)
class PackageArchive:
    """A deployment zip as the driver has read it.

    ``folder`` is the package folder inside the zip, ``manifest_sha256`` the
    SHA-256 of its deployment_manifest.json (the executors check that they
    load the same manifest), ``sha256`` the SHA-256 of the zip itself.
    """

    path: Path | None
    folder: str
    manifest: dict[str, Any]
    manifest_sha256: str
    sha256: str | None

    @property
    def feature_names(self) -> list[str]:
        """The model's features, in the manifest's order."""
        return list(self.manifest["training_info"]["feature_names"])

    @property
    def missing_features(self) -> str:
        """The package's missing_features policy: error, or zero."""
        config = self.manifest.get("inference_config") or {}
        return str(config.get("missing_features") or "error")

    def default_alias(self) -> str:
        """The name the archive is unpacked under: the folder and the start of
        the zip's SHA-256, so that two builds never share a name."""
        tag = (self.sha256 or self.manifest_sha256)[:12]
        return f"{self.folder}-{tag}"


def _sha256_file(path: Path) -> str:
    """The SHA-256 of ``path``, read in chunks. Not inference_example's
    sha256_file: that module is checked with this one before it is imported,
    and the driver does not import it at all."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar_digest(sidecar: Path) -> str:
    """The SHA-256 in a ``sha256sum``-style file: ``<hex>  <name>``."""
    try:
        text = sidecar.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        text = ""
    except OSError as error:
        raise IntegrityError(
            f"{sidecar} cannot be read ({error.strerror or error}), so the zip "
            "cannot be checked: give the user running this read access to it"
        ) from None
    digest = text.split()[0].lower() if text else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise IntegrityError(
            f"{sidecar} does not hold a SHA-256 ('<sha256>  <file name>'), so the "
            "zip cannot be checked: get both files again from a source you trust"
        )
    return digest


def read_package_zip(path: str | os.PathLike[str]) -> PackageArchive:
    """Read a deployment zip on the driver, without unpickling anything.

    When ``<zip>.sha256`` lies beside the zip, the zip must match it.

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder (the package folder, say).
        IntegrityError: the zip does not match its .sha256 file.
        ValueError: the file is not a deployment package zip.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(_folder_given(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass the package's zip")
    digest = _sha256_file(path)
    sidecar = path.with_name(path.name + ".sha256")
    if os.path.lexists(sidecar) and not sidecar.is_file():  # a broken link too
        raise IntegrityError(
            f"{sidecar} is not a file, so the zip cannot be checked: move it "
            "away, or put the zip's .sha256 file there"
        )
    if sidecar.is_file():
        if _sidecar_digest(sidecar) != digest:
            raise IntegrityError(
                f"package integrity check failed, nothing was shipped: {path.name}: "
                f"SHA-256 does not match {sidecar.name}. Get the zip (and its "
                ".sha256) again from a source you trust"
            )
    else:
        logger.info(
            "%s has no %s beside it: the zip itself is not checked on the driver "
            "(each executor still verifies every file against the manifest)",
            path.name,
            sidecar.name,
        )
    try:
        with zipfile.ZipFile(path) as archive:
            manifests = [
                name
                for name in archive.namelist()
                if len(PurePosixPath(name).parts) == 2
                and PurePosixPath(name).name == MANIFEST_FILE
            ]
            if len(manifests) != 1:
                raise ValueError(
                    f"{path} is not a deployment package zip: it needs exactly one "
                    f"<package folder>/{MANIFEST_FILE}, found {len(manifests)}"
                )
            data = archive.read(manifests[0])
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a zip file ({error})") from None
    folder = PurePosixPath(manifests[0]).parts[0]
    return _archive_from_manifest(path, folder, data, digest)


def _folder_given(path: Path) -> str:
    """The message for a folder given where the package's zip belongs."""
    message = f"{path} is a folder, not the package's zip: pass the zip file itself "
    if (path / MANIFEST_FILE).is_file():
        return message + (
            f"({path.name}.zip, as the build writes it), or "
            f"build_package_zip({str(path)!r}) to zip this package folder"
        )
    return message + "(<package folder>.zip, as the build writes it)"


def _archive_from_manifest(
    path: Path | None, folder: str, data: bytes, sha256: str | None
) -> PackageArchive:
    import json

    try:
        manifest = json.loads(data)
        names = manifest["training_info"]["feature_names"]
    except (ValueError, KeyError, TypeError):
        names = None
    if not isinstance(names, list) or not names:
        raise ValueError(
            f"{folder}/{MANIFEST_FILE} in {path or 'the archive'} is not a "
            "deployment manifest with training_info.feature_names: pass the zip "
            "the package was built as, or re-download it"
        )
    return PackageArchive(
        path=path,
        folder=folder,
        manifest=manifest,
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        sha256=sha256,
    )


_BUILT_ZIPS: dict[tuple[str, str], Path] = {}


def build_package_zip(package_dir: str | os.PathLike[str] = PACKAGE_DIR) -> Path:
    """Zip a package folder's files into a temporary directory; return the path.

    Only the package's own files go in (those named in the manifest's
    file_integrity, the manifest and SHA256SUMS), under one top folder named
    like the package folder. Before any is written, the manifest is checked
    against SHA256SUMS and every other file against the manifest. The zip
    lives until this Python process ends; a second call for the same folder
    and manifest returns the same zip.

    Raises:
        FileNotFoundError: ``package_dir`` has no deployment_manifest.json.
        IntegrityError: the manifest is not valid JSON with file_integrity or
            does not match SHA256SUMS, or a file is missing or does not match
            the manifest.
    """
    import json

    package_dir = Path(package_dir).resolve()
    manifest_path = package_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} not found: pass the package's zip as package_zip, "
            "or a package folder"
        )
    data = manifest_path.read_bytes()
    manifest_sha256 = hashlib.sha256(data).hexdigest()
    key = (str(package_dir), manifest_sha256)
    built = _BUILT_ZIPS.get(key)
    if built is not None and built.is_file():
        return built
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        manifest = None
    hashes = manifest.get("file_integrity") if isinstance(manifest, dict) else None
    if not isinstance(hashes, dict):
        raise IntegrityError(
            _refusal(
                [f"{MANIFEST_FILE}: not a deployment manifest (no file_integrity)"]
            )
        )
    names = [*hashes, MANIFEST_FILE, SUMS_FILE]
    problems = []
    sums_problem = _sums_problem(package_dir / SUMS_FILE, manifest_sha256)
    if sums_problem is not None:
        problems.append(sums_problem)
    for name in hashes:
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).is_absolute() or ".." in parts:
            problems.append(f"{name}: is not a file name inside the package")
        elif not (package_dir / name).is_file():
            problems.append(f"{name}: missing")
        elif _sha256_file(package_dir / name) != hashes[name]:
            problems.append(f"{name}: SHA-256 does not match the manifest")
    if problems:
        raise IntegrityError(_refusal(problems))
    directory = Path(tempfile.mkdtemp(prefix="spark_scoring_"))
    atexit.register(shutil.rmtree, directory, True)
    target = directory / f"{package_dir.name}.zip"
    with zipfile.ZipFile(
        target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
    ) as archive:
        for name in sorted(names):
            archive.write(package_dir / name, f"{package_dir.name}/{name}")
    _BUILT_ZIPS[key] = target
    logger.info("no zip next to %s: built %s from the folder", package_dir, target)
    return target


def _sums_problem(sums: Path, manifest_sha256: str) -> str | None:
    """What keeps SHA256SUMS from vouching for the manifest, or None, as the
    package's own readers (validate_model.py, inference_example.py) say it."""
    if not sums.is_file():
        if sums.exists():
            return f"{SUMS_FILE}: not a regular file"
        return f"{SUMS_FILE}: missing (it holds the manifest's SHA-256)"
    try:
        with open(sums, "rb") as stream:
            data = stream.read(_MAX_SUMS_BYTES + 1)
    except OSError as error:
        return f"{SUMS_FILE}: cannot be read ({error.strerror or error})"
    if len(data) > _MAX_SUMS_BYTES:
        return f"{SUMS_FILE}: larger than {_MAX_SUMS_BYTES} bytes"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{SUMS_FILE}: is not UTF-8 text, so not a list of SHA-256s"
    # Every line for the manifest: an executor refuses any that disagrees.
    digests = [
        digest
        for digest, _, name in (line.partition("  ") for line in text.splitlines())
        if name == MANIFEST_FILE
    ]
    if not digests:
        return f"{MANIFEST_FILE}: not listed in {SUMS_FILE}, so not checked"
    if any(digest != manifest_sha256 for digest in digests):
        return f"{MANIFEST_FILE}: SHA-256 does not match {SUMS_FILE}"
    return None


def _refusal(problems: list[str]) -> str:
    return (
        "package integrity check failed, nothing was shipped: "
        + "; ".join(problems)
        + ". Re-download the package and run validate_model.py"
    )


def default_package_zip(package_dir: str | os.PathLike[str] = PACKAGE_DIR) -> Path:
    """The zip to ship when none is given: ``<folder>.zip`` next to the package
    folder (as the build writes it), else one built from the folder."""
    package_dir = Path(package_dir).resolve()
    beside = package_dir.parent / f"{package_dir.name}.zip"
    return beside if beside.is_file() else build_package_zip(package_dir)


def _read_shipped(alias: str) -> PackageArchive:
    """The manifest of an archive already unpacked on the driver under ``alias``
    (``spark-submit --archives zip#alias`` unpacks it there too)."""
    from pyspark import SparkFiles

    candidates = [Path(SparkFiles.getRootDirectory()) / alias, Path.cwd() / alias]
    for root in candidates:
        if not root.is_dir():
            continue
        if (root / MANIFEST_FILE).is_file():
            raise ValueError(
                f"the archive '{alias}' holds the package files at its top: a "
                "deployment zip has one package folder inside, ship that zip"
            )
        found = sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))
        if len(found) == 1:
            folder = found[0]
            return _archive_from_manifest(
                None, folder.name, (folder / MANIFEST_FILE).read_bytes(), None
            )
    raise FileNotFoundError(
        f"no package archive named '{alias}' is unpacked on the driver (looked in "
        f"{', '.join(str(c) for c in candidates)}): pass the zip as package_zip, "
        f"or ship it with spark-submit --archives <zip>#{alias}"
    )


def ship_archive(spark_context: Any, archive: PackageArchive, alias: str) -> None:
    """``SparkContext.addArchive`` the zip as ``<zip>#<alias>``, once."""
    uri = f"{archive.path.resolve().as_uri()}#{alias}"
    shipped = _SHIPPED.get((spark_context.applicationId, alias))
    digest = archive.sha256  # set for every archive read from a zip
    if shipped is not None:
        if shipped != digest:
            raise ValueError(
                f"the alias '{alias}' already holds another zip in this "
                f"SparkContext (SHA-256 {shipped[:12]}..., this one "
                f"{digest[:12]}...): give this one another alias"
            )
        return  # the same build, from whichever path
    listed = list(getattr(spark_context, "listArchives", []) or [])
    taken = [entry for entry in listed if entry.rsplit("#", 1)[-1] == alias]
    if not taken:
        logger.info(
            "shipping %s (model_version %s) to the executors as '%s'",
            archive.path,
            archive.manifest.get("model_version"),
            alias,
        )
        spark_context.addArchive(uri)
        _SHIPPED[spark_context.applicationId, alias] = digest
    elif not any(_same_file(entry, archive.path) for entry in taken):
        raise ValueError(
            f"the alias '{alias}' is already taken by {taken[0]} in this "
            "SparkContext: choose another alias"
        )


def _same_file(uri: str, path: Path) -> bool:
    from urllib.parse import unquote, urlparse

    location = urlparse(uri.rsplit("#", 1)[0])
    if location.scheme not in ("", "file"):
        return False
    return Path(unquote(location.path)).resolve() == path.resolve()


def _settings_from(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The ModelInference variables from ``environ`` (default: the driver's)."""
    source = os.environ if environ is None else environ
    if not isinstance(source, Mapping):
        raise TypeError(
            "environ must map variable names to values (os.environ, a dict), "
            f"not {type(source).__name__}"
        )
    return {
        name: str(source[name])
        for name in SETTING_VARIABLES
        if source.get(name) is not None and str(source[name]).strip()
    }


def _case_sensitive(session: Any) -> bool:
    """Whether ``session`` tells column names apart by case: Spark's
    ``spark.sql.caseSensitive``, false by default (then ``Score`` and
    ``score`` are one name)."""
    value = session.conf.get("spark.sql.caseSensitive", "false")
    return str(value).strip().lower() == "true"


def check_columns(
    schema: Any, archive: PackageArchive, *, case_sensitive: bool = False
) -> dict[str, str]:
    """Check a Spark schema against the model's features, as ``predict``
    checks a pandas DataFrame; return the column of each feature present.

    ``case_sensitive``: whether Spark tells column names apart by case (the
    session's spark.sql.caseSensitive); if not, a ``Score`` column clashes
    with the ``score`` column the output adds, and a feature is found in a
    column named like it in another case (``BYTES_IN`` for ``bytes_in``), as
    Spark itself would resolve it.

    Raises:
        ValueError: a feature column is missing (unless the package fills
            missing features with 0.0), not numeric or, in another case, not
            one; two columns share a name, or a result column (score,
            prediction) exists already.
    """
    from pyspark.sql.types import NumericType

    fields = {}
    for field in schema.fields:
        if field.name in fields:
            raise ValueError(
                f"the DataFrame has two columns named {field.name!r}: rename one"
            )
        fields[field.name] = field
    for column in fields:
        for name in RESULT_COLUMNS:
            if column == name:
                raise ValueError(
                    f"the DataFrame already has a {name!r} column, which the "
                    "output adds: rename or drop it"
                )
            if not case_sensitive and column.lower() == name:
                raise ValueError(
                    f"the DataFrame has a column {column!r}, which Spark does not "
                    f"tell apart from the {name!r} column the output adds "
                    "(spark.sql.caseSensitive is false): rename or drop it"
                )
    present = {}
    features = set(archive.feature_names)
    for name in archive.feature_names:
        field = fields.get(name)
        if not case_sensitive:
            # Also beside an exact match, Spark would not tell them apart; a
            # column named exactly as another feature is that feature's.
            alike = [
                f
                for column, f in fields.items()
                if column.lower() == name.lower()
                and (column == name or column not in features)
            ]
            if len(alike) > 1:
                raise ValueError(
                    f"Feature '{name}' matches the columns "
                    f"{', '.join(repr(f.name) for f in alike)}, which Spark does not "
                    "tell apart (spark.sql.caseSensitive is false): rename or drop "
                    "all but one"
                )
            field = alike[0] if alike else None
        if field is None:
            shown = ", ".join(list(fields)[:_SHOWN_COLUMNS])
            more = len(fields) - _SHOWN_COLUMNS
            where = f"the Spark DataFrame has no such column; its columns: {shown}" + (
                f" and {more} more" if more > 0 else ""
            )
            if archive.missing_features != "zero":
                raise ValueError(
                    f"Feature '{name}' not found in input ({where}): every record "
                    "needs all features in ModelInference.feature_names"
                )
            logger.warning(
                "Feature '%s' not found in input (the Spark DataFrame has no such "
                "column): filled with 0.0 on every row",
                name,
            )
            continue
        if not isinstance(field.dataType, NumericType):
            raise ValueError(
                f"Feature '{name}' is a column of type "
                f"{field.dataType.simpleString()} in the Spark DataFrame: every "
                "value must be a finite number (cast the column to double)"
            )
        present[name] = field.name
    return present


def score_dataframe(
    df: Any,
    package_zip: str | os.PathLike[str] | None = None,
    *,
    alias: str | None = None,
    shipped_as: str | None = None,
    environ: Mapping[str, str] | None = None,
    allow_version_mismatch: bool = False,
) -> Any:
    """Score a Spark DataFrame; return it with ``score`` and ``prediction`` added.

    Lazy, like any DataFrame transformation: the rows are scored when an
    action (write, count, collect...) runs. The schema is checked here, so a
    missing or non-numeric feature column raises at once; a bad value (null,
    NaN, infinity) fails the job with ``predict``'s ``ValueError`` message.

    Args:
        df: a ``pyspark.sql.DataFrame`` with a numeric column for every
            feature (other columns are passed through unchanged).
        package_zip: the deployment zip, a path on the driver. Default:
            ``<package folder>.zip`` next to this package's folder, else a zip
            built from the folder. Checked against ``<zip>.sha256`` when that
            file lies beside it.
        alias: the name the zip is unpacked under on the executors (default:
            the package folder's name and the start of the zip's SHA-256).
        shipped_as: the alias of an archive already shipped, for example with
            ``spark-submit --archives <zip>#<alias>``: nothing is shipped.
            The driver reads the manifest from ``package_zip`` when given,
            else from the archive unpacked on the driver.
        environ: where the MODEL_THRESHOLD, MODEL_BATCH_SIZE, MODEL_TIMEOUT,
            LOG_LEVEL and LOG_FORMAT settings come from (default: the
            driver's environment, read now; ``{}``: the manifest's values).
            Only those five are sent to the executors, whose own environment
            is not read.
        allow_version_mismatch: passed to ``ModelInference`` on the executors.

    Returns:
        A DataFrame with ``df``'s columns, then ``score`` (double, higher is
        more anomalous) and ``prediction`` (int, 1 = anomaly).

    Raises:
        ValueError: a missing or non-numeric feature column, a ``score`` or
            ``prediction`` column in ``df`` (or ``Score``, ``PREDICTION``...
            unless spark.sql.caseSensitive is true), or a file that is not a
            package.
        FileNotFoundError: no file at ``package_zip``.
        IsADirectoryError: ``package_zip`` is a folder, not the zip.
        IntegrityError: the zip does not match its .sha256 file.
    """
    if alias is not None and shipped_as is not None:
        raise ValueError(
            "give alias (the name to ship the zip under) or shipped_as (the name "
            "it was shipped under), not both"
        )
    for given in (alias, shipped_as):
        if given is not None and not _ALIAS.fullmatch(given):
            raise ValueError(
                f"alias {given!r} cannot be used: give a folder name of at most "
                "255 letters, digits, '.', '_' and '-'"
            )
    if shipped_as is not None:
        archive = (
            _read_shipped(shipped_as)
            if package_zip is None
            else read_package_zip(package_zip)
        )
    else:
        archive = read_package_zip(
            default_package_zip() if package_zip is None else package_zip
        )
    features = check_columns(
        df.schema, archive, case_sensitive=_case_sensitive(df.sparkSession)
    )
    from pyspark.sql.types import (
        DecimalType,
        DoubleType,
        IntegerType,
        StructField,
        StructType,
    )

    decimals = [
        column
        for column in features.values()
        if isinstance(df.schema[column].dataType, DecimalType)
    ]
    if shipped_as is None:
        shipped_as = alias or archive.default_alias()
        ship_archive(df.sparkSession.sparkContext, archive, shipped_as)
    # mapInPandas resolves each column by its name, which Spark parses: a
    # name such as "a.b" would not resolve. The columns go through it under
    # positional names, and come back under their own.
    names = df.columns
    positional = [f"_{index}" for index in range(len(names))]
    column_of = dict(zip(names, positional, strict=True))
    schema = StructType(
        [
            *(
                StructField(name, field.dataType, field.nullable, field.metadata)
                for name, field in zip(positional, df.schema.fields, strict=True)
            ),
            StructField("score", DoubleType(), nullable=False),
            StructField("prediction", IntegerType(), nullable=False),
        ]
    )
    scorer = partition_scorer(
        alias=shipped_as,
        folder=archive.folder,
        manifest_sha256=archive.manifest_sha256,
        settings=_settings_from(environ),
        allow_version_mismatch=allow_version_mismatch,
        features={name: column_of[column] for name, column in features.items()},
        decimals=[column_of[column] for column in decimals],
    )
    scored = df.toDF(*positional).mapInPandas(scorer, schema)
    return scored.toDF(*names, *RESULT_COLUMNS)


def partition_scorer(
    alias: str,
    folder: str,
    manifest_sha256: str,
    settings: dict[str, str],
    allow_version_mismatch: bool,
    features: dict[str, str],
    decimals: list[str],
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The function ``mapInPandas`` runs on the executors.

    ``features``: each feature present, by the name of the column that holds
    it in the batches (``score_dataframe`` renames the columns); ``decimals``:
    the columns (by that name) of Spark's decimal type.

    It is a closure, so Spark pickles it by value: the executors need not
    import this module, only find the shipped package. It must use nothing
    of this module but its arguments (and its own imports).
    """
    cache_key = (
        alias,
        folder,
        manifest_sha256,
        allow_version_mismatch,
        tuple(sorted(settings.items())),
    )
    manifest_name = MANIFEST_FILE
    module_file = INFERENCE_MODULE
    cache_module = WORKER_CACHE_MODULE

    def load_package() -> Any:
        """Find the unpacked archive, check it, import it, construct
        ModelInference (which verifies every file before unpickling)."""
        import hashlib
        import json
        import sys
        import types
        from pathlib import Path

        from pyspark import SparkFiles

        roots = [Path(SparkFiles.getRootDirectory()), Path.cwd()]
        candidates = [root / alias / folder for root in roots]
        directory = next((c for c in candidates if (c / manifest_name).is_file()), None)
        if directory is None:
            raise FileNotFoundError(
                f"the package archive '{alias}' is not on this executor (looked "
                f"for {', '.join(str(c) for c in candidates)}): let score_dataframe "
                f"ship it, or ship it with spark-submit --archives <zip>#{alias}"
            )
        data = (directory / manifest_name).read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest_sha256:
            raise RuntimeError(
                "package integrity check failed, nothing was loaded: "
                f"{manifest_name} in {directory} is not the manifest the driver "
                "read (the archive changed after it was shipped?): ship the zip "
                "again under a new alias"
            )
        expected = (json.loads(data).get("file_integrity") or {}).get(module_file)
        # Read once: the bytes checked are the bytes run (never byte-code
        # from a __pycache__).
        source = (directory / module_file).read_bytes()
        if expected is None or hashlib.sha256(source).hexdigest() != expected:
            problem = (
                "has no SHA-256 in the manifest"
                if expected is None
                else "SHA-256 does not match the manifest"
            )
            raise RuntimeError(
                "package integrity check failed, nothing was loaded: "
                f"{module_file}: {problem}. Re-download the package and run "
                "validate_model.py"
            )
        name = f"_model_package_{manifest_sha256[:16]}_inference_example"
        module = sys.modules.get(name)
        if module is None:
            module = types.ModuleType(name)
            module.__file__ = str(directory / module_file)
            sys.modules[name] = module  # dataclasses look their module up there
            try:
                exec(compile(source, module.__file__, "exec"), module.__dict__)
            except BaseException:
                del sys.modules[name]
                raise
        return module.ModelInference(
            directory,
            verify=True,
            allow_version_mismatch=allow_version_mismatch,
            environ=dict(settings),
        )

    def score_partition(batches: Iterator[Any]) -> Iterator[Any]:
        import sys
        import types

        import numpy as np
        from pyspark import TaskContext

        cache = sys.modules.get(cache_module)
        if cache is None:
            cache = types.ModuleType(cache_module)
            cache.instances = {}
            sys.modules[cache_module] = cache
        inference = cache.instances.get(cache_key)
        if inference is None:
            inference = load_package()
            cache.instances[cache_key] = inference
        for batch in batches:
            frame = batch[list(features.values())]
            if decimals:
                frame = frame.astype(dict.fromkeys(decimals, "float64"))
            frame.columns = list(features)
            try:
                result = inference.predict(frame)
            except ValueError as error:
                context = TaskContext.get()
                partition = context.partitionId() if context else "?"
                # A SQL NULL reaches pandas as NaN: say so, and what to do.
                null = (
                    "; a null arrives here as nan: drop or fill such rows "
                    "first, for example df.dropna(subset=[...the features])"
                    if " is nan: " in str(error)
                    else ""
                )
                raise ValueError(
                    f"{error} (Spark partition {partition}: row numbers count "
                    f"from 0 within one batch of {len(batch)} rows{null})"
                ) from None
            yield batch.assign(
                score=np.asarray(result["scores"], dtype="float64"),
                prediction=np.asarray(result["predictions"], dtype="int32"),
            )

    return score_partition
