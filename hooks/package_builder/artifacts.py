"""Load the model and scaler and check that they make a working detector.

Needs scikit-learn: only the post-generation hook imports this module.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import importlib.metadata
import importlib.util
import math
import pickle
import platform
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.exceptions import InconsistentVersionWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from .answers import AnswerError, feature_names_problem
from .documents import ModelFacts

ENVIRONMENT_PACKAGES = ["scikit-learn", "numpy", "scipy", "joblib", "pandas"]


def load_artifact(
    path: Path, answer: str, source: Path, modules: set[str] | None = None
) -> Any:
    """Unpickle ``path``, refusing one pickled by another scikit-learn version.

    ``path`` is the package's copy of the file the builder gave as ``answer``
    (``source``, the path that error messages name). ``modules``, if given,
    gets the modules that the pickle names (see check_importable_by_consumers).

    The package pins the scikit-learn it was built with and records the
    self-test scores computed here, so both must come from the version that
    made the pickle.
    """
    with warnings.catch_warnings(), _recording_modules(modules), _main_of_nothing():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            return joblib.load(path)
        except InconsistentVersionWarning as warning:
            raise AnswerError(
                answer,
                str(source),
                f"was pickled with scikit-learn {warning.original_sklearn_version} "
                f"but this Python has {sklearn.__version__}; build the package "
                "with the version that made the pickle (pip install "
                f"scikit-learn=={warning.original_sklearn_version}), so that the "
                "pinned requirement and the self-test scores are that version's",
            ) from None
        except ModuleNotFoundError as error:
            # Text read as a pickle names a "module" from its own letters.
            if not (
                _is_module_name(error.name) and _written_by_joblib(path, error.name)
            ):
                raise _not_joblib(answer, source, error) from None
            raise AnswerError(
                answer, str(source), _missing_module(error.name)
            ) from None
        except Exception as error:
            raise _not_joblib(answer, source, error) from None


@contextlib.contextmanager
def _main_of_nothing() -> Iterator[None]:
    """While unpickling, ``__main__`` is an empty module: a pickle that names
    a function of the script that saved it (``__main__.build``) fails as
    such, instead of finding this hook's own function of that name."""
    main = sys.modules["__main__"]
    try:
        sys.modules["__main__"] = ModuleType("__main__")
        yield
    finally:
        sys.modules["__main__"] = main


# How a file that joblib.dump wrote starts: a pickle of protocol 2 or more,
# or the mark of one of joblib's compressors (zlib, gzip, bz2, xz, lzma, lz4,
# and the ZF of joblib before 0.10).
_JOBLIB_STARTS = (
    b"\x80",
    b"ZF",
    b"x",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"\x5d\x00",
    b"\x04\x22\x4d\x18",
)


def _written_by_joblib(path: Path, module: str) -> bool:
    """Whether ``path``, whose unpickling asked for ``module``, is a file
    that joblib.dump wrote: it starts as one does, or (protocol 0 or 1) it
    names ``module`` (or a module in it) as such a pickle does, a class name
    on the next line. Text read as a pickle takes a word of it for the module
    ("count" reads as the module "ount" of the class "1"); a text that reads
    as such a pickle up to there ("config", then "value") cannot be told
    apart."""
    with open(path, "rb") as stream:
        if stream.read(6).startswith(_JOBLIB_STARTS):
            return True
        stream.seek(0)
        data = stream.read()
    named = re.escape(module.encode())
    # The module, or one of its own (a missing package "acme" of acme.models).
    pattern = rb"[ci]" + named + rb"(?:\.\w+)*\n[A-Za-z_][\w.]*\n"
    return re.search(pattern, data) is not None


