"""The launch plan: plain frozen data that the run layer executes and `launch show` prints."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import ProfileError
from launcher.plan.schema import Profile, parse_bind
from launcher.plan.wrapper import Wrapper

_SECRET = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|DSN|LICENSE_KEY", re.I
)
_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.S)
MASK = "***"


def is_secret(name: str) -> bool:
    """Environment names that hold secrets by convention (SECRET_KEY, DB_PASSWORD, ...)."""
    return bool(_SECRET.search(name))


def mask_value(name: str, value: str) -> str:
    """Hide secret values, and passwords inside URLs such as DATABASE_URL."""
    if is_secret(name):
        return MASK
    match = _URL.match(value)
    if not match or "@" not in match["netloc"]:
        return value
    userinfo, _, host = match["netloc"].rpartition("@")  # the password may itself hold '@'
    if ":" not in userinfo:
        return value
    user = userinfo.split(":", 1)[0]
    return f"{match['scheme']}{user}:{MASK}@{host}{match['rest']}"


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


Listen = Bind | tuple[int, ...]  # a bind to open, or inherited sockets' file descriptors


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to run a profile, decided up front and free of side effects."""

    name: str
    source: Path
    profile: Profile
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
    build_argv: Callable[[LaunchPlan, Listen], tuple[str, ...]] = field(repr=False, compare=False)
    # Where each top-level key was written (file, line): errors found later point there too.
    origins: Mapping[str, tuple[Path, int]] = field(default_factory=dict, repr=False)
    wrapper: Wrapper = field(default_factory=Wrapper)  # `wrap:`, its command found

    def error(self, key: str, message: str) -> ProfileError:
        """An error about `key` (found by running something), at the file and line that set it."""
        file, line = self.origins.get(key, (self.source, None))
        return ProfileError(file, line, key, message)

    def check_wrapper(self) -> None:
        """Raise when the `wrap:` command cannot run: before anything starts, not after."""
        if self.wrapper.problem:
            raise self.error("wrap", self.wrapper.problem)

    def server_command(self, listen: Listen | None = None) -> Command:
        """The server process; pass fds to serve sockets the supervisor already holds."""
        argv = self.build_argv(self, self.bind if listen is None else listen)
        return Command(argv=(*self.wrapper.argv, *argv), cwd=self.cwd, env=self.env)

    def masked_env(self) -> dict[str, str]:
        return {name: mask_value(name, value) for name, value in self.env.items()}
