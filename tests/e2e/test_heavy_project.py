"""The heavy project (tests/heavy_project.py): served as it is, and in dev the code served is
exactly the code on disk after every kind of edit, never a mix of old and new.

One project is generated and its database migrated once for the run; each test copies it. The
edit tests share a `launch dev` of a copy (one xdist worker runs them all; a start costs the
project's import, ~1.5 s, far more on a busy machine). They do not depend on each other's
order: each starts from the same files (a module a test deleted is put back) and from a settled
server, one that has answered only what is on disk for a while (the server a reload retired
stops answering a moment after the new one begins), so one that failed does not hide in the
next.
"""

from __future__ import annotations

import http.client
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    FROM_SAVED,
    USED,
    Env,
    Launch,
    assert_nothing_left,
    free_port,
    get,
    heavy_built,
    shared_tmp,
    start,
    status_json,
    stylesheets,
    wait_ok,
    wait_saved,
)
from tests.heavy_project import (
    PROBE_FILES,
    PROBE_PATH,
    WELCOME_TEXT,
    disk_probe,
    parse_probe,
    set_token,
)
from tests.projects import SECRETS

Probe = dict[str, str]
# The first test also pays for the module's fixtures: generating and migrating the project
# (~30 s alone, minutes beside parallel workers on a busy machine) and a dev server's start.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def heavy_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project and its migrated database (the CMS's migrations take ~20 s): built once a
    run, begun in the background once an xdist worker has collected these tests
    (tests/conftest.py)."""
    return heavy_built(shared_tmp(tmp_path_factory))


def copy_project(source: Path, parent: Path) -> Path:
    target = parent / "heavy"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def assert_served_as_it_is(env: Env, port: int, project: Path, profile: str) -> None:
    """The CMS's pages, its API and both admins answer, with their stylesheets."""
    status, home, _ = get(port, "/")  # the CMS's own page, from the database migrate filled
    assert status == 200 and WELCOME_TEXT.encode() in home, home[:500]
    for href in stylesheets(home):
        status, css, _ = get(port, href)
        assert status == 200 and css, href
    status, body, _ = get(port, PROBE_PATH)
    assert (status, parse_probe(body)) == (200, disk_probe(project))
    status, api, response = get(port, "/api/catalog/items/")
    assert (status, api) == (200, b'{"count":0,"next":null,"previous":null,"results":[]}')
    assert response.getheader("Content-Type") == "application/json"
    status, login, _ = get(port, "/admin/login/")  # the CMS's admin, its CSS included
    admin_css = re.findall(r'href="(/static/wagtailadmin/[^"]+\.css[^"]*)"', login.decode())
    assert status == 200 and admin_css, login[:500]
    status, css, _ = get(port, admin_css[0])
    assert status == 200 and len(css) > 1000, admin_css[0]
    assert get(port, "/django-admin/login/")[0] == 200
    if profile != "dev":
        assert status_json(env, profile)["health"] == "healthy"


def sources(project: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in project.rglob("*.py")}


def test_the_heavy_project_is_served_as_it_is(
    env: Env, launch: list[Launch], heavy_source: Path
) -> None:
    """prod-wsgi; dev serves it as it is in the second-start test below."""
    project = copy_project(heavy_source, env.tmp)
    before = sources(project)
    port = free_port()
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=project,
                 WEB_CONCURRENCY="2", **SECRETS)
    wait_ok(item, port, timeout=90)
    assert_served_as_it_is(env, port, project, "prod-wsgi")
    assert item.stop() == 0
    assert "Traceback" not in item.output
    assert sources(project) == before


# ----- dev: served code equals the code on disk ------------------------------------------------


