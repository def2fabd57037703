"""The profile schema: the one list of settings a profile may hold.

Names follow gunicorn's and uvicorn's own settings (``workers``, ``graceful_timeout``,
``max_requests_jitter``, ``forwarded_allow_ips``, ...) so a user's knowledge carries over.
Models are frozen and forbid unknown keys; the loader turns validation errors into
``file:line key`` messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ByteSize, ConfigDict, Field, field_validator

# gunicorn's own worker names (gunicorn/workers/__init__.py), and the launcher's uvicorn worker.
# Anything else must be an import path of a gunicorn worker class: `pkg.mod.Class`/`pkg.mod:Class`.
WORKER_CLASSES = (
    "sync", "gthread", "gevent", "gevent_wsgi", "gevent_pywsgi", "tornado", "asgi", "uvicorn"
)
_EVENTLET = "gunicorn 26 removed the eventlet worker; use 'gevent', 'gthread' or 'tornado'"
REMOVED_WORKERS = {
    "eventlet": _EVENTLET,
    "gunicorn.workers.geventlet.EventletWorker": _EVENTLET,
    "uvicorn.workers.UvicornWorker": "use worker_class: uvicorn (the uvicorn-worker package)",
}
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*[.:][A-Za-z_]\w*$")
_BIND_TCP = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]\s]*):(?P<port>\d+)$")


class Strict(BaseModel):
    """Base for every section: immutable, and unknown keys are an error, not silence."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _yaml_switch(value: Any) -> Any:
    """YAML 1.1 reads `off`/`on` as booleans; accept them as the words users meant."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


Switch = Annotated[Literal["auto", "on", "off"], BeforeValidator(_yaml_switch)]


class UvicornSettings(Strict):
    """uvicorn's own settings; defaults are uvicorn's, except lifespan (Django has none)."""

    lifespan: Switch = "off"
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    http: Literal["auto", "h11", "httptools"] = "auto"
    ws: Literal["auto", "none", "websockets", "websockets-sansio", "wsproto"] = "auto"
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"] = "auto"
    proxy_headers: bool = True
    forwarded_allow_ips: str | None = None
    root_path: str = ""
    server_header: bool = True
    date_header: bool = True
    limit_concurrency: int | None = Field(default=None, ge=1)
    ws_max_size: int = Field(default=16777216, ge=1)
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    h11_max_incomplete_event_size: int | None = None


class Health(Strict):
    """An HTTP probe of the running site; works on TCP and unix binds.

    Without a `path`, the launcher's own code answers the probe inside the worker, before
    Django's URL routing and host checks: it works on any project as it is. A `path` probes
    a URL of the site through Django instead.
    """

    enabled: bool = True
    path: str | None = None
    deep: bool = False
    host: str = "localhost"
    interval: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=2.0, gt=0)
    startup_timeout: float = Field(default=30.0, gt=0)
    failure_threshold: int = Field(default=3, ge=1)
    expected_status: int = Field(default=200, ge=100, le=599)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


class Restart(Strict):
    """What to do when the server exits on its own: back off, and give up when it flaps."""

    backoff_initial: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=30.0, gt=0)
    max_crashes: int = Field(default=5, ge=1)
    window: float = Field(default=60.0, gt=0)


class Limits(Strict):
    """Per-worker resource ceilings, measured as USS (what the worker alone holds)."""

    max_worker_memory: ByteSize | None = None
    check_interval: float = Field(default=2.0, gt=0)


class Static(Strict):
    """Static files for projects that do not serve them (no whitenoise in MIDDLEWARE):
    STATIC_ROOT after `collectstatic` in prod, what `runserver` serves (plus media) in dev."""

    serve: bool = True
    # STATIC_ROOT when the settings set none (relative to the project); default: staticfiles/
    root: str | None = None


class Watch(Strict):
    """What the dev reloader watches; roots are relative to the profile's directory."""

    roots: tuple[str, ...] = ()
    include: tuple[str, ...] = ("*.py", "*.html", "*.txt", "*.json", "*.yaml", "*.yml", ".env")
    exclude: tuple[str, ...] = (
        ".venv",
        "venv",
        "node_modules",
        ".git",
        "__pycache__",
        "*.pyc",
        "*.sqlite3",
        "*.sqlite3-journal",
        "*.sqlite3-wal",
        "*.db",
        "*.log",
        "staticfiles",
        "media",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
    )
    delay: float = Field(default=0.05, ge=0)
    drain_timeout: float = Field(default=2.0, ge=0)


