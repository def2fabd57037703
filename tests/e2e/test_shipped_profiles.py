"""The shipped profiles, end to end: `launch NAME` serves the demo site for real.

Each test starts the launcher on a free loopback port, waits for /healthz, then walks the site
as a browser would (list, detail, vote with CSRF, results), hits the JSON endpoints and a static
file, stops with SIGTERM and expects exit 0 and no process left behind.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
from urllib.parse import urlencode

import psutil
import pytest

from tests.conftest import (
    PYTHON,
    ROOT,
    Env,
    Launch,
    end_process,
    free_port,
    get,
    start,
    tagged,
    wait_http,
)

LIFESPAN_UNSUPPORTED = "ASGI 'lifespan' protocol appears unsupported"
STYLE = (ROOT / "demo_site" / "polls" / "static" / "polls" / "style.css").read_bytes()
STARTUP = 60.0  # prod profiles migrate and collectstatic first; the host may be busy


def cookies(resp) -> dict[str, str]:
    jar = {}
    for header in resp.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
    return jar


def votes(port: int, choice_text: str) -> int:
    status, body, _ = get(port, "/polls/1/results/")
    assert status == 200, body[:500]
    match = re.search(rf"{re.escape(choice_text)} -- (\d+) vote", body.decode())
    assert match, body.decode()[:2000]
    return int(match[1])


def walk_the_site(port: int) -> None:
    """Every page and endpoint a visitor and a load balancer would touch."""
    status, body, resp = get(port, "/polls/")
    assert status == 200, body[:500]
    assert resp.getheader("Content-Type", "").startswith("text/html")
    assert b"favourite server?" in body

    status, body, resp = get(port, "/polls/1/")
    assert status == 200, body[:500]
    page = body.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    choice = re.search(r'name="choice" id="choice1" value="(\d+)"', page)
    label = re.search(r'id="choice1" value="\d+">\s*(\S+)', page)
    csrf_cookie = cookies(resp).get("csrftoken")
    assert token and choice and label and csrf_cookie, page
    before = votes(port, label[1])

    form = urlencode({"csrfmiddlewaretoken": token[1], "choice": choice[1]}).encode()
    status, body, resp = get(
        port, "/polls/1/vote/", method="POST", body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie}",
            "Origin": "http://localhost",
        },
    )
    assert status == 302, body[:1000]
    assert resp.getheader("Location") == "/polls/1/results/"
    assert votes(port, label[1]) == before + 1

    # without the token the same POST is refused: CSRF protection is really on
    status, _, _ = get(port, "/polls/1/vote/", method="POST", body=b"choice=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403

    for path, kind in (("/api/async/", "async"), ("/api/sync/", "sync")):
        status, body, resp = get(port, path)
        assert status == 200, body[:500]
        assert resp.getheader("Content-Type") == "application/json"
        data = json.loads(body)
        assert data["kind"] == kind
        assert data["message"] == f"hello from {kind}"

    status, body, resp = get(port, "/static/polls/style.css")
    assert status == 200, body[:500]
    assert resp.getheader("Content-Type", "").startswith("text/css")
    assert body == STYLE

    status, body, _ = get(port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, _ = get(port, "/polls/999/")
    assert status == 404


@pytest.mark.parametrize(
    ("name", "server"), [("dev", "uvicorn"), ("prod-wsgi", "gunicorn"), ("prod-asgi", "gunicorn")]
)
def test_shipped_profile_serves_the_site(
    env: Env, launch: list[Launch], name: str, server: str
) -> None:
    port = free_port()
    item = start(launch, env, name, "--bind", f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    wait_http(port, "/healthz", timeout=STARTUP)
    item.wait_for("[launch] serving", timeout=STARTUP)
    walk_the_site(port)

    assert item.stop() == 0
    output = item.output
    assert f"serving {name} on 127.0.0.1:{port}" in output
    assert "SIGTERM: stopping gracefully" in output
    assert "Traceback" not in output, output[-4000:]
    # Django has no lifespan: the launcher turns it off, so uvicorn never complains about it.
    assert LIFESPAN_UNSUPPORTED not in output
    if server == "gunicorn":
        assert output.count("Booting worker with pid") == 2  # WEB_CONCURRENCY=2
    assert (env.tmp / "db.sqlite3").is_file()  # the site used the test's own database
    if name != "dev":
        assert (env.tmp / "static" / "polls" / "style.css").is_file()  # collectstatic ran


def test_raw_uvicorn_with_lifespan_auto_does_log_the_complaint(env: Env) -> None:
    """The control for the absence check above: the line is real and would be seen."""
    port = free_port()
    log = env.tmp / "uvicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "uvicorn", "demo_site.asgi:application", "--lifespan", "auto",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT / "demo_site", env=env.vars(DJANGO_SETTINGS_MODULE="demo_site.settings"),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_http(port, "/healthz", timeout=STARTUP)
        status, body, _ = get(port, "/api/async/")
        assert (status, json.loads(body)["kind"]) == (200, "async")
    finally:
        end_process(proc)
    assert LIFESPAN_UNSUPPORTED in log.read_text(errors="replace")
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it got


# ----- stopping while the launch is still starting ------------------------------------------

CUSTOM = f"""\
chdir: {ROOT / "demo_site"}
settings: demo_site.settings
app: demo_site.wsgi:application
"""


def test_sigterm_while_the_server_starts_is_a_clean_stop(env: Env, launch: list[Launch]) -> None:
    port = free_port()
    path = env.tmp / "never-ready.yaml"  # the probe path 404s, so startup never completes
    path.write_text(CUSTOM + f"bind: 127.0.0.1:{port}\nhealth:\n  path: /never\n")
    item = start(launch, env, str(path))
    item.wait_for("Booting worker", timeout=STARTUP)
    time.sleep(1.0)  # the startup probe is running (its requests are kept out of the logs)
    code = item.stop()
    assert "server failed to start" not in item.output
    assert code == 0


def test_sigterm_during_a_before_start_step_ends_the_step(
    env: Env, launch: list[Launch]
) -> None:
    port = free_port()
    path = env.tmp / "slow-step.yaml"
    marker = f"slow-step-{env.tag}"
    path.write_text(
        CUSTOM + f"bind: 127.0.0.1:{port}\nbefore_start:\n"
        f"  - [{PYTHON}, -c, 'import time; time.sleep(30)', {marker}]\n"
    )
    item = start(launch, env, str(path))
    deadline = time.monotonic() + STARTUP
    while not step_processes(env, marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert step_processes(env, marker), item.output
    code = item.stop()
    time.sleep(0.5)
    orphans = step_processes(env, marker)
    for proc in orphans:  # clean up here, so the failure is this test's, not the fixture's
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert orphans == []
    assert code in (0, 1)
    assert not list((env.tmp / "run").rglob("*.sock"))


@pytest.mark.parametrize("server", ["gunicorn", "dev"])
@pytest.mark.parametrize("delay", [0.0, 0.15, 0.25, 0.35, 0.45, 0.7])
def test_sigterm_at_any_moment_of_start_up_leaves_nothing(
    env: Env, launch: list[Launch], delay: float, server: str
) -> None:
    """A stop landing anywhere (CLI, import check, inside a step's Popen, the dev warm parent)
    is clean and complete."""
    port = free_port()
    path = env.tmp / "slow-steps.yaml"
    step = f"  - [{PYTHON}, -c, 'import time; time.sleep(5)']\n"
    dev = "server: uvicorn\nreload: true\n" if server == "dev" else ""
    path.write_text(CUSTOM + dev + f"bind: 127.0.0.1:{port}\nbefore_start:\n" + step * 2)
    item = start(launch, env, str(path))
    time.sleep(delay)
    code = item.stop(timeout=30)
    left = tagged(env.tag)  # looked at at once: the launcher must have ended them itself
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    assert left == []
    assert "Traceback" not in item.output
    assert code in (0, -signal.SIGTERM), item.output  # 0.0: may land before Python is up


def step_processes(env: Env, marker: str) -> list[psutil.Process]:
    found = []
    for proc in tagged(env.tag):
        with contextlib.suppress(psutil.Error):
            if marker in proc.cmdline():
                found.append(proc)
    return found
