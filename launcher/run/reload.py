"""The reload transaction, in the shape of uvicorn's `restart_all`: read the profile again,
check the new code, start a whole new generation on the same sockets and promote it once it
answers, then retire the old one. On any failure nothing is swapped: the old generation, its
plan and its warm dev parent serve on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from launcher.errors import LauncherError
from launcher.plan.model import LaunchPlan
from launcher.run import devreload, status
from launcher.run.checks import run_checks
from launcher.run.devparents import BASE, FORK
from launcher.run.outcome import Outcome
from launcher.run.planner import Pending, Planner
from launcher.run.warmserver import applies
from launcher.run.warmstart import start_validated

if TYPE_CHECKING:
    from launcher.run.supervisor import Supervisor


def reread(
    current: LaunchPlan, source: Planner | None, stopping: Callable[[], bool],
    pending: Pending | None = None,
) -> tuple[LaunchPlan, Outcome]:
    """The plan as the profile reads now (from `pending`, a planner already at work, if
    given); where the server listens, which server it is and whether it reloads by itself
    need a restart of the launcher instead."""
    if source is None:
        return current, Outcome(True, "")
    try:
        plan = (pending or source.start()).result(stopping)
        if plan is None:
            return current, Outcome(False, "stopped while the profile was read")
        plan.check_runnable()
    except LauncherError as exc:
        return current, Outcome(False, exc.render())
    fixed = {
        "bind": (str(current.bind), str(plan.bind)),
        "server": (current.backend, plan.backend),
        "reload": (current.watch is not None, plan.watch is not None),
        "admin.bind": (str(current.admin_bind), str(plan.admin_bind)),
    }
    moved = [f"{key} {old} -> {new}" for key, (old, new) in fixed.items() if old != new]
    if moved:
        return current, Outcome(
            False,
            f"{plan.source}: {', '.join(moved)} cannot change in a reload; "
            "restart launch to apply it",
        )
    return (current, Outcome(True, "")) if plan == current else (plan, Outcome(True, "changed"))


def reload(
    sup: Supervisor, why: str, *, preflight: bool, needs: int = FORK, paths: tuple[str, ...] = ()
) -> Outcome:
    """A new generation from the profile as it reads now; the outcome says what happened.
    Dev: `needs` says which warm tiers the change of `paths` throws away (devparents.py)."""
    started = time.monotonic()
    sup.notifier.reloading()
    sup.log(f"{why}: reloading", "reloading", reason=why)
    pending = sup.planners.take()
    dev = sup.parents.current is not None
    early = devreload.start(sup, sup.plan, needs, list(paths)) if dev and not preflight else None
    plan, outcome = reread(sup.plan, sup.source, sup.waiter, pending)
    changed = plan is not sup.plan
    if changed:
        # Mask the new profile's secrets too: a refusal below may quote its values, and old
        # messages may name old ones.
        sup.masker = sup.masker + plan.masker(sup.env)
        sup.log(f"profile read again: {plan.source}", "profile read", path=str(plan.source))
    if early is not None and (changed or not outcome.ok):
        devreload.discard(sup, early[0])
        early = None
    inside = preflight and applies(plan)  # the new generation checks itself (warmstart.py)
    if outcome.ok and preflight and not inside:
        outcome = run_checks(  # the app's and Django's, as a start runs them
            plan.checks[:2], sup.child_env, sup.waiter, plan.probe.startup_timeout, plan.cwd
        )
    gen = None
    renewed = early is not None or (outcome.ok and dev)  # a failure restores the tiers
    if early is not None:
        gen, outcome = early
    elif outcome.ok and dev:
        gen, outcome = devreload.start(sup, plan, BASE if changed else needs, list(paths))
    elif outcome.ok and inside:
        gen, outcome = start_validated(sup.generations, plan, sup.waiter)
    elif outcome.ok:
        gen, outcome = sup.generations.start_ready(plan, sup.waiter)
    if gen is not None:
        sup.plan = plan
        old, sup.current = sup.current, None
        sup.promote(gen, outcome.message)
        if old is not None:
            sup.retire(old)
        outcome = Outcome(True, f"reloaded: generation {gen.number} serving (pid {gen.server.pid})")
    else:
        if renewed:
            sup.parents.restore()
        outcome = Outcome(
            False, f"reload failed, still serving the previous code: {outcome.message}"
        )
        sup.last_failure = outcome.message
    elapsed = time.monotonic() - started
    sup.counts.reloads["ok" if outcome.ok else "refused"] += 1
    sup.log(
        f"{outcome.message} ({elapsed:.2f}s)", "reloaded" if outcome.ok else "reload failed",
        level="info" if outcome.ok else "error", reason=why, duration=elapsed,
    )
    sup.last_reload = {
        "ok": outcome.ok,
        "message": outcome.message,
        "at": time.time(),
        "seconds": round(elapsed, 3),
    }
    sup.notifier.send("READY=1", status.line(sup))
    status.write(sup)
    sup.planners.refill()
    return outcome
