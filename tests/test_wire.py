"""The protocol between the supervisor and its child processes (launcher/wire.py): every message
type survives its framing, each boundary's decoder takes only its own messages, and what is not
a message (a line the project printed, a field of the wrong type) decodes to None. Tables and
hypothesis; no process."""

from __future__ import annotations

import pickle
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher import wire
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.model import LaunchPlan
from launcher.run.preparing import prepared_argv
from launcher.wire import Dev, Order, Said

HELD: wire.Held = {
    "files": ["/srv/site/mysite/settings.py"],
    "missing": ["/srv/site/mysite/local.py"],
    "ahead": {"modules": 120, "failed": 2, "seconds": 0.41, "saved": 118},
    "saved": {"path": "/run/launcher/site-1/dev.devimports", "modules": 118},
}
FIT: wire.FitFound = {
    "views": 3, "async_views": ["polls.views.stream"], "middleware": 7,
    "async_middleware": [], "websocket": False,
}

# One row per message type of each boundary (a type with optional keys: with and without).
SAID: list[wire.SaidMessage] = [
    wire.SettingsImported(kind=Said.SETTINGS),
    wire.Warned(kind=Said.WARN, text="ALLOWED_HOSTS ['x'] rejects localhost"),
    wire.AppBuilt(kind=Said.APP, serves="django.core.handlers.wsgi.WSGIHandler", interface="wsgi"),
    wire.Refused(kind=Said.ERROR, key="settings", message="cannot import 'mysite.settings': x"),
    wire.Refused(kind=Said.ERROR, key=wire.CHECK_KEY, message="SystemCheckError:\n  (a) ..."),
    wire.Fit(kind=Said.FIT, found=FIT),
    wire.StepEnded(kind=Said.STEP, index=0, exit=0),
    wire.StepEnded(kind=Said.STEP, index=1, exit=0, seconds=0.12, skipped="no migrations to apply"),
    wire.StepEnded(kind=Said.STEP, index=2, exit=1, seconds=0.5, error="SystemCheckError: ..."),
    wire.Checked(kind=Said.CHECKED, report="System check identified no issues (0 silenced).\n"),
    wire.Serving(kind=Said.SERVING, pid=4242),
]
ORDERS: list[wire.OrderMessage] = [
    wire.RunStep(kind=Order.RUN, index=0, words=["migrate", "--noinput"]),
    wire.BuildApp(kind=Order.APP),
    wire.RunCheck(kind=Order.CHECK, words=["check", "--deploy"]),
    wire.Serve(kind=Order.SERVE),
]
DEV: list[wire.DevMessage] = [
    wire.Spawn(kind=Dev.SPAWN),
    wire.Spawned(kind=Dev.SPAWNED, pid=4243, held=HELD),
    wire.Fork(kind=Dev.FORK, generation=7),
    wire.Warm(kind=Dev.WARM, held=HELD),
    wire.Warm(kind=Dev.WARM, held={"files": [], "missing": []}),
    wire.Broken(kind=Dev.BROKEN, message="SyntaxError: invalid syntax (settings.py, line 3)"),
    wire.Forked(kind=Dev.FORKED, pid=4244),
    wire.Ready(kind=Dev.READY, pid=4244),
    wire.Failed(kind=Dev.FAILED, pid=4244, message="ImportError: cannot import name 'x'"),
    wire.Exited(kind=Dev.EXIT, pid=4244, code=-15),
    wire.Learned(kind=Dev.LEARNED, modules=["rest_framework", "rest_framework.views"]),
]
DECODERS: list[tuple[Any, type[StrEnum], list[Any]]] = [
    (wire.decode_said, Said, SAID), (wire.decode_order, Order, ORDERS),
    (wire.decode_dev, Dev, DEV),
]
ROWS = [(decode, m) for decode, _, messages in DECODERS for m in messages]
IDS = [f"{m['kind']}-{i}" for i, (_, m) in enumerate(ROWS)]


def test_every_kind_has_a_row() -> None:
    """The tables cover every message kind of every boundary."""
    for _, enum, messages in DECODERS:
        assert {m["kind"] for m in messages} == set(enum), enum


