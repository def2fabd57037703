"""Every address in the server's log is one the site serves: gunicorn's `Listening at:` line
leaves out the private probe socket each generation gets from the supervisor (probed alone,
before it takes over), at the start and after a reload. Here, the rule that trims the line;
with a real gunicorn started and reloaded: test_runtime_insecure.py's
test_computed_debug_refuses_start_and_check_and_the_served_site_logs_only_its_address."""

from __future__ import annotations

import pytest

from launcher.child.gunicorn_logger import served


@pytest.mark.parametrize(
    ("listeners", "probe", "shown"),
    [
        ("http://127.0.0.1:8000,http://127.0.0.1:50955", "127.0.0.1:50955", "http://127.0.0.1:8000"),
        ("unix:/run/site.sock,http://127.0.0.1:50955", "127.0.0.1:50955", "unix:/run/site.sock"),
        ("http://127.0.0.1:8000,http://[::1]:8000,http://127.0.0.1:4100", "127.0.0.1:4100",
         "http://127.0.0.1:8000,http://[::1]:8000"),
        ("http://127.0.0.1:8000", None, "http://127.0.0.1:8000"),  # no probe socket named
        ("http://127.0.0.1:50955", "127.0.0.1:50955", "http://127.0.0.1:50955"),  # never empty
    ],
    ids=["tcp", "unix", "two-served", "no-probe", "only-probe"],
)
def test_the_listening_line_names_the_served_sockets(
    listeners: str, probe: str | None, shown: str
) -> None:
    assert served(listeners, probe) == shown
