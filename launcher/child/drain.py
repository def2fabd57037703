"""The drain: uvicorn's shutdown without dropping requests already on their way, built on
private parts of uvicorn and uvicorn-worker, the only module here that touches them.

Those parts are not an API: a release may move them. They are checked once per process (by the
gunicorn master before it forks its workers, else by the server that needs them), by reading
the names the compiled code of the classes in use stores and calls (no source files needed).
Where one is missing, the server shuts down as uvicorn itself does and one warning line says
why; nothing fails. tests/child/test_workers.py runs the check against the installed uvicorn
(every corner of scripts/installed), and a reload under keep-alive load proves the drain.

The parts: `Server.servers` (the listeners, closed first), `server_state.connections`, each
HTTP connection's `cycle` (the request it serves) with `response_complete`, `response_started`,
`default_headers` and `keep_alive`, the HTTP protocol's `data_received`; uvicorn-worker's
`UvicornWorker._serve` (called by its `run`) and `_install_sigquit_handler`; the name `Server`
in `uvicorn.main.run` and in `Process.server` of `uvicorn.supervisors.multiprocess`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import socket
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from uvicorn.config import Config
from uvicorn.server import Server, ServerState

# Seconds an idle connection gets, once a drain starts, to send one more request: it is answered
# with `Connection: close` instead of being closed under the client's next request.
IDLE_GRACE = 1.0
CONNECTION_CLOSE = (b"connection", b"close")
CYCLE_FIELDS = ("response_complete", "response_started", "default_headers", "keep_alive")
FALLBACK = "a reload or stop closes idle keep-alive connections as uvicorn itself does"

_told: list[str] = []  # the warning this process (or the master it was forked from) gave


def lacks(owner: type | ModuleType, method: str, *names: str) -> list[str]:
    """`Owner.method uses NAME` for each of `names` the method's own code never mentions (an
    attribute it sets or reads, a method it calls): a cheap look at compiled code, no source
    files needed. A method that is not there lacks them all; a property is read by its getter."""
    found = getattr(owner, method, None)
    code = getattr(found.fget if isinstance(found, property) else found, "__code__", None)
    mentioned = set(code.co_names) if code is not None else set()
    return [f"{owner.__name__}.{method} uses {n}" for n in names if n not in mentioned]


@functools.cache
def missing_in_server() -> tuple[str, ...]:
    """The parts of uvicorn's Server the drain uses that are not there."""
    missing = lacks(Server, "startup", "servers") + lacks(Server, "__init__", "server_state")
    missing += lacks(Server, "startup", "started")
    if not isinstance(getattr(ServerState(), "connections", None), set):
        missing.append("ServerState.connections")
    if not inspect.iscoroutinefunction(getattr(Server, "shutdown", None)):
        missing.append("Server.shutdown")
    return tuple(missing)


@functools.cache
def missing_in_protocol(protocol: type) -> tuple[str, ...]:
    """The parts of this HTTP protocol class (uvicorn's h11, httptools or zttp one, or a
    subclass of one) that the drain uses and that are not there: HTTP/2's many streams per
    connection have no one `cycle`, and are not drained."""
    name = protocol.__name__
    missing = []
    if not callable(getattr(protocol, "data_received", None)):
        missing.append(f"{name}.data_received")
    found = _implementation(protocol)
    if found is None:
        return (*missing, f"a RequestResponseCycle beside {name}")
    implementation, cycle = found
    missing += lacks(implementation, "__init__", "cycle")
    missing += lacks(implementation, "connection_made", "connections")
    missing += lacks(cycle, "__init__", *CYCLE_FIELDS)
    return tuple(missing)


def _implementation(protocol: type) -> tuple[type, type] | None:
    """uvicorn's own class among the protocol's bases (the first whose module defines a
    RequestResponseCycle), and that cycle class."""
    for klass in protocol.__mro__:
        cycle = getattr(sys.modules.get(klass.__module__), "RequestResponseCycle", None)
        if isinstance(cycle, type):
            return klass, cycle
    return None


@functools.cache
def missing_in_worker(worker: type) -> tuple[str, ...]:
    """The parts of uvicorn-worker's UvicornWorker (`worker`) the launcher's subclass overrides
    or calls, that are not there."""
    missing = []
    if not inspect.iscoroutinefunction(getattr(worker, "_serve", None)):
        missing.append("UvicornWorker._serve")
    else:
        missing += lacks(worker, "run", "_serve")
    handler = getattr(worker, "_install_sigquit_handler", None)
    if not callable(handler) or list(inspect.signature(handler).parameters) != ["self"]:
        missing.append("UvicornWorker._install_sigquit_handler(self)")
    missing += lacks(worker, "__init__", "config")
    return tuple(missing)


