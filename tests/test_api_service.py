"""The optional API service: serve.py started for real, spoken to over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    VERSION,
    Rendered,
    builders_model,
    consumer_environment,
    copy_package,
    resign_package,
    run_cookiecutter,
    write_only_file,
)
from package_builder.build import load_package_module
from package_builder.demo import FEATURE_NAMES

TEMPLATE_SERVE = (
    Path(__file__).resolve().parents[1] / "{{cookiecutter.package_name}}" / "serve.py"
)
STARTUP_SECONDS = 60
MAX_CONTENT_LENGTH = 10 * 1024 * 1024
TOO_LARGE = (
    f"request body is larger than {MAX_CONTENT_LENGTH} bytes: "
    "send fewer records per request"
)
# serve.py's startup line, which names the address it listens on: with
# --port 0 the only way to learn the port it picked.
SERVING = re.compile(rb"Serving model \S+ on (http://\S+?)/ ")
# No proxy: the server is on this machine, whatever http_proxy says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int
    headers: Any
    body: Any


def call(
    url: str,
    data: bytes | Iterable[bytes] | None = None,
    method: str | None = None,
    content_type: str = "application/json",
    timeout: float = 30,
) -> Reply:
    """Send one HTTP request; return the status and the decoded JSON body.
    ``data`` as an iterable of pieces is sent chunked, without Content-Length;
    ``timeout``: seconds that any one wait for the server may last."""
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return Reply(response.status, response.headers, json.load(response))
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, json.load(error))


def post_json(url: str, payload: Any) -> Reply:
    return call(url, json.dumps(payload).encode())


def chunked(body: bytes, piece: int = 1 << 16) -> Iterator[bytes]:
    """``body`` in pieces: ``call`` sends it with Transfer-Encoding: chunked."""
    return (body[start : start + piece] for start in range(0, len(body), piece))


def start_server(
    package_dir: Path,
    log: Path,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    host: str | None = "127.0.0.1",
) -> subprocess.Popen:
    """Start ``python serve.py`` on ``host`` (None: its default) with --port 0
    (it picks a free port itself: no port picked here that another program
    could take first), its output going to ``log``."""
    command = [sys.executable, "serve.py", "--port", "0"]
    if host is not None:
        command += ["--host", host]
    with open(log, "wb") as stream:
        return subprocess.Popen(
            [*command, *options],
            cwd=package_dir,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_healthy(process: subprocess.Popen, log: Path) -> str:
    """Wait for serve.py's startup line in ``log``, then for /health to answer
    200 at the address it names; return that address (its base URL)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    base = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"serve.py exited with {process.returncode}:\n{log.read_text()}"
            )
        if base is None and (found := SERVING.search(log.read_bytes())):
            base = found.group(1).decode()
        if base is not None:
            try:
                if call(f"{base}/health").status == 200:
                    return base
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(
        f"serve.py did not answer /health in {STARTUP_SECONDS} s:\n{log.read_text()}"
    )


