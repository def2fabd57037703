"""Plans made in a planner process (launcher/cli/planner.py), for the first launch and for
every reload: the supervisor never imports the profile's parsers, so it stays small.

The planner is started before the run layer is imported, so both load at once; its answer is
read in short slices that feed the watchdog and hear a stop, as every wait here does. It leads
its own process group, so a stop during start-up ends it (launcher/run/signals.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher import wire
from launcher.errors import LaunchError
from launcher.plan.model import LaunchPlan
from launcher.run.process import dies_with_supervisor

SLICE = 0.1  # seconds between looks at the waiter


@dataclass(frozen=True)
class Planner:
    """A profile name and the command line's overrides: what `launch` was asked to run."""

    name: str
    cwd: Path
    overrides: Mapping[str, str] = field(default_factory=dict)

    def start(self, *, wait: bool = False) -> Pending:
        """A planner at work; `wait`: it loads its parsers, then waits for `Pending.go()`
        before it reads the profile."""
        asked = wire.PlanRequest(name=self.name, overrides=dict(self.overrides), wait=wait)
        popen = subprocess.Popen(
            dies_with_supervisor(
                [sys.executable, "-m", wire.PLANNER_MODULE, wire.encode_request(asked)],
                self.cwd, None,
            ),
            cwd=self.cwd,
            stdin=subprocess.PIPE if wait else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        return Pending(popen)


class Pending:
    """A planner at work."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid

    def go(self) -> bool:
        """A waiting planner reads the profile now; False if it is gone."""
        try:
            assert self.popen.stdin is not None
            self.popen.stdin.write(wire.PLANNER_GO.encode())
            self.popen.stdin.close()
        except (OSError, ValueError):
            return False
        finally:
            self.popen.stdin = None  # communicate() would flush it again
        return self.popen.poll() is None

    def abandon(self) -> None:
        self.popen.kill()
        self.popen.wait()
        if self.popen.stdin is not None:
            self.popen.stdin.close()
            self.popen.stdin = None

    def result(self, stopping: Callable[[], bool]) -> LaunchPlan | None:
        """The plan as the profile reads now, None when a stop came first; a bad profile
        raises its one-line error."""
        while True:
            try:
                out, _ = self.popen.communicate(timeout=SLICE)
                break
            except subprocess.TimeoutExpired:
                if stopping():
                    self.popen.kill()
                    self.popen.wait()
                    return None
        if stopping():  # the stop may have ended the planner itself
            return None
        answer = wire.decode_answer(out) if self.popen.returncode == 0 else None
        if answer is not None and answer["kind"] is wire.Answer.PLANNED:
            if isinstance(answer["plan"], LaunchPlan):
                return answer["plan"]
        elif answer is not None and answer["kind"] is wire.Answer.REFUSED:
            raise LaunchError(answer["message"], code=answer["code"])
        code = self.popen.returncode
        raise LaunchError(f"the planner ({wire.PLANNER_MODULE}) failed with exit code {code}")


class SparePlanner:
    """Dev: the next reload's planner, started ahead and waiting, so a reload pays for
    reading the profile, not for an interpreter and the parsers (they load while nothing
    happens). The profile is still read after the change, as it is on disk then."""

    def __init__(self, planner: Planner | None) -> None:
        self.planner = planner
        self.spare: Pending | None = None

    def take(self) -> Pending | None:
        """A planner reading the profile now (the spare, if it is still there)."""
        if self.planner is None:
            return None
        spare, self.spare = self.spare, None
        if spare is not None and spare.go():
            return spare
        if spare is not None:
            spare.abandon()
        return self.planner.start()

    def refill(self) -> None:
        if self.planner is not None and self.spare is None:
            self.spare = self.planner.start(wait=True)

    def stop(self) -> None:
        if self.spare is not None:
            self.spare.abandon()
            self.spare = None
