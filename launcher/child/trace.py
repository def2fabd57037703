"""A failure in the project's code as its author reads it: the traceback from the project's
first frame, without the frames of the launcher's own modules and of the server's importer
that only carried the import there (launcher/child/devsetup.py, uvicorn's importer,
launcher/child/app.py, importlib), nor Django's between them and the project. The final
`Type: message` line, a syntax error's file, line and caret, and chained exceptions stay.
$LAUNCHER_FULL_TRACEBACK=1 prints every frame.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from pathlib import Path

from launcher import wire

HEADER = "Traceback (most recent call last):\n"
SERVERS = ("uvicorn", "gunicorn")  # their importers and config loaders


def format_exception(exc: BaseException) -> str:
    """`exc` as Python prints it, trimmed to the project's frames (see the module)."""
    shown = traceback.TracebackException.from_exception(exc)
    if os.environ.get(wire.FULL_TRACEBACK_ENV) == "1":
        return "".join(shown.format())
    hidden = 0
    seen: set[int] = set()
    pending = [shown]
    while pending:  # the exception and those it was raised from or while handling
        each = pending.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        kept = project_frames(list(each.stack))
        hidden += len(each.stack) - len(kept)
        each.stack = traceback.StackSummary.from_list(kept)
        pending += [e for e in (each.__cause__, each.__context__) if e is not None]
    text = "".join(shown.format())
    if hidden:
        # as Python notes repeated lines: in the frames' place, the header left as it is
        note = (f"  [{hidden} frames of the launcher and the server's import hidden: "
                f"{wire.FULL_TRACEBACK_ENV}=1 shows them]\n")
        text = text.replace(HEADER, HEADER + note, 1)
    return text


def where(exc: BaseException) -> str | None:
    """`FILE, line N` of the project's last frame in `exc`'s traceback, if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = next((f for f in reversed(frames) if _in_project(f.filename)), None)
    return f"{last.filename}, line {last.lineno}" if last else None


def project_frames(frames: list[traceback.FrameSummary]) -> list[traceback.FrameSummary]:
    """From the first frame in the project on, without the launcher's and the servers';
    every frame but those when no frame is the project's (a failure inside a library)."""
    carriers = _carriers()
    kept = [f for f in frames if not _under(f.filename, carriers)]
    first = next((n for n, f in enumerate(kept) if _in_project(f.filename)), None)
    return kept if first is None else kept[first:]


def _dir(path: str) -> str:
    return str(Path(path).resolve()) + os.sep


def _carriers() -> list[str]:
    """Where the frames that only carried the import live: the launcher's package, the
    servers' (their importers), importlib's."""
    stdlib = Path(traceback.__file__).parent
    found = [_dir(str(Path(__file__).parents[1])), _dir(str(stdlib / "importlib"))]
    for name in SERVERS:
        module = sys.modules.get(name)
        if module is not None and module.__file__:
            found.append(_dir(str(Path(module.__file__).parent)))
    return found


def _under(filename: str, directories: list[str]) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return filename.startswith("<frozen importlib")
    path = str(Path(filename).resolve())
    return any(path.startswith(d) for d in directories)


def _in_project(filename: str) -> bool:
    """Under the working directory (the project), and not in an environment there (.venv)."""
    if filename.startswith("<") or not _under(filename, [_dir(os.getcwd())]):
        return False
    paths = sysconfig.get_paths()
    environments = {sys.prefix, sys.base_prefix, paths["purelib"], paths["platlib"]}
    return not _under(filename, [_dir(p) for p in environments if p])