@pytest.fixture(scope="module")
def api_package(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The demo model packaged with include_api_service=yes."""
    rendered = run_cookiecutter(
        tmp_path_factory.mktemp("api"), "include_api_service=yes"
    )
    assert rendered.returncode == 0, rendered.stderr
    return rendered


@pytest.fixture(scope="module")
def inference(api_package: Rendered) -> Any:
    """The package's ModelInference, in this process."""
    module = load_package_module(api_package.package_dir)
    return module.ModelInference(api_package.package_dir)


@contextmanager
def serving(
    package_dir: Path,
    log: Path,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
) -> Iterator[str]:
    """Run ``python serve.py`` on 127.0.0.1 until the block ends; yield its URL.
    ``env``: variables to add to the environment; ``options``: more arguments."""
    process = start_server(package_dir, log, env, options)
    try:
        yield wait_until_healthy(process, log)
    finally:
        stop(process)
    if os.name == "posix":  # SIGTERM: serve.py closes its socket and exits 0
        assert process.returncode == 0, f"serve.py on SIGTERM:\n{log.read_text()}"


@pytest.fixture(scope="module")
def server(
    api_package: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``python serve.py`` running on 127.0.0.1; yields its base URL."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with serving(api_package.package_dir, log) as base:
        yield base


def test_predict_scores_equal_in_process(server: str, inference: Any) -> None:
    """POST /predict answers exactly what ModelInference.predict returns."""
    records = inference.manifest["self_test"]["inputs"]
    for batch in (records[:1], records):
        reply = post_json(f"{server}/predict", {"features": batch})
        assert reply.status == 200, reply.body
        assert reply.body == inference.predict(batch)
    assert reply.headers["X-Model-Version"] == inference.manifest["model_version"]
    assert 0 < reply.body["anomaly_count"] < len(records)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", ""]
)
def test_json_body_is_scored_whatever_its_content_type(
    server: str, inference: Any, content_type: str
) -> None:
    """The body is read as JSON whatever its Content-Type says, as the README
    says: `curl -d` without `-H` sends application/x-www-form-urlencoded."""
    records = inference.manifest["self_test"]["inputs"][:2]
    body = json.dumps({"features": records}).encode()
    reply = call(f"{server}/predict", body, content_type=content_type)
    assert reply.status == 200, reply.body
    assert reply.body == inference.predict(records)


@pytest.mark.parametrize(
    "payload",
    [{}, {"features": []}, {"features": None}, {"records": [{"a": 1}]}],
    ids=["no-key", "empty", "null", "other-key"],
)
def test_no_features_is_400(server: str, payload: dict) -> None:
    reply = post_json(f"{server}/predict", payload)
    assert (reply.status, reply.body) == (400, {"error": "No features provided"})


def test_missing_feature_is_400_naming_it(server: str, inference: Any) -> None:
    record = dict(inference.manifest["self_test"]["inputs"][0])
    name = inference.feature_names[3]
    del record[name]
    reply = post_json(f"{server}/predict", {"features": [record]})
    assert reply.status == 400
    assert reply.body["error"] == (
        f"Feature '{name}' not found in input (row 0): every record needs all "
        "features in feature_names (GET /metadata)"
    )


@pytest.mark.parametrize(
    "value", ["1e999", "-1e999", "NaN", "Infinity", "null", '"0.5"', "true"]
)
def test_non_finite_value_is_400_naming_the_feature(
    server: str, inference: Any, value: str
) -> None:
    """1e999 is valid JSON that parses to infinity; NaN and Infinity are
    Python's extensions; strings, null and booleans are no numbers either."""
    name = inference.feature_names[-1]
    record = dict(inference.manifest["self_test"]["inputs"][0])
    record[name] = "PLACEHOLDER"
    body = json.dumps({"features": [record]}).replace('"PLACEHOLDER"', value)
    reply = call(f"{server}/predict", body.encode())
    assert reply.status == 400
    assert f"Feature '{name}' in row 0 is " in reply.body["error"]
    assert "finite number" in reply.body["error"]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"not json", "application/json", "request body is not valid JSON"),
        (b"features=1", "application/x-www-form-urlencoded", "not valid JSON"),
        (b"", "application/json", "request body is not valid JSON"),
        (b'{"features": [', "application/json", "request body is not valid JSON"),
        (b"\xff\xfe\x00", "application/json", "request body is not valid JSON"),
        (b"[" * 100_000, "application/json", "request body is not valid JSON"),
        (b'[{"a": 1}]', "application/json", "request body is an array, not a JSON"),
        (b'"features"', "application/json", "request body is a string, not a JSON"),
    ],
    ids=["text", "form", "empty", "truncated", "bad-utf8", "deep", "array", "string"],
)
def test_body_not_a_json_object_is_400(
    server: str, body: bytes, content_type: str, message: str
) -> None:
    reply = call(f"{server}/predict", body, content_type=content_type)
    assert reply.status == 400
    assert message in reply.body["error"]
    assert '{"features": [' in reply.body["error"]


def test_a_key_given_twice_is_400_naming_it(server: str, inference: Any) -> None:
    """A body whose object gives a key twice (``features``, or a feature in a
    record): 400 naming the key, not a guess of which value was meant."""
    record = json.dumps(inference.manifest["self_test"]["inputs"][0])
    name = inference.feature_names[0]
    for body, key in (
        (f'{{"features": [{record}], "features": []}}', "features"),
        (f'{{"features": [{record[:-1]}, "{name}": 1e9}}]}}', name),
    ):
        reply = call(f"{server}/predict", body.encode())
        assert reply.status == 400, reply.body
        assert reply.body == {
            "error": f"request body gives the key '{key}' twice: give each key once"
        }


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"auth_failure_ratio": 0.1}, "features is an object, expected a list"),
        ("abc", "features is a string, expected a list"),
        (3, "features is a number, expected a list"),
        ({}, "features is an object, expected a list"),
        (0, "features is a number, expected a list"),
        ("", "features is a string, expected a list"),
        (False, "features is a boolean, expected a list"),
        ([[0.1, 0.2]], "row 0 is of type list, expected a dict"),
        (
            [{name: 0.1 for name in FEATURE_NAMES}, 5],
            "row 1 is of type int, expected a dict (a JSON object) of feature "
            "name -> number",
        ),
    ],
    ids=[
        "one-record",
        "string",
        "number",
        "empty-object",
        "zero",
        "empty-string",
        "false",
        "array-rows",
        "bad-row",
    ],
)
def test_features_not_a_list_of_records_is_400(
    server: str, features: Any, message: str
) -> None:
    reply = post_json(f"{server}/predict", {"features": features})
    assert reply.status == 400
    assert message in reply.body["error"]


