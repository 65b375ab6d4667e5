"""A build stopped midway (Ctrl-C, or cookiecutter killed) leaves nothing
new behind: no folder, no zip, no temporary file, and an earlier package
rendered over stays exactly as it was.

The builds here use a detector of the builder's own (found through
PYTHONPATH) that, the first time it scores, leaves a marker file and pauses,
so that the test knows the post-generation hook is midway when it stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    TEMPLATE_DIR,
    answers_for,
    builders_model,
    cookiecutter_command,
    run_cookiecutter,
    tree,
)

PAUSING_FOREST = """\
import os
import time
from pathlib import Path

from sklearn.ensemble import IsolationForest


class PausingForest(IsolationForest):
    def score_samples(self, X):
        marker = Path(os.environ["PAUSE_MARKER"])
        if not marker.exists():
            marker.touch()
            time.sleep(float(os.environ["PAUSE_SECONDS"]))
        return super().score_samples(X)
"""


def start_pausing_build(
    tmp_path: Path, output: Path, pause_seconds: float, *extra_args: str
) -> tuple[subprocess.Popen[str], Path]:
    """Start cookiecutter (in a process group of its own, as a terminal
    would) on the pausing detector; return it once its hook has paused."""
    env = builders_model(
        tmp_path,
        PAUSING_FOREST,
        "house_models.PausingForest(n_estimators=10, random_state=0).fit(X)",
    )
    marker = tmp_path / "paused"
    process = subprocess.Popen(
        cookiecutter_command(
            output,
            f"model_path={tmp_path / 'house.joblib'}",
            "feature_names=a,b,c",
            extra_args=extra_args,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={
            **os.environ,
            **env,
            "PAUSE_MARKER": str(marker),
            "PAUSE_SECONDS": str(pause_seconds),
        },
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the build never paused:\n{process.communicate()[0]}")
        time.sleep(0.05)
    return process, marker


@pytest.mark.parametrize("over_a_package", [False, True], ids=["new", "rebuild"])
def test_ctrl_c_midway_leaves_nothing_new(
    artifacts: tuple[Path, dict], tmp_path: Path, over_a_package: bool
) -> None:
    """Ctrl-C (SIGINT to cookiecutter, its hook and the validation run) while
    the hook scores: one ERROR line, a non-zero exit, and the output folder as
    it was before: empty, or holding the earlier package."""
    output = tmp_path / "out"
    output.mkdir()
    extra: tuple[str, ...] = ()
    if over_a_package:
        directory, samples = artifacts
        first = run_cookiecutter(
            output, *answers_for(samples["no_scaler"]), cwd=directory
        )
        assert first.returncode == 0, first.stderr
        extra = ("--overwrite-if-exists",)
    before = tree(output)
    process, _ = start_pausing_build(tmp_path, output, 60, *extra)
    os.killpg(process.pid, signal.SIGINT)
    # The hook and the validation run share cookiecutter's output pipe: it
    # closes when the last of them has exited.
    log = process.communicate(timeout=60)[0]
    assert process.returncode != 0
    assert "ERROR: the build was stopped by SIGINT; nothing was published" in log
    assert tree(output) == before


def test_killed_cookiecutter_leaves_nothing(tmp_path: Path) -> None:
    """cookiecutter killed alone (SIGTERM to it, not to its hook): the hook
    goes on, finds cookiecutter gone when the build ends (here: its
    validation fails, as the detector's module is not shipped), and removes
    the folder cookiecutter can no longer remove."""
    output = tmp_path / "out"
    process, _ = start_pausing_build(tmp_path, output, 2)
    process.send_signal(signal.SIGTERM)
    log = process.communicate(timeout=120)[0]
    assert process.returncode == -signal.SIGTERM
    assert "ERROR: the package failed its own validation" in log
    assert tree(output) == {}


def test_a_signal_already_ignored_stays_ignored() -> None:
    """Under nohup (SIGHUP ignored) a hangup does not stop the build; the
    other stop signals are turned into Interrupted."""
    code = (
        "import signal\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "from package_builder.stopping import _stop, raise_on_stop_signals\n"
        "raise_on_stop_signals()\n"
        "assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN\n"
        "assert signal.getsignal(signal.SIGTERM) is _stop\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=TEMPLATE_DIR / "hooks",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
