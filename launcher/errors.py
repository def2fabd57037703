"""Error types that travel up to the CLI, which renders each as one line and an exit code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Control characters (a newline in a profile value) escaped: a message stays one line."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class LauncherError(Exception):
    """Base: anything the CLI should print as a single line, never as a traceback."""

    exit_code = 2

    def render(self) -> str:
        return str(self)


@dataclass
class ProfileError(LauncherError):
    """A bad profile: where it is (file, line, key) and what is wrong."""

    file: Path | None
    line: int | None
    key: str | None
    message: str

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file) + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, f"key '{self.key}'" if self.key else "") if p]
        prefix = ": ".join(parts)
        return one_line(f"{prefix}: {self.message}" if prefix else self.message)

    def __str__(self) -> str:
        return self.render()


@dataclass
class LaunchError(LauncherError):
    """Something the launch could not do (port taken, app missing, step failed), with a hint."""

    what: str
    hint: str = ""
    code: int = 2

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code

    def render(self) -> str:
        return f"{self.what} ({self.hint})" if self.hint else self.what

    def __str__(self) -> str:
        return self.render()
