"""HTTP API service for this deployment package (the specification's Pattern 2).

    python serve.py [--host 127.0.0.1] [--port 5000] [--max-content-length BYTES]
                    [--read-timeout SECONDS]

Endpoints (every response body is JSON):

    POST /predict    {"features": [{...}, ...]} -> the ModelInference.predict result
    GET  /health     {"status": "ok", "model_version": "..."}
    GET  /metadata   metadata.json, feature names, threshold, inference_config
    OPTIONS  any     the Allow header's methods as JSON, in alphabetical order:
                     {"allow": ["OPTIONS", "POST"]} for /predict,
                     {"allow": ["GET", "HEAD", "OPTIONS"]} for /health, /metadata

Status codes of POST /predict: 200 scored; 400 bad request (not JSON, not an
object, no features, features not a list, a missing feature, a value that is
not a finite number, a body that cannot be read whole), with a message that
names the problem; 408 the body stopped arriving for --read-timeout seconds;
413 body larger than --max-content-length (default 10 MiB), chunked or not;
503 the call exceeded the package's timeout_seconds (send fewer records); 500
anything else.

The model is verified (every SHA-256 in the manifest, before anything is
unpickled) and loaded once, at startup: a package that fails the check makes
this script exit with status 1 and the name of the file, and serves nothing.

Stopping: on SIGTERM (docker stop, Kubernetes) the service refuses new
connections at once, answers every request it has started to receive, then
exits with status 0; a connection on which nothing has arrived yet is closed
unanswered, and one silent for --read-timeout seconds (default 10) is closed.
Ctrl+C (SIGINT), or a second SIGTERM while it finishes, stops it at once:
exit status 1 if requests were left unanswered (it says how many), 0 if none
were; 130 while it still starts.

``python serve.py`` runs Flask's built-in (Werkzeug) server. It is fine for
a single host behind a firewall; for production traffic run the same app
under a WSGI server, in this folder, for example:

    pip install gunicorn
    gunicorn -w 2 -b 127.0.0.1:5000 'serve:create_app()'

Everything model-specific is read from deployment_manifest.json, so this file
is the same in every package.
"""

import sys

# Run as a script, this folder is off sys.path from the first import on: a
# file here named like a library (json.py, joblib.py, pandas.py) must never
# stand in for it. The package loads its own files by their paths. For code
# that ran the script (runpy, IPython's %run), the entry goes back once the
# script has ended, also when a missing library stopped it. (sys is built
# in; os is loaded at start-up or frozen, never looked for on sys.path.)
if __name__ == "__main__":
    import os

    _FOLDER_ENTRY = None
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == os.path.dirname(
        os.path.realpath(__file__)
    ):
        _FOLDER_ENTRY = sys.path.pop(0)

    def _restore_import_path() -> None:
        """Give this folder's entry back to the code that ran the script."""
        if _FOLDER_ENTRY is not None:
            sys.path.insert(0, _FOLDER_ENTRY)


import argparse
import errno
import importlib.util
import json
import os
import signal
import socket
import threading
import uuid
from pathlib import Path
from typing import Any


def _stop_while_starting(signum: int, frame: Any) -> None:
    """Ctrl+C before the service serves: nothing to finish, so stop at once,
    in one line rather than the traceback of whichever import it broke."""
    sys.stderr.write("serve.py: stopped while starting; nothing was served\n")
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _stop_while_starting)  # _serve's, once serving

PACKAGE_DIR = Path(__file__).resolve().parent