def _is_module_name(name: str | None) -> bool:
    """Whether ``name`` can name a module (a dotted Python name)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _not_joblib(answer: str, source: Path, error: Exception) -> AnswerError:
    # What unpickling says of a class or function the saving script defined.
    text = str(error)
    main = "'__main__'" in text and re.search(r"(?:attribute|path) '([^']+)'", text)
    if isinstance(error, AttributeError) and main:
        return AnswerError(
            answer,
            str(source),
            f"holds {main.group(1)}, defined in the script that saved it "
            "(__main__), which no other Python can import; define it in a module "
            "of a distribution that the template's "
            "{{cookiecutter.package_name}}/requirements.txt lists and fit again, "
            "or use scikit-learn's own classes",
        )
    return AnswerError(
        answer,
        str(source),
        f"cannot be loaded with joblib ({type(error).__name__}: {error}); "
        "give a file written by joblib.dump",
    )


def _missing_module(name: str) -> str:
    """Why a pickle that needs the module ``name`` cannot be loaded, and the fix."""
    top = name.partition(".")[0]
    try:
        installed = top != name and importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        installed = False
    if installed:
        # A module that this version of an installed library does not have.
        return (
            f"needs the module {name!r}, which the {top} installed in the Python "
            f"running cookiecutter ({sys.executable}) does not have: the file was "
            f"probably written with another version of {top}; build with the "
            "version that wrote it"
        )
    return (
        f"needs the module {name!r}, which the Python running cookiecutter "
        f"({sys.executable}) cannot import, and the package's consumers would "
        "need it too: install its distribution there and list it in the "
        "template's {{cookiecutter.package_name}}/requirements.txt, or save a "
        "model made of scikit-learn's own classes"
    )


def _named_module(unpickler: Any, module: str, name: str) -> str:
    """The module that ``unpickler`` imports for ``module``.``name``: a pickle
    of protocol 0 to 2 may name Python 2's (__builtin__, copy_reg), which it
    reads as Python 3's."""
    if getattr(unpickler, "proto", 3) < 3 and getattr(unpickler, "fix_imports", 0):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)][0]
        return _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module


def _recording(find_class: Any, modules: set[str]) -> Any:
    """An unpickler's ``find_class`` that adds to ``modules`` the module of
    each name, then finds it as ``find_class`` does."""

    def recording_find_class(self: Any, module: str, name: str) -> Any:
        modules.add(_named_module(self, module, name))
        return find_class(self, module, name)

    return recording_find_class


class _RecordingPickle:
    """The pickle module, as joblib's own module sees it while a file loads,
    but for load(), which records what it unpickles: joblib before 1.6 reads
    an array of Python objects with pickle.load, not through its unpickler."""

    def __init__(self, modules: set[str]) -> None:
        self._modules = modules

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)

    def load(self, file: Any, **options: Any) -> Any:
        class Recording(pickle._Unpickler):  # the unpickler joblib's extends
            find_class = _recording(pickle._Unpickler.find_class, self._modules)

        return Recording(file, **options).load()


@contextlib.contextmanager
def _recording_modules(modules: set[str] | None) -> Iterator[None]:
    """While unpickling with joblib, add to ``modules`` the module of every
    class and function that the pickle names: the modules a Python that
    loads the file must import."""
    unpickler = getattr(joblib.numpy_pickle, "NumpyUnpickler", None)
    if modules is None or unpickler is None:
        yield
        return
    original = unpickler.find_class
    own_pickle = joblib.numpy_pickle.pickle
    unpickler.find_class = _recording(original, modules)
    joblib.numpy_pickle.pickle = _RecordingPickle(modules)
    try:
        yield
    finally:
        unpickler.find_class = original
        joblib.numpy_pickle.pickle = own_pickle


_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REQUIREMENT = re.compile(rf"\s*({_NAME})\s*(?:\[([^\]]*)\])?\s*(@)?")
_EGG = re.compile(rf"#egg=({_NAME})")
_EXTRA_MARKER = re.compile(r"""\bextra\s*==\s*['"]([^'"]+)['"]""")
# The modules that installing these distributions always provides (with what
# they require): the common case, told without searching every installed
# distribution's files, which takes a noticeable part of a second.
PROVIDED_BY = {
    "scikit-learn": {"sklearn", "scipy", "numpy", "joblib", "threadpoolctl"},
    "numpy": {"numpy"},
    "joblib": {"joblib"},
    "pandas": {"pandas", "numpy"},
}