def test_default_host_is_this_machine_only(
    api_package: Rendered, tmp_path: Path
) -> None:
    """Without --host, serve.py listens on 127.0.0.1, where only this machine
    can reach it."""
    log = tmp_path / "serve.log"
    process = start_server(api_package.package_dir, log, host=None)
    try:
        base = wait_until_healthy(process, log)
    finally:
        stop(process)
    assert base.startswith("http://127.0.0.1:"), base


def test_a_validate_model_elsewhere_on_the_path_is_not_what_checks(
    api_package: Rendered, tmp_path: Path
) -> None:
    """A validate_model.py on PYTHONPATH, which ``import`` would find before
    the package's own: serve.py checks with its folder's file and serves."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "validate_model.py").write_text(
        "print('SHADOW')\nraise SystemExit(3)\n", encoding="utf-8"
    )
    log = tmp_path / "serve.log"
    with serving(api_package.package_dir, log, env={"PYTHONPATH": str(shadow)}):
        pass
    assert "SHADOW" not in log.read_text()


def test_health(server: str) -> None:
    reply = call(f"{server}/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok", "model_version": VERSION}


def test_metadata(server: str, api_package: Rendered, inference: Any) -> None:
    """GET /metadata: metadata.json as packaged (ModelInference.metadata),
    plus what a caller needs."""
    reply = call(f"{server}/metadata")
    assert reply.status == 200
    metadata = json.loads((api_package.package_dir / "metadata.json").read_text())
    assert reply.body["metadata"] == metadata == inference.metadata
    assert list(reply.body["metadata"]) == list(metadata)  # order kept
    assert reply.body["model_version"] == VERSION
    assert reply.body["feature_names"] == inference.feature_names
    assert reply.body["feature_count"] == len(inference.feature_names)
    assert reply.body["threshold"] == inference.threshold
    assert reply.body["inference_config"] == inference.manifest["inference_config"]
    assert reply.body["package_format_version"] == "1.0"


def test_large_body_is_refused_with_413(server: str) -> None:
    """A body over 10 MiB is refused before it is parsed; the server goes on."""
    body = b'{"features": [' + b" " * MAX_CONTENT_LENGTH + b"]}"
    reply = call(f"{server}/predict", body)
    assert (reply.status, reply.body) == (413, {"error": TOO_LARGE})
    assert call(f"{server}/health").status == 200


@pytest.mark.parametrize("padding", [1, 3 * MAX_CONTENT_LENGTH], ids=["limit+1", "3x"])
@pytest.mark.parametrize("valid", [True, False], ids=["one-record", "not-json"])
def test_large_chunked_body_is_refused_with_413(
    server: str, inference: Any, valid: bool, padding: int
) -> None:
    """Chunked, without Content-Length, a body over the limit is refused
    too, not cut at the limit and parsed: not a 400 "Unterminated string"
    for a cut body, nor a 200 for a record followed by spaces."""
    record = json.dumps({"features": inference.manifest["self_test"]["inputs"][:1]})
    head = record.encode() if valid else b'{"features": ["'
    body = head + b" " * (MAX_CONTENT_LENGTH - len(head) + padding)
    reply = call(f"{server}/predict", chunked(body))
    assert (reply.status, reply.body) == (413, {"error": TOO_LARGE})
    assert call(f"{server}/health").status == 200


def test_chunked_body_up_to_the_limit_is_scored(server: str, inference: Any) -> None:
    """A chunked body of exactly --max-content-length bytes is read whole."""
    records = inference.manifest["self_test"]["inputs"][:2]
    body = json.dumps({"features": records}).encode()
    body += b" " * (MAX_CONTENT_LENGTH - len(body))
    reply = call(f"{server}/predict", chunked(body))
    assert reply.status == 200, reply.body
    assert reply.body == inference.predict(records)


@pytest.fixture(scope="module")
def limited_server(
    api_package: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``python serve.py --max-content-length 1000``; yields its base URL."""
    log = tmp_path_factory.mktemp("limited") / "serve.log"
    options = ("--max-content-length", "1000")
    with serving(api_package.package_dir, log, options=options) as base:
        yield base


@pytest.mark.parametrize("send", [bytes, chunked], ids=["content-length", "chunked"])
def test_max_content_length_option_sets_the_limit(
    limited_server: str, inference: Any, send: Any
) -> None:
    """--max-content-length 1000: a body of 1001 bytes is refused with 413
    naming 1000; one of exactly 1000 bytes (a record padded with spaces) is
    scored, with or without Content-Length."""
    records = inference.manifest["self_test"]["inputs"][:1]
    body = json.dumps({"features": records}).encode()
    assert len(body) < 1000
    body += b" " * (1000 - len(body))
    refused = call(f"{limited_server}/predict", send(body + b" "))
    assert (refused.status, refused.body) == (
        413,
        {
            "error": "request body is larger than 1000 bytes: "
            "send fewer records per request"
        },
    )
    scored = call(f"{limited_server}/predict", send(body))
    assert scored.status == 200, scored.body
    assert scored.body == inference.predict(records)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/predict", ["OPTIONS", "POST"]),
        ("/health", ["GET", "HEAD", "OPTIONS"]),
        ("/metadata", ["GET", "HEAD", "OPTIONS"]),
    ],
)
def test_options_answers_json(server: str, path: str, methods: list[str]) -> None:
    """OPTIONS: 200 with the Allow header, and the same methods as JSON, in
    alphabetical order (as the README shows them), not in the order of a set,
    which changes from one run of the service to the next."""
    reply = call(f"{server}{path}", method="OPTIONS")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body == {"allow": methods}
    assert reply.headers["Allow"] == ", ".join(methods)


