"""gunicorn's `--logger-class` for `log_format: json`: its error log and access log write one
JSON object per line (launcher.child.jsonlog), tracebacks included, and so does whatever
reaches the root logger (the project's own records, Python's warnings)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn.glogging import Logger

from launcher.child.jsonlog import JsonFormatter, json_handler


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
