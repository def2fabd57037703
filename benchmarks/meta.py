"""Machine, versions and date of a run: what a reader needs to weigh its figures."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from benchmarks.results import Meta
from benchmarks.servers import REPO


def meta(*, quick: bool) -> Meta:
    """Taken at the start of a run; the caller adds `loadavg_at_end` when it is over."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": quick,
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
            ),
            "kernel": platform.release(),
            "loadavg_at_start": list(os.getloadavg()),
        },
        "versions": {
            "python": platform.python_version(),
            **{
                name: _version(name) for name in ("django", "gunicorn", "uvicorn", "uvicorn-worker")
            },
            "launcher": f"{_version('launcher')} ({_git_revision()})",
            "wrk": _wrk_version(),
        },
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "no git"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "launcher"))
    return f"{rev}{' + uncommitted changes in launcher/' if dirty else ''}"


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split("Copyright")[0].strip() or "unknown"
