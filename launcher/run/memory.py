"""The memory ceiling: a worker whose own memory (USS) passed `limits.max_worker_memory` is
recycled gracefully (SIGTERM), and its master replaces it."""

from __future__ import annotations

import contextlib
import signal
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from launcher.run.supervisor import Supervisor

MIB = 2**20


def recycle_overgrown(sup: Supervisor) -> None:
    gen, limit = sup.current, sup.plan.max_worker_memory
    if gen is None or limit is None:
        return
    workers = gen.server.workers()
    if len(workers) == 1 and workers[0].pid == gen.server.pid:
        return  # a single-process server: recycling it would be a restart, not a recycle
    for proc in workers:
        try:
            uss = proc.memory_full_info().uss
        except psutil.Error:
            continue
        if uss > limit and proc.pid not in sup.recycled:
            sup.recycled.add(proc.pid)
            sup.log(
                f"worker {proc.pid} holds {uss / MIB:.0f} MiB (USS) > ceiling "
                f"{limit / MIB:.0f} MiB: recycling it gracefully",
                "worker recycled", level="warning", worker_pid=proc.pid, uss=uss, limit=limit,
            )
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
