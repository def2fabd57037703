"""plan/policy.py: the supervisor's pure decisions, as tables (numbers in, number out)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.plan.policy import is_flapping, next_backoff, workers_for


@pytest.mark.parametrize(
    ("cpus", "workers"),
    [
        (1, 3),
        (2, 5),
        (4, 9),
        (16, 33),
        # A CPU count that could not be read (0, or a negative from a bad cgroup) counts as one.
        (0, 3),
        (-2, 3),
    ],
)
def test_workers_for(cpus: int, workers: int) -> None:
    assert workers_for(cpus) == workers


@pytest.mark.parametrize(
    ("attempt", "initial", "cap", "delay"),
    [
        (1, 0.5, 30.0, 0.5),  # the first restart waits `initial`
        (2, 0.5, 30.0, 1.0),
        (3, 0.5, 30.0, 2.0),
        (6, 0.5, 30.0, 16.0),
        (7, 0.5, 30.0, 30.0),  # 32 s, capped
        (50, 0.5, 30.0, 30.0),  # stays at the cap
        (10_000, 0.5, 30.0, 30.0),  # max_crashes' limit: 2**9999 would overflow a float
        (1, 5.0, 2.0, 2.0),  # a cap below `initial` wins from the start
        (0, 0.5, 30.0, 0.5),  # attempts below 1 count as the first
        (-3, 0.5, 30.0, 0.5),
        (4, 1.0, 8.0, 8.0),  # exactly the cap
    ],
)
def test_next_backoff(attempt: int, initial: float, cap: float, delay: float) -> None:
    assert next_backoff(attempt, initial, cap) == pytest.approx(delay)


@given(
    attempt=st.integers(min_value=1, max_value=20_000),
    initial=st.floats(min_value=0.001, max_value=3600),
    cap=st.floats(min_value=0.001, max_value=86_400),
)
def test_next_backoff_grows_and_stays_under_the_cap(
    attempt: int, initial: float, cap: float
) -> None:
    delay = next_backoff(attempt, initial, cap)
    assert 0 < delay <= cap
    assert next_backoff(attempt + 1, initial, cap) >= delay


NOW = 1000.0


@pytest.mark.parametrize(
    ("crash_times", "max_crashes", "window", "flapping"),
    [
        ((), 5, 60.0, False),
        ((NOW - 1,) * 5, 5, 60.0, False),  # exactly max_crashes: not yet
        ((NOW - 1,) * 6, 5, 60.0, True),  # one more than max_crashes
        ((NOW - 61, *(NOW - 1,) * 5), 5, 60.0, False),  # the oldest fell out of the window
        ((NOW - 60, *(NOW - 1,) * 5), 5, 60.0, True),  # on the window's edge still counts
        ((NOW - 30, NOW - 20, NOW - 10), 2, 60.0, True),
        ((NOW - 30, NOW - 20, NOW - 10), 2, 15.0, False),  # a shorter window sees one
        ((NOW,), 0, 60.0, True),  # max_crashes 0: the first crash is too many
    ],
)
def test_is_flapping(
    crash_times: tuple[float, ...], max_crashes: int, window: float, flapping: bool
) -> None:
    assert is_flapping(crash_times, NOW, max_crashes, window) is flapping
