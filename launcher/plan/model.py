"""The launch plan: plain frozen data that the run layer executes and `launch show` prints.

Plain on purpose: no pydantic model, no callable. The supervisor receives it from a planner
process (launcher.cli.planner) and never imports the profile's parsers itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import LaunchError, ProfileError
from launcher.plan.bind import parse_bind
from launcher.plan.overrides import option_for
from launcher.plan.procfile import WEB
from launcher.plan.project import Project

# The masking rule lives in plan/secrets.py; MASK and is_secret are re-exported from here.
from launcher.plan.secrets import MASK as MASK
from launcher.plan.secrets import Masker, mask_value
from launcher.plan.secrets import is_secret as is_secret
from launcher.plan.wrapper import Wrapper


@dataclass(frozen=True)
class Bind:
    """Where the server listens: TCP host and port, or a unix socket path."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> Bind:
        host, rest = parse_bind(text)
        if host == "unix":
            return cls(path=str(rest))
        return cls(host=host, port=int(rest))

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    @property
    def is_loopback(self) -> bool:
        return self.is_unix or self.host in ("127.0.0.1", "::1", "localhost")

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Command:
    """One process to start: argv (never a shell string), extra environment, working dir."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    label: str = ""  # as the profile writes it (`migrate --noinput`), for messages

    def shell_line(self, *, mask: bool = True) -> str:
        """A line a person can paste in a shell; secrets become references to their shell vars."""
        assigns = []
        for name, value in self.env.items():
            # A masked value would not run: refer to the variable in the user's shell instead.
            hidden = mask and mask_value(name, value) != value
            shown = f'"${name}"' if hidden else shlex.quote(value)
            assigns.append(f"{name}={shown}")
        words = [*assigns, *map(shlex.quote, self.argv)]
        return f"cd {shlex.quote(str(self.cwd))} && " + " ".join(words)

    def full_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The child's environment: the caller's, with the plan's additions on top."""
        return {**base, **self.env}


