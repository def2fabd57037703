"""Server backends: each turns a plan into the argv of its server. A plain registry."""

from __future__ import annotations

from collections.abc import Callable

from launcher.plan.backends import gunicorn, uvicorn
from launcher.plan.model import LaunchPlan, Listen

ArgvBuilder = Callable[[LaunchPlan, Listen], tuple[str, ...]]

BACKENDS: dict[str, ArgvBuilder] = {"gunicorn": gunicorn.argv, "uvicorn": uvicorn.argv}
EXTRA_ENV = {"gunicorn": gunicorn.extra_env, "uvicorn": uvicorn.extra_env}
