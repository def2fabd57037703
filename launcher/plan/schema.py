"""The profile schema: the one list of settings a profile may hold.

Names follow gunicorn's and uvicorn's own settings (``workers``, ``graceful_timeout``,
``max_requests_jitter``, ``forwarded_allow_ips``, ...) so a user's knowledge carries over.
Models are frozen and forbid unknown keys; the loader turns validation errors into
``file:line key`` messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    field_validator,
)

from launcher.plan.bind import parse_bind
from launcher.plan.values import (
    HEADER_SAFE,
    AdminBind,
    EnvValue,
    Folded,
    Line,
    Step,
    Word,
    memory_size,
)

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
MAX_WORKERS = 1024
DAY = 86400.0  # seconds: the ceiling for timeouts, beyond which they are a typo, not a choice
HOUR = 3600.0



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


Switch = Annotated[
    Literal["auto", "on", "off"],
    BeforeValidator(_yaml_switch, json_schema_input_type=Literal["auto", "on", "off"] | bool),
]


class UvicornSettings(Strict):
    """uvicorn's own settings; defaults are uvicorn's, except lifespan (Django has none)."""

    lifespan: Switch = "off"
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    http: Literal["auto", "h11", "httptools"] = "auto"
    ws: Literal["auto", "none", "websockets", "websockets-sansio", "wsproto"] = "auto"
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"] = "auto"
    proxy_headers: bool = True
    forwarded_allow_ips: Line | None = None
    root_path: Line = ""
    server_header: bool = True
    date_header: bool = True
    limit_concurrency: int | None = Field(default=None, ge=1, le=1_000_000)
    ws_max_size: int = Field(default=16777216, ge=1, le=2**31 - 1)
    ws_ping_interval: float | None = Field(default=20.0, gt=0, le=DAY)
    ws_ping_timeout: float | None = Field(default=20.0, gt=0, le=DAY)
    h11_max_incomplete_event_size: int | None = Field(default=None, ge=1, le=2**31 - 1)


class Asgi(Strict):
    """A Django project under an ASGI server: its sync views run as under WSGI, one hop per
    request to a pool of `sync_threads` threads per worker, instead of a new thread and a hop
    per sync part of every request; async views, streams and websockets keep Django's ASGI
    handler. `sync_pool: false` sends every request through Django's ASGI handler."""

    sync_pool: bool = True
    sync_threads: int = Field(default=8, ge=1, le=1024)


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
    interval: float = Field(default=5.0, gt=0, le=HOUR)
    timeout: float = Field(default=2.0, gt=0, le=HOUR)
    startup_timeout: float = Field(default=30.0, gt=0, le=DAY)
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    expected_status: int = Field(default=200, ge=100, le=599)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        if not HEADER_SAFE.fullmatch(value):
            raise ValueError("must be printable ASCII without spaces (percent-encode the rest)")
        return value

    @field_validator("host")
    @classmethod
    def _header_value(cls, value: str) -> str:
        if not HEADER_SAFE.fullmatch(value):
            raise ValueError("must be a host name: printable ASCII, no spaces or line breaks")
        return value


class Restart(Strict):
    """What to do when the server exits on its own: back off, and give up when it flaps."""

    backoff_initial: float = Field(default=0.5, gt=0, le=HOUR)
    backoff_max: float = Field(default=30.0, gt=0, le=DAY)
    max_crashes: int = Field(default=5, ge=1, le=10_000)
    window: float = Field(default=60.0, gt=0, le=DAY)


class Limits(Strict):
    """Per-worker resource ceilings, measured as USS (what the worker alone holds)."""

    max_worker_memory: Annotated[ByteSize, AfterValidator(memory_size)] | None = None
    check_interval: float = Field(default=2.0, gt=0, le=HOUR)


class Static(Strict):
    """Static files for projects that do not serve them (no whitenoise in MIDDLEWARE):
    STATIC_ROOT after `collectstatic` in prod, what `runserver` serves (plus media) in dev."""

    serve: bool = True
    # STATIC_ROOT when the settings set none (relative to the project); default: staticfiles/
    root: Line | None = None


class Watch(Strict):
    """What the dev reloader watches; roots are relative to the profile's directory."""

    roots: tuple[Word, ...] = ()
    include: tuple[Word, ...] = ("*.py", "*.html", "*.txt", "*.json", "*.yaml", "*.yml", ".env")
    exclude: tuple[Word, ...] = (
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
    delay: float = Field(default=0.05, ge=0, le=60)
    drain_timeout: float = Field(default=2.0, ge=0, le=DAY)


class Admin(Strict):
    """The supervisor's own listener (/livez, /readyz, /startupz, /metrics): off unless bound."""

    bind: AdminBind | None = None


class Profile(Strict):
    """A whole launch profile, after `extends:` and `${VAR}` are resolved."""

    description: Folded = ""
    app: str | None = None
    settings: str | None = None
    server: Literal["gunicorn", "uvicorn"] = "gunicorn"
    worker_class: str = "sync"
    workers: int | Literal["auto"] = 1
    threads: int = Field(default=1, ge=1, le=1024)
    bind: str = "127.0.0.1:8000"
    timeout: int = Field(default=30, ge=0, le=DAY)
    graceful_timeout: int = Field(default=30, ge=0, le=DAY)
    keepalive: int = Field(default=5, ge=0, le=HOUR)
    max_requests: int = Field(default=0, ge=0, le=10**9)
    max_requests_jitter: int = Field(default=0, ge=0, le=10**9)
    backlog: int = Field(default=2048, ge=1, le=65535)
    preload_app: bool = False
    warm_urls: bool = True
    loglevel: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    accesslog: bool = True
    log_format: Literal["text", "json"] = "text"
    forwarded_allow_ips: Line = "127.0.0.1,::1"
    env: dict[str, EnvValue] = Field(default_factory=dict)
    chdir: Word = "."
    pythonpath: tuple[Word, ...] = ()
    reload: bool = False
    check_deploy: bool = False
    before_start: tuple[Step, ...] = ()
    # Seconds each before_start step may run; a hung one is ended (TERM, then KILL) and the
    # launch fails naming it. A week at most: a larger number is a mistake, not a wish.
    step_timeout: float = Field(default=600.0, gt=0, le=7 * 86400)
    wrap: tuple[Word, ...] = ()
    uvicorn: UvicornSettings = UvicornSettings()
    asgi: Asgi = Asgi()
    health: Health = Health()
    static: Static = Static()
    restart: Restart = Restart()
    limits: Limits = Limits()
    watch: Watch = Watch()
    admin: Admin = Admin()

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
        if (
            isinstance(value, bool)
            or not re.fullmatch(r"[0-9]{1,5}", text)
            or not 1 <= int(text) <= MAX_WORKERS
        ):
            raise ValueError(
                f"must be a whole number from 1 to {MAX_WORKERS}, or 'auto' (2 x CPU + 1)"
            )
        return int(text)

    @field_validator("settings")
    @classmethod
    def _module_path(cls, value: str | None) -> str | None:
        if value is not None and not all(p.isidentifier() for p in value.split(".")):
            raise ValueError(f"{value!r} is not a dotted module path (e.g. mysite.settings)")
        return value

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


# `${VAR}` and `${VAR:-default}` may stand for any value; the loader expands them first.