@pytest.mark.parametrize(("decode", "message"), ROWS, ids=IDS)
def test_a_message_survives_its_framings(decode: Any, message: dict[str, Any]) -> None:
    line = wire.encode_line(message)
    assert line.endswith("\n") and line.count("\n") == 1  # one line, whatever its text holds
    decoded = decode(line)
    assert decoded == message
    assert type(decoded["kind"]) is type(message["kind"])  # the enum's member, for `is`
    if decode is wire.decode_dev:  # the base's boundary: SOCK_SEQPACKET packets
        assert decode(wire.encode_packet(message)) == message


@pytest.mark.parametrize(("decode", "message"), ROWS, ids=IDS)
def test_a_message_of_another_boundary_is_not_taken(decode: Any, message: Any) -> None:
    line = wire.encode_line(message)
    others = [d for d, _, _ in DECODERS if d is not decode]
    assert all(other(line) is None for other in others)


@pytest.mark.parametrize("line", [
    "",
    "\n",
    "Operations to perform:\n",  # what a step printed on the status descriptor
    "[1, 2]\n",  # JSON, not an object
    '{"settings": "ok"}\n',  # the words before kinds were named
    '{"kind": "nonsense"}\n',
    '{"kind": "serving"}\n',  # a field missing
    '{"kind": "serving", "pid": "12"}\n',  # a field of the wrong type
    '{"kind": "serving", "pid": true}\n',  # a bool is not a pid
    '{"kind": "step", "index": 0, "exit": 0, "skipped": 3}\n',
    '{"kind": "app", "serves": "x"}\n',
    '{"kind": "fit", "found": []}\n',
    '{"kind": "app", "serves": "x", "interface": "wsgi", "extra": 1}\n',  # a key unknown
    '{"kind": "warm", "held": {"files": ["a"]}}\n',  # a nested key missing
    '{"kind": "warm", "held": {"files": [1], "missing": []}}\n',  # a nested value wrong
    '{"kind": "learned", "modules": "django"}\n',
])
def test_what_is_not_a_message_decodes_to_none(line: str) -> None:
    assert wire.decode_said(line) is None
    assert wire.decode_order(line) is None
    assert wire.decode_dev(line) is None


def test_optional_keys_may_be_left_out() -> None:
    step = wire.StepEnded(kind=Said.STEP, index=3, exit=0)
    assert wire.decode_said('{"kind": "step", "index": 3, "exit": 0}') == step
    assert wire.decode_said('{"kind": "step", "index": 3, "exit": 0, "seconds": 1}') == \
        {**step, "seconds": 1}


texts = st.text()  # any unicode, newlines and quotes included
pids = st.integers(min_value=1, max_value=2**22)
words = st.lists(st.text(), max_size=5)


def kind(value: StrEnum, **keys: Any) -> Any:
    """Messages of kind `value` with the keys' strategies."""
    return st.fixed_dictionaries({"kind": st.just(value), **keys})


any_message = st.one_of(
    kind(Said.WARN, text=texts),
    kind(Said.APP, serves=texts, interface=st.sampled_from(["wsgi", "asgi"])),
    kind(Said.ERROR, key=texts, message=texts),
    st.fixed_dictionaries(
        {"kind": st.just(Said.STEP), "index": st.integers(0, 99), "exit": st.integers(-255, 255)},
        optional={"seconds": st.floats(0, 1e6), "skipped": texts, "error": texts},
    ),
    kind(Said.CHECKED, report=texts),
    kind(Said.SERVING, pid=pids),
    kind(Order.RUN, index=st.integers(0, 99), words=words),
    kind(Order.CHECK, words=words),
    kind(Dev.BROKEN, message=texts),
    kind(Dev.FAILED, pid=pids, message=texts),
    kind(Dev.EXIT, pid=pids, code=st.integers(-64, 255)),
    kind(Dev.FORK, generation=st.integers(0, 10**6)),
    kind(Dev.LEARNED, modules=words),
    kind(Dev.WARM, held=st.fixed_dictionaries(
        {"files": st.lists(texts, max_size=3), "missing": st.lists(texts, max_size=3)})),
)


