"""A failed check's output, told in one line: the exception and where in the project it was
raised, or which Django system checks failed (their ids), instead of only the last line."""

from __future__ import annotations

import re
from pathlib import Path

# A traceback frame: `  File "/srv/site/views.py", line 12, in <module>` (or without `in`).
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)
# A Django system check message: `demo_site.Thing: (models.E001) text` ('?' for global ones).
_CHECK = re.compile(r"^(?P<obj>\S[^\n]*?): \((?P<id>[\w.]+\.[EC]\d+)\) (?P<msg>[^\n]*)$", re.M)
MAX_MESSAGE = 120  # characters of each failed check's own message


def explain(output: str, code: int, project: Path) -> str:
    """One line for a check process that failed with `code` after printing `output`."""
    failed = _CHECK.findall(output)
    if failed:
        shown = "; ".join(f"{cid} {obj}: {_trim(msg)}" for obj, cid, msg in failed)
        count = f"{len(failed)} error{'s' if len(failed) > 1 else ''}"
        return f"Django system checks failed ({count}): {shown}"
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    if not lines:
        return f"exit code {code}"
    where = _where(output, project)
    return f"{lines[-1]} ({where})" if where and where not in lines[-1] else lines[-1]


def _where(output: str, project: Path) -> str:
    """`file, line N` of the last frame in the project's own code, else of the last real file."""
    frames = [(m["file"], m["line"]) for m in _FRAME.finditer(output)]
    files = [(f, n) for f, n in frames if not f.startswith("<")]
    own = [(f, n) for f, n in files if Path(f).is_relative_to(project)]
    candidates = own or files
    if not candidates:
        return ""
    file, line = candidates[-1]
    return f"{file}, line {line}"


def _trim(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
