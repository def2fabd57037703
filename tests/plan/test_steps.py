"""before_start, pure: named steps that layer across `extends:`, and the steps a project's own
files call for (django-compressor's offline compression, translations), with why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from launcher.errors import ProfileError
from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS
from launcher.plan.origins import value_origins
from launcher.plan.project import COMPILE_MESSAGES, found_steps
from tests.conftest import STARTPROJECT_SETTINGS, plan, project, words

COMPRESSOR = STARTPROJECT_SETTINGS.replace(
    '"django.contrib.staticfiles",', '"django.contrib.staticfiles",\n    "compressor",'
) + "COMPRESS_OFFLINE = True\n"


@pytest.mark.parametrize(
    ("settings", "found"),
    [
        (STARTPROJECT_SETTINGS, []),
        (COMPRESSOR, ["compress"]),
        # offline compression off, or compressor not installed: nothing to run
        (COMPRESSOR.replace("COMPRESS_OFFLINE = True", "COMPRESS_OFFLINE = False"), []),
        (STARTPROJECT_SETTINGS + "COMPRESS_OFFLINE = True\n", []),
        # INSTALLED_APPS however assembled; a computed COMPRESS_OFFLINE is Django's to decide
        (STARTPROJECT_SETTINGS + 'INSTALLED_APPS += ["compressor"]\nCOMPRESS_OFFLINE = True\n',
         ["compress"]),
        (COMPRESSOR + "COMPRESS_OFFLINE = not DEBUG\n", []),
    ],
    ids=["startproject", "compressor", "online", "not-installed", "appended", "computed"],
)
def test_steps_found_in_the_settings(tmp_path: Path, settings: str, found: list[str]) -> None:
    root = project(tmp_path, settings)
    assert [step.name for step in found_steps(root, "mysite.settings")] == found


def test_compress_is_found_through_a_settings_package(tmp_path: Path) -> None:
    """A CMS-style settings package: production star-imports base, which installs the app."""
    root = project(tmp_path, "", **{
        "mysite__settings__base.py": COMPRESSOR.replace("COMPRESS_OFFLINE = True\n", ""),
        "mysite__settings__production.py": "from .base import *\n\nCOMPRESS_OFFLINE = True\n",
    })
    (root / "mysite" / "settings.py").unlink()
    (root / "mysite" / "settings" / "__init__.py").write_text("")
    [step] = found_steps(root, "mysite.settings.production")
    assert (step.name, step.command) == ("compress", "compress")
    assert step.why == "COMPRESS_OFFLINE = True (mysite/settings/production.py:3)"


def test_prod_runs_compress_after_collectstatic_and_says_why(tmp_path: Path) -> None:
    root = project(tmp_path, COMPRESSOR)
    line = COMPRESSOR.splitlines().index("COMPRESS_OFFLINE = True") + 1
    for name in ("prod-wsgi", "prod-asgi"):
        made = plan(root, name)
        assert words(made) == ["migrate --noinput", "collectstatic --noinput -v 0", "compress"]
        assert made.found_steps == ("compress",)
        # a failure of the step points at the setting that asked for it
        assert made.origins["before_start.2"] == (root / "mysite/settings.py", line)
        rows = {row.key: row for row in value_origins(
            load_profile(str(SHIPPED_CONFIGS / f"{name}.yaml"), cwd=root, env={}), made)}
        assert rows["before_start.compress"].source == (
            f"project: COMPRESS_OFFLINE = True (mysite/settings.py:{line})"
        )
    # dev collects nothing: compressor works from the sources there
    assert words(plan(root, "dev")) == ["migrate --noinput"]


def test_a_project_adds_a_step_to_every_prod_profile_without_repeating_the_shipped_ones(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    made = plan(root, "prod-wsgi", """\
        extends: prod-wsgi
        before_start:
          warm: [./bin/warm-cache, --all]
    """)
    assert words(made) == [
        "migrate --noinput", "collectstatic --noinput -v 0", "./bin/warm-cache --all"
    ]
    assert made.origins["before_start.2"] == (root / "configs" / "prod-wsgi.yaml", 3)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # switched off by name: found ones too
        ("before_start:\n  compress: false\n", ["migrate --noinput",
                                                "collectstatic --noinput -v 0"]),
        ("before_start:\n  collectstatic: false\n  migrate: null\n", []),
        # a list replaces the shipped steps whole; a step it runs is not added twice
        ("before_start: [migrate, compress --force]\n", ["migrate", "compress --force"]),
        ("before_start: [migrate]\n", ["migrate"]),
        # a named step written again keeps its place
        ("before_start:\n  migrate: migrate --noinput --database default\n",
         ["migrate --noinput --database default", "collectstatic --noinput -v 0", "compress"]),
    ],
    ids=["compress-off", "all-off", "list-with-compress", "list", "rewritten"],
)
def test_steps_layer_by_name(tmp_path: Path, override: str, expected: list[str]) -> None:
    root = project(tmp_path, COMPRESSOR)
    assert words(plan(root, "prod-wsgi", "extends: prod-wsgi\n" + override)) == expected


@pytest.mark.parametrize(
    ("before_start", "key", "message"),
    [
        ("before_start: migrate\n", "before_start", "a list of steps, or named steps"),
        ("before_start:\n  9lives: migrate\n", "before_start.9lives", "cannot name a step"),
        ("before_start:\n  warm: 3\n", "before_start.warm", "valid string"),
        ("before_start: [migrate, 3]\n", "before_start.1", "valid string"),
    ],
)
def test_bad_steps_name_the_key(tmp_path: Path, before_start: str, key: str,
                                message: str) -> None:
    root = project(tmp_path)
    with pytest.raises(ProfileError) as info:
        plan(root, "prod-wsgi", "extends: prod-wsgi\n" + before_start)
    assert info.value.key == key
    assert message in str(info.value)


def test_translations_are_compiled_in_every_profile(tmp_path: Path) -> None:
    root = project(tmp_path, **{
        "locale__fr__LC_MESSAGES__django.po": 'msgid ""\nmsgstr ""\n',
        "shop__locale__de__LC_MESSAGES__django.po": 'msgid ""\nmsgstr ""\n',
        # a virtualenv inside the project is not the project's
        ".venv__lib__locale__es__LC_MESSAGES__django.po": "",
    })
    [step] = found_steps(root, "mysite.settings")
    assert step.why == "translations in locale/fr/LC_MESSAGES/django.po and 1 more"
    for name in ("dev", "prod-wsgi"):
        assert words(plan(root, name))[-1] == COMPILE_MESSAGES


def test_found_steps_read_no_more_than_the_project(tmp_path: Path) -> None:
    """Detection reads settings with ast: a settings module that would fail at import (a
    missing variable) is still read, and nothing of it runs."""
    root = project(tmp_path, COMPRESSOR + 'SECRET_KEY = __import__("os").environ["NOPE"]\n')
    assert "NOPE" not in os.environ
    assert [step.name for step in found_steps(root, "mysite.settings")] == ["compress"]