@given(any_message)
def test_any_text_survives_one_line(message: Any) -> None:
    """Whatever a message's text holds (a traceback's newlines, quotes, any unicode), it is
    one line, and only its own boundary's decoder takes it back, equal."""
    line = wire.encode_line(message)
    assert line.count("\n") == 1
    decoded = [decode(line) for decode, _, _ in DECODERS]
    assert [d for d in decoded if d is not None] == [message]


@given(st.text())
def test_no_printed_line_breaks_a_decoder(line: str) -> None:
    for decode, _, _ in DECODERS:
        assert decode(line) is None or isinstance(decode(line), dict)


@pytest.mark.parametrize("options", [
    wire.PrepareOptions(),
    wire.PrepareOptions(check=["--interface", "wsgi", "--host", "127.0.0.1"],
                        record="/run/x/p.collectstatic", quiet=True),
])
def test_prepare_options_survive_the_environment(options: wire.PrepareOptions) -> None:
    assert wire.decode_options(wire.encode_options(options)) == options
    assert wire.decode_options("") == {}  # none set


@pytest.mark.parametrize("request_", [
    wire.PlanRequest(name="prod-wsgi", overrides={}, wait=False),
    wire.PlanRequest(name="configs/site.yaml", overrides={"bind": "127.0.0.1:8001"}, wait=True),
])
def test_a_plan_request_survives_argv(request_: wire.PlanRequest) -> None:
    assert wire.decode_request(wire.encode_request(request_)) == request_


def test_a_dev_spec_survives_argv() -> None:
    spec = wire.DevSpec(app="launcher.child.app:asgi", kwargs={"lifespan": "off", "ws": None},
                        listen_fd=3, control_fd=4, roots=["/srv/site"], quiet=True,
                        saved="/run/launcher/site-1/dev.devimports")
    assert wire.decode_spec(wire.encode_spec(spec)) == spec


@pytest.mark.parametrize(("decode", "text"), [
    (wire.decode_options, '{"check": "--interface wsgi"}'),
    (wire.decode_request, '{"name": "dev"}'),
    (wire.decode_spec, '{"app": "x"}'),
])
def test_a_malformed_argument_is_refused(decode: Any, text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)


def plan_from(tmp_path: Path, text: str) -> LaunchPlan:
    """A real plan from a profile's text, as the planner makes it (no process)."""
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(text))
    loaded = load_profile(str(path), cwd=tmp_path, env={})
    return build_plan(loaded, python="python", cpus=2, env={})


def test_the_planner_answer_survives_stdout(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, "app: mysite.wsgi:application\nworkers: 2\n")
    planned = wire.Planned(kind=wire.Answer.PLANNED, plan=plan)
    assert wire.decode_answer(wire.encode_answer(planned)) == planned
    refused = wire.PlanRefused(kind=wire.Answer.REFUSED, code=2, message="site.yaml:2: ...")
    assert wire.decode_answer(wire.encode_answer(refused)) == refused


@pytest.mark.parametrize("data", [
    b"", b"not a pickle", b"\x80\x05K\x01.",  # the last: the number 1
    pickle.dumps({"kind": "planned"}),  # no plan
    pickle.dumps({"kind": "refused", "code": "2", "message": "x"}),  # a code of the wrong type
])
def test_anything_else_on_the_planner_stdout_is_no_answer(data: bytes) -> None:
    assert wire.decode_answer(data) is None


@pytest.mark.parametrize(("profile", "factory"), [
    ("server: gunicorn\npreload_app: true\n", (f"{wire.PREPARED_APP}()",)),
    ("server: uvicorn\nworkers: 1\n", (wire.PREPARED_APP, "--factory")),
])
def test_a_preparing_server_loads_the_factory(
    tmp_path: Path, profile: str, factory: tuple[str, ...]
) -> None:
    """The same command with the app factory in the app's place, nothing else changed."""
    plan = plan_from(tmp_path, "app: mysite.wsgi:application\n" + profile)
    argv = plan.server_command((3,)).argv
    at = argv.index(plan.server_app)
    assert prepared_argv(plan, argv) == (*argv[:at], *factory, *argv[at + 1:])
