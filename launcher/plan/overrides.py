"""Profile keys set on the command line (`--bind`, `--admin-bind`, `--log-format`): where they
go in the profile, and which option an error about one of them names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# option -> the dotted profile key it overrides
OPTIONS = {"--bind": "bind", "--admin-bind": "admin.bind", "--log-format": "log_format"}
# Not a profile key: which one process type (`web`, or a name in `processes:`) a command is
# for, as a pod or a per-type unit runs it (launch NAME --only worker).
ONLY = "--only"


def option_for(key: str) -> str:
    """The command-line option that sets the dotted profile `key` (`admin.bind` -> --admin-bind)."""
    return "--" + key.replace(".", "-").replace("_", "-")


def apply(data: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Set each dotted key in the merged profile data; a section keeps its other keys."""
    for key, value in overrides.items():
        *sections, last = key.split(".")
        node = data
        for name in sections:
            child = node.get(name)
            node[name] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[last] = value


def overriding(path: Iterable[str], keys: Iterable[str]) -> str | None:
    """The option behind the value at `path` (a key path), when the command line set it."""
    parts = tuple(path)
    for key in keys:
        wanted = tuple(key.split("."))
        if parts[: len(wanted)] == wanted:
            return option_for(key)
    return None