def _normal(name: str) -> str:
    """A distribution's (or an extra's) name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(
    lines: list[str], extras: frozenset[str] = frozenset()
) -> list[tuple[str, frozenset[str]]]:
    """The distributions, with the extras asked of each, that requirement
    ``lines`` name: a requirements.txt's or a distribution's own (Requires-Dist,
    of which those of ``extras`` count). A URL counts by its name (``name @
    URL``, or a #egg= name); other options (-r, -c, --hash...) are not
    followed, and markers other than extras are taken to hold."""
    found = []
    for line in lines:
        text = re.sub(r"(^|\s)#.*", "", line).strip()
        direct = _REQUIREMENT.match(text)
        if ("://" in text or text.startswith("-")) and not (direct and direct.group(3)):
            egg = _EGG.search(text)
            if egg:
                found.append((_normal(egg.group(1)), frozenset()))
            continue
        requirement, _, marker = text.partition(";")
        extra = _EXTRA_MARKER.search(marker)
        if extra and _normal(extra.group(1)) not in extras:
            continue
        match = _REQUIREMENT.match(requirement)
        if match:
            named = (match.group(2) or "").split(",")
            asked = frozenset(_normal(name.strip()) for name in named if name.strip())
            found.append((_normal(match.group(1)), asked))
    return found


def installed_by(requirements_file: Path) -> set[str]:
    """The distributions that ``pip install -r requirements_file`` installs:
    those it lists and, as installed here, what they require."""
    todo = _requirements(requirements_file.read_text(encoding="utf-8").splitlines())
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            required = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo.extend(_requirements(required, extras))
    return {name for name, _ in seen}


def _distributions_providing(module: str) -> set[str]:
    """The installed distributions whose files hold ``module``: by its file,
    so that two distributions sharing a namespace package are told apart."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    places = []
    if spec is not None and spec.has_location and spec.origin:
        places = [Path(spec.origin)]
    elif spec is not None and spec.submodule_search_locations:
        places = [Path(p) for p in spec.submodule_search_locations]
    found = set()
    for place in (p.resolve() for p in places):
        for distribution in importlib.metadata.distributions():
            for file in distribution.files or []:
                if file.name != place.name and place.name not in file.parts:
                    continue
                located = Path(distribution.locate_file(file)).resolve()
                if located == place or place in located.parents:
                    found.add(_normal(distribution.metadata["Name"]))
                    break
    return found


def check_importable_by_consumers(
    needed: dict[str, set[str]], sources: dict[str, Path], requirements_file: Path
) -> None:
    """Refuse an artifact that needs a module which neither the standard
    library nor what requirements_file installs provides: it loads here, but
    not in a consumer's Python that installed the package's requirements.

    ``needed`` maps answer (model_path, scaler_path) to the modules its
    pickle names (see load_artifact), ``sources`` answer to the file the
    builder gave.
    """
    lines = requirements_file.read_text(encoding="utf-8").splitlines()
    known = set(sys.stdlib_module_names).union(
        *(PROVIDED_BY.get(name, ()) for name, _ in _requirements(lines))
    )
    installed: set[str] | None = None
    for answer, modules in needed.items():
        for module in sorted(m for m in modules if m.partition(".")[0] not in known):
            if installed is None:
                installed = installed_by(requirements_file)
            distributions = _distributions_providing(module)
            top = module.partition(".")[0]
            if distributions & installed or (
                # An editable install records no files of its own: it counts
                # when it is named like its module.
                not distributions and _normal(top) in installed
            ):
                continue
            provided = (
                f"of the distribution {', '.join(sorted(distributions))}"
                if distributions
                else "that no installed distribution is known to provide: a "
                "folder on the path, or an editable install not named like it"
            )
            artifact = "model" if answer == "model_path" else "scaler"
            raise AnswerError(
                answer,
                str(sources[answer]),
                f"needs the module {module!r} ({provided}), which the package's "
                "requirements.txt does not install, so a consumer's Python could "
                f"not load it; save a {artifact} made of scikit-learn's own "
                "classes, or install the module's distribution here and list it "
                "in the template's {{cookiecutter.package_name}}/requirements.txt",
            )


def describe(model: Any) -> str:
    """Name the model: its class, or the classes of a Pipeline's steps (a
    step that is None or "passthrough" named passthrough)."""
    steps = getattr(model, "steps", None)
    if steps:
        return "Pipeline(" + ", ".join(_step_name(step) for _, step in steps) + ")"
    return type(model).__name__


def _is_passthrough(step: Any) -> bool:
    """Whether a Pipeline step passes records on unchanged: None or "passthrough"."""
    return step is None or (isinstance(step, str) and step == "passthrough")


def _step_name(step: Any) -> str:
    return "passthrough" if _is_passthrough(step) else type(step).__name__


# The memory address in a default repr ("<... at 0x7f...>"), which differs
# from one run to the next.
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON types; other objects become their repr,
    without a memory address, so that the same model gives the same text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(item) for item in value]
    return _ADDRESS.sub("", repr(value))