def protocol_named(config_kwargs: Mapping[str, Any]) -> type | str:
    """The HTTP protocol class uvicorn will use for these Config kwargs, without loading the
    app (the gunicorn master checks before any worker loads it); a string says why not."""
    if config_kwargs.get("http2"):
        return "HTTP/2 (many streams per connection)"
    http = config_kwargs.get("http", "auto")
    if not isinstance(http, str):
        return http if isinstance(http, type) else f"http={http!r}"
    try:
        from uvicorn.config import HTTP_PROTOCOLS
        from uvicorn.importer import import_from_string

        protocol = import_from_string(HTTP_PROTOCOLS.get(http, http))
    except Exception as exc:
        return f"http={http!r} ({type(exc).__name__})"
    return protocol if isinstance(protocol, type) else f"http={http!r}"


def unfit(protocol: type | str, *, worker: type | None = None) -> str | None:
    """One line: what the drain cannot find for this protocol (and worker class), or None."""
    missing = list(missing_in_server())
    if isinstance(protocol, str):
        missing.append(protocol)
    else:
        missing += missing_in_protocol(protocol)
    if worker is not None:
        missing += missing_in_worker(worker)
    return _lacking(missing) if missing else None


def _lacking(missing: list[str]) -> str:
    """The one warning line: the installed versions, what they lack, what happens instead."""
    return f"{versions()} lack what launcher's drain uses ({', '.join(missing)}): {FALLBACK}"


def versions() -> str:
    """The installed uvicorn and uvicorn-worker, for the warning."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("uvicorn", "uvicorn-worker"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{package} {version(package)}")
    return " / ".join(found) or "uvicorn"


def serve_uvicorn_cli_with_the_drain() -> None:
    """Have uvicorn's own command line build the draining server: `run` (one process) and
    the `--workers` supervisor's `Process.server` look the name `Server` up in their modules'
    globals when called. Where either does not, uvicorn's own shutdown and one warning."""
    import uvicorn.main  # noqa: F401  (the package's `main` attribute is the click command)
    import uvicorn.supervisors.multiprocess as multiprocess

    cli = sys.modules["uvicorn.main"]
    process = getattr(multiprocess, "Process", None)
    missing = lacks(cli, "run", "Server") + (
        lacks(process, "server", "Server") if isinstance(process, type)
        else ["uvicorn.supervisors.multiprocess.Process"]
    )
    if missing:
        warn_once(_lacking(missing))
        return
    cli.Server = DrainingServer  # type: ignore[attr-defined]
    multiprocess.Server = DrainingServer  # type: ignore[misc]


def warn_once(reason: str, say: Callable[[str], object] | None = None) -> None:
    """One warning a process: a worker forked after its master gave one stays quiet."""
    if _told:
        return
    _told.append(reason)
    (say or logging.getLogger("uvicorn.error").warning)(reason)


class DrainingServer(Server):
    """uvicorn's Server, with a shutdown that does not drop requests already on their way.

    uvicorn's shutdown closes every connection that is not inside a request at that instant:
    one accepted a moment ago whose request is still in the socket buffer, and every idle
    keep-alive connection, where a busy client has often just sent its next request. Those
    clients see a reset or an empty reply during a graceful reload. Here the drain stops
    accepting, answers each connection's next request with `Connection: close` (so the
    client opens a new connection, to the new generation), gives idle connections
    IDLE_GRACE to send it, then shuts down as uvicorn does. Where the parts it needs are not
    there (see `unfit`), uvicorn's own shutdown, and one warning.
    """

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.draining = False
        self.drains = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        reason = unfit(self.config.http_protocol_class)
        if reason is None:
            self.drains = True
            self.config.http_protocol_class = _draining_protocol(
                self.config.http_protocol_class, self
            )
        else:
            warn_once(reason)
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not self.drains:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        self.draining = True
        for conn in self.server_state.connections:
            cycle = getattr(conn, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                _answer_then_close(cycle)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDLE_GRACE
        while loop.time() < deadline and any(map(_idle, self.server_state.connections)):
            await asyncio.sleep(0.005)
        await super().shutdown(sockets)


def _draining_protocol(base: type[asyncio.Protocol], server: DrainingServer) -> type:
    """uvicorn's HTTP protocol class (h11, httptools or zttp), marking requests that arrive
    during a drain before the app answers them. A class, not a patched instance: uvloop's
    transports hold on to the bound method."""

    class DrainingProtocol(base):  # type: ignore[valid-type, misc]
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if server.draining and cycle is not None and not cycle.response_complete:
                _answer_then_close(cycle)

    return DrainingProtocol


def _answer_then_close(cycle: Any) -> None:
    """The response to this request says `Connection: close`, and the connection closes after."""
    if not cycle.response_started:
        cycle.default_headers = [*cycle.default_headers, CONNECTION_CLOSE]
    cycle.keep_alive = False


def _idle(conn: asyncio.Protocol) -> bool:
    """An HTTP connection between requests (fresh, or kept alive); websockets are not."""
    if not hasattr(conn, "cycle"):
        return False
    cycle = conn.cycle
    return cycle is None or bool(cycle.response_complete)

