"""A build stopped midway (Ctrl-C, or cookiecutter killed) leaves nothing
new behind: no folder, no zip, no temporary file, and an earlier package
rendered over stays exactly as it was.

Most builds here use a detector of the builder's own (found through
PYTHONPATH) that, the first time it scores, leaves a marker file and pauses,
so that the test knows the post-generation hook is midway when it stops it.
Others stop or fail cookiecutter itself while it renders the files, between
the two hooks, where only the guard the pre-generation hook leaves watches.
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
    VERSION,
    answers_for,
    builders_model,
    cookiecutter_command,
    run_cookiecutter,
    template_copy,
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


def children_of(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines()
            )
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_cookiecutter_killed_while_its_hook_is_paused_publishes_nothing(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A build that would pass: its post-generation hook is paused (SIGSTOP)
    wherever it is, cookiecutter is killed, the hook goes on. Finding
    cookiecutter gone, it publishes nothing and removes the folder, whether
    it had got far or had barely started."""
    directory, samples = artifacts
    output = tmp_path / "out"
    process = subprocess.Popen(
        cookiecutter_command(output, *answers_for(samples["no_scaler"])),
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    folder = output / f"model_{VERSION}_deployment"
    deadline = time.monotonic() + 120
    hooks: list[int] = []
    # Rendered files mean the pre-generation hook is done: a child now is
    # the post-generation hook.
    while not hooks:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no post-generation hook seen:\n{process.communicate()[0]}")
        if (folder / "inference_example.py").exists():
            hooks = children_of(process.pid)
        time.sleep(0.01)
    (hook,) = hooks
    os.kill(hook, signal.SIGSTOP)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    os.kill(hook, signal.SIGCONT)
    log = process.communicate(timeout=120)[0]  # the hook holds the pipe open
    assert process.returncode == -signal.SIGTERM
    assert "abandoned: cookiecutter has stopped" in log
    assert "Package folder:" not in log
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


def render_over(
    artifacts: tuple[Path, dict], output: Path, over_a_package: bool
) -> tuple[str, ...]:
    """Build the no_scaler sample into ``output`` first if ``over_a_package``;
    return the extra arguments that render over it."""
    output.mkdir()
    if not over_a_package:
        return ()
    directory, samples = artifacts
    first = run_cookiecutter(output, *answers_for(samples["no_scaler"]), cwd=directory)
    assert first.returncode == 0, first.stderr
    return ("--overwrite-if-exists",)


def wait_for_the_guard(output: Path) -> None:
    """Wait until no guard watches a folder in ``output`` any more."""
    deadline = time.monotonic() + 30
    while any(output.glob(".*.guard")):
        assert time.monotonic() < deadline, "the guard never finished"
        time.sleep(0.05)


def test_cookiecutter_failing_between_the_hooks_puts_the_earlier_package_back(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A template file cookiecutter cannot render fails the rebuild after the
    pre-generation hook has moved the earlier package aside, and no
    post-generation hook runs: the guard puts the package back as it was."""
    template = template_copy(tmp_path)
    (template / "{{cookiecutter.package_name}}" / "broken.txt").write_text(
        "{{ cookiecutter.no_such_answer }}\n"
    )
    output = tmp_path / "out"
    extra = render_over(artifacts, output, over_a_package=True)
    before = tree(output)
    directory, samples = artifacts
    rendered = run_cookiecutter(
        output,
        *answers_for(samples["no_scaler"]),
        cwd=directory,
        template=template,
        extra_args=extra,
    )
    assert rendered.returncode != 0
    assert "Unable to create file 'broken.txt'" in rendered.stdout
    wait_for_the_guard(output)
    assert tree(output) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("over_a_package", [False, True], ids=["new", "rebuild"])
def test_ctrl_c_between_the_hooks_leaves_nothing_new(
    artifacts: tuple[Path, dict], tmp_path: Path, over_a_package: bool
) -> None:
    """Ctrl-C while cookiecutter renders the files (it waits on a named pipe
    in the template, so it is surely between the two hooks): no
    post-generation hook runs, and the guard leaves the output folder as it
    was: empty, or holding the earlier package."""
    template = template_copy(tmp_path)
    os.mkfifo(template / "{{cookiecutter.package_name}}" / "waits.txt")
    output = tmp_path / "out"
    extra = render_over(artifacts, output, over_a_package)
    before = tree(output)
    directory, samples = artifacts
    process = subprocess.Popen(
        cookiecutter_command(
            output,
            *answers_for(samples["no_scaler"]),
            template=template,
            extra_args=extra,
        ),
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(output.glob(".*.guard")):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no guard seen:\n{process.communicate()[0]}")
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGINT)
        log = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "Package folder:" not in log
    wait_for_the_guard(output)
    assert tree(output) == before


def test_a_token_left_by_a_killed_guard_blocks_the_next_render(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A guard's token left behind (everything killed with SIGKILL) refuses
    the next render over that folder, naming the token and the fix, and
    moves nothing."""
    output = tmp_path / "out"
    extra = render_over(artifacts, output, over_a_package=True)
    token = output / f".model_{VERSION}_deployment.guard"
    token.mkdir()
    before = tree(output)
    directory, samples = artifacts
    rendered = run_cookiecutter(
        output, *answers_for(samples["no_scaler"]), cwd=directory, extra_args=extra
    )
    assert rendered.returncode != 0
    assert (
        f"{token} was left by a build that was killed: remove it, then render again"
    ) in rendered.stderr
    assert tree(output) == before
