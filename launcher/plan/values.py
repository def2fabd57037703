"""Text a profile may hold where it reaches an argv, a path, an HTTP header or a unit file:
the annotated types the schema uses, each refusing what would break its destination."""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ByteSize, Discriminator, Field, Tag

from launcher.errors import CONTROL
from launcher.plan.bind import admin_bind
from launcher.plan.procfile import WEB

HEADER_SAFE = re.compile(r"[!-~]+")  # printable ASCII, no spaces: a Host header, a request path
def one_line(value: str) -> str:
    """Text that reaches an argv, a path, a header or a unit file: no control characters."""
    if match := CONTROL.search(value):
        raise ValueError(f"contains the control character U+{ord(match.group()):04X}")
    return value


def _word(value: str) -> str:
    if not value:
        raise ValueError("an empty word")
    return one_line(value)


def _no_nul(value: str) -> str:
    """Environment values may span lines (a PEM key), but the OS refuses a NUL byte."""
    if "\0" in value:
        raise ValueError("contains a NUL byte (U+0000)")
    return value


def _step(value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    """A before_start step: a management command line, or a non-empty argv."""
    words = value if isinstance(value, tuple) else (value,)
    for word in words:
        one_line(word)
    if isinstance(value, str):
        try:
            parsed = shlex.split(value)
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise ValueError(f"cannot split into words: {str(exc).lower()}") from None
        if not parsed:
            raise ValueError("an empty step; write a management command such as 'migrate'")
    elif not value or not value[0]:
        raise ValueError("an empty command; write an argv such as [./bin/warm-cache, --all]")
    return value


def memory_size(value: ByteSize) -> ByteSize:
    if not 2**20 <= value <= 2**50:
        raise ValueError("must be from 1MiB to 1PiB")
    return value


Line = Annotated[str, AfterValidator(one_line)]
# A description may be written over several lines (YAML `>` or `|`): its whitespace is folded.
Folded = Annotated[str, BeforeValidator(lambda v: " ".join(v.split()) if isinstance(v, str) else v),
                   AfterValidator(one_line)]
Word = Annotated[str, AfterValidator(_word)]
Step = Annotated[str | tuple[str, ...], AfterValidator(_step)]
ManagementCommand = Annotated[str, AfterValidator(_step)]  # manage.py's words, as one line

def _step_name(value: str) -> str:
    """A named step's key: also a metric label and part of `before_start.NAME` in messages."""
    if not _STEP_NAME.fullmatch(value):
        raise ValueError(
            f"'{value}' cannot name a step: a letter, then letters, digits, '_' or '-' (64 at most)"
        )
    return value


def _steps_form(value: object) -> object:
    if not isinstance(value, list | tuple | dict):
        raise ValueError("write a list of steps, or named steps (NAME: a command, or false)")
    return value


_STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
StepName = Annotated[str, AfterValidator(_step_name)]
# before_start: a list of steps, or named steps (`NAME: false` switches one off). Told apart by
# the value's type, so an error names the item that is wrong rather than both forms.
Steps = Annotated[
    Annotated[tuple[Step, ...], Tag("list")]
    | Annotated[dict[StepName, Step | Literal[False] | None], Tag("named")],
    Discriminator(lambda value: "named" if isinstance(value, dict) else "list"),
    BeforeValidator(_steps_form),
]
EnvValue = Annotated[str, AfterValidator(_no_nul)]


def _process_name(value: str) -> str:
    """A process's key: also part of `--only NAME`, a unit's and a Deployment's name."""
    if not _STEP_NAME.fullmatch(value):
        raise ValueError(
            f"'{value}' cannot name a process: a letter, then letters, digits, '_' or '-' "
            "(64 at most)"
        )
    if value == WEB:
        raise ValueError("'web' is the profile's own server: name the process otherwise")
    return value


ProcessName = Annotated[str, AfterValidator(_process_name)]


# In the JSON Schema: a string (HOST:PORT, a port, or ${VAR}) or a port number.
AdminBind = Annotated[
    str,
    BeforeValidator(admin_bind, json_schema_input_type=str | Annotated[int, Field(ge=1, le=65535)]),
]
