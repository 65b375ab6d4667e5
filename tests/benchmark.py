"""Benchmark the package against bare scikit-learn and bare shell tools.

Run by ``nox -s bench`` (posargs go to this script):

    python tests/benchmark.py [--quick] [--json PATH] [--model-mb 50 200]

Every scenario is measured in the same run, ours and the baseline
alternating, and printed as one table; the same numbers, with the machine's
facts, go to a JSON file (default dist/bench.json). The ratio is always
baseline / ours, so above 1 means ours is faster (or smaller).

- scoring (on the demo package, rendered with cookiecutter): one record
  through ``ModelInference.predict([record])`` against
  ``estimator.score_samples(scaler.transform(row))`` on a prebuilt row, median
  and p99; batches of dicts through ``predict`` (turning dicts into an array
  is part of our cost) against the same raw calls on a prebuilt array; the
  same for one record and a batch of 10,000 with the first big model's
  package (a forest too large for the heap numbering);
- loading: ``ModelInference(folder)``, which checks every SHA-256 first,
  against a bare ``joblib.load`` of model and scaler;
- packaging: the real ``cookiecutter`` command around an IsolationForest of
  at least 50 MB against ``cp``, ``sha256sum`` and ``zip -r`` of the same
  files, at two model sizes (wall time, CPU time and zip size of each, and
  the time a Python takes only to import scikit-learn and load the model); and
  the peak memory of the render's largest process against a Python that
  only loads the package (``ModelInference``), which the build's self-test
  and ``validate_model.py`` must do: what packaging adds beyond that must
  not grow with the model.
- Spark, when pyspark is importable: rows per second of the package's
  ``spark_scoring.score_dataframe`` on Spark ``local[2]`` (the demo's rows
  cached in Spark, written to the ``noop`` sink, Python workers already
  started) against ``ModelInference.predict`` on the same rows in this
  process. Without pyspark (or Java) the row is left out, with a note.

The goals printed at the end are goals, not assertions: the script exits 0
whatever they say (non-zero only when a step itself fails).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from local_spark import ENVIRONMENT, local_session
from sample_artifacts import FEATURES, make_data
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
DEMO_VERSION = "20241201_120000"
RENDER_VERSION = "20241201_120500"
MB = 1_000_000
TREE_SAMPLES = 4096
SEED = 11
# Records per batch scored with the big model package.
BIG_BATCH = 10_000

SPARK_ROWS = 200_000
SPARK_QUICK_ROWS = 50_000
SPARK_PARTITIONS = 4

GOAL_SINGLE_RATIO = 30.0
GOAL_BATCH_RATIO = 1.0
GOAL_RENDER_SLOWDOWN = 1.3
GOAL_RENDER_MIN_MB = 50
# Packaging memory "does not grow with the model" when, beyond what a Python
# needs to load the package (ModelInference, as the build's self-test and
# validate_model.py must), it grows by at most this share of the model's
# growth.
GOAL_MEMORY_GROWTH = 0.10

# Runs a command and reports its wall time, the CPU time of its whole
# process tree, and its peak memory as JSON: the
# largest resident set of any process in its tree (getrusage of the children,
# exact) and the largest sum over the tree (sampled every 20 ms from /proc).
MEASURE = r"""
import json, os, resource, subprocess, sys, time

def tree_rss_kb(root):
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            pass
    return total

command = sys.argv[1:]
started = time.perf_counter()
process = subprocess.Popen(
    command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
)
sampled = os.path.isdir(f"/proc/{process.pid}/task")
tree_peak = 0
while process.poll() is None:
    if sampled:
        tree_peak = max(tree_peak, tree_rss_kb(process.pid))
    time.sleep(0.02)
seconds = time.perf_counter() - started
output = process.stdout.read()
scale = 1024 if sys.platform == "darwin" else 1
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "seconds": seconds,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "returncode": process.returncode,
    "max_process_rss_kb": usage.ru_maxrss // scale,
    "tree_peak_rss_kb": tree_peak if sampled else None,
    "output_tail": output[-3000:],
}))
"""


# measuring


def measure_command(command: list[str], cwd: Path | None = None) -> dict[str, Any]:
    """Run ``command`` under MEASURE; fail loudly if it fails."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(result.stdout)
    if measured["returncode"] != 0:
        raise SystemExit(
            f"benchmark step failed: {' '.join(command)}\n{measured['output_tail']}"
        )
    return measured


