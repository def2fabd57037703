"""The admin listener's bind and the log format, as a profile and the command line give them:
tables of YAML in, plan fields or one `file:line key` error out. No processes."""

from __future__ import annotations

import pytest

from launcher.errors import ProfileError
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.model import Bind
from launcher.plan.origins import value_origins
from launcher.plan.overrides import apply, option_for
from tests.conftest import APP, load, profile_error, write


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", None),  # off by default
        ("admin:\n  bind: 9100\n", Bind(host="127.0.0.1", port=9100)),  # a bare port: loopback
        ("admin:\n  bind: '9100'\n", Bind(host="127.0.0.1", port=9100)),
        ("admin:\n  bind: ${ADMIN_PORT:-9101}\n", Bind(host="127.0.0.1", port=9101)),
        ("admin:\n  bind: 0.0.0.0:9100\n", Bind(host="0.0.0.0", port=9100)),
        ("admin:\n  bind: '[::]:9100'\n", Bind(host="::", port=9100)),
        ("admin:\n  bind: :9100\n", Bind(host="127.0.0.1", port=9100)),  # as `bind:` reads it
        ("admin:\n  bind: null\n", None),
    ],
)
def test_admin_bind_in_the_plan(tmp_path, body: str, expected: Bind | None) -> None:
    path = write(tmp_path, "p.yaml", APP + body)
    plan = build_plan(load(path), python="python", cpus=2, env={})
    assert plan.admin_bind == expected


@pytest.mark.parametrize(
    ("body", "line", "key", "fragment"),
    [
        ("admin:\n  bind: 70000\n", 3, "admin.bind", "port 70000 is outside 1-65535"),
        ("admin:\n  bind: 0\n", 3, "admin.bind", "port 0 is outside 1-65535"),
        ("admin:\n  bind: nonsense\n", 3, "admin.bind", "'nonsense' is not HOST:PORT"),
        ("admin:\n  bind: unix:/run/a.sock\n", 3, "admin.bind", "not unix:"),
        ("admin:\n  bind: 'on'\n", 3, "admin.bind", "'on' is not HOST:PORT"),
        ("admin:\n  bind: true\n", 3, "admin.bind", "valid string"),
        ("admin:\n  bind: [1, 2]\n", 3, "admin.bind", "valid string"),
        ("admin:\n  bnd: 9100\n", 3, "admin.bnd", "did you mean 'bind'?"),
        ("admin: 9100\n", 2, "admin", "dictionary"),
        ("log_format: xml\n", 2, "log_format", "'text' or 'json' (got 'xml')"),
        ("log_fromat: json\n", 2, "log_fromat", "did you mean 'log_format'?"),
    ],
)
def test_admin_and_log_format_errors_name_file_line_and_key(
    tmp_path, body: str, line: int, key: str, fragment: str
) -> None:
    path = write(tmp_path, "p.yaml", APP + body)
    err = profile_error(path)
    assert err.render().startswith(f"{path.resolve()}:{line}: key '{key}': "), err.render()
    assert fragment in err.render()
    assert "\n" not in err.render()


def test_log_format_default_and_value(tmp_path) -> None:
    plain = write(tmp_path, "a.yaml", APP)
    json_logs = write(tmp_path, "b.yaml", APP + "log_format: json\n")
    assert build_plan(load(plain), python="python", cpus=1, env={}).log_format == "text"
    assert build_plan(load(json_logs), python="python", cpus=1, env={}).log_format == "json"


def test_overrides_win_keep_the_section_and_name_their_option(tmp_path) -> None:
    path = write(tmp_path, "p.yaml", APP + "admin:\n  bind: 9100\nlog_format: text\n")
    loaded = load(path, overrides={"admin.bind": "0.0.0.0:9200", "log_format": "json"})
    assert loaded.profile.admin.bind == "0.0.0.0:9200"
    assert loaded.profile.log_format == "json"
    plan = build_plan(loaded, python="python", cpus=1, env={})
    flags = {o.key: o.flag for o in value_origins(loaded, plan)}
    assert flags["admin.bind"] == "--admin-bind"
    assert flags["log_format"] == "--log-format"
    assert flags["bind"] is None

    for overrides, option, fragment in [
        ({"admin.bind": "9100x"}, "--admin-bind", "'9100x' is not HOST:PORT"),
        ({"log_format": "yaml"}, "--log-format", "got 'yaml'"),
        ({"bind": "foo"}, "--bind", "'foo' is not HOST:PORT"),
    ]:
        with pytest.raises(ProfileError) as info:
            load_profile(str(path), cwd=tmp_path, env={}, overrides=overrides)
        assert (info.value.file, info.value.key) == (None, option)
        assert fragment in info.value.render()


@pytest.mark.parametrize(
    ("data", "overrides", "expected"),
    [
        ({}, {"admin.bind": "1"}, {"admin": {"bind": "1"}}),
        ({"admin": {"bind": "1"}}, {"admin.bind": "2"}, {"admin": {"bind": "2"}}),
        ({"admin": None}, {"admin.bind": "2"}, {"admin": {"bind": "2"}}),
        ({"bind": "a", "x": 1}, {"bind": "b"}, {"bind": "b", "x": 1}),
    ],
)
def test_apply_overrides(data: dict, overrides: dict, expected: dict) -> None:
    apply(data, overrides)
    assert data == expected


@pytest.mark.parametrize(
    ("key", "option"),
    [("bind", "--bind"), ("admin.bind", "--admin-bind"), ("log_format", "--log-format")],
)
def test_option_for(key: str, option: str) -> None:
    assert option_for(key) == option
