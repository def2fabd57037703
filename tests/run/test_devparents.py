"""`launch dev`'s warm tiers, on a private copy of the demo site: an edit of a model module
renews only the setup tier (the base, holding the third-party imports, stays); settings
renew both; a failed reload's tiers are still owed by the next one."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import Env, Launch, copy_demo, free_port, start
from tests.run.test_forkserver import message, wait_message

MARK = re.compile(r'^MARK = ".*"$', re.M)


def tiers(item: Launch) -> tuple[int, list[int]]:
    """(the base's pid, the pids of the setup tiers it forked), as running now."""
    assert item.proc is not None
    bases = [p for p in psutil.Process(item.proc.pid).children()
             if "launcher.child.devserver" in " ".join(p.cmdline())]
    assert len(bases) == 1, bases
    return bases[0].pid, [p.pid for p in bases[0].children()]


def set_mark(models: Path, text: str) -> None:
    models.write_text(MARK.sub(f'MARK = "{text}"', models.read_text()))


@pytest.fixture
def dev(env: Env, launch: list[Launch]) -> tuple[Launch, int, Path]:
    """The demo site's sync view answers with a name its model module defines."""
    project = copy_demo(env.tmp)
    site = project / "demo_site"
    with (site / "polls" / "models.py").open("a") as fh:
        fh.write('\nMARK = "model-0"\n')
    views = site / "demo_site" / "views.py"
    views.write_text(views.read_text().replace(
        'MESSAGE = "hello from sync"', "from polls.models import MARK as MESSAGE  # noqa: E402"
    ))
    port = free_port()
    item = start(launch, env, str(project / "configs" / "dev.yaml"), "--bind", f"127.0.0.1:{port}",
                 cwd=site, DJANGO_DEBUG="1")
    item.wait_for("[launch] serving", timeout=60)
    assert message(port) == "model-0"
    return item, port, site


def test_a_model_edit_renews_the_setup_tier_and_keeps_the_base(
    dev: tuple[Launch, int, Path],
) -> None:
    item, port, site = dev
    base, setup = tiers(item)
    for n in (1, 2):
        set_mark(site / "polls" / "models.py", f"model-{n}")
        assert wait_message(port, f"model-{n}") == []
    assert item.output.count("a fresh setup from the warm imports") == 2, item.output
    assert "starting a fresh one" not in item.output
    now, setups = tiers(item)
    assert now == base and setups and setups[-1] not in setup
    assert "reload failed" not in item.output
    assert item.stop() == 0


def test_a_settings_edit_renews_the_base(dev: tuple[Launch, int, Path]) -> None:
    item, port, site = dev
    base, _ = tiers(item)
    settings = site / "demo_site" / "settings.py"
    settings.write_text(settings.read_text() + "\nLAUNCHER_TEST_SETTING = 'x'\n")
    item.wait_for("touches what the warm parent imported: starting a fresh one", timeout=30)
    item.wait_for("generation 2 serving", timeout=30)
    assert tiers(item)[0] != base
    set_mark(site / "polls" / "models.py", "after settings")  # the new base forks setups too
    assert wait_message(port, "after settings") == []
    assert item.stop() == 0


def test_a_model_edit_made_beside_a_broken_view_is_served_once_the_view_is_fixed(
    dev: tuple[Launch, int, Path],
) -> None:
    """The failed reload dropped the new setup tier; the fix of the view alone must not fork
    from the old one, whose model module is the old code."""
    item, port, site = dev
    views = site / "demo_site" / "views.py"
    good = views.read_text()
    set_mark(site / "polls" / "models.py", "with the broken view")
    views.write_text(good + "\ndef broken(:\n")
    item.wait_for("reload failed, still serving the previous code", timeout=30)
    deadline = time.monotonic() + 3  # both files may come as two changes: let both land
    while time.monotonic() < deadline:
        assert message(port) == "model-0"
        time.sleep(0.1)
    views.write_text(good + "\n# fixed\n")
    assert wait_message(port, "with the broken view") == []
    assert item.stop() == 0


def test_a_module_created_for_a_failed_import_renews_the_setup_tier(
    dev: tuple[Launch, int, Path],
) -> None:
    """The model module tries to import a module that is not there; creating it counts."""
    item, port, site = dev
    models = site / "polls" / "models.py"
    models.write_text(models.read_text().replace('MARK = "model-0"', (
        "try:\n    from polls.extra import MARK\nexcept ImportError:\n"
        '    MARK = "no extra"\n'
    )))
    assert wait_message(port, "no extra") == []
    (site / "polls" / "extra.py").write_text('MARK = "from extra"\n')
    assert wait_message(port, "from extra") == []
    assert item.output.count("a fresh setup from the warm imports") == 2, item.output
    assert item.stop() == 0
