"""The servers' logs as JSON, one object per line, in the shape of the launcher's own lines
(launcher/run/logs.py): time, level, event, message, profile, generation, pid, and for an
access line its request's fields. A traceback stays inside its record's object.

Used by gunicorn's logger class (launcher.child.gunicorn_logger), by uvicorn's log config
(uvicorn_log.json beside this file) and, after Django set up its logging, on the console
handlers Django and the project left in plain text (`json_console`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from launcher import wire


def rfc3339(at: float) -> str:
    """As launcher/run/logs.py writes it (child code does not import the run layer)."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
    return f"{seconds}.{int(at % 1 * 1000):03d}Z"


def context() -> dict[str, Any]:
    """What every line of this server carries: its profile and generation, when known."""
    found: dict[str, Any] = {}
    if os.environ.get(wire.LOG_PROFILE_ENV):
        found["profile"] = os.environ[wire.LOG_PROFILE_ENV]
    generation = os.environ.get(wire.LOG_GENERATION_ENV, "")
    if generation.isdigit():
        found["generation"] = int(generation)
    return found


def access_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """The request of an access line, from gunicorn's atoms or uvicorn's arguments; None when
    the record is no access line."""
    args = record.args
    if isinstance(args, Mapping) and "s" in args and "m" in args:  # gunicorn's atoms
        micros = args.get("D")
        fields = {
            "remote": args.get("h"),
            "method": args.get("m"),
            "path": args.get("U"),
            "query": args.get("q") or None,
            "protocol": args.get("H"),
            "status": _int(args.get("s")),
            "bytes": args.get("B"),
            "duration": round(micros / 1e6, 6) if isinstance(micros, int) else None,
            "referer": _dash_none(args.get("f")),
            "user_agent": _dash_none(args.get("a")),
        }
        return {name: value for name, value in fields.items() if value is not None}
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        remote, method, path, version, status = args
        fields = {
            "remote": remote,
            "method": method,
            "path": str(path).partition("?")[0],
            "query": str(path).partition("?")[2] or None,
            "protocol": f"HTTP/{version}",
            "status": _int(status),
        }
        return {name: value for name, value in fields.items() if value is not None}
    return None


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _dash_none(value: Any) -> Any:
    return None if value in (None, "-") else value


class JsonFormatter(logging.Formatter):
    """A record as one JSON object; its traceback (if any) is a field, not more lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()  # a dictConfig may pass fmt/datefmt: the shape is fixed
        self.context = context()

    def format(self, record: logging.LogRecord) -> str:
        access = access_fields(record)
        line: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "event": "access" if access is not None else "server log",
            "message": record.getMessage(),
            **self.context,
            "pid": record.process,
            "logger": record.name,
            **(access or {}),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def enabled() -> bool:
    return os.environ.get(wire.LOG_FORMAT_ENV) == "json"


def json_console() -> None:
    """JSON mode: the console handlers that still write plain text (Django's own `console`
    with DEBUG, a project's StreamHandler without a formatter of its own) write JSON, and
    Python's warnings go through logging, so nothing lands on the console as loose text.
    A handler with a formatter class of the project's own is left alone."""
    if not enabled():
        return
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(json_handler(sys.stderr))
    loggers = [root, *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            kind = type(handler.formatter)
            plain = handler.formatter is None or f"{kind.__module__}.{kind.__name__}" in _PLAIN
            if type(handler) is logging.StreamHandler and plain:
                handler.setFormatter(JsonFormatter())


def json_handler(stream: Any) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


# Formatters that give plain text: the logging module's own, and Django's for runserver.
_PLAIN = ("logging.Formatter", "django.utils.log.ServerFormatter")


def print_exception(exc: BaseException) -> None:
    """A traceback on stderr: as Python prints it from the project's first frame
    (launcher.child.trace), or in JSON mode one object."""
    from launcher.child.trace import format_exception

    if not enabled():
        sys.stderr.write(format_exception(exc))
        sys.stderr.flush()
        return
    line = {
        "time": rfc3339(time.time()),
        "level": "error",
        "event": "server log",
        "message": f"{type(exc).__name__}: {exc}",
        **context(),
        "pid": os.getpid(),
        "traceback": format_exception(exc).rstrip("\n"),
    }
    sys.stderr.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
    sys.stderr.flush()


class JsonLines(io.TextIOBase):
    """JSON mode: text written here (a management command run in-process as a before_start
    step) goes out as one `step output` object a line, as the supervisor's own relay does for
    a step that is a process of its own."""

    def __init__(
        self, stream: Any, event: str = "step output", level: str = "info", **fields: Any
    ) -> None:
        self.stream = stream
        self.head = {"level": level, "event": event}
        self.fields = fields
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            entry = {"time": rfc3339(time.time()), **self.head, "message": line, **context(),
                     **self.fields, "pid": os.getpid()}
            self.stream.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.write("\n")
        self.stream.flush()


def lines_to(stream: Any, event: str, level: str = "info", **fields: Any) -> Any:
    """Where text for the console goes: `stream` itself, or in JSON mode JsonLines."""
    return JsonLines(stream, event, level, **fields) if enabled() else stream
