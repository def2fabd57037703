"""Dev file watching (watchfiles): a Django-aware filter, changes handed to the supervisor."""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from launcher.plan.model import WatchSet

if TYPE_CHECKING:
    from watchfiles import Change


class WatchFilter:
    """(change, path) -> bool: included names, minus excluded names and directories, and never
    a file under `ignored` (the run dir: its state file is `*.json`, rewritten by the very reload
    it would set off, so a run dir inside the project reloaded dev forever)."""

    def __init__(self, watch_set: WatchSet, ignored: Iterable[Path] = ()) -> None:
        self.include = watch_set.include
        self.exclude = watch_set.exclude
        # As given and resolved: the watched root and the run dir may reach the same place
        # through different links.
        self.ignored = tuple(
            {str(form) for d in ignored for form in (Path(os.path.abspath(d)), d.resolve())}
        )

    def __call__(self, change: Change, path: str) -> bool:
        if any(path == d or path.startswith(d + os.sep) for d in self.ignored):
            return False
        parts = Path(path).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in self.exclude):
            return False
        return any(fnmatch.fnmatch(parts[-1], pattern) for pattern in self.include)


def start_watcher(
    watch_set: WatchSet, on_change: Callable[[list[str]], None], ignored: Iterable[Path] = ()
) -> None:
    """Watch in a daemon thread, for the supervisor's lifetime; nothing under `ignored`.

    No stop_event: watchfiles would call it every `step` (50 ms), a third of the watcher's idle
    CPU; the daemon thread ends with the process.
    """
    from watchfiles import watch  # dev only: prod supervisors never load it

    roots = [str(r) for r in watch_set.roots if r.exists()]

    def loop() -> None:
        for changes in watch(
            *roots,
            watch_filter=WatchFilter(watch_set, ignored),
            debounce=400,
            step=int(watch_set.delay * 1000) or 1,
            raise_interrupt=False,
            recursive=True,
        ):
            on_change(sorted(path for _, path in changes))

    threading.Thread(target=loop, name="watch", daemon=True).start()
