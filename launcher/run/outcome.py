"""How a step of the supervisor's work ended: ok, and what to say about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
