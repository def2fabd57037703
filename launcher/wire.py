"""The protocol between the supervisor and the processes it starts, in one place.

Every boundary's messages are typed here once, with the framing that carries them; both sides
import this module, and it imports nothing of the launcher's (it is the bottom layer):

- **the planner** (launcher/cli/planner.py -> launcher/run/planner.py): a `PlanRequest` as JSON
  in argv, PLANNER_GO on stdin for a planner started ahead, and one pickled `Planned` or
  `PlanRefused` on stdout (the plan is the plan layer's own frozen data, pickled whole: this
  module cannot name its type, so the envelope is generic);
- **the app check and the preparing server** (launcher/child/check.py, prepare.py ->
  launcher/run/checks.py, preparing.py): `Order`s down a pipe and `Said` messages up another
  (or on the check's stdout), one JSON object a line (`encode_line`, `decode_order`,
  `decode_said`), with `PrepareOptions` in the environment;
- **the dev tiers**: the base (launcher/child/devserver.py <-> launcher/run/devbase.py) is
  started with a `DevSpec` in argv, takes `Spawn` with two descriptors (SCM_RIGHTS) on a
  SOCK_SEQPACKET socket and answers in packets of one JSON object each (`encode_packet`,
  `decode_dev`); the setup tier (launcher/child/devsetup.py <-> launcher/run/forkserver.py)
  takes `Fork` on its command pipe and reports on its status pipe in JSON lines, as the
  preparing server does; its first server tells the base what it imported (`Learned`);
- **the environment** the plan sets and `launcher.child` reads: the `*_ENV` names below.

Messages are TypedDicts whose `kind` (an enum member) names their type: plain dicts at run
time, so importing this module costs every server process next to nothing.
"""

# No `from __future__ import annotations` here: TypedDict tells NotRequired keys only from
# evaluated annotations on Python 3.11.

import json
import typing
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict, TypeVar

# --- Environment variables: set by the plan (or the supervisor), read inside the servers ------
# The project's own app as `module:attribute`; empty: build it from the settings.
APP_ENV = "LAUNCHER_APP"
# "wsgi" or "asgi": which callable the server wants (an ASGI server may get a WSGI app).
INTERFACE_ENV = "LAUNCHER_INTERFACE"
# "prod": serve STATIC_ROOT (after collectstatic); "dev": as runserver, plus media; "off".
STATIC_ENV = "LAUNCHER_STATIC"
# Where collectstatic puts files when the settings name no STATIC_ROOT.
STATIC_ROOT_ENV = "LAUNCHER_STATIC_ROOT"
# Prod: the snapshot of STATIC_ROOT this generation serves (`PROFILE.SUPERVISOR.N`, beside
# STATIC_ROOT), so a later collectstatic never changes the files it indexed; and the snapshots
# of the generations still alive, comma-separated: the profile's others are pruned.
STATIC_SNAPSHOT_ENV = "LAUNCHER_STATIC_SNAPSHOT"
STATIC_KEEP_ENV = "LAUNCHER_STATIC_KEEP"
# "1": serve MEDIA_ROOT at MEDIA_URL outside dev (`static.media`, launcher.child.media).
MEDIA_ENV = "LAUNCHER_MEDIA"
# "1": import the URLconf (every view) when the app loads, so a generation holds its own code.
WARM_URLS_ENV = "LAUNCHER_WARM_URLS"
# Under ASGI: threads per worker that run a Django project's sync views, one hop per request
# (launcher.child.sync_views); "0": every request takes the project's ASGIHandler.
SYNC_THREADS_ENV = "LAUNCHER_SYNC_THREADS"
# The site URL the probe asks instead (`health.path`), so its requests stay out of the logs.
PROBE_PATH_ENV = "LAUNCHER_PROBE_PATH"
# A gunicorn generation's private probe socket (`HOST:PORT`, launcher/run/sockets.py): the
# supervisor's alone, left out of gunicorn's `Listening at:` line (launcher.child.gunicorn_logger).
PROBE_LISTENER_ENV = "LAUNCHER_PROBE_LISTENER"
# "1": the app check also reports what fits the project, WSGI or ASGI (for `launch check`).
CHECK_FIT_ENV = "LAUNCHER_CHECK_FIT"
# "json": the servers log one JSON object a line (`log_format: json`, launcher.child.jsonlog).
LOG_FORMAT_ENV = "LAUNCHER_LOG_FORMAT"
# The profile's name, on every JSON line the servers write.
LOG_PROFILE_ENV = "LAUNCHER_LOG_PROFILE"
# The generation's number, on every JSON line its servers write.
LOG_GENERATION_ENV = "LAUNCHER_LOG_GENERATION"
# The profile's uvicorn settings as JSON, the uvicorn worker's CONFIG_KWARGS: gunicorn takes
# a worker class only by name, so they cannot travel as arguments.
UVICORN_CONFIG_ENV = "LAUNCHER_UVICORN_CONFIG"
# The project's own worker class (`pkg.mod.Class`), run as launcher.child.workers' subclass.
WORKER_CLASS_ENV = "LAUNCHER_WORKER_CLASS"
# A preparing server's `PrepareOptions` as JSON (what to check, where collectstatic's record is).
PREPARE_ENV = "LAUNCHER_PREPARE"
# "1": a dev server's failure prints every frame of its traceback, the launcher's and the
# server's importer's too (launcher.child.trace trims them otherwise).
FULL_TRACEBACK_ENV = "LAUNCHER_FULL_TRACEBACK"
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

