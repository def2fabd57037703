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
    BeforeValidator,
    ByteSize,
    Field,
    field_validator,
    model_validator,
)

from launcher.plan.bind import parse_bind
from launcher.plan.sections import (
    DAY,
    HOUR,
    MAX_WORKERS,
    Admin,
    Asgi,
    Health,
    Limits,
    Restart,
    Static,
    Strict,
    UvicornSettings,
    Watch,
)
from launcher.plan.values import (
    EnvValue,
    Folded,
    Line,
    ManagementCommand,
    ProcessName,
    Steps,
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
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_INSTANCES = 256


def _signal_name(value: object) -> object:
    """`TERM`, `sigterm` and `SIGTERM` all name SIGTERM."""
    if isinstance(value, str):
        upper = value.strip().upper()
        return upper if upper.startswith("SIG") else f"SIG{upper}"
    return value


# What a program may take as "stop, gracefully": Celery's warm shutdown is SIGTERM (SIGQUIT its
# cold one), RQ and Huey stop on SIGTERM or SIGINT, a Node watcher on SIGINT. SIGKILL is not a
# graceful stop: it is what comes after stop_timeout anyway.
StopSignal = Annotated[
    Literal["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"],
    BeforeValidator(_signal_name),
]


def _env_names(value: dict[str, str]) -> dict[str, str]:
    """An `env:` mapping's names, as a shell and systemd take them."""
    for name in value:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"'{name}' is not a valid environment variable name")
    return value


class Process(Strict):
    """One of the site's other processes (a task worker, a scheduler, an asset watcher): a
    management command (`command:`, manage.py's words) or an argv run as is (`argv:`), never
    through a shell."""

    command: ManagementCommand | None = None
    argv: tuple[Word, ...] | None = None
    instances: int = Field(default=1, ge=1, le=MAX_INSTANCES)
    env: dict[str, EnvValue] = Field(default_factory=dict)
    restart: Restart = Restart()
    max_memory: Annotated[ByteSize, AfterValidator(memory_size)] | None = None
    stop_signal: StopSignal = "SIGTERM"
    # Seconds between the stop signal and SIGKILL: a Celery worker finishes its running task.
    stop_timeout: float = Field(default=30.0, ge=0, le=DAY)
    # Whether it imports the project, so a reload or an edit restarts it: a management command
    # always does; an argv (an asset watcher) does not unless it says so.
    reload: bool | None = None

    @model_validator(mode="after")
    def _one_command(self) -> Process:
        if (self.command is None) == (self.argv is None):
            raise ValueError(
                "give either command: (a management command) or argv: (a program and its "
                "arguments), not both" if self.command is not None else
                "give command: (a management command such as 'sendalerts') or argv: (a program "
                "and its arguments)"
            )
        if self.argv is not None and not self.argv:
            raise ValueError("an empty argv; write a program and its arguments")
        if self.command is not None and self.reload is False:
            raise ValueError("a management command imports the project: reload cannot be false")
        return self

    _env_names = field_validator("env")(_env_names)


def _process_form(value: object) -> object:
    """A bare string is a management command, a bare list an argv: short for the mapping."""
    if isinstance(value, str):
        return {"command": value}
    if isinstance(value, list | tuple):
        return {"argv": value}
    if not isinstance(value, dict):
        raise ValueError("write a management command, an argv (a list), a mapping with command: "
                         "or argv:, or false to switch it off")
    return value


# In the JSON Schema too: a command line, an argv, or the mapping.
ProcessSpec = Annotated[
    Process, BeforeValidator(_process_form, json_schema_input_type=str | list[str] | Process)
]


def _processes_form(value: object) -> object:
    if not isinstance(value, dict):
        raise ValueError("write named processes: NAME: a management command, an argv, a mapping "
                         "(command: or argv:, instances:, ...), or false")
    return value


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
    # Refuse to serve settings that would harm a public site (DEBUG = True, startproject's
    # django-insecure- key), as the settings files write them and, once imported, as they
    # compute them (the app check). The shipped prod profiles say true.
    refuse_insecure: bool = False
    # A list (replaced whole by a profile that extends this one), or named steps (merged by
    # name: a profile adds one, or switches one off with `NAME: false`, keeping the rest).
    before_start: Steps = ()
    # Seconds each before_start step may run; a hung one is ended (TERM, then KILL) and the
    # launch fails naming it. A week at most: a larger number is a mistake, not a wish.
    step_timeout: float = Field(default=600.0, gt=0, le=7 * 86400)
    wrap: tuple[Word, ...] = ()
    # The site's other processes, by name; merged by name across `extends:` as named steps
    # are (`NAME: false` switches one off, a Procfile's too).
    processes: Annotated[
        dict[ProcessName, ProcessSpec | Literal[False] | None], BeforeValidator(_processes_form)
    ] = Field(default_factory=dict)
    uvicorn: UvicornSettings = UvicornSettings()
    asgi: Asgi = Asgi()
    health: Health = Health()
    static: Static = Static()
    restart: Restart = Restart()
    limits: Limits = Limits()
    watch: Watch = Watch()
    admin: Admin = Admin()

    def steps(self) -> list[tuple[str, str | tuple[str, ...]]]:
        """The before_start steps to run, in order, each with its key (`0`, or its name)."""
        if isinstance(self.before_start, tuple):
            return [(str(index), step) for index, step in enumerate(self.before_start)]
        return [(name, step) for name, step in self.before_start.items() if step]

    def steps_off(self) -> set[str]:
        """Named steps switched off (`NAME: false`): found ones too are then left out."""
        if isinstance(self.before_start, tuple):
            return set()
        return {name for name, step in self.before_start.items() if not step}

    def processes_on(self) -> dict[str, Process]:
        """The processes the profile runs, by name, in the order written."""
        return {name: spec for name, spec in self.processes.items() if spec}

    def processes_off(self) -> set[str]:
        """Processes switched off (`NAME: false`): found ones too are then left out."""
        return {name for name, spec in self.processes.items() if not spec}

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

    _env_names = field_validator("env")(_env_names)


# `${VAR}` and `${VAR:-default}` may stand for any value; the loader expands them first.
