"""A prod profile serving dev-looking settings found in the project's own files, while a
production module sits beside them (a CMS template's wsgi.py defaults to settings.dev; its
Dockerfile sets settings.production): the plan says so, once, naming both."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS
from launcher.plan.project import production_sibling
from tests.conftest import STARTPROJECT_SETTINGS, project


@pytest.mark.parametrize(
    ("settings", "files", "sibling"),
    [
        ("mysite.settings.dev", ["production"], "mysite.settings.production"),
        ("mysite.settings.local", ["prod"], "mysite.settings.prod"),
        ("mysite.settings.dev", ["staging"], None),  # no production module: nothing to suggest
        ("mysite.settings.base", ["production"], None),  # not dev-looking
        ("mysite.settings", [], None),
    ],
)
def test_the_production_sibling(tmp_path: Path, settings: str, files: list[str],
                                sibling: str | None) -> None:
    package = tmp_path / "mysite" / "settings"
    package.mkdir(parents=True)
    for name in ["__init__", "dev", "local", "base", *files]:
        (package / f"{name}.py").write_text("")
    assert production_sibling(tmp_path, settings) == sibling


def cms(root: Path) -> Path:
    """The CMS layout: wsgi.py and manage.py default to settings.dev."""
    made = project(root, "", **{
        "mysite__settings__base.py": STARTPROJECT_SETTINGS,
        "mysite__settings__dev.py": "from .base import *\n",
        "mysite__settings__production.py": "from .base import *\n",
    })
    (made / "mysite" / "settings.py").unlink()
    (made / "mysite" / "settings" / "__init__.py").write_text("")
    for name in ("manage.py", "mysite/wsgi.py"):
        path = made / name
        path.write_text(path.read_text().replace('"mysite.settings"', '"mysite.settings.dev"'))
    return made


@pytest.mark.parametrize(
    ("profile", "env", "warned"),
    [
        ("prod-wsgi", {}, True),
        ("prod-asgi", {}, True),
        ("dev", {}, False),
        # chosen by hand: the environment names them
        ("prod-wsgi", {"DJANGO_SETTINGS_MODULE": "mysite.settings.dev"}, False),
    ],
)
def test_prod_on_dev_settings_is_said(tmp_path: Path, profile: str, env: dict[str, str],
                                      warned: bool) -> None:
    root = cms(tmp_path)
    loaded = load_profile(str(SHIPPED_CONFIGS / f"{profile}.yaml"), cwd=root, env=env)
    made = build_plan(loaded, python="python", cpus=2, env=env, cwd=root)
    expected = (
        f"settings mysite.settings.dev (from mysite/wsgi.py:2) look like development settings "
        f"under {profile}, and mysite.settings.production exists: set DJANGO_SETTINGS_MODULE="
        "mysite.settings.production (or `settings:` in the profile) if that is the one to serve"
    )
    assert made.warnings == ((expected,) if warned else ())
