"""The plan of the last start, kept in the run dir, so a start need not wait for the planner.

Making a plan costs an interpreter and the profile's parsers, a quarter of a second spent
before anything imports the project. The plan a start used is saved (owner-only, beside the
control socket), keyed by what `launch` was asked (profile, overrides, directory, interpreter)
and by the plan layer's own files. The next start of the same profile starts its server from
the saved plan at once, while the planner reads the profile again. The server only imports
until the planner has answered: it is given no order before then (launcher/run/warmstart.py),
so nothing is served and no step runs from a plan that is not the profile's current one. An
answer that differs ends that server and starts again from the new plan; a bad profile is its
one line, as it is without a saved plan, and the saved plan is forgotten.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import launcher
from launcher.errors import LauncherError
from launcher.plan.model import LaunchPlan
from launcher.run import control
from launcher.run.planner import Pending, Planner
from launcher.run.signals import StartupSignals
from launcher.run.warmserver import applies

PLAN_LAYER = Path(launcher.__file__).parent / "plan"


class Replanned(Exception):
    """The profile reads differently now than at the last start: start again from `plan`."""

    def __init__(self, plan: LaunchPlan) -> None:
        super().__init__(plan.name)
        self.plan = plan


class SavedPlan:
    """Where the last plan for this request is kept; reading it never fails, it is only
    not there (missing, unreadable, not ours, made by other launcher code). Only plans whose
    server imports the project before its first order are kept (warmserver.applies)."""

    @classmethod
    def of(cls, planner: Planner, env: Mapping[str, str]) -> SavedPlan:
        return cls(control.run_dir(env), planner)

    def __init__(self, directory: Path, planner: Planner) -> None:
        # One file per profile and directory (a new --bind replaces it, never piles up);
        # inside, the whole request it answers, compared on reading: a name shared by two
        # requests only costs one of them its saved plan. (crc32, not hashlib: that loads
        # OpenSSL, 4 MiB the supervisor would keep.)
        where = json.dumps([planner.name, str(planner.cwd)]).encode()
        self.path = directory / f"plan-{zlib.crc32(where):08x}.pickle"
        self.request = [planner.name, sorted(planner.overrides.items()), str(planner.cwd),
                        sys.executable, launcher.__version__, _plan_layer_stamp()]

    def load(self) -> LaunchPlan | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                    or stat.S_IMODE(info.st_mode) & 0o077):
                return None
            try:
                request, plan = pickle.load(handle)
            except Exception:  # truncated, not ours, or of classes that changed since
                return None
        if request != self.request or not isinstance(plan, LaunchPlan) or not applies(plan):
            return None
        return plan

    def save(self, plan: LaunchPlan) -> None:
        """Atomically, 0600; quietly not when the run dir cannot take it (the start itself
        will say why, if it matters)."""
        if not applies(plan):
            return
        with contextlib.suppress(OSError, LauncherError):
            control.ensure_run_dir(self.path.parent)
            data = pickle.dumps((self.request, plan), protocol=pickle.HIGHEST_PROTOCOL)
            control.write_private(self.path, data)

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class Unconfirmed:
    """A start from a saved plan, the planner still reading the profile: `confirm()` before
    the server is given its first order."""

    def __init__(self, plan: LaunchPlan, pending: Pending, saved: SavedPlan,
                 signals: StartupSignals) -> None:
        self.plan = plan
        self.pending = pending
        self.saved = saved
        self.signals = signals
        self.answered = False
        signals.own(pending.pid)  # a stop ends the planner too
        pending.behind()  # its answer is needed once the server has imported

    def confirm(self, stopping: Callable[[], bool]) -> None:
        """Returns when the profile still makes this plan; raises `Replanned` with the plan it
        makes now, or the bad profile's one-line error. A stop returns at once (the caller
        checks for it)."""
        self.answered = True
        try:
            fresh = self.pending.result(stopping)
        except LauncherError:
            self.saved.forget()
            raise
        finally:
            self.signals.disown(self.pending.pid)
        if fresh is None or fresh == self.plan:
            return
        self.saved.save(fresh)
        raise Replanned(fresh)

    def cancel(self) -> None:
        """Start-up ended before the answer: the planner goes too."""
        if self.pending.popen.poll() is None:
            self.pending.abandon()
        self.signals.disown(self.pending.pid)


@contextlib.contextmanager
def told_once_confirmed(confirm: Unconfirmed | None, signals: StartupSignals) -> Iterator[None]:
    """A start-up error from a saved plan (its port taken, say) is told only once the planner
    said the profile still makes that plan: else the new plan is started (`Replanned`), or
    the profile's own error told."""
    try:
        yield
    except LauncherError:
        if confirm is not None and not confirm.answered:
            confirm.confirm(lambda: signals.stopping)
        raise


def _plan_layer_stamp() -> list[list[object]]:
    """The plan layer's files as they are: a saved plan is only read by the code that made
    it (a pickle of classes that changed shape could load and then fail)."""
    stamp: list[list[object]] = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(PLAN_LAYER), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                info = entry.stat()
                stamp.append([entry.name, info.st_mtime_ns, info.st_size])
    return stamp
