"""Server backends: each turns a plan into the argv of its server. A plain registry."""

from __future__ import annotations

from launcher.plan.backends import gunicorn, uvicorn

BACKENDS = {"gunicorn": gunicorn.server_argv, "uvicorn": uvicorn.server_argv}
EXTRA_ENV = {"gunicorn": gunicorn.extra_env, "uvicorn": uvicorn.extra_env}