class Profile(Strict):
    """A whole launch profile, after `extends:` and `${VAR}` are resolved."""

    description: str = ""
    app: str | None = None
    settings: str | None = None
    server: Literal["gunicorn", "uvicorn"] = "gunicorn"
    worker_class: str = "sync"
    workers: int | Literal["auto"] = 1
    threads: int = Field(default=1, ge=1)
    bind: str = "127.0.0.1:8000"
    timeout: int = Field(default=30, ge=0)
    graceful_timeout: int = Field(default=30, ge=0)
    keepalive: int = Field(default=5, ge=0)
    max_requests: int = Field(default=0, ge=0)
    max_requests_jitter: int = Field(default=0, ge=0)
    backlog: int = Field(default=2048, ge=1)
    preload_app: bool = False
    warm_urls: bool = True
    loglevel: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    accesslog: bool = True
    forwarded_allow_ips: str = "127.0.0.1,::1"
    env: dict[str, str] = Field(default_factory=dict)
    chdir: str = "."
    pythonpath: tuple[str, ...] = ()
    reload: bool = False
    check_deploy: bool = False
    before_start: tuple[str | tuple[str, ...], ...] = ()
    # Seconds each before_start step may run; a hung one is ended (TERM, then KILL) and the
    # launch fails naming it. A week at most: a larger number is a mistake, not a wish.
    step_timeout: float = Field(default=600.0, gt=0, le=7 * 86400)
    wrap: tuple[str, ...] = ()
    uvicorn: UvicornSettings = UvicornSettings()
    health: Health = Health()
    static: Static = Static()
    restart: Restart = Restart()
    limits: Limits = Limits()
    watch: Watch = Watch()

    @field_validator("app")
    @classmethod
    def _app_ref(cls, value: str | None) -> str | None:
        if value is None:
            return value
        module, sep, attr = value.partition(":")
        if (
            not sep
            or not module
            or not attr
            or not all(part.isidentifier() for part in [*module.split("."), *attr.split(".")])
        ):
            raise ValueError(f"'{value}' is not 'module:attribute' (e.g. mysite.wsgi:application)")
        return value

    @field_validator("worker_class")
    @classmethod
    def _worker_class(cls, value: str) -> str:
        removed = REMOVED_WORKERS.get(value.replace(":", "."))
        if removed:
            raise ValueError(f"'{value}' is not available: {removed}")
        if value not in WORKER_CLASSES and not _IMPORT_PATH.match(value):
            raise ValueError(
                f"'{value}' is not one of {', '.join(WORKER_CLASSES)}, nor the import path of "
                "a worker class (e.g. mysite.workers.MyUvicornWorker)"
            )
        return value

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        text = str(value).strip()
        if text == "auto":
            return text
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError("must be a whole number of at least 1, or 'auto' (2 x CPU + 1)")
        return int(text)

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        parse_bind(value)
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"'{name}' is not a valid environment variable name")
        return value


def parse_bind(value: str) -> tuple[str, str | int]:
    """Split a bind into ("unix", path) or (host, port); raise ValueError when it is neither."""
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        if not path.startswith("/"):
            raise ValueError(
                f"'{value}': a unix bind needs an absolute path, e.g. unix:/run/app.sock"
            )
        return "unix", path
    match = _BIND_TCP.match(value)
    if not match:
        raise ValueError(f"'{value}' is not HOST:PORT or unix:/PATH")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"'{value}': port {port} is outside 1-65535")
    host = match["host"].strip("[]") or "127.0.0.1"
    return host, port


def field_names(model: type[BaseModel]) -> list[str]:
    """The keys a section accepts, for 'did you mean' hints."""
    return list(model.model_fields)
