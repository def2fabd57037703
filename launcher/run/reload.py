"""The reload's decisions, apart from carrying them out (Supervisor.reload): what a reload may
not change, which way its new generation starts, and how requests that arrive while one runs
merge into one next reload.

The transaction itself is uvicorn's `restart_all`: read the profile again, check the new code,
start a whole new generation on the same sockets and promote it once it answers, then retire
the old one. On any failure nothing is swapped."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from launcher.errors import LauncherError
from launcher.plan.model import LaunchPlan
from launcher.run.outcome import Outcome
from launcher.run.planner import Pending, Planner

T = TypeVar("T")


# ----- what a reload may not change ------------------------------------------------------------


def fixed(plan: LaunchPlan) -> dict[str, str]:
    """What a reload must leave as it is: where the server listens, which server it is,
    whether it reloads by itself, where the admin listener is."""
    return {
        "bind": str(plan.bind),
        "server": plan.backend,
        "reload": str(plan.watch is not None),
        "admin.bind": str(plan.admin_bind),
    }


def moved(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The fixed keys that changed, as `key old -> new`."""
    return [f"{key} {old} -> {after[key]}" for key, old in before.items() if after[key] != old]


def reread(
    current: LaunchPlan, source: Planner | None, stopping: Callable[[], bool],
    pending: Pending | None = None,
) -> tuple[LaunchPlan, Outcome]:
    """The plan as the profile reads now (from `pending`, a planner already at work, if given);
    `current` itself when nothing changed; a refusal when a fixed key moved."""
    if source is None:
        return current, Outcome(True, "")
    try:
        plan = (pending or source.start()).result(stopping)
        if plan is None:
            return current, Outcome(False, "stopped while the profile was read")
        plan.check_runnable()
    except LauncherError as exc:
        return current, Outcome(False, exc.render())
    changed = moved(fixed(current), fixed(plan))
    if changed:
        return current, Outcome(
            False,
            f"{plan.source}: {', '.join(changed)} cannot change in a reload; "
            "restart launch to apply it",
        )
    return (current, Outcome(True, "")) if plan == current else (plan, Outcome(True, "changed"))


# ----- which way the new generation starts -----------------------------------------------------


class Way(enum.Enum):
    REFUSE = "refuse"  # the profile or the checks refused: the old generation serves on
    EARLY = "early"  # dev: the generation forked from the warm tiers while the profile was read
    DEV = "dev"  # dev: renew the tiers the change needs and fork a server from them
    VALIDATED = "validated"  # the new generation checks itself before it serves (one import)
    READY = "ready"  # start it and wait until it answers its probe


@dataclass(frozen=True)
class Route:
    way: Way
    discard_early: bool  # a generation started early must not serve: stop it, restore the tiers


def route(*, read_ok: bool, changed: bool, dev: bool, early: bool, validates: bool) -> Route:
    """Which way a reload goes, once the profile was read again. `early`: dev started a
    generation before the read (it serves only if the profile did not change); `validates`:
    the new generation's own process answers the checks (oneimport.py)."""
    if not read_ok:
        return Route(Way.REFUSE, early)
    if early and not changed:
        return Route(Way.EARLY, False)
    if dev:
        return Route(Way.DEV, early)
    return Route(Way.VALIDATED if validates else Way.READY, False)


# ----- coalescing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One reason to reload: a SIGHUP, `launch reload`, or in dev the files that changed.
    `preflight`: check the new code before it serves (not for dev edits)."""

    why: str
    preflight: bool = True
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Batch(Generic[T]):
    """The requests one reload covers, and who waits for its outcome."""

    why: str
    preflight: bool
    paths: tuple[str, ...]
    waiting: tuple[T, ...]
    count: int


@dataclass
class ReloadQueue(Generic[T]):
    """Requests that arrive while the supervisor is busy (a reload under way) merge into ONE
    next reload, whose outcome every waiting requester is told; a stop drops them all."""

    _requests: list[Request] = field(default_factory=list)
    _waiting: list[T] = field(default_factory=list)

    def add(self, request: Request, waiting: T | None = None) -> None:
        self._requests.append(request)
        if waiting is not None:
            self._waiting.append(waiting)

    @property
    def pending(self) -> bool:
        return bool(self._requests)

    def take(self) -> Batch[T] | None:
        """Everything asked for so far, as one reload; None when nothing was."""
        if not self._requests:
            return None
        requests, waiting = self._requests, tuple(self._waiting)
        self._requests, self._waiting = [], []
        paths = tuple(dict.fromkeys(p for r in requests for p in r.paths))
        whys = dict.fromkeys(r.why for r in requests if not r.paths)
        if paths:
            shown = ", ".join(sorted({Path(p).name for p in paths})[:5])
            whys = {f"changed: {shown}": None, **whys}
        why = ", ".join(whys)
        if len(requests) > 1:
            why += f" ({len(requests)} requests)"
        return Batch(why, any(r.preflight for r in requests), paths, waiting, len(requests))

    def drop(self) -> tuple[T, ...]:
        """A stop: no reload starts; who waited is told so by the caller."""
        waiting = tuple(self._waiting)
        self._requests, self._waiting = [], []
        return waiting
