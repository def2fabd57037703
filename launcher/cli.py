"""The `launch` command: parse arguments, pick a profile, render errors, set the exit code.

launch NAME                    run a profile (dev, prod-wsgi, prod-asgi, or your own)
launch show NAME               the resolved profile and the equivalent command line
launch show NAME --origins     where each value came from: file:line, ${VAR}, --bind, default
launch check NAME              validate, import the app, check the port, Django checks
launch status [NAME] [--json]  a running instance: pids, workers, memory, health
launch reload [NAME]           graceful reload; exit 1 when the new code is refused
launch stop [NAME]             graceful stop
launch systemd-unit NAME       print a systemd unit for the profile
launch list                    the profiles the lookup can see
launch schema                  the JSON Schema of a profile, for editors
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError, LaunchError
from launcher.plan.loader import LoadedProfile, list_profiles
from launcher.plan.model import LaunchPlan
from launcher.plan.secrets import Masker
from launcher.plan.source import PlanSource
from launcher.run.systemd import child_env

COMMANDS = ("show", "check", "status", "reload", "stop", "systemd-unit", "list", "run", "schema")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    # Errors are masked with what is known when they happen: the environment, then the plan.
    masker = [Masker.of(env)]
    try:
        code = _dispatch(args, env, masker)
        sys.stdout.flush()  # here, where a closed pipe is caught, not in the interpreter's exit
        return code
    except LauncherError as exc:
        print(f"launch: error: {masker[-1].text(exc.render())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`launch show NAME | head -1`): stop quietly, as `cat` would.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def profile_command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("profile", nargs="?", help="profile name, or a path to a .yaml file")
        p.add_argument("--config", help="profile file (instead of a name)")
        p.add_argument("--bind", help="override the profile's bind: HOST:PORT or unix:/PATH")
        return p

    profile_command("run", "run a profile (the default command)")
    show = profile_command("show", "print the resolved profile and the equivalent command")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument(
        "--origins", action="store_true", help="where each value came from (file:line, ...)"
    )
    profile_command("check", "validate a profile without starting it")
    unit = profile_command("systemd-unit", "print a systemd unit file for a profile")
    unit.add_argument("--user", help="User= of the unit")
    unit.add_argument("--group", help="Group= of the unit")
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
    sub.add_parser("list", help="list the profiles the lookup can see")
    sub.add_parser("schema", help="print the JSON Schema of a profile (for editors)")
    return parser


def _dispatch(argv: list[str], env: dict[str, str], masker: list[Masker]) -> int:
    bare_profile = argv and not argv[0].startswith("-") and argv[0] not in COMMANDS
    if bare_profile or (argv and argv[0] in ("--config", "--bind")):
        argv = ["run", *argv]
    parser = _parser()
    args = parser.parse_args(argv)
    cwd = Path.cwd()
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "list":
        for name, path in list_profiles(cwd, env).items():
            print(f"{name:<20} {path}")
        return 0
    if args.command == "schema":
        from launcher.plan.schema import profile_json_schema

        print(json.dumps(profile_json_schema(), indent=2))
        return 0
    if args.command in ("status", "reload", "stop"):
        return _remote(args, env, masker[-1])
    source = _source(args, cwd, env)
    if args.command == "show" and args.origins:
        loaded = source.load()
        plan = source.plan(loaded)  # the same refusals as `show`
        masker.append(plan.masker(env))
        return _show_origins(loaded, plan, as_json=args.json)
    plan = source.plan()
    masker.append(plan.masker(env))
    if args.command == "show":
        return _show(plan, masker[-1], as_json=args.json)
    if args.command == "check":
        return _check(plan, env, masker[-1])
    if args.command == "systemd-unit":
        from launcher.plan.unit import render_unit

        print(
            render_unit(plan, user=args.user, group=args.group, launch=_launch_argv(args)), end=""
        )
        return 0
    from launcher.run.startup import run_plan

    return run_plan(plan, env, source)


def _source(args: argparse.Namespace, cwd: Path, env: Mapping[str, str]) -> PlanSource:
    """The profile named on the command line, as read from here: the run layer reads it again
    through the same source on a reload."""
    name = args.config or args.profile
    if not name:
        raise LaunchError("which profile?", "give a name such as dev, prod-wsgi, prod-asgi")
    return PlanSource(
        name,
        cwd=cwd,
        env=env,
        python=sys.executable,
        cpus=os.cpu_count() or 1,
        overrides={"bind": args.bind} if args.bind else {},
        defer_env=args.command == "systemd-unit",
    )


def _launch_argv(args: argparse.Namespace) -> list[str]:
    """How systemd should start this profile: the same interpreter, the same profile file."""
    name = args.config or args.profile
    path = Path(name).resolve() if name.endswith((".yaml", ".yml")) or "/" in name else None
    target = str(path) if path else name
    extra = ["--bind", args.bind] if args.bind else []
    return [sys.executable, "-m", "launcher", target, *extra]


# ----- show and check -----------------------------------------------------------------------


def _show(plan: LaunchPlan, masker: Masker, *, as_json: bool) -> int:
    """Everything printed goes through `masker`: env values by name, and any secret inside
    another value (a URL's password, a token interpolated into a step's argv)."""
    command = plan.server_command()
    resolved = plan.profile.model_dump(mode="json")
    resolved["env"] = plan.masked_env()
    if as_json:
        data = {
            "profile": plan.name,
            "source": str(plan.source),
            "resolved": resolved,
            "workers": plan.workers,
            "app": plan.app,
            "app_source": plan.app_source,
            "interface": plan.interface,
            "project": str(plan.project.root) if plan.project else None,
            "cwd": str(plan.cwd),
            "env": plan.masked_env(),
            "argv": list(command.argv),
            "command": command.shell_line(),
            "watch": _watch_json(plan),
        }
        print(json.dumps(masker.data(data), indent=2))
        return 0
    lines = [f"# profile {plan.name} from {plan.source}"]
    if plan.profile.description:
        lines.append(f"# {plan.profile.description}")
    lines.append(
        f"backend:  {plan.backend}"
        + (f" ({plan.profile.worker_class} workers)" if plan.backend == "gunicorn" else "")
    )
    lines += [f"# {line}" for line in _detected(plan)]
    lines.append(f"app:      {plan.app or '(built from the settings)'}  ({plan.app_source})")
    lines += [f"bind:     {plan.bind}", f"workers:  {plan.workers}", f"cwd:      {plan.cwd}"]
    lines += [f"env:      {name}={value}" for name, value in plan.masked_env().items()]
    lines += [f"before:   {shlex.join(step.argv)}" for step in plan.steps]
    if plan.probe.enabled:
        lines.append(
            f"health:   GET {plan.probe.path} every {plan.probe.interval:g}s "
            f"(Host: {plan.probe.host}, expect {plan.probe.expected_status})"
        )
    if plan.watch:
        lines.append(f"watch:    {', '.join(map(str, plan.watch.roots))}")
        lines.append(f"  include {' '.join(plan.watch.include)}")
        lines.append(f"  exclude {' '.join(plan.watch.exclude)}")
    lines += ["", "# resolved profile", _yaml_dump(resolved)]
    lines.append("# equivalent command (secrets appear as $NAME: export them first)")
    lines.append(command.shell_line())
    print(masker.text("\n".join(lines)))
    return 0


def _detected(plan: LaunchPlan) -> list[str]:
    """What was found in the project, and from which file."""
    return plan.project.describe() if plan.project else []


def _show_origins(loaded: LoadedProfile, plan: LaunchPlan, *, as_json: bool) -> int:
    from launcher.plan.origins import value_origins

    origins = value_origins(loaded, plan)
    if as_json:
        rows = [
            {
                "key": o.key,
                "value": o.value,
                "source": o.source,
                "file": str(o.file) if o.file else None,
                "line": o.line,
                "via": list(o.via),
                "flag": o.flag,
            }
            for o in origins
        ]
        print(json.dumps({"profile": loaded.name, "source": str(loaded.path), "values": rows},
                         indent=2))
        return 0
    print(f"# profile {loaded.name} from {loaded.path}: each value and where it came from")
    texts = [(o.key, _short(o.value), o.source) for o in origins]
    key_width = max(len(k) for k, _, _ in texts)
    value_width = min(max(len(v) for _, v, _ in texts), 40)
    for key, value, source in texts:
        print(f"{key:<{key_width}}  {value:<{value_width}}  {source}")
    return 0


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = json.dumps(text)[1:-1] if any(c < " " for c in text) else text
    return text if len(text) <= width else text[: width - 3] + "..."


def _watch_json(plan: LaunchPlan) -> dict[str, Any] | None:
    if not plan.watch:
        return None
    return {
        "roots": [str(r) for r in plan.watch.roots],
        "include": list(plan.watch.include),
        "exclude": list(plan.watch.exclude),
    }


def _yaml_dump(data: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False).rstrip()


def _check(plan: LaunchPlan, env: Mapping[str, str], masker: Masker) -> int:
    print(f"ok    profile {plan.name} ({plan.source}) is valid")
    plan.check_wrapper()
    if plan.wrapper.argv:
        print(f"ok    wrap {plan.wrapper.argv[0]}")
    from launcher.plan.consistency import contradictions

    for contradiction in contradictions(plan):
        print(f"warn  {contradiction.render()}")
    _check_port(plan)
    print(f"ok    {plan.bind} is free")
    from launcher.run.startup import ImportCheck

    check = ImportCheck(plan, child_env(env))
    check.raise_if_failed()
    for line in _detected(plan):
        print(f"      {line}")
    if plan.env.get("DJANGO_SETTINGS_MODULE"):
        print(f"ok    settings {plan.env['DJANGO_SETTINGS_MODULE']} import")
    print(f"ok    app {plan.app or '(built from the settings)'} loads as {check.interface.upper()}"
          + (f" ({check.serves})" if check.serves else ""))
    for warning in check.warnings:
        print(f"warn  {warning}")
    if plan.backend == "gunicorn":
        print(f"ok    worker class {plan.profile.worker_class} imports")
    from launcher.run.checks import CheckRun

    for command in plan.checks[1:]:
        label = "django " + " ".join(
            command.argv[3:5] if plan.profile.check_deploy else command.argv[3:4]
        )
        run = CheckRun(command, child_env(env))
        run.finish()
        report = masker.text(run.report())
        if run.returncode != 0:
            raise LaunchError(f"{label} failed:\n{report}", code=1)
        print(f"ok    {label}")
        for line in report.splitlines():
            print(f"      {line}")
    return 0


def _check_port(plan: LaunchPlan) -> None:
    from launcher.run.sockets import bind_listener

    try:
        sock = bind_listener(plan.bind, 1)
    except LaunchError as exc:
        raise plan.error("bind", exc.render()) from None
    sock.close()
    if plan.bind.is_unix:
        Path(str(plan.bind.path)).unlink(missing_ok=True)


# ----- talking to a running instance --------------------------------------------------------


def _remote(args: argparse.Namespace, env: Mapping[str, str], masker: Masker) -> int:
    from launcher.run import control

    directory = control.run_dir(env)
    name = args.profile or _only_running(directory)
    timeout = args.timeout
    if args.command == "status":
        status = masker.data(control.request(directory, name, {"command": "status"}, timeout))
        print(json.dumps(status, indent=2) if args.json else _format_status(status))
        return 0
    answer = control.request(directory, name, {"command": args.command}, timeout)
    message = masker.text(str(answer.get("message", "")))
    print(message, file=sys.stdout if answer.get("ok") else sys.stderr)
    if args.command == "stop" and answer.get("ok"):
        _wait_gone(control.socket_path(directory, name), timeout)
    return 0 if answer.get("ok") else 1


def _only_running(directory: Path) -> str:
    from launcher.run import control

    names = control.running_names(directory)
    if len(names) == 1:
        return names[0]
    if not names:
        raise LaunchError("no profile is running", f"nothing in {directory}")
    raise LaunchError(f"several profiles are running ({', '.join(names)})", "name one")


def _wait_gone(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            return
        finally:
            probe.close()
        time.sleep(0.1)


def _format_status(status: Mapping[str, Any]) -> str:
    lines = [
        f"profile     {status['profile']}  ({status['backend']} on {status['bind']})",
        f"supervisor  pid {status['supervisor_pid']}",
        f"server      pid {status['server_pid']}  generation {status['generation']}",
        f"health      {status['health']}  {status.get('health_detail') or ''}".rstrip(),
        f"restarts    {status['restarts']}",
        f"last fail   {status.get('last_failure') or '-'}",
    ]
    if status.get("last_reload"):
        lines.append(f"last reload {status['last_reload']['message']}")
    lines.append(f"{'worker':>8} {'rss MiB':>8} {'uss MiB':>8} {'cpu s':>7} {'age s':>8}")
    for w in status.get("workers", []):
        lines.append(
            f"{w['pid']:>8} {w['rss'] / 2**20:>8.1f} {w['uss'] / 2**20:>8.1f} "
            f"{w['cpu_seconds']:>7.2f} {w['age']:>8.0f}"
        )
    return "\n".join(lines)
