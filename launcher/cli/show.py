"""`launch show`: the resolved profile, what was found in the project, the equivalent command
a person could type; and `--origins`, where each value came from."""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping
from typing import Any

from launcher.plan.loader import LoadedProfile
from launcher.plan.model import LaunchPlan, ProcessPlan, mask_value
from launcher.plan.processes import PROFILE
from launcher.plan.secrets import Masker
from launcher.wire import MEDIA_ENV, STATIC_ROOT_ENV


def show(
    plan: LaunchPlan,
    resolved: dict[str, Any],
    masker: Masker,
    *,
    as_json: bool,
    only: str | None = None,
) -> int:
    """Everything printed goes through `masker`: env values by name, and any secret inside
    another value (a URL's password, a token interpolated into a step's argv). `only`: the
    one process type `--only` names (`web`: none of the others)."""
    processes = [p for p in plan.processes if only is None or p.name == only]
    command = plan.server_command()
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
            "admin_bind": str(plan.admin_bind) if plan.admin_bind else None,
            "log_format": plan.log_format,
            "url": plan.url,
            "smoke": list(plan.probe.smoke),  # the pages a new generation must answer
            "warnings": list(plan.warnings),
            "processes": [_process_json(process) for process in processes],
        }
        print(json.dumps(masker.data(data), indent=2))
        return 0
    lines = [f"# profile {plan.name} from {plan.source}"]
    if plan.description:
        lines.append(f"# {plan.description}")
    lines.append(
        f"backend:  {plan.backend}"
        + (f" ({plan.worker_class} workers)" if plan.backend == "gunicorn" else "")
    )
    lines += [f"# {line}" for line in detected(plan)]
    lines += [f"# warning: {warning}" for warning in plan.warnings]
    lines.append(f"app:      {plan.app or '(built from the settings)'}  ({plan.app_source})")
    lines += [f"bind:     {plan.bind}", f"workers:  {plan.workers}", f"cwd:      {plan.cwd}"]
    admin = f"{plan.admin_bind} (/livez /readyz /startupz /metrics)" if plan.admin_bind else "off"
    lines += [f"admin:    {admin}", f"logs:     {plan.log_format}"]
    lines += [f"env:      {name}={value}" for name, value in plan.masked_env().items()]
    lines += static_lines(plan)
    lines += [f"media:    {line}" for line in [media_line(plan)] if line]
    lines += [f"before:   {shlex.join(step.argv)}" for step in plan.steps]
    lines += [f"# before: {step.name} added: {step.why}"
              for step in (plan.project.steps if plan.project else ())
              if step.name in plan.found_steps]
    lines += [process_line(process) for process in processes]
    if plan.probe.enabled:
        lines.append(
            f"health:   GET {plan.probe.path} every {plan.probe.interval:g}s "
            f"(Host: {plan.probe.host}, expect {plan.probe.expected_status})"
        )
    if plan.probe.smoke:
        lines.append(f"smoke:    GET {' '.join(plan.probe.smoke)} before a start or reload "
                     "serves: a 5xx refuses it")
    if plan.watch:
        lines.append(f"watch:    {', '.join(map(str, plan.watch.roots))}")
        lines.append(f"  include {' '.join(plan.watch.include)}")
        lines.append(f"  exclude {' '.join(plan.watch.exclude)}")
    lines += ["", "# resolved profile", _yaml_dump(resolved)]
    lines.append("# equivalent command (secrets appear as $NAME: export them first)")
    lines.append(command.shell_line())
    print(masker.text("\n".join(lines)))
    return 0


def static_lines(plan: LaunchPlan) -> list[str]:
    """Where collected static files go: the settings' own STATIC_ROOT when they set one (the
    launcher's default only fills in an empty one)."""
    if plan.project is None or plan.watch is not None:
        return []
    own = plan.project.static_root
    if own is not None:
        return [f"static:   STATIC_ROOT = {own.value}  (from {own.source}: the settings' own)"]
    default = plan.env.get(STATIC_ROOT_ENV)
    if default is None:
        return []
    return [f"static:   {default}  (static.root: the settings set no STATIC_ROOT)"]


