"""Services the tests run for real beside a site, each started by the test on a free loopback
port and stopped by its pid: a Redis for Celery's broker (Debian's `redis-server`, which
scripts/bootstrap installs when it is missing).

Nothing here imports the other test modules: tests/conftest.py hands out the ports and holds
the fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_START_TIMEOUT = 10.0
REDIS_STOP_TIMEOUT = 10.0


def required_tool(name: str, install: str) -> str:
    """The path of a program scripts/bootstrap installs: a test without it skips (fails in CI,
    where bootstrap must have installed it). `install` says how, for the skip's reason."""
    program = shutil.which(name)
    if program is None:
        reason = (
            f"{name} is not installed and scripts/bootstrap could not install it "
            f"(it needs root or sudo, and apt-get): {install}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return program


def ping(port: int, timeout: float = 1.0) -> bool:
    """Whether a Redis answers PING on 127.0.0.1:port (RESP inline command, no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(directory: Path, port: int) -> Iterator[str]:
    """A Redis of its own on 127.0.0.1:port, keeping nothing on disk (no RDB, no AOF; its
    working dir is `directory`), until the block ends: yields its URL (database 0). Its
    output goes to `directory/redis.log`, shown when it does not come up."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "redis.log"
    program = required_tool("redis-server", "apt-get install redis-server")
    argv = [program, "--save", "", "--appendonly", "no", "--port", str(port),
            "--bind", "127.0.0.1", "--dir", str(directory)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while not ping(port):
            if proc.poll() is not None:
                raise AssertionError(f"redis-server exited {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not answer PING on port {port} within "
                                     f"{REDIS_START_TIMEOUT}s:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc, REDIS_STOP_TIMEOUT)
        assert not ping(port), f"a Redis still answers on port {port} after {proc.pid} ended"


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM by pid and wait; SIGKILL if it lingers, then fail: it is gone either way."""
    pid = proc.pid
    lingered = False
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            lingered = True
            proc.kill()
            proc.wait(timeout)
    assert proc.returncode is not None, f"redis-server {pid} still running"
    assert not lingered, f"redis-server {pid} ignored SIGTERM for {timeout}s (killed)"
