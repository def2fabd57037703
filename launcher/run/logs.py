"""The launcher's own lines, in one of two shapes: the readable `[launch] ...` text, or one
JSON object per line (`log_format: json`) that a log pipeline takes without a parser.

Every line the launcher writes is made here: the supervisor's, start-up's, a before_start
step's output and the command line's `launch: error: ...`. An event has a short, stable name
(`serving`, `reloaded`, `restarting`, ...) and the fields that matter to it; the text shape
shows the time (as gunicorn's lines do, so the two read together) and the message; under
systemd's journal, which stamps every line itself, only the message. Secrets are masked in the
message and in every text field.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping

from launcher.plan.secrets import Masker

TEXT = "text"
JSON = "json"
PREFIX = "[launch] "
JOURNAL_ENV = "JOURNAL_STREAM"  # set by systemd when stderr is the journal, which adds the time


def colour(env: Mapping[str, str]) -> bool:
    """Whether lines may be coloured: stderr is a terminal and NO_COLOR is not set
    (https://no-color.org)."""
    return sys.stderr.isatty() and not env.get("NO_COLOR")


def write_line(line: str) -> None:
    """To stderr in one write: lines from several threads never interleave."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def stamp(at: float) -> str:
    """`at` as gunicorn writes its own: `[2026-12-07 16:16:58 +0000] `, local time."""
    return time.strftime("[%Y-%m-%d %H:%M:%S %z] ", time.localtime(at))


def rfc3339(at: float) -> str:
    """`at` (seconds since the epoch) in RFC 3339, UTC, to the millisecond."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
    return f"{seconds}.{int(at % 1 * 1000):03d}Z"


def render(
    log_format: str,
    event: str,
    message: str,
    *,
    level: str = "info",
    masker: Masker | None = None,
    prefix: str = PREFIX,
    profile: str | None = None,
    generation: int | None = None,
    fields: Mapping[str, object] | None = None,
) -> str:
    """One line: `prefix + message` as text, or the JSON object of the event.

    Values that are None are left out (no generation before the first one)."""
    text = masker.text(message) if masker is not None else message
    if log_format != JSON:
        stamped = prefix == PREFIX and not os.environ.get(JOURNAL_ENV)
        return (stamp(time.time()) if stamped else "") + prefix + text
    given: dict[str, object] = {
        "time": rfc3339(time.time()),
        "level": level,
        "event": event,
        "message": text,
        "profile": profile,
        "generation": generation,
        "pid": os.getpid(),
    }
    line: dict[str, object] = {}
    for name, value in {**given, **(fields or {})}.items():
        if value is None:
            continue
        if isinstance(value, str) and masker is not None:
            value = masker.text(value)
        elif isinstance(value, float):
            value = round(value, 3)
        line[name] = value
    return json.dumps(line, ensure_ascii=False, default=str)
