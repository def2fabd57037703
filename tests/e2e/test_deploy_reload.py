"""A reload is a deploy: on a generated project under load, `launch reload` (the CLI) after an
edit of a CSS file and a new migration serves the new CSS with the migration applied before
the new code serves, drops no request, and the old generation keeps serving the bytes its pages
name while the new one prepares; a migration that raises refuses the reload, the old code
serving on. One project per case: prod-wsgi with plain static storage and the STATIC_ROOT the
launcher picks, prod-asgi with manifest (hashed) storage and a STATIC_ROOT of the project's."""

from __future__ import annotations

import http.client
import re
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PYTHON, Env, Launch, Load, free_port, get, start, wait_ok
from tests.projects import deployable

# Run by scripts/installed against the built wheel in each corner, not on the editable install.
pytestmark = pytest.mark.installed

OLD_CSS = "body { color: #111111; }\n"
NEW_CSS = "body { color: #222222; background: #eeeeee; margin: 0 auto; }\n"  # longer: a stale
# Content-Length would cut it

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
"""
INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
            ],
        ),
    ]
"""
# Expand first: a nullable column the old code (which never names it) lives with.
ADD_COLOR = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("item", "color", models.CharField(max_length=20, null=True)),
    ]
"""
FAILING = """\
from django.db import migrations


def boom(apps, schema_editor):
    raise RuntimeError("the data migration found a row it cannot convert")


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_item_color")]
    operations = [migrations.RunPython(boom)]
"""
VIEWS = """\
from django.shortcuts import render

from shop.models import Item


def page(request):
    fields = [f.name for f in Item._meta.fields]
    rows = list(Item.objects.values_list(*fields))  # every column the code knows: 500 if missing
    return render(request, "shop/page.html", {"fields": ",".join(fields), "rows": len(rows)})