# --- The smoke request: a new generation's own pages, before it serves ---------------------------
# Each prod generation gets a secret of its own in SMOKE_TOKEN_ENV. The supervisor sends it in
# SMOKE_TOKEN_HEADER with its GET of the site's pages (`health.smoke`); only a request carrying
# it gets the exception behind a 500 in SMOKE_ERROR_HEADER (`Type: message`, one line, bounded,
# percent-encoded by `encode_smoke_error`): ordinary clients never see exception text.
SMOKE_TOKEN_ENV = "LAUNCHER_SMOKE_TOKEN"
SMOKE_TOKEN_HEADER = "X-Launcher-Smoke"
SMOKE_ERROR_HEADER = "X-Launcher-Error"
# In every answer to a request carrying the secret: this generation answered it, not another
# one serving the same socket (uvicorn in one process has no private probe socket).
SMOKE_SEEN_HEADER = "X-Launcher-Smoke-Seen"
# Not the probe's: the smoke request's access line and Django's error record stay in the logs.
SMOKE_USER_AGENT = "launcher-smoke"
SMOKE_ERROR_LIMIT = 400  # characters of `Type: message` carried, at most
# Where the child keeps a smoke request's exception until its answer starts: a key of the
# request's WSGI environ or ASGI scope (both outlive Django's request object).
SMOKE_ERROR_KEY = "launcher.smoke_error"
# The safe characters of a carried error: printable ASCII but `%` (the escape itself).
_SMOKE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def one_line(text: str, limit: int = SMOKE_ERROR_LIMIT) -> str:
    """`text` as one line of at most `limit` characters: line breaks, tabs and other control
    characters become single spaces; a cut is marked with `...`."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def encode_smoke_error(text: str) -> str:
    """A header value for `text`: one bounded line, non-ASCII percent-encoded as UTF-8."""
    from urllib.parse import quote

    return quote(one_line(text), safe=_SMOKE_SAFE)


def decode_smoke_error(value: str) -> str:
    """`encode_smoke_error`'s text again, one bounded line whatever the header held."""
    from urllib.parse import unquote

    return one_line(unquote(value, errors="replace"))

# --- Modules and files the supervisor's side names, never imports -------------------------------
CHECK_MODULE = "launcher.child.check"  # the app check, in a process of its own
MANAGE_MODULE = "launcher.child.manage"  # manage.py's commands, with the launcher's defaults
APP_MODULE = "launcher.child.app"  # the app every server loads (`:wsgi`, `:asgi`)
PREPARE_MODULE = "launcher.child.prepare"  # prepares, serves nothing, exits when orders end
# The app factory a preparing server loads in place of APP_MODULE's attribute: it does the
# orders, then returns the app built after them (gunicorn calls `NAME()`; uvicorn `--factory`).
PREPARED_APP = "launcher.child.prepare:prepared_app"
PLANNER_MODULE = "launcher.cli.planner"  # makes a plan in a process of its own
# `python -m gunicorn` on the sockets the supervisor holds: their files are not its to remove
GUNICORN_MAIN = "launcher.child.gunicorn_main"
DEVSERVER_MODULE = "launcher.child.devserver"  # the dev base tier
# gunicorn's `--logger-class` in JSON mode, and uvicorn's `--log-config` (a file beside
# launcher/child/jsonlog.py).
GUNICORN_JSON_LOGGER = "launcher.child.gunicorn_logger.JsonLogger"
GUNICORN_LOGGER = "launcher.child.gunicorn_logger.Logger"  # text: gunicorn's, probe hidden
UVICORN_JSON_LOG_CONFIG = "uvicorn_log.json"


