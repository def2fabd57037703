"""HTTP health probes with deadlines, over TCP or a unix socket."""

from __future__ import annotations

import http.client
import socket

from launcher.plan.model import Bind, Probe


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def probe_once(target: Bind, probe: Probe, *, any_status: bool = False) -> tuple[bool, str]:
    """One GET of the health path: (healthy?, reason). Never raises.

    With `any_status`, any HTTP answer counts: the server is up, whatever the path says.
    """
    if target.is_unix:
        conn: http.client.HTTPConnection = _UnixConnection(str(target.path), probe.timeout)
    else:
        conn = http.client.HTTPConnection(str(target.host), target.port, timeout=probe.timeout)
    try:
        # Send a Host the site accepts: Django answers 400 to hosts outside ALLOWED_HOSTS.
        conn.request(
            "GET", probe.path, headers={"Host": probe.host, "User-Agent": "launcher-probe"}
        )
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET {probe.path}: {exc.__class__.__name__}: {exc}"
    finally:
        conn.close()
    if response.status != probe.expected_status and not any_status:
        return (
            False,
            f"GET {probe.path} answered {response.status}, expected {probe.expected_status}"
            + _hint(probe, response),
        )
    return True, f"GET {probe.path} answered {response.status}"


def _hint(probe: Probe, response: http.client.HTTPResponse) -> str:
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
