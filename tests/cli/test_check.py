"""`launch check` says whether WSGI or ASGI fits the project, from what it finds in it: all sync
views and middleware -> prod-wsgi (with what ASGI would cost); async views or websocket
routing -> prod-asgi."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.child.asgi_site import generate_probe_site
from tests.conftest import Env, free_port, launch_cli
from tests.projects import deployable, generate

ROUTER = '''
import os

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')

from django.core.asgi import get_asgi_application


class ProtocolTypeRouter:
    """As Channels' router is: one app per connection type."""

    def __init__(self, application_mapping):
        self.application_mapping = application_mapping

    async def __call__(self, scope, receive, send):
        await self.application_mapping[scope["type"]](scope, receive, send)


async def chat(scope, receive, send):
    await send({"type": "websocket.close"})


application = ProtocolTypeRouter({"http": get_asgi_application(), "websocket": chat})
'''


def the_note(out: str) -> str:
    notes = [line for line in out.splitlines() if line.startswith("note ")]
    assert len(notes) == 1, out
    return notes[0]


def advice(env: Env, project: Path, profile: str) -> str:
    bind = f"127.0.0.1:{free_port()}"
    code, out, err = launch_cli(env, project, "check", profile, "--bind", bind)
    assert code == 0, out + err
    return the_note(out)


def test_a_project_with_async_views_is_told_prod_asgi_fits(env: Env) -> None:
    project = generate_probe_site(env.tmp)
    note = advice(env, project, "prod-wsgi")
    assert "prod-asgi fits this project" in note
    assert "2 async views (mysite.probe_views.async_stream, mysite.probe_views.async_where)" in note


def test_a_project_routing_websockets_is_told_prod_asgi_fits(env: Env) -> None:
    project = deployable(generate("startproject", env.tmp))
    (project / "mysite" / "asgi.py").write_text(textwrap.dedent(ROUTER))
    note = advice(env, project, "prod-asgi")
    assert "websocket routing in its ASGI app: prod-asgi fits this project" in note


IMPORT_LOG = '''
import os as _os
if _os.environ.get("IMPORT_LOG"):
    with open(_os.environ["IMPORT_LOG"], "a") as _log:
        _log.write(f"{_os.getpid()}\\n")
'''


def counted(env: Env) -> tuple[Path, Path]:
    """A `startproject` site whose settings log each interpreter that imports them."""
    project = deployable(generate("startproject", env.tmp))
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + IMPORT_LOG)
    return project, env.tmp / "imports.log"


def test_an_all_sync_project_is_checked_in_one_import_and_told_prod_wsgi_fits(env: Env) -> None:
    """The app check, Django's `check --deploy` and the WSGI/ASGI advice in one process: one
    import; the advice for an all-sync project: prod-wsgi fits, and what ASGI would cost."""
    project, imports = counted(env)
    code, out, err = launch_cli(env, project, "check", "prod-wsgi", "--bind",
                                f"127.0.0.1:{free_port()}", IMPORT_LOG=str(imports))
    assert code == 0, out + err
    assert "ok    app mysite.wsgi:application loads as WSGI (django.core.handlers.wsgi." \
        "WSGIHandler)" in out
    lines = out.splitlines()
    deploy = lines.index("ok    django check --deploy")
    assert lines[deploy + 1].startswith("      System check identified some issues:"), out
    assert "(security.W004)" in out and "System check identified" in lines[-1], out
    assert len(imports.read_text().splitlines()) == 1
    assert err == ""
    note = the_note(out)
    assert "are sync: prod-wsgi fits this project" in note
    assert "x prod-wsgi's req/s" in note and "Django's own handler" in note


def test_a_failing_django_check_is_its_report_and_exit_1(env: Env) -> None:
    project, imports = counted(env)
    urls = project / "mysite" / "urls.py"
    urls.write_text(urls.read_text() + "urlpatterns += ['not-a-pattern']\n")
    code, out, err = launch_cli(env, project, "check", "prod-wsgi", "--bind",
                                f"127.0.0.1:{free_port()}", IMPORT_LOG=str(imports))
    assert code == 1, out + err
    assert "ok    app mysite.wsgi:application loads as WSGI" in out  # told before the failure
    assert err.startswith("launch: error: django check --deploy failed:\n"
                          "SystemCheckError: System check identified some issues:\n"), err
    assert "?: (urls.E004) Your URL pattern 'not-a-pattern' is invalid." in err
    assert "Traceback" not in err
    assert len(imports.read_text().splitlines()) == 1
