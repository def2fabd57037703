"""Child processes of the supervisor: each leads its own process group, is stopped by the one
escalation (`stop_escalating`), and never outlives the supervisor: the kernel sends it SIGTERM
when the supervisor dies, even by SIGKILL (PR_SET_PDEATHSIG), and a server's SIGTERM is its
graceful stop, which ends its workers too.

PR_SET_PDEATHSIG is set by util-linux's `setpriv --pdeathsig TERM --` in front of the child's
own command (`dies_with_supervisor`), never in a preexec function: Python code between fork and
exec is unsafe in a process with threads (the supervisor has its watch, health, admin and
reader threads). Without setpriv (or with one older than util-linux 2.33) a child ends with the
supervisor on every stop it is told of (the process groups), not when it is SIGKILLed."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import IO, TYPE_CHECKING

from launcher.plan.model import Command

if TYPE_CHECKING:
    import psutil

KILL_WAIT = 5.0  # seconds to wait for a process after SIGKILL
POLL = 0.02
RELAY_WAIT = 2.0  # seconds for a step's last lines once it exited (its children may hold on)
SETPRIV_DIRS = "/usr/bin:/bin"  # where util-linux puts it, when PATH does not say
SETPRIV_MAX = 1 << 20  # bytes of the setpriv program read at most (it is about 50 KiB)


def stop_escalating(
    term: Callable[[], None], kill: Callable[[], None], ended: Callable[[], bool], timeout: float
) -> bool:
    """Ask (`term`), wait up to `timeout` for `ended`, then `kill` and wait KILL_WAIT more.

    The one TERM -> wait -> KILL every child gets; True when it ended."""
    term()
    if _wait_for(ended, timeout):
        return True
    kill()
    return _wait_for(ended, KILL_WAIT)


def _wait_for(ended: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not ended():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def signal_group(pgid: int, sig: int) -> None:
    """Signal a whole process group; one that is already gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def dies_with_supervisor(
    argv: Sequence[str], cwd: str | os.PathLike[str] | None, env: Mapping[str, str] | None
) -> list[str]:
    """`argv`, run so that the kernel sends it SIGTERM when the supervisor dies, however it
    dies: `setpriv --pdeathsig TERM -- ARGV` (it sets the flag, then execs ARGV: same pid, kept
    across ARGV's own exec of a wrapper such as `newrelic-admin run-program`). The kernel ties
    the flag to the thread that forked: children are started from the supervisor's main thread.

    A program that cannot be run raises here as Popen would (FileNotFoundError,
    PermissionError), in the `cwd` and `env` (PATH) the child gets, rather than becoming
    setpriv's exit 127."""
    prefix = _setpriv()
    if prefix:
        _runnable(argv[0], cwd, env)
    return [*prefix, *argv]


def _runnable(program: str, cwd: str | os.PathLike[str] | None, env: Mapping[str, str] | None
              ) -> None:
    """Raise the OSError exec would for `program`: a path (relative to `cwd`), else a name on
    the PATH of `env`."""
    if os.sep in program:
        path = os.path.join(cwd or ".", program)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    elif shutil.which(program, path=os.pathsep.join(os.get_exec_path(env))) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


@functools.cache
def _setpriv() -> tuple[str, ...]:
    """The prefix that sets PDEATHSIG, found once per process: () where there is no setpriv,
    or one that predates --pdeathsig (util-linux 2.33), which would refuse every start. The
    option's name is looked for in the program's own option table rather than by running it:
    asking its --help is an exec on the start's path."""
    path = shutil.which("setpriv", path=os.pathsep.join(
        [os.environ.get("PATH", ""), SETPRIV_DIRS]))
    if path is None:
        return ()
    try:
        with open(path, "rb") as program:
            known = b"pdeathsig" in program.read(SETPRIV_MAX)
    except OSError:
        return ()
    return (path, "--pdeathsig", "TERM", "--") if known else ()


