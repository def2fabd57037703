"""Where collected static files go, as the settings say: `launch show` names the settings' own
STATIC_ROOT (and where it is written) instead of the launcher's default, which only fills in an
empty one; and whether MEDIA_ROOT is served outside dev (`static.media`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.cli.show import media_line, static_lines
from launcher.plan.project import discover
from launcher.wire import MEDIA_ENV
from tests.conftest import STARTPROJECT_SETTINGS, plan, project

AFTER = len(STARTPROJECT_SETTINGS.splitlines()) + 1  # the line of a setting appended to them


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", None),
        ('STATIC_ROOT = BASE_DIR / "static"\n', ("BASE_DIR / 'static'", AFTER)),
        ("STATIC_ROOT = None\n", None),  # written empty: Django has none, the default fills in
        ('STATIC_ROOT = ""\n', None),
        # the last assignment is the one Django sees
        ('STATIC_ROOT = "/srv/a"\nSTATIC_ROOT = "/srv/b"\n', ("'/srv/b'", AFTER + 1)),
        ('STATIC_ROOT = "/srv/a"\nSTATIC_ROOT = None\n', None),
        ("STATIC_ROOT = " + " / ".join(f'"part{i}"' for i in range(20)) + "\n",
         ("'part0' / 'part1' / 'part2' / 'part3' / 'part4' / 'part5'...", AFTER)),
    ],
    ids=["none", "path", "none-literal", "empty", "last-wins", "unset-again", "long"],
)
def test_the_settings_own_static_root_is_read(
    tmp_path: Path, extra: str, expected: tuple[str, int] | None
) -> None:
    root = project(tmp_path, STARTPROJECT_SETTINGS + extra)
    found = discover(root, dev=False, env_settings=None, profile_settings=None).static_root
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.value, found.source) == (expected[0], f"mysite/settings.py:{expected[1]}")


def test_a_settings_package_is_followed_to_its_base(tmp_path: Path) -> None:
    root = project(tmp_path, "", **{
        "mysite__settings__base.py": STARTPROJECT_SETTINGS + 'STATIC_ROOT = "/srv/static"\n',
        "mysite__settings__production.py": "from .base import *\nDEBUG = False\n",
    })
    (root / "mysite" / "settings.py").unlink()
    (root / "mysite" / "settings" / "__init__.py").write_text("")
    found = discover(root, dev=False, env_settings="mysite.settings.production",
                     profile_settings=None).static_root
    assert found is not None and found.source == f"mysite/settings/base.py:{AFTER}"


def test_show_names_the_static_root_actually_used(tmp_path: Path) -> None:
    own = project(tmp_path / "own", STARTPROJECT_SETTINGS + 'STATIC_ROOT = "/srv/static"\n')
    assert static_lines(plan(own)) == [
        "static:   STATIC_ROOT = '/srv/static'  "
        f"(from mysite/settings.py:{AFTER}: the settings' own)"
    ]
    bare = project(tmp_path / "bare")
    assert static_lines(plan(bare)) == [
        f"static:   {bare / 'staticfiles'}  (static.root: the settings set no STATIC_ROOT)"
    ]
    assert static_lines(plan(bare, "dev")) == []  # dev serves from the apps' directories


SERVED = "served at MEDIA_URL (static.media)"
NOT_SERVED = ("not served by prod-wsgi, uploads answer 404: `static: {media: true}` in the "
              "profile serves it at MEDIA_URL, or point the proxy in front at it")


@pytest.mark.parametrize(
    ("extra", "profile", "text", "said"),
    [
        ("", "prod-wsgi", None, None),  # no MEDIA_ROOT: nothing to serve
        ('MEDIA_ROOT = BASE_DIR / "media"\n', "prod-wsgi", None, NOT_SERVED),
        ('MEDIA_ROOT = BASE_DIR / "media"\n', "prod-wsgi",
         "extends: prod-wsgi\nstatic:\n  media: true\n", SERVED),
        ('MEDIA_ROOT = BASE_DIR / "media"\n', "dev", None, None),  # dev serves it, as runserver
    ],
    ids=["no-media-root", "off", "on", "dev"],
)
def test_show_and_check_say_whether_media_root_is_served(
    tmp_path: Path, extra: str, profile: str, text: str | None, said: str | None
) -> None:
    made = plan(project(tmp_path, STARTPROJECT_SETTINGS + extra), profile, text)
    line = media_line(made)
    if said is None:
        assert line is None
    else:
        assert line == f"MEDIA_ROOT = BASE_DIR / 'media'  (from mysite/settings.py:{AFTER}): {said}"
    assert (made.env.get(MEDIA_ENV) == "1") == (said == SERVED)