def time_once(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def paired_latencies(
    ours: Callable[[], Any], theirs: Callable[[], Any], budget: float, rounds: int = 10
) -> tuple[list[float], list[float]]:
    """Time single calls of both, in alternating blocks, for about ``budget`` s."""
    for _ in range(3):
        ours()
        theirs()
    each = max(time_once(ours), time_once(theirs), 1e-6)
    calls = int(min(20_000, max(300, budget / 2 / each)))
    block = max(1, calls // rounds)
    ours_times: list[float] = []
    their_times: list[float] = []
    for _ in range(rounds):
        for function, times in ((ours, ours_times), (theirs, their_times)):
            for _ in range(block):
                started = time.perf_counter_ns()
                function()
                times.append((time.perf_counter_ns() - started) / 1e9)
    return ours_times, their_times


def paired_runs(
    ours: Callable[[], Any],
    theirs: Callable[[], Any],
    min_seconds: float,
    min_runs: int,
    max_runs: int,
) -> tuple[list[float], list[float]]:
    """Time whole calls of both, alternating, until each has ``min_seconds``."""
    ours_times: list[float] = []
    their_times: list[float] = []
    while len(ours_times) < max_runs and (
        len(ours_times) < min_runs
        or min(sum(ours_times), sum(their_times)) < min_seconds
    ):
        ours_times.append(time_once(ours))
        their_times.append(time_once(theirs))
    return ours_times, their_times


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


# machine


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions = {}
    for name in ("numpy", "scikit-learn", "scipy", "joblib", "pandas", "cookiecutter"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        **versions,
        "load_average_at_start": list(os.getloadavg())
        if hasattr(os, "getloadavg")
        else None,
    }


# the demo package and ModelInference


def cookiecutter_command() -> list[str]:
    script = Path(sys.executable).parent / "cookiecutter"
    if script.is_file():
        return [str(script)]
    found = shutil.which("cookiecutter")
    return [found] if found else [sys.executable, "-m", "cookiecutter"]


def render(template: Path, output_dir: Path, *answers: str) -> dict[str, Any]:
    """Render the template with the real cookiecutter command; measure it."""
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    command = [
        *cookiecutter_command(),
        str(template),
        "--no-input",
        "--output-dir",
        str(output_dir),
        *answers,
    ]
    return measure_command(command)


def import_package(folder: Path) -> Any:
    """Import the rendered package's inference_example.py."""
    name = "inference_example"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(folder))
    spec.loader.exec_module(module)
    return module


def prepared(step: Any, X: np.ndarray) -> Any:
    """``X`` as the step was fitted: a DataFrame when it knows column names."""
    names = getattr(step, "feature_names_in_", None)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def raw_scorer(
    folder: Path, manifest: dict[str, Any]
) -> tuple[Callable[[Any], Any], Any, Any]:
    """Bare scikit-learn on the package's own pickles: scaler, then score_samples."""
    files = manifest["files"]
    model = joblib.load(folder / files["model_file"])
    scaler = (
        joblib.load(folder / files["scaler_file"]) if files["scaler_file"] else None
    )

    def score(X: Any) -> Any:
        if scaler is not None:
            X = prepared(model, scaler.transform(X))
        return model.score_samples(X)

    return score, scaler, model


def scoring_scenarios(
    package: Any,
    folder: Path,
    options: argparse.Namespace,
    results: list[dict[str, Any]],
    batch_sizes: list[int],
    of: str = "",
) -> None:
    """Single records and batches; ``of`` names a package other than the demo."""
    inference = package.ModelInference(folder)
    manifest = inference.manifest
    names = list(manifest["training_info"]["feature_names"])
    raw, scaler, model = raw_scorer(folder, manifest)
    first = scaler if scaler is not None else model
    rng = np.random.default_rng(SEED)
    mean = np.asarray(getattr(scaler, "mean_", np.zeros(len(names))))
    scale = np.asarray(getattr(scaler, "scale_", np.ones(len(names))))

    record = dict(manifest["self_test"]["inputs"][0])
    row = prepared(first, np.array([[record[name] for name in names]], dtype=float))
    assert np.isclose(inference.predict([record])["scores"][0], -raw(row)[0])
    ours, theirs = paired_latencies(
        lambda: inference.predict([record]),
        lambda: raw(row),
        options.latency_seconds,
    )
    converting = conversion_seconds(inference, [record], len(ours))
    for label, statistic in (("median", statistics.median), ("p99", p99)):
        results.append(
            {
                "scenario": f"1 record{of}, {label} latency",
                "group": "single",
                "unit": "s",
                "ours": statistic(ours),
                "baseline": statistic(theirs),
                "samples": len(ours),
                "conversion_seconds": converting,
            }
        )

    for size in batch_sizes:
        X = rng.normal(mean, scale, (size, len(names)))
        records = [dict(zip(names, values, strict=True)) for values in X.tolist()]
        prebuilt = prepared(first, X)
        ours, theirs = paired_runs(
            lambda records=records: inference.predict(records),
            lambda prebuilt=prebuilt: raw(prebuilt),
            min_seconds=options.batch_seconds,
            min_runs=options.repeats,
            max_runs=1000,
        )
        results.append(
            {
                "scenario": f"batch of {size:,} records{of}",
                "group": "batch",
                "unit": "records/s",
                "records": size,
                "ours": size / statistics.median(ours),
                "baseline": size / statistics.median(theirs),
                "runs": len(ours),
                "predict_seconds": statistics.median(ours),
                "conversion_seconds": conversion_seconds(inference, records, len(ours)),
            }
        )


def conversion_seconds(inference: Any, records: list[dict], runs: int) -> float:
    """Median time of turning ``records`` into the array that is scored
    (``preprocess_features``, part of every ``predict``)."""
    inference.preprocess_features(records)
    return statistics.median(
        time_once(lambda: inference.preprocess_features(records))
        for _ in range(max(3, min(runs, 1000)))
    )


def load_scenario(
    package: Any,
    folder: Path,
    label: str,
    options: argparse.Namespace,
    results: list[dict[str, Any]],
) -> None:
    files = json.loads((folder / package.MANIFEST_FILE).read_text("utf-8"))["files"]

    def bare() -> None:
        joblib.load(folder / files["model_file"])
        if files["scaler_file"]:
            joblib.load(folder / files["scaler_file"])

    ours, theirs = paired_runs(
        lambda: package.ModelInference(folder),
        bare,
        min_seconds=options.batch_seconds,
        min_runs=options.repeats,
        max_runs=100,
    )
    results.append(
        {
            "scenario": label,
            "group": "load",
            "unit": "s",
            "ours": statistics.median(ours),
            "baseline": statistics.median(theirs),
            "runs": len(ours),
            "model_bytes": (folder / files["model_file"]).stat().st_size,
        }
    )


# packaging a big model


def big_model(models: Path, megabytes: int) -> tuple[Path, Path]:
    """An IsolationForest of at least ``megabytes`` MB, cached in ``models``."""
    models.mkdir(parents=True, exist_ok=True)
    tag = f"sklearn{sklearn.__version__}"
    model_path = models / f"isolation_forest_{megabytes}mb_{tag}.joblib"
    scaler_path = models / f"scaler_{tag}.joblib"
    X, _ = make_data(2 * TREE_SAMPLES)
    scaler = StandardScaler().fit(X)
    if not scaler_path.is_file():
        dump(scaler, scaler_path)
    if model_path.is_file():
        return model_path, scaler_path
    target = megabytes * MB
    trees = 16
    while True:
        model = IsolationForest(
            n_estimators=trees, max_samples=TREE_SAMPLES, random_state=SEED, n_jobs=-1
        ).fit(scaler.transform(X))
        model.set_params(n_jobs=None)
        dump(model, model_path)
        size = model_path.stat().st_size
        if size >= target:
            return model_path, scaler_path
        trees = math.ceil(trees * target / size * 1.02)
        print(f"  generating a {megabytes} MB model: {trees} trees", flush=True)


def dump(artifact: Any, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    joblib.dump(artifact, temporary)
    os.replace(temporary, path)


# What the package's own loading needs, without packaging: the floor that
# packaging's peak memory is compared with.
JOBLIB_ONLY = "import sys, joblib; joblib.load(sys.argv[1]); joblib.load(sys.argv[2])"
PACKAGE_ONLY = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from inference_example import ModelInference; ModelInference(sys.argv[1])"
)


def without_output(run: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in run.items() if key != "output_tail"}


BASELINE_SCRIPT = """set -e
package="$1"; model="$2"; scaler="$3"; sources="$4"; zip_file="$5"
mkdir -p "$package"
cp "$model" "$package/model.joblib"
cp "$scaler" "$package/scaler.joblib"
cp "$sources"/* "$package"/
cd "$package"
sha256sum * > SHA256SUMS
cd ..
zip -q -r "$zip_file" "$(basename "$package")"
"""


def packaging_scenarios(
    workdir: Path, options: argparse.Namespace, results: list[dict[str, Any]]
) -> dict[str, Any]:
    facts: dict[str, Any] = {"sizes": []}
    memory_rows: list[dict[str, Any]] = []
    for index, megabytes in enumerate(options.model_mb):
        model_path, scaler_path = big_model(workdir / "models", megabytes)
        size = model_path.stat().st_size
        runs = options.repeats
        ours_runs, base_runs = [], []
        out = workdir / "render"
        base = workdir / "baseline"
        answers = [
            f"version={RENDER_VERSION}",
            f"model_path={model_path}",
            f"scaler_path={scaler_path}",
            f"feature_names={','.join(FEATURES)}",
        ]
        for _ in range(runs):
            ours_runs.append(render(options.template, out, *answers))
            if base.exists():
                shutil.rmtree(base)
            base.mkdir()
            base_runs.append(
                measure_command(
                    [
                        "sh",
                        "-c",
                        BASELINE_SCRIPT,
                        "sh",
                        str(base / f"model_{RENDER_VERSION}_deployment"),
                        str(model_path),
                        str(scaler_path),
                        str(options.template / "{{cookiecutter.package_name}}"),
                        str(base / f"model_{RENDER_VERSION}_deployment.zip"),
                    ]
                )
            )
        folder = out / f"model_{RENDER_VERSION}_deployment"
        joblib_only = measure_command(
            [sys.executable, "-c", JOBLIB_ONLY, str(model_path), str(scaler_path)]
        )
        package_only = measure_command(
            [sys.executable, "-c", PACKAGE_ONLY, str(folder)]
        )
        zips = {
            "ours": (out / f"{folder.name}.zip").stat().st_size,
            "baseline": (base / f"{folder.name}.zip").stat().st_size,
        }
        label = f"{size / MB:.0f} MB model"
        results.append(
            {
                "scenario": f"render, {label}",
                "group": "render",
                "unit": "s",
                "ours": statistics.median(r["seconds"] for r in ours_runs),
                "baseline": statistics.median(r["seconds"] for r in base_runs),
                "runs": runs,
                "model_bytes": size,
                # The least any build that checks the model must spend: one
                # Python importing scikit-learn and unpickling the artifacts.
                "floor_seconds": joblib_only["seconds"],
                "zip_bytes": zips,
                "cpu_seconds": {
                    "ours": statistics.median(r["cpu_seconds"] for r in ours_runs),
                    "baseline": statistics.median(r["cpu_seconds"] for r in base_runs),
                },
                "each_run": {
                    "ours": [without_output(r) for r in ours_runs],
                    "baseline": [without_output(r) for r in base_runs],
                },
            }
        )
        largest = statistics.median(r["max_process_rss_kb"] for r in ours_runs) * 1024
        tree = statistics.median(r["tree_peak_rss_kb"] or 0 for r in ours_runs) * 1024
        floor = package_only["max_process_rss_kb"] * 1024
        memory_rows.append(
            {
                "scenario": f"peak RSS, {label} (largest process)",
                "group": "memory",
                "unit": "B",
                "ours": largest,
                "baseline": floor,
                "baseline_is": "a Python that only loads the package: "
                "ModelInference(folder)",
                "tree_peak_bytes": tree or None,
                "joblib_load_peak_bytes": joblib_only["max_process_rss_kb"] * 1024,
                "shell_tools_peak_bytes": max(
                    r["max_process_rss_kb"] for r in base_runs
                )
                * 1024,
            }
        )
        facts["sizes"].append(
            {
                "model_bytes": size,
                "render_peak_bytes": largest,
                "tree_peak_bytes": tree or None,
                "package_load_peak_bytes": floor,
                "joblib_load_peak_bytes": joblib_only["max_process_rss_kb"] * 1024,
                "overhead_bytes": largest - floor,
            }
        )
        if index == 0:
            package = import_package(folder)
            load_scenario(package, folder, f"load {label} package", options, results)
            scoring_scenarios(
                package, folder, options, results, [BIG_BATCH], of=f", {label}"
            )
    results.extend(memory_rows)
    for folder in (workdir / "render", workdir / "baseline"):
        shutil.rmtree(folder, ignore_errors=True)  # the models stay cached
    return facts


# Spark


def spark_scenario(
    folder: Path, options: argparse.Namespace, results: list[dict[str, Any]]
) -> str | None:
    """Spark local[2] against one process on the same rows; return a note
    instead when there is no row."""
    if options.spark_rows <= 0:
        return "--spark-rows 0: no Spark row"
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed: no Spark row (pip install 'pyspark[sql]')"
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support")
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
    os.environ.update(ENVIRONMENT)
    import pyspark
    from pyspark.sql import functions as F

    try:
        spark = local_session("model-package-bench")
    except Exception as error:  # no Java, no free port...
        return f"Spark did not start ({type(error).__name__}: {error}): no Spark row"
    try:
        package = import_package(folder)
        spec = importlib.util.spec_from_file_location(
            "spark_scoring", folder / "spark_scoring.py"
        )
        scoring = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = scoring
        spec.loader.exec_module(scoring)
        inference = package.ModelInference(folder, environ={})
        names = inference.feature_names
        scaler = inference.scaler
        mean = getattr(scaler, "mean_", np.zeros(len(names)))
        scale = getattr(scaler, "scale_", np.ones(len(names)))
        rows = options.spark_rows
        df = spark.range(rows, numPartitions=SPARK_PARTITIONS).select(
            "id",
            *(
                (F.randn(seed=SEED + i) * float(scale[i]) + float(mean[i])).alias(name)
                for i, name in enumerate(names)
            ),
        )
        df = df.cache()
        df.count()
        frame = df.toPandas()[names]

        def on_spark() -> None:
            scored = scoring.score_dataframe(df, environ={})
            scored.write.format("noop").mode("overwrite").save()

        # The first job starts the Python workers; each verifies and loads
        # the package once.
        first = time_once(on_spark)
        ours, theirs = paired_runs(
            on_spark,
            lambda: inference.predict(frame),
            min_seconds=options.batch_seconds,
            min_runs=options.repeats,
            max_runs=20,
        )
        results.append(
            {
                "scenario": f"Spark local[2], {rows:,} records",
                "group": "spark",
                "unit": "records/s",
                "records": rows,
                "ours": rows / statistics.median(ours),
                "baseline": rows / statistics.median(theirs),
                "baseline_is": "ModelInference.predict on the same rows, one process",
                "runs": len(ours),
                "partitions": SPARK_PARTITIONS,
                "first_job_seconds": first,
                "pyspark": pyspark.__version__,
            }
        )
    finally:
        spark.stop()
    return None


# report


def show(value: float, unit: str) -> str:
    if unit == "s":
        for scale, name in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if value >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value * 1e9:.0f} ns"
    if unit == "B":
        return f"{value / MB:,.0f} MB"
    return f"{value:,.0f} rec/s"


