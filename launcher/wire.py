"""The protocol between the supervisor and the processes it starts, in one place.

Every boundary's messages are typed here once, with the framing that carries them; both sides
import this module, and it imports nothing of the launcher's (it is the bottom layer):

- **the planner** (launcher/cli/planner.py -> launcher/run/planner.py): a `PlanRequest` as JSON
  in argv, `PLANNER_GO` on stdin for a planner started ahead, and one pickled `Planned` or
  `PlanRefused` on stdout (the plan is the plan layer's own frozen data, pickled whole; this
  module cannot name its type, so the envelope is generic);
- **the app check and the preparing server** (launcher/child/check.py, prepare.py ->
  launcher/run/checks.py, preparing.py): `Order`s down a pipe and `Said` messages up another
  (or on the check's stdout), one JSON object a line (`encode_line`, `decode_order`,
  `decode_said`);
- **the dev tiers**: the base (launcher/child/devserver.py <-> launcher/run/devbase.py) takes
  `Spawn` with two descriptors (SCM_RIGHTS) on a SOCK_SEQPACKET socket and answers in packets
  of one JSON object each (`encode_packet`, `decode_dev`); the setup tier
  (launcher/child/devsetup.py <-> launcher/run/forkserver.py) takes `Fork` on its command pipe
  and reports on its status pipe in JSON lines, as the preparing server does;
- **the environment** the plan sets and `launcher.child` reads: the `*_ENV` names below.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

# --- Environment variables: set by the plan (or the supervisor), read inside the servers ------
# The project's own app as `module:attribute`; empty: build it from the settings.
APP_ENV = "LAUNCHER_APP"
# "wsgi" or "asgi": which callable the server wants (an ASGI server may get a WSGI app).
INTERFACE_ENV = "LAUNCHER_INTERFACE"
# "prod": serve STATIC_ROOT (after collectstatic); "dev": as runserver, plus media; "off".
STATIC_ENV = "LAUNCHER_STATIC"
# Where collectstatic puts files when the settings name no STATIC_ROOT.
STATIC_ROOT_ENV = "LAUNCHER_STATIC_ROOT"
# "1": import the URLconf (every view) when the app loads, so a generation holds its own code.
WARM_URLS_ENV = "LAUNCHER_WARM_URLS"
# Under ASGI: threads per worker that run a Django project's sync views, one hop per request
# (launcher.child.sync_views); "0": every request takes the project's ASGIHandler.
SYNC_THREADS_ENV = "LAUNCHER_SYNC_THREADS"
# The site URL the probe asks instead (`health.path`), so its requests stay out of the logs.
PROBE_PATH_ENV = "LAUNCHER_PROBE_PATH"
# "1": the app check also reports what fits the project, WSGI or ASGI (for `launch check`).
CHECK_FIT_ENV = "LAUNCHER_CHECK_FIT"
# "json": the servers log one JSON object a line (`log_format: json`, launcher.child.jsonlog).
LOG_FORMAT_ENV = "LAUNCHER_LOG_FORMAT"
# The profile's name, on every JSON line the servers write.
LOG_PROFILE_ENV = "LAUNCHER_LOG_PROFILE"
# The generation's number, on every JSON line its servers write.
LOG_GENERATION_ENV = "LAUNCHER_LOG_GENERATION"
# The profile's uvicorn settings as JSON: the uvicorn worker's CONFIG_KWARGS (gunicorn can
# only take a worker class by name, so they cannot travel as arguments).
UVICORN_CONFIG_ENV = "LAUNCHER_UVICORN_CONFIG"
# The project's own worker class (`pkg.mod.Class`), run as launcher.child.workers' subclass.
WORKER_CLASS_ENV = "LAUNCHER_WORKER_CLASS"
# A preparing server's `PrepareOptions` as JSON (what to check, where collectstatic's record is).
PREPARE_ENV = "LAUNCHER_PREPARE"
# The descriptor a preparing server writes its `Said` lines to.
STATUS_FD_ENV = "LAUNCHER_STATUS_FD"
# The descriptor a preparing server reads its `Order` lines from.
ORDERS_FD_ENV = "LAUNCHER_ORDERS_FD"

# --- The launcher's own health answer -----------------------------------------------------------
# Given inside the worker before Django's URL routing and host checks: it proves the app
# imported and the worker answers. `?deep=1` also asks every database for `SELECT 1`.
PROBE_PATH = "/__launcher__/health"
PROBE_DEEP_QUERY = "deep=1"
PROBE_USER_AGENT = "launcher-probe"

# --- Modules and files the supervisor's side names, never imports -------------------------------
CHECK_MODULE = "launcher.child.check"  # the app check, in a process of its own
MANAGE_MODULE = "launcher.child.manage"  # manage.py's commands, with the launcher's defaults
APP_MODULE = "launcher.child.app"  # the app every server loads (`:wsgi`, `:asgi`)
PREPARE_MODULE = "launcher.child.prepare"  # prepares, serves nothing, exits when orders end
# The app factory a preparing server loads instead of APP_MODULE's attribute: it runs the
# orders, then returns the app built after them (gunicorn calls `NAME()`; uvicorn `--factory`).
PREPARED_APP = "launcher.child.prepare:prepared_app"
PLANNER_MODULE = "launcher.cli.planner"  # makes a plan in a process of its own
DEVSERVER_MODULE = "launcher.child.devserver"  # the dev base tier
# gunicorn's `--logger-class` in JSON mode, and uvicorn's `--log-config` (a file beside
# launcher/child/jsonlog.py).
GUNICORN_JSON_LOGGER = "launcher.child.gunicorn_logger.JsonLogger"
UVICORN_JSON_LOG_CONFIG = "uvicorn_log.json"


# --- Framing: one JSON object per message, `kind` naming its type ------------------------------
class Message:
    """A message of one of the boundaries below: a frozen dataclass whose `kind` names it."""

    kind: ClassVar[StrEnum]


M = TypeVar("M", bound=Message)


def _payload(message: Message) -> str:
    body = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}  # type: ignore[arg-type]
    return json.dumps({"kind": str(message.kind), **body})


def encode_line(message: Message) -> str:
    """The message as one line of a pipe (JSON escapes every newline inside it)."""
    return _payload(message) + "\n"


def encode_packet(message: Message) -> bytes:
    """The message as one SOCK_SEQPACKET packet."""
    return _payload(message).encode()


_HINTS: dict[type, dict[str, Any]] = {}
_UnionType = type(int | None)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value has the field's type (the shapes used here only)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, _UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict or hint is dict or typing.is_typeddict(hint):
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _decode(text: str | bytes, kinds: typing.Mapping[str, type[M]]) -> M | None:
    """The message `text` holds, if it is one of `kinds`; None for anything else (a line the
    project printed, a message of another boundary, a field of the wrong type)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    cls = kinds.get(obj.pop("kind", None))
    if cls is None:
        return None
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    hints = _HINTS[cls]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in obj:
            if not _fits(obj[f.name], hints[f.name]):
                return None
            values[f.name] = obj[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            return None
    return cls(**values)


# --- The app check and the preparing server -----------------------------------------------------
# The app check (`python -m launcher.child.check`) says `Said` lines on its stdout. A preparing
# server (gunicorn preloading PREPARED_APP, uvicorn serving in one process while it loads it,
# or `python -m launcher.child.prepare`, which serves nothing) says the same on STATUS_FD_ENV's
# descriptor, then what each `Order` read from ORDERS_FD_ENV's did, and `Serving` last.
class Said(StrEnum):
    """What the app check and a preparing server report."""

    SETTINGS = "settings"  # the settings imported: start-up may run the steps
    WARN = "warn"  # something that will misbehave, the server still starts
    APP = "app"  # the app built as the server will serve it
    ERROR = "error"  # a refusal, naming the key to change
    FIT = "fit"  # `launch check`: what decides between WSGI and ASGI
    STEP = "step"  # a before_start step ended
    CHECKED = "checked"  # Django's check passed
    SERVING = "serving"  # the app goes to the server, which serves now


@dataclass(frozen=True)
class SettingsImported(Message):
    kind: ClassVar[Said] = Said.SETTINGS


@dataclass(frozen=True)
class Warned(Message):
    kind: ClassVar[Said] = Said.WARN
    text: str


@dataclass(frozen=True)
class AppBuilt(Message):
    kind: ClassVar[Said] = Said.APP
    serves: str  # the project's app: `module.Class`
    interface: str  # "wsgi" or "asgi"


CHECK_KEY = "check"  # a Refused's key when Django's check (a `RunCheck` order) refused


@dataclass(frozen=True)
class Refused(Message):
    """The app check's refusal (`key`: the profile key or `settings`, `app`...), or Django's
    check's (key CHECK_KEY)."""

    kind: ClassVar[Said] = Said.ERROR
    key: str
    message: str


class FitFound(TypedDict):
    views: int
    async_views: list[str]
    middleware: int
    async_middleware: list[str]
    websocket: bool


@dataclass(frozen=True)
class Fit(Message):
    kind: ClassVar[Said] = Said.FIT
    found: FitFound


@dataclass(frozen=True)
class StepEnded(Message):
    """A management-command step ended: its exit code, `skipped` why when it had nothing to
    do, `error` what Django's checks said when they refused before it ran."""

    kind: ClassVar[Said] = Said.STEP
    index: int
    exit: int
    seconds: float = 0.0
    skipped: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Checked(Message):
    """Django's check passed; `report` is what it printed, as manage.py would."""

    kind: ClassVar[Said] = Said.CHECKED
    report: str


@dataclass(frozen=True)
class Serving(Message):
    kind: ClassVar[Said] = Said.SERVING
    pid: int


SaidMessage = SettingsImported | Warned | AppBuilt | Refused | Fit | StepEnded | Checked | Serving
_SAID: dict[str, type[Any]] = {
    str(c.kind): c
    for c in (SettingsImported, Warned, AppBuilt, Refused, Fit, StepEnded, Checked, Serving)
}


def decode_said(line: str) -> SaidMessage | None:
    """A `Said` message, or None for anything else the process printed."""
    return _decode(line, _SAID)


class Order(StrEnum):
    """What the supervisor orders a preparing server, in the order it decides."""

    RUN = "run"  # a before_start step that is a management command
    APP = "app"  # build the app now (after the steps): the app check's verdict
    CHECK = "check"  # Django's check, as a reload's preflight
    SERVE = "serve"  # hand the app built to the server, which serves


@dataclass(frozen=True)
class RunStep(Message):
    kind: ClassVar[Order] = Order.RUN
    index: int
    words: list[str]  # manage.py's words


@dataclass(frozen=True)
class BuildApp(Message):
    kind: ClassVar[Order] = Order.APP


@dataclass(frozen=True)
class RunCheck(Message):
    kind: ClassVar[Order] = Order.CHECK
    words: list[str]  # manage.py's words: `check [--deploy]`


@dataclass(frozen=True)
class Serve(Message):
    kind: ClassVar[Order] = Order.SERVE


OrderMessage = RunStep | BuildApp | RunCheck | Serve
_ORDERS: dict[str, type[Any]] = {str(c.kind): c for c in (RunStep, BuildApp, RunCheck, Serve)}


def decode_order(line: str) -> OrderMessage | None:
    return _decode(line, _ORDERS)


@dataclass(frozen=True)
class PrepareOptions:
    """PREPARE_ENV: the app check's arguments, collectstatic's record (between starts),
    `quiet`: Django's check's warnings go only to the status."""

    check: list[str] = field(default_factory=list)
    record: str | None = None
    quiet: bool = False

    def encode(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, text: str) -> PrepareOptions:
        obj = json.loads(text or "{}")
        return cls(list(obj.get("check", [])), obj.get("record") or None, bool(obj.get("quiet")))


# --- The dev tiers -------------------------------------------------------------------------------
# The base (DEVSERVER_MODULE) holds the third-party imports and the settings; it says `Warm` or
# `Broken` once, and to each `Spawn` (which carries the setup tier's command pipe and status
# pipe as SCM_RIGHTS) forks a setup tier and answers `Spawned`. A setup tier runs
# django.setup(), says `Warm` or `Broken` on its status pipe, and to each `Fork` forks a
# server, telling `Forked`, then `Ready` or `Failed`, and `Exited` when it ends.
class Dev(StrEnum):
    SPAWN = "spawn"  # to the base: fork a setup tier on these two pipes
    SPAWNED = "spawned"  # from the base: the setup tier's pid
    FORK = "fork"  # to a setup tier: fork a server
    WARM = "warm"  # from either tier: imported, and what it holds
    BROKEN = "broken"  # from either tier: its imports failed
    FORKED = "forked"  # a server was forked
    READY = "ready"  # the server serves
    FAILED = "failed"  # the server's import failed
    EXIT = "exit"  # a child of the setup tier ended


class Ahead(TypedDict, total=False):
    """What the base imported ahead of the project: counts and the seconds it took."""

    modules: int
    failed: int
    seconds: float
    saved: int  # how many came from the list an earlier base saved


class SavedList(TypedDict, total=False):
    """What became of the import list an earlier base saved: used (`modules`) or `ignored`."""

    path: str
    modules: int
    ignored: str


class Held(TypedDict, total=False):
    """What a tier imported: the project files, the files it looked for in vain (a change to
    either renews it), and for the base, `ahead` and `saved`."""

    files: list[str]
    missing: list[str]
    ahead: Ahead
    saved: SavedList


@dataclass(frozen=True)
class Spawn(Message):
    kind: ClassVar[Dev] = Dev.SPAWN


@dataclass(frozen=True)
class Spawned(Message):
    kind: ClassVar[Dev] = Dev.SPAWNED
    pid: int
    held: Held


@dataclass(frozen=True)
class Fork(Message):
    kind: ClassVar[Dev] = Dev.FORK
    generation: int  # the number its JSON log lines carry


@dataclass(frozen=True)
class Warm(Message):
    kind: ClassVar[Dev] = Dev.WARM
    held: Held


@dataclass(frozen=True)
class Broken(Message):
    kind: ClassVar[Dev] = Dev.BROKEN
    message: str


@dataclass(frozen=True)
class Forked(Message):
    kind: ClassVar[Dev] = Dev.FORKED
    pid: int


@dataclass(frozen=True)
class Ready(Message):
    kind: ClassVar[Dev] = Dev.READY
    pid: int


@dataclass(frozen=True)
class Failed(Message):
    kind: ClassVar[Dev] = Dev.FAILED
    pid: int
    message: str


@dataclass(frozen=True)
class Exited(Message):
    kind: ClassVar[Dev] = Dev.EXIT
    pid: int
    code: int


DevMessage = Spawn | Spawned | Fork | Warm | Broken | Forked | Ready | Failed | Exited
_DEV: dict[str, type[Any]] = {
    str(c.kind): c for c in (Spawn, Spawned, Fork, Warm, Broken, Forked, Ready, Failed, Exited)
}


def decode_dev(data: str | bytes) -> DevMessage | None:
    """A dev tier's message (a packet or a line), None for anything else."""
    return _decode(data, _DEV)


# --- The planner ---------------------------------------------------------------------------------
PLANNER_GO = "go\n"  # on a waiting planner's stdin: read the profile now
P = TypeVar("P")


@dataclass(frozen=True)
class PlanRequest:
    """What `launch` was asked to run: a profile name and the command line's overrides;
    `wait`: load the parsers, then wait for PLANNER_GO."""

    name: str
    overrides: dict[str, str] = field(default_factory=dict)
    wait: bool = False

    def encode(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def decode(cls, text: str) -> PlanRequest:
        obj = json.loads(text)
        return cls(str(obj["name"]), dict(obj.get("overrides", {})), bool(obj.get("wait")))


@dataclass(frozen=True)
class Planned(Generic[P]):
    """The planner's answer: the plan."""

    plan: P


@dataclass(frozen=True)
class PlanRefused:
    """The planner's answer: the profile's one-line error and its exit code."""

    code: int
    message: str


def encode_answer(answer: Planned[P] | PlanRefused) -> bytes:
    return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)


def decode_answer(data: bytes) -> Planned[Any] | PlanRefused | None:
    """The planner's answer; None when it wrote nothing or something else."""
    if not data:
        return None
    try:
        answer = pickle.loads(data)
    except Exception:
        return None
    return answer if isinstance(answer, Planned | PlanRefused) else None