@dataclass
class Dev:
    item: Launch
    port: int
    project: Path

    def path(self, field: str) -> Path:
        return self.project / PROBE_FILES[field]

    def served(self) -> Probe:
        status, body, _ = get(self.port, PROBE_PATH)
        assert status == 200, body[:2000]
        return parse_probe(body)

    def failed_reloads(self) -> int:
        return self.item.output.count("reload failed")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, heavy_source: Path) -> Iterator[Dev]:
    """One `launch dev` of a copy of the heavy project, for all the edit tests."""
    tmp = tmp_path_factory.mktemp("heavy-dev")
    env = Env(tmp)
    project = copy_project(heavy_source, tmp)
    port = free_port()
    started: list[Launch] = []
    try:
        item = start(started, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=project)
        item.wait_for("[launch] serving", timeout=90)
        yield Dev(item, port, project)
        assert item.stop() == 0, item.output[-3000:]  # (a syntax error's traceback is shown)
    finally:
        for launched in started:
            launched.stop()
        assert_nothing_left(env)


@pytest.fixture
def heavy(dev: Dev, heavy_source: Path) -> Dev:
    """The shared dev server with the source's modules all there (a test may have deleted
    one), checked to serve what is on disk before a test edits anything."""
    assert dev.item.proc is not None and dev.item.proc.poll() is None, dev.item.output[-3000:]
    legacy = dev.path("legacy")
    if not legacy.exists():
        edit(dev, lambda: shutil.copy(heavy_source / PROBE_FILES["legacy"], legacy))
    wait_served(dev, disk_probe(dev.project), [dev.served()])
    return dev


def token(field: str) -> str:
    return f"{field}-{uuid.uuid4().hex[:8]}"


# How long only `want` must be answered before a state counts as settled. While a reload
# hands over, the new server accepts on the shared socket before the old one, retired, stops:
# for a moment either may answer, so one answer of `want` does not mean the old one is gone.
SETTLED = 0.5


def wait_served(dev: Dev, want: Probe, allowed: list[Probe], timeout: float = 60.0) -> None:
    """Poll until only `want` has been served for SETTLED seconds in a row; every answer on the
    way must be one of `allowed` or `want` (a state the disk was in: never a mix), and none may
    fail."""
    seen: list[Probe] = []
    failures: list[str] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    while settle_until is None or time.monotonic() < settle_until:
        if time.monotonic() > deadline:
            raise AssertionError(f"{want} not served alone for {SETTLED}s within {timeout}s; "
                                 f"seen {seen[-3:]}\n{dev.item.output[-3000:]}")
        try:
            status, body, _ = get(dev.port, PROBE_PATH)
            if status != 200:
                failures.append(f"{status}: {body[:300]!r}")
            else:
                probe = parse_probe(body)
                if not seen or seen[-1] != probe:
                    seen.append(probe)
                if probe != want:  # the old server still answers: not settled yet
                    settle_until = None
                elif settle_until is None:
                    settle_until = time.monotonic() + SETTLED
        except (OSError, http.client.HTTPException) as exc:
            failures.append(repr(exc))
        time.sleep(0.01)
    assert failures == [], failures[:5]
    mixes = [probe for probe in seen if probe != want and probe not in allowed]
    assert mixes == [], f"served states that were never on disk: {mixes}; wanted {want}"
    assert seen[-1] == want, seen


def edit(dev: Dev, *changes: Callable[[], None], timeout: float = 60.0) -> None:
    """Apply `changes` in order (as a checkout writes files), then wait for the last state;
    what is served meanwhile must be a state the disk was in after some prefix of them."""
    states = [dev.served()]
    assert states[0] == disk_probe(dev.project)
    for change in changes:
        change()
        states.append(disk_probe(dev.project))
    wait_served(dev, states[-1], states[:-1], timeout)


