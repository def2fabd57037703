"""The loader, pure: YAML profile files in, validated profiles and launch plans out.

No processes and no sockets: every test writes YAML under tmp_path and calls
`load_profile(...)` / `build_plan(...)` with an explicit environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.errors import ProfileError
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS, find_profile
from launcher.plan.model import LaunchPlan
from tests.conftest import APP, load, profile_error, write

ROOT = Path(__file__).resolve().parents[2]
def plan_of(path: Path, env: dict[str, str] | None = None, cpus: int = 2) -> LaunchPlan:
    return build_plan(load(path, env), python="python", cpus=cpus, env={})


# ----- extends: mappings merge, lists and scalars replace -----------------------------------


def test_extends_merges_mappings_key_by_key(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", """\
        app: demo_site.wsgi:application
        env:
          A: "1"
          B: "2"
        health:
          path: /ping
          interval: 7
        uvicorn:
          http: h11
    """)
    child = write(tmp_path, "child.yaml", """\
        extends: base
        env:
          B: "20"
          C: "30"
        health:
          interval: 9
        uvicorn:
          loop: asyncio
    """)
    p = load(child).profile
    assert p.env == {"A": "1", "B": "20", "C": "30"}
    assert (p.health.path, p.health.interval) == ("/ping", 9.0)
    assert (p.uvicorn.http, p.uvicorn.loop) == ("h11", "asyncio")


def test_extends_replaces_lists_whole(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", """\
        app: demo_site.wsgi:application
        before_start:
          - migrate --noinput
          - collectstatic --noinput
        pythonpath: [a, b]
        wrap: [nice, -n, "5"]
    """)
    child = write(tmp_path, "child.yaml", """\
        extends: base
        before_start: [check]
        pythonpath: [c]
    """)
    p = load(child).profile
    assert p.before_start == ("check",)
    assert p.pythonpath == ("c",)
    assert p.wrap == ("nice", "-n", "5")  # not mentioned in the child: inherited as is


def test_extends_scalars_override_and_inherit(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", APP + "workers: 4\ntimeout: 60\nserver: gunicorn\n")
    child = write(tmp_path, "child.yaml", "extends: base\nworkers: 2\n")
    loaded = load(child)
    assert (loaded.profile.workers, loaded.profile.timeout) == (2, 60)
    assert loaded.name == "child"
    assert loaded.path == child.resolve()


def test_extends_chains_through_several_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", APP + "env: {A: a}\ntimeout: 10\n")
    write(tmp_path, "b.yaml", "extends: a\nenv: {B: b}\ntimeout: 20\nkeepalive: 7\n")
    c = write(tmp_path, "c.yaml", "extends: b\nenv: {C: c}\ntimeout: 30\n")
    p = load(c).profile
    assert p.env == {"A": "a", "B": "b", "C": "c"}
    assert (p.timeout, p.keepalive) == (30, 7)


def test_extends_by_relative_path_and_chdir_from_the_parent_file(tmp_path: Path) -> None:
    """A chdir written in the parent resolves against the parent's directory."""
    (tmp_path / "base" / "site").mkdir(parents=True)
    write(tmp_path / "base", "parent.yaml", APP + "chdir: site\n")
    child = write(tmp_path / "elsewhere", "child.yaml", "extends: ../base/parent.yaml\n")
    plan = plan_of(child)
    assert plan.cwd == (tmp_path / "base" / "site").resolve()


def test_child_chdir_resolves_against_the_child_file(tmp_path: Path) -> None:
    (tmp_path / "elsewhere" / "mine").mkdir(parents=True)
    write(tmp_path / "base", "parent.yaml", APP + "chdir: site\n")
    text = "extends: ../base/parent.yaml\nchdir: mine\n"
    child = write(tmp_path / "elsewhere", "child.yaml", text)
    assert plan_of(child).cwd == (tmp_path / "elsewhere" / "mine").resolve()


