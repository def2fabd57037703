"""The dev fork server's setup tier: forked from the base tier (launcher/child/devserver.py),
it runs `django.setup()` (settings, apps, the project's models), then forks a fresh uvicorn
server per code change. An edit of what it imported throws only this tier away: the base,
which holds the third-party imports, forks a new one.

It reads `Fork` on its own command pipe and reports on its own status pipe (both made by the
supervisor for it) in launcher/wire.py's dev messages, one JSON object a line. Keep this
module free of threads: it forks.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
from pathlib import Path
from typing import Any

from launcher import wire
from launcher.child.collector import paused
from launcher.child.devimports import (
    MissingRecorder,
    outside_modules,
    project_files,
)
from launcher.child.jsonlog import print_exception


def run_setup(
    spec: wire.DevSpec, command_fd: int, status_fd: int, missing: MissingRecorder,
    learn_fd: int | None,
) -> int:
    """In the fork of the base: warm up, report, serve commands; the exit code."""
    roots = [Path(r) for r in spec["roots"]]
    try:
        if os.environ.get("DJANGO_SETTINGS_MODULE"):
            import django

            with paused():
                django.setup(set_prefix=False)
    except BaseException as exc:  # shown once; the supervisor keeps the old code serving
        if not spec.get("quiet"):
            print_exception(exc)
        say(status_fd, wire.Broken(kind=wire.Dev.BROKEN, message=one_line(exc)))
        return 1
    held: wire.Held = {"files": project_files(roots), "missing": missing.paths(roots)}
    say(status_fd, wire.Warm(kind=wire.Dev.WARM, held=held))
    with os.fdopen(command_fd, "r") as commands:
        return _serve_commands(spec, commands, status_fd, learn_fd)


def _serve_commands(
    spec: wire.DevSpec, commands: Any, status_fd: int, learn_fd: int | None
) -> int:
    selector = selectors.DefaultSelector()
    selector.register(commands, selectors.EVENT_READ)
    # The handler only notes the stop: raising SystemExit from it could land anywhere, even in
    # the interpreter's exit (a second TERM during atexit prints "Exception ignored in ...").
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    children: set[int] = set()
    try:
        while not stopping:
            for _key, _ in selector.select(timeout=0.1):
                line = commands.readline()
                if not line:  # the supervisor is gone
                    return 0
                order = wire.decode_dev(line)
                if order is not None and order["kind"] is wire.Dev.FORK:
                    gc.freeze()  # the servers never scan (and so never copy) what it holds
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        # for its JSON log lines
                        os.environ[wire.LOG_GENERATION_ENV] = str(order["generation"])
                        os._exit(_child(spec, status_fd, learn_fd))
                    if learn_fd is not None:  # only the first server tells what it imported
                        os.close(learn_fd)
                        learn_fd = None
                    children.add(pid)
                    say(status_fd, wire.Forked(kind=wire.Dev.FORKED, pid=pid))
            children -= _reap(status_fd)
        return 0
    finally:
        # Stopped alone (the supervisor died): the servers go too.
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
        code = os.waitstatus_to_exitcode(status)
        say(status_fd, wire.Exited(kind=wire.Dev.EXIT, pid=pid, code=code))


def _child(spec: wire.DevSpec, status_fd: int, learn_fd: int | None) -> int:
    """Import the project's own code, then serve the inherited socket until told to stop."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    pid = os.getpid()
    try:
        import uvicorn

        from launcher.child.workers import DrainingServer

        config = uvicorn.Config(app=spec["app"], **spec["kwargs"])
        with paused():
            config.load()
            if os.environ.get("DJANGO_SETTINGS_MODULE"):
                from django.urls import get_resolver

                get_resolver().url_patterns  # noqa: B018 - every view now, not on a request
    except BaseException as exc:
        print_exception(exc)
        say(status_fd, wire.Failed(kind=wire.Dev.FAILED, pid=pid, message=one_line(exc)))
        return 1
    if learn_fd is not None:  # the base imports these ahead, for the next setup tier
        with os.fdopen(learn_fd, "w") as learn:
            modules = outside_modules([Path(r) for r in spec["roots"]])
            learn.write(wire.encode_line(wire.Learned(kind=wire.Dev.LEARNED, modules=modules)))

    class ReadyServer(DrainingServer):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                say(status_fd, wire.Ready(kind=wire.Dev.READY, pid=pid))

    sock = socket.socket(fileno=os.dup(spec["listen_fd"]))
    ReadyServer(config).run(sockets=[sock])
    return 0


def say(fd: int, message: wire.DevMessage) -> None:
    """One line, in one write: the tier and its servers share the status pipe."""
    os.write(fd, wire.encode_line(message).encode())


def one_line(exc: BaseException) -> str:
    """The exception, and where the project's code raised it."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    from launcher.child.trace import where

    text = f"{type(exc).__name__}: {exc}"
    place = where(exc)
    return f"{text} ({place})" if place else text
