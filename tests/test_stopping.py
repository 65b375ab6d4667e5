"""A build stopped midway (Ctrl-C, or cookiecutter killed) leaves nothing
new behind: no folder, no zip, no temporary file, and an earlier package
rendered over stays exactly as it was.

Most builds here use a detector of the builder's own (found through
PYTHONPATH) that, the first time it scores, leaves a marker file and pauses,
so that the test knows the post-generation hook is midway when it stops it.
Others stop or fail cookiecutter itself while it renders the files, between
the two hooks, where only the guard the pre-generation hook leaves watches.
Some run the hooks through a Python of the test's (``run_through``) that
does something first, or as the hook imports a module. A build over a
folder it cannot write, or on a full disk, is refused or fails in one line.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    TEMPLATE_DIR,
    VERSION,
    Rendered,
    answers_for,
    builders_model,
    cookiecutter_command,
    run_cookiecutter,
    template_copy,
    tree,
)

PACKAGE = f"model_{VERSION}_deployment"

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
            go_on = marker.with_name("go_on")
            deadline = time.monotonic() + float(os.environ["PAUSE_SECONDS"])
            while not go_on.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().score_samples(X)
"""


def start_pausing_build(
    tmp_path: Path, output: Path, pause_seconds: float, *extra_args: str
) -> tuple[subprocess.Popen[str], Path]:
    """Start cookiecutter (in a process group of its own, as a terminal
    would) on the pausing detector; return it once its hook has paused.
    The pause ends after ``pause_seconds``, or once a file named go_on
    appears beside the marker file."""
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
    process, _ = start_pausing_build(tmp_path, output, 600, *extra)
    os.killpg(process.pid, signal.SIGINT)
    # The hook and the validation run share cookiecutter's output pipe: it
    # closes when the last of them has exited. (Long before the pause ends,
    # however loaded the machine.)
    log = process.communicate(timeout=300)[0]
    assert process.returncode != 0
    assert "ERROR: the build was stopped by SIGINT; nothing was published" in log
    assert tree(output) == before


def end_group(process: subprocess.Popen[str]) -> None:
    """Kill what is left of ``process``'s group (a hook that outlived it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


@pytest.mark.parametrize(
    ("stop", "over_a_package"),
    [(signal.SIGTERM, False), (signal.SIGKILL, True)],
    ids=["terminated-new", "killed-rebuild"],
)
def test_killed_cookiecutter_stops_its_hook_at_once(
    artifacts: tuple[Path, dict],
    tmp_path: Path,
    stop: signal.Signals,
    over_a_package: bool,
) -> None:
    """cookiecutter killed alone (not its hook) while the hook is midway,
    paused for far longer than the test waits: the hook stops all the same,
    at once, says why, and leaves the output folder as it was: empty (it
    removes the folder cookiecutter can no longer remove), or holding the
    earlier package, put back before anyone could be told to do it by hand."""
    output = tmp_path / "out"
    extra = render_over(artifacts, output, over_a_package)
    before = tree(output)
    process, _ = start_pausing_build(tmp_path, output, 600, *extra)
    try:
        process.send_signal(stop)
        # The hook holds cookiecutter's output pipe: it closes as the hook ends.
        log = process.communicate(timeout=60)[0]
    finally:
        end_group(process)
    assert process.returncode == -stop
    assert log.splitlines() == [
        "ERROR: the build was abandoned: cookiecutter has stopped; nothing was "
        "published"
    ]
    assert tree(output) == before


def stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped (Linux /proc)."""
    states = [
        stat.read_text().rpartition(")")[2].split()[0]
        for stat in Path(f"/proc/{pid}/task").glob("*/stat")
    ]
    return bool(states) and all(state == "T" for state in states)


