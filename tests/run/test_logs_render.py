"""`log_format: json` in the plan: the servers' flags and environment, and the line shapes
(launcher/run/logs.py, launcher/child/jsonlog.py) as tables of input and output. No processes."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest

from launcher import wire
from launcher.child.jsonlog import JsonFormatter
from launcher.plan.build import build_plan
from launcher.plan.secrets import Masker
from launcher.run.logs import render
from tests.conftest import APP, load, write

RFC3339_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_json_logs_configure_the_server(tmp_path: Path, server: str) -> None:
    plain = write(tmp_path, "a.yaml", APP + f"server: {server}\n")
    json_logs = write(tmp_path, "b.yaml", APP + f"server: {server}\nlog_format: json\n")
    text_plan = build_plan(load(plain), python="python", cpus=1, env={})
    plan = build_plan(load(json_logs), python="python", cpus=1, env={})
    argv = plan.server_command((3,)).argv
    assert plan.env[wire.LOG_FORMAT_ENV] == "json" and plan.env[wire.LOG_PROFILE_ENV] == "b"
    assert wire.LOG_FORMAT_ENV not in text_plan.env
    if server == "gunicorn":
        assert argv[argv.index("--logger-class") + 1] == wire.GUNICORN_JSON_LOGGER
        text_argv = text_plan.server_command((3,)).argv  # the probe socket left unnamed
        assert text_argv[text_argv.index("--logger-class") + 1] == wire.GUNICORN_LOGGER
        return
    config = Path(argv[argv.index("--log-config") + 1])
    assert plan.uvicorn_kwargs["log_config"] == str(config)  # the dev fork server's copy
    formatter = json.loads(config.read_text())["formatters"]["json"]["()"]
    assert formatter == "launcher.child.jsonlog.JsonFormatter"
    assert "--log-config" not in text_plan.server_command((3,)).argv
    assert "log_config" not in text_plan.uvicorn_kwargs


GUNICORN_STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] "


def test_text_line_is_the_time_and_the_masked_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamped as gunicorn stamps its own lines, so the two read together in a terminal."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    masker = Masker.of({"API_TOKEN": "s3cr3t"})
    line = render("text", "serving", "token s3cr3t", masker=masker, fields={"x": 1})
    assert re.fullmatch(GUNICORN_STAMP + r"\[launch\] token \*\*\*", line), line


def test_the_journal_stamps_lines_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")  # what systemd sets for a unit's stderr
    assert render("text", "serving", "up") == "[launch] up"


def test_other_prefixes_are_not_stamped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert render("text", "error", "bad", prefix="launch: error: ") == "launch: error: bad"


def test_json_line_has_the_event_its_fields_and_masks_them() -> None:
    masker = Masker.of({"API_TOKEN": "s3cr3t"})
    line = render(
        "json", "reload failed", "refused: s3cr3t", level="error", masker=masker,
        profile="p", generation=None,
        fields={"reason": "postgres://u:s3cr3t@db/x", "duration": 0.12345},
    )
    item = json.loads(line)
    assert list(item)[:5] == ["time", "level", "event", "message", "profile"]
    assert re.match(RFC3339_UTC, item["time"])
    assert (item["level"], item["event"]) == ("error", "reload failed")
    assert item["message"] == "refused: ***"
    assert item["reason"] == "postgres://u:***@db/x" and item["duration"] == 0.123
    assert "generation" not in item and isinstance(item["pid"], int)


def record(name: str, msg: str, args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR if exc else logging.INFO, __file__, 1, msg,
                             args, exc_info)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rec", "expected"),
    [
        (
            record("gunicorn.access", "%(h)s \"%(r)s\" %(s)s", {
                "h": "127.0.0.1", "r": "GET /a?b=1 HTTP/1.1", "s": "200", "m": "GET", "U": "/a",
                "q": "b=1", "H": "HTTP/1.1", "B": 12, "D": 1500, "f": "-", "a": "curl/8",
            }),
            {"event": "access", "message": '127.0.0.1 "GET /a?b=1 HTTP/1.1" 200', "status": 200,
             "method": "GET", "path": "/a", "query": "b=1", "bytes": 12, "duration": 0.0015,
             "user_agent": "curl/8", "remote": "127.0.0.1"},
        ),
        (
            record("uvicorn.access", '%s - "%s %s HTTP/%s" %d',
                   ("127.0.0.1:5", "POST", "/x?y=2", "1.1", 201)),
            {"event": "access", "status": 201, "method": "POST", "path": "/x", "query": "y=2",
             "protocol": "HTTP/1.1", "message": '127.0.0.1:5 - "POST /x?y=2 HTTP/1.1" 201'},
        ),
        (
            record("gunicorn.error", "Booting worker with pid: %s", (7,)),
            {"event": "server log", "level": "info", "message": "Booting worker with pid: 7"},
        ),
    ],
)
def test_server_records_as_json(rec: logging.LogRecord, expected: dict[str, object]) -> None:
    item = json.loads(JsonFormatter().format(rec))
    assert {key: item.get(key) for key in expected} == expected
    assert re.match(RFC3339_UTC, item["time"]) and item["logger"] == rec.name


def test_a_traceback_stays_inside_its_object() -> None:
    line = JsonFormatter().format(record("django.request", "Internal Server Error", (), exc=True))
    assert "\n" not in line
    item = json.loads(line)
    assert item["level"] == "error" and item["traceback"].startswith("Traceback")
    assert item["traceback"].endswith("ValueError: boom\nsecond line")
