"""Restarts: a server that died or failed its probe is started again with capped exponential
backoff, and given up on (exit 1) when it crashes more than the policy allows in its window."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from launcher.plan.policy import is_flapping, next_backoff
from launcher.run import status
from launcher.run.monitor import Health

if TYPE_CHECKING:
    from launcher.run.supervisor import Supervisor


def restart(sup: Supervisor, reason: str, kind: str) -> int | None:
    """Restart with capped exponential backoff; give up (exit 1) when it flaps. `kind` is
    one of metrics.RESTART_REASONS, counted once per failure however many tries it takes."""
    sup.counts.restarts[kind] += 1
    sup.current = None
    sup.last_failure = reason
    policy = sup.plan.restart
    while True:
        now = time.monotonic()
        sup.crash_times = [t for t in sup.crash_times if now - t <= policy.window]
        sup.crash_times.append(now)
        if is_flapping(sup.crash_times, now, policy.max_crashes, policy.window):
            sup.log(
                f"giving up: {len(sup.crash_times)} crashes within {policy.window:g}s "
                f"(limit {policy.max_crashes}); last: {reason}",
                "giving up", level="error", reason=reason, crashes=len(sup.crash_times),
            )
            sup.notifier.send(f"STATUS=failed: {reason}")
            return 1
        delay = next_backoff(len(sup.crash_times), policy.backoff_initial, policy.backoff_max)
        sup.log(
            f"{reason}; restarting in {delay:.2f}s (crash {len(sup.crash_times)})",
            "restarting", level="warning", reason=reason, delay=delay,
            crashes=len(sup.crash_times),
        )
        sup.monitor.health = Health(state="starting", last=reason)
        status.write(sup)
        if sup.waiter.sleep(delay):
            return 0
        parent = sup.parents.current
        if parent is not None and not parent.alive():
            warm = sup.parents.warm(sup.plan, sup.waiter)
            if not warm.ok:
                reason = warm.message
                continue
        gen, outcome = sup.generations.start_ready(sup.plan, sup.waiter)
        if gen is not None:
            sup.restarts += 1
            sup.promote(gen, outcome.message)
            sup.notifier.send(status.line(sup))
            sup.log(
                f"server restarted (pid {gen.server.pid})", "restarted",
                server_pid=gen.server.pid,
            )
            return None
        if sup.stopping():
            return 0
        reason = outcome.message
        sup.last_failure = reason
