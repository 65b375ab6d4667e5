"""Stop a build cleanly: on Ctrl-C, SIGTERM or SIGHUP, or when cookiecutter,
which runs the hooks, has gone away.

Cookiecutter removes the folder it rendered when a hook fails, but not when
it is interrupted itself (Ctrl-C reaches every process in the terminal's
foreground group), nor when it is killed. So a stopped hook removes what it
wrote, and the folder too once cookiecutter has gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from .archive import discard_build, restore_previous

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
    a signal already ignored (SIGHUP under nohup) stays ignored."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)


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
    """Let nothing stop the clean-up once it has begun."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


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
    gone (the same Ctrl-C stops it), the folder is removed here.
    """
    ignore_stop_signals()
    signalled = stop is not None and stop.signum is not None
    if cookiecutter_gone(PARENT_EXIT_SECONDS if signalled else 0.0):
        discard_build(folder)
        with contextlib.suppress(OSError):  # an earlier build is back in it
            folder.rmdir()
    else:
        restore_previous(folder)


def remove_if_left_empty(folder: Path) -> None:
    """Remove ``folder`` if it is empty and cookiecutter has gone (else
    cookiecutter removes the folder it made itself)."""
    if not any(folder.iterdir()) and cookiecutter_gone(PARENT_EXIT_SECONDS):
        with contextlib.suppress(OSError):
            folder.rmdir()