def freeze_killed_rebuild(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> tuple[subprocess.Popen[str], int, Path, dict[str, bytes | None]]:
    """Build the no_scaler sample into tmp_path/out, then rebuild over it:
    once the rebuild's post-generation hook has paused, freeze it (SIGSTOP)
    and kill cookiecutter (SIGKILL). Return cookiecutter, the hook's id, the
    output folder and what it held before the rebuild."""
    output = tmp_path / "out"
    extra = render_over(artifacts, output, over_a_package=True)
    before = tree(output)
    process, _ = start_pausing_build(tmp_path, output, 600, *extra)
    try:
        (hook,) = children_of(process.pid)
        os.kill(hook, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while not stopped(hook):  # every thread: SIGSTOP is not instant
            assert time.monotonic() < deadline, "the hook never stopped"
            time.sleep(0.01)
        process.kill()
        process.wait()
    except BaseException:
        end_group(process)
        raise
    return process, hook, output, before


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc"
)


@needs_proc
def test_a_render_while_a_killed_build_still_runs_is_told_to_wait(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """A render over a folder whose build still runs (cookiecutter killed,
    its hook not done yet: here frozen) is refused in one line that says so
    and to wait, not one that tells the builder to put the earlier build
    back by hand; it moves nothing, and the hook, let go on, puts the
    earlier package back."""
    process, hook, output, before = freeze_killed_rebuild(artifacts, tmp_path)
    try:
        during = tree(output)
        directory, samples = artifacts
        again = run_cookiecutter(
            output,
            *answers_for(samples["no_scaler"]),
            cwd=directory,
            extra_args=("--overwrite-if-exists",),
        )
        after = tree(output)
        (tmp_path / "go_on").touch()  # the build goes on, should it not stop
        os.kill(hook, signal.SIGCONT)
        log = process.communicate(timeout=60)[0]
    finally:
        end_group(process)
    folder = output / PACKAGE
    assert after == during
    assert again.returncode != 0
    assert again.stderr.splitlines() == [
        f"ERROR: package_name ({PACKAGE!r}): another build still runs in {folder} "
        "(if its cookiecutter was stopped, it is putting the folder back): wait "
        "for it to end, then render again"
    ]
    assert "abandoned: cookiecutter has stopped" in log
    assert tree(output) == before


def put_back_by_hand(output: Path) -> None:
    """Put an interrupted rebuild's set-aside package back in ``output`` as a
    builder would: the rebuild's files out of the folder, the set-aside ones
    in, the hidden folder removed."""
    folder = output / PACKAGE
    kept = output / f".{PACKAGE}.previous"
    for entry in folder.iterdir():
        entry.unlink()
    for entry in kept.iterdir():
        entry.rename(folder / entry.name)
    kept.rmdir()


@needs_proc
def test_an_earlier_package_put_back_by_hand_is_left_alone(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """The builder puts the earlier package back by hand (the rebuild's files
    out, the set-aside ones in, the hidden folder removed) while the
    rebuild's hook, whose cookiecutter was killed, is frozen. Let go on, the
    hook stops and cleans up, but leaves the folder alone: it is no longer
    the build's, and the earlier package stays."""
    process, hook, output, before = freeze_killed_rebuild(artifacts, tmp_path)
    try:
        put_back_by_hand(output)
        assert tree(output) == before
        os.kill(hook, signal.SIGCONT)
        # A hook that stops says so first. One that does not (it watched
        # cookiecutter only before publishing) is let go on after a while,
        # to see what its clean-up does then.
        if not select.select([process.stdout], [], [], 60)[0]:
            (tmp_path / "go_on").touch()
        log = process.communicate(timeout=60)[0]
    finally:
        end_group(process)
    assert log.startswith("ERROR: ")
    assert tree(output) == before


@needs_proc
def test_the_fix_for_a_killed_rebuild_works_as_its_refusal_says(
    artifacts: tuple[Path, dict], tmp_path: Path
) -> None:
    """Everything killed midway through a rebuild (cookiecutter, its hook and
    the validation run: SIGKILL): the next render is refused, naming the
    set-aside files and how to put them back; done as it says, the earlier
    package is back as it was, and the render after that builds."""
    process, hook, output, before = freeze_killed_rebuild(artifacts, tmp_path)
    os.kill(hook, signal.SIGKILL)
    end_group(process)
    folder = output / PACKAGE
    kept = output / f".{PACKAGE}.previous"
    directory, samples = artifacts
    answers = answers_for(samples["no_scaler"])
    extra = ("--overwrite-if-exists",)
    deadline = time.monotonic() + 30
    while True:  # the killed hook's lock goes with its last process
        refused = run_cookiecutter(output, *answers, cwd=directory, extra_args=extra)
        if "another build still runs" not in refused.stderr:
            break
        assert time.monotonic() < deadline, refused.stderr
        time.sleep(0.2)
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[0] == (
        f"ERROR: package_name ({PACKAGE!r}): {kept} holds the files of an "
        f"earlier build that was interrupted: to put them back, empty {folder} "
        "(the interrupted build's own files), move them into it and remove "
        f".{PACKAGE}.previous; to drop them, remove .{PACKAGE}.previous"
    )
    put_back_by_hand(output)
    assert tree(output) == before
    again = run_cookiecutter(output, *answers, cwd=directory, extra_args=extra)
    assert again.returncode == 0, again.stderr
    assert tree(output) == before  # the same answers build the same files


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


# The Python that cookiecutter runs its hooks with in ``run_through``: it
# does what HOOK_CODE says before the hook numbered HOOK_NUMBER (1: the
# pre-generation hook, 2: the post-generation hook) runs, then runs it.
HOOK_RUNNER = """\
import os
import runpy
import sys
from pathlib import Path

runs = Path(os.environ["HOOK_RUNS"])
with runs.open("a") as stream:
    stream.write("hook\\n")
if len(runs.read_text().splitlines()) == int(os.environ["HOOK_NUMBER"]):
    exec(os.environ["HOOK_CODE"])
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# Runs cookiecutter with its first argument as the Python of its hooks.
COOKIECUTTER_WITH_HOOK_PYTHON = (
    "import runpy, sys; sys.executable = sys.argv.pop(1); "
    "runpy.run_module('cookiecutter', run_name='__main__', alter_sys=True)"
)


def run_through(
    tmp_path: Path,
    hook_number: int,
    hook_code: str,
    output: Path,
    *answers: str,
) -> Rendered:
    """Render into ``output`` as run_cookiecutter does, the hook numbered
    ``hook_number`` run after ``hook_code`` (see HOOK_RUNNER)."""
    runner = tmp_path / "hook_runner.py"
    runner.write_text(HOOK_RUNNER)
    python = tmp_path / "hook-python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{runner}" "$@"\n')
    python.chmod(0o755)
    command = cookiecutter_command(output, *answers)
    assert command[:3] == [sys.executable, "-m", "cookiecutter"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            COOKIECUTTER_WITH_HOOK_PYTHON,
            str(python),
            *command[3:],
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "HOOK_RUNS": str(tmp_path / "hook_runs"),
            "HOOK_NUMBER": str(hook_number),
            "HOOK_CODE": hook_code,
        },
    )
    return Rendered(
        result.returncode,
        result.stdout,
        result.stderr,
        output,
        output / PACKAGE,
        output / f"{PACKAGE}.zip",
    )


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX only")
@pytest.mark.parametrize("module", ["json", "package_builder"])
@pytest.mark.parametrize(
    ("hook_number", "line"),
    [
        (1, "ERROR: the build was stopped by SIGINT before it began"),
        (2, "ERROR: the build was stopped by SIGINT; nothing was published"),
    ],
    ids=["pre_gen", "post_gen"],
)
def test_ctrl_c_while_a_hook_loads_is_a_stop_like_any_other(
    tmp_path: Path, hook_number: int, line: str, module: str
) -> None:
    """Ctrl-C that reaches a hook in its first milliseconds, as it imports
    ``module`` (here: sent by the hook to itself from an audit hook, so that
    it lands right there every time), is handled as a stop: its one ERROR
    line, no KeyboardInterrupt traceback, and no folder left behind."""
    output = tmp_path / "out"
    code = (
        "import signal, sys\n"
        "def stop_at(event, args, sent=[]):\n"
        f"    if event == 'import' and args[0] == {module!r} and not sent:\n"
        "        sent.append(True)\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.addaudithook(stop_at)\n"
    )
    rendered = run_through(tmp_path, hook_number, code, output)
    assert rendered.returncode != 0
    assert rendered.stderr.splitlines() == [line]
    wait_for_the_guard(output)
    assert tree(output) == {}


def without_dac_override(command: list[str]) -> list[str]:
    """``command`` run so that file permissions hold: as it is, or, for root,
    without the powers that override them (setpriv)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("root overrides file permissions, and setpriv is missing")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]


@pytest.mark.parametrize("read_only", ["package folder", "output folder", "cache"])
def test_an_earlier_package_that_cannot_be_moved_aside_is_refused(
    artifacts: tuple[Path, dict], tmp_path: Path, read_only: str
) -> None:
    """Rendering again over an earlier package that cannot be moved aside (its
    folder, the output folder where it would be set aside, or a byte-code
    cache inside it, read-only) is refused in one line naming the folder and
    the fix; nothing is moved (what was, is moved back) and no hidden folder
    is left to block the next render."""
    output = tmp_path / "out"
    extra = render_over(artifacts, output, over_a_package=True)
    folder = output / PACKAGE
    cache = folder / "__pycache__"
    cache.mkdir()
    (cache / "inference_example.cpython-311.pyc").write_bytes(b"cached")
    blocked = {"package folder": folder, "output folder": output, "cache": cache}
    before = tree(output)
    directory, samples = artifacts
    command = cookiecutter_command(
        output, *answers_for(samples["no_scaler"]), extra_args=extra
    )
    blocked[read_only].chmod(0o555)
    try:
        result = subprocess.run(
            without_dac_override(command),
            cwd=directory,
            capture_output=True,
            text=True,
        )
    finally:
        blocked[read_only].chmod(0o755)
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"ERROR: package_name ({PACKAGE!r}): the earlier build in {folder} cannot "
        "be set aside"
    )
    if read_only == "output folder":
        assert line.endswith(
            f"(Permission denied): make {output} writable, then render again"
        )
    else:
        assert line.endswith(
            f"): make {folder} and what it holds writable (chmod -R u+w), then "
            "render again"
        )
    assert tree(output) == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount a disk of a given size (a tmpfs: root only, else the test is
    skipped); unmounted at the end."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        if shutil.which("mount") is None:
            pytest.skip("no mount command here")
        disk = tmp_path / "disk"
        disk.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"no small disk can be mounted here: {result.stderr}")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def pages(path: Path) -> int:
    """The bytes a tmpfs takes for the file ``path``: whole pages."""
    return math.ceil(path.stat().st_size / 4096) * 4096