def test_shipped_prod_asgi_extends_prod_wsgi(tmp_path: Path) -> None:
    wsgi = load_profile("prod-wsgi", cwd=tmp_path, env={}).profile
    loaded = load_profile("prod-asgi", cwd=tmp_path, env={})
    asgi = loaded.profile
    assert loaded.path == SHIPPED_CONFIGS / "prod-asgi.yaml"
    assert asgi.app is None and asgi.chdir == "."  # the project is found where launch runs
    assert (asgi.worker_class, asgi.threads) == ("uvicorn", 1)
    # inherited from prod-wsgi
    assert asgi.before_start == wsgi.before_start
    assert (asgi.timeout, asgi.max_requests, asgi.check_deploy) == (30, 2000, True)
    assert asgi.env == wsgi.env
    assert asgi.uvicorn.lifespan == "off"
    # run inside the demo site (a subdirectory of it, even): that project, its ASGI app
    plan = build_plan(loaded, python="python", cpus=2, env={}, cwd=ROOT / "demo_site" / "polls")
    assert plan.cwd == ROOT / "demo_site"
    assert (plan.app, plan.interface) == ("demo_site.asgi:application", "asgi")
    assert plan.env["DJANGO_SETTINGS_MODULE"] == "demo_site.settings"


# ----- ${VAR}, ${VAR:-default}, $$ ----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "env", "expected"),
    [
        ("${X}", {"X": "set"}, "set"),
        ("${X:-fallback}", {}, "fallback"),
        ("${X:-fallback}", {"X": "set"}, "set"),
        ("${X:-fallback}", {"X": ""}, "fallback"),  # like the shell: empty takes the default
        ("${X}", {"X": ""}, ""),  # set but empty, no default: empty
        ("${X:-}", {}, ""),
        ("a$$b", {}, "a$b"),
        ("$${X}", {"X": "set"}, "${X}"),  # $$ escapes the reference
        ("$$$${X}", {"X": "set"}, "$${X}"),
        ("$${X}-${X}", {"X": "set"}, "${X}-set"),
        ("pre-${X}-${Y:-why}-post", {"X": "ex"}, "pre-ex-why-post"),
        ("$X and $5", {"X": "set"}, "$X and $5"),  # only ${...} is a reference
        ("${X:-a b:c}", {}, "a b:c"),
    ],
)
def test_interpolation(tmp_path: Path, written: str, env: dict[str, str], expected: str) -> None:
    path = write(tmp_path, "p.yaml", APP + f"description: '{written}'\nenv:\n  V: '{written}'\n")
    p = load(path, env).profile
    assert p.description == expected
    assert p.env["V"] == expected


