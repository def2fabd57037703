"""`launch check` says whether WSGI or ASGI fits the project, from what it finds in it: all sync
views and middleware -> prod-wsgi (with what ASGI would cost); async views or websocket
routing -> prod-asgi."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.child.asgi_site import generate_probe_site
from tests.child.test_check import launch_cli
from tests.conftest import Env, free_port
from tests.projects import generate

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


def advice(env: Env, project: Path, profile: str) -> str:
    bind = f"127.0.0.1:{free_port()}"
    code, out, err = launch_cli(env, project, "check", profile, "--bind", bind)
    assert code == 0, out + err
    notes = [line for line in out.splitlines() if line.startswith("note ")]
    assert len(notes) == 1, out
    return notes[0]


def test_an_all_sync_project_is_told_prod_wsgi_fits_and_what_asgi_costs(env: Env) -> None:
    project = generate("startproject", env.tmp)
    note = advice(env, project, "prod-asgi")
    assert "are sync: prod-wsgi fits this project" in note
    assert "x prod-wsgi's req/s" in note and "Django's own handler" in note


def test_a_project_with_async_views_is_told_prod_asgi_fits(env: Env) -> None:
    project = generate_probe_site(env.tmp)
    note = advice(env, project, "prod-wsgi")
    assert "prod-asgi fits this project" in note
    assert "2 async views (mysite.probe_views.async_stream, mysite.probe_views.async_where)" in note


def test_a_project_routing_websockets_is_told_prod_asgi_fits(env: Env) -> None:
    project = generate("startproject", env.tmp)
    (project / "mysite" / "asgi.py").write_text(textwrap.dedent(ROUTER))
    note = advice(env, project, "prod-asgi")
    assert "websocket routing in its ASGI app: prod-asgi fits this project" in note
