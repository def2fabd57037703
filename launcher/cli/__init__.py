"""The `launch` command: parse arguments, pick a profile, render errors, set the exit code.

What a person reads is in DESCRIPTION and COMMANDS_HELP (`launch --help`); the commands run
in their own modules, loaded when they are used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from launcher.errors import LauncherError, LaunchError, ProfileError
from launcher.plan.overrides import ONLY, OPTIONS
from launcher.plan.secrets import Masker
from launcher.run import logs
from launcher.run.outcome import Exit
from launcher.run.signals import StartupSignals, StartupStopped

if TYPE_CHECKING:
    from launcher.plan.model import LaunchPlan
    from launcher.plan.source import PlanSource

# `launch NAME` imports no more than the supervisor needs: the profile's parsers (pydantic,
# PyYAML) load in the planner process (launcher/cli/planner.py), the other commands' modules
# when they run.

COMMANDS = (
    "show", "check", "status", "reload", "stop", "systemd-unit", "k8s", "list", "run", "schema"
)
USAGE = "launch NAME [options]\n       launch COMMAND [NAME] [options]"
DESCRIPTION = """\
Run a Django site under gunicorn or uvicorn from a YAML profile (dev, prod-wsgi, prod-asgi,
or your own), supervised: health probes, restarts, reloads that drop no request. Run it
inside your project: it finds the settings and the app by itself."""
COMMANDS_HELP = """\
commands:
  launch NAME                    run a profile in the foreground (also: launch run NAME)
  launch show NAME [--json]      the resolved profile and the equivalent command line
  launch show NAME --origins     where each value came from: file:line, ${VAR}, --bind, default
  launch check NAME              validate, check the port, import the app, Django's checks
  launch status [NAME] [--json]  a running instance: pids, workers, memory, health
  launch reload [NAME]           graceful reload; exit 1 when the new code is refused
  launch stop [NAME]             graceful stop
  launch systemd-unit NAME       print a systemd unit for the profile
  launch k8s NAME --image IMAGE  print Kubernetes Deployments (one per process type), a Service
  launch list                    the profiles `launch NAME` can see, and where it looks
  launch schema                  the JSON Schema of a profile, for editors

options for a profile (every command that takes NAME):
  --bind HOST:PORT               override the profile's bind (or unix:/PATH)
  --admin-bind HOST:PORT|PORT    the admin listener: /livez /readyz /startupz /metrics
  --log-format {text,json}       override the profile's log_format
  --only PROCESS                 one process type: web (the server) or a name in processes:
                                 (run it alone, or render it: systemd-unit, k8s, show)

