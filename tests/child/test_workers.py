"""launcher/child/workers.py leans on private parts of uvicorn and uvicorn-worker, so
pyproject.toml pins both to the minor versions tested; this checks that the parts it uses are
there, shaped as it uses them, in the installed versions. A new version that moves them fails
here, before a drain silently stops working."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import uvicorn
import uvicorn_worker
from packaging.specifiers import SpecifierSet
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import RequestResponseCycle
from uvicorn.server import Server

from tests.conftest import ROOT


def pinned(package: str) -> SpecifierSet:
    text = (ROOT / "pyproject.toml").read_text()
    line = next(row for row in text.splitlines() if row.strip().startswith(f'"{package}>='))
    return SpecifierSet(line.strip().strip('",')[len(package):])


def test_the_installed_versions_are_in_the_pinned_ranges() -> None:
    assert version("uvicorn") in pinned("uvicorn")
    assert version("uvicorn-worker") in pinned("uvicorn-worker")
    assert uvicorn.__version__ == version("uvicorn")


def test_uvicorn_worker_serve_and_sigquit_handler_are_there() -> None:
    worker = uvicorn_worker.UvicornWorker
    assert inspect.iscoroutinefunction(worker._serve)
    assert callable(worker._install_sigquit_handler)
    assert list(inspect.signature(worker._install_sigquit_handler).parameters) == ["self"]


def test_server_state_connections_and_the_cycle_fields_are_there() -> None:
    server = Server(Config(app=lambda *a: None))
    assert isinstance(server.server_state.connections, set)
    assert hasattr(server, "started")
    assert "self.servers" in inspect.getsource(Server.startup)  # closed by the drain
    for name in ("response_complete", "response_started", "keep_alive", "default_headers"):
        assert name in inspect.getsource(RequestResponseCycle.__init__), name
