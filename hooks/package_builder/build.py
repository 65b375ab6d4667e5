"""Turn a rendered package folder into a finished, verified deployment package.

The steps, in order: put model.joblib (and scaler.joblib) in the folder,
check them, write metadata.json, render README.md and requirements.txt with
the model's facts, write deployment_manifest.json with the hashes and the
self-test, write SHA256SUMS, run the package's own validate_model.py, and
zip the folder. Running it again on the same folder gives the same files.

validate_model.py runs in a Python of its own, started with the build so
that its imports overlap the build's work; the folder is zipped while the
script runs, and the zip is published only if it passes.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2

from .answers import AnswerError, Answers
from .archive import (
    SKIPPED_DIRS,
    SKIPPED_SUFFIXES,
    SUMS_FILE,
    copy_file,
    write_json,
    write_sha256sums,
    write_zip,
)
from .documents import (
    API_SERVICE,
    INFERENCE_EXAMPLE,
    MANIFEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    README_FILE,
    REQUIREMENTS_FILE,
    SCALER_FILE,
    VALIDATION_SCRIPT,
    build_manifest,
    build_metadata,
    expected_anomaly_ratio,
    numpy_floor,
    read_given_metadata,
)
from .stopping import check_before_publishing

RENDERED_BY_BUILD = [README_FILE, REQUIREMENTS_FILE]
# Variables a consumer sets to tune the package.
CONSUMER_SETTINGS = {
    "MODEL_THRESHOLD",
    "MODEL_BATCH_SIZE",
    "MODEL_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
}
# What the build's self-validation does not take from the builder: the
# consumer settings, and PYTHONPATH, so that a model that needs a module of
# the builder's that the package does not ship fails here, not at a consumer's.
NOT_INHERITED = CONSUMER_SETTINGS | {"PYTHONPATH"}


# What a disk that has no room left (for this user) makes writes fail with.
DISK_FULL = {errno.ENOSPC, *([errno.EDQUOT] if hasattr(errno, "EDQUOT") else [])}


class BuildError(RuntimeError):
    """The package could not be built; the message says why and what to do."""


@contextlib.contextmanager
def writing(what: str, place: Path) -> Iterator[None]:
    """Turn an OSError that ends the build while it writes ``what`` into the
    folder ``place`` into a BuildError that says what failed and what to do.

    An error that names a file outside ``place`` failed to read it (an
    input: the files written are in ``place``); any other, to write there.
    """
    try:
        yield
    except OSError as error:
        raise BuildError(os_error_reason(error, what, place)) from None


def os_error_reason(error: OSError, what: str, place: Path) -> str:
    """The sentence for ``error``, raised while writing ``what`` in ``place``
    (see ``writing``)."""
    if error.errno is None:  # raised here, with its own sentence
        return f"{what} could not be written: {error}"
    reason = f"{error.strerror} [Errno {error.errno}]"
    name = error.filename if isinstance(error.filename, str) else None
    if name is not None and Path(name).parent != place:
        return (
            f"{name} could not be read ({reason}): check that it is there and "
            "readable, then render again"
        )
    if error.errno in DISK_FULL:
        fix = "free space on the disk that holds it, or"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable, or"
    else:
        fix = "check its disk, or"
    # A file that could not be replaced (os.replace's second name) is named.
    replaced = error.filename2 if isinstance(error.filename2, str) else None
    where = f"as {replaced}" if replaced else f"in {place}"
    return (
        f"{what} could not be written {where} ({reason}): {fix} render the "
        "package elsewhere with --output-dir"
    )


def require_scikit_learn() -> None:
    """Fail with an install hint unless the libraries that load a model import."""
    missing = [
        name
        for name in ("sklearn", "joblib", "numpy")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise BuildError(
            f"{', '.join(missing)} cannot be imported by the Python running "
            f"cookiecutter ({sys.executable}), and loading the model needs them: "
            "pip install scikit-learn (with pipx: pipx inject cookiecutter "
            "scikit-learn)"
        )


def require_pandas_for_named_features(loaded: dict[str, Any]) -> None:
    """Fail with an install hint when an artifact was fitted on a DataFrame
    (it records feature_names_in_) and pandas, needed to score it, is missing."""
    if not any(hasattr(step, "feature_names_in_") for step in loaded.values()):
        return
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise BuildError(
            "the model or the scaler was fitted on a pandas DataFrame, and "
            "scoring it needs pandas, which the Python running cookiecutter "
            f"({sys.executable}) cannot import: pip install pandas (with pipx: "
            "pipx inject cookiecutter pandas)"
        ) from None


def load_package_module(folder: Path) -> ModuleType:
    """Import the package's own inference_example.py without writing byte-code."""
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location(
        f"inference_example_{abs(hash(folder))}", folder / INFERENCE_EXAMPLE
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def preloaded_inference(
    package: ModuleType, folder: Path, loaded: dict[str, Any]
) -> Any:
    """The package's own ModelInference on ``folder``, with the unpickled files
    in ``loaded`` (file name -> object) instead of unpickling them again.

    Not verified, and scoring with scikit-learn alone (no flattened forest).
    """

    class Preloaded(package.ModelInference):
        def _load(self, name: str) -> Any:
            return loaded[name]

    return Preloaded(folder, verify=False, environ={}, fast_scoring=False)


def place_artifacts(
    answers: Answers, folder: Path
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Copy the builder's artifacts in, or train the demo.

    Returns the demo's facts (None for the builder's own artifacts) and the
    SHA-256 of each file copied, hashed as it was copied.
    """
    if answers.model_file is None:
        from .demo import train_demo

        return train_demo(folder, threshold=answers.threshold), {}
    digests = {MODEL_FILE: copy_file(answers.model_file, folder / MODEL_FILE)}
    if answers.scaler_file is not None:
        digests[SCALER_FILE] = copy_file(answers.scaler_file, folder / SCALER_FILE)
    else:
        (folder / SCALER_FILE).unlink(missing_ok=True)
    return None, digests


def check_ranges_known(answers: Answers, monitoring: dict[str, Any]) -> None:
    """Refuse out_of_range=warn/error when a feature's reference range is unknown."""
    if answers.out_of_range == "allow":
        return
    unknown = [
        name
        for name, statistics in monitoring["features"].items()
        if statistics["min"] is None or statistics["max"] is None
    ]
    if unknown:
        raise AnswerError(
            "out_of_range",
            answers.out_of_range,
            f"the reference range of {', '.join(unknown)} is unknown without "
            "reference data; give reference_data_path, or answer allow",
        )


def render_documents(answers: Answers, folder: Path, context: dict[str, Any]) -> None:
    """Render README.md and requirements.txt from the template's sources."""
    sources = answers.template_dir / "{{cookiecutter.package_name}}"
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sources),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    for name in RENDERED_BY_BUILD:
        text = environment.get_template(name).render(**context)
        (folder / name).write_text(text, encoding="utf-8", newline="\n")


