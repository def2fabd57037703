"""HTTP health probes with deadlines, over TCP or a unix socket.

A probe needs the status line and one header, so it speaks that much HTTP/1.1 itself:
http.client would load ssl (4 MiB, a sixth of the supervisor) for HTTPS a loopback probe
never uses.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Mapping
from enum import Enum

from launcher.plan.model import Bind, Probe
from launcher.wire import (
    PROBE_USER_AGENT,
    SMOKE_ERROR_HEADER,
    SMOKE_SEEN_HEADER,
    SMOKE_TOKEN_HEADER,
    SMOKE_USER_AGENT,
    decode_smoke_error,
)

MAX_RESPONSE = 1 << 20  # bytes read from an answer at most: a probe wants only its head


class BadResponse(Exception):
    """The answer was not HTTP."""


class Response:
    """An answer's status and headers (names lower-cased)."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise BadResponse(f"not an HTTP status line: {lines[0][:80]!r}")
        self.status = int(code)
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def getheader(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def get(target: Bind, probe: Probe, headers: Mapping[str, str] | None = None) -> Response:
    """One GET of the probe's path, `Connection: close`, within `probe.timeout` in all;
    `headers` add to (or replace) the probe's own."""
    deadline = time.monotonic() + probe.timeout
    if target.is_unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(probe.timeout)
        try:
            sock.connect(str(target.path))
        except OSError:
            sock.close()
            raise
    else:
        sock = socket.create_connection((str(target.host), target.port), probe.timeout)
    with sock:
        # Send a Host the site accepts: Django answers 400 to hosts outside ALLOWED_HOSTS.
        fields = {"Host": probe.host, "User-Agent": PROBE_USER_AGENT, "Connection": "close",
                  **(headers or {})}
        lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        request = f"GET {probe.path} HTTP/1.1\r\n{lines}\r\n"
        sock.sendall(request.encode("latin-1"))
        data = b""
        while len(data) < MAX_RESPONSE:  # to the end, so the server never writes to a reset
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, found, _ = data.partition(b"\r\n\r\n")
    if not found:
        raise BadResponse("the connection closed before a whole answer" if data else
                          "the connection closed without an answer")
    return Response(head)


def probe_once(target: Bind, probe: Probe, *, any_status: bool = False) -> tuple[bool, str]:
    """One GET of the health path: (healthy?, reason). Never raises.

    With `any_status`, any HTTP answer counts: the server is up, whatever the path says.
    """
    try:
        response = get(target, probe)
    except (OSError, BadResponse) as exc:
        return False, f"GET {probe.path}: {exc.__class__.__name__}: {exc}"
    if response.status != probe.expected_status and not any_status:
        return (
            False,
            f"GET {probe.path} answered {response.status}, expected {probe.expected_status}"
            + _hint(probe, response),
        )
    return True, f"GET {probe.path} answered {response.status}"


def _hint(probe: Probe, response: Response) -> str:
    """What to change, in the profile's words, for the answers a real project gives."""
    status = response.status
    if probe.own:
        return ": the launcher's own probe failed inside the worker (see the server log)"
    if status in (301, 302, 307, 308):
        location = response.getheader("Location") or "?"
        return (
            f" (a redirect to {location}): set health.path to the URL it redirects to, "
            "or remove health.path to use the launcher's own probe"
        )
    if status == 400:
        return (
            f": Django rejected Host '{probe.host}' (not in ALLOWED_HOSTS): add it to "
            "ALLOWED_HOSTS, set health.host to an allowed name, or remove health.path to use "
            "the launcher's own probe"
        )
    if status == 404:
        return (
            f": the site has no URL {probe.path}: set health.path to one it answers, or remove "
            "health.path to use the launcher's own probe"
        )
    return ""



class Smoke(Enum):
    """What a smoke answer means for the new generation."""

    PASS = "pass"  # it may serve
    REFUSE = "refuse"  # it must not: the message says why
    AGAIN = "again"  # another generation answered (a shared socket): ask again


def smoke_once(target: Bind, probe: Probe, path: str, token: str) -> tuple[Smoke, str]:
    """One GET of a site page as the new generation's smoke request. Never raises."""
    page = dataclasses.replace(probe, path=path)
    headers = {"User-Agent": SMOKE_USER_AGENT, SMOKE_TOKEN_HEADER: token}
    try:
        response = get(target, page, headers)
    except TimeoutError:
        return smoke_verdict(path, None, timed_out=True)
    except (OSError, BadResponse) as exc:
        return smoke_verdict(path, None, failure=f"{exc.__class__.__name__}: {exc}")
    error = response.getheader(SMOKE_ERROR_HEADER)
    return smoke_verdict(path, response.status, decode_smoke_error(error) if error else "",
                         seen=response.getheader(SMOKE_SEEN_HEADER) == "1")


def smoke_verdict(
    path: str, status: int | None, error: str = "", *, seen: bool = True, failure: str = "",
    timed_out: bool = False,
) -> tuple[Smoke, str]:
    """Whether a smoke answer lets the generation serve, and why in one line.

    A 5xx refuses, naming the exception the app wrapper saw when there was one; so does a
    connection that ended without an answer (a worker that died on the page). Any other status
    passes: a redirect to a login page, or 404 at the root of a site without one, is a site
    that works. A page slower than the probe's timeout is not judged: slow is not broken. An
    answer without the generation's mark came from another generation on the same socket."""
    if timed_out:
        return Smoke.PASS, f"GET {path}: no answer within the probe's timeout, not judged"
    if status is None:
        return Smoke.REFUSE, f"GET {path}: {failure or 'no answer'}"
    if not seen:
        return Smoke.AGAIN, f"GET {path} was answered by another generation"
    if status < 500:
        return Smoke.PASS, f"GET {path} answered {status}"
    return Smoke.REFUSE, f"GET {path} answered {status}" + (f": {error}" if error else "")
