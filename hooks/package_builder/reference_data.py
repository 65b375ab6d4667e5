"""Read and check the builder's reference data (``reference_data_path``).

Standard library only, so that the pre-generation hook can refuse a bad file
before anything is written: CSV is read with the ``csv`` module. Parquet is
read through pyarrow, and only when pyarrow can be imported; otherwise a
Parquet file is refused with the command that installs it.

The file holds representative inputs: a column per model feature (any order;
other columns are ignored) and a row per record, every feature value a finite
number. Values are kept as ``array('d')`` columns (8 bytes a value).
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .answers import AnswerError, unreadable, written_plainly
from .archive import sha256_file

ANSWER = "reference_data_path"
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
SHOWN_COLUMNS = 20
SHOWN_TEXT = 40


@dataclass(frozen=True)
class ReferenceData:
    """A checked reference file: what it is and its feature columns.

    ``columns`` maps each feature to its values in file order; it is empty
    when the file was checked without the feature names, or without keeping
    the values.
    """

    file_name: str
    file_format: str
    sha256: str
    rows: int
    columns: dict[str, array] = field(default_factory=dict)


def _refuse(path: Path, fix: str) -> AnswerError:
    return AnswerError(ANSWER, str(path), fix)


def reference_format(path: Path) -> str:
    """Return "csv" or "parquet" from the file name, or refuse it."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        if importlib.util.find_spec("pyarrow") is None:
            raise _refuse(
                path,
                "is a Parquet file, and reading Parquet needs pyarrow, which the "
                f"Python running cookiecutter ({sys.executable}) cannot import: "
                "pip install pyarrow (with pipx: pipx inject cookiecutter "
                "pyarrow), or give the data as a .csv file",
            )
        return "parquet"
    raise _refuse(
        path,
        f"cannot tell the format from the name ({suffix or 'no suffix'}); give a "
        "CSV file (.csv) with a header row, or a Parquet file (.parquet, needs "
        "pyarrow)",
    )


def read_reference_data(
    path: Path, feature_names: Sequence[str] | None, keep_values: bool = True
) -> ReferenceData:
    """Read and check the reference file at ``path``.

    With ``feature_names``, every feature must have a column and every value
    in those columns must be a finite number; without them (the model has
    not been loaded yet) only the file's form is checked: readable, a header,
    at least one row, rows as wide as the header.

    Raises:
        AnswerError: ``reference_data_path (<path>): <what is wrong and the fix>``.
    """
    path = Path(path)
    file_format = reference_format(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise unreadable(ANSWER, str(path), error) from None
    if size == 0:
        raise _refuse(
            path,
            "is empty; give a file with a column per model feature and at least "
            "one row of values",
        )
    names = None if feature_names is None else list(feature_names)
    reader = _read_parquet if file_format == "parquet" else _read_csv
    rows, columns = reader(path, names, keep_values)
    try:
        digest = sha256_file(path)
    except OSError as error:
        raise unreadable(ANSWER, str(path), error) from None
    return ReferenceData(path.name, file_format, digest, rows, columns)


def _separator_hint(header: list[str]) -> str:
    """A hint for a header that reads as one column holding separators."""
    if len(header) == 1 and any(mark in header[0] for mark in ";\t|"):
        return " (is it separated by commas?)"
    return ""


def _missing_columns(path: Path, header: list[str], names: list[str]) -> None:
    """Refuse a file without a column for each feature, or with one twice."""
    missing = [name for name in names if name not in header]
    if missing:
        shown = header[:SHOWN_COLUMNS]
        more = (
            f" and {len(header) - SHOWN_COLUMNS} more"
            if len(header) > SHOWN_COLUMNS
            else ""
        )
        hint = _separator_hint(header)
        raise _refuse(
            path,
            f"has no column for the features {missing}; its columns are "
            f"{shown}{more}{hint}. Give a column named after each feature "
            f"({', '.join(names)}), or, if those are not the model's features, "
            "correct the feature names given",
        )
    twice = sorted({name for name in names if header.count(name) > 1})
    if twice:
        raise _refuse(
            path,
            f"has more than one column named {twice}; give each feature one column",
        )


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN_TEXT else text[:SHOWN_TEXT] + "...")


def _bad_value_error(
    path: Path, where: str, name: str, value: Any, more: int
) -> AnswerError:
    others = f" (and {more} more such values)" if more else ""
    return _refuse(
        path,
        f"{where}, column '{name}' is {value}{others}: every feature value must be "
        "a finite number; fix or drop those rows",
    )


