"""The steps a project needs at deploy, found and run with no profile written: a generated
project using django-compressor with COMPRESS_OFFLINE (the real package from the registry),
whose every page is a 500 until `manage.py compress` has run after collectstatic."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYTHON, Env, Launch, free_port, get, start, wait_http
from tests.projects import deployable

# Run by scripts/installed against the built wheel in each corner, not on the editable install.
pytestmark = pytest.mark.installed

CSS = "body { color: #123456; }\n"


def compressor_project(parent: Path) -> Path:
    """`django-admin startproject mysite`, then django-compressor set up as its docs say, for
    production: DEBUG off, offline compression, a page whose CSS goes through {% compress %}."""
    root = parent / "site"
    root.mkdir(parents=True)
    subprocess.run([PYTHON, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True, timeout=60)
    deployable(root)  # a key of its own: prod refuses startproject's
    settings = root / "mysite" / "settings.py"
    text = settings.read_text()
    text = text.replace("DEBUG = True", "DEBUG = False")
    text = text.replace("ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['localhost', '127.0.0.1']")
    text = text.replace("'django.contrib.staticfiles',",
                        "'django.contrib.staticfiles',\n    'compressor',")
    text = text.replace("'DIRS': [],", "'DIRS': [BASE_DIR / 'templates'],")
    text += (
        "\nSTATIC_ROOT = BASE_DIR / 'static_root'\n"
        "STATICFILES_DIRS = [BASE_DIR / 'assets']\n"
        "STATICFILES_FINDERS = [\n"
        "    'django.contrib.staticfiles.finders.FileSystemFinder',\n"
        "    'django.contrib.staticfiles.finders.AppDirectoriesFinder',\n"
        "    'compressor.finders.CompressorFinder',\n"
        "]\n"
        "COMPRESS_OFFLINE = True\n"
    )
    settings.write_text(text)
    (root / "assets").mkdir()
    (root / "assets" / "site.css").write_text(CSS)
    (root / "templates").mkdir()
    (root / "templates" / "home.html").write_text(
        "{% load static compress %}<html><head>{% compress css %}"
        "<link rel=\"stylesheet\" href=\"{% static 'site.css' %}\">{% endcompress %}"
        "</head><body>home</body></html>"
    )
    urls = root / "mysite" / "urls.py"
    text = urls.read_text()
    text = text.replace(
        "from django.urls import path",
        "from django.urls import path\nfrom django.views.generic import TemplateView",
    )
    text = re.sub(r"(path\(['\"]admin/['\"], admin\.site\.urls\),)",
                  r"\1\n    path('', TemplateView.as_view(template_name='home.html')),", text)
    urls.write_text(text)
    return root


@pytest.mark.parametrize("profile", ["prod-wsgi", "prod-asgi"])
def test_offline_compression_is_found_and_run(
    env: Env, launch: list[Launch], profile: str
) -> None:
    root = compressor_project(env.tmp)
    shown = subprocess.run([PYTHON, "-m", "launcher", "show", profile], cwd=root,
                           env=env.vars(), capture_output=True, text=True, timeout=60)
    assert "# before: compress added: COMPRESS_OFFLINE = True (mysite/settings.py:" in shown.stdout

    port = free_port()
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{port}", cwd=root)
    wait_http(port, "/admin/login/", timeout=60)
    status, page, _ = get(port, "/")
    assert status == 200, item.output[-3000:]
    [href] = re.findall(r'href="([^"]+\.css)"', page.decode())
    assert href.startswith("/static/CACHE/css/")  # compressed offline, and served
    status, css, _ = get(port, href)
    assert (status, css) == (200, b"body{color:#123456}")
    assert item.stop() == 0
    assert "Traceback" not in item.output


def test_a_project_switches_a_found_step_off(env: Env, launch: list[Launch]) -> None:
    """`compress: false` in a project profile: compress does not run, so the page is the
    500 django-compressor answers (which is why the launcher runs it), and the start fails
    naming django-compressor's exception (the smoke request of the site's root)."""
    root = compressor_project(env.tmp)
    (root / "configs").mkdir()
    (root / "configs" / "prod-wsgi.yaml").write_text(
        "extends: prod-wsgi\nbefore_start:\n  compress: false\n"
    )
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}", cwd=root)
    assert item.wait(timeout=120) == 1, item.output[-3000:]
    assert ("server failed to start: GET / answered 500: OfflineGenerationError: You have "
            "offline compression enabled but key ") in item.output, item.output[-3000:]
    assert not (root / "static_root" / "CACHE").exists()


PO = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Log in"
msgstr "Entrez donc"
"""


def test_translations_are_compiled_once(env: Env, launch: list[Launch]) -> None:
    """A project that ships .po files only: compilemessages makes the .mo Django reads (the
    admin's login page says what the project translated), and the next start has nothing to do."""
    root = env.tmp / "site"
    root.mkdir()
    subprocess.run([PYTHON, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True, timeout=60)
    deployable(root)  # a key of its own, DEBUG off: prod refuses startproject's
    catalog = root / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    catalog.parent.mkdir(parents=True)
    catalog.write_text(PO)
    settings = root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\nLOCALE_PATHS = [BASE_DIR / 'locale']\n"
                        "LANGUAGE_CODE = 'fr'\n")
    for attempt in range(2):
        port = free_port()
        item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{port}", cwd=root)
        wait_http(port, "/admin/login/", timeout=60)
        status, page, _ = get(port, "/admin/login/")
        assert status == 200 and b"Entrez donc" in page
        assert catalog.with_suffix(".mo").is_file()
        assert item.stop() == 0
        assert ("translations already compiled" in item.output) is (attempt == 1), item.output
