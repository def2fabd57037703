"""The base tier's import list, saved between runs of `launch dev`.

Learning which modules import cleanly before `django.setup()` costs throwaway forks after the
first server starts; until it is done, a model edit pays the third-party import again. So the
base saves what it learned in the run directory, and the next base of the same project,
interpreter and installed packages imports it straight away (tried in a throwaway fork first,
as a learned list is). The file is only a hint: one that is missing, unreadable, someone
else's, or made under another key is ignored, and learning goes on as without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
MAX_BYTES = 1 << 22  # a list of module names; anything bigger is not one of ours
PACKAGE_DIRS = ("site-packages", "dist-packages")


def key(roots: Sequence[Path], app: str) -> dict[str, Any]:
    """What the list holds for: the project, the interpreter, the installed packages (the
    mtimes of the package directories on sys.path: installing, upgrading or removing a
    package adds or removes entries there)."""
    packages = []
    for entry in sys.path:
        if Path(entry).name in PACKAGE_DIRS:
            with contextlib.suppress(OSError):
                packages.append([entry, os.stat(entry).st_mtime_ns])
    return {
        "format": FORMAT,
        "project": {
            "roots": [str(r) for r in roots],
            "settings": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
            "app": app,
        },
        "python": {"executable": sys.executable, "version": sys.version},
        "packages": packages,
    }


def load(path: Path, want: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """(the saved names, None), or (None, why they are not used); (None, None) if none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"it cannot be read ({exc.strerror or exc})"
    info = os.fstat(fd)  # before fdopen, which refuses a directory with an exception
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        return None, "it is not a file of this user's"
    with os.fdopen(fd, "rb") as fh:
        if stat.S_IMODE(info.st_mode) & 0o022:
            return None, "others may write it"
        try:
            saved = json.loads(fh.read(MAX_BYTES + 1))
            names = saved["modules"]
            valid = isinstance(names, list) and all(map(_module_name, names))
            got = saved["key"]
        except (OSError, ValueError, KeyError, TypeError):
            return None, "it is unreadable"
    if not valid or not isinstance(got, dict):
        return None, "it is unreadable"
    for part, why in (
        ("format", "it is of another format"),
        ("project", "it was made for another project"),
        ("python", "it was made by another interpreter"),
        ("packages", "the installed packages changed since"),
    ):
        if got.get(part) != want[part]:
            return None, why
    return names, None


def save(path: Path, saved_key: dict[str, Any], names: list[str]) -> bool:
    """Replace the file atomically, readable by the owner only; False if it cannot be."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"key": saved_key, "modules": names}, fh)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def _module_name(name: object) -> bool:
    """A name `importlib.import_module` takes (not all are identifiers: `_sysconfigdata_...`
    holds dashes)."""
    return (
        isinstance(name, str) and bool(name) and name.isprintable() and " " not in name
        and all(name.split("."))
    )