@dataclass(frozen=True)
class Probe:
    """How to ask the site whether it is healthy."""

    enabled: bool
    path: str
    host: str
    interval: float
    timeout: float
    startup_timeout: float
    failure_threshold: int
    expected_status: int
    # True: the launcher's own answer inside the worker (launcher.child.probe), not a site URL.
    own: bool = False
    # The site's pages a new generation must answer without a 5xx before it serves
    # (`health.smoke`, else the root); () in dev and with health off: none asked.
    smoke: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts and the crash budget before giving up."""

    backoff_initial: float
    backoff_max: float
    max_crashes: int
    window: float


@dataclass(frozen=True)
class WatchSet:
    """What the dev reloader watches (absolute roots) and which names count."""

    roots: tuple[Path, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    delay: float
    drain_timeout: float


@dataclass(frozen=True)
class ProcessPlan:
    """One of the site's other processes (a task worker, a scheduler, an asset watcher), run
    beside the server: its command (a management command runs as a step does), how many, and
    how it restarts and stops."""

    name: str
    command: Command
    instances: int
    restart: RestartPolicy
    max_memory: int | None  # bytes, each instance; None: no ceiling
    stop_signal: str  # a signal's name: SIGTERM, SIGINT, ...
    stop_timeout: float  # seconds from stop_signal to SIGKILL
    reload: bool  # imports the project: a reload (and a dev edit) restarts it
    manage: bool  # a management command (manage.py's words), else an argv run as is
    why: str  # why it runs: "the profile", "Procfile:3", "TASKS['default'] uses ..."
    origin: tuple[Path, int] | None = None  # the file and line that asked for it


Listen = Bind | tuple[int, ...]  # a bind to open, or inherited sockets' file descriptors


@dataclass(frozen=True)
class ServerArgv:
    """The server's command line, decided at plan time around its listen arguments, which only
    the run layer knows: it passes the sockets it holds as file descriptors."""

    head: tuple[str, ...]  # `python -m gunicorn APP`
    tail: tuple[str, ...]  # every option after the listen arguments
    style: str = "gunicorn"  # how sockets are named: gunicorn `--bind`, or uvicorn's options
    # What a person would add for autoreload: shown by `launch show`; under `launch` the
    # launcher reloads, so a server given sockets never gets it.
    autoreload: tuple[str, ...] = ()
    # The head when the server is given sockets, if it differs (gunicorn: launcher's entry,
    # which leaves the files of unix sockets it was handed alone).
    handed: tuple[str, ...] = ()

    def argv(self, listen: Listen) -> tuple[str, ...]:
        fds = isinstance(listen, tuple)
        head = self.handed if fds and self.handed else self.head
        return (*head, *listen_args(self.style, listen), *self.tail,
                *(() if fds else self.autoreload))


def listen_args(style: str, listen: Listen) -> list[str]:
    """gunicorn takes one `--bind` per socket (fd://N for an inherited one); uvicorn serves one
    socket: `--fd`, `--uds`, or `--host` and `--port`."""
    if style == "gunicorn":
        binds = [f"fd://{fd}" for fd in listen] if isinstance(listen, tuple) else [str(listen)]
        return [arg for bind in binds for arg in ("--bind", bind)]
    if isinstance(listen, tuple):
        return ["--fd", str(listen[0])]
    if listen.is_unix:
        return ["--uds", str(listen.path)]
    return ["--host", str(listen.host), "--port", str(listen.port)]


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to run a profile, decided up front and free of side effects."""

    name: str
    source: Path
    backend: str
    bind: Bind
    workers: int
    cwd: Path
    env: Mapping[str, str]
    python: str
    steps: tuple[Command, ...]
    checks: tuple[Command, ...]
    probe: Probe
    restart: RestartPolicy
    watch: WatchSet | None
    max_worker_memory: int | None
    memory_check_interval: float
    graceful_timeout: float
    server: ServerArgv
    # Where each key was written (file, line), by dotted path ('bind', 'before_start.0'):
    # errors found later point there too.
    origins: Mapping[str, tuple[Path, int]] = field(default_factory=dict, repr=False)
    # The Django project found around the working directory, and what it said.
    project: Project | None = None
    interface: str = "wsgi"  # what the server calls: "wsgi" or "asgi"
    app: str = ""  # the project's own app (module:attr); "" = built from the settings
    app_source: str = ""  # where `app` came from, for show and check
    server_app: str = ""  # what the server loads: the launcher's wrapper around `app`
    # uvicorn.Config keyword arguments (the dev fork server's children serve with these).
    uvicorn_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # Variables `env:` needs that were not set when the plan was made (systemd-unit only).
    deferred_env: tuple[str, ...] = ()
    # Top-level keys given on the command line (`--bind`): errors about them name the option.
    overridden: frozenset[str] = frozenset()
    wrapper: Wrapper = field(default_factory=Wrapper)  # `wrap:`, its command found
    description: str = ""
    worker_class: str = ""  # gunicorn's, as the profile names it
    worker_timeout: int = 0  # gunicorn kills a worker silent this long (0: never)
    step_timeout: float = 600.0
    # Steps the project's own files called for, added to the profile's (plan.project.steps):
    # their names, e.g. ("compress",).
    found_steps: tuple[str, ...] = ()
    backlog: int = 2048
    admin_bind: Bind | None = None  # the supervisor's admin listener (`admin.bind`); None: off
    log_format: str = "text"  # "text" or "json": every line the launcher writes
    url: str = ""  # where a person opens the site (plan/hosts.py); "" for a unix socket
    # Said once when the site starts: what the plan saw that will not work as the user expects.
    warnings: tuple[str, ...] = ()
    # The site's other processes, run beside the server (plan/processes.py).
    processes: tuple[ProcessPlan, ...] = ()
    # Why this plan must not serve (refuse_insecure), one line each; a start and a reload stop.
    refusals: tuple[str, ...] = ()

    def error(self, key: str, message: str) -> ProfileError:
        """An error about `key` (found by running something), at the file and line that set it."""
        if key in self.overridden:
            return ProfileError(None, None, option_for(key), message)
        file, line = self.origins.get(key, (self.source, None))
        return ProfileError(file, line, key, message)

    @property
    def forks(self) -> bool:
        """Dev under uvicorn: a warm parent forks each new server (launcher.child.devserver)."""
        return self.watch is not None and self.backend == "uvicorn"

    def given(self, key: str) -> bool:
        """Whether the profile (or the command line) set `key`, rather than a default."""
        return key in self.origins or key in self.overridden

    def check_runnable(self) -> None:
        """Raise when this plan must not run: the `wrap:` command cannot run, or the settings
        would harm a production site. Before anything starts, not after."""
        if self.wrapper.problem:
            raise self.error("wrap", self.wrapper.problem)
        if self.refusals:
            raise LaunchError("\n".join(self.refusals), code=2)

    def server_command(self, listen: Listen | None = None) -> Command:
        """The server process; pass fds to serve sockets the supervisor already holds."""
        argv = self.server.argv(self.bind if listen is None else listen)
        return Command(argv=(*self.wrapper.argv, *argv), cwd=self.cwd, env=self.env)

    def masked_env(self) -> dict[str, str]:
        return {name: mask_value(name, value) for name, value in self.env.items()}

    def masker(self, env: Mapping[str, str]) -> Masker:
        """The masking rule, knowing this plan's secrets and those of the caller's `env`."""
        return Masker.of(env, self.env, *(process.command.env for process in self.processes))

    def process_types(self) -> tuple[str, ...]:
        """What `--only` may name: the server (`web`) and each process."""
        return (WEB, *(process.name for process in self.processes))

    def process(self, name: str) -> ProcessPlan | None:
        """The process named `name`; None for the server (`web`)."""
        return next((process for process in self.processes if process.name == name), None)
