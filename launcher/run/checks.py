"""Reading what the app check (launcher.child.check) says: one JSON object per line."""

from __future__ import annotations

import json
from typing import Any


def parse_line(line: str) -> dict[str, Any]:
    """One line of the app check's output; anything else the project printed gives {}."""
    try:
        item = json.loads(line)
    except ValueError:
        return {}
    return item if isinstance(item, dict) else {}


def reported_error(output: str) -> str | None:
    """The error the app check reported (its message names the file or setting), if any."""
    for line in output.splitlines():
        error = parse_line(line).get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))
    return None
