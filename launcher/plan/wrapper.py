"""Where the `wrap:` command is found: the launcher's own environment first, then PATH.

`.venv/bin/launch` is often run without the virtualenv activated: `newrelic-admin` or
`opentelemetry-instrument`, installed beside the launcher, is then not on PATH, and the server
would fail with a traceback after the before_start steps. The interpreter's own `bin/` (its
directory as given, symlinks not followed: a venv's python is a symlink out of the venv) is
where `pip install` put the wrapper, so it is looked at first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wrapper:
    """The `wrap:` argv with its command resolved to a path, or why it cannot run."""

    argv: tuple[str, ...] = ()
    problem: str | None = None


def resolve_wrapper(
    wrap: tuple[str, ...], *, python: str, env: Mapping[str, str], cwd: Path
) -> Wrapper:
    """Find `wrap[0]` as the server's exec would, after looking in `python`'s directory."""
    if not wrap:
        return Wrapper()
    name, rest = wrap[0], wrap[1:]
    if "/" in name:  # a path: relative to the server's working directory, as Popen takes it
        path = cwd / name
        if _runnable(path):
            return Wrapper((name, *rest))
        why = "is not executable" if path.is_file() else "does not exist"
        return Wrapper(wrap, f"'{name}' {why} (looked at {path})")
    own = os.path.dirname(python)
    path_dirs = [d or "." for d in env.get("PATH", os.defpath).split(os.pathsep)]
    dirs = list(dict.fromkeys([own, *path_dirs] if own else path_dirs))
    unusable = None
    for directory in dirs:
        candidate = Path(directory) / name
        if _runnable(candidate):
            return Wrapper((str(candidate), *rest))
        if candidate.is_file() and unusable is None:
            unusable = candidate
    if unusable is not None:
        return Wrapper(wrap, f"'{unusable}' is not executable (chmod +x it, or give another path)")
    where = f"PATH: {os.pathsep.join(path_dirs)}"
    if own:
        where = f"{own} (the launcher's environment), then {where}"
    return Wrapper(
        wrap,
        f"command '{name}' not found in {where}; install it beside the launcher "
        "or give its path",
    )


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
