"""When the serving server died or failed its probe: start it again after a capped exponential
backoff, or give up when it crashes more often than the policy allows in its window. A pure
decision; the supervisor carries it out (Supervisor.restart)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from launcher.plan.model import RestartPolicy
from launcher.plan.policy import is_flapping, next_backoff


@dataclass(frozen=True)
class AfterCrash:
    """The crashes still inside the window (this one included) and the delay before the next
    start; `delay` None: give up."""

    crash_times: tuple[float, ...]
    delay: float | None

    @property
    def gives_up(self) -> bool:
        return self.delay is None


def after_crash(crash_times: Sequence[float], now: float, policy: RestartPolicy) -> AfterCrash:
    """A crash at `now`, after the earlier `crash_times`: retry after a delay, or give up."""
    kept = (*(t for t in crash_times if now - t <= policy.window), now)
    if is_flapping(kept, now, policy.max_crashes, policy.window):
        return AfterCrash(kept, None)
    return AfterCrash(kept, next_backoff(len(kept), policy.backoff_initial, policy.backoff_max))