def test_unknown_route_and_wrong_method_answer_json(server: str) -> None:
    assert call(f"{server}/nothing").status == 404
    reply = call(f"{server}/predict")
    assert reply.status == 405
    assert reply.headers["Allow"] == "OPTIONS, POST"
    assert "error" in reply.body


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/predict", b"{}", 400),
        ("POST", "/predict", b"not json", 400),
        ("GET", "/nothing", None, 404),
        ("GET", "/predict", None, 405),
        ("POST", "/predict", b" " * (MAX_CONTENT_LENGTH + 1), 413),
        ("POST", "/predict", chunked, 413),
        ("GET", "/health", None, 200),
        ("GET", "/metadata", None, 200),
        ("OPTIONS", "/predict", None, 200),
    ],
    ids=[
        "400-no-features",
        "400-not-json",
        "404",
        "405",
        "413",
        "413-chunked",
        "health",
        "metadata",
        "options",
    ],
)
def test_every_answer_carries_the_model_version(
    server: str, method: str, path: str, body: Any, status: int
) -> None:
    """The README: every answer carries X-Model-Version, errors included."""
    if body is chunked:
        body = chunked(b" " * (MAX_CONTENT_LENGTH + 1))
    reply = call(f"{server}{path}", body, method=method)
    assert reply.status == status, reply.body
    assert reply.headers["X-Model-Version"] == VERSION


def test_default_package_has_no_api_service(demo: Rendered) -> None:
    """include_api_service defaults to no: no serve.py, no flask, no entry."""
    package = demo.package_dir
    assert not (package / "serve.py").exists()
    assert "flask" not in (package / "requirements.txt").read_text().lower()
    manifest = json.loads((package / "deployment_manifest.json").read_text())
    assert "api_service" not in manifest["files"]
    assert "serve.py" not in manifest["file_integrity"]
    assert "serve.py" not in (package / "SHA256SUMS").read_text()
    with zipfile.ZipFile(demo.zip_path) as archive:
        assert not [n for n in archive.namelist() if n.endswith("serve.py")]


def test_api_package_lists_and_hashes_serve_py(api_package: Rendered) -> None:
    """With yes: serve.py as written in the template, in the manifest's files
    and file_integrity, in SHA256SUMS and the zip; flask in requirements.txt."""
    package = api_package.package_dir
    serve = package / "serve.py"
    assert serve.read_bytes() == TEMPLATE_SERVE.read_bytes()
    digest = hashlib.sha256(serve.read_bytes()).hexdigest()
    manifest = json.loads((package / "deployment_manifest.json").read_text())
    assert manifest["files"]["api_service"] == "serve.py"
    assert manifest["file_integrity"]["serve.py"] == digest
    assert f"{digest}  serve.py" in (package / "SHA256SUMS").read_text().splitlines()
    requirements = (package / "requirements.txt").read_text().splitlines()
    assert "flask>=3.0,<4" in requirements
    with zipfile.ZipFile(api_package.zip_path) as archive:
        assert f"{package.name}/serve.py" in archive.namelist()


