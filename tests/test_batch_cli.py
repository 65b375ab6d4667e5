"""The package's batch command line: python inference_example.py INPUT [-o OUTPUT]."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Rendered, consumer_environment, run_cookiecutter
from package_builder.build import load_package_module
from package_builder.demo import FEATURE_NAMES, make_dataset


def plain_user() -> list[str]:
    """The command prefix that runs a command with file permissions applying
    to it as to any user: as root, ``setpriv`` without the capabilities that
    let root read and write any file (its uid and everything else stay);
    nothing for another user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root: install util-linux's setpriv"
    dropped = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}"]


def run_cli(
    package_dir: Path,
    *args: str,
    stdin: str | None = None,
    as_plain_user: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the package's inference_example.py as a consumer would
    (``as_plain_user``: subject to file permissions, even as root), with
    the consumer settings in ``env`` alone (MODEL_*, LOG_*)."""
    prefix = plain_user() if as_plain_user else []
    return subprocess.run(
        [*prefix, sys.executable, str(package_dir / "inference_example.py"), *args],
        cwd=package_dir,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=consumer_environment(**(env or {})),
    )


@pytest.fixture(scope="module")
def records(demo: Rendered) -> list[dict]:
    """60 distinct records: the first rows of the demo's own data set (the
    rows it is trained and tested on; 2 injected anomalies among them, all
    inside the reference range), so that a row written with another row's
    score, however far off, changes the result."""
    manifest = json.loads((demo.package_dir / "deployment_manifest.json").read_text())
    assert manifest["training_info"]["feature_names"] == list(FEATURE_NAMES)
    X, _, _ = make_dataset()
    rows = [dict(zip(FEATURE_NAMES, row, strict=True)) for row in X[:60].tolist()]
    assert len({tuple(row.values()) for row in rows}) == 60
    return rows


@pytest.fixture(scope="module")
def expected(demo: Rendered, records: list[dict]) -> dict:
    """What ModelInference.predict gives for ``records`` in this process."""
    module = load_package_module(demo.package_dir)
    return module.ModelInference(demo.package_dir, environ={}).predict(records)


def write_csv(path: Path, rows: list[dict], extra: dict | None = None) -> Path:
    """Write ``rows`` as CSV with a leading id column (and ``extra`` columns)."""
    names = list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", *names, *(extra or {})])
        for number, row in enumerate(rows):
            writer.writerow([f"r{number}", *row.values(), *(extra or {}).values()])
    return path


def test_csv_file_is_scored_into_an_output_file(
    demo: Rendered, records: list[dict], expected: dict, tmp_path: Path
) -> None:
    """Every input row comes back with its cells unchanged plus score and
    prediction equal to predict's; a summary goes to stderr."""
    source = write_csv(tmp_path / "in.csv", records)
    output = tmp_path / "out.csv"
    result = run_cli(demo.package_dir, str(source), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "scored 60 rows" in result.stderr
    with open(output, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    with open(source, newline="", encoding="utf-8") as stream:
        originals = list(csv.DictReader(stream))
    assert len(rows) == 60
    for row, original, score, prediction in zip(
        rows, originals, expected["scores"], expected["predictions"], strict=True
    ):
        assert {key: row[key] for key in original} == original
        assert float(row["score"]) == score
        assert int(row["prediction"]) == prediction
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json"])
def test_jsonl_file_is_scored_to_stdout_in_small_chunks(
    demo: Rendered, records: list[dict], expected: dict, tmp_path: Path, suffix: str
) -> None:
    """JSON lines in (by any of the suffixes the README names), JSON lines
    out; chunk boundaries do not change results."""
    source = tmp_path / f"in{suffix}"
    source.write_text(
        "".join(json.dumps({"id": i, **r}) + "\n" for i, r in enumerate(records))
    )
    result = run_cli(demo.package_dir, str(source), "--chunk-size", "7", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == list(range(60))
    assert [line["score"] for line in lines] == expected["scores"]
    assert [line["prediction"] for line in lines] == expected["predictions"]


def test_model_threshold_sets_the_predictions(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """MODEL_THRESHOLD applies to the command line as to predict: set to the
    median score, it flags exactly the rows scoring above it, which the
    package's own threshold does not."""
    source = write_csv(tmp_path / "in.csv", records)
    plain = run_cli(demo.package_dir, str(source))
    assert plain.returncode == 0, plain.stderr
    rows = list(csv.DictReader(plain.stdout.splitlines()))
    scores = sorted(float(row["score"]) for row in rows)
    median = scores[len(scores) // 2]
    tuned = run_cli(
        demo.package_dir, str(source), env={"MODEL_THRESHOLD": repr(median)}
    )
    assert tuned.returncode == 0, tuned.stderr
    flagged = [
        int(row["prediction"]) for row in csv.DictReader(tuned.stdout.splitlines())
    ]
    assert flagged == [int(float(row["score"]) > median) for row in rows]
    assert sum(flagged) == len(rows) // 2 - 1 + len(rows) % 2
    assert flagged != [int(row["prediction"]) for row in rows]


def test_stdin_is_read_with_an_explicit_format(
    demo: Rendered, records: list[dict], expected: dict, tmp_path: Path
) -> None:
    """'-' reads standard input; --format says what it holds."""
    text = write_csv(tmp_path / "in.csv", records).read_text()
    result = run_cli(demo.package_dir, "-", "--format", "csv", stdin=text)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [float(row["score"]) for row in rows] == expected["scores"]


@pytest.fixture
def bad_csv(records: list[dict], tmp_path: Path) -> Path:
    """A CSV whose lines 3, 4 and 5 cannot be scored."""
    names = list(records[0])
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(names)
        writer.writerow(records[0].values())
        writer.writerow(["abc", *list(records[1].values())[1:]])
        writer.writerow([*list(records[2].values())[:-1], "inf"])
        writer.writerow([1, 2])
        writer.writerow(records[3].values())
    return path


def test_bad_rows_stop_the_run_naming_their_lines(
    demo: Rendered, bad_csv: Path, tmp_path: Path
) -> None:
    """Exit 1, each bad line and its problem on stderr, no output file and no
    temporary file left behind."""
    output = tmp_path / "out.csv"
    result = run_cli(demo.package_dir, str(bad_csv), "-o", str(output))
    assert result.returncode == 1
    assert "line 3: Feature 'auth_failure_ratio' is 'abc'" in result.stderr
    assert "line 4: Feature 'mean_device_activity' is inf" in result.stderr
    assert "line 5: has 2 fields, the header has 17" in result.stderr
    assert "--skip-bad-rows" in result.stderr
    assert f"{output} was not written" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_skip_bad_rows_scores_the_rest(demo: Rendered, bad_csv: Path) -> None:
    """--skip-bad-rows reports each skipped line and scores the good ones."""
    result = run_cli(demo.package_dir, str(bad_csv), "--skip-bad-rows")
    assert result.returncode == 0, result.stderr
    for line in (3, 4, 5):
        assert f"skipped line {line}: " in result.stderr
    assert "scored 2 rows" in result.stderr
    assert len(list(csv.DictReader(result.stdout.splitlines()))) == 2


def test_quiet_still_reports_the_rows_it_skips(demo: Rendered, bad_csv: Path) -> None:
    """--quiet turns off progress and the summary, not the report of the rows
    left out of the output: those lines alone go to stderr."""
    result = run_cli(demo.package_dir, str(bad_csv), "--skip-bad-rows", "--quiet")
    assert result.returncode == 0, result.stderr
    assert [line.partition(":")[0] for line in result.stderr.splitlines()] == [
        "skipped line 3",
        "skipped line 4",
        "skipped line 5",
    ]
    assert len(list(csv.DictReader(result.stdout.splitlines()))) == 2


@pytest.mark.parametrize("skip", [False, True], ids=["stop", "skip-bad-rows"])
@pytest.mark.parametrize("where", ["midway", "last-line"])
def test_a_quote_never_closed_stops_the_run_at_its_line(
    demo: Rendered, records: list[dict], tmp_path: Path, skip: bool, where: str
) -> None:
    """A cell that opens a quote and never closes it would make the rest of
    the file one cell: the run stops (also with --skip-bad-rows, since no
    later row can be read for sure), naming the line the quote opens on,
    and writes no output."""
    source = write_csv(tmp_path / "in.csv", records[:10])
    lines = source.read_text(encoding="utf-8").splitlines()
    broken = 4 if where == "midway" else len(lines)
    lines[broken - 1] = lines[broken - 1].replace(",", ',"', 1)
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    args = ["--skip-bad-rows"] if skip else []
    result = run_cli(demo.package_dir, str(source), "-o", str(output), *args)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: {source}: line {broken} is not CSV (a cell's opening quote (\") "
        f"is never closed); {output} was not written"
    )
    assert not output.exists()


def test_a_row_spanning_lines_is_named_by_its_first_line(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A quoted cell may hold a line break (a comment column): such a row is
    scored, and a bad one is named by the line it starts on, as an editor
    shows it."""
    source = write_csv(tmp_path / "in.csv", records[:4], extra={"note": "x"})
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].removesuffix(",x") + ',"two\nlines"'  # line 2 and 3
    lines[2] = lines[2].replace(",", ",abc,", 1).removesuffix(",x")  # line 4
    lines[2] += ',"two\nlines"'
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli(demo.package_dir, str(source), "--skip-bad-rows")
    assert result.returncode == 0, result.stderr
    assert "skipped line 4: has 20 fields, the header has 19" in result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert [row["note"] for row in rows] == ["two\nlines", "x", "x"]


def test_lines_of_another_width_are_bad_even_with_every_feature(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A CSV line missing its last cell (a non-feature column) or with cells
    added is refused by its line number, not scored with its cells shifted."""
    source = write_csv(tmp_path / "in.csv", records[:3], extra={"site": "x"})
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].removesuffix(",x")
    lines[3] += ",1,2,3"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.csv"
    result = run_cli(demo.package_dir, str(source), "-o", str(output))
    assert result.returncode == 1
    assert "line 3: has 18 fields, the header has 19" in result.stderr
    assert "line 4: has 22 fields, the header has 19" in result.stderr
    assert not output.exists()


def test_every_row_skipped_is_a_failure(demo: Rendered, bad_csv: Path) -> None:
    """--skip-bad-rows when no row at all can be scored: exit 1, not an
    output of a header alone."""
    lines = bad_csv.read_text(encoding="utf-8").splitlines()
    only_bad = bad_csv.with_name("only_bad.csv")
    only_bad.write_text("\n".join([lines[0], *lines[2:5]]) + "\n", encoding="utf-8")
    output = only_bad.with_name("out.csv")
    result = run_cli(
        demo.package_dir, str(only_bad), "--skip-bad-rows", "-o", str(output)
    )
    assert result.returncode == 1
    assert "none of its 3 rows could be scored" in result.stderr
    assert not output.exists()


def test_csv_numbers_are_read_strictly(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """Digit separators and digits of other scripts, which float() reads,
    are not numbers in a CSV cell: the line is refused, naming the text. So
    is a number too large for a float, shown as written rather than as the
    inf that float() makes of it; a spelled infinity is shown as one."""
    source = write_csv(tmp_path / "in.csv", records[:6])
    rows = list(csv.reader(source.read_text(encoding="utf-8").splitlines()))
    rows[1][1] = "1_0"
    rows[2][1] = "\u0661"  # ARABIC-INDIC DIGIT ONE
    rows[3][1] = "1e400"
    rows[4][1] = "9" * 400
    rows[5][1] = "-Infinity"
    source.write_text("".join(",".join(row) + "\n" for row in rows), encoding="utf-8")
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1
    assert "line 2: Feature 'auth_failure_ratio' is '1_0'" in result.stderr
    assert "line 3: Feature 'auth_failure_ratio' is '\u0661'" in result.stderr
    assert "line 4: Feature 'auth_failure_ratio' is '1e400'" in result.stderr
    assert (
        f"line 5: Feature 'auth_failure_ratio' is '{'9' * 56}... (402 characters)"
        in result.stderr
    )
    assert "line 6: Feature 'auth_failure_ratio' is -inf" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("", "the CSV input is empty", id="empty"),
        pytest.param("a,b\n1,2\n", "no column for the features", id="no-features"),
        pytest.param("header_only\n", "no column for the features", id="header-only"),
    ],
)
def test_unusable_csv_is_refused(
    demo: Rendered, tmp_path: Path, content: str, message: str
) -> None:
    """An empty CSV or one without the feature columns: exit 1 and why."""
    source = tmp_path / "in.csv"
    source.write_text(content)
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_input_with_a_score_column_is_refused(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """The output adds score and prediction; an input that has one is refused."""
    source = write_csv(tmp_path / "in.csv", records[:3], extra={"score": 1})
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1
    assert "already has a 'score' column" in result.stderr


def test_bad_json_lines_are_named(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A line that is not JSON, or not an object, is reported with its number."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        "[1, 2]\n"
        + json.dumps(records[0])
        + "\n\n{not json\n[1, 2]\n"
        + json.dumps(records[1])
    )
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1
    assert "line 1: is an array, not a JSON object" in result.stderr
    assert "line 4: is not valid JSON" in result.stderr
    assert "line 5: is an array, not a JSON object" in result.stderr


@pytest.mark.parametrize(("bad", "more"), [(20, ""), (25, "; and 5 more")])
def test_bad_rows_are_listed_up_to_twenty(
    demo: Rendered, tmp_path: Path, bad: int, more: str
) -> None:
    """An input with many bad rows: the error names the first 20 and counts
    the rest, so that a file of a million bad rows gives one short line."""
    source = tmp_path / "in.jsonl"
    source.write_text('"x"\n' * bad)
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1
    listed = "; ".join(
        f"line {line}: is a string, not a JSON object" for line in range(1, 21)
    )
    assert result.stderr == (
        f"error: {source}: {bad} bad row(s): {listed}{more} (fix them, or pass "
        "--skip-bad-rows to leave them out)\n"
    )


def test_a_key_given_twice_in_a_json_line_is_a_bad_row(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A JSON line that gives a feature twice is a bad row naming the key:
    which of its values was meant is a guess (json.loads keeps the last)."""
    name = next(iter(records[0]))
    line = json.dumps(records[0])[:-1] + f', "{name}": 1e9}}'
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(records[1]) + "\n" + line + "\n")
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1
    assert f"line 2: gives the key '{name}' twice: give each key once" in (
        result.stderr
    )
    skipped = run_cli(demo.package_dir, str(source), "--skip-bad-rows")
    assert skipped.returncode == 0, skipped.stderr
    assert len(skipped.stdout.splitlines()) == 1


ONE_DOCUMENT = (
    "the input is one JSON document, not JSON lines: give one object per line "
)
ARRAY_TO_LINES = "(jq -c '.[]' FILE writes an array's objects so)"
BODY_TO_LINES = (
    "(jq -c '.features[]' FILE writes the records of an API request body "
    '{"features": [...]} so)'
)
OBJECT_TO_LINES = (
    "(jq -c . FILE writes an object so; jq -c '.features[]' FILE, the records "
    'of an API request body {"features": [...]})'
)


@pytest.mark.parametrize(
    ("whole", "message"),
    [
        (lambda rows: json.dumps(rows, indent=2), ONE_DOCUMENT + ARRAY_TO_LINES),
        (
            lambda rows: "\n" + json.dumps(rows, indent=2),
            ONE_DOCUMENT + ARRAY_TO_LINES,
        ),
        (
            lambda rows: json.dumps({"features": rows}, indent=2),
            ONE_DOCUMENT + OBJECT_TO_LINES,
        ),
        (lambda rows: json.dumps(rows[0], indent=2), ONE_DOCUMENT + OBJECT_TO_LINES),
        (
            lambda rows: json.dumps(rows) + "\n" + json.dumps(rows),
            "the input's first line is a JSON array of records, not a record: give "
            "one object per line " + ARRAY_TO_LINES,
        ),
        (
            lambda rows: json.dumps({"features": rows}),
            "the input's first line is an API request body, not a record: give one "
            "object per line " + BODY_TO_LINES,
        ),
    ],
    ids=[
        "pretty-printed-array",
        "after-a-blank-line",
        "pretty-printed-serve-body",
        "pretty-printed-record",
        "arrays-on-lines",
        "serve-body-on-one-line",
    ],
)
def test_a_json_document_given_for_json_lines_is_one_error(
    demo: Rendered, records: list[dict], tmp_path: Path, whole, message: str
) -> None:
    """A .json file holding one JSON document written over many lines (an
    array, serve.py's body, a record), or whose first line holds records
    (an array of them, serve.py's body), not JSON lines: one error that says
    so and how to convert it, not a bad row for each of its lines;
    --skip-bad-rows does not hide it. (A line that is an array of numbers is
    a bad row, as in JSON lines of arrays: see
    test_bad_json_lines_are_named.)"""
    source = tmp_path / "in.json"
    source.write_text(whole(records[:3]) + "\n")
    for extra in ([], ["--skip-bad-rows"]):
        result = run_cli(demo.package_dir, str(source), *extra)
        assert result.returncode == 1
        assert result.stderr == f"error: {source}: {message}\n"


@pytest.mark.parametrize("extra", [[1, 2], [{"tag": "x"}]], ids=["numbers", "objects"])
def test_a_first_record_with_a_features_list_of_its_own_is_scored(
    demo: Rendered, records: list[dict], tmp_path: Path, extra: list
) -> None:
    """A first JSON line that is a record with an extra key "features" (a
    list of numbers, or even of objects) is scored like any other record,
    not taken for an API request body, and keeps that key in its output."""
    source = tmp_path / "in.jsonl"
    first = {**records[0], "features": extra}
    source.write_text(json.dumps(first) + "\n" + json.dumps(records[1]) + "\n")
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["features"] == extra


def zero_fill_package(factory: pytest.TempPathFactory, out_of_range: str) -> Path:
    """The demo built with missing_features=zero and ``out_of_range``."""
    rendered = run_cookiecutter(
        factory.mktemp(f"zero_{out_of_range}"),
        "missing_features=zero",
        f"out_of_range={out_of_range}",
        "create_zip=no",
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered.package_dir


@pytest.fixture(scope="module")
def zero_error_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zero_fill_package(tmp_path_factory, "error")


def test_a_missing_feature_filled_outside_the_range_is_scored(
    zero_error_package: Path, tmp_path: Path
) -> None:
    """missing_features=zero with out_of_range=error: a feature missing where
    0.0 is outside its reference range is filled and scored (the package
    filled that value, the input did not send it), with the fill's warning
    naming its lines and no range error; a 0.0 sent for it is still a bad
    line."""
    package = zero_error_package
    manifest = json.loads((package / "deployment_manifest.json").read_text())
    inputs = manifest["self_test"]["inputs"]
    statistics = json.loads((package / "metadata.json").read_text())["monitoring"][
        "features"
    ]
    name = next(n for n in inputs[0] if statistics[n]["min"] > 0)
    low, high = statistics[name]["min"], statistics[name]["max"]
    records = [dict(record) for record in inputs[:3]]
    del records[1][name]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    filled = run_cli(package, str(source))
    assert filled.returncode == 0, filled.stderr
    assert filled.stderr.splitlines()[0] == (
        f"Feature '{name}' not found in input (line 2): filled with 0.0"
    )
    assert "outside the reference range" not in filled.stderr
    assert len(filled.stdout.splitlines()) == 3
    without_column = write_csv(
        tmp_path / "in.csv", [{k: v for k, v in r.items() if k != name} for r in inputs]
    )
    result = run_cli(package, str(without_column))
    assert result.returncode == 0, result.stderr
    lines = ", ".join(str(line) for line in range(2, len(inputs) + 2))
    assert result.stderr.splitlines()[0] == (
        f"Feature '{name}' not found in input (lines {lines}): filled with 0.0"
    )
    assert len(result.stdout.splitlines()) == len(inputs) + 1
    records[1][name] = 0.0
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    sent = run_cli(package, str(source))
    assert sent.returncode == 1
    assert (
        f"line 2: Feature '{name}' is 0.0, outside the reference range "
        f"[{low!r}, {high!r}]" in sent.stderr
    )


@pytest.fixture(scope="module")
def zero_warn_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zero_fill_package(tmp_path_factory, "warn")


def test_row_warnings_name_input_lines_and_quiet_silences_them(
    zero_warn_package: Path, records: list[dict], tmp_path: Path
) -> None:
    """missing_features=zero and out_of_range=warn: a feature missing from
    some records (0.0 is in its reference range) and a value above its
    range are reported on stderr once per feature and chunk, naming the
    input lines, not rows counted from the chunk's start; --quiet prints
    nothing at all, and the rows are scored the same either way."""
    package = zero_warn_package
    statistics = json.loads((package / "metadata.json").read_text())["monitoring"][
        "features"
    ]
    filled = next(
        n for n in records[0] if statistics[n]["min"] <= 0.0 <= statistics[n]["max"]
    )
    high = next(n for n in records[0] if n != filled)
    low, top = statistics[high]["min"], statistics[high]["max"]
    rows = [dict(record) for record in records[:25]]
    for index in (1, 12, 13):  # lines 2, 13 and 14; chunks of 10 lines
        del rows[index][filled]
    for index in (4, 16):  # lines 5 and 17
        rows[index][high] = top + 1.0
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    missing = f"Feature '{filled}' not found in input ({{}}): filled with 0.0"
    outside = (
        f"Feature '{high}' in {{}} is {top + 1.0!r}, outside the reference range "
        f"[{low!r}, {top!r}]"
    )
    result = run_cli(package, str(source), "--chunk-size", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    # Progress lines ("scored N rows...") may come between, every 2 seconds.
    assert [line for line in lines if not line.startswith("scored ")] == [
        missing.format("line 2"),
        outside.format("line 5"),
        missing.format("lines 13, 14"),
        outside.format("line 17"),
    ]
    assert lines[-1].startswith("scored 25 rows")
    quiet = run_cli(package, str(source), "--chunk-size", "10", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == result.stdout
    assert len(quiet.stdout.splitlines()) == 25


def test_a_field_named_like_an_internal_marker_is_scored(
    demo: Rendered, records: list[dict], expected: dict, tmp_path: Path
) -> None:
    """A JSON line whose object has a field "__problem__" (null or text) is
    an ordinary record: scored, the field written back as it came."""
    source = tmp_path / "in.jsonl"
    markers = [None, "not a problem"]
    source.write_text(
        "".join(
            json.dumps({"__problem__": markers[i % 2], **record}) + "\n"
            for i, record in enumerate(records[:4])
        )
    )
    result = run_cli(demo.package_dir, str(source), "--quiet")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["__problem__"] for line in lines] == markers * 2
    assert [line["score"] for line in lines] == expected["scores"][:4]


def test_json_lines_are_written_back_as_they_came(
    zero_warn_package: Path, records: list[dict], tmp_path: Path
) -> None:
    """Each output line is its input line as it was (number spellings such as
    1e400 and 1.50, escapes, spacing), with "score" and "prediction" added
    before its closing brace, whatever the line's ending (\\r\\n) or spacing
    around the braces: valid JSON when the input was. An object with the
    features alone, and under missing_features=zero an empty one, get
    them too. A line that already has one of them is refused."""
    package = zero_warn_package
    features = [json.dumps(record)[1:-1] for record in records[:4]]
    compact = json.dumps(records[4], separators=(",", ":"))[1:-1]
    lines = [
        '{"id": 1, "big": 1e400, ' + features[0] + "}\n",
        '{"price": 1.50, "name": "caf\\u00e9 \\ud83d\\ude00", ' + features[1] + "}\r\n",
        "{" + features[2] + "}\n",
        "  {\t" + features[3] + " }  \n",
        "{}\n",
        "{ \t}\r\n",
        "{" + compact + "}",  # the last line, without a line break
    ]
    kept = [
        '{"id": 1, "big": 1e400, ' + features[0] + ", ",
        '{"price": 1.50, "name": "caf\\u00e9 \\ud83d\\ude00", ' + features[1] + ", ",
        "{" + features[2] + ", ",
        "  {\t" + features[3] + ", ",
        "{",
        "{",
        "{" + compact + ", ",
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes("".join(lines).encode())
    result = run_cli(package, str(source), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Infinity" not in result.stdout
    module = load_package_module(package)
    want = module.ModelInference(package, environ={}).predict(
        [json.loads(line) for line in lines]
    )
    out = result.stdout.split("\n")
    assert out.pop() == ""
    assert out == [
        f'{start}"score": {score!r}, "prediction": {prediction}}}'
        for start, score, prediction in zip(
            kept, want["scores"], want["predictions"], strict=True
        )
    ]
    assert json.loads(out[1])["name"] == "caf\u00e9 \U0001f600"
    taken = tmp_path / "taken.jsonl"
    taken.write_text(lines[2] + '{"prediction": 1, ' + features[0] + "}\n")
    refused = run_cli(package, str(taken), "--quiet")
    assert refused.returncode == 1
    assert "already has a 'prediction' column" in refused.stderr


def test_json_lines_past_the_readers_limits_are_named(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A line with an integer of 5000 digits, or nested 100,000 deep, is a
    bad line (skippable), not a traceback."""
    source = tmp_path / "in.jsonl"
    huge = json.dumps({**records[0], "id": 0}).replace('"id": 0', '"id": ' + "9" * 5000)
    source.write_text(
        json.dumps(records[0]) + "\n" + huge + "\n" + "[" * 100_000 + "\n",
        encoding="utf-8",
    )
    result = run_cli(demo.package_dir, str(source))
    assert result.returncode == 1, result.stderr
    assert "line 2: is not valid JSON (Exceeds the limit" in result.stderr
    assert "line 3: is not valid JSON (nested too deeply)" in result.stderr
    assert "Traceback" not in result.stderr
    skipped = run_cli(demo.package_dir, str(source), "--skip-bad-rows")
    assert skipped.returncode == 0, skipped.stderr
    assert len(skipped.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["data.txt"], "pass --format csv or --format jsonl", id="format"),
        pytest.param(
            ["missing.csv"],
            "error: cannot read missing.csv: no such file; check the path",
            id="missing",
        ),
        pytest.param(
            ["."], "error: cannot read .: it is a folder; give a file", id="folder"
        ),
        pytest.param(
            ["data.txt/x.csv"],
            "error: cannot read data.txt/x.csv: Not a directory; check the path",
            id="under-a-file",
        ),
        pytest.param(
            [".", "--format", "csv"],
            "error: cannot read .: it is a folder; give a file",
            id="folder-with-format",
        ),
        pytest.param(
            ["x.csv", "-o", ""],
            "argument -o/--output: empty: give a file name, or - for stdout",
            id="empty-output",
        ),
        pytest.param(
            ["--model-dir", "nowhere"],
            "is not a folder: pass the extracted package folder",
            id="model-dir",
        ),
        pytest.param(
            ["--model-dir", "model.zip"],
            "model.zip is not a folder: unzip it and pass the extracted folder",
            id="model-dir-a-zip",
        ),
        pytest.param(["x.csv", "--chunk-size", "0"], "give 1 or more", id="chunk"),
    ],
)
def test_usage_errors_exit_2(
    demo: Rendered, tmp_path: Path, args: list[str], message: str
) -> None:
    """An unknown format, a missing file, a folder given as the input, an
    empty output name, a --model-dir that is not a folder or a bad option:
    exit 2 and why."""
    (tmp_path / "data.txt").write_text("a\n")
    result = subprocess.run(
        [sys.executable, str(demo.package_dir / "inference_example.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_without_input_it_prints_the_self_test(demo: Rendered) -> None:
    """With no INPUT it scores the self-test inputs and prints the result."""
    result = run_cli(demo.package_dir)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((demo.package_dir / "deployment_manifest.json").read_text())
    assert (
        json.loads(result.stdout)["predictions"]
        == (manifest["self_test"]["predictions"])
    )


def test_options_for_input_without_input_are_refused(
    demo: Rendered, tmp_path: Path
) -> None:
    """Options that only scoring INPUT uses (-o, --drift-report and the rest),
    given without INPUT, would be ignored while the self-test ran: exit 2
    naming them, and nothing written."""
    cases = {
        ("-o", str(tmp_path / "out.csv")): "-o",
        (
            "--drift-report",
            str(tmp_path / "drift.json"),
            "--psi-warn",
            "0.2",
        ): "--drift-report, --psi-warn",
        ("--format", "csv", "--chunk-size", "5", "--skip-bad-rows"): (
            "--format, --chunk-size, --skip-bad-rows"
        ),
    }
    for args, named in cases.items():
        result = run_cli(demo.package_dir, *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.endswith(
            f"inference_example.py: error: {named}: for scoring INPUT, which was not "
            "given (without INPUT the self-test runs and prints its result)\n"
        )
        assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_self_test_over_the_timeout_is_an_error_line(demo: Rendered) -> None:
    """With no INPUT and a MODEL_TIMEOUT that scoring cannot meet: one
    ``error:`` line naming the setting and what to do, exit 2 (a setting
    that cannot be used), nothing on stdout."""
    result = subprocess.run(
        [sys.executable, "inference_example.py"],
        cwd=demo.package_dir,
        capture_output=True,
        text=True,
        env=consumer_environment(MODEL_TIMEOUT="1e-9"),
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: the self-test's 5 rows were not scored within "
        "timeout_seconds=1e-09 (MODEL_TIMEOUT): set MODEL_TIMEOUT to more seconds\n"
    )
    assert result.stdout == ""


def test_tampered_package_is_refused(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """The command line verifies the package first: exit 1 naming the file."""
    package = Path(shutil.copytree(demo.package_dir, tmp_path / "package"))
    (package / "model.joblib").write_bytes(b"not a model")
    source = write_csv(tmp_path / "in.csv", records[:3])
    result = run_cli(package, str(source))
    assert result.returncode == 1
    assert "model.joblib: SHA-256 does not match the manifest" in result.stderr
    assert result.stdout == ""


def test_an_unreadable_manifest_is_named_with_the_fix(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A deployment_manifest.json the user may not read (0o000; run subject
    to file permissions, also as root): exit 1 and one error line that says
    so and what to do, as for any other package file, no traceback. A
    --model-dir without a manifest is not told to pass "model_dir"."""
    package = Path(shutil.copytree(demo.package_dir, tmp_path / "package"))
    manifest = package / "deployment_manifest.json"
    manifest.chmod(0)
    source = write_csv(tmp_path / "in.csv", records[:3])
    result = run_cli(package, str(source), as_plain_user=True)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {manifest} cannot be read (Permission denied): give the user "
        "running this read access to the package's files, or re-download the "
        "package\n"
    )
    assert result.stdout == ""
    elsewhere = run_cli(package, str(source), "--model-dir", str(tmp_path))
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == (
        f"error: {tmp_path / 'deployment_manifest.json'} not found: pass the "
        "extracted package folder\n"
    )


def test_csv_with_a_byte_order_mark_is_read(
    demo: Rendered, records: list[dict], expected: dict, tmp_path: Path
) -> None:
    """A CSV saved with a UTF-8 byte-order mark (Excel's "CSV UTF-8"), as a
    file or on stdin, scores as the same file without one."""
    plain = write_csv(tmp_path / "in.csv", records)
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    from_file = run_cli(demo.package_dir, str(marked), "--quiet")
    assert from_file.returncode == 0, from_file.stderr
    from_stdin = subprocess.run(
        [sys.executable, "inference_example.py", "-", "--format", "csv", "--quiet"],
        cwd=demo.package_dir,
        input=marked.read_bytes(),
        capture_output=True,
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout.decode("utf-8") == from_file.stdout
    rows = list(csv.DictReader(from_file.stdout.splitlines()))
    assert [float(row["score"]) for row in rows] == expected["scores"]
    assert next(iter(rows[0])) == "id"


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        pytest.param(
            "id,beacon_ratio\nr1,caf\xe9\n".encode("latin-1"),
            2,
            "is not UTF-8 text (invalid continuation byte): save it as UTF-8",
            id="latin-1",
        ),
        pytest.param(
            "{header}\n" + "9" * 200_000 + "\n",
            1,
            "line 2 is not CSV (field larger than field limit (131072): a cell "
            "that long, or a quote never closed)",
            id="huge-field",
        ),
        pytest.param(
            '"id,beacon_ratio\nr1,0.1\n',
            1,
            "the CSV header is not CSV (a cell's opening quote (\") is never closed)",
            id="header-quote-never-closed",
        ),
        pytest.param(
            "{header}\n" + '"' + "9" * 200_000 + "\n",
            1,
            "line 2 is not CSV (field larger than field limit (131072): a cell "
            "that long, or a quote never closed)",
            id="huge-field-after-a-quote",
        ),
        pytest.param(
            b"id,beacon_ratio,id\nr1,0.1,r1\n",
            1,
            "the CSV header names the column 'id' more than once",
            id="repeated-column",
        ),
    ],
)
def test_unreadable_csv_is_an_error_line_not_a_traceback(
    demo: Rendered,
    records: list[dict],
    tmp_path: Path,
    content: bytes | str,
    code: int,
    message: str,
) -> None:
    """Text that is not UTF-8 (exit 2), a field too large for a CSV reader or
    a header naming a column twice (exit 1): one ``error:`` line, no
    traceback, and no output file."""
    source = tmp_path / "in.csv"
    if isinstance(content, str):  # a header with every feature column
        content = content.format(header=",".join(records[0])).encode()
    source.write_bytes(content)
    output = tmp_path / "out.csv"
    result = run_cli(demo.package_dir, str(source), "-o", str(output))
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert result.stderr.startswith(f"error: {source}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_files_get_the_umask_permissions(
    demo: Rendered, records: list[dict], tmp_path: Path, umask: int
) -> None:
    """The result and the drift report are created as any new file would be
    (0o644 under umask 022), not private like the temporary file they were."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    output, report = tmp_path / "out.csv", tmp_path / "drift.json"
    result = subprocess.run(
        [
            sys.executable,
            "inference_example.py",
            str(source),
            "-o",
            str(output),
            "--drift-report",
            str(report),
        ],
        cwd=demo.package_dir,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0, result.stderr
    for path in (output, report):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664], ids=["600", "640", "664"])
def test_existing_outputs_keep_their_permissions(
    demo: Rendered, records: list[dict], tmp_path: Path, mode: int
) -> None:
    """An existing result or drift report that is replaced keeps its
    permission bits (a private 0o600 stays private), whatever the umask."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    output, report = tmp_path / "out.csv", tmp_path / "drift.json"
    for path in (output, report):
        path.write_text("old\n")
        path.chmod(mode)
    result = run_cli(
        demo.package_dir, str(source), "-o", str(output), "--drift-report", str(report)
    )
    assert result.returncode == 0, result.stderr
    assert len(output.read_text().splitlines()) == 6
    assert json.loads(report.read_text())["samples"] == 5
    for path in (output, report):
        assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "drift.json",
        "in.csv",
        "out.csv",
    ]


def test_existing_outputs_that_may_not_be_written_are_refused(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """An existing result or drift report that the user may not write (0o444)
    in a folder the user may write: exit 2 naming it and what to do, before
    any row is scored; it is left as it was, and nothing else is left
    behind. (Run subject to file permissions, also as root.)"""
    source = write_csv(tmp_path / "in.csv", records[:5])
    locked = tmp_path / "locked.csv"
    locked.write_text("kept\n")
    locked.chmod(0o444)
    fix = "it is read-only for this user: make it writable, or give another file name"
    for args in (
        ["-o", str(locked)],
        ["-o", str(tmp_path / "out.csv"), "--drift-report", str(locked)],
    ):
        result = run_cli(demo.package_dir, str(source), *args, as_plain_user=True)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"error: cannot write {locked}: {fix}\n"
        assert locked.read_text() == "kept\n"
        assert stat.S_IMODE(locked.stat().st_mode) == 0o444
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "locked.csv"]


def test_unwritable_outputs_are_refused_before_scoring(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """An output that is a folder, or in a folder that does not exist (the
    result or the drift report): exit 2 naming the path as given, before any
    row is scored, and nothing is left behind."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    missing = tmp_path / "nowhere" / "out.csv"
    cases = {
        ("-o", str(tmp_path)): (
            f"cannot write {tmp_path}: it is a folder; give a file name"
        ),
        ("-o", str(missing)): (
            f"cannot write {missing}: No such file or directory: its folder does "
            "not exist: create it, or give another path"
        ),
        ("-o", str(tmp_path / "out.csv"), "--drift-report", str(missing)): (
            f"cannot write {missing}: No such file or directory: its folder does "
            "not exist: create it, or give another path"
        ),
    }
    for args, message in cases.items():
        result = run_cli(demo.package_dir, str(source), *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"error: {message}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_dash_is_standard_output(
    demo: Rendered, records: list[dict], expected: dict, tmp_path: Path
) -> None:
    """-o - writes the rows to stdout (no file named "-"), progress to
    stderr; --drift-report - writes the report to stdout when -o names a
    file, and is refused (exit 2) when the rows go to stdout too."""
    write_csv(tmp_path / "in.csv", records)
    script = str(demo.package_dir / "inference_example.py")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, script, "in.csv", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=consumer_environment(),
        )

    rows = run("-o", "-")
    assert rows.returncode == 0, rows.stderr
    scored = list(csv.DictReader(rows.stdout.splitlines()))
    assert [float(row["score"]) for row in scored] == expected["scores"]
    assert "scored 60 rows" in rows.stderr
    report = run("-o", "out.csv", "--drift-report", "-")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["samples"] == 60
    assert "drift report: stdout" in report.stderr
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 61
    for args in (["--drift-report", "-"], ["-o", "-", "--drift-report", "-"]):
        both = run(*args)
        assert both.returncode == 2
        assert "--drift-report -: the scored rows go to stdout already" in both.stderr
        assert both.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_names_the_output(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """An output on a full disk (/dev/full, where every write fails with
    ENOSPC): exit 2 and one error line naming it (-o, --drift-report or
    stdout) and saying what to do; no other output is left behind."""
    source = write_csv(tmp_path / "in.csv", records)
    full = "cannot write {}: No space left on device: free some space on its disk, "
    fix = "or write it to another disk"
    result = run_cli(demo.package_dir, str(source), "-o", "/dev/full", "--quiet")
    assert result.returncode == 2
    assert result.stderr == f"error: {full.format('/dev/full')}{fix}\n"
    result = run_cli(
        demo.package_dir,
        str(source),
        "-o",
        str(tmp_path / "out.csv"),
        "--drift-report",
        "/dev/full",
        "--quiet",
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {full.format('/dev/full')}{fix}\n"
    with open("/dev/full", "w") as stdout:
        result = subprocess.run(
            [sys.executable, "inference_example.py", str(source), "--quiet"],
            cwd=demo.package_dir,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 2
    assert result.stderr == f"error: {full.format('standard output')}{fix}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_closed_stdout_is_an_error_line(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """Started with standard output closed (``>&-``), when what it writes
    goes there (the rows, the drift report, the self-test): exit 2 and one
    error line saying so and what to pass instead, no traceback; with -o
    and --drift-report files it scores as usual."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    closed = "error: standard output is closed"
    cases = {
        (str(source),): f"{closed}, and the scored rows go there: pass -o FILE",
        (str(source), "-o", str(tmp_path / "out.csv"), "--drift-report", "-"): (
            f"{closed}, and --drift-report - writes there: pass --drift-report FILE"
        ),
        (): (
            f"{closed}, and without INPUT the self-test's result goes there: "
            "run it with standard output open, or redirected to a file (> FILE)"
        ),
    }
    for args, message in cases.items():
        result = subprocess.run(
            [sys.executable, "inference_example.py", *args],
            cwd=demo.package_dir,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: os.close(1),
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"{message}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    to_files = subprocess.run(
        [
            sys.executable,
            "inference_example.py",
            str(source),
            "-o",
            str(tmp_path / "out.csv"),
            "--quiet",
        ],
        cwd=demo.package_dir,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),
    )
    assert to_files.returncode == 0, to_files.stderr
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 6


def test_outputs_are_written_through_links_devices_and_pipes(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """-o through a symbolic link replaces the link's target and keeps the
    link; -o /dev/null and a FIFO are written to, not replaced."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "real" / "scored.csv")
    linked = run_cli(demo.package_dir, str(source), "-o", str(link), "--quiet")
    assert linked.returncode == 0, linked.stderr
    assert link.is_symlink()
    assert len((tmp_path / "real" / "scored.csv").read_text().splitlines()) == 6
    assert run_cli(demo.package_dir, str(source), "-o", os.devnull).returncode == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        written = run_cli(demo.package_dir, str(source), "-o", str(fifo))
        # A FIFO replaced by a file would leave cat waiting for a writer.
        read = reader.communicate(timeout=60)[0].decode()
    finally:
        reader.kill()
        reader.wait()
    assert written.returncode == 0, written.stderr
    assert len(read.splitlines()) == 6
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_device_output_is_not_said_to_be_unwritten(
    demo: Rendered, bad_csv: Path
) -> None:
    """Bad rows with -o /dev/stdout: the rows before them were written there,
    so the error does not claim that the output was not written."""
    result = run_cli(demo.package_dir, str(bad_csv), "-o", "/dev/stdout")
    assert result.returncode == 1
    assert "line 3: " in result.stderr
    assert "was not written" not in result.stderr


def test_bad_rows_after_rows_written_to_stdout_say_how_many(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A bad row that stops a run streaming to stdout (or to a device) after
    earlier chunks were written there: the error says how many scored rows
    were already written; with -o FILE nothing was, and it says so."""
    bad = {**records[12], "auth_failure_ratio": "abc"}
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps(row) + "\n" for row in [*records[:12], bad, records[13]])
    )
    problem = (
        f"error: {source}: 1 bad row(s): line 13: Feature 'auth_failure_ratio' is "
        "'abc': every value must be a finite number (fix them, or pass "
        "--skip-bad-rows to leave them out)"
    )
    output = tmp_path / "out.jsonl"
    cases = {
        (): "; 10 scored rows were already written to stdout",
        ("-o", "-"): "; 10 scored rows were already written to stdout",
        ("-o", "/dev/stdout"): "; 10 scored rows were already written to /dev/stdout",
        ("-o", str(output)): f"; {output} was not written",
    }
    for args, said in cases.items():
        result = run_cli(demo.package_dir, str(source), "--chunk-size", "5", *args)
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1] == problem + said
        written = 0 if args[-1:] == (str(output),) else 10
        assert len(result.stdout.splitlines()) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_score_field_inside_a_chunk_counts_the_rows_before_it(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """A JSON line with its own "score" field in the middle of a chunk stops
    the run after the rows before it reached stdout: the error counts every
    one of them, those of its own chunk too."""
    lines = [json.dumps(row) for row in records[:8]]
    lines[7] = json.dumps({**records[7], "score": 1})
    source = tmp_path / "in.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    result = run_cli(demo.package_dir, str(source), "--chunk-size", "5")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 7
    assert result.stderr.splitlines()[-1] == (
        f"error: {source}: the input already has a 'score' column, which the "
        "output adds: rename or drop it; 7 scored rows were already written to "
        "stdout"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--drift-report", "in.csv"],
            "--drift-report in.csv is the same file as the input in.csv",
            id="report-over-input",
        ),
        pytest.param(
            ["-o", "in.csv"],
            "--output in.csv is the same file as the input in.csv",
            id="output-over-input",
        ),
        pytest.param(
            ["-o", "x.json", "--drift-report", "./x.json"],
            "--drift-report x.json is the same file as --output x.json",
            id="report-over-output",
        ),
    ],
)
def test_outputs_that_are_the_same_file_are_refused(
    demo: Rendered, records: list[dict], tmp_path: Path, args: list[str], message: str
) -> None:
    """Two of input, -o and --drift-report naming one file: exit 2 before
    anything is read or written; the input stays as it was."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    before = source.read_bytes()
    result = subprocess.run(
        [
            sys.executable,
            str(demo.package_dir / "inference_example.py"),
            "in.csv",
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert f"error: {message}: give each its own file" in result.stderr
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize(
    "stop",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
    ids=["TERM", "INT", "HUP", "QUIT"],
)
def test_a_stop_signal_removes_the_unfinished_output(
    demo: Rendered, records: list[dict], tmp_path: Path, stop: signal.Signals
) -> None:
    """Stopped by SIGTERM (docker stop, Kubernetes), Ctrl-C, SIGHUP (its
    terminal or ssh session closed) or SIGQUIT (Ctrl-\\) while its input is
    still open, after it has written part of the output: exit 128 + the
    signal, no traceback, and no output, finished or temporary, is left."""
    # Rows enough for more output than a file buffer holds (8 KiB): some of
    # it reaches the temporary file while the input stays open.
    text = write_csv(tmp_path / "in.csv", records * 5).read_text()
    output = tmp_path / "out" / "scored.csv"
    output.parent.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "inference_example.py",
            "-",
            "--format",
            "csv",
            "--chunk-size",
            "10",
            "-o",
            str(output),
        ],
        cwd=demo.package_dir,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # The signal's default, also when the tests run with it ignored
        # (SIGINT in the background of a shell script, SIGHUP under nohup),
        # which Python would keep.
        preexec_fn=lambda: signal.signal(stop, signal.SIG_DFL),
    )
    process.stdin.write(text)
    process.stdin.flush()

    def output_written() -> bool:
        sizes = [path.stat().st_size for path in output.parent.iterdir()]
        return any(sizes)

    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if output_written():
                break
        except FileNotFoundError:  # the temporary file went away meanwhile
            pass
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read()
    assert output_written(), "no scored row was written within 120 s"
    process.send_signal(stop)
    assert process.wait(timeout=60) == 128 + stop
    assert "Traceback" not in process.stderr.read()
    assert list(output.parent.iterdir()) == []


def test_a_reader_that_stops_early_ends_the_run_with_exit_1_and_no_message(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """The output's reader goes away after one line (as ``| head -1`` does):
    the scorer stops with exit 1, since not every row was written, and
    prints nothing on stderr: no traceback, no error line."""
    source = write_csv(tmp_path / "in.csv", records * 200)
    process = subprocess.Popen(
        [sys.executable, "inference_example.py", str(source), "--quiet"],
        cwd=demo.package_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        process.stdout.close()
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert first.startswith("id,")
    assert stderr == ""
    assert process.returncode == 1


def test_missing_library_is_an_error_line(demo: Rendered) -> None:
    """Run by a Python without numpy, joblib and scikit-learn (``-S``: no
    site-packages): exit 2 with one line saying what to install."""
    result = subprocess.run(
        [sys.executable, "-S", "inference_example.py"],
        cwd=demo.package_dir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: No module named ")
    assert result.stderr.endswith(": pip install -r requirements.txt\n")
    assert len(result.stderr.splitlines()) == 1


def test_an_input_or_folder_this_user_may_not_use_is_named_with_the_fix(
    demo: Rendered, records: list[dict], tmp_path: Path
) -> None:
    """An input this user may not read, and an output in a folder this user
    may not write: exit 2, one line naming the path and what to do, nothing
    left behind. (Run subject to file permissions, also as root.)"""
    source = write_csv(tmp_path / "in.csv", records[:5])
    hidden = write_csv(tmp_path / "hidden.csv", records[:5])
    hidden.chmod(0)
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o555)
    try:
        unread = run_cli(demo.package_dir, str(hidden), as_plain_user=True)
        unwritten = run_cli(
            demo.package_dir,
            str(source),
            "-o",
            str(closed / "out.csv"),
            as_plain_user=True,
        )
    finally:
        closed.chmod(0o755)
    assert (unread.returncode, unread.stderr) == (
        2,
        f"error: cannot read {hidden}: Permission denied; give the user running "
        "this read access to it, or a copy it can read\n",
    )
    assert (unwritten.returncode, unwritten.stderr) == (
        2,
        f"error: cannot write {closed / 'out.csv'}: Permission denied: this user "
        "may not write there (or, on Windows, another program has the file "
        "open): give another path\n",
    )
    assert list(closed.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/stdout").exists(), reason="needs /dev/stdout")
@pytest.mark.parametrize(
    ("args", "redirect", "message"),
    [
        pytest.param(
            ["in.csv", "--drift-report", "/dev/stdout"],
            "stdout",
            "--drift-report /dev/stdout is the same file as --output (standard output)",
            id="report-to-stdout-by-path",
        ),
        pytest.param(
            ["-", "--format", "csv", "-o", "in.csv"],
            "stdin",
            "--output in.csv is the same file as the input (standard input)",
            id="output-over-input-from-stdin",
        ),
        pytest.param(
            ["-", "--format", "csv", "-o", "x.csv", "--drift-report", "in.csv"],
            "stdin",
            "--drift-report in.csv is the same file as the input (standard input)",
            id="report-over-input-from-stdin",
        ),
    ],
)
def test_a_redirected_standard_stream_is_the_file_it_names(
    demo: Rendered,
    records: list[dict],
    tmp_path: Path,
    args: list[str],
    redirect: str,
    message: str,
) -> None:
    """Standard input read from a file, or standard output written to one,
    is that file: an output naming it (or /dev/stdout, which is it) is
    refused, exit 2, before anything is read or written; the input stays."""
    source = write_csv(tmp_path / "in.csv", records[:5])
    before = source.read_bytes()
    with open(source, "rb") as stdin, open(tmp_path / "out.txt", "wb") as stdout:
        result = subprocess.run(
            [sys.executable, str(demo.package_dir / "inference_example.py"), *args],
            cwd=tmp_path,
            stdin=stdin if redirect == "stdin" else subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {message}: give each its own file\n"
    assert source.read_bytes() == before
    assert (tmp_path / "out.txt").read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.txt"]
