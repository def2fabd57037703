"""Every address in the server's log is one the site serves: gunicorn's `Listening at:` line
leaves out the private probe socket each generation gets from the supervisor (probed alone,
before it takes over), at the start and after a reload."""

from __future__ import annotations

import re
import subprocess

import pytest

from launcher.child.gunicorn_logger import served
from tests.conftest import PYTHON, Env, Launch, free_port, start, wait_ok
from tests.projects import SECRETS, deployable, generate


@pytest.mark.parametrize(
    ("listeners", "probe", "shown"),
    [
        ("http://127.0.0.1:8000,http://127.0.0.1:50955", "127.0.0.1:50955", "http://127.0.0.1:8000"),
        ("unix:/run/site.sock,http://127.0.0.1:50955", "127.0.0.1:50955", "unix:/run/site.sock"),
        ("http://127.0.0.1:8000,http://[::1]:8000,http://127.0.0.1:4100", "127.0.0.1:4100",
         "http://127.0.0.1:8000,http://[::1]:8000"),
        ("http://127.0.0.1:8000", None, "http://127.0.0.1:8000"),  # no probe socket named
        ("http://127.0.0.1:50955", "127.0.0.1:50955", "http://127.0.0.1:50955"),  # never empty
    ],
    ids=["tcp", "unix", "two-served", "no-probe", "only-probe"],
)
def test_the_listening_line_names_the_served_sockets(
    listeners: str, probe: str | None, shown: str
) -> None:
    assert served(listeners, probe) == shown


def test_gunicorn_logs_only_the_sites_address(env: Env, launch: list[Launch]) -> None:
    root = deployable(generate("startproject", env.tmp))
    port = free_port()
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=root, **SECRETS)
    wait_ok(item, port, "/admin/login/")
    reloaded = subprocess.run([PYTHON, "-m", "launcher", "reload", "prod-wsgi"], cwd=root,
                              env=env.vars(**SECRETS), capture_output=True, text=True, timeout=120)
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    listening = re.findall(r"Listening at: (\S+)", item.output)
    assert listening == [f"http://127.0.0.1:{port}"] * 2, item.output
    assert item.stop() == 0
