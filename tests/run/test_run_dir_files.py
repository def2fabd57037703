"""A directory or a FIFO where the launcher keeps a file of its run dir (the control socket, the
state file, collectstatic's fingerprint, dev's saved import list): a start refuses in one line
naming the path (exit 2), never hangs, never a traceback; the commands that talk to a running
instance do the same when the control socket's path is not a socket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import DEMO, Env, Launch, free_port, refused, start

FILES = {  # run-dir file -> the profile that uses it ("": the project's subdirectory itself)
    "": "prod-wsgi",
    "{name}.sock": "prod-wsgi",
    "{name}.json": "prod-wsgi",
    "{name}.collectstatic": "prod-wsgi",
    "{name}.devimports": "dev",
}


def in_the_way(env: Env, pattern: str, name: str, kind: str) -> Path:
    from launcher.run import control

    directory = control.instance_dir(env.vars(), DEMO.resolve())
    if pattern:
        control.ensure_instance_dir(env.vars(), DEMO.resolve())
    else:
        directory.parent.mkdir(mode=0o700)
    path = directory / pattern.format(name=name)
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path, 0o600)
    return path


@pytest.mark.parametrize(
    ("pattern", "kind"),
    # the project's subdirectory is a directory: there, only a FIFO is in the way
    [(p, k) for p in FILES for k in ("directory", "fifo") if p or k == "fifo"],
)
def test_a_start_refuses_a_run_dir_path_that_is_not_a_file(
    env: Env, launch: list[Launch], pattern: str, kind: str
) -> None:
    name = FILES[pattern]
    path = in_the_way(env, pattern, name, kind)
    item = start(launch, env, name, "--bind", f"127.0.0.1:{free_port()}")
    assert item.wait(30) == 2, item.output
    lines = item.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], item.output
    assert "Traceback" not in item.output
    assert os.path.lexists(path)  # left for its owner to look at: never removed


@pytest.mark.parametrize("kind", ["directory", "fifo"])
@pytest.mark.parametrize("command", ["status", "reload", "stop"])
def test_a_command_refuses_a_control_socket_path_that_is_not_a_socket(
    env: Env, command: str, kind: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In-process, in the demo site with the test's run dir: these commands start nothing,
    they only talk to the control socket."""
    path = in_the_way(env, "{name}.sock", "prod-wsgi", kind)
    monkeypatch.chdir(DEMO)
    monkeypatch.setenv("LAUNCH_RUN_DIR", env.vars()["LAUNCH_RUN_DIR"])
    line = refused(capsys, command, "prod-wsgi")  # exit 2, one line, no traceback
    assert str(path) in line, line
    assert os.path.lexists(path)
