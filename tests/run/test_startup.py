"""Faults of the environment at run time, each one line and exit 2, never a traceback: a run
directory that cannot be created or is too long for a socket, something in the way of the
control socket or the state file, an instance of another user, a port taken at start (naming
where `bind` was set), a reader that closes the pipe."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    DEMO,
    ROOT,
    SITE,
    Env,
    Launch,
    cli,
    error_line,
    free_port,
    ran,
    refused,
    start,
)


def site(env: Env, port: int) -> Path:
    path = env.tmp / "site.yaml"
    path.write_text(SITE + f"bind: 127.0.0.1:{port}\nworkers: 1\n")  # bind is on line 4
    return path


def test_run_dir_under_a_file(env: Env) -> None:
    (env.tmp / "a-file").write_text("")
    run_dir = env.tmp / "a-file" / "run"
    code, output = cli(env, str(site(env, free_port())), LAUNCH_RUN_DIR=str(run_dir))
    line = error_line(code, output)
    assert f"cannot create the run directory {run_dir}: Not a directory" in line
    assert "LAUNCH_RUN_DIR" in line


@pytest.mark.parametrize("command", ["run", "status"])
def test_run_dir_too_long_for_a_unix_socket(
    env: Env, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = env.tmp / ("d" * 120)
    if command == "run":
        code, output = cli(env, str(site(env, free_port())), LAUNCH_RUN_DIR=str(run_dir))
        line = error_line(code, output)
    else:  # `status` starts nothing: in-process, in the demo site
        monkeypatch.chdir(DEMO)
        monkeypatch.setenv("LAUNCH_RUN_DIR", str(run_dir))
        line = refused(capsys, "status", "site")
    assert f"the control socket {run_dir}/demo_site-" in line and "/site.sock would be" in line
    assert "more than a unix socket path holds (107)" in line
    assert "shorter" in line and "LAUNCH_RUN_DIR" in line


def test_port_taken_at_start_names_the_file_line_and_key(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = site(env, port)
        from_file = error_line(*cli(env, str(path)))
        monkeypatch.chdir(DEMO)  # `check` starts nothing: in-process, in the demo site
        checked = refused(capsys, "check", str(path))
        from_flag = error_line(*cli(env, str(path), "--bind", f"127.0.0.1:{port}"))
    for line in (from_file, checked):
        assert f"{path}:4: key 'bind': port {port} on 127.0.0.1 is already in use" in line
    assert f"key '--bind': port {port} on 127.0.0.1 is already in use" in from_flag
    assert str(path) not in from_flag


def project_dir(env: Env) -> Path:
    """The demo project's subdirectory of the run dir: `<basename>-<crc32 of its root>`."""
    root = DEMO.resolve()
    return env.tmp / "run" / f"{root.name[:16]}-{zlib.crc32(os.fsencode(str(root))):08x}"


def test_a_directory_at_the_control_socket_is_one_line(env: Env) -> None:
    in_the_way = project_dir(env) / "site.sock"
    in_the_way.mkdir(parents=True)
    project_dir(env).chmod(0o700)
    line = error_line(*cli(env, str(site(env, free_port()))))
    assert f"{in_the_way} is in the way of the control socket" in line, line
    assert in_the_way.is_dir()


def test_a_closed_pipe_ends_show_quietly(env: Env) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        result = subprocess.run([sys.executable, "-m", "launcher", "show", "prod-wsgi"],
                                cwd=DEMO, env=env.vars(), stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141  # 128 + SIGPIPE, as a program killed by it reports
    shell = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m launcher show prod-wsgi | head -1"],
        cwd=DEMO, env=env.vars(), capture_output=True, text=True, timeout=60,
    )
    assert shell.stdout.startswith("# profile prod-wsgi from ")
    assert shell.stderr == ""


# ----- an instance that belongs to another user -------------------------------------------


def as_nobody() -> tuple[str, ...]:
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    readable = [*prefix, "test", "-r", str(ROOT / "launcher" / "__init__.py")]
    if subprocess.run(readable, check=False, timeout=10).returncode != 0:
        # A checkout under an owner-only directory (`mktemp -d`): the other user cannot even
        # import the launcher, so there is nothing of the launcher's to test.
        pytest.skip(f"another user cannot read this checkout ({ROOT})")
    return prefix


@pytest.fixture
def shared_run_dir() -> Iterator[Path]:
    """A run dir another user can reach the inside of (pytest's tmp root is owner-only)."""
    path = Path(tempfile.mkdtemp(prefix="launch-run-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_fifo_at_the_state_file_does_not_hang_status_nor_may_another_user_reach_it(
    env: Env, launch: list[Launch], shared_run_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One running instance. A FIFO at its state file does not hang `launch status`: the
    listing shows its row with "?"s, and the instance itself answers on its socket. Another
    user's `status`, `reload` and `stop` of it are refused naming the owner-only run dir, the
    project's subdirectory, the socket; the instance is untouched and still serving."""
    item = start(launch, env, str(site(env, free_port())), LAUNCH_RUN_DIR=str(shared_run_dir))
    item.wait_for("[launch] serving", timeout=60)
    run = {"LAUNCH_RUN_DIR": str(shared_run_dir)}

    (state,) = shared_run_dir.glob("*/site.json")
    state.unlink()
    os.mkfifo(state, 0o600)
    listed = subprocess.run([sys.executable, "-m", "launcher", "status"], cwd=env.tmp,
                            env=env.vars(**run), capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split() == ["site", "?", "?", "?"], listed.stdout
    monkeypatch.chdir(DEMO)  # inside the project: its socket answers (in-process: no start)
    monkeypatch.setenv("LAUNCH_RUN_DIR", str(shared_run_dir))
    assert "health      healthy" in ran(capsys, "status", "site")

    nobody = as_nobody()

    # The run dir is 0700: not even the names of what runs there can be read.
    for args in (("status",), ("status", "site"), ("stop", "site")):
        line = error_line(*cli(env, *args, prefix=nobody, **run))
        assert f"permission denied on {shared_run_dir}, owned by root" in line, line
        assert "runs as another user" in line
    # A run dir others may enter, but the project's subdirectory is the owner's (0700)...
    shared_run_dir.chmod(0o711)
    (project,) = shared_run_dir.iterdir()
    line = error_line(*cli(env, "status", "site", prefix=nobody, **run))
    assert f"permission denied on {project}, owned by root" in line, line
    # ...and so is the socket (0600).
    project.chmod(0o711)
    for args in (("status", "site", "--json"), ("reload", "site"), ("stop", "site")):
        line = error_line(*cli(env, *args, prefix=nobody, **run))
        assert f"permission denied on {project / 'site.sock'}, owned by root" in line
    code, output = cli(env, "status", "site", **run)
    assert code == 0 and "health      healthy" in output, output  # untouched, still serving
    assert item.stop() == 0