def build_environment() -> dict[str, str | None]:
    """Versions of Python and the packages that a pickled model depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ENVIRONMENT_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _a(name: str) -> str:
    """``name`` with its indefinite article: an IsolationForest, a Pipeline."""
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


def _check_detector(model: Any, path: Path, package: ModuleType) -> Any:
    detector = package.final_estimator(model)
    kind = type(detector).__name__
    if kind == "LocalOutlierFactor" and not getattr(detector, "novelty", True):
        raise AnswerError(
            "model_path",
            str(path),
            "holds a LocalOutlierFactor fitted with novelty=False, which cannot "
            "score new records; fit it with novelty=True",
        )
    if not hasattr(model, "score_samples"):
        raise AnswerError(
            "model_path",
            str(path),
            f"holds {_a(describe(model))}, not a fitted outlier detector with "
            "score_samples and offset_; give an IsolationForest (or a Pipeline "
            "ending in one, or another such detector)",
        )
    if not hasattr(detector, "offset_"):
        if getattr(detector, "steps", None):  # a Pipeline ending in a Pipeline
            raise AnswerError(
                "model_path",
                str(path),
                f"holds {_a(describe(model))} whose last step is itself a "
                "Pipeline; flatten it: joblib.dump(Pipeline(model.steps[:-1] + "
                "model.steps[-1][1].steps), path) keeps the fitted steps, no "
                "refit needed",
            )
        if _is_fitted(detector):
            raise AnswerError(
                "model_path",
                str(path),
                f"holds a fitted {describe(model)}, which scores samples but has "
                "no offset_ (no boundary between normal and anomalous records), "
                "so it is not an outlier detector; give an IsolationForest (or "
                "another detector with offset_, or a Pipeline ending in one)",
            )
        raise AnswerError(
            "model_path",
            str(path),
            f"holds {_a(describe(model))} that is not fitted; fit it, then save "
            "it with joblib.dump",
        )
    if getattr(model, "n_features_in_", None) is None:
        # A Pipeline's n_features_in_ is its first step's.
        leading = []
        for name, step in getattr(model, "steps", None) or []:
            if not _is_passthrough(step):
                break
            leading.append(f"{name!r} (it is {step!r})")
        if leading:
            raise AnswerError(
                "model_path",
                str(path),
                f"the Pipeline starts with {', '.join(leading)}, passing records "
                "on unchanged, so scikit-learn cannot tell how many features the "
                "model takes (n_features_in_); drop "
                f"{'that step' if len(leading) == 1 else 'those steps'}: "
                f"joblib.dump(Pipeline(model.steps[{len(leading)}:]), path) keeps "
                "the fitted steps, no refit needed",
            )
        raise AnswerError(
            "model_path",
            str(path),
            "the model does not record n_features_in_; refit it",
        )
    return detector


def _threshold_problem(detector_type: str, threshold: float) -> str | None:
    """Why ``threshold`` cannot tell a detector's anomalies from its normal
    records, or None if it can."""
    if not math.isfinite(threshold):
        return "not a finite number"
    if detector_type == "IsolationForest" and not 0 < threshold < 1:
        return (
            "an IsolationForest's scores lie between 0 and 1, so every record "
            f"would be {'normal' if threshold >= 1 else 'an anomaly'}"
        )
    return None


def _is_fitted(estimator: Any) -> bool:
    """Whether scikit-learn sees ``estimator`` as fitted (one it cannot
    judge, which is no estimator, counts as fitted: fitting is not the fix)."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    except Exception:  # not an estimator: check_is_fitted cannot tell
        return True
    return True


