"""Start a package's serve.py on 127.0.0.1, POST one record, stop it.

Run it in the package's folder with the package's Python; the record is the
package's first self-test input, so the expected score is known. serve.py is
started with --port 0: it picks a free port itself and prints the address it
listens on, which is read from its output (no port picked here that another
program could take before serve.py binds it).
"""

import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

with open("deployment_manifest.json", encoding="utf-8") as stream:
    manifest = json.load(stream)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
server = subprocess.Popen(
    [sys.executable, "serve.py", "--host", "127.0.0.1", "--port", "0"],
    stdout=subprocess.PIPE,
    text=True,
    encoding="utf-8",
)
addresses: queue.Queue = queue.Queue()


def relay() -> None:
    """Pass serve.py's output on as it comes, all of it (so that the pipe
    never fills up), and the address of its startup line to ``addresses``;
    None when the output ends."""
    for line in server.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        found = re.match(r"Serving model \S+ on (http://\S+?)/ ", line)
        if found:
            addresses.put(found.group(1))
    addresses.put(None)


reader = threading.Thread(target=relay, daemon=True)
reader.start()
try:
    try:
        base = addresses.get(timeout=60)
    except queue.Empty:
        raise SystemExit("serve.py did not say where it listens in 60 s") from None
    if base is None:
        raise SystemExit(f"serve.py exited with status {server.wait()}")
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit(f"serve.py exited with status {server.returncode}")
        try:
            with opener.open(f"{base}/health", timeout=5) as response:
                health = json.load(response)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("serve.py did not answer /health in 60 s") from None
            time.sleep(0.2)
    assert health == {"status": "ok", "model_version": manifest["model_version"]}
    request = urllib.request.Request(
        f"{base}/predict",
        data=json.dumps({"features": manifest["self_test"]["inputs"][:1]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with opener.open(request, timeout=30) as response:
        result = json.load(response)
    expected = manifest["self_test"]["scores"][0]
    assert abs(result["scores"][0] - expected) <= 1e-9, (result, expected)
    print(f"POST /predict: {result}")
finally:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    reader.join(timeout=10)