@pytest.mark.parametrize("full_at", ["package", "zip"])
def test_a_full_disk_is_named_with_the_fix(
    artifacts: tuple[Path, dict],
    tmp_path: Path,
    small_disk: Callable[[int], Path],
    full_at: str,
) -> None:
    """A disk that fills up as the model is copied into the package folder,
    or as the zip is written beside it: one ERROR line that names the folder
    written and the fix, and nothing left on the disk."""
    directory, samples = artifacts
    answers = answers_for(samples["no_scaler"])
    rendered_files = (TEMPLATE_DIR / "{{cookiecutter.package_name}}").iterdir()
    rendered = sum(pages(path) for path in rendered_files)
    model = pages(directory / samples["no_scaler"]["model_path"])
    if full_at == "package":
        # Room for what cookiecutter renders, not for the model too.
        size = rendered + model // 2
    else:
        # Room for the package, and half the zip.
        built = run_cookiecutter(tmp_path / "built", *answers, cwd=directory)
        assert built.returncode == 0, built.stderr
        package = sum(pages(path) for path in built.package_dir.iterdir())
        size = max(package, rendered + model) + pages(built.zip_path) // 2
    disk = small_disk(size)
    result = run_cookiecutter(disk, *answers, cwd=directory)
    where = disk / PACKAGE if full_at == "package" else disk
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"ERROR: the {full_at} could not be written in {where} (No space left "
        "on device [Errno 28]): free space on the disk that holds it, or render "
        "the package elsewhere with --output-dir"
    ]
    wait_for_the_guard(disk)
    assert tree(disk) == {}


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs /proc")
def test_an_input_that_fails_as_it_is_read_is_named(tmp_path: Path) -> None:
    """A model file that opens but fails as it is read (an I/O error; here
    /proc/self/mem, whose first page is never mapped), after the answers were
    checked: one ERROR line that names the file as read, not as written."""
    rendered = run_cookiecutter(
        tmp_path / "out", "model_path=/proc/self/mem", "feature_names=a,b,c"
    )
    assert rendered.returncode != 0
    assert rendered.stderr.splitlines() == [
        "ERROR: /proc/self/mem could not be read (Input/output error [Errno 5]): "
        "check that it is there and readable, then render again"
    ]
    wait_for_the_guard(tmp_path / "out")
    assert tree(tmp_path / "out") == {}
