"""The address `launch dev` tells a person to open, judged against the project's ALLOWED_HOSTS
as Django would (plan/hosts.py): a table, and what project.py reads from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.plan.hosts import host_allowed, open_address
from launcher.plan.project import discover
from tests.conftest import STARTPROJECT_SETTINGS, plan, project

WHERE = "mysite/settings.py:28"


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("127.0.0.1", ("*",), True),
        ("127.0.0.1", ("localhost",), False),
        ("localhost", (".localhost",), True),  # a leading dot: the name and its subdomains
        ("app.localhost", (".localhost",), True),
        ("localhostx", (".localhost",), False),
        ("LOCALHOST", ("localhost",), True),  # case-insensitive
        ("[::1]", ("[::1]",), True),
        ("127.0.0.1", (), False),
    ],
)
def test_host_allowed_as_django_decides(host: str, patterns: tuple[str, ...],
                                        allowed: bool) -> None:
    assert host_allowed(host, patterns) is allowed


@pytest.mark.parametrize(
    ("host", "allowed", "debug", "url", "warning"),
    [
        ("127.0.0.1", ("localhost",), True, "http://localhost:8000/",
         f"ALLOWED_HOSTS ({WHERE}) does not allow 127.0.0.1: requests to "
         "http://127.0.0.1:8000/ answer 400; open http://localhost:8000/"),
        ("127.0.0.1", ("127.0.0.1", "localhost"), True, "http://127.0.0.1:8000/", None),
        ("127.0.0.1", (), True, "http://127.0.0.1:8000/", None),  # DEBUG's own loopback names
        ("::1", (), True, "http://[::1]:8000/", None),
        ("127.0.0.1", (), None, "http://127.0.0.1:8000/", None),  # DEBUG computed: not judged
        ("127.0.0.1", None, True, "http://127.0.0.1:8000/", None),  # hosts computed: not judged
        ("127.0.0.1", ("example.com",), True, "http://127.0.0.1:8000/",
         f"ALLOWED_HOSTS ({WHERE}) allows no loopback name: every request to "
         "http://127.0.0.1:8000/ answers 400 (add '127.0.0.1' for local use)"),
        ("::1", ("127.0.0.1",), True, "http://127.0.0.1:8000/",
         f"ALLOWED_HOSTS ({WHERE}) does not allow [::1]: requests to http://[::1]:8000/ "
         "answer 400; open http://127.0.0.1:8000/"),
        ("0.0.0.0", ("example.com",), True, "http://0.0.0.0:8000/", None),  # not loopback
    ],
    ids=["localhost-only", "both", "debug-empty", "debug-empty-v6", "debug-unknown",
         "computed", "none-loopback", "v6-to-v4", "wildcard-bind"],
)
def test_the_address_to_open(host: str, allowed: tuple[str, ...] | None, debug: bool | None,
                             url: str, warning: str | None) -> None:
    assert open_address(host, 8000, allowed, debug, WHERE) == (url, warning)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('ALLOWED_HOSTS = ["localhost"]\n', ("localhost",)),
        ('ALLOWED_HOSTS = ("a", "b")\nALLOWED_HOSTS += ["c"]\n', ("a", "b", "c")),
        ('ALLOWED_HOSTS = ["a"]\nALLOWED_HOSTS = ["b"]\n', ("b",)),
        ('import os\nALLOWED_HOSTS = os.environ["HOSTS"].split(",")\n', None),
        ('ALLOWED_HOSTS = ["a", HOST]\n', None),
        ("", None),
    ],
    ids=["list", "augmented", "last-wins", "computed", "mixed", "unset"],
)
def test_allowed_hosts_are_read_when_written_as_literals(
    tmp_path: Path, extra: str, expected: tuple[str, ...] | None
) -> None:
    root = project(tmp_path, STARTPROJECT_SETTINGS + extra)
    found = discover(root, dev=True, env_settings=None, profile_settings=None)
    assert (found.allowed_hosts[0] if found.allowed_hosts else None) == expected
    assert found.debug is False  # STARTPROJECT_SETTINGS writes DEBUG = False


def test_dev_plans_warn_and_prod_plans_do_not(tmp_path: Path) -> None:
    settings = STARTPROJECT_SETTINGS.replace("DEBUG = False", "DEBUG = True")
    root = project(tmp_path, settings + 'ALLOWED_HOSTS = ["localhost"]\n')
    line = len(settings.splitlines()) + 1
    dev = plan(root, "dev")
    assert dev.url.startswith("http://localhost:")
    assert dev.warnings == (
        f"ALLOWED_HOSTS (mysite/settings.py:{line}) does not allow 127.0.0.1: requests to "
        f"http://127.0.0.1:{dev.bind.port}/ answer 400; open {dev.url}",
    )
    prod = plan(root, "prod-wsgi")  # behind a proxy the site's own name comes in the request
    assert prod.warnings == () and prod.url == f"http://127.0.0.1:{prod.bind.port}/"
