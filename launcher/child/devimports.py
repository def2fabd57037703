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

TRY_TIMEOUT = 60.0  # seconds for the throwaway fork to try the imports


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


def import_ahead(names: list[str], roots: Sequence[Path]) -> tuple[int, int]:
    """Import those of `names` that a throwaway fork imported cleanly, without pulling in
    anything from the project roots; (imported, failed here all the same)."""
    clean = _try_in_fork(names, roots)
    failed = 0
    for name in clean:
        try:
            importlib.import_module(name)
        except Exception:  # cannot happen if the fork saw right; counted, never fatal
            failed += 1
    return len(clean) - failed, failed


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
    clean = []
    for name in names:
        if name in sys.modules:
            clean.append(name)
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # a model, the app registry, a missing optional dependency ...
            continue
        new = set(sys.modules) - seen
        seen |= new
        if any(_under(getattr(sys.modules[n], "__file__", None) or "", roots) for n in new):
            continue  # it imports the project's own code: that stays out of the base
        clean.append(name)
    return [n for n in clean if n in sys.modules]
