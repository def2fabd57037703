"""`launch dev` with its run dir inside the project it watches: the state file it rewrites
(`NAME.json`, matching the watched `*.json`) must never set off a reload, while an edit of the
project's code still does, once."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON, Env, Launch, free_port, start, wait_ok
from tests.projects import generate


def test_a_run_dir_inside_the_project_never_reloads_dev(
    env: Env, launch: list[Launch]
) -> None:
    root = generate("startproject", env.tmp)
    run = root / "run"  # inside the watched root, as a user's `LAUNCH_RUN_DIR=./run` would be
    port = free_port()
    item = start(launch, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=root,
                 LAUNCH_RUN_DIR=str(run))
    item.wait_for("[launch] serving", timeout=60)
    assert list(run.glob("*/dev.json")), "the state file is inside the watched project"
    for _ in range(2):  # a status request rewrites nothing the watcher may see
        status = subprocess.run(
            [PYTHON, "-m", "launcher", "status", "dev"], env=item.env, cwd=root,
            capture_output=True, text=True, timeout=30,
        )
        assert status.returncode == 0, status.stderr
        time.sleep(2)
    assert "changed:" not in item.output, item.output  # the watcher's debounce and step passed

    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text() + "\n# an edit\n")
    item.wait_for("reloaded: generation 2", timeout=60)
    wait_ok(item, port, "/")
    time.sleep(3)  # room for a self-reload to show up
    assert item.output.count("changed:") == 1, item.output
    assert "generation 3" not in item.output, item.output
    assert item.stop() == 0


@pytest.mark.parametrize(
    ("path", "counts"),
    [
        ("/site/mysite/urls.py", True),
        ("/site/run/mysite-0a1b2c3d/dev.json", False),  # the state file
        ("/site/run/mysite-0a1b2c3d/.dev.json.123", False),  # its temp file before the rename
        ("/site/run/other.json", False),  # another project's, beside it
        ("/site/run", False),
        ("/site/runner/settings.json", True),  # a name that only starts like the run dir
        ("/site/mysite/data.json", True),
    ],
)
def test_the_watch_filter_passes_over_the_run_dir(path: str, counts: bool) -> None:
    from watchfiles import Change

    from launcher.plan.model import WatchSet
    from launcher.run.watch import WatchFilter

    watch_set = WatchSet((Path("/site"),), ("*.py", "*.json"), ("__pycache__",), 0.1, 1.0)
    keep = WatchFilter(watch_set, (Path("/site/run"), Path("/site/run/mysite-0a1b2c3d")))
    assert keep(Change.modified, path) is counts
