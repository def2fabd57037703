"""The drain (launcher/child/drain.py) leans on private parts of uvicorn and uvicorn-worker,
with no upper bound on either: it checks them once and, where they moved, shuts down as uvicorn
does with one warning line. Here: the check against the installed versions (in scripts/installed,
each corner's), its answers for parts that are not there, the fallback serving and stopping
with one warning, and a real drain through reloads under keep-alive load."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import time
from importlib.metadata import version
from typing import Any

import pytest
import uvicorn
from packaging.requirements import Requirement
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from launcher.child import drain
from tests.conftest import PYTHON, ROOT, Env, Launch, Load, free_port, start, wait_ok
from tests.projects import deployable, generate

# Run in the launcher's interpreter (in scripts/installed: a corner's venv, its own uvicorn).
CHECK = """
import json, uvicorn_worker
from uvicorn.config import HTTP_PROTOCOLS
from launcher.child import drain
print(json.dumps({
    "versions": drain.versions(),
    "server": drain.missing_in_server(),
    "worker": drain.missing_in_worker(uvicorn_worker.UvicornWorker),
    "protocols": {name: drain.unfit(drain.protocol_named({"http": name}))
                  for name in HTTP_PROTOCOLS},
    "http2": drain.unfit(drain.protocol_named({"http": "zttp", "http2": True})),
}))
"""


def test_the_dependencies_have_no_upper_bound() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    import tomllib

    for line in tomllib.loads(text)["project"]["dependencies"]:
        requirement = Requirement(line)
        assert all(s.operator == ">=" for s in requirement.specifier), line
    assert uvicorn.__version__ == version("uvicorn")


@pytest.mark.installed
def test_the_drains_parts_are_there_in_the_installed_uvicorn(env: Env) -> None:
    out = subprocess.run([PYTHON, "-c", CHECK], capture_output=True, text=True, timeout=60,
                         cwd=env.tmp, env=env.vars())
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["server"] == [] and found["worker"] == [], found
    assert found["protocols"]["h11"] is None, found
    for name, reason in found["protocols"].items():  # each that imports here is drained
        assert reason is None or "ModuleNotFoundError" in reason, (name, reason)
    assert "HTTP/2" in found["http2"]  # many streams on a connection: uvicorn's own shutdown


def test_the_check_names_what_moved() -> None:
    """What a future uvicorn could look like: each missing part is named, in one line."""

    class Cycle:  # a request cycle that no longer keeps `keep_alive`
        def __init__(self) -> None:
            self.response_complete = self.response_started = False
            self.default_headers: list[Any] = []

    class Protocol(asyncio.Protocol):
        def __init__(self) -> None:
            self.cycle = None

    globals()["RequestResponseCycle"] = Cycle  # beside the protocol, as in uvicorn's modules
    try:
        missing = drain.missing_in_protocol(Protocol)
    finally:
        del globals()["RequestResponseCycle"]
    assert missing == ("Protocol.connection_made uses connections",
                       "Cycle.__init__ uses keep_alive")
    reason = drain.unfit(Protocol)
    assert reason is not None and "\n" not in reason
    assert "Cycle.__init__ uses keep_alive" in reason and drain.FALLBACK in reason

    class Worker:  # an uvicorn-worker whose run no longer goes through _serve
        def __init__(self) -> None:
            self.config = None

        def run(self) -> None:
            pass

        async def _serve(self) -> None:
            pass

    assert drain.missing_in_worker(Worker) == (
        "Worker.run uses _serve", "UvicornWorker._install_sigquit_handler(self)"
    )
    assert drain.missing_in_protocol(asyncio.BaseProtocol) == (
        "BaseProtocol.data_received", "a RequestResponseCycle beside BaseProtocol"
    )
    assert drain.missing_in_protocol(type("Sub", (H11Protocol,), {})) == ()


class Plain(asyncio.Protocol):
    """An HTTP/1.0-ish protocol the drain does not know (no request cycle), as a moved uvicorn
    protocol would look to it: every answer closes its connection."""

    def __init__(self, config: Config, server_state: Any, app_state: Any, **_: Any) -> None:
        self.server_state = server_state

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        self.transport.close()

    def shutdown(self) -> None:
        self.transport.close()


def test_a_server_whose_parts_moved_serves_and_stops_as_uvicorn_does_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told = list(drain._told)
    drain._told.clear()  # this process may have warned already (another test's server)

    async def serve_twice() -> list[bytes]:
        answers = []
        for _ in range(2):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = drain.DrainingServer(Config(app=lambda *a: None, http=Plain,
                                                 lifespan="off", log_config=None))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answers.append(await asyncio.wait_for(reader.read(), 10))
            writer.close()
            assert not server.drains
            server.should_exit = True
            await asyncio.wait_for(task, 10)
            sock.close()
        return answers

    try:
        with caplog.at_level(logging.WARNING, logger="uvicorn.error"):
            answers = asyncio.run(serve_twice())
    finally:
        drain._told[:] = told
    assert all(answer.endswith(b"\r\n\r\nok") for answer in answers)
    warnings = [r.getMessage() for r in caplog.records if drain.FALLBACK in r.getMessage()]
    assert len(warnings) == 1, warnings  # once a process, not once a server
    assert "Plain" in warnings[0] and "uvicorn " in warnings[0]


@pytest.mark.installed
@pytest.mark.timeout(180)
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_reloads_drain_keep_alive_clients_of_a_generated_project(
    env: Env, launch: list[Launch], server: str
) -> None:
    """prod-asgi on a `startproject` site, under gunicorn with launcher's uvicorn worker and
    under uvicorn alone: each reload moves keep-alive clients to the new generation with
    `Connection: close`, none fails (uvicorn's own shutdown resets a connection it accepted
    just before the SIGTERM), and the drain is the launcher's (no fallback warning) on the
    installed uvicorn."""
    project = deployable(generate("startproject", env.tmp))
    # A reload runs `check --deploy --fail-level ERROR` (start runs the plain check): Django
    # 6.1's startproject settings name the console email backend, its mail.E001 at deploy.
    (project / "configs").mkdir()
    (project / "configs" / "prod-asgi.yaml").write_text(
        f"extends: prod-asgi\ncheck_deploy: false\nserver: {server}\n"
    )
    port = free_port()
    item = start(launch, env, "prod-asgi", "--bind", f"127.0.0.1:{port}", cwd=project,
                 WEB_CONCURRENCY="2")
    wait_ok(item, port, "/admin/login/")  # DEBUG off: no page at /
    # uvicorn's --workers spawn each worker afresh (a reload costs more CPU than gunicorn's
    # forks): one reload there
    reloads = 2 if server == "gunicorn" else 1
    with Load(port, path="/admin/login/", clients=3, keep_alive=True) as load:
        for n in range(reloads):
            time.sleep(0.7)
            item.signal(signal.SIGHUP)
            item.wait_for(f"reloaded: generation {n + 2} serving", timeout=60)
        time.sleep(0.7)
    assert load.failures == []
    assert load.ok > 20
    assert load.closed_by_server >= reloads  # each reload told its clients to reconnect
    assert drain.FALLBACK not in item.output
    assert item.stop() == 0
