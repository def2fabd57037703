"""When the supervisor's loop must wake with no event to wake it: systemd's watchdog ping and
the memory check. The loop otherwise sleeps until something happens."""

from __future__ import annotations

from collections.abc import Callable

from launcher.plan.model import LaunchPlan
from launcher.run.systemd import Notifier

POLL_TICK = 0.2  # while something has no event to wake the loop (retiring process groups)
IDLE_WAKE = 5.0  # a safety net: every event already wakes the loop


class Timers:
    def __init__(
        self, notifier: Notifier, plan: Callable[[], LaunchPlan], healthy: Callable[[], bool]
    ) -> None:
        self.notifier = notifier
        self._plan = plan
        self._healthy = healthy
        self.last_watchdog = 0.0
        self.last_memory = 0.0

    def next_wake(self, now: float, *, polling: bool) -> float:
        """Seconds the loop may sleep: until the next timer, or a short tick while polling."""
        if polling:
            return POLL_TICK
        plan = self._plan()
        waits = [IDLE_WAKE]
        if plan.max_worker_memory:
            waits.append(self.last_memory + plan.memory_check_interval - now)
        interval = self.notifier.watchdog_interval
        if interval and self._healthy():
            waits.append(self.last_watchdog + interval - now)
        return max(min(waits), 0.0)

    def pet_watchdog(self, now: float) -> None:
        """WATCHDOG=1 every half WatchdogSec while the serving generation is healthy."""
        interval = self.notifier.watchdog_interval
        if interval and now - self.last_watchdog >= interval and self._healthy():
            self.last_watchdog = now
            self.notifier.send("WATCHDOG=1")

    def memory_due(self, now: float) -> bool:
        plan = self._plan()
        if not plan.max_worker_memory or now - self.last_memory < plan.memory_check_interval:
            return False
        self.last_memory = now
        return True
