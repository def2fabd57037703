"""What the dev fork server's tiers imported, and what they may import ahead of the project.

The tiers tell the supervisor which project files they hold (a change to one of them must
rebuild that tier) and which files they looked for and did not find (creating one must too:
`try: from x import y / except ImportError` decided without it). The base tier imports ahead
the third-party modules a served project loaded, those that import cleanly before
`django.setup()`; a throwaway fork tries them first, so a module that fails half-way (it
defines a model, or reads the app registry) never leaves its half in the base.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from launcher.child.collector import paused

TRIES = 5  # throwaway forks at most, until the names they keep all import by themselves


def _under(path: str, roots: Sequence[Path]) -> bool:
    return any(path == str(r) or path.startswith(os.path.join(str(r), "")) for r in roots)


def project_files(roots: Sequence[Path]) -> list[str]:
    """The files under the project roots this process has imported."""
    files = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and _under(path, roots):
            files.append(str(Path(path).resolve()))
    return sorted(files)


def outside_modules(roots: Sequence[Path]) -> list[str]:
    """Names of the imported modules that live outside the project roots, in import order."""
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and not _under(path, roots) and not name.startswith("launcher."):
            names.append(name)
    return names


class MissingRecorder(importlib.abc.MetaPathFinder):
    """Last on `sys.meta_path`: asked only for names no finder found; notes where their file
    would be, so creating it rebuilds the tier that looked."""

    def __init__(self) -> None:
        self.wanted: list[tuple[str, tuple[str, ...] | None]] = []

    def install(self) -> MissingRecorder:
        sys.meta_path.append(self)
        return self

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.wanted.append((fullname, tuple(path) if path is not None else None))
        return None

    def paths(self, roots: Sequence[Path]) -> list[str]:
        """Under the roots: the files whose creation would have made a missing import work."""
        found = set()
        for fullname, path in self.wanted:
            last = fullname.rpartition(".")[2]
            dirs = path if path is not None else [p or os.getcwd() for p in sys.path]
            for d in dirs:
                for candidate in (Path(d) / f"{last}.py", Path(d) / last / "__init__.py"):
                    if _under(str(candidate), roots):
                        found.add(str(candidate.resolve()))
        return sorted(found)


def import_ahead(names: list[str], roots: Sequence[Path]) -> tuple[list[str], int]:
    """Import those of `names` that import cleanly here, in this order, without pulling in
    anything from the project roots; (the names imported, how many failed all the same).

    Throwaway forks try them until every one they keep imports by itself: a name may only
    have come in as part of a module that then failed (a model module), and fail alone.
    """
    clean = names
    for _ in range(TRIES):
        kept = _try_in_fork(clean, roots)
        if kept == clean:
            break
        clean = kept
    imported = []
    with paused():
        for name in clean:
            try:
                importlib.import_module(name)
            except Exception:  # the forks saw otherwise: counted, never fatal
                continue
            imported.append(name)
    return imported, len(clean) - len(imported)


def _try_in_fork(names: list[str], roots: Sequence[Path]) -> list[str]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the throwaway: its half-imported modules die with it
        os.close(read_fd)
        code = 0
        try:
            clean = _try_here(names, roots)
            with os.fdopen(write_fd, "w") as out:
                out.write("\n".join(clean))
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as result:
        text = result.read()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return [n for n in text.split("\n") if n]


def _try_here(names: list[str], roots: Sequence[Path]) -> list[str]:
    """Import each name; keep those that imported and brought no project module with them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what a failing import prints is not the served project's output
    os.dup2(devnull, 2)
    seen = set(sys.modules)
    tainted: set[str] = set()  # completed, but inside an import that failed: not trusted
    clean = []
    for name in names:
        if name in sys.modules:
            if name not in tainted:
                clean.append(name)
            continue
        try:
            with paused():
                importlib.import_module(name)
        except BaseException:  # a model, the app registry, a missing optional dependency ...
            new = set(sys.modules) - seen
            seen |= new
            tainted |= new
            continue
        new = set(sys.modules) - seen
        seen |= new
        if any(_under(getattr(sys.modules[n], "__file__", None) or "", roots) for n in new):
            tainted |= new
            continue  # it imports the project's own code: that stays out of the base
        clean.append(name)
    return [n for n in clean if n in sys.modules]
