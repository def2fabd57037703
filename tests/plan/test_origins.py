"""`launch show --origins`, pure: each value and its file:line, variable, flag or default."""

from __future__ import annotations

import textwrap
from pathlib import Path

from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS
from launcher.plan.origins import ValueOrigin, value_origins


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def origins_of(path: Path, env: dict[str, str], **kwargs: object) -> dict[str, ValueOrigin]:
    loaded = load_profile(str(path), cwd=path.parent, env=env, **kwargs)  # type: ignore[arg-type]
    return {o.key: o for o in value_origins(loaded)}


def test_each_value_names_its_source(tmp_path: Path) -> None:
    base = write(tmp_path / "base", "base.yaml", """\
        app: demo_site.wsgi:application
        timeout: 20
        env:
          DATABASE_URL: postgres://app:hunter2@db/app
        before_start:
          - migrate
        health:
          interval: 7
    """)
    child = write(tmp_path, "child.yaml", """\
        extends: base/base.yaml
        bind: ${HOST:-127.0.0.1}:${PORT}
        workers: ${WORKERS:-3}
        health:
          timeout: 1
        env:
          API_TOKEN: ${API_TOKEN}
    """)
    env = {"PORT": "9001", "API_TOKEN": "s3cr3t-value"}
    table = origins_of(child, env)
    rows = {k: (o.value, o.source) for k, o in table.items()}
    assert rows["app"] == ("demo_site.wsgi:application", f"{base}:1")
    assert rows["timeout"] == (20, f"{base}:2")
    assert rows["bind"] == (
        "127.0.0.1:9001", f"{child}:2 via $HOST unset: its default, $PORT"
    )
    assert rows["workers"] == (3, f"{child}:3 via $WORKERS unset: its default")
    assert rows["health.interval"] == (7.0, f"{base}:8")
    assert rows["health.timeout"] == (1.0, f"{child}:5")
    assert rows["health.path"] == (None, "default")  # the launcher's own probe
    assert rows["before_start.0"] == ("migrate", f"{base}:6")
    assert rows["backlog"] == (2048, "default")
    assert rows["env.API_TOKEN"] == ("***", f"{child}:7 via $API_TOKEN")
    assert rows["env.DATABASE_URL"] == ("postgres://app:***@db/app", f"{base}:4")
    assert "s3cr3t-value" not in repr(table) and "hunter2" not in repr(table)


def test_a_flag_wins_and_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "app: a.wsgi:application\nbind: 127.0.0.1:8000\n")
    table = origins_of(path, {}, overrides={"bind": "127.0.0.1:9"})
    assert (table["bind"].value, table["bind"].source) == ("127.0.0.1:9", "--bind")
    assert table["app"].source == f"{path}:1"


def test_default_lists_stay_one_row_and_written_ones_open_up(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "app: a.wsgi:application\nwatch:\n  roots: [src, lib]\n")
    table = origins_of(path, {})
    assert table["watch.roots.1"].value == "lib"
    assert table["watch.roots.1"].source == f"{path}:3"
    assert table["watch.include"].source == "default"
    assert "watch.include.0" not in table


def test_merge_keys_point_at_what_they_merge(tmp_path: Path) -> None:
    base = write(tmp_path, "p.yaml", """\
        app: a.wsgi:application
        health: &probe
          interval: 9
          timeout: 3
    """)
    assert origins_of(base, {})["health.interval"].source == f"{base}:3"
    other = write(tmp_path, "q.yaml", """\
        extends: p.yaml
        health:
          <<: {interval: 11, timeout: 5}
          timeout: 6
    """)
    table = origins_of(other, {})
    assert (table["health.interval"].value, table["health.interval"].source) == (11.0, f"{other}:3")
    assert (table["health.timeout"].value, table["health.timeout"].source) == (6.0, f"{other}:4")


def test_shipped_profiles_explain_every_value(tmp_path: Path) -> None:
    for name in ("dev", "prod-wsgi", "prod-asgi"):
        table = origins_of(SHIPPED_CONFIGS / f"{name}.yaml", {})
        assert table
        for origin in table.values():
            assert origin.source == "default" or origin.source.startswith(str(SHIPPED_CONFIGS))