# --- The app check and the preparing server -----------------------------------------------------
# The app check (`python -m launcher.child.check`) says `Said` lines on its stdout. A preparing
# server (gunicorn preloading PREPARED_APP, uvicorn serving in one process while it loads it,
# or `python -m launcher.child.prepare`, which serves nothing) says the same on STATUS_FD_ENV's
# descriptor, then what each `Order` read from ORDERS_FD_ENV's did, and `Serving` last.
class Said(StrEnum):
    """What the app check and a preparing server report."""

    SETTINGS = "settings"  # the settings imported: start-up may run the steps
    WARN = "warn"  # something that will misbehave; the server still starts
    APP = "app"  # the app built as the server will serve it
    ERROR = "error"  # a refusal, naming the key to change
    FIT = "fit"  # `launch check`: what decides between WSGI and ASGI
    STEP = "step"  # a before_start step ended
    CHECKED = "checked"  # Django's check passed
    SERVING = "serving"  # the app goes to the server, which serves now


class SettingsImported(TypedDict):
    kind: Literal[Said.SETTINGS]


class Warned(TypedDict):
    kind: Literal[Said.WARN]
    text: str


class AppBuilt(TypedDict):
    kind: Literal[Said.APP]
    serves: str  # the project's app: `module.Class`
    interface: str  # "wsgi" or "asgi"


CHECK_KEY = "check"  # a Refused's key when Django's check (a `RunCheck` order) refused
# A Refused's key when the imported settings would harm a public site (`refuse_insecure`, the
# app check's `--refuse-insecure PROFILE`): its message is the whole of one line per setting,
# as the plan's refusals of what the settings files write are.
INSECURE_KEY = "refuse_insecure"
INSECURE_KEY_PREFIX = "django-insecure-"  # what startproject writes as SECRET_KEY: public
INSECURE_WHY = {
    "DEBUG": "Django's debug pages would show code and settings to anyone",
    "SECRET_KEY": "startproject's key is not secret",
}


def insecure_line(where: str, found: str, setting: str, profile: str) -> str:
    """One refusal: where (file or file:line), what was found there, of which setting, and
    the key that lets the profile serve it anyway."""
    return (f"{where}: {found} refused by {profile} ({INSECURE_WHY[setting]}): set it from "
            "the environment, or `refuse_insecure: false` in the profile")


class Refused(TypedDict):
    """The app check's refusal (`key`: the profile key, `settings`, `app`...), or Django's
    check's (key CHECK_KEY)."""

    kind: Literal[Said.ERROR]
    key: str
    message: str


class FitFound(TypedDict):
    views: int
    async_views: list[str]
    middleware: int
    async_middleware: list[str]
    websocket: bool


class Fit(TypedDict):
    kind: Literal[Said.FIT]
    found: FitFound


class StepEnded(TypedDict):
    """A management-command step ended: its exit code, `skipped` why when it had nothing to
    do, `error` what Django's checks said when they refused before it ran, `reason` what the
    command raised, in one line (with the migration it was applying)."""

    kind: Literal[Said.STEP]
    index: int
    exit: int
    seconds: NotRequired[float]
    skipped: NotRequired[str]
    error: NotRequired[str]
    reason: NotRequired[str]


class Checked(TypedDict):
    """Django's check passed; `report` is what it printed, as manage.py would."""

    kind: Literal[Said.CHECKED]
    report: str


class Serving(TypedDict):
    kind: Literal[Said.SERVING]
    pid: int


SaidMessage = SettingsImported | Warned | AppBuilt | Refused | Fit | StepEnded | Checked | Serving
_SAID: dict[Said, type[Any]] = {
    Said.SETTINGS: SettingsImported, Said.WARN: Warned, Said.APP: AppBuilt, Said.ERROR: Refused,
    Said.FIT: Fit, Said.STEP: StepEnded, Said.CHECKED: Checked, Said.SERVING: Serving,
}