def _output_width(scaler: Any, width: int, path: Path) -> int:
    if (
        not hasattr(scaler, "transform")
        or getattr(scaler, "n_features_in_", None) is None
    ):
        raise AnswerError(
            "scaler_path",
            str(path),
            f"holds {_a(type(scaler).__name__)}, not a fitted transformer; give "
            "the fitted StandardScaler (or similar)",
        )
    try:
        # Known without transforming anything (a row of zeros is not valid
        # input to every transformer: Box-Cox takes positive values only).
        return len(scaler.get_feature_names_out())
    except Exception:  # not implemented, or not for this transformer
        pass
    names = getattr(scaler, "feature_names_in_", None)
    zeros = np.zeros((1, width))
    sample = zeros if names is None else _frame(zeros, names)
    try:
        return int(np.asarray(scaler.transform(sample)).shape[1])
    except Exception as error:
        raise AnswerError(
            "scaler_path",
            str(path),
            f"holds {_a(type(scaler).__name__)} that neither names its output "
            f"columns nor transforms a row of zeros ({type(error).__name__}: "
            f"{error}), so the width it gives the model is unknown; give a "
            "transformer with get_feature_names_out",
        ) from None


def _frame(X: np.ndarray, names: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def resolve_feature_names(
    width: int,
    sources: dict[str, list[str] | None],
    metadata_file: Path | None = None,
) -> list[str]:
    """Return the one list of ``width`` names that every source agrees on.

    An error names the source and shows its names; for the names of
    ``metadata_file`` (source ``metadata_path``), the file and the key.
    """

    def refuse(source: str, problem: str, fix: str | None = None) -> AnswerError:
        """``fix``: what to do, unless ``problem`` says it already."""
        if source == "metadata_path" and metadata_file is not None:
            value = str(metadata_file)
            problem = f"training_info.feature_names {problem}"
            fix = fix and "fix them in the metadata, or set them to null"
        else:
            value = ",".join(sources[source])
        return AnswerError(source, value, f"{problem}; {fix}" if fix else problem)

    given = {
        source: list(names) for source, names in sources.items() if names is not None
    }
    for source, names in given.items():
        problem = feature_names_problem(names)
        if problem:
            raise refuse(source, problem)
        if len(names) != width:
            raise refuse(
                source,
                f"names {len(names)} features, the model takes {width}",
                f"give its {width} names, in the order it was trained on",
            )
    if not given:
        raise AnswerError(
            "feature_names",
            "",
            f"the artifacts were fitted on bare arrays of {width} columns and no "
            f"metadata names them; give feature_names=name1,name2,... ({width} names)",
        )
    (first_source, first), *others = given.items()
    for source, names in others:
        if names != first:
            raise refuse(
                source,
                f"differ from the names in {first_source}: {first}",
                f"give those names, in that order, or leave {source} empty",
            )
    return first


def inspect_artifacts(
    model: Any,
    scaler: Any | None,
    sources: dict[str, Path],
    declared_names: dict[str, list[str] | None],
    threshold: float | None,
    package: ModuleType,
) -> ModelFacts:
    """Check that the loaded artifacts make a working detector; return their facts.

    ``sources`` maps ``model_path`` (and ``scaler_path``, ``metadata_path``)
    to the file the builder gave, which error messages name.
    ``declared_names`` maps where feature names were given
    (``feature_names``, ``metadata_path``) to the names, or None.
    ``package`` is the package's own inference module, whose score
    convention gives the default threshold.
    """
    model_path = sources["model_path"]
    detector = _check_detector(model, model_path, package)
    width = int(model.n_features_in_)
    fitted_names = {"model_path": _names(model)}
    if scaler is not None:
        scaler_path = sources["scaler_path"]
        input_width = int(getattr(scaler, "n_features_in_", 0) or 0)
        produced = _output_width(scaler, input_width, scaler_path)
        if produced != width:
            raise AnswerError(
                "scaler_path",
                str(scaler_path),
                f"produces {produced} features, the model takes {width}; give the "
                "scaler that was fitted with this model",
            )
        first_step = _first_step(model)
        if first_step is not None and _same_fitted(first_step, scaler):
            raise AnswerError(
                "scaler_path",
                str(scaler_path),
                f"holds the same fitted {type(scaler).__name__} that the model's "
                f"{describe(model)} starts with, so every record would be "
                "scaled twice; leave scaler_path empty (the Pipeline scales)",
            )
        width = input_width
        model_names = fitted_names["model_path"]
        scaler_output = _output_names(scaler)
        if model_names and scaler_output and model_names != scaler_output:
            raise AnswerError(
                "scaler_path",
                str(scaler_path),
                f"outputs features {scaler_output}, the model was fitted on "
                f"{model_names}; give the scaler that was fitted with this model",
            )
        scaler_names = _names(scaler)
        fitted_names = {"scaler_path": scaler_names}
        if scaler_names is None and model_names:
            if _keeps_names(scaler, model_names):
                # A scaler fitted on an array before a model fitted on named
                # columns, each its input's: the model's names name the features.
                fitted_names = {"model_path": model_names}
            elif all(names is None for names in declared_names.values()):
                raise AnswerError(
                    "feature_names",
                    "",
                    f"the scaler was fitted on a bare array, and the model's "
                    f"column names {model_names} name what the "
                    f"{type(scaler).__name__} puts out, which it does not say "
                    "are the features it takes, each kept in its column; give "
                    f"feature_names=name1,name2,... ({input_width} names)",
                )
    detector_type = type(detector).__name__
    between = " between 0 and 1" if detector_type == "IsolationForest" else ""
    if threshold is not None:
        problem = _threshold_problem(detector_type, threshold)
        if problem:
            raise AnswerError(
                "threshold",
                getattr(threshold, "typed", threshold),  # as the builder typed it
                f"{problem}; give a threshold{between}, or leave it empty for "
                "the model's own",
            )
        boundary = float(threshold)
    else:
        boundary = package.model_threshold(model)
        problem = _threshold_problem(detector_type, boundary)
        if problem:
            raise AnswerError(
                "model_path",
                str(model_path),
                f"its offset_ is {-boundary}, so its own threshold (-offset_) "
                f"would be {boundary}: {problem}; refit the model, or give a "
                f"threshold answer{between}",
            )
    names = resolve_feature_names(
        width, {**fitted_names, **declared_names}, sources.get("metadata_path")
    )
    contamination = getattr(detector, "contamination", None)
    facts = ModelFacts(
        model_type=describe(model),
        # A detector of its own kind may not have scikit-learn's get_params.
        model_parameters=json_safe(
            detector.get_params(deep=False) if hasattr(detector, "get_params") else {}
        ),
        feature_names=names,
        threshold=boundary,
        # The share of training rows beyond the model's own boundary: the
        # ratio at that threshold only.
        anomaly_ratio=float(contamination)
        if isinstance(contamination, float) and threshold is None
        else None,
        environment=build_environment(),
        detector_type=detector_type,
        model_class=type(model).__name__,
    )
    return facts


def _first_step(model: Any) -> Any | None:
    """The first step of a Pipeline, or None for any other model."""
    steps = getattr(model, "steps", None)
    return steps[0][1] if steps else None


def _same_fitted(first: Any, second: Any) -> bool:
    """Whether two transformers are of one class with equal fitted state."""
    state, other = vars(first), vars(second)
    if type(first) is not type(second) or state.keys() != other.keys():
        return False
    return all(_equal(state[name], other[name]) for name in state)


def _equal(value: Any, other: Any) -> bool:
    if type(value) is not type(other):
        return False
    if isinstance(value, np.ndarray):
        return (
            value.shape == other.shape
            and value.dtype == other.dtype
            and np.array_equal(value, other, equal_nan=value.dtype.kind in "fc")
        )
    try:
        return bool(value == other)
    except (TypeError, ValueError):  # an object whose == is not a yes or no
        return False


def _keeps_names(scaler: Any, names: list[str]) -> bool:
    """Whether ``scaler`` gives each output column its input column's name
    (a StandardScaler does; a PCA, or a FunctionTransformer that does not say,
    does not)."""
    try:
        out = scaler.get_feature_names_out(names)
    except Exception:  # none, or one that refuses these names
        return False
    return [str(name) for name in out] == names


def _output_names(scaler: Any) -> list[str] | None:
    """The names a scaler fitted on a DataFrame gives its output columns."""
    if _names(scaler) is None or not hasattr(scaler, "get_feature_names_out"):
        return None
    return [str(name) for name in scaler.get_feature_names_out()]


def _names(step: Any) -> list[str] | None:
    names = getattr(step, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]
