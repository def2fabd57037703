"""Which running instance `launch status/reload/stop [NAME]` addresses (cli/remote.choose): a
table of where it runs and what runs, no processes. tests/e2e/test_instances.py proves the
wiring with real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.cli.remote import Choice, choose
from launcher.run.control import Instance

A, B, NOWHERE = Path("/srv/a"), Path("/srv/b"), Path("/home/me")


def inst(name: str, project: Path | None, pid: int = 0) -> Instance:
    state = {"profile": name, "project": str(project), "supervisor_pid": pid or None}
    return Instance(name, project, Path(f"/run/{name}-{project}"), state)


A_DEV, B_DEV = inst("dev", A, 11), inst("dev", B, 22)
A_PROD = inst("prod-wsgi", A, 12)
HERE_DEV = inst("dev", NOWHERE, 33)  # started outside any project, from /home/me

CASES = [
    # (command, name, here, inside, running) -> chosen | listing | refusal words
    # Inside a project: its own instances only.
    ("status", "dev", A, True, [A_DEV, B_DEV], A_DEV),
    ("stop", "dev", B, True, [A_DEV, B_DEV], B_DEV),
    ("reload", None, A, True, [A_DEV, B_DEV], A_DEV),
    ("status", None, A, True, [A_DEV, A_PROD, B_DEV], (A_DEV, A_PROD)),
    ("stop", None, A, True, [A_DEV, A_PROD, B_DEV],
     "several profiles are running for /srv/a (dev, prod-wsgi): name one"),
    ("status", "dev", A, True, [B_DEV],
     "profile 'dev' is not running for /srv/a; running elsewhere: dev for /srv/b "
     "(launcher pid 22)"),
    ("stop", None, A, True, [B_DEV],
     "nothing is running for /srv/a; running elsewhere: dev for /srv/b (launcher pid 22)"),
    ("reload", "prod-wsgi", A, True, [A_DEV, B_DEV],
     "profile 'prod-wsgi' is not running for /srv/a (running here: dev)"),
    ("status", "dev", A, True, [], "profile 'dev' is not running for /srv/a"),
    # Outside every project: status lists; a name acts when it runs for one project only.
    ("status", None, NOWHERE, False, [A_DEV, A_PROD, B_DEV], (A_DEV, A_PROD, B_DEV)),
    ("status", None, NOWHERE, False, [], "nothing is running"),
    ("status", "prod-wsgi", NOWHERE, False, [A_DEV, A_PROD, B_DEV], A_PROD),
    ("status", "dev", NOWHERE, False, [A_DEV, A_PROD, B_DEV], (A_DEV, B_DEV)),
    ("reload", "prod-wsgi", NOWHERE, False, [A_DEV, A_PROD, B_DEV], A_PROD),
    ("stop", "dev", NOWHERE, False, [A_DEV, B_DEV],
     "profile 'dev' is running for several projects: dev for /srv/a (launcher pid 11), "
     "dev for /srv/b (launcher pid 22); run 'launch stop dev' in the project's directory"),
    ("reload", None, NOWHERE, False, [B_DEV], B_DEV),
    ("stop", None, NOWHERE, False, [A_DEV, B_DEV],
     "several profiles are running: dev for /srv/a (launcher pid 11), dev for /srv/b "
     "(launcher pid 22); run 'launch stop NAME' in the project's directory"),
    ("stop", "prod-asgi", NOWHERE, False, [A_DEV],
     "profile 'prod-asgi' is not running (running: dev for /srv/a (launcher pid 11))"),
    # Started outside any project: the directory it was started from is its project.
    ("stop", "dev", NOWHERE, False, [HERE_DEV, A_DEV, B_DEV], HERE_DEV),
    ("status", None, NOWHERE, False, [HERE_DEV, A_DEV], HERE_DEV),
    # An instance whose state file says no project yet is somewhere else.
    ("status", None, A, True, [inst("dev", None)],
     "nothing is running for /srv/a; running elsewhere: dev for (unknown)"),
]


@pytest.mark.parametrize(("command", "name", "here", "inside", "running", "expected"), CASES)
def test_choose(command: str, name: str | None, here: Path, inside: bool,
                running: list[Instance], expected: object) -> None:
    got = choose(command, name, here, inside, running)
    if isinstance(expected, Instance):
        assert got == Choice(instance=expected)
    elif isinstance(expected, tuple):
        assert got == Choice(listing=expected)
    else:
        assert got.instance is None and got.listing is None
        assert str(expected) in got.refusal, got.refusal
