"""A site that answers 5xx is not healthy: before a prod start serves and before a reload
promotes, the new generation answers the site's own pages (`health.smoke`, else its root), and
a 5xx fails the start or refuses the reload, naming the exception the launcher's app wrapper
saw. The decision and the header's encoding are tables; the wiring runs real projects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from launcher import wire
from launcher.run.health import Smoke, smoke_verdict
from tests.conftest import PYTHON, Env, Launch, free_port, get, start, wait_ok
from tests.projects import deployable, generate

# ----- which answers refuse a generation, and the one line that says why --------------------


@pytest.mark.parametrize(
    ("status", "error", "seen", "failure", "timed_out", "verdict", "message"),
    [
        (200, "", True, "", False, Smoke.PASS, "GET / answered 200"),
        # a redirect to a login page: a site that works
        (302, "", True, "", False, Smoke.PASS, "GET / answered 302"),
        # the root of a site without one (startproject)
        (404, "", True, "", False, Smoke.PASS, "GET / answered 404"),
        # a Host the site rejects: not judged, not broken
        (400, "", True, "", False, Smoke.PASS, "GET / answered 400"),
        (499, "", True, "", False, Smoke.PASS, "GET / answered 499"),
        (500, "", True, "", False, Smoke.REFUSE, "GET / answered 500"),
        (500, "RuntimeError: boom", True, "", False, Smoke.REFUSE,
         "GET / answered 500: RuntimeError: boom"),
        (502, "", True, "", False, Smoke.REFUSE, "GET / answered 502"),
        (503, "", True, "", False, Smoke.REFUSE, "GET / answered 503"),
        (599, "", True, "", False, Smoke.REFUSE, "GET / answered 599"),
        # another generation on the same socket answered (uvicorn in one process): ask again,
        # whatever it said
        (500, "", False, "", False, Smoke.AGAIN, "GET / was answered by another generation"),
        (200, "", False, "", False, Smoke.AGAIN, "GET / was answered by another generation"),
        # a worker that died on the page: no answer at all
        (None, "", False, "BadResponse: the connection closed without an answer", False,
         Smoke.REFUSE, "GET /: BadResponse: the connection closed without an answer"),
        (None, "", False, "ConnectionResetError: [Errno 104] reset", False,
         Smoke.REFUSE, "GET /: ConnectionResetError: [Errno 104] reset"),
        # slower than the probe's timeout: slow is not broken
        (None, "", False, "", True, Smoke.PASS,
         "GET /: no answer within the probe's timeout, not judged"),
    ],
)
def test_which_answers_refuse(
    status: int | None, error: str, seen: bool, failure: str, timed_out: bool, verdict: Smoke,
    message: str,
) -> None:
    assert smoke_verdict("/", status, error, seen=seen, failure=failure, timed_out=timed_out) == (
        verdict, message
    )


@pytest.mark.parametrize(
    ("text", "carried"),
    [
        ("RuntimeError: boom", "RuntimeError: boom"),
        ("ValueError: two\r\nlines\tand\x00more", "ValueError: two lines and more"),
        ("OfflineGenerationError: key \"ab%cd\" is missing", None),
        ("KeyError: 'caf\u00e9 \u2013 \U0001f600'", None),  # non-ASCII travels as UTF-8
        ("E: " + "x" * 1000, "E: " + "x" * (wire.SMOKE_ERROR_LIMIT - 6) + "..."),
    ],
)
def test_the_error_header_is_one_bounded_line(text: str, carried: str | None) -> None:
    header = wire.encode_smoke_error(text)
    assert header.isascii() and header.isprintable()  # no CR, LF or anything a header refuses
    decoded = wire.decode_smoke_error(header)
    assert decoded == (text if carried is None else carried)
    assert len(decoded) <= wire.SMOKE_ERROR_LIMIT


def test_a_forged_header_decodes_to_one_line() -> None:
    """Whatever a header holds, the supervisor prints one bounded line of it."""
    decoded = wire.decode_smoke_error("a%0D%0Ab%00c" + "%41" * 5000)
    assert decoded.startswith("a b c") and "\n" not in decoded and "\r" not in decoded
    assert len(decoded) == wire.SMOKE_ERROR_LIMIT


# ----- real projects ------------------------------------------------------------------------

VIEWS = """\
from django.http import HttpResponse


def home(request):
    {home}


def broken(request):
    raise ValueError("always\\nbroken")
"""
WORKING = 'return HttpResponse("the old page")'
RAISING = 'raise RuntimeError("boom")'


def site(parent: Path, home: str) -> Path:
    """A `startproject` site made deployable, whose root view is `home` and whose /broken/
    always raises."""
    root = deployable(generate("startproject", parent))
    write_views(root, home)
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace(
        "urlpatterns = [",
        "from mysite import views\n\nurlpatterns = [\n    path('', views.home),\n"
        "    path('broken/', views.broken),",
    ))
    return root


def write_views(root: Path, home: str) -> None:
    (root / "mysite" / "views.py").write_text(VIEWS.format(home=home))


def test_a_start_whose_root_raises_fails_naming_the_exception(env: Env, launch: list[Launch]
                                                              ) -> None:
    root = site(env.tmp, RAISING)
    item = start(launch, env, "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}", cwd=root)
    assert item.wait(timeout=120) == 1  # start failed (launcher/run/outcome.py)
    assert "server failed to start: GET / answered 500: RuntimeError: boom" in item.output, (
        item.output[-3000:]
    )
    # and where: the traceback is in the server's log (Django's settings send it nowhere)
    assert "/ answered 500 to the launcher's smoke request\nTraceback" in item.output
    assert 'raise RuntimeError("boom")' in item.output
    # nothing is left running: the `env` fixture asserts it at teardown


@pytest.mark.parametrize("profile", ["prod-wsgi", "prod-asgi"])
def test_a_reload_whose_root_raises_is_refused_and_the_old_code_serves(
    env: Env, launch: list[Launch], profile: str
) -> None:
    root = site(env.tmp, WORKING)
    port = free_port()
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{port}", cwd=root)
    wait_ok(item, port, timeout=120)

    # Ordinary clients never see the exception: not without the generation's secret, nor
    # with a wrong one.
    for headers in ({}, {wire.SMOKE_TOKEN_HEADER: "not-the-secret"}):
        status, _, response = get(port, "/broken/", headers=headers)
        assert status == 500
        assert response.getheader(wire.SMOKE_ERROR_HEADER) is None
        assert response.getheader(wire.SMOKE_SEEN_HEADER) is None

    write_views(root, RAISING)
    refused = subprocess.run([PYTHON, "-m", "launcher", "reload", profile], cwd=root,
                             env=env.vars(), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert refused.stderr.strip() == (
        "reload failed, still serving the previous code: GET / answered 500: "
        "RuntimeError: boom"
    )
    assert get(port, "/")[:2] == (200, b"the old page")
    assert item.stop() == 0
