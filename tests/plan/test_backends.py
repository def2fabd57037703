"""Backends, pure: profile -> the server's argv and env, and what `launch show` masks.

No processes: argvs are checked against the servers' own argument parsers (gunicorn's
argparse config and uvicorn's click command) instead of being run.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import uvicorn
from gunicorn.config import Config as GunicornConfig

from launcher import wire
from launcher.plan.backends.gunicorn import (
    PROJECT_WORKER,
    PROJECT_WORKER_ENV,
    UVICORN_CONFIG_ENV,
    UVICORN_WORKER,
)
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.model import MASK, Command, LaunchPlan, is_secret, mask_value

UVICORN_CLI = sys.modules["uvicorn.main"].main  # the click command (uvicorn.main is shadowed)


def plan_from(tmp_path: Path, *parts: str, cpus: int = 2, env: dict[str, str] | None = None,
              name: str = "p") -> LaunchPlan:
    """A plan from YAML given in pieces; each piece is dedented on its own."""
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(textwrap.dedent(part) for part in parts), encoding="utf-8")
    loaded = load_profile(str(path), cwd=tmp_path, env=env or {})
    return build_plan(loaded, python="python", cpus=cpus, env={})


DEMO = Path(__file__).resolve().parents[2] / "demo_site"


def shipped(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> LaunchPlan:
    """A shipped profile as `launch NAME` run in the demo site sees it."""
    loaded = load_profile(name, cwd=DEMO, env=env or {})
    return build_plan(loaded, python="python", cpus=2, env={}, cwd=DEMO)


def gunicorn_args(argv: tuple[str, ...]):
    """gunicorn's reading of a gunicorn command line: typed (`-m gunicorn`) or under the
    supervisor (its runner that leaves handed sockets' files alone, gunicorn's own parser)."""
    assert argv[:2] == ("python", "-m") and argv[2] in ("gunicorn", wire.GUNICORN_MAIN)
    return GunicornConfig().parser().parse_args(list(argv[3:]))


def uvicorn_params(argv: tuple[str, ...]) -> dict[str, object]:
    assert argv[:3] == ("python", "-m", "launcher.child.uvicorn_main")
    return UVICORN_CLI.make_context("uvicorn", list(argv[3:])).params


def after(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def flags(argv: tuple[str, ...], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


GUNICORN = """\
    app: demo_site.wsgi:application
    server: gunicorn
    bind: 127.0.0.1:8123
"""
UVICORN = """\
    app: demo_site.asgi:application
    server: uvicorn
    bind: 127.0.0.1:8124
