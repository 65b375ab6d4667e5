"""Stop a build cleanly: on Ctrl-C, SIGTERM or SIGHUP, or when cookiecutter,
which runs the hooks, has gone away.

Cookiecutter removes the folder it rendered when a hook fails, but not when
it is interrupted itself (Ctrl-C reaches every process in the terminal's
foreground group), nor when it is killed. So a stopped hook removes what it
wrote, and the folder too once cookiecutter has gone.

Between the two hooks no hook runs: cookiecutter renders the files, and may
be stopped, or fail, while it does. So the pre-generation hook leaves a
guard behind, a process of its own that watches cookiecutter until the
post-generation hook takes the folder over (``take_over``). Should
cookiecutter end before that, the guard puts the earlier build back, or
removes the new folder. Exactly one of the two owns the clean-up: the one
that removes the guard's token folder (``.<name>.guard``, beside the
package folder).

The post-generation hook watches cookiecutter too (``watch_cookiecutter``):
once it has gone, the build stops within a moment, wherever it is, and
cleans up as a stop does; Python runs the stop between two bytecodes, so a
long call into C (unpickling a large model) delays it. Meanwhile it holds
a lock on the package folder, so that another render there is told to wait
for it (``archive.build_running``) rather than to put the earlier build
back by hand. A clean-up never empties a folder that is no longer the
build's: if the earlier build it set aside is gone, someone else has put
it back (``archive.discard_build``).

Each hook holds the stop signals back from its first line until their
handlers are in place (``raise_on_stop_signals``), so that a stop while it
loads is handled as any other, not a traceback. Python's own start-up,
before that first line, is the one moment left where Ctrl-C is a bare
KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from .archive import (
    discard_build,
    guard_token,
    hold_folder,
    previous_dir,
    restore_previous,
)

STOP_SIGNALS = [
    signal.SIGINT,
    signal.SIGTERM,
    *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []),
]
# The cookiecutter process that runs the hook: the hook's parent when this is
# imported, until the hook names it (follow_cookiecutter) as rendered into it;
# its parent may already have gone by the time the hook starts.
COOKIECUTTER = os.getppid()
# How long a stopped hook waits to see cookiecutter go (after Ctrl-C,
# cookiecutter waits 0.25 s for its hook, then exits).
PARENT_EXIT_SECONDS = 1.0
# How often the post-generation hook looks whether cookiecutter still runs,
# and the signal it then sends its main thread (where the system has one).
WATCH_SECONDS = 0.05
GONE_SIGNAL = getattr(signal, "SIGUSR1", None)
# Whether the post-generation hook found an earlier build set aside when it
# took the folder over (take_over), and its lock on the folder, held to the end.
SET_ASIDE = False
HOLD: int | None = None


class Interrupted(BaseException):
    """The build was stopped by ``signum``, or (None) cookiecutter has gone.

    A BaseException, as KeyboardInterrupt is, so that no ``except Exception``
    on the way takes it for a failed step.
    """

    def __init__(self, signum: int | None) -> None:
        self.signum = signum
        super().__init__(
            "abandoned: cookiecutter has stopped"
            if signum is None
            else f"stopped by {signal.Signals(signum).name}"
        )

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal (1 without one)."""
        return 1 if self.signum is None else 128 + self.signum


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def follow_cookiecutter(pid: int) -> None:
    """Take ``pid`` as the cookiecutter process whose hook this is."""
    global COOKIECUTTER
    COOKIECUTTER = pid


def raise_on_stop_signals() -> None:
    """Turn Ctrl-C, SIGTERM and SIGHUP into ``Interrupted`` in this process;
    a signal already ignored (SIGHUP under nohup) stays ignored.

    Then let them through: each hook blocks them as its first line, so that
    one that came while it loaded is raised here, once handled.
    """
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold stop signals back until the block ends, so that it is not left
    halfway (where the system can; elsewhere the block runs as it is)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def check_cookiecutter_running() -> None:
    """Raise ``Interrupted`` when cookiecutter has gone: nobody waits for the
    result any more, and nothing may be published behind its back."""
    if cookiecutter_gone():
        raise Interrupted(None)


def ignore_stop_signals() -> None:
    """Let nothing stop the clean-up once it has begun (nor the publishing:
    see ``check_before_publishing``)."""
    for signum in [*STOP_SIGNALS, *([GONE_SIGNAL] if GONE_SIGNAL else [])]:
        signal.signal(signum, signal.SIG_IGN)


def check_before_publishing() -> None:
    """Stop here if cookiecutter has gone; else let nothing stop the build
    any more: what follows publishes it, and cannot be taken back."""
    check_cookiecutter_running()
    ignore_stop_signals()


