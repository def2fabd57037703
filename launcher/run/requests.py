"""What the supervisor answers on its control socket: `launch status`, `reload`, `stop`."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from launcher.run import control, reload

if TYPE_CHECKING:
    from launcher.run.supervisor import Supervisor


def answer(sup: Supervisor) -> None:
    conn = sup.control_server.accept()
    if conn is None:
        return
    command = control.read_request(conn).get("command")
    if command == "status":
        control.reply(conn, sup.status(with_workers=True))
    elif command == "reload":
        outcome = reload.reload(sup, "launch reload", preflight=True)
        control.reply(conn, {"ok": outcome.ok, "message": sup.masker.text(outcome.message)})
    elif command == "stop":
        control.reply(conn, {"ok": True, "message": "stopping"})
        sup.queue_signal(signal.SIGTERM)
    else:
        control.reply(conn, {"ok": False, "message": f"unknown command {command!r}"})
