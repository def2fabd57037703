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

Bounded as a server facing a network must be: one thread and a selector, whatever comes in.
At most MAX_CONNECTIONS are held; a new one over the cap pushes out the oldest that has not
sent its request yet (a flood of idle connections cannot lock a kubelet's probe out). A request
head must arrive within HEAD_TIMEOUT and fit in MAX_HEAD bytes (uvicorn's keep-alive timeout and
h11's head limit play the same part); one request per connection (HTTP/1.0, then close).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from launcher.plan.model import Bind
from launcher.run.sockets import bind_listener

Answer = tuple[bool, str]
Reply = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Reply]
Scrape = Callable[[], tuple[str, bytes]]  # /metrics: (content type, body)
TEXT = "text/plain; charset=utf-8"

MAX_CONNECTIONS = 32  # a kubelet and a scraper hold a few at a time
HEAD_TIMEOUT = 5.0  # seconds for a connection to send its request head, and to take the answer
MAX_HEAD = 8192  # bytes of request head
BACKLOG = 128
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


class ServerState(Protocol):
    @property
    def number(self) -> int: ...

    @property
    def server(self) -> Polled: ...


class Polled(Protocol):
    def poll(self) -> int | None: ...


class HealthState(Protocol):
    @property
    def failed(self) -> bool: ...

    @property
    def last(self) -> str: ...


class AdminState(Protocol):
    """What the admin listener reads of the supervisor; it never changes any of it."""

    @property
    def serving_since(self) -> float | None: ...

    @property
    def current(self) -> ServerState | None: ...

    @property
    def health(self) -> HealthState: ...

    def stopping(self) -> bool: ...


def startup(sup: AdminState) -> Answer:
    if sup.serving_since is None:
        return False, "starting"
    return True, "started"


def liveness(sup: AdminState) -> Answer:
    gen = sup.current
    if gen is not None and gen.server.poll() is not None:
        return False, f"generation {gen.number} exited; the supervisor restarts it"
    return True, "alive" if gen is not None else "alive, starting a generation"


def readiness(sup: AdminState) -> Answer:
    if sup.stopping():
        return False, "draining: a stop was asked for"
    gen, health = sup.current, sup.health
    if gen is None:
        return False, "starting" if sup.serving_since is None else "restarting"
    if health.failed:
        return False, f"unhealthy: {health.last}"
    return True, f"ready: generation {gen.number}"


class AdminServer:
    """An HTTP server on its own thread; it reads the supervisor's state, never changes it.
    `scrape` renders /metrics: (content type, body)."""

    def __init__(self, bind: Bind, sup: AdminState, scrape: Scrape) -> None:
        sock = bind_listener(bind, BACKLOG)  # a taken port is a LaunchError naming it
        sock.set_inheritable(False)  # the servers must never hold it
        routes: dict[str, Route] = {
            "/startupz": lambda: _probe(startup(sup)),
            "/livez": lambda: _probe(liveness(sup)),
            "/readyz": lambda: _probe(readiness(sup)),
            "/metrics": lambda: _metrics(scrape),
        }
        self.address = sock.getsockname()[:2]
        self._loop = _Loop(sock, routes)
        self._thread = threading.Thread(target=self._loop.run, name="admin", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """At exit: the thread closes its connections and the listener, then ends."""
        self._loop.stop()
        self._thread.join(timeout=1.0)


@dataclass
class _Conn:
    sock: socket.socket
    deadline: float
    head: bytearray = field(default_factory=bytearray)
    out: bytes | None = None  # the answer still to send, once the head is in


class _Loop:
    """The selector loop: accepts, reads heads, answers, and closes what overstays."""

    def __init__(self, listener: socket.socket, routes: dict[str, Route]) -> None:
        self.listener, self.routes = listener, routes
        listener.setblocking(False)
        self.conns: dict[socket.socket, _Conn] = {}  # in order of arrival
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopped = False
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def run(self) -> None:
        try:
            while not self._stopped:
                timeout = None
                if self.conns:  # the oldest deadline is the nearest: all are the same length
                    first = min(c.deadline for c in self.conns.values())
                    timeout = max(0.0, first - time.monotonic())
                for key, _ in self.selector.select(timeout):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        return
                    else:
                        self._serve(key.data)
                self._expire(time.monotonic())
        finally:
            for conn in list(self.conns.values()):
                self._drop(conn)
            for s in (self.listener, self._wake_r, self._wake_w):
                s.close()
            self.selector.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and the like: the pending ones wait for the next round
                return
            if len(self.conns) >= MAX_CONNECTIONS:
                idle = next((c for c in self.conns.values() if c.out is None), None)
                if idle is None:
                    sock.close()  # every slot is sending an answer: the newcomer waits its turn
                    continue
                self._drop(idle)
            sock.setblocking(False)
            conn = _Conn(sock, time.monotonic() + HEAD_TIMEOUT)
            self.conns[sock] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _serve(self, conn: _Conn) -> None:
        try:
            if conn.out is None:
                self._read(conn)
            if conn.out is not None:
                self._write(conn)
        except OSError:  # reset by the peer, and the like
            self._drop(conn)

    def _read(self, conn: _Conn) -> None:
        data = conn.sock.recv(4096)
        if not data:
            self._drop(conn)
            return
        conn.head += data
        end = conn.head.find(b"\r\n\r\n")
        if end < 0:
            end = conn.head.find(b"\n\n")
        if end >= 0:
            conn.out = self._answer(bytes(conn.head[:end]))
        elif len(conn.head) > MAX_HEAD:
            conn.out = _response(431, TEXT, b"request head too large\n", head_only=False)
        else:
            return
        self.selector.modify(conn.sock, selectors.EVENT_WRITE, conn)

    def _write(self, conn: _Conn) -> None:
        assert conn.out is not None
        sent = conn.sock.send(conn.out)
        conn.out = conn.out[sent:]
        if not conn.out:
            self._drop(conn)

    def _answer(self, head: bytes) -> bytes:
        """The whole response to one request head."""
        method, path = _request_line(head)
        if method not in ("GET", "HEAD"):
            status, ctype, body = (405, TEXT, b"GET or HEAD\n") if method else (
                400, TEXT, b"bad request line\n")
        else:
            route = self.routes.get(path.partition("?")[0])
            try:
                status, ctype, body = route() if route else (404, TEXT, b"not found\n")
            except Exception as exc:  # a process gone mid-scrape: one line, never a traceback
                status, ctype, body = 500, TEXT, f"{exc.__class__.__name__}: {exc}\n".encode()
        return _response(status, ctype, body, head_only=method == "HEAD")

    def _expire(self, now: float) -> None:
        for conn in [c for c in self.conns.values() if c.deadline <= now]:
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        self.conns.pop(conn.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        conn.sock.close()


def _request_line(head: bytes) -> tuple[str, str]:
    """(method, path) of `GET /livez HTTP/1.1`; ("", "") for anything else."""
    parts = head.split(b"\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return "", ""
    return parts[0], parts[1]


def _response(status: int, content_type: str, body: bytes, *, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.0 {status} {REASONS.get(status, '')}\r\n"
        "Server: launcher-admin\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    return head if head_only else head + body


def _probe(answer: Answer) -> Reply:
    ok, text = answer
    return (200 if ok else 503), TEXT, f"{text}\n".encode()


def _metrics(scrape: Scrape) -> Reply:
    content_type, body = scrape()
    return 200, content_type, body