def _validate_model() -> Any:
    """This folder's validate_model.py, loaded from its path (never a module
    of that name found first on sys.path), for its check of
    inference_example.py."""
    spec = importlib.util.spec_from_file_location(
        "_package_validate_model", PACKAGE_DIR / "validate_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_checker = _validate_model()
try:
    # This folder's inference_example.py, checked against the manifest
    # before it runs (validate_model.py's check): its bytes are what runs.
    _checker.run_as_module(*_checker.checked_module_source(PACKAGE_DIR))
    from flask import Flask, Response, jsonify, request
    from inference_example import (
        ModelInference,
        RepeatedKeyError,
        json_type,
        read_json,
    )
    from werkzeug.exceptions import (
        BadRequest,
        ClientDisconnected,
        HTTPException,
        RequestEntityTooLarge,
        RequestTimeout,
    )
    from werkzeug.serving import (
        BaseWSGIServer,
        WSGIRequestHandler,
        get_sockaddr,
        make_server,
        select_address_family,
    )
except _checker.ModuleRefused as refused:
    if __name__ == "__main__":
        _restore_import_path()
    fix = (
        _checker.NOT_READABLE_FIX
        if refused.problem.startswith("cannot be read")
        else "re-download the package and run validate_model.py"
    )
    raise SystemExit(
        f"serve.py: {refused.path.name}: {refused.problem}: {fix}"
    ) from None
except ImportError as error:  # flask, numpy, joblib or scikit-learn not installed
    if __name__ == "__main__":
        _restore_import_path()
    raise SystemExit(
        f"serve.py: {error}: run pip install -r requirements.txt"
    ) from None

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10
USAGE = 'send a JSON object {"features": [{"<feature name>": <number>, ...}, ...]}'


def _error(message: str, status: int, **extra: Any) -> tuple[Response, int]:
    return jsonify(error=message, **extra), status


def _read_body(limit: int) -> bytes:
    """The request body; RequestEntityTooLarge (413) when it is over ``limit``,
    RequestTimeout (408) when it stops arriving for the read timeout, and
    BadRequest (400) when it cannot be read whole (a broken chunked encoding,
    a client gone).

    Werkzeug refuses a Content-Length over the limit before reading. A chunked
    body has no Content-Length, and Werkzeug's stream for it stops at the limit
    without an error: the cut body would be parsed (and could even score). So
    such a body is read here, at most limit + 1 bytes, and refused past limit.
    """
    try:
        return _read_whole_body(limit)
    except (TimeoutError, ClientDisconnected):  # Werkzeug turns the one into
        raise RequestTimeout(  # the other when a Content-Length is not met
            "the request body stopped arriving before its end: send it whole"
        ) from None
    except OSError as error:  # Werkzeug's chunk decoding raises it too
        raise BadRequest(
            f"the request body could not be read ({error}): send it whole"
        ) from None


def _read_whole_body(limit: int) -> bytes:
    environ = request.environ
    if request.content_length is not None or not environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
    stream = environ["wsgi.input"]  # the server ends it after the last chunk
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge()
    return b"".join(chunks)


def create_app(*, max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH) -> Flask:
    """Verify and load this folder's package once; return the Flask app.

    Only this folder's: its inference_example.py, checked along the
    package's own chain, is the code that serves. ``max_content_length``:
    the largest request body taken, in bytes (a whole number, 1 or more).

    Raises ValueError for a bad ``max_content_length``, and whatever
    ModelInference raises when the package does not verify or load (an
    integrity error names the file), before any request is served.
    """
    if (
        not isinstance(max_content_length, int)
        or isinstance(max_content_length, bool)
        or max_content_length < 1
    ):
        raise ValueError(
            f"max_content_length={max_content_length!r}: give the largest "
            "request body to take, in bytes, a whole number of 1 or more"
        )
    inference = ModelInference(PACKAGE_DIR)  # checks every SHA-256, then unpickles
    manifest = inference.manifest
    version = manifest["model_version"]
    description = {
        "model_version": version,
        "package_format_version": manifest.get("package_format_version"),
        "feature_names": inference.feature_names,
        "feature_count": len(inference.feature_names),
        # The threshold in use; inference_config holds the one recorded at build.
        "threshold": inference.threshold,
        "inference_config": manifest.get("inference_config"),
        "metadata": inference.metadata,
    }

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_content_length
    app.config["MODEL_VERSION"] = version
    app.json.sort_keys = False  # keep metadata.json's order

    @app.after_request
    def tag_version(response: Response) -> Response:
        response.headers["X-Model-Version"] = version
        return response

    @app.after_request
    def options_as_json(response: Response) -> Response:
        # Flask lists a route's methods (Allow, of OPTIONS and 405) in the
        # order of a set, which changes from one run to the next: sorted, the
        # answer is always the same. And Flask answers OPTIONS itself, with an
        # empty text/html body: give the methods as JSON instead, like every
        # other answer.
        if response.allow:
            response.allow = sorted(response.allow)
        if request.method == "OPTIONS" and response.mimetype != "application/json":
            response.set_data(json.dumps({"allow": list(response.allow)}))
            response.content_type = "application/json"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        # 404, 405, 413...: JSON like every other answer, not Flask's HTML page;
        # the response keeps the exception's headers (Allow for a 405).
        message = error.description or error.name
        if error.code == 413:
            message = (
                f"request body is larger than {max_content_length} bytes: "
                "send fewer records per request"
            )
        response = error.get_response()
        response.set_data(json.dumps({"error": message}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> tuple[Response, int]:
        # The spec's example echoes str(error). Here the traceback goes to the
        # server log under an id and the client gets the id only: an unexpected
        # error's text can hold paths and library internals, and the caller
        # cannot fix it anyway. Expected errors (400, 503) keep their messages.
        error_id = uuid.uuid4().hex
        app.logger.exception(
            "error %s in %s %s", error_id, request.method, request.path
        )
        return _error("internal server error", 500, error_id=error_id)

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", model_version=version)

    @app.get("/metadata")
    def describe() -> Response:
        return jsonify(description)

    @app.post("/predict")
    def predict() -> Response | tuple[Response, int]:
        body = _read_body(max_content_length)
        try:
            data = read_json(body)
        except RepeatedKeyError as error:
            return _error(f"request body {error}: give each key once", 400)
        except (ValueError, RecursionError) as error:
            return _error(f"request body is not valid JSON ({error}): {USAGE}", 400)
        if not isinstance(data, dict):
            return _error(
                f"request body is {json_type(data)}, not a JSON object: {USAGE}", 400
            )
        features = data.get("features")
        if features is None or features == []:  # 0, "", {}: the type error below
            return _error("No features provided", 400)
        if not isinstance(features, list):
            hint = ": wrap one record in a list" if isinstance(features, dict) else ""
            return _error(
                f"features is {json_type(features)}, expected a list of records "
                f"(JSON objects){hint}",
                400,
            )
        try:
            return jsonify(inference.predict(features))
        except ValueError as error:  # a missing feature, a non-finite value...
            # A client learns the features from GET /metadata, not from Python.
            message = str(error).replace(
                "ModelInference.feature_names", "feature_names (GET /metadata)"
            )
            return _error(message, 400)
        except TimeoutError as error:  # too many records for timeout_seconds
            return _error(str(error), 503)

    return app


def _whole(text: str, low: int, high: float, meaning: str) -> int:
    """``text`` as a whole number from ``low`` to ``high``, or a usage error."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not {meaning}")
    return value


def _port(text: str) -> int:
    return _whole(text, 0, 65535, "a port number (0 to 65535)")


def _positive(text: str) -> int:
    return _whole(text, 1, float("inf"), "a positive whole number of bytes")


def _seconds(text: str) -> int:
    return _whole(text, 1, 86400, "a whole number of seconds from 1 to 86400")


def _host(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty address would listen on every interface: give one, "
            "127.0.0.1 (this machine) or 0.0.0.0 (every interface)"
        )
    return text


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` and listening; OSError if it cannot.

    Bound here, not by Werkzeug's server, whose bind error prints its own
    text and exits instead of raising.
    """
    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Werkzeug's
        sock.bind(get_sockaddr(host, port, family))
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_fix(error: OSError, port: int) -> str:
    """What to do when the service cannot listen, for ``error``."""
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return "set --host to 127.0.0.1, 0.0.0.0, or a name or address of this machine"
    if error.errno == errno.EADDRINUSE:
        return f"another program uses port {port}: stop it, or choose another --port"
    if error.errno == errno.EACCES:
        return "choose another --port (ports below 1024 need administrator rights)"
    return "choose another --host or --port"


class _Requests:
    """The requests being answered, so that SIGTERM can wait for them.

    A request counts from its first byte to the last byte of its answer. A
    connection on which nothing has arrived (yet) is not counted: it may stay
    idle for ever, and must not hold the service up when it stops.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._stopped = False

    def __len__(self) -> int:
        return self._count  # read without the lock: a signal may hold it

    def start(self) -> bool:
        """Count one more request; False once ``wait_for_all`` has returned."""
        with self._changed:
            if self._stopped:
                return False
            self._count += 1
            return True

    def end(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_for_all(self) -> None:
        """Wait until no request is being answered, then start no more."""
        with self._changed:
            self._changed.wait_for(lambda: self._count == 0)
            self._stopped = True


def _request_handler(
    requests: _Requests, read_timeout: float, version: str
) -> type[WSGIRequestHandler]:
    """Werkzeug's request handler, counting each request in ``requests``,
    closing a connection silent for ``read_timeout`` seconds, and answering
    the errors it finds itself in JSON, tagged with the model ``version``."""

    class RequestHandler(WSGIRequestHandler):
        timeout = read_timeout  # of each read and write on the connection

        def handle_one_request(self) -> None:
            # Wait for the request's first byte before counting it; b"" when
            # the client closes the connection without sending anything, or
            # a timeout when it stays silent (then it is closed).
            try:
                first = self.rfile.peek(1)
            except OSError:
                first = b""
            if not first or not requests.start():
                self.close_connection = True
                return
            try:
                super().handle_one_request()
            except TimeoutError:  # the request line or headers stopped coming
                self.close_connection = True
            finally:
                requests.end()

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            # Two lengths for one body: which one a proxy in front used is
            # a guess (RFC 9112 says to refuse it).
            lengths = {
                value.strip()
                for header in self.headers.get_all("Content-Length") or ()
                for value in header.split(",")
            }
            if len(lengths) > 1:
                self.send_error(400, "the request has conflicting Content-Length")
                return False
            return True

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            # A request the server cannot parse (a request line that is not
            # HTTP, too many headers...) never reaches the app: answer it in
            # JSON like the app does, not with the standard library's HTML.
            self.log_error("code %d, message %s", code, message)
            # Left at HTTP/0.9, which has no status line nor headers, when
            # the request line could not be read.
            self.request_version = self.protocol_version
            body = json.dumps({"error": message or self.responses[code][0]})
            data = body.encode("utf-8")
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Model-Version", version)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.command != "HEAD":
                self.wfile.write(data)

    return RequestHandler


class _StopNow(BaseException):
    """Raised by Ctrl+C, or a second SIGTERM: stop without waiting."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _say(text: str) -> None:
    """Print ``text`` on stdout; once its reader has gone (``| head -1``),
    print nothing more there, and go on serving: requests are logged on
    stderr."""
    try:
        print(text, flush=True)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nor at exit, when Python flushes
        os.close(devnull)


def _serve(server: BaseWSGIServer, requests: _Requests, started: str) -> int:
    """Print ``started`` and serve until SIGTERM, then answer the requests in
    progress; or until Ctrl+C or a second SIGTERM, which stop at once.
    Returns the exit status: 1 if requests were left unanswered, else 0."""
    sigterm = threading.Event()

    def shut_down_on_sigterm() -> None:
        # shutdown() waits for serve_forever(), which runs in the main thread:
        # it is called from this one. Not started in the signal handler, which
        # could interrupt the main thread while it holds a lock of threading.
        sigterm.wait()
        server.shutdown()

    def on_sigterm(signum: int, frame: Any) -> None:
        if sigterm.is_set():
            raise _StopNow
        sigterm.set()

    def on_sigint(signum: int, frame: Any) -> None:
        raise _StopNow

    threading.Thread(target=shut_down_on_sigterm, daemon=True).start()
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm),
        signal.SIGINT: signal.signal(signal.SIGINT, on_sigint),
    }
    try:
        _say(started)
        try:
            server.serve_forever()  # returns after shutdown()
        finally:
            server.server_close()  # stop listening: new connections are refused
        if len(requests):
            _say(
                "serve.py: SIGTERM: refusing new connections; answering the "
                f"{_plural(len(requests), 'request')} in progress, then stopping "
                "(Ctrl+C or SIGTERM again: stop at once)"
            )
        requests.wait_for_all()
    except _StopNow:
        if len(requests):
            print(
                "serve.py: stopped at once: "
                f"{_plural(len(requests), 'request')} not answered",
                file=sys.stderr,
                flush=True,
            )
            return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serve this package until stopped; return the exit status."""
    parser = argparse.ArgumentParser(
        description="Serve this model over HTTP with Flask's built-in server.",
        epilog="For production, run under a WSGI server in this folder, e.g. "
        "gunicorn -w 2 -b 127.0.0.1:5000 'serve:create_app()'",
    )
    parser.add_argument(
        "--host",
        type=_host,
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
        "0.0.0.0 listens on every interface, e.g. in a container)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--max-content-length",
        type=_positive,
        default=DEFAULT_MAX_CONTENT_LENGTH,
        metavar="BYTES",
        help="refuse request bodies larger than this with 413 "
        f"(default {DEFAULT_MAX_CONTENT_LENGTH}, 10 MiB)",
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=DEFAULT_READ_TIMEOUT,
        metavar="SECONDS",
        help="close a connection that sends nothing for this long, idle or "
        "halfway through a request (which gets 408 if its body stalls; "
        f"default {DEFAULT_READ_TIMEOUT})",
    )
    args = parser.parse_args(argv)
    try:
        app = create_app(max_content_length=args.max_content_length)
    except Exception as error:
        print(
            f"serve.py: not serving: {type(error).__name__}: {error}", file=sys.stderr
        )
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    try:
        listening = _listen(args.host, args.port)
    except OSError as error:
        print(
            f"serve.py: cannot listen on {host}:{args.port} "
            f"({error.strerror or error}): {_listen_fix(error, args.port)}",
            file=sys.stderr,
        )
        return 1
    requests = _Requests()
    with listening:  # the server listens on its own copy of the socket
        server = make_server(
            args.host,
            args.port,
            app,
            threaded=True,
            request_handler=_request_handler(
                requests, args.read_timeout, app.config["MODEL_VERSION"]
            ),
            fd=listening.fileno(),
        )
    started = (
        f"Serving model {app.config['MODEL_VERSION']} on "
        f"http://{host}:{server.port}/ with Flask's built-in server "
        "(for production, run it under a WSGI server: see the README). "
        "Stop with SIGTERM (after answering the requests in progress) "
        "or Ctrl+C (at once)."
    )
    return _serve(server, requests, started)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    finally:
        _restore_import_path()
