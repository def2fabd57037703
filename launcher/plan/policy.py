"""Pure decisions the supervisor takes: worker counts, backoff, when to give up."""

from __future__ import annotations

from collections.abc import Sequence


def workers_for(cpus: int) -> int:
    """gunicorn's classic rule for `workers: auto`: 2 x CPU + 1."""
    return 2 * max(cpus, 1) + 1


def next_backoff(attempt: int, initial: float, cap: float) -> float:
    """Seconds to wait before restart number `attempt` (1-based): doubling, capped.

    Doubles step by step and stops at the cap: `initial * 2 ** (attempt - 1)` overflows a float
    from attempt 1025 on, and max_crashes allows 10,000."""
    delay = initial
    for _ in range(max(attempt - 1, 0)):
        if delay >= cap:
            break
        delay *= 2
    return min(cap, delay)


def is_flapping(crash_times: Sequence[float], now: float, max_crashes: int, window: float) -> bool:
    """More than `max_crashes` crashes within the last `window` seconds."""
    return sum(1 for t in crash_times if now - t <= window) > max_crashes
