"""The site's other processes in the plan: the profile's `processes:`, then those the project's
own files call for (its Procfile, the tasks framework's worker), each with why it runs.

A profile's entry wins over a found one of the same name, and `NAME: false` switches a found one
off; layering across `extends:` happens in the loader, by name.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from pathlib import Path

from launcher import wire
from launcher.errors import ProfileError
from launcher.plan.loader import LoadedProfile
from launcher.plan.model import Command, LaunchPlan, ProcessPlan, RestartPolicy
from launcher.plan.procfile import PROCFILE, WEB, expand
from launcher.plan.project import DB_WORKER, Project
from launcher.plan.schema import Process

PROFILE = "the profile"


def expand_found(
    project: Project, env: Mapping[str, str], *, keep_unset: bool
) -> tuple[Project, tuple[str, ...]]:
    """The project with its Procfile's `$NAME`s replaced from `env` (the caller's environment
    and the profile's `env:`), and the names unset there. Unset, it is an error naming the
    Procfile's line, unless `keep_unset` (a unit or a pod sets it where it runs)."""
    missing: list[str] = []

    def words(found: tuple[str, ...], own: tuple[tuple[str, str], ...], line: int,
              name: str) -> tuple[str, ...]:
        expanded, unset = expand(found, {**env, **dict(own)}, keep_unset=keep_unset)
        if unset and not keep_unset:
            raise ProfileError(
                project.root / PROCFILE, line, name,
                f"${unset[0]} is not set (in the environment or the profile's env:)",
            )
        missing.extend(unset)
        return expanded

    steps = []
    for step in project.steps:
        if step.setting and step.setting[0] == PROCFILE:
            line = step.setting[1]
            if isinstance(step.command, str):
                command: str | tuple[str, ...] = shlex.join(
                    words(tuple(shlex.split(step.command)), (), line, step.name))
            else:
                command = words(step.command, (), line, step.name)
            step = dataclasses.replace(step, command=command)
        steps.append(step)
    processes = []
    for process in project.processes:
        if process.setting and process.setting[0] == PROCFILE:
            expanded = words(process.words, process.env, process.setting[1], process.name)
            process = dataclasses.replace(process, words=expanded)
        processes.append(process)
    found = dataclasses.replace(project, steps=tuple(steps), processes=tuple(processes))
    return found, tuple(dict.fromkeys(missing))


def plan_processes(
    loaded: LoadedProfile,
    project: Project | None,
    *,
    python: str,
    cwd: Path,
    env: Mapping[str, str],
) -> tuple[ProcessPlan, ...]:
    """The profile's processes in the order written, then the found ones it neither names
    nor switches off. `env` is the server's child environment: each process gets it, and
    its own on top."""
    p = loaded.profile

    def command(manage: bool, words: tuple[str, ...], own: Mapping[str, str]) -> Command:
        argv = (python, "-m", wire.MANAGE_MODULE, *words) if manage else words
        return Command(argv=argv, cwd=cwd, env={**env, **own}, label=shlex.join(words))

    planned = []
    for name, spec in p.processes_on().items():
        manage = spec.command is not None
        words = tuple(shlex.split(spec.command)) if spec.command is not None else spec.argv or ()
        written = loaded.origins.get(("processes", name))
        planned.append(_process(
            name, spec, command(manage, words, spec.env), manage=manage, why=PROFILE,
            origin=(written.file, written.line) if written else None,
        ))
    present = set(p.processes)
    defaults = Process(argv=("-",))
    for found in project.processes if project else ():
        commands = {pl.command.label.split()[0] for pl in planned if pl.manage}
        if found.name in present or (found.words[:1] == (DB_WORKER,) and DB_WORKER in commands):
            continue
        origin = (project.root / found.setting[0], found.setting[1]) if (
            project and found.setting) else None
        planned.append(_process(
            found.name, defaults, command(found.manage, found.words, dict(found.env)),
            manage=found.manage, why=found.why, origin=origin,
        ))
    return tuple(planned)


def _process(
    name: str, spec: Process, command: Command, *, manage: bool, why: str,
    origin: tuple[Path, int] | None,
) -> ProcessPlan:
    return ProcessPlan(
        name=name,
        command=command,
        instances=spec.instances,
        restart=RestartPolicy(**spec.restart.model_dump()),
        max_memory=int(spec.max_memory) if spec.max_memory else None,
        stop_signal=spec.stop_signal,
        stop_timeout=spec.stop_timeout,
        reload=manage or bool(spec.reload),
        manage=manage,
        why=why,
        origin=origin,
    )


def check_only(plan: LaunchPlan, name: str) -> str:
    """`--only NAME`: the server (`web`) or one of the plan's processes; one line otherwise."""
    if name not in plan.process_types():
        known = ", ".join(plan.process_types())
        raise ProfileError(
            None, None, "--only", f"no process type {name!r} in profile {plan.name} (it has: "
            f"{known}; {WEB} is the server)"
        )
    return name
