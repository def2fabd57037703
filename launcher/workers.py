"""gunicorn worker classes, loaded by import string inside gunicorn's worker processes.

gunicorn can only take a worker class by name, and uvicorn-worker reads its uvicorn settings from
the class attribute ``CONFIG_KWARGS``. Rather than have users write a subclass per setting
(the usual ``lifespan = "off"`` file for Django), this one class takes its kwargs from the
environment the launcher sets: ``LAUNCHER_UVICORN_CONFIG`` holds them as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as _BaseUvicornWorker

CONFIG_ENV = "LAUNCHER_UVICORN_CONFIG"
FRESH_CONNECTION_GRACE = 0.5  # seconds a just-accepted connection gets to send its request


class DrainingServer(Server):
    """uvicorn's Server, minus the reset of connections accepted just before a shutdown.

    uvicorn's shutdown closes every connection that has not parsed a request yet, including
    one accepted a moment ago whose request is still in the socket buffer: the client sees a
    connection reset during a graceful reload. Stop accepting first, let such connections
    deliver their request (bounded), then shut down as uvicorn does.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FRESH_CONNECTION_GRACE
        while loop.time() < deadline and any(
            getattr(conn, "cycle", True) is None for conn in self.server_state.connections
        ):
            await asyncio.sleep(0.005)
        await super().shutdown(sockets)


class UvicornWorker(_BaseUvicornWorker):
    """uvicorn-worker with CONFIG_KWARGS from the profile; lifespan off unless it says otherwise."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "lifespan": "off"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from_profile = json.loads(os.environ.get(CONFIG_ENV) or "{}")
        self.CONFIG_KWARGS = {**type(self).CONFIG_KWARGS, **from_profile}
        super().__init__(*args, **kwargs)

    async def _serve(self) -> None:
        # As uvicorn-worker's own _serve, with the draining server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