def test_interpolation_reaches_nested_mappings_and_lists(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", """\
        app: demo_site.wsgi:application
        health:
          path: /${HEALTH:-healthz}
        before_start:
          - migrate --database ${DB:-default}
          - [echo, "${WHO}"]
        uvicorn:
          root_path: ${ROOT_PATH}
    """)
    p = load(path, {"WHO": "me", "ROOT_PATH": "/app"}).profile
    assert p.health.path == "/healthz"
    assert p.before_start == ("migrate --database default", ("echo", "me"))
    assert p.uvicorn.root_path == "/app"


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"WEB_CONCURRENCY": "3"}, 3), ({}, 5), ({"WEB_CONCURRENCY": ""}, 5)],
)
def test_interpolated_workers_become_numbers(
    tmp_path: Path, env: dict[str, str], expected: int
) -> None:
    path = write(tmp_path, "p.yaml", APP + "workers: ${WEB_CONCURRENCY:-auto}\n")
    assert plan_of(path, env, cpus=2).workers == expected


def test_unset_variable_without_default_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", APP + "env:\n  A: x\n  B: ${NOT_SET_ANYWHERE}\n")
    err = profile_error(path)
    assert (err.file, err.line, err.key) == (path.resolve(), 4, "env.B")
    assert "${NOT_SET_ANYWHERE} is not set" in err.render()
    assert err.render().startswith(f"{path.resolve()}:4: key 'env.B': ")


def test_unset_variable_in_a_parent_points_at_the_parent(tmp_path: Path) -> None:
    parent = write(tmp_path, "parent.yaml", APP + "bind: 127.0.0.1:${NO_SUCH_PORT}\n")
    child = write(tmp_path, "child.yaml", "extends: parent\ndescription: child\n")
    err = profile_error(child)
    assert (err.file, err.line, err.key) == (parent.resolve(), 2, "bind")


def test_overrides_are_not_interpolated_and_win(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", APP + "bind: 127.0.0.1:${PORT:-8000}\n")
    assert load(path).profile.bind == "127.0.0.1:8000"
    assert load(path, {"PORT": "9001"}).profile.bind == "127.0.0.1:9001"
    loaded = load(path, {"PORT": "9001"}, overrides={"bind": "127.0.0.1:9002"})
    assert loaded.profile.bind == "127.0.0.1:9002"


def test_bad_override_is_reported_as_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", APP)
    err = profile_error(path, overrides={"bind": "foo"})
    assert (err.file, err.key) == (None, "--bind")
    assert "'foo' is not HOST:PORT" in err.render()


# ----- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chdir", "expected"),
    [
        (None, "profiles"),
        (".", "profiles"),
        ("site", "profiles/site"),
        ("../site", "site"),
        ("./a/../site", "profiles/site"),
    ],
)
def test_relative_chdir_resolves_against_the_profile_dir(
    tmp_path: Path, chdir: str | None, expected: str
) -> None:
    cwd = tmp_path / "somewhere" / "else"
    cwd.mkdir(parents=True)
    (tmp_path / expected).mkdir(parents=True, exist_ok=True)
    (tmp_path / "profiles" / "a").mkdir(parents=True, exist_ok=True)  # chdir must exist
    path = write(tmp_path / "profiles", "p.yaml", APP + (f"chdir: {chdir}\n" if chdir else ""))
    loaded = load_profile("../../profiles/p.yaml", cwd=cwd, env={})
    plan = build_plan(loaded, python="python", cpus=2, env={})
    assert loaded.path == path.resolve()
    assert plan.cwd == (tmp_path / expected).resolve()
    assert plan.server_command().cwd == plan.cwd


def test_absolute_chdir_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs"
    target.mkdir()
    path = write(tmp_path / "profiles", "p.yaml", APP + f"chdir: {target}\n")
    assert plan_of(path).cwd == target


def test_pythonpath_resolves_against_the_profile_dir_and_keeps_the_callers(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", APP + "pythonpath: [src, ../lib]\n")
    loaded = load(path)
    plan = build_plan(loaded, python="python", cpus=2, env={"PYTHONPATH": "/x"})
    assert plan.env["PYTHONPATH"] == f"{tmp_path / 'src'}:{tmp_path.parent / 'lib'}:/x"
    alone = build_plan(loaded, python="python", cpus=2, env={})
    assert alone.env["PYTHONPATH"] == f"{tmp_path / 'src'}:{tmp_path.parent / 'lib'}"


# ----- workers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpus", "expected"), [(0, 3), (1, 3), (2, 5), (4, 9), (16, 33)])
def test_workers_auto_is_two_per_cpu_plus_one(tmp_path: Path, cpus: int, expected: int) -> None:
    path = write(tmp_path, "p.yaml", APP + "workers: auto\n")
    assert plan_of(path, cpus=cpus).workers == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 1), ("workers: 3\n", 3), ("workers: '4'\n", 4), ("workers: auto\nreload: true\n", 1),
     ("workers: 6\nreload: true\n", 1)],
)
def test_worker_counts(tmp_path: Path, text: str, expected: int) -> None:
    path = write(tmp_path, "p.yaml", APP + text)
    assert plan_of(path, cpus=2).workers == expected


# ----- YAML quirks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [("off", "off"), ("on", "on"), ("'off'", "off"), ('"on"', "on"), ("auto", "auto"),
     ("no", "off"), ("yes", "on"), ("false", "off")],
)
def test_lifespan_yaml_booleans_become_words(tmp_path: Path, written: str, expected: str) -> None:
    path = write(tmp_path, "p.yaml", APP + f"uvicorn:\n  lifespan: {written}\n")
    assert load(path).profile.uvicorn.lifespan == expected


def test_lifespan_is_off_by_default(tmp_path: Path) -> None:
    assert load(write(tmp_path, "p.yaml", APP)).profile.uvicorn.lifespan == "off"


# ----- the pure layer's own errors: file, line, key -----------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "key", "fragment"),
    [
        ("worker: 3\n", 2, "worker", "unknown setting (did you mean 'workers'?)"),
        ("health:\n  pathh: /x\n", 3, "health.pathh", "did you mean 'path'?"),
        ("uvicorn:\n  lifspan: 'off'\n", 3, "uvicorn.lifspan", "did you mean 'lifespan'?"),
        ("zzzzzz: 1\n", 2, "zzzzzz", "unknown setting"),
        ("workers: many\n", 2, "workers", "got 'many'"),
        ("workers: 0\n", 2, "workers", "from 1 to"),
        ("worker_class: eventlet\n", 2, "worker_class", "gevent"),
        ("worker_class: uvicorn.workers.UvicornWorker\n", 2, "worker_class", "uvicorn-worker"),
        ("worker_class: threads\n", 2, "worker_class", "not one of sync, gthread"),
        ("worker_class: mysite..W\n", 2, "worker_class", "nor the import path of a worker"),
        ("loglevel: loud\n", 2, "loglevel", "got 'loud'"),
        ("bind: nonsense\n", 2, "bind", "'nonsense' is not HOST:PORT or unix:/PATH"),
        ("bind: 127.0.0.1:70000\n", 2, "bind", "port 70000 is outside 1-65535"),
        ("bind: unix:relative.sock\n", 2, "bind", "absolute path"),
        ("health:\n  path: healthz\n", 3, "health.path", "must start with '/'"),
        ("health:\n  smoke: [/, admin/]\n", 3, "health.smoke.1", "must start with '/'"),
        ("health:\n  smoke:\n    - /\n    - /a b\n", 5, "health.smoke.1", "without spaces"),
        ("health:\n  smoke: /\n", 3, "health.smoke", "list"),
        ("health:\n  smoke: [" + "/, " * 21 + "]\n", 3, "health.smoke", "at most 20"),
        ("env:\n  BAD-NAME: x\n", 2, "env", "'BAD-NAME' is not a valid environment variable"),
        ("threads: 0\n", 2, "threads", "greater than or equal to 1"),
        ("server: nginx\n", 2, "server", "'gunicorn' or 'uvicorn'"),
        ("workers: 2\nworkers: 3\n", 3, "workers", "duplicate key"),
    ],
)
def test_profile_errors_name_file_line_and_key(
    tmp_path: Path, body: str, line: int, key: str, fragment: str
) -> None:
    path = write(tmp_path, "p.yaml", APP + body)
    err = profile_error(path)
    assert (err.file, err.line, err.key) == (path.resolve(), line, key)
    assert fragment in err.render()
    assert err.render().startswith(f"{path.resolve()}:{line}: key '{key}': ")


@pytest.mark.parametrize("app", ["demo_site.wsgi", "demo_site.wsgi:", ":application", "a-b:c",
                                 "demo_site/wsgi.py:application"])
def test_app_must_be_module_colon_attribute(tmp_path: Path, app: str) -> None:
    path = write(tmp_path, "p.yaml", f"description: x\napp: '{app}'\n")
    err = profile_error(path)
    assert (err.line, err.key) == (2, "app")
    assert "is not 'module:attribute'" in err.render()


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", APP + "workers: 2\n  threads: 4\nbind: x\n")
    err = profile_error(path)
    assert (err.file, err.line) == (path.resolve(), 3)
    assert "invalid YAML" in err.render()


def test_a_profile_must_be_a_mapping(tmp_path: Path) -> None:
    err = profile_error(write(tmp_path, "p.yaml", "- a\n- b\n"))
    assert "must be a mapping" in err.render()


def test_no_project_and_no_app_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "workers: 2\n")
    with pytest.raises(ProfileError) as info:
        build_plan(load(path), python="python", cpus=1, env={}, cwd=tmp_path)
    assert info.value.key == "app"
    assert f"no Django project found at or above {tmp_path} (no manage.py)" in str(info.value)


def test_unterminated_quote_names_a_line_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", 'description: "never closed\nworkers: 2\n')
    err = profile_error(path)
    assert err.line in (1, 2)


def test_extends_missing_profile(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", APP + "extends: nowhere\n")
    err = profile_error(path)
    assert (err.file, err.line, err.key) == (path.resolve(), 2, "extends")
    assert "profile 'nowhere' not found: no nowhere.yaml beside it or in" in err.render()
    assert str(SHIPPED_CONFIGS) in err.render()


@pytest.mark.parametrize("names", [("a", "b"), ("a", "b", "c")])
def test_extends_loop_is_refused(tmp_path: Path, names: tuple[str, ...]) -> None:
    for this, parent in zip(names, (*names[1:], names[0]), strict=True):
        write(tmp_path, f"{this}.yaml", APP + f"extends: {parent}\n")
    err = profile_error(tmp_path / "a.yaml")
    assert err.key == "extends"
    assert "extends loops back on itself" in err.render()
    assert " -> ".join(f"{n}.yaml" for n in (*names, names[0])) in err.render()


# ----- finding profiles ---------------------------------------------------------------------


def test_find_profile_lookup_order(tmp_path: Path) -> None:
    own = write(tmp_path / "configs", "prod-wsgi.yaml", APP)
    extra = write(tmp_path / "extra", "prod-wsgi.yaml", APP)
    assert find_profile("prod-wsgi", tmp_path, {}) == own.resolve()
    # the project's own profile wins over a site-wide one (tests/plan/test_lookup.py: the order)
    site = {"LAUNCH_CONFIG_DIR": str(extra.parent)}
    assert find_profile("prod-wsgi", tmp_path, site) == own.resolve()
    assert find_profile("prod-wsgi", tmp_path / "extra", {}) == SHIPPED_CONFIGS / "prod-wsgi.yaml"
    assert find_profile("dev", tmp_path, {}) == SHIPPED_CONFIGS / "dev.yaml"
    yml = write(tmp_path / "configs", "mine.yml", APP)
    assert find_profile("mine", tmp_path, {}) == yml.resolve()


def test_unknown_profile_lists_where_it_looked_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        find_profile("prod-wsgj", tmp_path, {})
    text = info.value.render()
    assert "unknown profile 'prod-wsgj' (did you mean 'prod-wsgi'?)" in text
    assert str(tmp_path / "configs") in text
    assert str(SHIPPED_CONFIGS) in text


@pytest.mark.parametrize("name", ["check", "show", "list", "stop"])
def test_reserved_names_cannot_be_profiles(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / "configs", f"{name}.yaml", APP)
    for ref in (name, f"configs/{name}.yaml"):
        with pytest.raises(ProfileError) as info:
            find_profile(ref, tmp_path, {})
        assert f"'{name}' is a launch command" in info.value.render()
    with pytest.raises(ProfileError) as info:
        find_profile(str(path), tmp_path, {})
    assert info.value.file == path.resolve()


def test_missing_profile_file_path(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        find_profile("./nope.yaml", tmp_path, {})
    assert "profile file ./nope.yaml does not exist" in info.value.render()