"""
PAGE = """{% load static %}<html><head>\
<link rel="stylesheet" href="{% static 'shop/style.css' %}"></head>\
<body>fields={{ fields }} rows={{ rows }}</body></html>"""


def shop_project(parent: Path, *, manifest: bool) -> Path:
    """`startproject` made deployable, with an app `shop`: a model, its migration, a page
    naming a CSS file through {% static %}. `manifest`: hashed names and a STATIC_ROOT of the
    project's; else plain storage and no STATIC_ROOT (the launcher picks `staticfiles/`)."""
    root = parent / "site"
    root.mkdir(parents=True)
    subprocess.run([PYTHON, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True, timeout=60)
    deployable(root)
    settings = root / "mysite" / "settings.py"
    text = settings.read_text().replace(
        "'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'shop',")
    if manifest:
        text += (
            "\nSTATIC_ROOT = BASE_DIR / 'collected'\n"
            "STORAGES = {\n"
            "    'default': {'BACKEND': 'django.core.files.storage.FileSystemStorage'},\n"
            "    'staticfiles': {'BACKEND':\n"
            "        'django.contrib.staticfiles.storage.ManifestStaticFilesStorage'},\n"
            "}\n"
        )
    settings.write_text(text)
    shop = root / "shop"
    for path, content in {
        "__init__.py": "", "models.py": MODELS, "views.py": VIEWS,
        "migrations/__init__.py": "", "migrations/0001_initial.py": INITIAL,
        "templates/shop/page.html": PAGE, "static/shop/style.css": OLD_CSS,
    }.items():
        (shop / path).parent.mkdir(parents=True, exist_ok=True)
        (shop / path).write_text(content)
    urls = root / "mysite" / "urls.py"
    text = urls.read_text().replace(
        "from django.urls import path", "from django.urls import path\nfrom shop import views")
    text = re.sub(r"(path\(['\"]admin/['\"], admin\.site\.urls\),)",
                  r"\1\n    path('page/', views.page),", text)
    urls.write_text(text)
    return root


def href(page: bytes) -> str:
    [found] = re.findall(r'href="([^"]+\.css)"', page.decode())
    return str(found)


@dataclass
class Fetches:
    """The old page's stylesheet fetched again and again (a fresh connection each time) while
    a reload runs: each answer's body and Content-Length, and whether STATIC_ROOT already held
    the new CSS when it was asked for."""

    port: int
    path: str
    collected: Path  # STATIC_ROOT's copy of the CSS: new once the new generation collected
    answers: list[tuple[bool, int, bytes, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch, daemon=True)

    def __enter__(self) -> Fetches:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _fetch(self) -> None:
        while not self._stop.is_set():
            try:
                collected = self.collected.read_text() == NEW_CSS
            except OSError:
                collected = False
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", self.path, headers={"Host": "localhost"})
                resp = conn.getresponse()
                length = int(resp.getheader("Content-Length") or -1)
                body = resp.read()
                self.answers.append((collected, resp.status, body, length))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.answers.append((collected, 0, repr(exc).encode(), -1))
            finally:
                conn.close()
            time.sleep(0.01)


def reload_cli(env: Env, root: Path, profile: str) -> subprocess.CompletedProcess[str]:
    """`launch reload PROFILE` from the project, on the launcher under test."""
    return subprocess.run([PYTHON, "-m", "launcher", "reload", profile], cwd=root,
                          env=env.vars(), capture_output=True, text=True, timeout=120)


def columns(root: Path) -> set[str]:
    with sqlite3.connect(root / "db.sqlite3") as db:
        return {row[1] for row in db.execute("PRAGMA table_info(shop_item)")}


def applied(root: Path) -> set[str]:
    with sqlite3.connect(root / "db.sqlite3") as db:
        return {row[0] for row in db.execute(
            "SELECT name FROM django_migrations WHERE app = 'shop'")}


@pytest.mark.parametrize(("profile", "manifest"), [("prod-wsgi", False), ("prod-asgi", True)])
def test_a_reload_is_a_deploy(
    env: Env, launch: list[Launch], profile: str, manifest: bool
) -> None:
    root = shop_project(env.tmp, manifest=manifest)
    static_root = root / ("collected" if manifest else "staticfiles")
    port = free_port()
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{port}", cwd=root)
    wait_ok(item, port, "/page/", timeout=90)
    status, old_page, _ = get(port, "/page/")
    assert status == 200 and b"fields=id,name " in old_page, old_page
    old_href = href(old_page)
    assert get(port, old_href)[:2] == (200, OLD_CSS.encode())
    assert "0001_initial" in applied(root)

    # The deploy: a new stylesheet, a new field and its migration, then `launch reload`.
    # collectstatic compares modification times to the second (django's delete_file): an edit
    # within the second of the start's collect would not be copied, with or without launch.
    time.sleep(1.1)
    (root / "shop" / "static" / "shop" / "style.css").write_text(NEW_CSS)
    models = root / "shop" / "models.py"
    models.write_text(models.read_text()
                      + "    color = models.CharField(max_length=20, null=True)\n")
    (root / "shop" / "migrations" / "0002_item_color.py").write_text(ADD_COLOR)
    collected = static_root / "shop" / "style.css"  # the unhashed copy, under manifest too
    with Load(port, "/page/", clients=3) as load, Fetches(port, old_href, collected) as fetches:
        time.sleep(0.5)  # the load under way before the reload starts
        began = time.monotonic()
        done = reload_cli(env, root, profile)
        took = time.monotonic() - began
        time.sleep(0.5)
    assert done.returncode == 0, (done.stdout, done.stderr, item.output[-4000:])
    print(f"{profile}: reload took {took:.2f}s (launch reload's wall time); "
          f"{load.ok} requests served under load, {len(load.failures)} failed; "
          f"{len(fetches.answers)} fetches of the old page's CSS")
    assert load.ok > 0 and load.failures == [], load.failures[:5]

    # Migrated before the new code served: its column is there and its page selects it.
    assert "color" in columns(root) and "0002_item_color" in applied(root)
    status, new_page, _ = get(port, "/page/")
    assert status == 200 and b"fields=id,name,color " in new_page, new_page
    new_href = href(new_page)
    assert get(port, new_href)[:2] == (200, NEW_CSS.encode())
    if manifest:
        assert new_href != old_href  # hashed names: the old page names the old file
    assert "before_start.0 migrate --noinput: done for the new generation" in item.output

    # The old page's stylesheet, fetched throughout: every answer whole (its Content-Length
    # its body's), the old bytes or the new, never a mix; and the old generation answered the
    # old bytes after STATIC_ROOT already held the new ones (the window a shared index breaks).
    assert fetches.answers
    for _collected, status, body, length in fetches.answers:
        assert status == 200 and length == len(body), (status, length, body[:200])
        assert body in (OLD_CSS.encode(), NEW_CSS.encode()), body[:200]
    if manifest:  # the old hashed name stays served, by the new generation too
        assert all(body == OLD_CSS.encode() for _c, _s, body, _l in fetches.answers)
        assert get(port, old_href)[:2] == (200, OLD_CSS.encode())
    else:
        old_after_collect = [a for a in fetches.answers if a[0] and a[2] == OLD_CSS.encode()]
        assert old_after_collect, "no fetch reached the old generation after the new collect"
        assert fetches.answers[-1][2] == NEW_CSS.encode()

    # A migration that raises: the reload is refused naming the step and the migration, and
    # the old code (the one with `color`) serves on, its schema as it was.
    (root / "shop" / "migrations" / "0003_fail.py").write_text(FAILING)
    with Load(port, "/page/", clients=2) as load:
        refused = reload_cli(env, root, profile)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    said = refused.stdout + refused.stderr
    assert "reload failed, still serving the previous code" in said, said
    assert "before_start.0" in said and "migrate --noinput" in said, said
    assert "applying migration shop.0003_fail" in said, said
    assert "RuntimeError: the data migration found a row it cannot convert" in said, said
    assert load.failures == [], load.failures[:5]
    status, page, _ = get(port, "/page/")
    assert status == 200 and b"fields=id,name,color " in page
    assert "0003_fail" not in applied(root)
    assert item.stop() == 0
    # Only the serving generation's snapshot of STATIC_ROOT was left when it stopped.
    snapshots = sorted(p.name for p in (static_root.parent / f".{static_root.name}.generations")
                       .iterdir())
    assert len(snapshots) <= 2, snapshots


def test_without_preload_one_process_runs_the_steps_before_the_new_generation(
    env: Env, launch: list[Launch]
) -> None:
    """gunicorn without preload imports the project in its workers only: a reload's steps run
    in one process that serves nothing, before the new generation starts; a failing migration
    refuses it there, and the next good one is applied before the new code serves."""
    root = shop_project(env.tmp, manifest=False)
    (root / "configs").mkdir()
    (root / "configs" / "prod-wsgi.yaml").write_text("extends: prod-wsgi\npreload_app: false\n")
    port = free_port()
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=root)
    wait_ok(item, port, "/page/", timeout=90)
    migrations = root / "shop" / "migrations"
    (migrations / "0002_item_color.py").write_text(FAILING.replace("0002_item_color",
                                                                   "0001_initial"))
    refused = reload_cli(env, root, "prod-wsgi")
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "applying migration shop.0002_item_color" in said, said
    assert get(port, "/page/")[:1] == (200,)

    (migrations / "0002_item_color.py").write_text(ADD_COLOR)
    models = root / "shop" / "models.py"
    models.write_text(models.read_text()
                      + "    color = models.CharField(max_length=20, null=True)\n")
    done = reload_cli(env, root, "prod-wsgi")
    assert done.returncode == 0, (done.stdout, done.stderr, item.output[-3000:])
    assert "color" in columns(root)
    status, page, _ = get(port, "/page/")
    assert status == 200 and b"fields=id,name,color " in page, page
    assert item.stop() == 0
