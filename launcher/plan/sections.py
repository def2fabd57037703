"""The profile's sections (health, restart, limits, static, watch, uvicorn, asgi, admin):
each a frozen model that forbids unknown keys, as the Profile in schema.py is."""

from __future__ import annotations

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

from launcher.plan.values import (
    HEADER_SAFE,
    AdminBind,
    Line,
    Word,
    memory_size,
)

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


def _site_path(value: str) -> str:
    """A URL path of the site as a request line carries it."""
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if not HEADER_SAFE.fullmatch(value):
        raise ValueError("must be printable ASCII without spaces (percent-encode the rest)")
    return value


SitePath = Annotated[str, AfterValidator(_site_path)]
MAX_SMOKE_PATHS = 20  # each is one GET before a generation serves


class Health(Strict):
    """An HTTP probe of the running site; works on TCP and unix binds.

    Without a `path`, the launcher's own code answers the probe inside the worker, before
    Django's URL routing and host checks: it works on any project as it is. A `path` probes
    a URL of the site through Django instead.

    `smoke`: the site's own pages a new prod generation must answer without a 5xx before it
    serves (its root when not given; `[]`: none). The cheap probe above cannot see a page that
    fails to render.
    """

    enabled: bool = True
    path: SitePath | None = None
    smoke: list[SitePath] | None = Field(default=None, max_length=MAX_SMOKE_PATHS)
    deep: bool = False
    host: str = "localhost"
    interval: float = Field(default=5.0, gt=0, le=HOUR)
    timeout: float = Field(default=2.0, gt=0, le=HOUR)
    startup_timeout: float = Field(default=30.0, gt=0, le=DAY)
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    expected_status: int = Field(default=200, ge=100, le=599)

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
    # Outside dev too: MEDIA_ROOT at MEDIA_URL, read-only (launcher.child.media), for a site
    # with no proxy in front to serve its uploads. Off: `launch show` and `check` say so.
    media: bool = False


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
