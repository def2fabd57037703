"""What the plan saw that will not work as the user expects is said when the site starts:
`launch dev` on 127.0.0.1 where the project's ALLOWED_HOSTS allow only "localhost" (every
request to the printed address would answer 400) names the file, the line and the URL that
works, and that URL does answer."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Env, Launch, free_port, get, start
from tests.projects import generate


def test_launch_dev_warns_of_allowed_hosts_that_refuse_its_url(
    env: Env, launch: list[Launch], tmp_path: Path
) -> None:
    project = generate("startproject", tmp_path)  # startproject's files, made once a process
    settings = project / "mysite" / "settings.py"
    text = settings.read_text().replace("ALLOWED_HOSTS = []", 'ALLOWED_HOSTS = ["localhost"]')
    settings.write_text(text)
    line = text.splitlines().index('ALLOWED_HOSTS = ["localhost"]') + 1
    port = free_port()
    item = start(launch, env, "dev", "--bind", f"127.0.0.1:{port}", cwd=project)
    item.wait_for("warning: ALLOWED_HOSTS", timeout=90)
    said = item.output
    assert f"ALLOWED_HOSTS (mysite/settings.py:{line}) does not allow 127.0.0.1" in said
    assert f"open http://localhost:{port}/" in said
    assert get(port, "/", headers={"Host": "127.0.0.1"})[0] == 400  # what the warning says
    assert get(port, "/", headers={"Host": f"localhost:{port}"})[0] == 200  # the named URL
    assert item.stop() == 0
