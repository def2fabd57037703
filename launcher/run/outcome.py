"""How a piece of the supervisor's work ended (ok, and what to say about it), and how
`launch NAME` ends: one exit code per outcome, documented in the README (Exit codes)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


class Exit(IntEnum):
    """`launch NAME`'s exit status, one per way a run can end."""

    STOPPED = 0  # a stop was asked for (SIGTERM, SIGINT, SIGQUIT, `launch stop`), at any moment
    START_FAILED = 1  # the server did not start: a step failed, or it never answered its probe
    BAD_INPUT = 2  # the profile, an option, the port, the app: one line naming it
    GAVE_UP = 3  # the server crashed more often than `restart.max_crashes` in `restart.window`


def ending(code: Exit, *, stop_requested: bool) -> Exit:
    """A stop asked for wins over whatever ended the run meanwhile: a stop during start-up, a
    restart's backoff or a failing start is still a stop, never a failure."""
    return Exit.STOPPED if stop_requested else code
