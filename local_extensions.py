"""Jinja filters used by cookiecutter.json while the questions are answered.

Cookiecutter renders the questions in the directory it was started from, so
these filters see the builder's working directory.
"""

from __future__ import annotations

import os
import re

import jinja2
from cookiecutter.exceptions import FailedHookException
from cookiecutter.utils import simple_filter

# The rules of package_builder.answers (FOLDER_NAME, MAX_PACKAGE_NAME), which
# cookiecutter's own interpreter cannot import from here. Used with fullmatch
# (and anchored \A...\Z): "$" also matches before a final newline.
FOLDER_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")
MAX_PACKAGE_NAME = 200


@simple_filter
def abspath(value: str) -> str:
    """Return ``value`` as an absolute path (``~`` expanded); empty stays empty."""
    value = str(value).strip()
    if not value:
        return ""
    return os.path.abspath(os.path.expanduser(value))


@simple_filter
def process_id(value: str) -> int:
    """The id of the process that renders (cookiecutter's own, for a hook):
    the hooks check that it still runs before they publish anything."""
    return os.getpid()


@simple_filter
@jinja2.pass_context
def folder_name(context: jinja2.runtime.Context, value: str) -> str:
    """Return ``value`` if it is one safe folder name, else stop the run.

    Cookiecutter creates the package folder before the pre-generation hook
    runs, so a name with a path separator would leave folders behind (or
    outside the output directory) before any answer is checked. A default
    name spoilt by its version is the version's fault, and says so.
    """
    value = str(value)
    if not FOLDER_NAME.fullmatch(value) or ".." in value:
        version = str(context.get("cookiecutter", {}).get("version", ""))
        if value == f"model_{version}_deployment":
            raise FailedHookException(
                f"ERROR: version ({version!r}): use the UTC build time as "
                "YYYYMMDD_HHMMSS, e.g. 20241201_143022 (the package folder is "
                "named after it)"
            )
        raise FailedHookException(
            f"ERROR: package_name ({value!r}): must be one folder name made of "
            "ASCII letters, digits, '.', '_' and '-'; give one"
        )
    if len(value) > MAX_PACKAGE_NAME:
        raise FailedHookException(
            f"ERROR: package_name ({value[:40]!r}...): {len(value)} characters; "
            f"use at most {MAX_PACKAGE_NAME}, so that the zip and its files can be "
            "named after it"
        )
    return value
