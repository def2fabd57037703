"""`launch dev`'s base saves the import list it learned (the project's subdirectory of the run
dir, `NAME.devimports`, 0600); the next start of the same project imports it from the start, and
a model edit right after it is served as on disk. A list saved for another project is told,
ignored and learned again. Which lists are used and why one is ignored (another interpreter or
packages, corrupt, others-writable, not the user's, not a file) is a table without a process:
tests/child/test_devsaved.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import (
    FROM_SAVED,
    USED,
    Env,
    Launch,
    copy_demo,
    free_port,
    message,
    saved_file,
    set_mark,
    start,
    wait_message,
    wait_saved,
)

pytestmark = pytest.mark.timeout(240)


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
