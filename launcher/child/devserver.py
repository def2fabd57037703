"""The dev fork server's base tier: warm imports that survive edits of the project.

Most of a reload's time is importing what does not change between edits: uvicorn, Django and
the third-party packages a project builds on. This process imports them once, and the
settings (an edit of those restarts it), never `django.setup()`. On `spawn` (with a command
pipe and a status pipe from the supervisor) it forks a setup tier (launcher/child/devsetup.py)
that runs `django.setup()` and forks the servers: an edit of a model module costs a new setup
tier, not these imports.

What the first server of a base imported from outside the project roots, the base imports
too, once, for the setup tiers after it: those modules a throwaway fork imports cleanly before
`django.setup()` (launcher/child/devimports.py). It saves that list in the run directory; the
next base of the same project, interpreter and packages imports it as soon as it has forked
its first setup tier, without waiting for a server to tell it (launcher/child/devsaved.py).

Run as `python -m launcher.child.devserver` by the supervisor; the spec comes as JSON in argv[1];
it talks on the SOCK_SEQPACKET socket `control_fd`, one message per packet (launcher/wire.py's
dev messages). Keep this module free of threads: it forks.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path

from launcher import wire
from launcher.child import devsaved
from launcher.child.devimports import MissingRecorder, import_ahead, project_files
from launcher.child.devsetup import one_line, run_setup
from launcher.child.jsonlog import print_exception


def main(argv: list[str]) -> int:
    spec = wire.decode_spec(argv[1])
    control = socket.socket(fileno=spec["control_fd"])
    missing = MissingRecorder().install()
    try:
        _warm()
    except BaseException as exc:  # show it once; the supervisor keeps the old code serving
        if not spec.get("quiet"):
            print_exception(exc)
        _send(control, wire.Broken(kind=wire.Dev.BROKEN, message=one_line(exc)))
        return 1
    base = Base(spec, control, missing)
    _send(control, wire.Warm(kind=wire.Dev.WARM, held=base.held()))
    return base.serve()


def _warm() -> None:
    """Import the server and the framework, and read the settings (no app registry yet)."""
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
        import django.core.handlers.asgi
        import django.core.handlers.wsgi
        import django.urls  # noqa: F401
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - the settings module, imported here


class Base:
    """The base's loop: `spawn` forks a setup tier; what the first server imported from
    outside the project comes back on a pipe and is imported ahead."""

    def __init__(
        self, spec: wire.DevSpec, control: socket.socket, missing: MissingRecorder
    ) -> None:
        self.spec = spec
        self.control = control
        self.missing = missing
        self.roots = [Path(r) for r in spec["roots"]]
        self.selector = selectors.DefaultSelector()
        self.learning: tuple[int, bytearray] | None = None  # (read fd, what came so far)
        self.ahead: wire.Ahead | None = None  # once imported: counts and seconds
        self.imported: dict[str, None] = {}  # the names imported ahead, in order
        self.learned = False  # a first server told what it imported
        self.saved_path = Path(spec["saved"]) if spec.get("saved") else None
        self.key = devsaved.key(self.roots, spec["app"])
        names, why = devsaved.load(self.saved_path, self.key) if self.saved_path else (None, None)
        self.pending = names  # the saved list, imported once the first setup tier is forked
        self.stored = names  # what the file holds
        self.saved: wire.SavedList | None = None  # what became of the file, for the supervisor
        if names is not None:
            self.saved = {"path": str(self.saved_path), "modules": len(names)}
        elif why is not None:
            self.saved = {"path": str(self.saved_path), "ignored": why}

    def held(self) -> wire.Held:
        held: wire.Held = {
            "files": project_files(self.roots), "missing": self.missing.paths(self.roots)
        }
        if self.ahead is not None:
            held["ahead"] = self.ahead
        if self.saved is not None:
            held["saved"] = self.saved
        return held

    def serve(self) -> int:
        stopping: list[int] = []
        signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        while not stopping:
            ready = self.selector.select(timeout=0.2)
            # A spawn first: an edit waiting for its setup tier does not wait for learning.
            for key, _ in sorted(ready, key=lambda event: event[0].data == "learn"):
                if key.data == "learn":
                    self._learn()
                    continue
                try:
                    message, fds, _flags, _addr = socket.recv_fds(self.control, 4096, 2)
                except OSError:  # reset: the supervisor left with our words unread
                    return 0
                if not message:  # the supervisor is gone
                    return 0
                order = wire.decode_dev(message)
                if order is not None and order["kind"] is wire.Dev.SPAWN and len(fds) == 2:
                    pid = self._spawn(fds[0], fds[1])
                    _send(self.control, wire.Spawned(kind=wire.Dev.SPAWNED, pid=pid,
                                                     held=self.held()))
                    if self.pending is not None:  # now that the first setup tier runs
                        self._import_saved()
                else:
                    for fd in fds:
                        os.close(fd)
            _reap()
        return 0

    def _spawn(self, command_fd: int, status_fd: int) -> int:
        learn_r = learn_w = None
        if not self.learned and self.learning is None:
            learn_r, learn_w = os.pipe()
        gc.freeze()  # the forks never scan (and so never copy) what the base holds
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setsid()  # its own group: it and its servers are stopped together
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                self.selector.close()
                self.control.close()
                if learn_r is not None:
                    os.close(learn_r)
                if self.learning is not None:
                    os.close(self.learning[0])
                code = run_setup(self.spec, command_fd, status_fd, self.missing, learn_w)
            finally:
                os._exit(code)
        os.close(command_fd)
        os.close(status_fd)
        if learn_r is not None and learn_w is not None:
            os.close(learn_w)
            self.learning = (learn_r, bytearray())
            self.selector.register(learn_r, selectors.EVENT_READ, "learn")
        return pid

    def _learn(self) -> None:
        assert self.learning is not None
        fd, got = self.learning
        data = os.read(fd, 1 << 16)
        if data:
            got += data
            return
        self.selector.unregister(fd)
        os.close(fd)
        self.learning = None
        if not got:  # that setup tier or its first server failed: the next one tells
            return
        started = time.monotonic()
        said = wire.decode_dev(bytes(got))
        if said is None or said["kind"] is not wire.Dev.LEARNED:
            return
        names, failed = import_ahead(said["modules"], self.roots)
        self.learned = True
        self._note(names, failed, started)
        # What was learned, in the order the base imported it (a saved list first): an order
        # in which each imported cleanly, so the next base's throwaway fork keeps them all.
        learned = set(names)
        names = [n for n in self.imported if n in learned]
        saved = self.saved_path
        if names != self.stored and saved and devsaved.save(saved, self.key, names):
            self.stored = names  # for the next base

    def _import_saved(self) -> None:
        started = time.monotonic()
        names, failed = import_ahead(self.pending or [], self.roots)
        self.pending = None
        self._note(names, failed, started)
        assert self.ahead is not None
        self.ahead["saved"] = len(names)

    def _note(self, names: list[str], failed: int, started: float) -> None:
        """Count what the base holds ahead now, and the time it took."""
        self.imported.update(dict.fromkeys(names))
        before: wire.Ahead = self.ahead or {}
        self.ahead = {
            **before,
            "modules": len(self.imported),
            "failed": before.get("failed", 0) + failed,
            "seconds": round(before.get("seconds", 0) + time.monotonic() - started, 3),
        }


def _reap() -> None:
    """Setup tiers that ended (the supervisor watches them itself)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def _send(sock: socket.socket, message: wire.DevMessage) -> None:
    with contextlib.suppress(OSError):  # the supervisor is gone: the loop sees it next
        sock.send(wire.encode_packet(message))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