class Order(StrEnum):
    """What the supervisor orders a preparing server, in the order it decides."""

    RUN = "run"  # a before_start step that is a management command
    APP = "app"  # build the app now (after the steps): the app check's verdict
    CHECK = "check"  # Django's check, as a reload's preflight
    SERVE = "serve"  # hand the app built to the server, which serves


class RunStep(TypedDict):
    kind: Literal[Order.RUN]
    index: int
    words: list[str]  # manage.py's words


class BuildApp(TypedDict):
    kind: Literal[Order.APP]


class RunCheck(TypedDict):
    kind: Literal[Order.CHECK]
    words: list[str]  # manage.py's words: `check [--deploy]`


class Serve(TypedDict):
    kind: Literal[Order.SERVE]


OrderMessage = RunStep | BuildApp | RunCheck | Serve
_ORDERS: dict[Order, type[Any]] = {
    Order.RUN: RunStep, Order.APP: BuildApp, Order.CHECK: RunCheck, Order.SERVE: Serve,
}


class PrepareOptions(TypedDict, total=False):
    """PREPARE_ENV: the app check's arguments, collectstatic's record (kept between starts),
    `quiet`: Django's check's warnings go only to the status."""

    check: list[str]
    record: str
    quiet: bool


# --- The dev tiers -------------------------------------------------------------------------------
# The base (DEVSERVER_MODULE, given a `DevSpec`) holds the third-party imports and the
# settings; it says `Warm` or `Broken` once, and to each `Spawn` (which carries the setup
# tier's command pipe and status pipe as SCM_RIGHTS) forks a setup tier and answers `Spawned`.
# A setup tier runs django.setup(), says `Warm` or `Broken` on its status pipe, and to each
# `Fork` forks a server, telling `Forked`, then `Ready` or `Failed`, and `Exited` when it ends.
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
    LEARNED = "learned"  # from the first server to the base: what it imported


class DevSpec(TypedDict):
    """The base's argv[1]: the app and uvicorn's settings, the inherited listening socket and
    control socket, the project roots, `quiet` (a failure is only reported), where the import
    list is saved."""

    app: str
    kwargs: dict[str, Any]
    listen_fd: int
    control_fd: int
    roots: list[str]
    quiet: bool
    saved: str


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


class Held(TypedDict):
    """What a tier imported: the project files, the files it looked for in vain (a change to
    either renews it), and for the base, `ahead` and `saved`."""

    files: list[str]
    missing: list[str]
    ahead: NotRequired[Ahead]
    saved: NotRequired[SavedList]


class Spawn(TypedDict):
    kind: Literal[Dev.SPAWN]


class Spawned(TypedDict):
    kind: Literal[Dev.SPAWNED]
    pid: int
    held: Held


class Fork(TypedDict):
    kind: Literal[Dev.FORK]
    generation: int  # the number its JSON log lines carry


class Warm(TypedDict):
    kind: Literal[Dev.WARM]
    held: Held


class Broken(TypedDict):
    kind: Literal[Dev.BROKEN]
    message: str


class Forked(TypedDict):
    kind: Literal[Dev.FORKED]
    pid: int


class Ready(TypedDict):
    kind: Literal[Dev.READY]
    pid: int


class Failed(TypedDict):
    kind: Literal[Dev.FAILED]
    pid: int
    message: str


class Exited(TypedDict):
    kind: Literal[Dev.EXIT]
    pid: int
    code: int


class Learned(TypedDict):
    kind: Literal[Dev.LEARNED]
    modules: list[str]  # imported from outside the project roots, in order


DevMessage = Spawn | Spawned | Fork | Warm | Broken | Forked | Ready | Failed | Exited | Learned
_DEV: dict[Dev, type[Any]] = {
    Dev.SPAWN: Spawn, Dev.SPAWNED: Spawned, Dev.FORK: Fork, Dev.WARM: Warm, Dev.BROKEN: Broken,
    Dev.FORKED: Forked, Dev.READY: Ready, Dev.FAILED: Failed, Dev.EXIT: Exited,
    Dev.LEARNED: Learned,
}


# --- The planner ---------------------------------------------------------------------------------
PLANNER_GO = "go\n"  # on a waiting planner's stdin: read the profile now


class PlanRequest(TypedDict):
    """What `launch` was asked to run: a profile name and the command line's overrides;
    `wait`: load the parsers, then wait for PLANNER_GO."""

    name: str
    overrides: dict[str, str]
    wait: bool


