"""Real Django projects generated in a temp dir, as users have them (nothing added for us).

- `startproject`: `django-admin startproject mysite` exactly as Django 5.2 writes it.
- `cms`: the layout a popular CMS's `start` command writes: a settings *package*
  (`base`/`dev`/`production`, an empty `__init__.py`), manage.py naming `.dev`, wsgi.py naming
  `.production`, no asgi.py, no `/healthz`, no whitenoise, ManifestStaticFilesStorage with a
  STATIC_ROOT (a `startproject` site has none: that case is covered there), a home
  page with its own static CSS, and production reading SECRET_KEY and ALLOWED_HOSTS from the
  environment.
- `heavy`: a CMS site grown as real ones grow, slow to import (many installed apps, an API,
  apps of its own whose models carry code, a page tests edit): see tests/heavy_project.py.
- `celery`: a `startproject` site with Celery wired as Celery's Django guide says
  (`mysite/celery.py`, the `CELERY_` settings, autodiscovered tasks, the broker from
  `CELERY_BROKER_URL`), an app `shop` whose view enqueues its task, and a dev profile in
  `configs/` running `celery -A mysite worker` beside the server.
- `tasks`: a `startproject` site on Django's tasks framework with a database backend
  (`django.tasks` where Django has it, else the django-tasks backport, and django-tasks-db's
  DatabaseBackend): the same `shop`, and no process written anywhere (launch finds db_worker).

The `shop` task writes `<name>.started` when it begins and `<name>.done` when it ends (after
`seconds`, a query parameter of the view) into `$SHOP_MARKERS`, each holding the version its code
says (`VERSION` in shop/tasks.py, which tests edit) and the pid that ran it.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

from tests.conftest import PYTHON
from tests.heavy_project import generate_heavy

KINDS = ("startproject", "cms")  # the light ones, run under every profile
HEAVY = "heavy"
CELERY = "celery"
TASKS = "tasks"
MARKERS_ENV = "SHOP_MARKERS"  # where the shop's task leaves its markers
HOME_TEXT = "Welcome to mysite"
# The cms kind's production settings read these, as its deploy would set them.
SECRETS = {
    "DJANGO_SECRET_KEY": "generated-project-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
}


def generate(kind: str, parent: Path) -> Path:
    """A new project `mysite` under `parent`; returns its root (the directory of manage.py)."""
    root = parent / kind
    if kind == HEAVY:
        root.mkdir(parents=True)
        generate_heavy(root)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(_generated(kind), root)
    return root


_GENERATED: dict[str, Path] = {}


def _generated(kind: str) -> Path:
    """The project `startproject` (and, for `cms`, the change to a settings package) writes,
    made once per test process and copied for each test: the same files every time, for
    ~0.5 s of CPU less a copy."""
    if kind not in _GENERATED:
        root = Path(tempfile.mkdtemp(prefix="launch-generated-")) / kind
        atexit.register(shutil.rmtree, root.parent, ignore_errors=True)
        root.mkdir()
        # Made by the Django of the interpreter that runs launch (in scripts/installed, a
        # corner's).
        subprocess.run(
            [PYTHON, "-m", "django", "startproject", "mysite", str(root)],
            check=True, capture_output=True, timeout=60,
        )
        if kind == "cms":
            _to_settings_package(root)
        elif kind in (CELERY, TASKS):
            _with_shop(root, kind)
        _GENERATED[kind] = root
    return _GENERATED[kind]


def deployable(root: Path) -> Path:
    """What a person changes in a `startproject` site before a prod profile serves it (launch
    refuses DEBUG = True and the django-insecure- key): a key of its own, DEBUG off, the hosts
    it answers to. Returns `root`."""
    path = root / "mysite" / "settings.py"
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("SECRET_KEY = "):
            line = f'SECRET_KEY = "{SECRETS["DJANGO_SECRET_KEY"]}"'
        elif line == "DEBUG = True":
            line = "DEBUG = False"
        elif line == "ALLOWED_HOSTS = []":
            line = 'ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]'
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return root


def _to_settings_package(root: Path) -> None:
    package = root / "mysite"
    original = (package / "settings.py").read_text()
    (package / "settings.py").unlink()
    (package / "asgi.py").unlink()
    settings = package / "settings"
    settings.mkdir()
    (settings / "__init__.py").write_text("")
    base = (
        original.replace(
            "BASE_DIR = Path(__file__).resolve().parent.parent",
            "BASE_DIR = Path(__file__).resolve().parent.parent.parent",
        )
        .split("# SECURITY WARNING: keep the secret key")[0]
        + original.split("# Application definition")[1].join(["# Application definition", ""])
    )
    base = base.replace("'DIRS': [],", "'DIRS': [BASE_DIR / 'mysite' / 'templates'],")
    base += textwrap.dedent(
        """
        STATICFILES_DIRS = [BASE_DIR / "mysite" / "static"]
        STATIC_ROOT = BASE_DIR / "static"
        MEDIA_ROOT = BASE_DIR / "media"
        MEDIA_URL = "/media/"
        STORAGES = {
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
            },
        }
        """
    )
    (settings / "base.py").write_text(base)
    (settings / "dev.py").write_text(
        "from .base import *  # noqa\n\nDEBUG = True\n"
        'SECRET_KEY = "django-insecure-dev-only-key-for-the-generated-project"\n'
        'ALLOWED_HOSTS = ["*"]\n'
    )
    (settings / "production.py").write_text(
        "import os\n\nfrom .base import *  # noqa\n\nDEBUG = False\n"
        'SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")\n'
        'ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h]\n'
    )
    for name, module in (("manage.py", "dev"), ("mysite/wsgi.py", "production")):
        path = root / name
        text = path.read_text().replace("'mysite.settings'", f"'mysite.settings.{module}'")
        path.write_text(text)
    (package / "templates").mkdir()
    (package / "templates" / "home.html").write_text(
        "{% load static %}<html><head>"
        '<link rel="stylesheet" href="{% static \'css/site.css\' %}"></head>'
        f"<body><h1>{HOME_TEXT}</h1></body></html>\n"
    )
    (package / "static" / "css").mkdir(parents=True)
    (package / "static" / "css" / "site.css").write_text("h1 { color: teal; }\n")
    urls = package / "urls.py"
    urls.write_text(
        urls.read_text()
        .replace(
            "from django.urls import path",
            "from django.urls import path\nfrom django.views.generic import TemplateView",
        )
        .replace(
            "path('admin/', admin.site.urls),",
            "path('admin/', admin.site.urls),\n"
            "    path('', TemplateView.as_view(template_name='home.html')),",
        )
    )


# The shop app of the `celery` and `tasks` kinds: its task, in each framework's words.
_TASK_BODY = f"""\
VERSION = "v1"


