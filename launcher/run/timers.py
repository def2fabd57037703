"""When the supervisor's loop must wake with no event to wake it: systemd's watchdog ping,
the memory check, and a process's restart or SIGKILL falling due (run/processes.py). The
loop otherwise sleeps until something happens. Pure bookkeeping of times; the supervisor
sends the ping and checks the memory when these say so."""

from __future__ import annotations

POLL_TICK = 0.2  # while something has no event to wake the loop (retiring process groups)
IDLE_WAKE = 5.0  # a safety net: every event already wakes the loop


class Timers:
    """`watchdog_interval`: half systemd's WatchdogSec (None outside systemd's watchdog)."""

    def __init__(self, watchdog_interval: float | None) -> None:
        self.watchdog_interval = watchdog_interval
        self.last_watchdog = 0.0
        self.last_memory = 0.0

    def next_wake(
        self, now: float, *, polling: bool, healthy: bool, memory_interval: float | None,
        due: float | None = None,
    ) -> float:
        """Seconds the loop may sleep: until the next timer, or a short tick while polling.
        `memory_interval` None: no memory ceiling to check; `due`: the monotonic time a
        process's restart or escalation falls due."""
        if polling:
            return POLL_TICK
        waits = [IDLE_WAKE]
        if due is not None:
            waits.append(due - now)
        if memory_interval:
            waits.append(self.last_memory + memory_interval - now)
        if self.watchdog_interval and healthy:
            waits.append(self.last_watchdog + self.watchdog_interval - now)
        return max(min(waits), 0.0)

    def watchdog_due(self, now: float, *, healthy: bool) -> bool:
        """WATCHDOG=1 is due (and counted as sent): every interval while the serving generation
        is healthy; an unhealthy one is left for systemd to notice."""
        interval = self.watchdog_interval
        if not interval or not healthy or now - self.last_watchdog < interval:
            return False
        self.last_watchdog = now
        return True

    def memory_due(self, now: float, interval: float | None) -> bool:
        """The workers' memory is due a look (and counted as looked at)."""
        if not interval or now - self.last_memory < interval:
            return False
        self.last_memory = now
        return True
