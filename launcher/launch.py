"""The `launch` command's first moment: a stop signal is noted from here on, before the CLI's
imports (about 55 ms) run, so a SIGTERM at any moment after the interpreter starts is a graceful
exit, never the default death (-15) of a process that had not yet installed its handlers.

Only `signal` (and the built-in `gc`) is imported before the handler is in place. `launch NAME`
hands what was noted to its start-up (`StartupSignals`); the other commands get the default
handlers back, and a signal noted meanwhile is delivered again, so `launch show` still ends on a
SIGTERM as any command does.
"""

from __future__ import annotations

import gc
import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from launcher.cli import Handler

EARLY_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def main() -> int:
    noted: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        noted.append(signum)  # only queue: start-up's handler takes over the same list

    previous: dict[int, Handler] = {sig: signal.signal(sig, note) for sig in EARLY_SIGNALS}
    from launcher.cli import main as cli_main

    try:
        return cli_main(early=(noted, previous))
    finally:
        gc.freeze()  # the exit's last collection need not scan what the command loaded
