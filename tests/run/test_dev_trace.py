"""A dev reload that fails at import in the project's code prints the project's frames and
the exception's line, not the launcher's internals it was imported through (the dev server's
setup tier, uvicorn's importer, the launcher's app wrapper); the one-line reason names the
project's file and line; the old code serves on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PYTHON, Env, Launch, free_port, get, start, wait_ok

VIEWS = ('from django.http import HttpResponse\n\n\n'
         'def home(request):\n    return HttpResponse("home")\n')
ERROR = "ValueError: invalid literal for int() with base 10: 'ten'"


def site_with_a_view(parent: Path) -> Path:
    """startproject, plus a view module the URLconf imports (what an edit breaks)."""
    root = parent / "site"
    root.mkdir()
    subprocess.run([PYTHON, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True, timeout=60)
    (root / "mysite" / "views.py").write_text(VIEWS)
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text()
                    .replace("from django.urls import path",
                             "from django.urls import path\n\nfrom mysite import views")
                    .replace("path('admin/', admin.site.urls),",
                             "path('admin/', admin.site.urls),\n    path('', views.home),"))
    return root


def test_a_failed_dev_reload_shows_the_projects_frames(env: Env, launch: list[Launch]) -> None:
    root = site_with_a_view(env.tmp)
    port = free_port()
    item = start(launch, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=root)
    wait_ok(item, port)
    views = root / "mysite" / "views.py"
    views.write_text(VIEWS.replace("\n\n\ndef", '\n\nLIMIT = int("ten")\n\n\ndef'))
    item.wait_for("reload failed", timeout=90)
    lines = item.output.splitlines()
    start_at = next(n for n, ln in enumerate(lines) if ln.startswith("Traceback"))
    end = next(n for n, ln in enumerate(lines) if "[launch] reload failed" in ln)
    trace = "\n".join(lines[start_at:end])
    assert f'File "{views}", line 3, in <module>' in trace, trace
    assert 'LIMIT = int("ten")' in trace
    assert lines[end - 1] == ERROR, trace
    assert "launcher/child/" not in trace and "uvicorn" not in trace, trace
    reason = f"reload failed, still serving the previous code: {ERROR} ({views}, line 3) ("
    assert reason in lines[end], lines[end]  # then how long it took
    assert get(port, "/")[1] == b"home"  # the old code
    assert item.stop() == 0
