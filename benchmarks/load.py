"""Load generation with wrk, and the parse of its report.

wrk is a C load generator: a Python client on the same 2 cores would measure itself.
"""

from __future__ import annotations

import re
import signal
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.servers import http_get

THREADS = 2
CONNECTIONS = 32
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and every kind of failure."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Failed requests: non-2xx/3xx answers plus connect/read/write/timeout errors."""
        return self.non_2xx_3xx + sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(text: str) -> WrkResult:
    """Parse `wrk --latency` output (works for runs ended early by SIGINT too)."""
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", text, re.M))
    done = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+),", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not (done and rps and "50" in pct and "99" in pct):
        raise ValueError(f"unexpected wrk output:\n{text}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return WrkResult(
        rps=float(rps[1]),
        p50_ms=_ms(pct["50"]),
        p99_ms=_ms(pct["99"]),
        requests=int(done[1]),
        seconds=_ms(done[2] + done[3]) / 1e3,
        non_2xx_3xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=(
            dict(
                zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
            )
            if errors
            else {}
        ),
    )


def _argv(port: int, path: str, seconds: int, headers: tuple[str, ...] = ()) -> list[str]:
    return [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        *(arg for header in headers for arg in ("-H", header)),
        f"http://127.0.0.1:{port}{path}",
    ]


def wrk(port: int, path: str, seconds: int) -> WrkResult:
    """One wrk run of `seconds` (wrk takes whole seconds) against 127.0.0.1:port."""
    out = subprocess.run(
        _argv(port, path, seconds), capture_output=True, text=True, check=True, timeout=seconds + 30
    )
    return parse_wrk(out.stdout)


def start_wrk(
    port: int, path: str, seconds: int, headers: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    """A wrk run in the background, to be ended early with `finish_wrk`."""
    return subprocess.Popen(
        _argv(port, path, seconds, headers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_wrk(proc: subprocess.Popen[str], *, interrupt: bool = True) -> WrkResult:
    """SIGINT makes wrk stop and print its report, as Ctrl-C does."""
    if interrupt and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    try:
        return parse_wrk(out)
    except ValueError as exc:
        raise ValueError(f"{exc}\nwrk exit code {proc.returncode}; stderr: {err}") from None


def warm(port: int, paths: list[str], count: int = 20) -> None:
    """A few requests per endpoint first, so first-hit costs stay out of the measured runs."""
    for path in paths:
        for _ in range(count):
            http_get(port, path)
