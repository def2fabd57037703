"""The command line explains itself: `--help`, `--version`, `launch list`, and usage errors as one
line with exit 2. What the CLI says is read from it run in-process (`ran`, `refused`), in the
directory and environment the real command would have; `--version`, which names the interpreter
of the process, runs the real `python -m launcher`. The pure parts are tables."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from launcher.cli import COMMANDS, main, versions
from launcher.cli.check import advice
from launcher.plan.lookup import SHIPPED_CONFIGS
from tests.conftest import ROOT, Env, ran, refused
from tests.lookup_sites import layout

DEMO = ROOT / "demo_site"
IMAGE = ("--image", "registry.example.com/demo-site:1.4")


@pytest.fixture
def in_demo(in_demo: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """conftest's, with help as wide as through a pipe."""
    in_demo.setenv("COLUMNS", "80")
    return in_demo


def one_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one error line of an in-process run that must exit 2, and nothing on stdout."""
    return refused(capsys, *args, stdout="")


def test_help_shows_the_usage_and_every_command(
    in_demo: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ran(capsys, "--help")
    assert text.startswith("usage: launch NAME [options]\n       launch COMMAND [NAME] [options]")
    assert "Run a Django site under gunicorn or uvicorn" in text
    assert "render errors, set the exit code" not in text  # not the module's docstring
    for command in COMMANDS:
        if command != "run":
            assert f"\n  launch {command}" in text, command
    assert "\n  launch NAME " in text
    assert "$LAUNCH_CONFIG_DIR" in text and "--log-format {text,json}" in text
    # nothing but the options and the table: argparse's own list of sub-commands is not repeated
    assert "{show,check" not in text and "positional arguments" not in text


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (("help",), "usage: launch NAME [options]"),
        (("help", "k8s"), "usage: launch k8s "),
        (("help", "nonsense"), "usage: launch NAME [options]"),
        (("dev", "--help"), "usage: launch [run] NAME "),
        (("show", "--help"), "usage: launch show "),
    ],
)
def test_help_in_every_spelling(
    in_demo: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
    start: str,
) -> None:
    text = ran(capsys, *args)
    assert text.startswith(start), text


def test_no_arguments_prints_the_help_and_exits_2(
    in_demo: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("usage: launch NAME [options]"), out + err
    assert err == ""


def test_version_names_launcher_python_and_the_servers(env: Env) -> None:
    """The real process: the Python it names is the interpreter `python -m launcher` ran on."""
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "--version"],
        cwd=DEMO, env=env.vars(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"launcher {metadata.version('launcher')}",
        f"Python {'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})",
        f"Django {metadata.version('Django')}",
        f"gunicorn {metadata.version('gunicorn')}",
        f"uvicorn {metadata.version('uvicorn')}",
    ]


def test_version_says_not_installed() -> None:
    text = versions(("launcher", "no-such-server-distribution"))
    assert text.splitlines()[-1] == "no-such-server-distribution not installed"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # --log-format is a choice wherever it is taken, a bare `launch NAME` included
        (("dev", "--log-format", "xml"),
         "argument --log-format: invalid choice: 'xml' (choose from 'text', 'json')"),
        (("run", "dev", "--log-format", "XML"), "invalid choice: 'XML'"),
        (("show", "dev", "--log-format", "xml"), "invalid choice: 'xml'"),
        (("check", "dev", "--log-format", "yaml"), "invalid choice: 'yaml'"),
        (("systemd-unit", "prod-wsgi", "--log-format", "xml"), "invalid choice: 'xml'"),
        (("k8s", "prod-wsgi", *IMAGE, "--log-format", "xml"), "invalid choice: 'xml'"),
        # the parser requires --image, before any profile is read
        (("k8s", "prod-wsgi"), "the following arguments are required: --image "
                               "(`launch k8s --help` lists what it takes)"),
        (("k8s", "no-such-profile"), "the following arguments are required: --image"),
        (("--frob",), "unrecognized arguments: --frob (`launch --help` lists what it takes)"),
        (("status", "--timeout", "soon"), "argument --timeout: invalid float value: 'soon'"),
    ],
)
def test_usage_errors_are_one_line(
    in_demo: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
    expected: str,
) -> None:
    assert expected in one_error(capsys, *args)


@pytest.mark.parametrize(
    "fit",
    [
        {"views": 12, "middleware": 7},
        {"views": 3, "async_views": ["a.b", "c.d"]},
        {"async_middleware": ["m.M"], "websocket": True},
    ],
)
def test_the_check_note_points_at_no_file_of_the_repository(fit: dict[str, object]) -> None:
    note = advice(fit)
    assert "fits this project" in note
    assert ".md" not in note and "docs/" not in note


def test_list_shows_where_each_profile_comes_from_and_the_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = tmp_path / "mysite"
    (project / "configs").mkdir(parents=True)
    (project / "manage.py").write_text("")
    (project / "configs" / "prod-wsgi.yaml").write_text("extends: prod-wsgi\n")
    (project / "configs" / "mine.yaml").write_text("extends: dev\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "mine.yaml").write_text("extends: dev\n")
    (site / "shared.yml").write_text("extends: dev\n")
    monkeypatch.chdir(project / "configs")
    monkeypatch.setenv("LAUNCH_CONFIG_DIR", f"{site}:{tmp_path}/gone")
    assert ran(capsys, "list").splitlines() == [
        "# `launch NAME` looks here, first match wins:",
        f"  1. project configs     {project / 'configs'}",
        f"  2. $LAUNCH_CONFIG_DIR  {site}",
        f"  3. $LAUNCH_CONFIG_DIR  {tmp_path / 'gone'}  (none)",
        f"  4. shipped             {SHIPPED_CONFIGS}",
        "",
        "NAME       FROM                PATH",
        f"mine       project configs     {project / 'configs' / 'mine.yaml'}",
        f"                                 overrides {site / 'mine.yaml'}",
        f"prod-wsgi  project configs     {project / 'configs' / 'prod-wsgi.yaml'}",
        f"                                 overrides {SHIPPED_CONFIGS / 'prod-wsgi.yaml'}",
        f"shared     $LAUNCH_CONFIG_DIR  {site / 'shared.yml'}",
        f"dev        shipped             {SHIPPED_CONFIGS / 'dev.yaml'}",
        f"prod-asgi  shipped             {SHIPPED_CONFIGS / 'prod-asgi.yaml'}",
    ]


def test_show_origins_says_which_file_was_chosen_and_from_where(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    where = layout(tmp_path)
    own = where.project / "configs" / "prod-wsgi.yaml"
    own.write_text("extends: prod-wsgi\nworkers: 3\n")
    (where.site1 / "prod-wsgi.yaml").write_text("extends: prod-wsgi\ntimeout: 40\n")
    monkeypatch.chdir(where.project)
    monkeypatch.setenv("LAUNCH_CONFIG_DIR", str(where.site1))
    monkeypatch.setenv("WEB_CONCURRENCY", "2")  # as Env.vars() gives a subprocess
    lines = ran(capsys, "show", "prod-wsgi", "--origins").splitlines()
    assert lines[:6] == [
        f"# profile prod-wsgi from {own}: each value and where it came from",
        "# chosen from project configs, directory 1 of the lookup order (first match wins):",
        f"#   1. project configs     {where.project / 'configs'}",
        f"#   2. $LAUNCH_CONFIG_DIR  {where.site1}",
        f"#   3. shipped             {SHIPPED_CONFIGS}",
        f"# extends: {own} -> {where.site1 / 'prod-wsgi.yaml'} -> "
        f"{SHIPPED_CONFIGS / 'prod-wsgi.yaml'}",
    ]
    rows = {line.split()[0]: line.split()[-1] for line in lines[6:]}
    assert rows["workers"] == f"{own}:2"
    assert rows["timeout"] == f"{where.site1 / 'prod-wsgi.yaml'}:2"

    data = json.loads(ran(capsys, "show", "prod-wsgi", "--origins", "--json"))
    assert data["source"] == str(own)
    assert data["lookup"] == {
        "from": "project configs",
        "order": [
            {"origin": "project configs", "directory": str(where.project / "configs")},
            {"origin": "$LAUNCH_CONFIG_DIR", "directory": str(where.site1)},
            {"origin": "shipped", "directory": str(SHIPPED_CONFIGS)},
        ],
        "extends": [str(where.site1 / "prod-wsgi.yaml"), str(SHIPPED_CONFIGS / "prod-wsgi.yaml")],
    }