class _WritesMarker:
    """Unpickling this object creates the file named by ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def start_serving(
    package: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run serve.py in ``package`` on a free local port until it exits: for a
    package or settings it must refuse at startup."""
    return subprocess.run(
        [sys.executable, "serve.py", "--host", "127.0.0.1", "--port", "0"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=env,
    )


@pytest.mark.parametrize(
    "name", ["model.joblib", "metadata.json", "inference_example.py"]
)
def test_tampered_package_is_not_served(
    api_package: Rendered, tmp_path: Path, name: str
) -> None:
    """serve.py exits 1 naming the changed file, without a traceback; no
    pickle code runs, and a cut inference_example.py is never run."""
    package = Path(
        shutil.copytree(
            api_package.package_dir, tmp_path / api_package.package_dir.name
        )
    )
    marker = tmp_path / "pickle-code-ran"
    if name == "model.joblib":
        (package / name).write_bytes(pickle.dumps(_WritesMarker(marker)))
    elif name == "inference_example.py":  # cut: running it is a SyntaxError
        text = (package / name).read_text()
        (package / name).write_text(text[: len(text) // 2])
    else:
        (package / name).write_text((package / name).read_text() + " ")
    result = start_serving(package)
    assert result.returncode == 1, result.stderr
    assert f"{name}: SHA-256 does not match the manifest" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Serving model" not in result.stdout
    assert not marker.exists()


@pytest.mark.skipif(
    write_only_file() is None, reason="no write-only /proc/sys file to stand for one"
)
def test_an_unreadable_module_is_named_with_the_read_access_fix(
    api_package: Rendered, tmp_path: Path
) -> None:
    """An inference_example.py this user cannot read (a link to a write-only
    sysctl, which root cannot read either): serve.py exits 1 naming it and
    saying to give read access, not to re-download."""
    package = copy_package(api_package.package_dir, tmp_path)
    module = package / "inference_example.py"
    module.unlink()
    module.symlink_to(write_only_file())
    result = start_serving(package)
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "serve.py: inference_example.py: cannot be read (Permission denied): give "
        "the user running this read access to the package's files, or re-download "
        "the package\n"
    )
    assert result.stdout == ""


def test_nox_validate_snippet_runs(api_package: Rendered) -> None:
    """tests/snippets/api_service.py, which `nox -s validate` runs in each
    package with serve.py, starts the service, scores a record and stops it."""
    snippet = Path(__file__).parent / "snippets" / "api_service.py"
    result = subprocess.run(
        [sys.executable, "-c", snippet.read_text(encoding="utf-8")],
        cwd=api_package.package_dir,
        capture_output=True,
        text=True,
        timeout=2 * STARTUP_SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nPOST /predict: {" in result.stdout


def test_environment_overrides_reach_the_service(
    api_package: Rendered, tmp_path: Path, inference: Any
) -> None:
    """MODEL_THRESHOLD shows in /metadata; a call over MODEL_TIMEOUT is 503."""
    env = {"MODEL_THRESHOLD": "0.25", "MODEL_TIMEOUT": "0.000001"}
    with serving(api_package.package_dir, tmp_path / "serve.log", env) as base:
        metadata = call(f"{base}/metadata").body
        assert metadata["threshold"] == 0.25
        assert metadata["inference_config"] == inference.manifest["inference_config"]
        records = inference.manifest["self_test"]["inputs"]
        reply = post_json(f"{base}/predict", {"features": records})
        assert reply.status == 503
        assert "predict exceeded timeout_seconds=1e-06" in reply.body["error"]


BROKEN_FOREST = """\
from sklearn.ensemble import IsolationForest


class BrokenForest(IsolationForest):
    def score_samples(self, X):
        raise RuntimeError("secret /srv/house/credentials.txt")
"""


def test_unexpected_error_is_500_with_an_id_only(
    api_package: Rendered, inference: Any, tmp_path: Path
) -> None:
    """A model that fails where nothing expects it (a detector of the
    builder's own, found through PYTHONPATH, whose score_samples raises):
    500 with {"error": "internal server error", "error_id": ...} and not the
    exception's text, which is in the service's log under that id; the
    service goes on."""
    width = len(inference.feature_names)
    env = builders_model(
        tmp_path,
        BROKEN_FOREST,
        "house_models.BrokenForest(n_estimators=5, random_state=0)"
        f".fit(numpy.random.default_rng(0).normal(size=(200, {width})))",
    )
    package = copy_package(api_package.package_dir, tmp_path / "copy")
    shutil.copyfile(tmp_path / "house.joblib", package / "model.joblib")
    resign_package(package)
    log = tmp_path / "serve.log"
    records = inference.manifest["self_test"]["inputs"][:2]
    with serving(package, log, env) as base:
        reply = post_json(f"{base}/predict", {"features": records})
        health = call(f"{base}/health")
    assert reply.status == 500, reply.body
    assert "secret" not in json.dumps(reply.body)
    error_id = reply.body.get("error_id")
    assert reply.body == {"error": "internal server error", "error_id": error_id}
    assert re.fullmatch("[0-9a-f]{32}", error_id), error_id
    assert reply.headers["X-Model-Version"] == VERSION
    assert health.status == 200
    output = log.read_text(encoding="utf-8")
    logged = output.index(f"error {error_id} in POST /predict")
    assert "RuntimeError: secret /srv/house/credentials.txt" in output[logged:]


PAUSING_FOREST = """\
import os
import time
from pathlib import Path

from sklearn.ensemble import IsolationForest


class PausingForest(IsolationForest):
    def score_samples(self, X):
        # With HOUSE_PAUSED set, the first call leaves that file, then waits
        # for the file that HOUSE_RESUME names before it scores.
        paused = os.environ.get("HOUSE_PAUSED")
        if paused and not os.path.exists(paused):
            Path(paused).touch()
            while not os.path.exists(os.environ["HOUSE_RESUME"]):
                time.sleep(0.01)
        return super().score_samples(X)
"""


@dataclass
class Pausing:
    """A package whose model pauses in its first scoring, what to send it
    and what that scores."""

    package: Path
    env: dict[str, str]
    records: list[dict[str, Any]]
    expected: dict[str, Any]


@pytest.fixture(scope="module")
def pausing(
    api_package: Rendered, inference: Any, tmp_path_factory: pytest.TempPathFactory
) -> Pausing:
    """The API package with a detector of the builder's own (PausingForest,
    found through PYTHONPATH) that pauses in its first scoring when
    HOUSE_PAUSED is set; the self-test records and their result, computed
    by ModelInference in a process of its own, without the pause."""
    folder = tmp_path_factory.mktemp("pausing")
    width = len(inference.feature_names)
    env = builders_model(
        folder,
        PAUSING_FOREST,
        "house_models.PausingForest(n_estimators=5, random_state=0)"
        f".fit(numpy.random.default_rng(0).normal(size=(200, {width})))",
    )
    package = copy_package(api_package.package_dir, folder / "copy")
    shutil.copyfile(folder / "house.joblib", package / "model.joblib")
    resign_package(package)
    records = inference.manifest["self_test"]["inputs"]
    (folder / "records.json").write_text(json.dumps(records), encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from inference_example import ModelInference; "
            "records = json.load(open(sys.argv[1])); "
            "json.dump(ModelInference().predict(records), open(sys.argv[2], 'w'))",
            str(folder / "records.json"),
            str(folder / "expected.json"),
        ],
        cwd=package,
        env={**os.environ, **env},
        check=True,
        timeout=2 * STARTUP_SECONDS,
    )
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    assert expected["total_samples"] == len(records)
    return Pausing(package, env, records, expected)


def wait_for(
    condition: Callable[[], bool], what: str, process: subprocess.Popen, log: Path
) -> None:
    """Check ``condition`` until it holds; fail, naming ``what`` was awaited,
    if serve.py exits first or it takes longer than STARTUP_SECONDS (a limit
    for a broken test, not a margin that decides the outcome)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(
                f"serve.py exited with {process.returncode} while waiting for "
                f"{what}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} in {STARTUP_SECONDS} s:\n{log.read_text()}")
        time.sleep(0.01)


def address(base: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(base)
    assert parts.hostname and parts.port, base
    return parts.hostname, parts.port


def refuses_connections(base: str) -> bool:
    """Whether a new connection to ``base`` is refused (nothing listens).
    One reset, made while the server closed its socket, is not an answer."""
    try:
        socket.create_connection(address(base), timeout=STARTUP_SECONDS).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        pass
    return False


@dataclass
class PausedRequest:
    process: subprocess.Popen
    base: str
    log: Path
    reply: Future[Reply]
    resume: Path


@contextmanager
def paused_request(pausing: Pausing, tmp_path: Path) -> Iterator[PausedRequest]:
    """Start serve.py for ``pausing``'s package and POST its records from
    another thread; yield once the model has paused in the middle of scoring
    them: the request is then being answered, and stays so until the file
    ``resume`` exists. The server is stopped at the end if it still runs."""
    paused, resume, log = tmp_path / "paused", tmp_path / "resume", tmp_path / "log"
    env = {
        **pausing.env,
        "HOUSE_PAUSED": str(paused),
        "HOUSE_RESUME": str(resume),
        "MODEL_TIMEOUT": "3600",  # however long the pause lasts
    }
    body = json.dumps({"features": pausing.records}).encode()
    process = start_server(pausing.package, log, env)
    executor = ThreadPoolExecutor(1)
    try:
        base = wait_until_healthy(process, log)
        reply = executor.submit(
            call, f"{base}/predict", body, timeout=10 * STARTUP_SECONDS
        )
        wait_for(paused.exists, "pause in scoring", process, log)
        assert not reply.done(), reply.result()
        yield PausedRequest(process, base, log, reply, resume)
    finally:
        resume.touch()
        stop(process)
        executor.shutdown()


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM stops a process at once")
def test_sigterm_answers_the_requests_in_progress_then_exits_0(
    pausing: Pausing, tmp_path: Path
) -> None:
    """SIGTERM (docker stop, Kubernetes) while a request is being answered:
    serve.py refuses new connections at once, still answers that request in
    full, every record scored, then exits 0. The model pauses in the middle
    of the request until the test has seen the service refuse connections:
    the signal is known to have arrived before the answer, whatever the
    timing. A connection the server accepted, on which nothing was sent,
    does not hold the stop up."""
    with paused_request(pausing, tmp_path) as run:
        idle = socket.create_connection(address(run.base), timeout=STARTUP_SECONDS)
        with idle:
            # Accepted in turn: a connection made after it is answered.
            assert call(f"{run.base}/health").status == 200
            run.process.send_signal(signal.SIGTERM)
            wait_for(
                lambda: refuses_connections(run.base),
                "refused connection after SIGTERM",
                run.process,
                run.log,
            )
            assert run.process.poll() is None, "exited with a request unanswered"
            assert not run.reply.done()
            run.resume.touch()
            reply = run.reply.result(timeout=10 * STARTUP_SECONDS)
            assert reply.status == 200, reply.body
            assert reply.body == pausing.expected
            assert reply.body["total_samples"] == len(pausing.records)
            assert len(reply.body["scores"]) == len(pausing.records)
            assert run.process.wait(timeout=STARTUP_SECONDS) == 0, run.log.read_text()
    output = run.log.read_text()
    # The paused request, and (on a busy machine) the /health request whose
    # thread has sent its answer but not yet ended.
    assert re.search(
        r"serve\.py: SIGTERM: refusing new connections; answering the [12] "
        r"requests? in progress",
        output,
    ), output
    assert "not answered" not in output


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM stops a process at once")
@pytest.mark.parametrize(
    "signals",
    [
        (signal.SIGINT,),
        (signal.SIGTERM, signal.SIGTERM),
        (signal.SIGTERM, signal.SIGINT),
    ],
    ids=["ctrl-c", "sigterm-twice", "sigterm-then-ctrl-c"],
)
def test_ctrl_c_or_a_second_sigterm_stops_at_once(
    pausing: Pausing, tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    """Ctrl+C (SIGINT), or a second signal while serve.py waits for the
    requests in progress after a SIGTERM, stops it at once: the request gets
    no answer, and serve.py says so and exits 1."""
    first, *then = signals
    with paused_request(pausing, tmp_path) as run:
        run.process.send_signal(first)
        if first == signal.SIGTERM:  # taken: serve.py waits for the request
            wait_for(
                lambda: refuses_connections(run.base),
                "refused connection after SIGTERM",
                run.process,
                run.log,
            )
        for number in then:
            run.process.send_signal(number)
        assert run.process.wait(timeout=STARTUP_SECONDS) == 1, run.log.read_text()
        with pytest.raises(OSError):
            run.reply.result(timeout=STARTUP_SECONDS)
    assert "serve.py: stopped at once: 1 request not answered" in run.log.read_text()


def test_create_app_as_a_wsgi_server_calls_it(api_package: Rendered) -> None:
    """``serve:create_app(...)``, as gunicorn calls it in the package folder:
    the app takes max_content_length by keyword, refuses one that is not a
    whole number of bytes naming it, and serves no other folder (a path as
    its first argument is a TypeError, not a body limit)."""
    code = (
        "import serve\n"
        "print(serve.create_app(max_content_length=5).config['MAX_CONTENT_LENGTH'])\n"
        "for bad in (0, 1.5, True):\n"
        "    try:\n"
        "        serve.create_app(max_content_length=bad)\n"
        "    except ValueError as error:\n"
        "        print(error)\n"
        "try:\n"
        "    serve.create_app('/srv/other-package')\n"
        "except TypeError:\n"
        "    print('TypeError')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=api_package.package_dir,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=consumer_environment(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    fix = "give the largest request body to take, in bytes, a whole number of 1 or more"
    assert result.stdout.splitlines() == [
        "5",
        f"max_content_length=0: {fix}",
        f"max_content_length=1.5: {fix}",
        f"max_content_length=True: {fix}",
        "TypeError",
    ]


def test_invalid_environment_is_not_served(
    api_package: Rendered, tmp_path: Path
) -> None:
    """A bad MODEL_THRESHOLD stops serve.py at startup, naming the variable."""
    result = start_serving(
        api_package.package_dir, env={**os.environ, "MODEL_THRESHOLD": "high"}
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "serve.py: not serving: ConfigurationError: MODEL_THRESHOLD='high' cannot "
        "be used: give a finite number"
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "abc", "argument --port: 'abc' is not a port number (0 to 65535)"),
        ("--port", "70000", "argument --port: '70000' is not a port number"),
        ("--port", "65536", "argument --port: '65536' is not a port number"),
        ("--port", "-1", "argument --port: '-1' is not a port number"),
        (
            "--max-content-length",
            "0",
            "argument --max-content-length: '0' is not a positive whole number",
        ),
        (
            "--read-timeout",
            "0",
            "argument --read-timeout: '0' is not a whole number of seconds",
        ),
        (
            "--read-timeout",
            "86401",
            "argument --read-timeout: '86401' is not a whole number of seconds",
        ),
        (
            "--host",
            "",
            "argument --host: an empty address would listen on every interface",
        ),
    ],
)
def test_bad_option_is_a_usage_error_naming_it(
    api_package: Rendered, option: str, value: str, message: str
) -> None:
    """A port, body limit or read timeout that is not a usable whole number,
    or an empty host (which would listen on every interface): exit 2 with
    argparse's usage line naming the option and the value."""
    result = subprocess.run(
        [sys.executable, "serve.py", option, value],
        cwd=api_package.package_dir,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("host", "fix"),
    [
        (
            "127.0.0.1",
            "another program uses port {port}: stop it, or choose another --port",
        ),
        ("nosuchhost.invalid", "set --host to 127.0.0.1, 0.0.0.0, or a name or"),
    ],
    ids=["port-in-use", "unknown-host"],
)
def test_cannot_listen_is_one_line_naming_host_and_port(
    api_package: Rendered, host: str, fix: str
) -> None:
    """A port in use or a host that does not resolve: exit 1 with one line
    that names the host, the port, the reason and the fix, not Werkzeug's."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "serve.py", "--host", host, "--port", str(port)],
            cwd=api_package.package_dir,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
        )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"serve.py: cannot listen on {host}:{port} ("), line
    assert fix.format(port=port) in line, line
    assert "Serving model" not in result.stdout


def raw_exchange(base: str, data: bytes) -> tuple[bytes, bytes]:
    """Send ``data`` as it is on a new connection, read until the server
    closes it; return the status line and the body (after the headers)."""
    with socket.create_connection(address(base), timeout=STARTUP_SECONDS) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(1 << 16):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (
            b"GET /health HTTP/9.9\r\n\r\n",
            505,
            "Invalid HTTP version (9.9)",
        ),
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
            b"\r\n\r\nzz\r\n",
            400,
            "the request body could not be read (Invalid chunk header): send it whole",
        ),
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Content-Length: 5\r\n\r\n{}",
            400,
            "the request has conflicting Content-Length",
        ),
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 5\r\n\r\n{}",
            400,
            "the request has conflicting Content-Length",
        ),
    ],
    ids=["http-version", "broken-chunk", "two-lengths", "two-lengths-in-one"],
)
def test_requests_the_server_cannot_parse_get_json_errors(
    server: str, request_bytes: bytes, status: int, error: str
) -> None:
    """A request Werkzeug or the standard library refuses before the app
    (an HTTP version it does not speak), a chunked body that breaks off, and
    two Content-Length headers that disagree (which a proxy may read the other
    way): a JSON error with the model version, not an HTML page, a 500, or a
    guess."""
    head, body = raw_exchange(server, request_bytes)
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) or head.startswith(
        f"HTTP/1.0 {status} ".encode()
    ), head
    assert f"X-Model-Version: {VERSION}".encode() in head
    assert json.loads(body) == {"error": error}


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM stops a process at once")
def test_a_stalled_client_is_dropped_and_does_not_hold_sigterm_up(
    api_package: Rendered, tmp_path: Path
) -> None:
    """A client that stops sending halfway through its body gets 408 after
    --read-timeout, and one that sent a single byte is closed: neither keeps
    a SIGTERM from ending the service with status 0."""
    log = tmp_path / "serve.log"
    process = start_server(
        api_package.package_dir, log, options=("--read-timeout", "2")
    )
    try:
        base = wait_until_healthy(process, log)
        with (
            socket.create_connection(address(base)) as stalled_body,
            socket.create_connection(address(base)) as one_byte,
        ):
            stalled_body.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"
            )
            one_byte.sendall(b"P")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=STARTUP_SECONDS) == 0, log.read_text()
            stalled_body.settimeout(STARTUP_SECONDS)
            head, _, body = stalled_body.recv(1 << 16).partition(b"\r\n\r\n")
    finally:
        stop(process)
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert json.loads(body) == {
        "error": "the request body stopped arriving before its end: send it whole"
    }


@pytest.mark.skipif(
    not Path("/proc/self/maps").is_file(), reason="reads /proc/<pid>/maps"
)
def test_ctrl_c_while_starting_is_one_line(api_package: Rendered) -> None:
    """Ctrl+C while serve.py still loads (numpy is being imported, the model
    not yet verified): one line, status 130, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--port", "0"],
        cwd=api_package.package_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + STARTUP_SECONDS
    while "numpy" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=STARTUP_SECONDS)
    assert (process.returncode, out) == (130, ""), err
    assert err == "serve.py: stopped while starting; nothing was served\n"


def test_a_reader_of_stdout_that_goes_away_does_not_stop_the_service(
    api_package: Rendered,
) -> None:
    """serve.py's stdout piped to a reader that has gone (``| head -1``
    before it started): it still serves, and SIGTERM still ends it with
    status 0, without a traceback."""
    with socket.socket() as probe:  # a port free a moment ago: stdout,
        probe.bind(("127.0.0.1", 0))  # where serve.py would name its own,
        port = probe.getsockname()[1]  # is gone
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port)],
        cwd=api_package.package_dir,
        stdout=write,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        healthy = False
        while not healthy and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                healthy = call(f"{base}/health").status == 200
            except OSError:
                time.sleep(0.05)
        assert healthy
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STARTUP_SECONDS) == 0
    finally:
        stop(process)
    assert b"Traceback" not in process.stderr.read()