# The Python that runs validate_model.py for the build. It starts with the
# build and imports the libraries the script needs while the build loads the
# model, then waits for the package to be complete. It has not imported the
# package's own modules, so it checks what a consumer's fresh interpreter
# would: it runs the script as ``python validate_model.py`` does.
VALIDATOR = """\
import os, runpy, sys
try:
    import joblib, numpy, sklearn.ensemble, sklearn.pipeline, sklearn.preprocessing
except ImportError:
    pass  # validate_model.py says what is missing
if sys.stdin.readline() != "run\\n":
    raise SystemExit(0)  # the build stopped before the package was complete
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    if not isinstance(stop.code, int):
        raise
    # Skip Python's shutdown, which only unloads modules here (about 0.3 s).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(stop.code)
"""


class Validation:
    """The package's validate_model.py, run on ``folder`` in a Python of its own.

    Create it when the build starts; ``start()`` once every file is written;
    ``wait()`` returns the script's output or raises BuildError. Leaving the
    ``with`` block stops a run that was not waited for.
    """

    def __init__(self, folder: Path) -> None:
        # Closed by __exit__; a file, not a pipe, so output never blocks it.
        self.output = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-B", "-c", VALIDATOR, VALIDATION_SCRIPT],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **{
                    name: value
                    for name, value in os.environ.items()
                    if name not in NOT_INHERITED
                },
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONIOENCODING": "utf-8",
            },
        )

    def __enter__(self) -> Validation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        self.output.close()

    def start(self) -> None:
        """Let validate_model.py run: the package is complete."""
        with contextlib.suppress(BrokenPipeError):  # it failed early: wait() says
            self.process.stdin.write("run\n")
            self.process.stdin.flush()

    def wait(self) -> str:
        """Return validate_model.py's output; raise BuildError if it failed."""
        self.process.communicate()
        self.output.seek(0)
        output = self.output.read()
        if self.process.returncode != 0:
            raise BuildError(
                "the package failed its own validation, so no zip was written:\n"
                + output
            )
        return output


