"""The dev fork server's warm parents: the one whose children serve, one warming up for the
next change, and old ones kept until their last child has drained."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from launcher.plan.model import LaunchPlan
from launcher.run.forkserver import ForkServer
from launcher.run.outcome import Outcome
from launcher.run.waiter import Waiter


class DevParents:
    """Bookkeeping of warm parents, in one place: start, warm, roll back, release, stop."""

    def __init__(
        self, env: Mapping[str, str], listen_fd: int, on_exit: Callable[[], None]
    ) -> None:
        self._env = env
        self._listen_fd = listen_fd
        self._on_exit = on_exit
        self.current: ForkServer | None = None
        self.warming: ForkServer | None = None  # started early, not yet waited on
        self.old: list[ForkServer] = []

    def start(self, plan: LaunchPlan, *, quiet: bool = False) -> ForkServer:
        return ForkServer(plan, self._env, self._listen_fd, on_exit=self._on_exit, quiet=quiet)

    def start_warming(self, plan: LaunchPlan) -> int:
        """Start a parent now, so it imports Django while start-up runs the steps; its pid
        (it leads its own group)."""
        self.warming = self.start(plan, quiet=True)
        return self.warming.pid

    def warm(self, plan: LaunchPlan, waiter: Waiter) -> Outcome:
        """A warm parent for `plan` (the one started early, if any) becomes the current one;
        the previous one is kept until its children have drained."""
        parent, self.warming = self.warming or self.start(plan), None
        outcome = parent.wait_warm(plan.probe.startup_timeout, waiter)
        if not outcome.ok:
            self._end(parent)
            return outcome
        if self.current is not None:
            self.old.append(self.current)
        self.current = parent
        return Outcome(True, "warm")

    def restore(self, previous: ForkServer | None) -> None:
        """After a failed reload: back to the parent whose child still serves."""
        if previous is None or self.current is previous:
            return
        failed, self.current = self.current, previous
        self.old.remove(previous)
        if failed is not None:
            self._end(failed)

    def release(self, in_use: set[ForkServer]) -> None:
        """End old parents none of whose children is still retiring."""
        for parent in [p for p in self.old if p not in in_use]:
            self._end(parent)
            self.old.remove(parent)

    def abandon(self) -> None:
        """Start-up failed before the supervisor ran: end the parent started for it."""
        if self.warming is not None:
            self.warming.stop()
            self.warming = None

    def pids(self) -> set[int]:
        return {p.pid for p in (self.current, self.warming, *self.old) if p is not None}

    def stop_all(self) -> None:
        for parent in (self.current, self.warming, *self.old):
            if parent is not None:
                parent.stop()
        self.current, self.warming, self.old = None, None, []

    def _end(self, parent: ForkServer) -> None:
        parent.stop()
