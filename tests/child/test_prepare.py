"""The one-import start inside a server that loads the app in its running event loop (uvicorn
did before 0.30, and may again): Django refuses database work in a thread with a running loop
(SynchronousOnlyOperation), so the steps run in a plain thread; a real project, real pipes."""

from __future__ import annotations

import os
import subprocess
import sys

from launcher import wire
from tests.conftest import Env
from tests.projects import deployable, generate

IN_A_LOOP = """
import asyncio

async def main():
    from launcher.child.prepare import prepared_app
    prepared_app()  # what uvicorn's Config.load() does with --factory inside Server.serve()

asyncio.run(main())
"""


def test_steps_run_outside_a_running_loop(env: Env) -> None:
    project = deployable(generate("startproject", env.tmp))
    status_r, status_w = os.pipe()
    orders_r, orders_w = os.pipe()
    orders: list[wire.OrderMessage] = [
        wire.RunStep(kind=wire.Order.RUN, index=0, words=["migrate", "--noinput"]),
        wire.BuildApp(kind=wire.Order.APP),
        wire.Serve(kind=wire.Order.SERVE),
    ]
    with os.fdopen(orders_w, "w") as out:  # small enough for the pipe's buffer
        out.write("".join(wire.encode_line(order) for order in orders))
    extra = {
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        wire.PREPARE_ENV: wire.encode_options({"check": ["--interface", "asgi"]}),
        wire.STATUS_FD_ENV: str(status_w),
        wire.ORDERS_FD_ENV: str(orders_r),
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", IN_A_LOOP], cwd=project, env=env.vars(**extra),
            pass_fds=(status_w, orders_r), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        os.close(status_w)
        os.close(orders_r)
    output = proc.communicate(timeout=60)[0]
    with os.fdopen(status_r) as status:  # closed by the child: it has exited
        said = [m for m in map(wire.decode_said, status) if m is not None]
    assert proc.returncode == 0, output
    assert "SynchronousOnlyOperation" not in output
    by_kind = {m["kind"]: m for m in said}
    assert [m["kind"] for m in said] == [
        wire.Said.SETTINGS, wire.Said.STEP, wire.Said.APP, wire.Said.SERVING
    ], said
    assert by_kind[wire.Said.STEP] == {**by_kind[wire.Said.STEP], "index": 0, "exit": 0}, output
    assert "Applying auth.0001_initial... OK" in output
    assert by_kind[wire.Said.APP] == {**by_kind[wire.Said.APP], "interface": "asgi"}
    assert said[-1] == {"kind": wire.Said.SERVING, "pid": proc.pid}
