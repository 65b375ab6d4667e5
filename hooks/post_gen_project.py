"""Build the deployment package in the folder cookiecutter has just rendered.

Copies the artifacts in, writes metadata.json, deployment_manifest.json and
SHA256SUMS, runs the package's own validate_model.py and zips the folder
(see hooks/package_builder/build.py). On failure it prints one ``ERROR:``
line and exits 1; cookiecutter then removes the folder, and no zip is left.
Rendered over an earlier build, the earlier files come back. Stopped (Ctrl-C,
SIGTERM, or cookiecutter killed), it cleans up the same way, and removes the
folder itself once cookiecutter has gone (see package_builder/stopping.py).
"""

import signal

# First: hold the stop signals (package_builder.stopping.STOP_SIGNALS, not
# importable yet) back until main() handles them, so that Ctrl-C while this
# loads is cleaned up too, not a KeyboardInterrupt traceback. Only Python's
# own start-up, before this line, is left unguarded.
if hasattr(signal, "pthread_sigmask"):
    signal.pthread_sigmask(
        signal.SIG_BLOCK,
        [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)],
    )

import json
import os
import sys
import traceback
from pathlib import Path

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")
# Cookiecutter renders a hook in the template's folder, so this is the
# template's absolute path, also on --replay from another directory.
TEMPLATE_DIR = Path(*json.loads(r"""[{{ "." | abspath | tojson }}]"""))
# The cookiecutter process that rendered this hook and waits for it.
COOKIECUTTER_PID = int("{{ '' | process_id }}")


def main() -> int:
    sys.path.insert(0, str(TEMPLATE_DIR / "hooks"))
    from package_builder.answers import forget_rendered_hook
    from package_builder.stopping import (
        Interrupted,
        abandon,
        follow_cookiecutter,
        raise_on_stop_signals,
        take_over,
        watch_cookiecutter,
    )

    forget_rendered_hook(Path(__file__))
    follow_cookiecutter(COOKIECUTTER_PID)
    owner = False  # of the clean-up, once taken over from the guard
    try:
        try:  # the stop signals still held: not left halfway
            folder = Path.cwd()
            owner = take_over(folder)
        except FileNotFoundError:  # the guard has removed the folder
            pass
        raise_on_stop_signals()  # one that came meanwhile is raised here
        if not owner:  # the guard has cleaned up: cookiecutter ended first
            raise Interrupted(None)
        watch_cookiecutter()
        return build(folder)
    except Interrupted as stop:
        print(f"ERROR: the build was {stop}; nothing was published", file=sys.stderr)
        if owner:
            abandon(folder, stop)
        return stop.exit_code


def build(folder: Path) -> int:
    """Build the package in ``folder``; on failure, one ERROR line and 1."""
    from package_builder.answers import AnswerError, parse_answers
    from package_builder.archive import drop_previous, sidecar_path
    from package_builder.build import BuildError, build_package
    from package_builder.stopping import abandon

    try:
        answers = parse_answers(CONTEXT, TEMPLATE_DIR)
        zip_path = build_package(answers, folder)
    except (AnswerError, BuildError, OSError) as error:
        # An OSError of reading or writing the package is a BuildError that
        # says which (package_builder.build.writing); one left here comes
        # from starting its validation run (a process, a temporary file).
        reason = f"the build failed: {error}" if isinstance(error, OSError) else error
        print(f"ERROR: {reason}", file=sys.stderr)
        abandon(folder)
        return 1
    except Exception:
        traceback.print_exc()
        print(
            "ERROR: the build failed unexpectedly (the traceback above says "
            "where; please report it); nothing was published",
            file=sys.stderr,
        )
        abandon(folder)
        return 1
    drop_previous(folder)
    print(f"Package folder: {folder}")
    if zip_path is not None:
        print(f"Package zip:    {zip_path}")
        print(f"Zip SHA-256:    {sidecar_path(zip_path)}")
    return 0


def leave(code: int) -> None:
    """Exit at once: every file is written and closed, and Python's own shutdown,
    unloading the modules scikit-learn brings in, adds about 0.3 s to a render."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
