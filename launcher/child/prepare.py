"""A server that prepares itself before it serves: the app check, Django's checks and the
before_start steps that are management commands run in the gunicorn master, while it preloads
the app (a start that pays one import).

gunicorn with `--preload` builds the app in its master before it serves a socket; a preparing
server is given `prepared_app()` as its app factory (launcher/wire.py's PREPARED_APP, uvicorn's
`--factory` alike), which answers the app check (its `Said` lines go to the status descriptor)
and imports the project, does what the supervisor orders (launcher/wire.py's `Order`s), in
order (a management-command step with `call_command`, its output streamed as manage.py's would
be; Django's `check`), builds the app when ordered (after the steps, so it sees what they
collected) and hands it to gunicorn on `Serve`. The supervisor keeps the order of the steps
(those that are not management commands it runs itself) and decides; this process only
reports. Where the server does not import the project first, `python -m
launcher.child.prepare` does the same and serves nothing: it exits when the orders end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from launcher import wire
from launcher.child import check, collector, uptodate
from launcher.child.jsonlog import lines_to


def say(status: IO[str], message: wire.SaidMessage) -> None:
    status.write(wire.encode_line(message))
    status.flush()


# Commands that leave this process unfit to serve: django-compressor's offline compression
# patches the template nodes it parses (compressor/offline/django.py), and with the cached
# loader the server's own templates are those: the admin's pages then raise NoReverseMatch on
# some starts. They run as manage.py would, in a process of their own, in their place.
OWN_PROCESS = frozenset({"compress"})


def call(words: list[str]) -> tuple[int, str | None]:
    """A management command in this process: its exit code as manage.py's would be, and
    what it raised in one line (None when it passed or said nothing)."""
    if words and words[0] in OWN_PROCESS:
        return _call_apart(words), None
    from django.core.management import call_command
    from django.core.management.base import CommandError

    try:
        call_command(*words)
    except CommandError as exc:  # what manage.py prints for it, without a traceback
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.returncode, f"{type(exc).__name__}: {exc}"
    except SystemExit as exc:
        return (exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1), None
    except Exception as exc:
        traceback.print_exc()
        return 1, raised(exc)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0, None


def raised(exc: BaseException) -> str:
    """`Type: message` of what a command raised, naming the migration it was applying when it
    was migrate (Django's executor holds it in `migration` while it applies it)."""
    line = f"{type(exc).__name__}: {exc}".splitlines()[0]
    for frame, _line in reversed(list(traceback.walk_tb(exc.__traceback__))):
        migration = frame.f_locals.get("migration")
        label, name = getattr(migration, "app_label", None), getattr(migration, "name", None)
        if isinstance(label, str) and isinstance(name, str):
            return f"{line} (applying migration {label}.{name})"
    return line


def _call_apart(words: list[str]) -> int:
    """A management command in a child process, its output where this one's goes."""
    import subprocess

    sys.stdout.flush()
    done = subprocess.run([sys.executable, "-m", wire.MANAGE_MODULE, *words], check=False,
                          capture_output=True, text=True)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    return done.returncode


def system_checks(words: list[str], quiet: bool = False) -> tuple[str | None, str]:
    """Django's `check` with `words`: None when it passed (warnings are printed unless
    `quiet`), else what it said, for the supervisor to tell in one line
    (launcher/run/diagnose.py); and what it printed, as manage.py would."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    said = io.StringIO()
    try:
        call_command(*words, stdout=said, stderr=said)
    except CommandError as exc:  # SystemCheckError is one: its text lists the failed checks
        return str(exc), said.getvalue()
    except Exception:
        return traceback.format_exc(), said.getvalue()
    text = said.getvalue()
    if "WARNINGS" in text and not quiet:
        out = lines_to(sys.stderr, "system check", "warning")
        out.write(text)
        out.flush()
    return None, text


def run_step(index: int, words: list[str], record: Path | None) -> wire.StepEnded:
    """One step: skipped when it has nothing to do, else run; what to report. `record`: where
    collectstatic's fingerprint is kept between starts."""
    why = uptodate.nothing_to_do(words, record)
    if why is not None:
        return wire.StepEnded(kind=wire.Said.STEP, index=index, exit=0, skipped=why)
    collects = words[0] == "collectstatic" and uptodate.plain(words)
    fingerprint = uptodate.static_state(words)[0] if collects else None
    code, reason = call(words)
    if code == 0 and collects:
        uptodate.record_collected(fingerprint, record)
    if words[0] == "compilemessages":
        _forget_translations()
    ended = wire.StepEnded(kind=wire.Said.STEP, index=index, exit=code)
    if code != 0 and reason:
        ended["reason"] = reason
    return ended


def _forget_translations() -> None:
    """The catalogs this process loaded before the .mo files were made (Django's checks, the
    warm URLs) are cached per language: forgotten here, as Django's own tests do when
    LOCALE_PATHS changes (django/test/signals.py), so the workers forked from it read the new
    ones."""
    from django.utils.translation import trans_real

    for name, empty in (("_translations", {}), ("_default", None)):
        if hasattr(trans_real, name):
            setattr(trans_real, name, empty)
    cache_clear = getattr(trans_real.check_for_language, "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


def setup_django() -> None:
    """django.setup() as the app's build would do it (with the launcher's setting defaults):
    management commands need the app registry; a failure is the app check's."""
    from launcher.child import app

    if not app.is_django():
        return
    try:
        app.apply_setting_defaults()
        import django

        with collector.paused():
            django.setup(set_prefix=False)
    except BaseException as exc:
        ref = os.environ.get(wire.APP_ENV) or "the app built from the settings"
        raise check.Failed("app", f"cannot load '{ref}': {check.cause(exc)}") from None


class Orders:
    """What the supervisor orders, done in turn; Django's checks once before the first step,
    as manage.py would run them."""

    def __init__(
        self, orders: IO[str], status: IO[str], record: Path | None, quiet: bool = False
    ) -> None:
        self.orders = orders
        self.status = status
        self.record = record
        self.quiet = quiet  # Django's check: its report goes only to the status
        self.checked = False
        self.stdout = sys.stdout  # the steps' output goes where manage.py's would

    def until(self, last: wire.Order) -> bool:
        """Do the orders up to `last`; False when they ended first (start-up was given up)."""
        for line in self.orders:
            order = wire.decode_order(line)
            if order is None:
                continue
            if order["kind"] is last:
                return True
            if order["kind"] is wire.Order.RUN:
                self.step(order["index"], order["words"])
            elif order["kind"] is wire.Order.CHECK:
                failure, report = system_checks(order["words"], self.quiet)
                if failure is None:
                    say(self.status, wire.Checked(kind=wire.Said.CHECKED, report=report))
                else:
                    say(self.status, wire.Refused(kind=wire.Said.ERROR, key=wire.CHECK_KEY,
                                                  message=failure))
        return False

    def steps(self) -> None:
        """Between the settings check and the app's build: import the project (while the
        supervisor runs the steps that are processes of their own), then the steps, until
        `app`."""
        setup_django()
        if not self.until(wire.Order.APP):
            sys.exit(0)

    def step(self, index: int, words: list[str]) -> None:
        started = time.monotonic()
        if not self.checked:
            self.checked = True
            with contextlib.redirect_stdout(self.stdout):
                failure = system_checks(["check"])[0]
            if failure is not None:
                say(self.status, wire.StepEnded(kind=wire.Said.STEP, index=index, exit=1,
                                                error=failure))
                return
        label: dict[str, Any] = {"step": " ".join(words), "index": index}
        out = lines_to(self.stdout, "step output", **label)
        err = lines_to(sys.stderr, "step output", **label)  # in JSON mode, as the relay does
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            said = run_step(index, words, self.record)
        out.flush()
        err.flush()
        said["seconds"] = round(time.monotonic() - started, 3)
        say(self.status, said)


def prepared_app() -> Any:
    """The app factory of a preparing server (gunicorn's preload, uvicorn's one process): the
    app, once the supervisor ordered `Serve`; the process exits when a check failed (its code)
    or the orders ended first (0: start-up was given up). uvicorn loads the app inside its
    running event loop, where Django refuses database work (SynchronousOnlyOperation): there it
    is all done in a plain thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _prepared()
    return _in_a_thread(_prepared)


def _in_a_thread(work: Callable[[], Any]) -> Any:
    """`work()` in a plain thread, joined; what it raised (SystemExit too) is raised here. A
    stop signal meanwhile ends the process, as it would a gunicorn master preloading: uvicorn's
    handlers would only note it, and a step would run on."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["value"] = work()
        except BaseException as exc:
            done["error"] = exc

    main = threading.current_thread() is threading.main_thread()
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, signal.SIG_DFL) for sig in stops} if main else {}
    thread = threading.Thread(target=run, name="prepare")
    thread.start()
    thread.join()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    if "error" in done:
        raise done["error"]
    return done["value"]