def _marker(name, stage):
    path = Path(os.environ["{MARKERS_ENV}"]) / f"{{name}}.{{stage}}"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{{VERSION}} {{os.getpid()}}\\n")
    os.replace(partial, path)  # whole or absent, for the test reading it


def run_mark(name, seconds):
    _marker(name, "started")
    time.sleep(seconds)
    _marker(name, "done")
    return VERSION
"""
_TASKS = {
    CELERY: (
        "from celery import shared_task",
        "@shared_task",
        "mark.delay(name, seconds).id",
    ),
    # the decorator's import is chosen where the project is made, as its author would write it
    TASKS: (
        "{tasks_import}",
        "@task()",
        "mark.enqueue(name, seconds).id",
    ),
}


def _with_shop(root: Path, kind: str) -> None:
    """Add the shop app (a task, a view enqueueing it) and the framework around it."""
    decorator_import, decorator, enqueue = _TASKS[kind]
    settings = root / "mysite" / "settings.py"
    text = settings.read_text() + "\n"
    if kind == CELERY:
        text += textwrap.dedent("""\
            import os  # noqa: E402

            INSTALLED_APPS += ["shop"]

            # Celery: every CELERY_ setting is read by mysite/celery.py
            CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
            CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
            """)
        (root / "mysite" / "celery.py").write_text(textwrap.dedent("""\
            import os

            from celery import Celery

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

            app = Celery("mysite")
            app.config_from_object("django.conf:settings", namespace="CELERY")
            app.autodiscover_tasks()
            """))
        (root / "mysite" / "__init__.py").write_text(textwrap.dedent("""\
            # Celery's app is loaded when Django starts, so that @shared_task uses it.
            from .celery import app as celery_app

            __all__ = ("celery_app",)
            """))
        (root / "configs").mkdir()
        (root / "configs" / "dev.yaml").write_text(textwrap.dedent("""\
            extends: dev
            processes:
              worker:
                # Celery imports the project: an edit restarts it
                argv: [celery, -A, mysite, worker, --loglevel=INFO, --concurrency=1]
                reload: true
                stop_timeout: 20
                restart:
                  backoff_initial: 1
            """))
    else:
        backport = not _has_django_tasks()
        decorator_import = decorator_import.format(tasks_import=(
            "from django_tasks import task" if backport else "from django.tasks import task"))
        apps = '["django_tasks", "django_tasks_db", "shop"]' if backport else (
            '["django_tasks_db", "shop"]')
        text += textwrap.dedent(f"""\
            INSTALLED_APPS += {apps}

            TASKS = {{
                "default": {{
                    "BACKEND": "django_tasks_db.DatabaseBackend",
                }},
            }}
            """)
    settings.write_text(text)
    shop = root / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    (shop / "tasks.py").write_text(
        "import os\nimport time\nfrom pathlib import Path\n\n"
        f"{decorator_import}\n\n{_TASK_BODY}\n\n"
        f"{decorator}\ndef mark(name, seconds=0.0):\n    return run_mark(name, seconds)\n"
    )
    (shop / "views.py").write_text(textwrap.dedent(f"""\
        from django.http import HttpResponse

        from shop.tasks import mark


        def home(request):
            return HttpResponse("shop")


        def enqueue(request, name):
            seconds = float(request.GET.get("seconds", "0"))
            return HttpResponse(str({enqueue}))
        """))
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text() + textwrap.dedent("""\

        from shop import views as shop_views  # noqa: E402

        urlpatterns += [
            path("", shop_views.home),
            path("enqueue/<str:name>/", shop_views.enqueue),
        ]
        """))


def _has_django_tasks() -> bool:
    """Whether the Django that runs launch ships `django.tasks` (6.0 and newer)."""
    found = subprocess.run(
        [PYTHON, "-c", "import importlib.util as u; print(bool(u.find_spec('django.tasks')))"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return found.stdout.strip() == "True"
