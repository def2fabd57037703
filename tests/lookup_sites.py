"""Shared by the tests that run what `launch systemd-unit` and `launch k8s` render
(tests/run/test_systemd.py, tests/cli/test_k8s.py): a copy of the demo project, profiles placed
where the lookup finds them (the project's configs/, two $LAUNCH_CONFIG_DIR directories), and a
profile that says which one it is by the port it binds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import copy_demo

SECRET = "test-only-lookup-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH-not-for-real-sites"
ENV_BLOCK = f"""\
env:
  DJANGO_DEBUG: "0"
  DJANGO_SECRET_KEY: {SECRET}
"""


def site_text(port: int, description: str) -> str:
    """The demo site under gunicorn (1 sync worker), no chdir: the project is where launch runs.
    Each test gives each profile a port of its own, so the port that answers says which file
    was read."""
    return f"""\
description: {description}
app: demo_site.wsgi:application
settings: demo_site.settings
server: gunicorn
worker_class: sync
workers: 1
bind: 127.0.0.1:{port}
graceful_timeout: 5
accesslog: false
{ENV_BLOCK}health:
  interval: 0.2
  startup_timeout: 30
"""


@dataclass(frozen=True)
class Layout:
    """A project (the directory of manage.py), where `launch` is run from, and two site-wide
    profile directories outside it."""

    project: Path
    site1: Path
    site2: Path

    @property
    def config_dir(self) -> str:
        return f"{self.site1}:{self.site2}"


def layout(tmp: Path) -> Layout:
    project = copy_demo(tmp) / "demo_site"
    (project / "configs").mkdir(exist_ok=True)
    site1, site2 = tmp / "site1", tmp / "site2"
    site1.mkdir()
    site2.mkdir()
    return Layout(project.resolve(), site1.resolve(), site2.resolve())


def place(where: Layout, case: str, port: int) -> tuple[str, Path]:
    """Put the case's profile where the lookup finds it; (what to name it, the file it is).

    project: the project's configs/mysite.yaml, by name. site: site1/sited.yaml extending
    site2/sitebase.yaml (which binds), by name with LAUNCH_CONFIG_DIR=site1:site2. path: a file
    in the project outside configs/, by its path relative to the project."""
    if case == "project":
        path = where.project / "configs" / "mysite.yaml"
        path.write_text(site_text(port, "from the project's configs"))
        return "mysite", path
    if case == "site":
        (where.site2 / "sitebase.yaml").write_text(site_text(port, "site-wide base"))
        path = where.site1 / "sited.yaml"
        path.write_text("extends: sitebase\ndescription: site-wide, two directories\n")
        return "sited", path
    if case == "path":
        path = where.project / "deploy" / "web.yaml"
        path.parent.mkdir()
        path.write_text(site_text(port, "by its path in the project"))
        return "deploy/web.yaml", path
    raise AssertionError(case)