class ServerProcess:
    """One server process tree (a gunicorn master or uvicorn), leader of its own group."""

    def __init__(
        self, command: Command, base_env: Mapping[str, str], pass_fds: Sequence[int],
        output: int | None = None,
    ):
        """`output`: where its stdout and stderr go (a descriptor); None: the launcher's."""
        self.command = command
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            dies_with_supervisor(command.argv, command.cwd, env := command.full_env(base_env)),
            cwd=command.cwd,
            env=env,
            pass_fds=tuple(pass_fds),
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self.exit_fd = _pidfd(self.pid)

    def poll(self) -> int | None:
        return self.popen.poll()

    def close(self) -> None:
        """Release the exit descriptor; the process itself is handled by stop()."""
        if self.exit_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.exit_fd)
            self.exit_fd = None

    def send(self, sig: int) -> None:
        """Signal the leader only (gunicorn's master relays to its workers)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def group_alive(self) -> bool:
        return group_alive(self.pid)

    def stop(self, timeout: float) -> int | None:
        """Graceful: SIGTERM to the leader, up to `timeout`, then SIGKILL to the group."""
        stop_escalating(
            lambda: self.send(signal.SIGTERM),
            lambda: signal_group(self.pid, signal.SIGKILL),
            lambda: self.popen.poll() is not None,
            timeout,
        )
        if self.group_alive():  # children can outlive their leader (uvicorn's workers do)
            signal_group(self.pid, signal.SIGKILL)
        try:
            return self.popen.wait(timeout=KILL_WAIT)
        except subprocess.TimeoutExpired:
            return None

    def workers(self) -> list[psutil.Process]:
        """The worker processes: the leader's children (gunicorn, uvicorn --workers) or itself."""
        import psutil  # here: a start loads it after its server is on its way

        try:
            leader = psutil.Process(self.pid)
            children = leader.children()
        except psutil.Error:
            return []
        # uvicorn --workers also has a multiprocessing resource tracker child: not a worker.
        workers = [c for c in children if _is_worker(c)]
        return workers or [leader]


def reap_orphans(ours: Collection[int]) -> int:
    """As PID 1 (a container's CMD, a new PID namespace) every orphan of the tree becomes the
    supervisor's child: collect those that have exited, leaving its own children (`ours`) to
    their Popen objects. Returns how many were reaped."""
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return 0
    reaped = 0
    for child in children:
        if child.pid in ours:
            continue
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if child.status() == psutil.STATUS_ZOMBIE and os.waitpid(child.pid, os.WNOHANG)[0]:
                reaped += 1
    return reaped


def _pidfd(pid: int) -> int | None:
    """A descriptor that turns readable when `pid` exits (Linux 5.3+), so a supervisor can
    sleep in select() instead of polling; None where the platform has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _is_worker(proc: psutil.Process) -> bool:
    import psutil

    try:
        return "resource_tracker" not in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def start_step(
    command: Command, base_env: Mapping[str, str], relay: Callable[[str], None] | None = None
) -> subprocess.Popen[bytes]:
    """A before-start step, leading its own group (so it can be ended). Its output passes
    through, or with `relay` each line it prints (stdout and stderr) is handed to `relay`."""
    piped = subprocess.PIPE if relay is not None else None
    proc = StepProcess(
        dies_with_supervisor(command.argv, command.cwd, env := command.full_env(base_env)),
        cwd=command.cwd,
        env=env,
        stdout=piped,
        stderr=subprocess.STDOUT if relay is not None else None,
        start_new_session=True,
    )
    if relay is not None and proc.stdout is not None:
        proc.relay = threading.Thread(
            target=_relay_lines, args=(proc.stdout, relay), name="step", daemon=True
        )
        proc.relay.start()
    return proc


class StepProcess(subprocess.Popen[bytes]):
    """A step whose relayed output is all written once `wait()` has returned."""

    relay: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if self.relay is not None:
            self.relay.join(RELAY_WAIT)
        return code


def _relay_lines(stream: IO[bytes], relay: Callable[[str], None]) -> None:
    with stream:
        for raw in stream:
            relay(raw.decode(errors="replace").rstrip("\r\n"))


def end_step(proc: subprocess.Popen[bytes], grace: float) -> None:
    """End a step's whole group: SIGTERM, `grace` seconds to exit, then SIGKILL (what is left
    of the group too: the step's children)."""
    stop_escalating(
        lambda: signal_group(proc.pid, signal.SIGTERM),
        lambda: signal_group(proc.pid, signal.SIGKILL),
        lambda: proc.poll() is not None,
        grace,
    )
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
