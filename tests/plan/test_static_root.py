"""Where collected static files go, as the settings say: `launch show` names the settings' own
STATIC_ROOT (and where it is written) instead of the launcher's default, which only fills in an
empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.cli.show import static_lines
from launcher.plan.project import discover
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
