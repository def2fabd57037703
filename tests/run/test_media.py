"""Media files in prod: `static: {media: true}` serves MEDIA_ROOT at MEDIA_URL through the
launcher's app wrapper, under WSGI and ASGI: a file uploaded while the site serves is served
with its content type, read-only and nothing else (no listing, no path out of MEDIA_ROOT, no
symlink out of it, no script run from an uploaded page). Without the key, `launch check` says
MEDIA_ROOT is not served and how to serve it."""

from __future__ import annotations

import pytest

from launcher.cli import main as launch_main
from tests.conftest import Env, Launch, free_port, get, start, wait_ok
from tests.projects import SECRETS, generate

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.mark.parametrize("profile", ["prod-wsgi", "prod-asgi"])
def test_prod_serves_uploads_under_media_url(
    env: Env, launch: list[Launch], profile: str
) -> None:
    root = generate("cms", env.tmp)
    (root / "configs").mkdir()
    (root / "configs" / f"{profile}.yaml").write_text(
        f"extends: {profile}\nstatic:\n  media: true\n")
    media = root / "media"
    (media / "uploads").mkdir(parents=True)
    port = free_port()
    item = start(launch, env, profile, "--bind", f"127.0.0.1:{port}", cwd=root, **SECRETS)
    wait_ok(item, port)

    (media / "uploads" / "photo.png").write_bytes(PNG)  # uploaded once the site serves
    (media / "uploads" / "page.html").write_text("<script>alert(1)</script>")
    (media / "uploads" / "out.py").symlink_to(root / "mysite" / "settings" / "production.py")
    status, body, response = get(port, "/media/uploads/photo.png")
    assert (status, body, response.getheader("Content-Type")) == (200, PNG, "image/png")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Access-Control-Allow-Origin") is None
    status, _, response = get(port, "/media/uploads/page.html")
    assert status == 200 and response.getheader("Content-Security-Policy") == "sandbox"
    status, body, _ = get(port, "/media/uploads/photo.png", method="HEAD")
    assert (status, body) == (200, b"")
    status, body, _ = get(port, "/media/uploads/photo.png", headers={"Range": "bytes=0-3"})
    assert (status, body) == (206, PNG[:4])
    for path in ("/media/uploads/", "/media/uploads", "/media/uploads/missing.png",
                 "/media/../mysite/settings/production.py", "/media/uploads/out.py",
                 "/media/%2e%2e/manage.py"):
        status, body, _ = get(port, path)
        assert status == 404, (path, body[:200])
    assert get(port, "/media/uploads/photo.png", method="POST")[0] != 200
    assert item.stop() == 0


def test_check_says_media_root_is_not_served_and_how(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`launch check`, in-process (its app check still a process of its own, tagged for the
    leak check)."""
    root = generate("cms", env.tmp)
    monkeypatch.chdir(root)
    for name, value in env.vars(**SECRETS).items():
        monkeypatch.setenv(name, value)
    code = launch_main(["check", "prod-wsgi", "--bind", f"127.0.0.1:{free_port()}"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    line = next(ln for ln in out.splitlines() if "MEDIA_ROOT" in ln)
    base = (root / "mysite" / "settings" / "base.py").read_text().splitlines()
    at = next(n for n, text in enumerate(base, 1) if text.startswith("MEDIA_ROOT"))
    assert line == (
        f"note  MEDIA_ROOT = BASE_DIR / 'media'  (from mysite/settings/base.py:{at}): not "
        "served by prod-wsgi, uploads answer 404: `static: {media: true}` in the profile "
        "serves it at MEDIA_URL, or point the proxy in front at it"
    )
