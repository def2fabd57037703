"""The admin listener (`admin.bind`): /livez, /readyz, /startupz and /metrics, answered by the
supervisor itself on a thread of its own, so they answer in milliseconds when every worker is
busy, while a reload holds the supervisor's loop, and whatever Host header they are sent.

- /startupz: 200 once the first generation has passed its probe.
- /livez: 200 while the supervisor runs and its serving generation (if any) is alive; during
  a restart's backoff too (the supervisor heals that itself, a kubelet restart would not help).
- /readyz: 200 while a generation serves and passes its probe; 503 during start-up, from the
  moment a stop signal arrives (so load balancers drop the pod while it drains), and after the
  probe's failure threshold.
- /metrics: the Prometheus text format (launcher/run/exposition.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from launcher.plan.model import Bind
from launcher.run.sockets import bind_listener

if TYPE_CHECKING:
    from launcher.run.exposition import AdminView

Answer = tuple[bool, str]
TEXT = "text/plain; charset=utf-8"


def startup(sup: AdminView) -> Answer:
    if sup.serving_since is None:
        return False, "starting"
    return True, "started"


def liveness(sup: AdminView) -> Answer:
    gen = sup.current
    if gen is not None and gen.server.poll() is not None:
        return False, f"generation {gen.number} exited; the supervisor restarts it"
    return True, "alive" if gen is not None else "alive, starting a generation"


def readiness(sup: AdminView) -> Answer:
    if sup.stopping():
        return False, "draining: a stop was asked for"
    gen, health = sup.current, sup.health
    if gen is None:
        return False, "starting" if sup.serving_since is None else "restarting"
    if health.failed:
        return False, f"unhealthy: {health.last}"
    return True, f"ready: generation {gen.number}"


Route = Callable[[], tuple[int, str, bytes]]


class AdminServer:
    """An HTTP server on its own thread; it reads the supervisor's state, never changes it."""

    def __init__(self, bind: Bind, sup: AdminView) -> None:
        sock = bind_listener(bind, 64)  # a taken port is a LaunchError naming it
        sock.set_inheritable(False)  # the servers must never hold it
        routes: dict[str, Route] = {
            "/startupz": lambda: _probe(startup(sup)),
            "/livez": lambda: _probe(liveness(sup)),
            "/readyz": lambda: _probe(readiness(sup)),
            "/metrics": lambda: _metrics(sup),
        }
        self._http = _Server(sock, routes)
        self.address = sock.getsockname()[:2]
        # No poll interval: the thread sleeps in accept until a request comes (no idle wake-up).
        thread = threading.Thread(
            target=self._http.serve_forever, args=(None,), name="admin", daemon=True
        )
        thread.start()

    def close(self) -> None:
        """At exit: the listening socket goes with the process; nothing else to end."""
        self._http.socket.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, routes: dict[str, Route]) -> None:
        # Not bound here: the socket is bound already (and getfqdn() is not called).
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.routes = routes


def _probe(answer: Answer) -> tuple[int, str, bytes]:
    ok, text = answer
    return (200 if ok else 503), TEXT, f"{text}\n".encode()


def _metrics(sup: AdminView) -> tuple[int, str, bytes]:
    from launcher.run.exposition import render

    content_type, body = render(sup)
    return 200, content_type, body


class _Handler(BaseHTTPRequestHandler):
    server_version = "launcher-admin"
    protocol_version = "HTTP/1.0"  # one request per connection: a probe, a scrape

    server: _Server

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path.partition("?")[0])
        try:
            status, content_type, body = route() if route else (404, TEXT, b"not found\n")
        except Exception as exc:  # a process gone mid-scrape: one line, never a traceback
            status, content_type, body = 500, TEXT, f"{exc.__class__.__name__}: {exc}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a kubelet probing every few seconds is not news."""