def cannot_score_numbers(
    error: TypeError, loaded: dict[str, Any], sources: dict[str, Path]
) -> AnswerError:
    """The refusal of the artifact in ``loaded`` (file name -> object) that
    raised ``error`` scoring rows of numbers, most often one fitted on text
    columns (categories it encodes itself), named as ``sources`` names it
    (answer -> file). An error that no artifact raised is the build's own,
    and goes on."""
    artifacts = (("model_path", MODEL_FILE), ("scaler_path", SCALER_FILE))
    raised = [
        answer
        for answer, name in artifacts
        if name in loaded and _raised_by(error, loaded[name])
    ]
    if not raised:
        raise error
    answer = raised[0]
    artifact = "the model" if answer == "model_path" else "the scaler"
    return AnswerError(
        answer,
        str(sources[answer]),
        f"cannot take rows of numbers ({type(error).__name__}: {error}); the "
        f"package gives {artifact} every feature as a number, so if it takes text "
        "columns (categories it encodes itself), encode them as numbers before "
        "fitting",
    )


def _raised_by(error: BaseException, artifact: Any) -> bool:
    """Whether ``error`` was raised inside a method of ``artifact``."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_locals.get("self") is artifact:
            return True
        frame = frame.tb_next
    return False


def zip_path_for(answers: Answers, folder: Path) -> Path:
    """Where the zip of the package in ``folder`` goes."""
    return answers.output_dir / f"{folder.name}.zip"


def build_package(answers: Answers, folder: Path) -> Path | None:
    """Build the package in ``folder``; return the zip's path (None if not zipped)."""
    require_scikit_learn()
    with Validation(folder) as validation, writing("the package", folder):
        return _build(answers, folder, validation)