def media_line(plan: LaunchPlan) -> str | None:
    """Outside dev, whether the settings' MEDIA_ROOT is served, and how to serve it when it is
    not (uploads 404 otherwise): None when the settings set none, and in dev (served)."""
    found = plan.project.media_root if plan.project else None
    if found is None or plan.watch is not None:
        return None
    where = f"MEDIA_ROOT = {found.value}  (from {found.source})"
    if plan.env.get(MEDIA_ENV) == "1":
        return f"{where}: served at MEDIA_URL (static.media)"
    return (f"{where}: not served by {plan.name}, uploads answer 404: `static: {{media: true}}` "
            "in the profile serves it at MEDIA_URL, or point the proxy in front at it")


def process_line(process: ProcessPlan) -> str:
    """`process: NAME xN  ARGV  (where the profile wrote it, or why it was added)`."""
    if process.why != PROFILE:
        why = f"added: {process.why}"
    else:
        why = f"{process.origin[0]}:{process.origin[1]}" if process.origin else PROFILE
    argv = shlex.join(process.command.argv)
    return f"process:  {process.name} \u00d7{process.instances}  {argv}  ({why})"


def _process_json(process: ProcessPlan) -> dict[str, Any]:
    return {
        "name": process.name,
        "instances": process.instances,
        "argv": list(process.command.argv),
        "cwd": str(process.command.cwd),
        "env": {name: mask_value(name, value) for name, value in process.command.env.items()},
        "management_command": process.manage,
        "reload": process.reload,
        "restart": dataclasses.asdict(process.restart),
        "max_memory": process.max_memory,
        "stop_signal": process.stop_signal,
        "stop_timeout": process.stop_timeout,
        "why": process.why,
        "origin": f"{process.origin[0]}:{process.origin[1]}" if process.origin else None,
    }


def detected(plan: LaunchPlan) -> list[str]:
    """What was found in the project, and from which file."""
    return plan.project.describe() if plan.project else []


def show_origins(loaded: LoadedProfile, plan: LaunchPlan, *, as_json: bool) -> int:
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
        data = {
            "profile": loaded.name,
            "source": str(loaded.path),
            "lookup": _lookup_json(loaded),
            "values": rows,
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"# profile {loaded.name} from {loaded.path}: each value and where it came from")
    for line in lookup_lines(loaded):
        print(f"# {line}")
    texts = [(o.key, _short(o.value), o.source) for o in origins]
    key_width = max(len(k) for k, _, _ in texts)
    value_width = min(max(len(v) for _, v, _ in texts), 40)
    for key, value, source in texts:
        print(f"{key:<{key_width}}  {value:<{value_width}}  {source}")
    return 0


def lookup_lines(loaded: LoadedProfile) -> list[str]:
    """Which file `launch NAME` chose, in which directory of the lookup order, and the files its
    `extends:` read (launcher/plan/lookup.py)."""
    from launcher.cli.listing import order_lines

    located = loaded.located
    if located is None:
        return []
    place = located.place
    if place is None:
        lines = ["given as a path; `extends:` looks beside it, then in the lookup order:"]
    else:
        index = located.order.index(place) + 1
        lines = [
            f"chosen from {place.origin}, directory {index} of the lookup order "
            "(first match wins):"
        ]
    lines += order_lines(located.order)
    if len(loaded.chain) > 1:
        lines.append("extends: " + " -> ".join(map(str, loaded.chain)))
    return lines


def _lookup_json(loaded: LoadedProfile) -> dict[str, Any] | None:
    located = loaded.located
    if located is None:
        return None
    return {
        "from": located.place.origin if located.place else "path",
        "order": [
            {"origin": place.origin, "directory": str(place.directory)}
            for place in located.order
        ],
        "extends": [str(path) for path in loaded.chain[1:]],
    }


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

    # libyaml's emitter where PyYAML was built with it: the pure one takes seconds on a long value
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        dict(data), Dumper=dumper, sort_keys=False, default_flow_style=False
    ).rstrip()
