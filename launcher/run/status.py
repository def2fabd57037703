"""What `launch status`, the state file and systemd's STATUS= say about a running supervisor."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from launcher.run import control

if TYPE_CHECKING:
    from launcher.run.supervisor import Supervisor


def describe(sup: Supervisor, *, with_workers: bool) -> dict[str, Any]:
    """The status as data (masked by the caller)."""
    gen, plan, health = sup.current, sup.plan, sup.health
    status: dict[str, Any] = {
        "profile": plan.name,
        "project": str(control.project_root(plan)),
        "source": str(plan.source),
        "bind": str(plan.bind),
        "backend": plan.backend,
        "supervisor_pid": os.getpid(),
        "server_pid": gen.server.pid if gen else None,
        "generation": gen.number if gen else None,
        "health": health.state,
        "health_detail": health.last,
        "restarts": sup.restarts,
        "last_failure": sup.last_failure,
        "last_reload": sup.last_reload,
        "started_at": sup.started_at,
        "max_worker_memory": plan.max_worker_memory,
    }
    if with_workers:
        status["workers"] = control.describe_workers(gen.server.workers()) if gen else []
    return status


def line(sup: Supervisor) -> str:
    """systemd's STATUS= line."""
    gen = sup.current
    workers = len(gen.server.workers()) if gen else 0
    count = sup.generations.count if sup.generations else 0
    return (
        f"STATUS={sup.health.state}; {workers} workers; "
        f"generation {count}; restarts {sup.restarts}"
    )


def write(sup: Supervisor) -> None:
    """Rewrite the state file when what it says has changed (`launch status` reads it when
    the control socket cannot answer)."""
    state = sup.status(with_workers=False)
    if state == sup.written_state:
        return
    with contextlib.suppress(OSError):
        control.write_state(sup.run_dir, sup.plan.name, state)
        sup.written_state = state