def watch_cookiecutter() -> None:
    """Stop the build (``Interrupted(None)`` in the main thread) within a
    moment of cookiecutter's end, wherever it is, not only before it
    publishes (``check_cookiecutter_running``): nobody waits for it any
    more, and its clean-up must not come after someone has started to
    repair the folder by hand. Where the system cannot signal a thread, the
    check before publishing has to do."""
    if GONE_SIGNAL is None or not hasattr(signal, "pthread_kill"):
        return
    signal.signal(GONE_SIGNAL, _gone)
    threading.Thread(
        target=_watch, args=(threading.main_thread().ident,), daemon=True
    ).start()


def _watch(main_thread: int) -> None:
    while not cookiecutter_gone():
        time.sleep(WATCH_SECONDS)
    # A signal, not a flag: it also ends the wait the main thread is in.
    signal.pthread_kill(main_thread, GONE_SIGNAL)


def _gone(signum: int, frame: FrameType | None) -> None:
    if cookiecutter_gone():  # not another process's SIGUSR1
        raise Interrupted(None)


def cookiecutter_gone(wait: float = 0.0) -> bool:
    """Whether cookiecutter has exited, waiting up to ``wait`` seconds for it."""
    deadline = time.monotonic() + wait
    while os.getppid() == COOKIECUTTER and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getppid() != COOKIECUTTER


def abandon(folder: Path, stop: Interrupted | None = None) -> None:
    """Undo a build in ``folder`` that failed, or was stopped by ``stop``.

    An earlier build set aside comes back. A new folder is left to
    cookiecutter, which removes it when a hook fails; once cookiecutter has
    gone (the same Ctrl-C stops it), the folder is removed here, unless the
    earlier build set aside is gone: then someone else has put it back, and
    the folder is theirs (``archive.discard_build``).
    """
    ignore_stop_signals()
    signalled = stop is not None and stop.signum is not None
    if cookiecutter_gone(PARENT_EXIT_SECONDS if signalled else 0.0):
        if discard_build(folder, SET_ASIDE):
            with contextlib.suppress(OSError):  # an earlier build is back in it
                folder.rmdir()
    else:
        restore_previous(folder)


def start_guard(folder: Path) -> None:
    """Leave a guard to watch ``folder`` until the post-generation hook takes
    it over (see the module's docstring). ``set_aside_previous`` has checked
    that no earlier guard's token is left."""
    token = guard_token(folder)
    token.mkdir()
    try:
        _start_guard(folder)
    except BaseException:
        token.rmdir()
        raise


def _start_guard(folder: Path) -> None:
    subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from package_builder.stopping import guard; "
            "guard(sys.argv[2], int(sys.argv[3]))",
            str(Path(__file__).resolve().parent.parent),
            str(folder),
            str(COOKIECUTTER),
        ],
        # Its own session: the terminal's Ctrl-C and hangup do not reach it,
        # and it holds none of cookiecutter's output open.
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def take_over(folder: Path) -> bool:
    """Take the clean-up of ``folder`` over from its guard. False when the
    guard has taken it: cookiecutter ended before this hook began.

    Notes whether an earlier build was set aside (for ``abandon``) and
    locks the folder until this process ends (see the module's docstring).
    """
    global SET_ASIDE, HOLD
    try:
        guard_token(folder).rmdir()
    except FileNotFoundError:
        return False
    SET_ASIDE = previous_dir(folder).is_dir()
    with contextlib.suppress(OSError):  # no lock: builds are not told apart
        HOLD = hold_folder(folder)
    return True


def guard(folder: str, cookiecutter: int) -> None:
    """Watch ``folder`` until its token is taken; should ``cookiecutter`` end
    first, take the token and undo the build (the guard process's work)."""
    folder_path = Path(folder)
    token = guard_token(folder_path)
    # Started as the pre-generation hook ends: what it set aside is there.
    set_aside = previous_dir(folder_path).is_dir()
    while token.is_dir():
        if _running(cookiecutter):
            time.sleep(0.05)
            continue
        if not take_over(folder_path):
            return
        if previous_dir(folder_path).is_dir():
            folder_path.mkdir(exist_ok=True)  # cookiecutter may have removed it
            restore_previous(folder_path)
        elif folder_path.is_dir() and discard_build(folder_path, set_aside):
            with contextlib.suppress(OSError):
                folder_path.rmdir()
        return


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (not gone, not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: kill(pid, 0) has to do
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def remove_if_left_empty(folder: Path) -> None:
    """Remove ``folder`` if it is empty and cookiecutter has gone (else
    cookiecutter removes the folder it made itself)."""
    if not any(folder.iterdir()) and cookiecutter_gone(PARENT_EXIT_SECONDS):
        with contextlib.suppress(OSError):
            folder.rmdir()