class Answer(StrEnum):
    PLANNED = "planned"  # the plan
    REFUSED = "refused"  # the profile's one-line error and its exit code


class Planned(TypedDict):
    kind: Literal[Answer.PLANNED]
    plan: Any  # a launcher.plan.model.LaunchPlan, which this layer cannot name


class PlanRefused(TypedDict):
    kind: Literal[Answer.REFUSED]
    code: int
    message: str


PlanAnswer = Planned | PlanRefused
_ANSWERS: dict[Answer, type[Any]] = {Answer.PLANNED: Planned, Answer.REFUSED: PlanRefused}


# --- Framing: one JSON object per message, `kind` naming its type ------------------------------
K = TypeVar("K", bound=StrEnum)


def encode_line(message: SaidMessage | OrderMessage | DevMessage) -> str:
    """The message as one line of a pipe (JSON escapes every newline inside it)."""
    return json.dumps(message) + "\n"


def encode_packet(message: DevMessage) -> bytes:
    """The message as one SOCK_SEQPACKET packet."""
    return json.dumps(message).encode()


def decode_said(line: str) -> SaidMessage | None:
    """A `Said` message, or None for anything else the process printed."""
    return _decode(line, Said, _SAID)


def decode_order(line: str) -> OrderMessage | None:
    return _decode(line, Order, _ORDERS)


def decode_dev(data: str | bytes) -> DevMessage | None:
    """A dev tier's message (a packet or a line), None for anything else."""
    return _decode(data, Dev, _DEV)


def encode_options(options: PrepareOptions) -> str:
    return json.dumps(options)


def decode_options(text: str) -> PrepareOptions:
    """PREPARE_ENV's options; unset: none."""
    return _decoded(text or "{}", PrepareOptions, f"{PREPARE_ENV} is not a launcher's")


def encode_spec(spec: DevSpec) -> str:
    return json.dumps(spec)


def decode_spec(text: str) -> DevSpec:
    return _decoded(text, DevSpec, "not a dev base's spec")


def encode_request(request: PlanRequest) -> str:
    return json.dumps(request)


def decode_request(text: str) -> PlanRequest:
    return _decoded(text, PlanRequest, "not a plan request")


def encode_answer(answer: PlanAnswer) -> bytes:
    import pickle  # the planner and the supervisor only

    return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)


def decode_answer(data: bytes) -> PlanAnswer | None:
    """The planner's answer; None when it wrote nothing or something else."""
    import pickle

    try:
        answer = pickle.loads(data) if data else None
    except Exception:
        return None
    if not isinstance(answer, dict) or answer.get("kind") not in set(Answer):
        return None
    kind = Answer(answer["kind"])
    return _checked({**answer, "kind": kind}, _ANSWERS[kind])


_HINTS: dict[type, dict[str, Any]] = {}
_UnionType = type(int | None)


def _decode(text: str | bytes, kinds: type[K], types: dict[K, type[Any]]) -> Any:
    """The message `text` holds, if it is one of `kinds`, its kind the enum's member; None for
    anything else (a line the project printed, a message of another boundary, a field missing,
    unknown or of the wrong type)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("kind") not in set(kinds):
        return None
    kind = kinds(obj["kind"])
    return _checked({**obj, "kind": kind}, types[kind])


def _decoded(text: str, cls: type[Any], refusal: str) -> Any:
    """One JSON object of `cls`'s shape, or ValueError(`refusal: text`)."""
    found = _checked(json.loads(text), cls)
    if found is None:
        raise ValueError(f"{refusal}: {text!r}")
    return found


def _checked(obj: Any, cls: type[Any]) -> Any:
    """`obj` when it has `cls`'s keys (all its required ones, no others) of `cls`'s types (a
    `cls`, then), else None."""
    if not isinstance(obj, dict):
        return None
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    hints = _HINTS[cls]
    if not cls.__required_keys__ <= obj.keys() <= hints.keys():
        return None
    return obj if all(_fits(value, hints[key]) for key, value in obj.items()) else None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a decoded JSON value has the field's type (the shapes used here only)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, _UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is Any:
        return True
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _fits(k, key) and _fits(v, item) for k, v in value.items()
        )
    if typing.is_typeddict(hint):
        return _checked(value, hint) is not None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)
