"""plan/unit.py: the systemd unit's timeouts and fields, from plans built in the demo site.

No processes and no systemd: the text is parsed back into (section, key, value) and compared
with what the profile says. `tests/run/test_systemd.py` runs `systemd-analyze verify` on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.errors import ProfileError
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.unit import render_unit, start_timeout, stop_timeout, watchdog_timeout
from tests.conftest import DEMO, LAUNCH, plan_of, service, unit_fields

# ----- timeouts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("graceful", "seconds"),
    [(0, 15), (7, 22), (30, 45), (600, 615)],  # graceful_timeout + STOP_MARGIN (15)
)
def test_stop_timeout(tmp_path: Path, graceful: int, seconds: int) -> None:
    assert stop_timeout(plan_of(tmp_path, f"graceful_timeout: {graceful}\n")) == seconds


@pytest.mark.parametrize(
    ("startup", "seconds"),
    [(30, 90), (2.5, 63), (0.1, 61), (600, 660)],  # ceil(startup_timeout) + START_MARGIN (60)
)
def test_start_timeout(tmp_path: Path, startup: float, seconds: int) -> None:
    plan = plan_of(tmp_path, f"health: {{startup_timeout: {startup}}}\n")
    assert start_timeout(plan) == seconds


@pytest.mark.parametrize(
    ("graceful", "backoff", "startup", "seconds"),
    [
        # ceil(2 * (graceful_timeout + backoff_initial + startup_timeout)) + WATCHDOG_MARGIN (5)
        (30, 0.5, 30, 126),  # the defaults: 2 * 60.5 = 121
        (7, 1.2, 2.5, 27),  # 2 * 10.7 = 21.4 -> 22
        (0, 0.25, 1, 8),  # 2 * 1.25 = 2.5 -> 3
        (20, 0.5, 30.0, 106),  # prod-wsgi's graceful_timeout
    ],
)
def test_watchdog_timeout(
    tmp_path: Path, graceful: int, backoff: float, startup: float, seconds: int
) -> None:
    plan = plan_of(
        tmp_path,
        f"graceful_timeout: {graceful}\n"
        f"restart: {{backoff_initial: {backoff}}}\n"
        f"health: {{startup_timeout: {startup}}}\n",
    )
    assert watchdog_timeout(plan) == seconds


# ----- render_unit -----------------------------------------------------------------------------


def test_unit_sections_and_the_timeouts_it_derives(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        """\
        graceful_timeout: 7
        restart: {backoff_initial: 1.2}
        health: {startup_timeout: 2.5}
        """,
    )
    unit = render_unit(plan, launch=LAUNCH)
    assert list(dict.fromkeys(section for section, _, _ in unit_fields(unit))) == [
        "Unit",
        "Service",
        "Install",
    ]
    got = service(unit)
    assert got["Type"] == ["notify"]
    assert got["ExecStart"] == [" ".join(LAUNCH)]
    assert got["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert got["WorkingDirectory"] == [str(DEMO)]
    assert got["TimeoutStartSec"] == [str(start_timeout(plan))] == ["63"]
    assert got["TimeoutStopSec"] == [str(stop_timeout(plan))] == ["22"]
    assert got["WatchdogSec"] == [str(watchdog_timeout(plan))] == ["27"]
    # what finds the profile on the target is the caller's (plan/carry.py, tests/plan/test_carry.py)
    assert not any(e.startswith("LAUNCH_CONFIG_DIR=") for e in got["Environment"])
    assert ("Install", "WantedBy", "multi-user.target") in unit_fields(unit)


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        (None, {"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID"}, ["ReloadSignal"]),
        (219, {"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID"}, ["ReloadSignal"]),
        (252, {"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID"}, ["ReloadSignal"]),
        # systemd sends the SIGHUP itself and waits for RELOADING=1 ... READY=1: no ExecReload
        (253, {"Type": "notify-reload", "ReloadSignal": "SIGHUP"}, ["ExecReload"]),
        (257, {"Type": "notify-reload", "ReloadSignal": "SIGHUP"}, ["ExecReload"]),
    ],
)
def test_reload_directives_follow_the_systemd_version(
    tmp_path: Path, version: int | None, present: dict[str, str], absent: list[str]
) -> None:
    plan = plan_of(tmp_path, "description: x\n")
    unit = render_unit(plan, launch=LAUNCH, systemd_version=version)
    got = service(unit)
    for key, value in present.items():
        assert got.get(key) == [value], key
    for key in absent:
        assert key not in got, key
    assert got["NotifyAccess"] == ["main"]
    assert f"# For systemd {version or 'older than 253'} " in unit


@pytest.mark.parametrize(
    ("profile", "kwargs", "present", "absent"),
    [
        pytest.param(
            "bind: 127.0.0.1:8000\n",
            {},
            {"ProtectSystem": "full", "NoNewPrivileges": "yes", "KillMode": "mixed"},
            ["User", "Group", "CapabilityBoundingSet", "AmbientCapabilities"],
            id="no-user",
        ),
        pytest.param(
            "bind: 127.0.0.1:8000\n",
            {"user": "www", "group": "web"},
            {"User": "www", "Group": "web", "CapabilityBoundingSet": ""},
            [],
            id="user-high-port-drops-every-capability",
        ),
        pytest.param(
            "bind: 0.0.0.0:80\n",
            {"user": "www"},
            {
                "User": "www",
                "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
                "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
            },
            ["Group"],
            id="user-low-port-keeps-bind-service",
        ),
        pytest.param(
            "bind: 0.0.0.0:80\n",
            {"user": "root"},
            {"User": "root"},
            ["CapabilityBoundingSet", "AmbientCapabilities"],
            id="root-keeps-its-capabilities",
        ),
        pytest.param(
            "bind: unix:/run/site/web.sock\n",
            {"user": "www"},
            {"CapabilityBoundingSet": ""},
            [],
            id="unix-socket-needs-no-port-capability",
        ),
    ],
)
def test_unit_fields(
    tmp_path: Path,
    profile: str,
    kwargs: dict[str, str],
    present: dict[str, str],
    absent: list[str],
) -> None:
    got = service(render_unit(plan_of(tmp_path, profile), launch=LAUNCH, **kwargs))
    for key, value in present.items():
        assert got.get(key) == [value], key
    for key in absent:
        assert key not in got, key


@pytest.mark.parametrize(
    ("chdir", "read_write", "protect_home"),
    [
        (None, None, "read-only"),  # the test's own temp dir
        ("/usr/share", "/usr/share", "read-only"),  # ProtectSystem=full would make it read-only
        ("/root", None, None),  # ProtectHome= would hide the site itself
    ],
)
def test_hardening_leaves_the_site_directory_writable(
    tmp_path: Path, chdir: str | None, read_write: str | None, protect_home: str | None
) -> None:
    directory = Path(chdir) if chdir else tmp_path
    if not directory.is_dir():
        pytest.skip(f"{directory} does not exist here")
    if chdir is None and any(directory.is_relative_to(h) for h in ("/home", "/root", "/run/user")):
        protect_home = None  # a --basetemp under a home: ProtectHome= would hide it too
    plan = plan_of(tmp_path, f"chdir: {directory}\napp: site.wsgi:application\n")
    got = service(render_unit(plan, launch=LAUNCH))
    assert got["WorkingDirectory"] == [str(directory)]
    assert got.get("ReadWritePaths") == ([read_write] if read_write else None)
    assert got.get("ProtectHome") == ([protect_home] if protect_home else None)


def test_description_is_one_line_with_percent_escaped(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "description: |\n  50% of the site,\n  on two lines\n")
    unit = render_unit(plan, launch=LAUNCH)
    want = ("Unit", "Description", "launcher: site (50%% of the site, on two lines)")
    assert want in unit_fields(unit)


def test_description_defaults_to_the_backend(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "server: uvicorn\n")
    assert ("Unit", "Description", f"launcher: site ({plan.backend})") in unit_fields(
        render_unit(plan, launch=LAUNCH)
    )


@pytest.mark.parametrize(
    ("word", "rendered"),
    [
        ("/opt/site/.venv/bin/launch", "/opt/site/.venv/bin/launch"),
        ("/srv/my site.yaml", '"/srv/my site.yaml"'),  # a space: quoted
        ("$HOME", "$$HOME"),  # no variable expansion
        ("50%", "50%%"),  # no specifier expansion
        ('say "hi"', '"say \\"hi\\""'),
        ("", '""'),  # an empty word stays a word
    ],
)
def test_exec_start_words(tmp_path: Path, word: str, rendered: str) -> None:
    unit = render_unit(plan_of(tmp_path, ""), launch=("launch", word))
    assert service(unit)["ExecStart"] == [f"launch {rendered}"]


def test_settings_from_the_shell_are_written_into_the_unit(tmp_path: Path) -> None:
    """$DJANGO_SETTINGS_MODULE chose the settings here; the unit has no shell to read it from."""
    plan = plan_of(tmp_path, "", env={"DJANGO_SETTINGS_MODULE": "demo_site.settings"})
    assert "DJANGO_SETTINGS_MODULE=demo_site.settings" in service(
        render_unit(plan, launch=LAUNCH)
    )["Environment"]
    without = service(render_unit(plan_of(tmp_path, ""), launch=LAUNCH))
    assert not any(e.startswith("DJANGO_SETTINGS_MODULE=") for e in without["Environment"])


def test_unset_env_variables_are_listed_for_the_environment_file(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "env:\n  SECRET_KEY: ${SITE_SECRET}\n  DB: ${DB_URL}\n")
    assert plan.deferred_env
    unit = render_unit(plan, launch=LAUNCH)
    assert "# The profile needs, in /etc/launcher/launcher-site.env: DB_URL, SITE_SECRET" in (
        unit.splitlines()
    )
    assert service(unit)["EnvironmentFile"] == ["-/etc/launcher/%N.env"]


@pytest.mark.parametrize(
    ("user", "group", "launch", "key", "problem"),
    [
        ("www\nExecStartPre=/bin/sh", None, LAUNCH, "--user", "control character"),
        (None, "web\\", LAUNCH, "--group", "backslash"),
        (None, None, ("launch", "run\x00"), None, "the ExecStart word"),
        (None, None, ("launch", "prod\\"), None, "the ExecStart word"),
    ],
)
def test_values_that_would_break_out_of_their_line_are_refused(
    tmp_path: Path,
    user: str | None,
    group: str | None,
    launch: tuple[str, ...],
    key: str | None,
    problem: str,
) -> None:
    plan = plan_of(tmp_path, "")
    with pytest.raises(ProfileError) as caught:
        render_unit(plan, launch=launch, user=user, group=group)
    assert caught.value.key == key
    assert problem in caught.value.message
    assert "\n" not in caught.value.render()


@pytest.mark.parametrize("name", ["dev", "prod-wsgi", "prod-asgi"])
def test_shipped_profiles_render(name: str) -> None:
    loaded = load_profile(name, cwd=DEMO, env={}, defer_env=True)
    plan = build_plan(loaded, python="python", cpus=2, env={}, cwd=DEMO)
    got = service(render_unit(plan, launch=("launch", "run", name)))
    assert got["ExecStart"] == [f"launch run {name}"]
    for key, derive in (
        ("TimeoutStartSec", start_timeout),
        ("TimeoutStopSec", stop_timeout),
        ("WatchdogSec", watchdog_timeout),
    ):
        assert got[key] == [str(derive(plan))], key
    # The unit outwaits the servers' own drain, and a recovery (see watchdog_timeout).
    assert stop_timeout(plan) > plan.graceful_timeout
    assert watchdog_timeout(plan) > 2 * (plan.graceful_timeout + plan.probe.startup_timeout)


@pytest.mark.parametrize(
    ("dirs", "rendered"),
    [
        (("/etc/launcher",), "Environment=LAUNCH_CONFIG_DIR=/etc/launcher"),
        (("/etc/a", "/srv/b"), "Environment=LAUNCH_CONFIG_DIR=/etc/a:/srv/b"),
        (("/srv/my sites",), 'Environment="LAUNCH_CONFIG_DIR=/srv/my sites"'),
        (("/srv/100%",), "Environment=LAUNCH_CONFIG_DIR=/srv/100%%"),
        (('/srv/"q"',), 'Environment="LAUNCH_CONFIG_DIR=/srv/\\"q\\""'),
        (("/srv/$HOME",), "Environment=LAUNCH_CONFIG_DIR=/srv/$HOME"),  # Environment= expands none
    ],
)
def test_lookup_directories_and_working_directory(
    tmp_path: Path, dirs: tuple[str, ...], rendered: str
) -> None:
    unit = render_unit(
        plan_of(tmp_path, ""), launch=LAUNCH, workdir=Path("/srv/50% site"), config_dirs=dirs
    )
    assert rendered in unit.splitlines()
    assert "WorkingDirectory=/srv/50%% site" in unit.splitlines()


@pytest.mark.parametrize(
    ("workdir", "dirs", "expected"),
    [
        ("/srv/site", ("/etc/a\nExecStartPre=/bin/evil",),
         "the LAUNCH_CONFIG_DIR directory '/etc/a\\nExecStartPre=/bin/evil' holds the control"),
        ("/srv/site", ("/etc/a\\",), "ends with a backslash"),
        ("/srv/si\nte", (), "the working directory '/srv/si\\nte' holds the control character"),
    ],
)
def test_lookup_values_that_would_break_a_line_are_refused(
    tmp_path: Path, workdir: str, dirs: tuple[str, ...], expected: str
) -> None:
    plan = plan_of(tmp_path, "")
    with pytest.raises(ProfileError) as info:
        render_unit(plan, launch=LAUNCH, workdir=Path(workdir), config_dirs=dirs)
    assert expected in info.value.render()
    assert "\n" not in info.value.render()
