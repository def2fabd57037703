"""The one-import start inside a server that loads the app in its running event loop (uvicorn
did before 0.30, and may again): Django refuses database work in a thread with a running loop
(SynchronousOnlyOperation), so the steps run in a plain thread; a real project, real pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from launcher import wire
from tests.conftest import Env
from tests.projects import generate

IN_A_LOOP = """
import asyncio

async def main():
    import launcher.child.app as app
    app.asgi  # what uvicorn's Config.load() does inside Server.serve()

asyncio.run(main())
"""


def test_steps_run_outside_a_running_loop(env: Env) -> None:
    project = generate("startproject", env.tmp)
    status_r, status_w = os.pipe()
    orders_r, orders_w = os.pipe()
    words = json.dumps(["migrate", "--noinput"])
    with os.fdopen(orders_w, "w") as orders:  # small enough for the pipe's buffer
        orders.write(f"{wire.ORDER_RUN} 0 {words}\n{wire.ORDER_APP}\n{wire.ORDER_SERVE}\n")
    extra = {
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        wire.PREPARE_ENV: json.dumps({"check": ["--interface", "asgi"]}),
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
        said = [json.loads(line) for line in status if line.startswith("{")]
    assert proc.returncode == 0, output
    assert "SynchronousOnlyOperation" not in output
    step = next(item for item in said if item.get(wire.STATUS_STEP) == 0)
    assert step[wire.STATUS_EXIT] == 0, output
    assert "Applying auth.0001_initial... OK" in output
    assert {"app": "ok"}.items() <= next(i for i in said if "app" in i).items()
    assert said[-1] == {wire.STATUS_SERVING: proc.pid}