def ratio(row: dict[str, Any]) -> float:
    """baseline / ours for times and sizes, ours / baseline for throughputs."""
    if row["unit"] == "records/s":
        return row["ours"] / row["baseline"]
    return row["baseline"] / row["ours"]


def goals(results: list[dict[str, Any]], memory: dict[str, Any]) -> list[dict]:
    found = []
    for single in (r for r in results if r["scenario"].endswith("median latency")):
        found.append(
            {
                "goal": f"{single['scenario']}: at least {GOAL_SINGLE_RATIO:g}x "
                "faster than raw scikit-learn",
                "measured": f"{single['ratio']:.2f}x",
                "met": single["ratio"] >= GOAL_SINGLE_RATIO,
            }
        )
    for row in (r for r in results if r["group"] == "batch"):
        found.append(
            {
                "goal": f"{row['scenario']}: ratio at least {GOAL_BATCH_RATIO:g}",
                "measured": f"{row['ratio']:.2f}x",
                "met": row["ratio"] >= GOAL_BATCH_RATIO,
            }
        )
    for row in (r for r in results if r["group"] == "render"):
        slowdown = row["ours"] / row["baseline"]
        big_enough = row["model_bytes"] >= GOAL_RENDER_MIN_MB * MB
        found.append(
            {
                "goal": f"{row['scenario']}: within {GOAL_RENDER_SLOWDOWN:g}x of "
                "cp + sha256sum + zip -r",
                "measured": f"{slowdown:.2f}x the baseline's time",
                "met": slowdown <= GOAL_RENDER_SLOWDOWN if big_enough else None,
                **({} if big_enough else {"note": "model below 50 MB"}),
            }
        )
    sizes = memory.get("sizes", [])
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        grown = large["model_bytes"] - small["model_bytes"]
        overhead = large["overhead_bytes"] - small["overhead_bytes"]
        render_growth = large["render_peak_bytes"] - small["render_peak_bytes"]
        found.append(
            {
                "goal": "packaging memory does not grow with the model: beyond "
                "loading the package (ModelInference), peak RSS grows by at most "
                f"{GOAL_MEMORY_GROWTH:.0%} of the model's growth",
                "measured": (
                    f"model {grown / MB:+.0f} MB: render peak "
                    f"{render_growth / MB:+.0f} MB, package load "
                    f"{(render_growth - overhead) / MB:+.0f} MB, packaging "
                    f"{overhead / MB:+.0f} MB ({overhead / grown:+.0%})"
                ),
                "met": overhead <= GOAL_MEMORY_GROWTH * grown,
            }
        )
    return found


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("scenario", "ours", "baseline", "ratio (baseline/ours, >1: ours faster)")
    cells = [
        (
            r["scenario"],
            show(r["ours"], r["unit"]),
            show(r["baseline"], r["unit"]),
            f"{r['ratio']:.2f}x",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(4)]
    print(
        "| "
        + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
        + " |"
    )
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in cells:
        print(
            "| "
            + " | ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
            + " |"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: fewer repeats, batches up to 10k, 10 and 20 MB models",
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "dist" / "bench.json", help="JSON output"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the demo, renders and cached big models go "
        "(default: a folder in the system's temporary directory)",
    )
    parser.add_argument(
        "--model-mb",
        type=int,
        nargs="+",
        default=None,
        help="model sizes to package, in MB; each of 50 MB or more is held to "
        "the render goal, the first and last are compared for memory "
        "(default: 50 200)",
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="default: 10 100 1000 10000 100000",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=ROOT,
        help="the template to render (default: this checkout)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="renders and minimum runs per size"
    )
    parser.add_argument(
        "--spark-rows",
        type=int,
        default=None,
        help=f"rows for the Spark row (default {SPARK_ROWS:,}, quick "
        f"{SPARK_QUICK_ROWS:,}; 0 leaves it out)",
    )
    options = parser.parse_args(argv)
    quick = options.quick
    if options.spark_rows is None:
        options.spark_rows = SPARK_QUICK_ROWS if quick else SPARK_ROWS
    options.model_mb = options.model_mb or ([10, 20] if quick else [50, 200])
    options.batch_sizes = options.batch_sizes or (
        [10, 100, 1_000, 10_000] if quick else [10, 100, 1_000, 10_000, 100_000]
    )
    options.repeats = options.repeats or (1 if quick else 3)
    options.latency_seconds = 1.0 if quick else 6.0
    options.batch_seconds = 0.2 if quick else 1.0
    options.template = options.template.resolve()
    options.workdir = (
        options.workdir or Path(tempfile.gettempdir()) / "model-package-bench"
    ).resolve()
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.perf_counter()
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, Python "
        f"{machine['python']}, numpy {machine['numpy']}, scikit-learn "
        f"{machine['scikit-learn']}",
        flush=True,
    )
    results: list[dict[str, Any]] = []

    print("rendering the demo package...", flush=True)
    demo = render(
        options.template, workdir / "demo", f"version={DEMO_VERSION}", "create_zip=no"
    )
    demo_folder = workdir / "demo" / f"model_{DEMO_VERSION}_deployment"
    print(f"  {demo['seconds']:.1f} s; scoring and loading...", flush=True)
    package = import_package(demo_folder)
    scoring_scenarios(package, demo_folder, options, results, options.batch_sizes)
    load_scenario(package, demo_folder, "load demo package", options, results)

    print("packaging big models...", flush=True)
    memory = packaging_scenarios(workdir, options, results)

    print("scoring on Spark local[2]...", flush=True)
    spark_note = spark_scenario(demo_folder, options, results)

    for row in results:
        row["ratio"] = ratio(row)
    found = goals(results, memory)
    elapsed = time.perf_counter() - started
    machine["load_average_at_end"] = (
        list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    )
    print()
    print_table(results)
    print()
    for goal in found:
        mark = {True: "met", False: "NOT met", None: "n/a"}[goal["met"]]
        print(f"[{mark}] {goal['goal']}: {goal['measured']}")
    shares = []
    for row in results:
        if "conversion_seconds" in row and "p99" not in row["scenario"]:
            converting = row["conversion_seconds"]
            spent = row.get("predict_seconds", row["ours"])
            shares.append(
                f"{row['scenario'].removesuffix(', median latency')} "
                f"{show(converting, 's')} ({converting / spent:.0%})"
            )
    print("dicts to array, share of predict's time: " + "; ".join(shares))
    for row in (r for r in results if r["group"] == "render"):
        zips, cpu = row["zip_bytes"], row["cpu_seconds"]
        print(
            f"{row['scenario']}: CPU time of the process tree ours "
            f"{cpu['ours']:.2f} s, shell tools {cpu['baseline']:.2f} s; zip size "
            f"ours {zips['ours'] / MB:.1f} MB, zip -r {zips['baseline'] / MB:.1f} "
            f"MB; a Python that only imports scikit-learn and loads the model "
            f"takes {row['floor_seconds']:.2f} s"
        )
    for size in memory.get("sizes", []):
        tree = size["tree_peak_bytes"]
        print(
            f"peak RSS, {size['model_bytes'] / MB:.0f} MB model: render's largest "
            f"process {size['render_peak_bytes'] / MB:.0f} MB"
            + (f", whole process tree {tree / MB:.0f} MB (sampled)" if tree else "")
            + f"; a Python that only loads the package "
            f"{size['package_load_peak_bytes'] / MB:.0f} MB, only joblib.load "
            f"{size['joblib_load_peak_bytes'] / MB:.0f} MB"
        )
    for row in (r for r in results if r["group"] == "spark"):
        print(
            f"{row['scenario']}: pyspark {row['pyspark']}, {row['partitions']} "
            f"partitions; the first job (starting the Python workers, each "
            f"loading the package) took {row['first_job_seconds']:.1f} s"
        )
    if spark_note:
        print(f"Spark: {spark_note}")
    print(f"bench wall time: {elapsed:.0f} s")

    report = {
        "machine": machine,
        "settings": {
            "template": str(options.template),
            "quick": options.quick,
            "model_mb": options.model_mb,
            "batch_sizes": options.batch_sizes,
            "repeats": options.repeats,
            "ratio": "baseline / ours: above 1 means ours is faster (or smaller)",
        },
        "results": results,
        "memory": memory,
        "goals": found,
        "spark_note": spark_note,
        "wall_seconds": elapsed,
    }
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {options.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