def _prepared() -> Any:
    options = wire.decode_options(os.environ.pop(wire.PREPARE_ENV, ""))
    record = Path(options["record"]) if options.get("record") else None
    status = os.fdopen(int(os.environ.pop(wire.STATUS_FD_ENV)), "w")
    orders_in = os.fdopen(int(os.environ.pop(wire.ORDERS_FD_ENV)), "r")
    orders = Orders(orders_in, status, record, options.get("quiet", False))
    with contextlib.redirect_stdout(status):  # what the project prints while it imports, too
        code, built = check.run_check(options.get("check", []), orders.steps)
    if code != 0 or not orders.until(wire.Order.SERVE):
        sys.exit(code)
    from launcher.child import app

    if app.is_django():
        from django.db import connections

        connections.close_all()  # gunicorn's workers fork from here: none may be shared
    say(status, wire.Serving(kind=wire.Said.SERVING, pid=os.getpid()))
    status.close()
    orders.orders.close()
    # What start-up loaded lives as long as the process: out of the collector's sight, the
    # workers forked from here never scan it (a scan writes to every object it visits, and
    # copies its page), at each collection and at their exit, as dev's tiers do before a fork.
    gc.freeze()
    return built


if __name__ == "__main__":
    try:
        prepared_app()  # serves nothing: exits when the orders end
    finally:
        gc.freeze()  # the exit's last collection need not scan what the project loaded (~80 ms)