def _csv_problem(error: csv.Error) -> str:
    """What a strict CSV reader's error means, in words (as the package's
    command line says it)."""
    text = str(error)
    if "unexpected end of data" in text:
        return "a cell's opening quote (\") is never closed"
    if "field larger than field limit" in text:
        return f"{text}: a cell that long, or a quote never closed"
    if "expected after" in text:
        return f"{text}: text follows a cell's closing quote"
    return text


def _read_csv(
    path: Path, names: list[str] | None, keep: bool
) -> tuple[int, dict[str, array]]:
    columns: dict[str, array] = {}
    try:
        stream = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as error:
        raise unreadable(ANSWER, str(path), error) from None
    # Strict: a stray quote is an error, not the rest of the file read as
    # one cell. A row is named by the line it starts on (a quoted cell may
    # span lines).
    reader = csv.reader(stream, strict=True)
    rows = 0
    start = 1
    try:
        with stream:
            header = None
            for cells in reader:  # the first line that is not blank
                if cells:
                    header = cells
                    break
                start = reader.line_num + 1
            start = reader.line_num + 1
            if header is None:
                raise _refuse(
                    path,
                    "has no header row; give a CSV file whose first line names "
                    "the columns (the model's features)",
                )
            wanted: list[tuple[int, str]] = []
            if names is not None:
                _missing_columns(path, header, names)
                wanted = [(header.index(name), name) for name in names]
                if keep:
                    columns = {name: array("d") for name in names}
            first_bad: tuple[int, str, str] | None = None
            bad = 0
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not cells:
                    continue
                rows += 1
                if len(cells) != len(header):
                    raise _refuse(
                        path,
                        f"line {line} has {len(cells)} fields, the header "
                        f"has {len(header)}{_separator_hint(header)}; give every "
                        "row a value for each column",
                    )
                for index, name in wanted:
                    text = cells[index]
                    try:
                        # As the package's CSV reader reads numbers.
                        value = float(text) if written_plainly(text) else math.nan
                    except ValueError:
                        value = math.nan
                    if not math.isfinite(value):
                        bad += 1
                        if first_bad is None:
                            first_bad = (line, name, text)
                    elif keep:
                        columns[name].append(value)
    except UnicodeDecodeError as error:
        raise _refuse(
            path,
            f"is not UTF-8 text ({error.reason} at byte {error.start}); give a CSV "
            "file saved as UTF-8",
        ) from None
    except csv.Error as error:
        raise _refuse(
            path,
            f"is not valid CSV at line {start} ({_csv_problem(error)}); fix that line",
        ) from None
    if first_bad is not None:
        line, name, text = first_bad
        raise _bad_value_error(path, f"line {line}", name, _shown(text), bad - 1)
    if rows == 0:
        raise _refuse(path, "has a header but no rows; give at least one row of values")
    return rows, columns


def _read_parquet(
    path: Path, names: list[str] | None, keep: bool
) -> tuple[int, dict[str, array]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        header = list(parquet.schema_arrow.names)
        rows = int(parquet.metadata.num_rows)
    except Exception as error:
        raise _refuse(
            path,
            f"cannot be read as Parquet ({type(error).__name__}: {error}); give a "
            "Parquet file written by pandas or pyarrow, or a CSV file",
        ) from None
    columns: dict[str, array] = {}
    if names is not None:
        _missing_columns(path, header, names)
        schema = parquet.schema_arrow
        for name in names:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                raise _refuse(
                    path,
                    f"column '{name}' holds {kind} values; every feature column "
                    "must hold numbers (integers or floats)",
                )
    if rows == 0:
        raise _refuse(path, "has no rows; give at least one row of values")
    if names is None:
        return rows, columns
    try:
        table = parquet.read(columns=names)
    except Exception as error:
        raise _refuse(
            path, f"cannot be read as Parquet ({type(error).__name__}: {error})"
        ) from None
    first_bad: tuple[int, str, Any] | None = None
    bad = 0
    for name in names:
        values = table.column(name).to_pylist()
        column = array("d")
        for row, value in enumerate(values, start=1):
            number = math.nan if value is None else float(value)
            if not math.isfinite(number):
                bad += 1
                if first_bad is None:
                    first_bad = (row, name, value)
            elif keep:
                column.append(number)
        if keep:
            columns[name] = column
    if first_bad is not None:
        row, name, value = first_bad
        shown = "missing (null)" if value is None else repr(value)
        raise _bad_value_error(path, f"row {row} of {rows}", name, shown, bad - 1)
    return rows, columns


def declared_feature_names(
    feature_names: Iterable[str] | None, given_metadata: dict[str, Any] | None
) -> list[str] | None:
    """The feature names known before the model is loaded, if any: the
    ``feature_names`` answer, else the given metadata's."""
    if feature_names:
        return list(feature_names)
    if given_metadata:
        names = given_metadata.get("training_info", {}).get("feature_names")
        if names:
            return list(names)
    return None
