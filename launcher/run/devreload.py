"""A dev reload's new generation from the warm tiers: the tiers the change needs anew, then
a server forked from them. It starts while the profile is read again (a planner process),
and is thrown away if the profile changed: what serves is always the profile and code on
disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from launcher.plan.model import LaunchPlan
from launcher.run.devparents import BASE, FORK, SETUP
from launcher.run.generation import Generation
from launcher.run.outcome import Outcome

if TYPE_CHECKING:
    from launcher.run.supervisor import Supervisor


def start(
    sup: Supervisor, plan: LaunchPlan, level: int, paths: list[str]
) -> tuple[Generation | None, Outcome]:
    """Renew the tiers from `level` up and fork a server; on failure nothing is kept but
    the tiers renewed (`discard()` or `sup.parents.restore()` undoes them)."""
    parents = sup.parents
    level = max(level, parents.owed)
    if level == BASE:
        sup.log("the change touches what the warm parent imported: starting a fresh one")
    elif level == SETUP:
        sup.log("the change touches what django.setup() imported: a fresh setup from the "
                "warm imports")
    outcome = parents.renew(plan, sup.waiter, level, paths)
    if not outcome.ok:
        return None, outcome
    if level > FORK:
        sup.log(f"warm tiers: {outcome.message}")
    return sup.generations.start_ready(plan, sup.waiter)


def discard(sup: Supervisor, gen: Generation | None) -> None:
    """A generation started early that must not serve (the profile changed, or is broken)."""
    if gen is not None:
        sup.generations.stop(gen, 0.0)
    sup.parents.restore()