class TestOnTheSharedDevServer:
    """The edit tests, on the module's one dev server: a class's tests run on one xdist worker
    (tests/conftest.py), so the run pays for one start of it rather than one per worker."""

    # The cases: a view registered in the URLconf (view), a module imported by another
    # with `from x import y` (text, by the views; units, by the model module, so inside
    # django.setup()), a model module (model), a template tag library (tag).
    @pytest.mark.parametrize("field", ["view", "text", "model", "units", "tag"])
    def test_an_edit_is_served_as_on_disk(self, heavy: Dev, field: str) -> None:
        # A model edit renews the setup tier: a second one proves the renewed tier renews
        # again. The other kinds fork from tiers an edit leaves as they are (the syntax-error
        # tests below edit the view twice more).
        for _ in range(2 if field == "model" else 1):
            edit(heavy, lambda: set_token(heavy.path(field), token(field)))
        assert heavy.failed_reloads() == 0, heavy.item.output[-3000:]

    def test_files_written_together_never_serve_a_mix(self, heavy: Dev) -> None:
        """A checkout: a model, the module it imports names from, a view and its helper."""
        version = uuid.uuid4().hex[:8]
        edit(heavy, *[
            (lambda f=field: set_token(heavy.path(f), f"{f}-{version}"))
            for field in ("units", "model", "text", "view")
        ])

    def test_a_deleted_module_is_gone_and_once_created_again_is_imported(
        self, heavy: Dev
    ) -> None:
        """legacy.py, imported by the model module under try/except ImportError: deleted, it is
        served as absent; created again where that import had failed, it is imported. (One
        test, so that the module it deletes need not be put back before the other.)"""
        legacy = heavy.path("legacy")
        edit(heavy, legacy.unlink)
        assert heavy.served()["legacy"] == "absent"
        new = token("legacy")
        edit(heavy, lambda: legacy.write_text(f'TOKEN = "{new}"\n'), timeout=15)
        assert heavy.served()["legacy"] == new

    @pytest.mark.parametrize("field", ["view", "model"])
    def test_a_syntax_error_keeps_the_old_code_then_its_fix_is_served(
        self, heavy: Dev, field: str
    ) -> None:
        path = heavy.path(field)
        good = path.read_text()
        before, failed = heavy.served(), heavy.failed_reloads()
        # The fix, written at once: the good source with a new token (one reload, not two).
        line = f'TOKEN = "{before[field]}"'
        assert good.count(line) == 1, (line, path)
        fixed = good.replace(line, f'TOKEN = "{token(field)}"')
        path.write_text(good + "\ndef broken(:\n")
        try:
            deadline = time.monotonic() + 60
            while heavy.failed_reloads() == failed:
                assert time.monotonic() < deadline, heavy.item.output[-3000:]
                assert heavy.served() == before  # the old code goes on serving meanwhile
                time.sleep(0.05)
            assert re.search(r"reload failed.*SyntaxError", heavy.item.output), heavy.item.output
            assert heavy.served() == before
            edit(heavy, lambda: path.write_text(fixed))
        finally:
            if path.read_text() != fixed:  # failed before the fix was written
                path.write_text(good)
        assert heavy.failed_reloads() == failed + 1


def test_dev_serves_it_as_it_is_and_a_second_start_imports_the_saved_list(
    env: Env, launch: list[Launch], heavy_source: Path
) -> None:
    """The first start serves the project as it is and learns its import list (the CMS's
    modules, some of which fail before `django.setup()`); the second imports that list from
    the start, and a model edit made at once is served as on disk."""
    project = copy_project(heavy_source, env.tmp)
    before = sources(project)
    port = free_port()
    first = start(launch, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=project)
    wait_ok(first, port, timeout=90)
    assert_served_as_it_is(env, port, project, "dev")
    saved = wait_saved(env, project, timeout=120)
    assert any(m.startswith("wagtail") for m in saved["modules"]), saved["modules"][-20:]
    assert first.stop() == 0
    assert "Traceback" not in first.output
    assert sources(project) == before

    item = start(launch, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=project)
    item.wait_for("[launch] serving", timeout=90)
    assert USED.search(item.output), item.output[-3000:]
    dev = Dev(item, port, project)
    edit(dev, lambda: set_token(dev.path("model"), token("model")))  # at once
    assert FROM_SAVED.search(item.output), item.output[-3000:]
    assert dev.failed_reloads() == 0 and "Traceback" not in item.output
    assert item.stop() == 0
