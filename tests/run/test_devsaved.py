"""`launch dev`'s base saves the import list it learned (the project's subdirectory of the run
dir, `NAME.devimports`, 0600); the
next start of the same project, interpreter and packages imports it from the start, and a
model edit right after it is served as on disk. A list saved under another key, corrupt or not
the user's own is ignored, said so, and learned again."""

from __future__ import annotations

import json
import os
import re
import stat
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env, Launch, copy_demo, free_port, start
from tests.run.test_devparents import set_mark
from tests.run.test_forkserver import message, wait_message

pytestmark = pytest.mark.timeout(240)

USED = re.compile(r"the base imports ahead the (\d+) third-party modules saved by an earlier "
                  r"run \((.+?)\)")
FROM_SAVED = re.compile(r"warm tiers: warm in [\d.]+s; the base holds (\d+) third-party "
                        r"modules imported ahead of django.setup\(\), (\d+) of them from the "
                        r"list saved by an earlier run")


def project(env: Env, name: str) -> Path:
    """A copy of the demo site whose sync view answers with a name its model module defines;
    the directory to launch from."""
    site = copy_demo(env.tmp / name) / "demo_site"
    with (site / "polls" / "models.py").open("a") as fh:
        fh.write('\nMARK = "model-0"\n')
    views = site / "demo_site" / "views.py"
    views.write_text(views.read_text().replace(
        'MESSAGE = "hello from sync"', "from polls.models import MARK as MESSAGE  # noqa: E402"
    ))
    return site


def launch_dev(launch: list[Launch], env: Env, site: Path, **extra: str) -> tuple[Launch, int]:
    port = free_port()
    item = start(launch, env, str(site.parent / "configs" / "dev.yaml"),
                 "--bind", f"127.0.0.1:{port}", cwd=site, DJANGO_DEBUG="1", **extra)
    item.wait_for("[launch] serving", timeout=60)
    return item, port


def saved_file(env: Env, site: Path) -> Path:
    """dev's list for the project at `site`: in its subdirectory of the run dir,
    `<basename>-<crc32 of its root>` (README: the run directory)."""
    root = site.resolve()
    return env.tmp / "run" / f"{root.name[:16]}-{zlib.crc32(os.fsencode(str(root))):08x}" / \
        "dev.devimports"


