"""The dev fork server's warm processes, in two tiers: the base (third-party imports and the
settings) and the setup tier forked from it (django.setup(), the project's models), whose
children serve. An edit costs what it touches: a new server forked from the setup tier (views,
URLconf), a new setup tier forked from the base (models), or a new base (settings, packages).
Old setup tiers are kept until their last child has drained."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from launcher import wire
from launcher.plan.model import LaunchPlan
from launcher.run.devbase import DevBase
from launcher.run.forkserver import ForkServer
from launcher.run.outcome import Outcome
from launcher.run.waiter import Waiter

# What a change needs, from least to most: a new server, a new setup tier, everything new.
FORK, SETUP, BASE = 0, 1, 2


class DevParents:
    """Bookkeeping of the warm tiers, in one place: start, renew, roll back, release, stop."""

    def __init__(
        self, env: Mapping[str, str], listen_fd: int, on_exit: Callable[[], None],
        log: Callable[..., None],
    ) -> None:
        self._env = env
        self._listen_fd = listen_fd
        self._on_exit = on_exit
        self._log = log
        self.base: DevBase | None = None
        self.current: ForkServer | None = None
        self.warming: DevBase | None = None  # started early, not yet waited on
        self.old: list[ForkServer] = []
        self._previous: tuple[DevBase | None, ForkServer | None] | None = None
        # What a failed reload needed, still owed by the next one (its tiers were dropped).
        self.owed = FORK
        self._renewing = FORK

    def start_warming(self, plan: LaunchPlan) -> int:
        """Start a base now and ask it for a setup tier, so both import while start-up runs
        the steps; the base's pid (it leads its own group)."""
        self.warming = DevBase(plan, self._env, self._listen_fd, quiet=True)
        self.warming.ask_spawn()
        return self.warming.pid

    def needs(self, paths: list[str], profile: Path) -> int:
        """What `paths` changing needs: FORK, SETUP or BASE."""
        base, current = self.base, self.current
        if self.owed == BASE or base is None or not base.alive() or base.touched_by(paths):
            return BASE
        if any(str(Path(p).resolve()) == str(profile) or p.endswith(".env") for p in paths):
            return BASE
        if self.owed == SETUP or current is None or not current.alive():
            return SETUP
        if current.touched_by(paths):
            return SETUP
        return FORK

    def warm(self, plan: LaunchPlan, waiter: Waiter) -> Outcome:
        """Start-up: a base and a setup tier (those started early, if any)."""
        return self.renew(plan, waiter, BASE, [])

    def renew(self, plan: LaunchPlan, waiter: Waiter, level: int, paths: list[str]) -> Outcome:
        """New tiers from `level` up; the setup tier that served is kept until its children
        have drained. `restore()` undoes it."""
        self._previous = (self.base, self.current)
        level = self._renewing = max(level, self.owed)
        self.owed = FORK
        if level == FORK:
            return Outcome(True, "warm")
        started = time.monotonic()
        base = self.base
        if level == BASE or base is None:
            base, self.warming = self.warming or DevBase(plan, self._env, self._listen_fd), None
            outcome = base.wait_warm(plan.probe.startup_timeout, waiter)
            if not outcome.ok:
                base.stop()
                return outcome
            if base.saved is not None:
                saved = base.saved
                self._log(_saved(saved), "dev_saved_imports", path=saved.get("path"),
                          modules=saved.get("modules"), ignored=saved.get("ignored"))
        tier = base.spawned(waiter, self._on_exit)
        if tier is not None and base is self.base and base.touched_by(paths):
            # The base imported what changed since the change was judged: it goes too.
            tier.stop()
            return self.renew(plan, waiter, BASE, paths)
        outcome = (
            tier.wait_warm(plan.probe.startup_timeout, waiter) if tier is not None
            else Outcome(False, "the dev server did not start a new setup tier")
        )
        if not outcome.ok:
            if tier is not None:
                tier.stop()
            if base is not self.base:
                base.stop()
            return outcome
        if self.current is not None:
            self.old.append(self.current)
        if base is not self.base and self.base is not None:
            self.base.stop()  # its setup tiers lead their own groups: the old one drains on
        self.base, self.current = base, tier
        return Outcome(True, f"warm in {time.monotonic() - started:.2f}s{_ahead(base)}")

    def restore(self) -> None:
        """After a failed reload: back to the tiers whose child still serves."""
        if self._previous is None:
            return
        base, previous = self._previous
        self._previous = None
        self.owed = max(self.owed, self._renewing)
        if self.current is not previous:
            failed, self.current = self.current, previous
            if previous in self.old:
                self.old.remove(previous)
            if failed is not None:
                failed.stop()
        if self.base is not base and base is not None and base.alive():
            if self.base is not None:
                self.base.stop()
            self.base = base

    def release(self, in_use: set[ForkServer]) -> None:
        """End old setup tiers none of whose children is still retiring."""
        for parent in [p for p in self.old if p not in in_use]:
            parent.stop()
            self.old.remove(parent)

    def abandon(self) -> None:
        """Start-up failed before the supervisor ran: end the base started for it."""
        if self.warming is not None:
            self.warming.stop()
            self.warming = None

    def pids(self) -> set[int]:
        return {p.pid for p in (self.current, self.warming, *self.old) if p is not None}

    def stop_all(self) -> None:
        for tier in (self.current, *self.old):
            if tier is not None:
                tier.stop()
        for base in (self.base, self.warming):
            if base is not None:
                base.stop()
        self.base, self.current, self.warming, self.old = None, None, None, []


def _ahead(base: DevBase) -> str:
    if not base.ahead:
        return ""
    failed = f", {base.ahead['failed']} of them failed" if base.ahead.get("failed") else ""
    saved = (f", {base.ahead['saved']} of them from the list saved by an earlier run"
             if base.ahead.get("saved") else "")
    return (f"; the base holds {base.ahead['modules']} third-party modules imported ahead "
            f"of django.setup(){saved}{failed}")


def _saved(saved: wire.SavedList) -> str:
    """What a new base does with the import list an earlier one saved."""
    if "modules" in saved:
        return (f"warm tiers: the base imports ahead the {saved['modules']} third-party "
                f"modules saved by an earlier run ({saved.get('path')})")
    return (f"warm tiers: the import list saved by an earlier run is not used, "
            f"{saved.get('ignored')}: the base learns it again ({saved.get('path')})")
