"""`launch dev`'s warm tiers, on a private copy of the demo site: an edit of a model module
renews only the setup tier (the base, holding the third-party imports, stays); settings
renew both; a failed reload's tiers are still owed by the next one."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import (
    Env,
    Launch,
    cmdline,
    copy_demo,
    free_port,
    message,
    set_mark,
    start,
    wait_message,
)


def tiers(item: Launch, timeout: float = 10.0) -> tuple[int, list[int]]:
    """(the base's pid, the pids of the setup tiers it forked), once one base runs (a base
    that a reload replaced ends a moment after the new one serves)."""
    assert item.proc is not None
    deadline = time.monotonic() + timeout
    while True:
        bases = [p for p in psutil.Process(item.proc.pid).children() if _is_base(p)]
        if len(bases) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(bases) == 1, bases
    return bases[0].pid, [p.pid for p in bases[0].children()]


def _is_base(proc: psutil.Process) -> bool:
    """A live dev base (one that has just ended may be a zombie for a moment)."""
    return "launcher.child.devserver" in " ".join(cmdline(proc))


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


def test_model_edits_renew_the_setup_tier_and_settings_the_base(
    dev: tuple[Launch, int, Path],
) -> None:
    """Model edits keep the base; creating a module the model module failed to import counts
    as one; a settings edit takes a fresh base, which forks setup tiers in turn."""
    item, port, site = dev
    base, setup = tiers(item)
    models = site / "polls" / "models.py"
    for n in (1, 2):
        set_mark(models, f"model-{n}")
        assert wait_message(port, f"model-{n}") == []
    assert item.output.count("a fresh setup from the warm imports") == 2, item.output
    assert "starting a fresh one" not in item.output
    now, setups = tiers(item)
    assert now == base and setups and setups[-1] not in setup

    # The model module tries to import a module that is not there; creating it counts.
    models.write_text(models.read_text().replace('MARK = "model-2"', (
        "try:\n    from polls.extra import MARK\nexcept ImportError:\n"
        '    MARK = "no extra"\n'
    )))
    assert wait_message(port, "no extra") == []
    (site / "polls" / "extra.py").write_text('MARK = "from extra"\n')
    assert wait_message(port, "from extra") == []
    assert item.output.count("a fresh setup from the warm imports") == 4, item.output
    assert tiers(item)[0] == base
    assert "reload failed" not in item.output

    settings = site / "demo_site" / "settings.py"
    settings.write_text(settings.read_text() + "\nLAUNCHER_TEST_SETTING = 'x'\n")
    item.wait_for("changed: settings.py", timeout=30)
    fresh = "touches what the warm parent imported: starting a fresh one"
    item.wait_for(fresh, timeout=30)
    # Not a count of earlier lines: a reload's pages answer before its line is printed.
    item.wait_for(" serving (pid ", timeout=30, after=fresh)
    assert tiers(item)[0] != base
    (site / "polls" / "extra.py").write_text('MARK = "after settings"\n')  # setups from it too
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
