"""Refuse bad answers before cookiecutter writes any package file.

Every answer is checked here, on cookiecutter's own interpreter, so that a
typo ends the run with one ``ERROR:`` line instead of a half-built package;
only what the model must tell (a threshold against its scores, the width of
its features...) waits for the post-generation hook, which loads it.
Last, an earlier build in the folder is moved aside, and a guard is left to
put it back should cookiecutter end before the post-generation hook takes
over (see package_builder/stopping.py).
"""

import signal

# First: hold the stop signals (package_builder.stopping.STOP_SIGNALS, not
# importable yet) back until main() handles them, so that Ctrl-C while this
# loads ends the run as any other stop does, not with a KeyboardInterrupt
# traceback and cookiecutter's new folder left behind. Only Python's own
# start-up, before this line, is left unguarded.
if hasattr(signal, "pthread_sigmask"):
    signal.pthread_sigmask(
        signal.SIG_BLOCK,
        [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)],
    )

import json
import sys
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
        follow_cookiecutter,
        ignore_stop_signals,
        raise_on_stop_signals,
        remove_if_left_empty,
    )

    forget_rendered_hook(Path(__file__))
    follow_cookiecutter(COOKIECUTTER_PID)
    folder = Path.cwd()
    guarded: list[bool] = []  # filled once the guard watches the folder
    try:
        raise_on_stop_signals()  # one that came while this loaded is raised here
        return check(folder, guarded)
    except Interrupted as stop:
        print(f"ERROR: the build was {stop} before it began", file=sys.stderr)
        ignore_stop_signals()
        if not guarded:  # else the guard cleans up once cookiecutter has gone
            remove_if_left_empty(folder)
        return stop.exit_code


def check(folder: Path, guarded: list[bool]) -> int:
    """Check every answer; move an earlier build in ``folder`` aside and
    leave the guard that puts it back should cookiecutter stop before the
    post-generation hook takes over (and say so in ``guarded``). On a bad
    answer, one ERROR line and 1."""
    from package_builder.answers import AnswerError, parse_answers
    from package_builder.archive import (
        restore_previous,
        set_aside_previous,
        sidecar_path,
    )
    from package_builder.build import BuildError, require_scikit_learn, zip_path_for
    from package_builder.documents import MANIFEST_FILE, read_given_metadata
    from package_builder.reference_data import (
        declared_feature_names,
        read_reference_data,
    )
    from package_builder.stopping import (
        check_cookiecutter_running,
        signals_held,
        start_guard,
    )

    try:
        answers = parse_answers(CONTEXT, TEMPLATE_DIR)
        given = (
            read_given_metadata(answers.metadata_file)
            if answers.metadata_file
            else None
        )
        if answers.reference_file:
            # Feature columns are checked here when the answers or the
            # metadata name them; otherwise after the model is loaded.
            names = declared_feature_names(answers.feature_names, given)
            read_reference_data(answers.reference_file, names, keep_values=False)
        require_scikit_learn()
        zip_path = zip_path_for(answers, folder)
        for stale in (zip_path, sidecar_path(zip_path)):
            if not answers.create_zip and stale.exists():
                raise AnswerError(
                    "create_zip",
                    "no",
                    f"{stale} from an earlier build would stay beside a package "
                    "it does not match: remove it, or answer yes to replace it",
                )
        inputs = {
            "model_path": answers.model_file,
            "scaler_path": answers.scaler_file,
            "metadata_path": answers.metadata_file,
            "reference_data_path": answers.reference_file,
        }
        for answer, path in inputs.items():
            if path is not None and path.resolve().is_relative_to(folder.resolve()):
                raise AnswerError(
                    answer,
                    str(path),
                    f"lies in {folder}, the package folder this build replaces; "
                    "copy it out of that folder first",
                )
        # Last: rendering again over an earlier build moves its files aside,
        # for the guard or the post-generation hook to put back should the
        # build stop or fail; not once cookiecutter has gone (no
        # post-generation hook would run), and not halfway (a stop waits for
        # the move and the guard's start to end).
        check_cookiecutter_running()
        with signals_held():
            try:
                set_aside_previous(folder, MANIFEST_FILE)
                start_guard(folder)
            except ValueError as error:
                raise AnswerError("package_name", folder.name, str(error)) from None
            except OSError as error:  # no guard: nothing may stay set aside
                restore_previous(folder)
                raise AnswerError(
                    "package_name",
                    folder.name,
                    f"the build cannot begin ({error}): make {folder} and "
                    f"{folder.parent} readable and writable, then render again",
                ) from None
            guarded.append(True)
    except (AnswerError, BuildError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