def _build(answers: Answers, folder: Path, validation: Validation) -> Path | None:
    from .artifacts import (
        check_importable_by_consumers,
        inspect_artifacts,
        load_artifact,
    )
    from .monitoring import load_reference, made_up_examples, reference_monitoring

    package = load_package_module(folder)
    given = (
        read_given_metadata(answers.metadata_file) if answers.metadata_file else None
    )
    demo, digests = place_artifacts(answers, folder)
    # A SHA256SUMS from an earlier build would not match the new manifest.
    (folder / SUMS_FILE).unlink(missing_ok=True)
    # Byte-code is no part of a package: cookiecutter copies any that a
    # Python left in the template's folder.
    for name in SKIPPED_DIRS:
        shutil.rmtree(folder / name, ignore_errors=True)
    for suffix in SKIPPED_SUFFIXES:
        for path in folder.glob(f"*{suffix}"):
            path.unlink()
    if not answers.include_api_service:
        (folder / API_SERVICE).unlink(missing_ok=True)
    scaler_path = folder / SCALER_FILE
    declared: dict[str, list[str] | None] = {"feature_names": answers.feature_names}
    if given:
        declared["metadata_path"] = given["training_info"].get("feature_names")
    if demo:
        declared["demo model"] = demo["feature_names"]
    # Unpickled once: the facts come from these objects, and the package's
    # ModelInference below scores with them.
    sources = {
        "model_path": answers.model_file or folder / MODEL_FILE,
        "scaler_path": answers.scaler_file or scaler_path,
        "metadata_path": answers.metadata_file,
    }
    # The modules each pickle names, which a consumer's Python must import.
    needed: dict[str, set[str]] = {"model_path": set()}
    loaded = {
        MODEL_FILE: load_artifact(
            folder / MODEL_FILE,
            "model_path",
            sources["model_path"],
            needed["model_path"],
        )
    }
    if scaler_path.is_file():
        needed["scaler_path"] = set()
        loaded[SCALER_FILE] = load_artifact(
            scaler_path, "scaler_path", sources["scaler_path"], needed["scaler_path"]
        )
    require_pandas_for_named_features(loaded)
    facts = inspect_artifacts(
        loaded[MODEL_FILE],
        loaded.get(SCALER_FILE),
        sources,
        declared,
        answers.threshold,
        package,
    )
    reference = load_reference(answers, facts.feature_names, demo)
    metadata = build_metadata(answers, facts, given=given, demo=demo)
    # A first manifest lets the package's own ModelInference, given the
    # artifacts loaded above, score the reference rows and the self-test. Its
    # range policy waits for the monitoring section, computed with it. No
    # verification: the hashes were computed from these very files a moment
    # ago, and the build's validation run below checks them all. Scored by
    # scikit-learn itself, so that the validation run, which loads the
    # package as a consumer does (a forest flattened), checks the fast
    # scoring against it.
    write_json(folder / METADATA_FILE, metadata)
    write_json(
        folder / MANIFEST_FILE,
        build_manifest(
            replace(answers, out_of_range="allow"),
            metadata,
            folder,
            facts.threshold,
            known=digests,
        ),
    )
    inference = preloaded_inference(package, folder, loaded)
    try:
        metadata["monitoring"], reference_examples = reference_monitoring(
            inference, reference, demo
        )
    except TypeError as error:
        raise cannot_score_numbers(error, loaded, sources) from None
    except ValueError as error:  # the scaler refuses some of these rows
        if not answers.reference_file:
            raise
        raise AnswerError(
            "reference_data_path",
            str(answers.reference_file),
            f"the model cannot score these rows ({error}); give rows like the "
            "ones it was trained on",
        ) from None
    check_ranges_known(answers, metadata["monitoring"])
    write_json(folder / METADATA_FILE, metadata)
    render_documents(
        answers,
        folder,
        {
            "answers": answers,
            "metadata": metadata,
            "model_type": facts.model_type,
            "threshold": facts.threshold,
            "expected_anomaly_ratio": expected_anomaly_ratio(metadata, facts.threshold),
            "sklearn_version": facts.environment["scikit-learn"],
            "numpy_floor": numpy_floor(set().union(*needed.values())),
            "model_size_bytes": (folder / MODEL_FILE).stat().st_size,
            "scaler_size_bytes": (
                scaler_path.stat().st_size if scaler_path.is_file() else 0
            ),
            "has_scaler": scaler_path.is_file(),
            "scaler_type": type(loaded.get(SCALER_FILE)).__name__,
        },
    )
    rows = (
        demo["holdout_examples"]
        if demo
        else reference_examples
        or made_up_examples(metadata["monitoring"], facts.feature_names)
    )
    records = [dict(zip(facts.feature_names, row, strict=True)) for row in rows]
    try:
        result = inference.predict(records)
    except TimeoutError:
        raise AnswerError(
            "timeout_seconds",
            answers.timeout_seconds,
            f"scoring the self-test's {len(records)} rows took longer than that, "
            "so the package would time out on the smallest calls; give more seconds",
        ) from None
    except TypeError as error:
        raise cannot_score_numbers(error, loaded, sources) from None
    except ValueError as error:
        if demo or reference_examples:
            raise
        # Rows made up around the scaler's centre: not every transformer
        # takes them (Box-Cox needs positive values, an encoder known ones).
        raise AnswerError(
            "reference_data_path",
            "",
            "the self-test needs rows the model can score, and the rows made "
            f"up without reference data cannot be ({error}); give "
            "reference_data_path, a CSV of representative inputs",
        ) from None
    # The last check of the artifacts: what it refuses works here, so any
    # other problem of the builder's is told first.
    check_importable_by_consumers(needed, sources, folder / REQUIREMENTS_FILE)
    manifest = build_manifest(
        answers,
        metadata,
        folder,
        facts.threshold,
        self_test={
            "inputs": records,
            "scores": result["scores"],
            "predictions": result["predictions"],
        },
        known=digests,
    )
    write_json(folder / MANIFEST_FILE, manifest)
    write_sha256sums(folder, known=manifest["file_integrity"])
    validation.start()

    def passed() -> None:
        validation.wait()
        check_before_publishing()  # cookiecutter killed meanwhile: publish nothing

    if not answers.create_zip:
        passed()
        return None
    zip_path = zip_path_for(answers, folder)
    # Zipped while validate_model.py runs; published only if it passes.
    with writing("the zip", zip_path.parent):
        write_zip(folder, zip_path, answers.build_time, before_publish=passed)
    return zip_path
