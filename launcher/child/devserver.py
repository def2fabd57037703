"""The dev fork server: a warm parent that forks a fresh uvicorn server per code change.

Most of a reload's time is importing Django and uvicorn, which do not change between edits.
This parent imports them once, runs `django.setup()` (settings, apps, models), then waits for
commands on stdin. `fork` starts a child that imports only the rest of the project (URLconf,
views) and serves the inherited socket. Parent and children report on the status fd in the
words launcher/wire.py names (`warm` lists the project files the parent imported, so a change
to one of them needs a fresh parent).

Run as `python -m launcher.child.devserver` by the supervisor; the spec comes as JSON in argv[1].
Keep this module free of threads: it forks.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from launcher import wire
from launcher.child.jsonlog import print_exception


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    status_fd = int(spec["status_fd"])
    roots = [Path(r) for r in spec["roots"]]
    try:
        _warm(spec)
    except BaseException as exc:  # show it once; the supervisor keeps the old code serving
        if not spec.get("quiet"):
            print_exception(exc)
        _say(status_fd, f"{wire.DEV_BROKEN} {_one_line(exc)}")
        return 1
    _say(status_fd, f"{wire.DEV_WARM} " + json.dumps(_project_files(roots)))
    return _serve_commands(spec, status_fd)


def _warm(spec: dict[str, Any]) -> None:
    """Import what does not change between edits: the framework, and Django's app registry."""
    import uvicorn
    import uvicorn.config
    import uvicorn.lifespan.off
    import uvicorn.protocols.http.h11_impl
    import uvicorn.protocols.websockets.auto  # noqa: F401

    from launcher.child.workers import DrainingServer  # noqa: F401

    for name in ("uvicorn.protocols.http.httptools_impl", "uvicorn.loops.uvloop"):
        with contextlib.suppress(ImportError):
            __import__(name)
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django
        import django.core.handlers.asgi
        import django.core.handlers.wsgi
        import django.urls

        django.setup(set_prefix=False)


def _project_files(roots: list[Path]) -> list[str]:
    files = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and any(Path(path).is_relative_to(r) for r in roots):
            files.append(str(Path(path).resolve()))
    return sorted(files)


def _serve_commands(spec: dict[str, Any], status_fd: int) -> int:
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    # The handler only notes the stop: raising SystemExit from it could land anywhere, even in
    # the interpreter's exit (a second TERM during atexit prints "Exception ignored in ...").
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    children: set[int] = set()
    try:
        while not stopping:
            for _key, _ in selector.select(timeout=0.1):
                line = sys.stdin.readline()
                if not line:  # the supervisor is gone
                    return 0
                command, _, generation = line.strip().partition(" ")
                if command == "fork":
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        if generation.isdigit():  # for its JSON log lines
                            os.environ[wire.LOG_GENERATION_ENV] = generation
                        os._exit(_child(spec, status_fd))
                    children.add(pid)
                    _say(status_fd, f"{wire.DEV_FORKED} {pid}")
            children -= _reap(status_fd)
        return 0
    finally:
        # Stopped alone (the kernel's SIGTERM when the supervisor died): the servers go too.
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


def _reap(status_fd: int) -> set[int]:
    """Tell the supervisor of every child that exited; their pids."""
    ended: set[int] = set()
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.add(pid)
        _say(status_fd, f"{wire.DEV_EXIT} {pid} {os.waitstatus_to_exitcode(status)}")


def _child(spec: dict[str, Any], status_fd: int) -> int:
    """Import the project's own code, then serve the inherited socket until told to stop."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    pid = os.getpid()
    try:
        import uvicorn

        from launcher.child.workers import DrainingServer

        config = uvicorn.Config(app=spec["app"], **spec["kwargs"])
        config.load()
        if os.environ.get("DJANGO_SETTINGS_MODULE"):
            from django.urls import get_resolver

            get_resolver().url_patterns  # noqa: B018 - import every view now, not on a request
    except BaseException as exc:
        print_exception(exc)
        _say(status_fd, f"{wire.DEV_FAILED} {pid} {_one_line(exc)}")
        return 1

    class ReadyServer(DrainingServer):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                _say(status_fd, f"{wire.DEV_READY} {pid}")

    sock = socket.socket(fileno=os.dup(int(spec["listen_fd"])))
    ReadyServer(config).run(sockets=[sock])
    return 0


def _say(fd: int, message: str) -> None:
    os.write(fd, (message.replace("\n", " ") + "\n").encode())


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