def wait_saved(
    env: Env, site: Path, replacing: int | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """The saved list, once a base has written it (in place of the file of inode `replacing`:
    a base writes a new file and renames it over the old one)."""
    path = saved_file(env, site)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_ino != replacing:
            saved: dict[str, Any] = json.loads(path.read_text())
            return saved
        time.sleep(0.1)
    raise AssertionError(f"{path} not written within {timeout}s")


def test_the_learned_list_is_saved_owner_only_and_imported_from_the_next_start(
    env: Env, launch: list[Launch]
) -> None:
    site = project(env, "one")
    item, _ = launch_dev(launch, env, site)
    saved = wait_saved(env, site)
    info = saved_file(env, site).stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert saved["key"]["project"]["roots"][0] == str(site.resolve())
    assert "django.core.handlers.asgi" in saved["modules"]
    assert not any(m.startswith(("polls", "demo_site")) for m in saved["modules"])
    assert "saved by an earlier run" not in item.output  # nothing saved before this one
    assert item.stop() == 0

    item, port = launch_dev(launch, env, site)
    used = USED.search(item.output)  # said before it serves: the base read it at its start
    assert used, item.output
    assert (int(used[1]), used[2]) == (len(saved["modules"]), str(saved_file(env, site)))
    assert item.output.index(used[0]) < item.output.index("[launch] serving")
    set_mark(site / "polls" / "models.py", "right after the start")  # at once
    assert wait_message(port, "right after the start", timeout=30) == []
    held = FROM_SAVED.search(item.output)
    assert held and int(held[2]) > 0 and int(held[1]) >= int(held[2]), item.output
    set_mark(site / "polls" / "models.py", "later")
    assert wait_message(port, "later") == []
    assert "reload failed" not in item.output
    assert item.stop() == 0


def test_a_list_saved_for_another_project_is_not_used(env: Env, launch: list[Launch]) -> None:
    """Each project has its own list; one copied from another project is told and ignored."""
    one = project(env, "one")
    item, _ = launch_dev(launch, env, one)
    wait_saved(env, one)
    assert item.stop() == 0
    first = saved_file(env, one)
    kept = (first.stat().st_ino, first.read_bytes())

    other = project(env, "two")
    mine = saved_file(env, other)
    assert mine.parent != first.parent
    mine.parent.mkdir(mode=0o700, parents=True)
    mine.write_bytes(kept[1])
    mine.chmod(0o600)
    copied = mine.stat().st_ino
    item, port = launch_dev(launch, env, other)
    assert "is not used, it was made for another project" in item.output, item.output
    assert not USED.search(item.output)
    assert message(port) == "model-0"
    relearned = wait_saved(env, other, replacing=copied)
    assert relearned["key"]["project"]["roots"][0] == str(other.resolve())
    assert item.stop() == 0
    assert (first.stat().st_ino, first.read_bytes()) == kept  # the first project's is its own


def _foreign(path: Path) -> None:
    os.chown(path, 65534, 65534)


def _with_key(part: str, value: object) -> Callable[[Path], None]:
    def tamper(path: Path) -> None:
        saved = json.loads(path.read_text())
        saved["key"][part] = value
        path.write_text(json.dumps(saved))
    return tamper


def _install_package(site_packages: Path) -> Callable[[Path], None]:
    def install(_path: Path) -> None:  # a new module in a package directory on sys.path
        (site_packages / "newly_installed.py").write_text("VALUE = 1\n")
    return install


def test_a_stale_corrupt_or_foreign_list_is_ignored_and_learned_again(
    env: Env, launch: list[Launch]
) -> None:
    site = project(env, "one")
    packages = env.tmp / "extra" / "site-packages"  # on sys.path by PYTHONPATH, as a venv's is
    packages.mkdir(parents=True)
    extra = {"PYTHONPATH": str(packages)}
    item, _ = launch_dev(launch, env, site, **extra)
    saved = wait_saved(env, site)
    assert [str(packages), packages.stat().st_mtime_ns] in saved["key"]["packages"]
    assert item.stop() == 0
    path = saved_file(env, site)

    cases: list[tuple[Callable[[Path], None], str]] = [
        (_with_key("python", {"executable": "/opt/other/python3", "version": "3.99"}),
         "it was made by another interpreter"),
        (_install_package(packages), "the installed packages changed since"),
        (lambda p: p.write_text('{"key": {"format": 1}, "modules": [1, 2'), "it is unreadable"),
        (lambda p: p.write_bytes(os.urandom(64)), "it is unreadable"),
        (lambda p: p.chmod(0o666), "others may write it"),
    ]
    if os.getuid() == 0:  # only root can give a file away
        cases.append((_foreign, "it is not a file of this user's"))
    for n, (tamper, why) in enumerate(cases):
        tamper(path)
        tampered = path.stat().st_ino
        item, port = launch_dev(launch, env, site, **extra)
        assert f"is not used, {why}: the base learns it again" in item.output, item.output
        assert not USED.search(item.output)
        set_mark(site / "polls" / "models.py", f"case-{n}")
        assert wait_message(port, f"case-{n}", timeout=30) == []
        relearned = wait_saved(env, site, replacing=tampered)  # refreshed for the next start
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
        assert relearned["modules"] and "django.core.handlers.asgi" in relearned["modules"]
        assert item.stop() == 0

    item, _ = launch_dev(launch, env, site, **extra)  # the list learned again is used again
    assert USED.search(item.output), item.output
    assert item.stop() == 0
