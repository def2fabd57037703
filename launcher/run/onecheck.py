"""`launch check`'s app check and Django's check in one process that imports the project once
(launcher.child.prepare, as a start that pays one import), and serves nothing: the same words
as when each was a process of its own, and all it prints kept, shown only to explain a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from launcher import wire
from launcher.plan.model import LaunchPlan
from launcher.run.checks import insecure
from launcher.run.diagnose import explain
from launcher.run.preparing import PreparingServer, prepare_command
from launcher.run.steps import app_refused

DRAIN = 5.0  # seconds for the last lines of a process that has exited


def _never() -> bool:
    return False


class OneCheck:
    """The app check (`app()`), then Django's check (`django()`), in one process."""

    def __init__(self, plan: LaunchPlan, env: Mapping[str, str]) -> None:
        self.plan = plan
        self.process = PreparingServer(plan, (), env, prepare_command(plan), quiet=True)
        self.said: wire.AppBuilt | None = None

    def app(self) -> None:
        """The settings import and the app builds as the server would build it; else raise
        the refusal, in one line naming its key."""
        said: wire.SaidMessage | None = self.process.settings_said(_never)
        if said is not None and said["kind"] is wire.Said.SETTINGS:
            said = self.process.build_app(_never)
        if said is None or said["kind"] is not wire.Said.APP:
            raise insecure(said) or app_refused(self.plan, self.process, said)
        self.said = said

    def django(self, words: list[str]) -> tuple[bool, str]:
        """Django's check with `words` (manage.py's): whether it passed, and what it printed."""
        said = self.process.django_check(words, None, _never)
        if said is None:
            return False, explain(self.process.report(), self.process.exit_code(), self.plan.cwd)
        if said["kind"] is wire.Said.ERROR:
            return False, said["message"].strip()
        return True, said["report"].strip()

    @property
    def interface(self) -> str:
        return self.said["interface"] if self.said else self.plan.interface

    @property
    def serves(self) -> str:
        return self.said["serves"] if self.said else ""

    def warnings(self) -> list[str]:
        return self.process.warnings()

    def fit(self) -> dict[str, Any] | None:
        """What decides between WSGI and ASGI (the app check says it once the app built); None
        when the project could not be read for it."""
        self.process.finish()
        self.process.wait_for((), _never, DRAIN)  # until all was read
        for item in self.process.items:
            if item["kind"] is wire.Said.FIT:
                return dict(item["found"])
        return None

    def close(self) -> None:
        self.process.stop(0.0)
        self.process.close()