"""


# ----- gunicorn -----------------------------------------------------------------------------


def test_gunicorn_prod_wsgi_argv(tmp_path: Path) -> None:
    plan = shipped("prod-wsgi", tmp_path, {"WEB_CONCURRENCY": "2"})
    argv = plan.server_command().argv
    assert argv[:4] == ("python", "-m", "gunicorn", "launcher.child.app:wsgi")
    assert plan.env["LAUNCHER_APP"] == "demo_site.wsgi:application"
    assert "--config" not in argv  # the URLconf warm-up lives in the app wrapper now
    args = gunicorn_args(argv)
    assert args.bind == ["127.0.0.1:8000"]
    assert (args.workers, args.worker_class, args.threads) == (2, "gthread", 4)
    assert (args.timeout, args.graceful_timeout, args.keepalive) == (30, 20, 5)
    assert (args.max_requests, args.max_requests_jitter) == (2000, 200)
    assert args.control_socket_disable is True
    assert (args.errorlog, args.accesslog) == ("-", "-")
    assert UVICORN_CONFIG_ENV not in plan.env


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent", "uvicorn", "asgi"])
@pytest.mark.parametrize("listen", [None, (3,), (3, 4)])
def test_no_control_socket_always(
    tmp_path: Path, worker_class: str, listen: tuple[int, ...] | None
) -> None:
    plan = plan_from(tmp_path, GUNICORN, f"worker_class: {worker_class}\nreload: true\n")
    argv = plan.server_command(listen).argv
    assert "--no-control-socket" in argv
    assert gunicorn_args(argv).control_socket_disable is True


def test_gunicorn_fd_form(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, GUNICORN, "reload: true\n")
    argv = plan.server_command((3, 4)).argv
    assert argv[:3] == ("python", "-m", wire.GUNICORN_MAIN)  # handed sockets' files stay
    assert flags(argv, "--bind") == ["fd://3", "fd://4"]
    assert "127.0.0.1:8123" not in " ".join(argv)
    assert "--reload" not in argv  # under the supervisor the launcher reloads, not gunicorn
    assert gunicorn_args(argv).bind == ["fd://3", "fd://4"]
    # the typed equivalent keeps the bind and gunicorn's own --reload
    typed = plan.server_command().argv
    assert typed[:3] == ("python", "-m", "gunicorn")
    assert flags(typed, "--bind") == ["127.0.0.1:8123"]
    assert "--reload" in typed


@pytest.mark.parametrize(
    ("bind", "expected"),
    [("127.0.0.1:8123", "127.0.0.1:8123"), ("[::1]:8123", "[::1]:8123"),
     (":8123", "127.0.0.1:8123"), ("unix:/run/app.sock", "unix:/run/app.sock")],
)
def test_gunicorn_bind_forms(tmp_path: Path, bind: str, expected: str) -> None:
    plan = plan_from(tmp_path, f"app: a.wsgi:application\nbind: '{bind}'\n")
    assert gunicorn_args(plan.server_command().argv).bind == [expected]


def test_gunicorn_uvicorn_worker_and_its_config_env(tmp_path: Path) -> None:
    plan = shipped("prod-asgi", tmp_path, {"WEB_CONCURRENCY": "2"})
    argv = plan.server_command((3,)).argv
    assert after(argv, "--worker-class") == UVICORN_WORKER == "launcher.child.workers.UvicornWorker"
    assert "--threads" not in argv
    assert "--asgi-lifespan" not in argv  # that flag is for gunicorn's own asgi worker
    assert json.loads(plan.env[UVICORN_CONFIG_ENV]) == {"lifespan": "off"}
    assert gunicorn_args(argv).worker_class == UVICORN_WORKER


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("", {"lifespan": "off"}),
        ("uvicorn:\n  lifespan: off\n", {"lifespan": "off"}),  # unquoted YAML false
        ("uvicorn:\n  lifespan: on\n", {"lifespan": "on"}),  # unquoted YAML true
        ("uvicorn:\n  lifespan: auto\n", {"lifespan": "auto"}),
        ("uvicorn:\n  http: httptools\n  loop: asyncio\n",
         {"lifespan": "off", "http": "httptools", "loop": "asyncio"}),
        ("uvicorn:\n  proxy_headers: false\n  server_header: false\n  limit_concurrency: 50\n",
         {"lifespan": "off", "proxy_headers": False, "server_header": False,
          "limit_concurrency": 50}),
        # taken from gunicorn's own --forwarded-allow-ips, so not passed twice
        ("uvicorn:\n  forwarded_allow_ips: '*'\n", {"lifespan": "off"}),
    ],
)
def test_uvicorn_worker_config_json(tmp_path: Path, section: str, expected: dict) -> None:
    plan = plan_from(tmp_path, GUNICORN, "worker_class: uvicorn\n", section)
    config = json.loads(plan.env[UVICORN_CONFIG_ENV])
    assert config == expected
    # every key is a real uvicorn.Config keyword
    assert set(config) <= set(inspect.signature(uvicorn.Config).parameters)


def test_uvicorn_worker_forwarded_ips_go_to_gunicorn(tmp_path: Path) -> None:
    section = "worker_class: uvicorn\nuvicorn:\n  forwarded_allow_ips: 10.0.0.1\n"
    plan = plan_from(tmp_path, GUNICORN, section)
    assert after(plan.server_command().argv, "--forwarded-allow-ips") == "10.0.0.1"


@pytest.mark.parametrize(
    ("section", "lifespan", "loop"),
    [("", "off", None), ("uvicorn:\n  lifespan: on\n  loop: asyncio\n", "on", "asyncio"),
     ("uvicorn:\n  loop: uvloop\n", "off", "uvloop")],
)
def test_gunicorn_asgi_worker_lifespan(
    tmp_path: Path, section: str, lifespan: str, loop: str | None
) -> None:
    plan = plan_from(tmp_path, GUNICORN.replace("wsgi", "asgi"), "worker_class: asgi\n", section)
    argv = plan.server_command().argv
    assert after(argv, "--asgi-lifespan") == lifespan
    assert flags(argv, "--asgi-loop") == ([loop] if loop else [])
    args = gunicorn_args(argv)
    assert (args.worker_class, args.asgi_lifespan) == ("asgi", lifespan)
    assert UVICORN_CONFIG_ENV not in plan.env


def test_gunicorn_optional_flags(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, GUNICORN, """\
        workers: 3
        threads: 2
        backlog: 64
        preload_app: true
        loglevel: trace
        accesslog: false
        forwarded_allow_ips: 10.1.1.1
    """)
    argv = plan.server_command().argv
    args = gunicorn_args(argv)
    assert (args.workers, args.threads, args.backlog, args.preload_app) == (3, 2, 64, True)
    assert args.loglevel == "debug"  # gunicorn has no trace level
    assert args.accesslog is None
    assert args.forwarded_allow_ips == "10.1.1.1"


def test_gunicorn_defaults_leave_flags_out(tmp_path: Path) -> None:
    argv = plan_from(tmp_path, GUNICORN).server_command().argv
    for flag in ("--threads", "--max-requests", "--backlog", "--preload", "--reload"):
        assert flag not in argv
    assert after(argv, "--worker-class") == "sync"
    assert after(argv, "--workers") == "1"


def test_wrap_prefixes_the_server(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, GUNICORN, "wrap: [nice, -n, '5']\n")
    nice = shutil.which("nice", path=os.defpath)  # the plan's env has no PATH: exec's default
    assert nice
    assert plan.server_command().argv[:5] == (nice, "-n", "5", "python", "-m")


@pytest.mark.parametrize(
    ("name", "runs"),
    [("gevent_wsgi", "gevent_wsgi"), ("gevent_pywsgi", "gevent_pywsgi"), ("gthread", "gthread"),
     # gunicorn's, with the app off the loop thread
     ("tornado", "launcher.child.workers.TornadoWorker")],
)
def test_gunicorn_builtin_workers_go_by_name(tmp_path: Path, name: str, runs: str) -> None:
    plan = plan_from(tmp_path, GUNICORN, f"worker_class: {name}\n")
    argv = plan.server_command().argv
    assert gunicorn_args(argv).worker_class == runs
    assert PROJECT_WORKER_ENV not in plan.env and UVICORN_CONFIG_ENV not in plan.env
    assert after(plan.checks[0].argv, "--worker-class") == runs


@pytest.mark.parametrize("spelling", ["mysite.workers.MyWorker", "mysite.workers:MyWorker"])
def test_gunicorn_worker_by_import_path(tmp_path: Path, spelling: str) -> None:
    """gunicorn runs the launcher's ProjectWorker, which loads the user's class from the env."""
    plan = plan_from(tmp_path, GUNICORN, f"worker_class: {spelling}\nuvicorn:\n  http: h11\n")
    argv = plan.server_command().argv
    assert PROJECT_WORKER == "launcher.child.workers.ProjectWorker"
    assert gunicorn_args(argv).worker_class == PROJECT_WORKER
    assert plan.env[PROJECT_WORKER_ENV] == "mysite.workers.MyWorker"
    # the profile's uvicorn settings, lifespan off first, go under a uvicorn-worker subclass's own
    assert json.loads(plan.env[UVICORN_CONFIG_ENV]) == {"lifespan": "off", "http": "h11"}
    # the import check loads the user's class itself
    assert after(plan.checks[0].argv, "--worker-class") == spelling  # as written
    assert plan.checks[0].env[PROJECT_WORKER_ENV] == "mysite.workers.MyWorker"


def test_uvicorn_server_has_no_worker_class_check(tmp_path: Path) -> None:
    assert "--worker-class" not in plan_from(tmp_path, UVICORN).checks[0].argv


def test_no_gunicorn_config_option(tmp_path: Path) -> None:
    """opentelemetry-instrument reads any `--config` in the line as its own ambiguous option;
    the URLconf warm-up happens in the app wrapper, so no config module is passed at all."""
    plan = plan_from(tmp_path, GUNICORN, "settings: demo_site.settings\n")
    argv = plan.server_command().argv
    assert not [word for word in argv if word.startswith("--config") or word == "-c"]
    assert gunicorn_args(argv).config is None or "launcher" not in gunicorn_args(argv).config


# ----- uvicorn standalone -------------------------------------------------------------------


def test_uvicorn_dev_argv(tmp_path: Path) -> None:
    plan = shipped("dev", tmp_path)
    root = Path(__file__).resolve().parents[2]
    argv = plan.server_command().argv
    assert argv[:4] == ("python", "-m", "launcher.child.uvicorn_main",
                        "launcher.child.app:asgi")
    params = uvicorn_params(argv)
    assert (params["host"], params["port"]) == ("127.0.0.1", 8000)
    assert params["lifespan"] == "off"
    assert params["reload"] is True
    assert set(params["reload_dirs"]) == {str(root / "demo_site"), str(root / "demo_site/configs")}
    assert params["workers"] == 1  # explicit, so $WEB_CONCURRENCY cannot change it
    assert params["timeout_graceful_shutdown"] == 2
    assert plan.workers == 1
    assert plan.env == {
        "DJANGO_SETTINGS_MODULE": "demo_site.settings",
        "DJANGO_DEBUG": "1",  # from demo_site/configs/dev.yaml, layered on the shipped dev
        "LAUNCHER_APP": "demo_site.asgi:application",
        "LAUNCHER_INTERFACE": "asgi",
        "LAUNCHER_STATIC": "dev",
        "LAUNCHER_STATIC_ROOT": str(root / "demo_site" / "staticfiles"),
        "LAUNCHER_WARM_URLS": "1",
        "LAUNCHER_SYNC_THREADS": "8",  # asgi.sync_threads: sync views on the pool
    }
    assert not plan.probe.enabled


@pytest.mark.parametrize("listen", [(3,), (3, 4)])
def test_uvicorn_fd_form(tmp_path: Path, listen: tuple[int, ...]) -> None:
    plan = plan_from(tmp_path, UVICORN, "reload: true\n")
    argv = plan.server_command(listen).argv
    assert flags(argv, "--fd") == ["3"]
    for flag in ("--host", "--port", "--uds", "--reload"):
        assert flag not in argv
    assert not any(word.startswith("--reload-dir") for word in argv)
    assert uvicorn_params(argv)["fd"] == 3


def test_uvicorn_unix_socket(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, UVICORN.replace("127.0.0.1:8124", "unix:/run/x.sock"))
    argv = plan.server_command().argv
    assert after(argv, "--uds") == "/run/x.sock"
    assert "--host" not in argv


def test_uvicorn_settings_become_flags(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, UVICORN.replace("127.0.0.1:8124", "'[::1]:8124'"), """\
        workers: 3
        max_requests: 100
        backlog: 128
        keepalive: 9
        loglevel: trace
        accesslog: false
        uvicorn:
          lifespan: on
          http: h11
          ws: none
          interface: asgi3
          proxy_headers: false
          server_header: false
          date_header: false
          forwarded_allow_ips: '*'
          root_path: /sub
          limit_concurrency: 10
          ws_max_size: 1024
          ws_ping_interval: 5
          h11_max_incomplete_event_size: 4096
    """)
    argv = plan.server_command().argv
    params = uvicorn_params(argv)
    expected = {
        "host": "::1", "port": 8124, "workers": 3, "limit_max_requests": 100, "backlog": 128,
        "timeout_keep_alive": 9, "log_level": "trace", "access_log": False, "lifespan": "on",
        "http": "h11", "ws": "none", "interface": "auto", "proxy_headers": False,
        "server_header": False, "date_header": False, "forwarded_allow_ips": "*",
        "root_path": "/sub", "limit_concurrency": 10, "ws_max_size": 1024,
        "ws_ping_interval": 5.0, "h11_max_incomplete_event_size": 4096,
    }
    assert {k: params[k] for k in expected} == expected
    assert argv.count("--forwarded-allow-ips") == 1


def test_uvicorn_defaults(tmp_path: Path) -> None:
    argv = plan_from(tmp_path, UVICORN).server_command().argv
    params = uvicorn_params(argv)
    assert params["lifespan"] == "off"  # Django has no lifespan: off unless asked
    assert params["forwarded_allow_ips"] == "127.0.0.1,::1"
    for flag in ("--reload", "--no-access-log", "--limit-max-requests", "--backlog"):
        assert flag not in argv
    assert params["workers"] == 1


# ----- the rest of the plan -----------------------------------------------------------------


def test_steps_and_checks(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, """\
        app: demo_site.wsgi:application
        settings: demo_site.settings
        check_deploy: true
        before_start:
          - migrate --noinput
          - [sh, -c, "echo 'a b'"]
    """)
    assert [s.argv for s in plan.steps] == [
        ("python", "-m", "launcher.child.manage", "migrate", "--noinput"),
        ("sh", "-c", "echo 'a b'"),
    ]
    assert all(s.env["DJANGO_SETTINGS_MODULE"] == "demo_site.settings" for s in plan.steps)
    assert plan.checks[0].argv[:5] == (
        "python", "-m", "launcher.child.check", "--interface", "wsgi"
    )
    assert plan.env["LAUNCHER_APP"] == "demo_site.wsgi:application"
    assert after(plan.checks[0].argv, "--worker-class") == "sync"
    # Django's checks as start and reload run them; the deploy ones for `launch check`
    assert [c.argv[3:] for c in plan.checks[1:]] == [
        ("check",), ("check", "--deploy", "--fail-level", "ERROR")
    ]


def test_no_settings_means_import_check_only(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, GUNICORN)
    assert len(plan.checks) == 1
    assert "DJANGO_SETTINGS_MODULE" not in plan.env


# ----- secrets ------------------------------------------------------------------------------

SECRET_PROFILE = """\
    app: demo_site.wsgi:application
    settings: demo_site.settings
    env:
      DJANGO_SECRET_KEY: supersecret-value
      DATABASE_URL: postgres://app:hunter2@db.internal:5432/app
      DB_PASSWORD: pw-value-1
      STRIPE_API_KEY: sk-value-2
      GITHUB_TOKEN: tok-value-3
      SENTRY_DSN: https://key@sentry.example/1
      DJANGO_DEBUG: "0"
