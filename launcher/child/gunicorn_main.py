"""`python -m gunicorn` with the same command line, on sockets the supervisor holds.

When gunicorn's master stops, it removes the file of every unix socket it serves, unless systemd
handed it the sockets. The supervisor binds the sockets, hands them to each generation by fd,
and removes the file itself when the site stops: at a reload, the retiring master would remove
the file its successor serves on, and the site would be gone from that path. So the arbiter here
treats the sockets it is handed as it treats systemd's.
"""

from __future__ import annotations

import sys

from gunicorn.app.base import BaseApplication
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.arbiter import Arbiter


class HandedArbiter(Arbiter):
    """gunicorn's arbiter, its sockets handed to it: as with systemd's, the files stay."""

    def __init__(self, app: BaseApplication) -> None:
        super().__init__(app)
        self.systemd = True  # gunicorn's own test before it unlinks (and before a USR2 re-exec)


class _RunsHandedArbiter(BaseApplication):
    """Sits between gunicorn's Application and BaseApplication: Application.run does what it
    does (python paths, checks), then its `super().run()` comes here instead of starting a
    plain Arbiter."""

    def run(self) -> None:
        try:
            HandedArbiter(self).run()
        except RuntimeError as exc:  # as BaseApplication.run reports a failed start
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)


class Application(WSGIApplication, _RunsHandedArbiter):
    """gunicorn's WSGI application runner, serving through HandedArbiter."""


def main() -> None:
    Application("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()


if __name__ == "__main__":
    main()