NAME is a profile file's name without .yaml, looked up in the project's configs/ (nearest
first, up to the directory of manage.py), then each directory of $LAUNCH_CONFIG_DIR, then the
profiles shipped with launcher; or a path to a .yaml file. `launch COMMAND --help` for more.
"""
# `launch --version`: these distributions' versions, as installed beside launcher.
VERSIONS = ("launcher", "Django", "gunicorn", "uvicorn")


@dataclass
class ErrorLine:
    """How `launch NAME` shows an error: text, or one JSON object when `--log-format json`
    was given or, once the plan is known, its `log_format` says so."""

    log_format: str = logs.TEXT
    profile: str | None = None

    def render(self, message: str, code: int) -> str:
        return logs.render(
            self.log_format, "error", message, level="error", prefix="launch: error: ",
            profile=self.profile, fields={"exit_code": code},
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # `launch NAME`: from the first moment, a stop is noted (and ends what start-up owns), so
    # a stop at any moment is a graceful exit.
    signals = StartupSignals() if _runs_profile(args) else None
    env = dict(os.environ)
    # Errors are masked with what is known when they happen: the environment, then the plan.
    masker = [Masker.of(env)]
    error_line = ErrorLine()
    try:
        code = _dispatch(args, env, masker, error_line, signals)
        sys.stdout.flush()  # here, where a closed pipe is caught, not in the interpreter's exit
        return code
    except StartupStopped as stopped:  # not an error: one info line, exit 0
        logs.write_line(logs.render(error_line.log_format, "stopped", str(stopped),
                                    profile=error_line.profile))
        return Exit.STOPPED
    except LauncherError as exc:
        message = masker[-1].text(exc.render())
        print(error_line.render(message, exc.exit_code), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`launch show NAME | head -1`): stop quietly, as `cat` would.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        if signals is not None:
            signals.restore()


def _runs_profile(argv: Sequence[str]) -> bool:
    """Whether the command line runs a profile (`launch NAME`, `launch run NAME`, ...)."""
    if not argv or argv[0] in (*COMMANDS, "help", "-h", "--help", "--version"):
        return argv[:1] == ["run"]
    return True


def versions(names: Sequence[str] = VERSIONS) -> str:
    """`launch --version`: launcher's, Python's and the servers' versions, one per line."""
    from importlib import metadata

    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "not installed"

    lines = [f"{names[0]} {version(names[0])}"]
    lines.append(f"Python {'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})")
    lines += [f"{name} {version(name)}" for name in names[1:]]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """A usage error is one line and exit 2, as every other bad input is (not argparse's usage
    block); `launch run` is called what a person types, `launch NAME`."""

    def error(self, message: str) -> NoReturn:
        prog = "launch" if self.prog == "launch run" else self.prog
        raise LaunchError(f"{message}", f"`{prog} --help` lists what it takes")


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the versions of launcher, Python, Django and the servers")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(versions())
        parser.exit(0)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="launch",
        usage=USAGE,
        description=DESCRIPTION,
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    # The commands are listed in the epilog, as a person types them.
    sub = parser.add_subparsers(dest="command", prog="launch", help=argparse.SUPPRESS)

    def profile_command(
        name: str, help_text: str, usage: str | None = None
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, usage=usage)
        p.add_argument(
            "profile", nargs="?", metavar="NAME", help="profile name, or a path to a .yaml file"
        )
        p.add_argument("--config", help="profile file (instead of a name)")
        p.add_argument("--bind", help="override the profile's bind: HOST:PORT or unix:/PATH")
        p.add_argument("--admin-bind", help="the admin listener (admin.bind): HOST:PORT or PORT")
        p.add_argument(
            "--log-format", choices=(logs.TEXT, logs.JSON),
            help="override the profile's log_format",
        )
        p.add_argument(
            ONLY, metavar="PROCESS", help="one process type: web (the server), or a name in "
            "the profile's processes: (or its Procfile's)",
        )
        return p

    profile_command(
        "run", "run a profile in the foreground, supervised (the default command)",
        "launch [run] NAME [--bind HOST:PORT] [--admin-bind HOST:PORT] "
        "[--log-format {text,json}]",
    )
    show = profile_command("show", "print the resolved profile and the equivalent command")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument(
        "--origins", action="store_true", help="where each value came from (file:line, ...)"
    )
    profile_command("check", "validate a profile without starting it")
    unit = profile_command("systemd-unit", "print a systemd unit file for a profile")
    unit.add_argument("--user", help="User= of the unit")
    unit.add_argument("--group", help="Group= of the unit")
    unit.add_argument(
        "--systemd-version",
        help="render for this systemd (default: this machine's; 253+ gets Type=notify-reload)",
    )
    kube = profile_command("k8s", "print a Kubernetes Deployment and Service for a profile")
    kube.add_argument(
        "--image", required=True, help="the container image that holds the project and "
        "launcher, e.g. registry.example.com/mysite:1.4",
    )
    kube.add_argument("--name", help="the objects' name (default: the profile's)")
    for name, help_text in (
        ("status", "show a running instance"),
        ("reload", "graceful reload"),
        ("stop", "graceful stop"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("profile", nargs="?", help="profile name (default: the only one running)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for an answer")
    sub.add_parser(
        "list", help="the profiles `launch NAME` can see, where each comes from, and the order"
    )
    sub.add_parser("schema", help="print the JSON Schema of a profile (for editors)")
    return parser


def _dispatch(
    argv: list[str], env: dict[str, str], masker: list[Masker], error_line: ErrorLine,
    signals: StartupSignals | None = None,
) -> int:
    if argv[:1] == ["help"]:  # `launch help [COMMAND]`, as git and pip take it
        argv = [argv[1], "--help"] if argv[1:2] and argv[1] in COMMANDS else ["--help"]
    bare_profile = argv and not argv[0].startswith("-") and argv[0] not in COMMANDS
    if bare_profile or (argv and argv[0] in ("--config", ONLY, *OPTIONS)):
        argv = ["run", *argv]
    parser = _parser()
    args = parser.parse_args(argv)
    cwd = Path.cwd()
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "run":
        return _run(args, cwd, env, masker, error_line, signals or StartupSignals())
    if args.command == "list":
        from launcher.cli.listing import list_text

        print(list_text(cwd, env))
        return 0
    if args.command == "schema":
        from launcher.plan.profile_schema import profile_json_schema

        print(json.dumps(profile_json_schema(), indent=2))
        return 0
    if args.command in ("status", "reload", "stop"):
        from launcher.cli import remote

        return remote.remote(args, env, masker[-1])
    from launcher.cli import check, show

    source = _source(args, cwd, env)
    loaded = source.load()
    plan = source.plan(loaded)  # `show --origins` refuses what `show` refuses
    masker.append(plan.masker(env))
    if args.only is not None:
        from launcher.plan.processes import check_only

        check_only(plan, args.only)
    if args.command == "show" and args.origins:
        return show.show_origins(loaded, plan, as_json=args.json)
    if args.command == "show":
        resolved = loaded.profile.model_dump(mode="json")
        return show.show(plan, resolved, masker[-1], as_json=args.json, only=args.only)
    if args.command == "check":
        return check.check(plan, env, masker[-1])
    if args.command == "systemd-unit":
        from launcher.cli import unit as cli_unit

        return cli_unit.systemd_unit(plan, loaded, args, cwd, env, _options(args))
    if args.command == "k8s":
        from launcher.cli.k8s import k8s, pod_binds

        defaults = pod_binds(plan, args.bind, args.admin_bind)
        if defaults:  # into the container's command, so what runs is what `launch show` shows
            for option, value in defaults:
                setattr(args, option[2:].replace("-", "_"), value)
            source = _source(args, cwd, env)
            loaded = source.load()
            plan = source.plan(loaded)
        return k8s(plan, loaded, args, cwd, env, _options(args))
    raise AssertionError(f"unhandled command {args.command}")


def _run(
    args: argparse.Namespace,
    cwd: Path,
    env: Mapping[str, str],
    masker: list[Masker],
    error_line: ErrorLine,
    signals: StartupSignals,
) -> int:
    """Run a profile: the planner makes the plan while the run layer loads here, and reloads
    ask it again. `signals` has noted the signals since `launch` began."""
    from launcher.run.planner import Planner

    error_line.profile = args.config or args.profile
    if args.log_format == logs.JSON:
        error_line.log_format = logs.JSON  # a bad profile is told as JSON too
    planner = Planner(_name(args), cwd=cwd, overrides=_overrides(args))
    try:
        pending = planner.start()  # first: making the plan is the longest part of a start
        with signals.owning(pending.pid):
            from launcher.run.startup import run_plan

            plan = pending.result(lambda: signals.stopping)
        signals.raise_if_stopping()
    except BaseException:
        signals.restore()
        raise
    assert plan is not None
    _know(plan, env, masker, error_line)
    if args.only is not None and args.only not in plan.process_types():
        raise ProfileError(None, None, ONLY, f"no process type {args.only!r} in profile "
                           f"{plan.name} (it has: {', '.join(plan.process_types())})")
    if args.only is not None:  # one process type: the server (web) alone, or one process
        only = plan.process(args.only)
        plan = dataclasses.replace(plan, processes=(only,) if only else ())
        return run_plan(plan, env, planner, signals, serve=only is None)
    return run_plan(plan, env, planner, signals)


def _know(plan: LaunchPlan, env: Mapping[str, str], masker: list[Masker],
          error_line: ErrorLine) -> None:
    """From here on errors are masked and shown as the plan says."""
    masker.append(plan.masker(env))
    error_line.log_format, error_line.profile = plan.log_format, plan.name


def _name(args: argparse.Namespace) -> str:
    name: str | None = args.config or args.profile
    if not name:
        raise LaunchError("which profile?", "give a name such as dev, prod-wsgi, prod-asgi")
    return name


def _source(args: argparse.Namespace, cwd: Path, env: Mapping[str, str]) -> PlanSource:
    """The profile named on the command line, as read from here."""
    from launcher.plan.source import PlanSource

    return PlanSource(
        _name(args),
        cwd=cwd,
        env=env,
        python=sys.executable,
        cpus=os.cpu_count() or 1,
        overrides=_overrides(args),
        defer_env=args.command in ("systemd-unit", "k8s"),
    )


def _options(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The overriding options given (`--bind`, `--admin-bind`, `--log-format`), as typed."""
    given = [(option, getattr(args, option[2:].replace("-", "_"))) for option in OPTIONS]
    return [(option, value) for option, value in given if value is not None]


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {OPTIONS[option]: value for option, value in _options(args)}
