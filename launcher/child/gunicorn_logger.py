"""gunicorn's `--logger-class`: its own logger, except that `Listening at:` names only the
sockets the site serves, not the supervisor's private probe socket each generation also gets
($LAUNCHER_PROBE_LISTENER, launcher/run/sockets.py), which nobody else should connect to. For
`log_format: json` (`JsonLogger`), its error log and access log write one JSON object per line
(launcher.child.jsonlog), tracebacks included, and so does whatever reaches the root logger
(the project's own records, Python's warnings)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn import glogging

from launcher import wire
from launcher.child.jsonlog import JsonFormatter, json_handler

LISTENING = "Listening at:"  # gunicorn's arbiter.py, at boot and when its config reloads


def served(listeners: str, probe: str | None) -> str:
    """gunicorn's comma-separated listeners without the probe socket's (`HOST:PORT`)."""
    if not probe:
        return listeners
    kept = [url for url in listeners.split(",") if url.removeprefix("http://") != probe]
    return ",".join(kept) or listeners


class Logger(glogging.Logger):
    """gunicorn's logger, the probe socket left out of its `Listening at:` line."""

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(LISTENING) and args and isinstance(args[0], str):
            args = (served(args[0], os.environ.get(wire.PROBE_LISTENER_ENV)), *args[1:])
        super().info(msg, *args, **kwargs)


class JsonLogger(Logger):
    """gunicorn's logger, with its handlers formatting JSON; access lines keep their
    classic text as `message` and carry the request as fields."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # run again on every config reload: it drops and re-adds handlers
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(json_handler(sys.stderr))
        logging.captureWarnings(True)
