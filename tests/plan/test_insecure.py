"""Prod refuses settings that would harm a public site, as the settings files write them:
DEBUG = True and startproject's django-insecure- key, one line each with file and line; the
profile key `refuse_insecure: false` lets a project serve anyway; dev never refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.errors import LaunchError
from tests.conftest import STARTPROJECT_SETTINGS, plan, project

KEY = 'SECRET_KEY = "django-insecure-0123456789abcdef"\n'
LINE = len(STARTPROJECT_SETTINGS.splitlines()) + 1
TAIL = "set it from the environment, or `refuse_insecure: false` in the profile"


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        ("", []),
        ("DEBUG = True\n", [
            f"mysite/settings.py:{LINE}: DEBUG = True refused by prod-wsgi (Django's debug "
            f"pages would show code and settings to anyone): {TAIL}"]),
        (KEY, [f"mysite/settings.py:{LINE}: SECRET_KEY = 'django-insecure-...' refused by "
               f"prod-wsgi (startproject's key is not secret): {TAIL}"]),
        (KEY + "DEBUG = True\n",
         [f"mysite/settings.py:{LINE}: SECRET_KEY", f"mysite/settings.py:{LINE + 1}: DEBUG"]),
        # computed: the environment decides; only what is written is judged here
        ('import os\nDEBUG = os.environ.get("DEBUG") == "1"\n', []),
        ("DEBUG = True\nDEBUG = False\n", []),  # the last assignment is the one Django sees
        ('SECRET_KEY = "a-real-key-of-fifty-characters-0123456789abcdefgh"\n', []),
    ],
    ids=["clean", "debug", "insecure-key", "both", "computed", "turned-off", "real-key"],
)
def test_prod_refuses_what_the_settings_write(
    tmp_path: Path, extra: str, refused: list[str]
) -> None:
    made = plan(project(tmp_path, STARTPROJECT_SETTINGS + extra))
    assert len(made.refusals) == len(refused)
    for line, expected in zip(made.refusals, refused, strict=True):
        assert line.startswith(expected)
    if refused:
        with pytest.raises(LaunchError) as caught:
            made.check_runnable()
        assert caught.value.code == 2
        assert caught.value.render().count("\n") == len(refused) - 1  # one line each
    else:
        made.check_runnable()


def test_prod_asgi_refuses_too_and_dev_never(tmp_path: Path) -> None:
    root = project(tmp_path, STARTPROJECT_SETTINGS + KEY + "DEBUG = True\n")
    assert len(plan(root, "prod-asgi").refusals) == 2
    assert plan(root, "dev").refusals == ()


def test_the_override_key_serves_anyway(tmp_path: Path) -> None:
    root = project(tmp_path, STARTPROJECT_SETTINGS + "DEBUG = True\n")
    made = plan(root, "prod-wsgi", "extends: prod-wsgi\nrefuse_insecure: false\n")
    assert made.refusals == ()
    made.check_runnable()


def test_a_settings_package_is_judged_through_its_star_imports(tmp_path: Path) -> None:
    """The CMS layout: production star-imports base, which writes the startproject key."""
    root = project(tmp_path, "", **{
        "mysite__settings__base.py": STARTPROJECT_SETTINGS + KEY,
        "mysite__settings__production.py": "from .base import *\nDEBUG = False\n",
        "mysite__settings__dev.py": "from .base import *\nDEBUG = True\n",
    })
    (root / "mysite" / "settings.py").unlink()
    (root / "mysite" / "settings" / "__init__.py").write_text("")
    (root / "mysite" / "wsgi.py").write_text(
        'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", '
        '"mysite.settings.production")\napplication = None\n'
    )
    [line] = plan(root).refusals
    assert line.startswith(f"mysite/settings/base.py:{LINE}: SECRET_KEY")


@pytest.mark.parametrize(
    ("profile", "text", "judged"),
    [
        ("prod-wsgi", None, ["--refuse-insecure", "prod-wsgi"]),
        ("prod-asgi", None, ["--refuse-insecure", "prod-asgi"]),
        ("dev", None, []),
        ("prod-wsgi", "extends: prod-wsgi\nrefuse_insecure: false\n", []),
    ],
    ids=["prod-wsgi", "prod-asgi", "dev", "override"],
)
def test_the_app_check_judges_what_the_settings_compute_where_prod_refuses(
    tmp_path: Path, profile: str, text: str | None, judged: list[str]
) -> None:
    """What the files compute (DEBUG from the environment) only the import tells: the app
    check is told which profile refuses, for its one line (tests/run/test_runtime_insecure.py)."""
    argv = list(plan(project(tmp_path), profile, text).checks[0].argv)
    at = argv.index("--refuse-insecure") if "--refuse-insecure" in argv else len(argv)
    assert argv[at:at + 2] == judged