"""
SECRETS = ("supersecret-value", "hunter2", "pw-value-1", "sk-value-2", "tok-value-3")


def test_shell_line_masks_secrets(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, SECRET_PROFILE)
    line = plan.server_command().shell_line()
    for secret in SECRETS:
        assert secret not in line
    assert 'DJANGO_SECRET_KEY="$DJANGO_SECRET_KEY"' in line
    assert 'DB_PASSWORD="$DB_PASSWORD"' in line
    # A URL with a password is referenced from the shell too, so the printed line still runs.
    assert 'DATABASE_URL="$DATABASE_URL"' in line
    assert "DJANGO_DEBUG=0" in line
    assert line.startswith(f"cd {plan.cwd} && ")
    # the rest is one shell command whose words are the argv
    words = shlex.split(line.split(" && ", 1)[1])
    assert tuple(words[-len(plan.server_command().argv):]) == plan.server_command().argv


def test_shell_line_unmasked_on_request(tmp_path: Path) -> None:
    line = plan_from(tmp_path, SECRET_PROFILE).server_command().shell_line(mask=False)
    for secret in SECRETS:
        assert secret in line


def test_masked_env(tmp_path: Path) -> None:
    plan = plan_from(tmp_path, SECRET_PROFILE)
    masked = plan.masked_env()
    assert masked["DJANGO_SECRET_KEY"] == MASK
    assert masked["DATABASE_URL"] == "postgres://app:***@db.internal:5432/app"
    assert masked["DB_PASSWORD"] == masked["STRIPE_API_KEY"] == masked["GITHUB_TOKEN"] == MASK
    assert masked["SENTRY_DSN"] == MASK
    assert masked["DJANGO_DEBUG"] == "0"
    assert masked["DJANGO_SETTINGS_MODULE"] == "demo_site.settings"
    for secret in SECRETS:
        assert secret not in json.dumps(masked)
    assert plan.env["DJANGO_SECRET_KEY"] == "supersecret-value"  # masking is for display only


def test_a_secret_key_from_the_environment_is_masked(tmp_path: Path) -> None:
    plan = plan_from(
        tmp_path, "extends: prod-wsgi\nchdir: " + str(DEMO) + "\n",
        "env:\n  DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY}\n",
        env={"DJANGO_SECRET_KEY": "from-env-secret"},
    )
    assert plan.env["DJANGO_SECRET_KEY"] == "from-env-secret"
    assert plan.masked_env()["DJANGO_SECRET_KEY"] == MASK
    assert "from-env-secret" not in plan.server_command().shell_line()


@pytest.mark.parametrize(
    ("name", "secret"),
    [("DJANGO_SECRET_KEY", True), ("AWS_SECRET_ACCESS_KEY", True), ("DB_PASSWORD", True),
     ("SMTP_PASSWD", True), ("API_KEY", True), ("APIKEY", True), ("SLACK_TOKEN", True),
     ("PRIVATE_KEY_PEM", True), ("SENTRY_DSN", True), ("db_password", True),
     ("DJANGO_DEBUG", False), ("DJANGO_SETTINGS_MODULE", False), ("DATABASE_URL", False),
     ("WEB_CONCURRENCY", False)],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret(name) is secret


@pytest.mark.parametrize(
    ("value", "expected"),
    [("postgres://u:pw@h/db", "postgres://u:***@h/db"),
     ("mysql://user:pa:ss@h:3306/db", "mysql://user:***@h:3306/db"),
     ("postgres://h/db", "postgres://h/db"),
     ("sqlite:////tmp/db.sqlite3", "sqlite:////tmp/db.sqlite3"),
     ("http://example.com:8080/x", "http://example.com:8080/x")],
)
def test_url_passwords_are_masked(value: str, expected: str) -> None:
    assert mask_value("DATABASE_URL", value) == expected


@pytest.mark.parametrize(
    "value", ["redis://:hunter2@cache:6379/0", "postgres://app:hun@ter2@db/app"]
)
def test_url_passwords_masked_in_every_form(value: str) -> None:
    assert "ter2" not in mask_value("REDIS_URL", value)


def test_command_shell_line_of_a_bare_command() -> None:
    cmd = Command(("python", "-m", "x", "a b"), Path("/srv/my site"), {"K": "v w"})
    assert cmd.shell_line() == "cd '/srv/my site' && K='v w' python -m x 'a b'"
    assert cmd.full_env({"K": "old", "Z": "1"}) == {"K": "v w", "Z": "1"}


def test_uvicorn_worker_count_is_always_explicit(tmp_path: Path) -> None:
    """uvicorn reads $WEB_CONCURRENCY when --workers is absent: workers: 1 must say so."""
    plan = plan_from(tmp_path, "app: demo_site.asgi:application\nserver: uvicorn\nworkers: 1\n")
    for argv in (plan.server_command().argv, plan.server_command((3,)).argv):
        index = argv.index("--workers")
        assert argv[index + 1] == "1"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("prod-asgi", "8"), ("prod-wsgi", None)],
)
def test_the_sync_pool_reaches_asgi_servers_only(
    tmp_path: Path, profile: str, expected: str | None
) -> None:
    assert shipped(profile, tmp_path).env.get("LAUNCHER_SYNC_THREADS") == expected


# ----- the smoke request's pages (health.smoke) --------------------------------------------


@pytest.mark.parametrize(
    ("profile", "smoke"),
    [
        ("", ("/",)),  # prod: the site's root by default
        ("health: {smoke: [/, /accounts/login/]}\n", ("/", "/accounts/login/")),
        ("health: {smoke: []}\n", ()),  # switched off
        ("health: {enabled: false}\n", ()),  # health off: no smoke either
        ("reload: true\n", ()),  # dev: a developer's 500 never stops dev
        ("reload: true\nhealth: {smoke: [/]}\n", ()),
    ],
)
def test_smoke_pages(tmp_path: Path, profile: str, smoke: tuple[str, ...]) -> None:
    assert plan_from(tmp_path, GUNICORN, profile).probe.smoke == smoke


@pytest.mark.parametrize(("name", "smoke"), [("prod-wsgi", ("/",)), ("prod-asgi", ("/",)),
                                             ("dev", ())])
def test_shipped_profiles_smoke(tmp_path: Path, name: str, smoke: tuple[str, ...]) -> None:
    assert shipped(name, tmp_path).probe.smoke == smoke
