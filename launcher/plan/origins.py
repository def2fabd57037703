"""Where each resolved value of a profile came from: a file and line, a flag, or the default.

`launch show NAME --origins` prints this, so a value set three `extends:` away, or filled in by
`${PORT}`, explains itself. Values are masked as everywhere else they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.plan.loader import KeyPath, LoadedProfile
from launcher.plan.model import LaunchPlan, mask_value
from launcher.plan.overrides import overriding


@dataclass(frozen=True)
class ValueOrigin:
    """One resolved value (a leaf of the profile) and its source."""

    key: str
    value: Any
    file: Path | None = None
    line: int | None = None
    via: tuple[str, ...] = ()  # `${VAR}`s that filled it in: "$PORT", "$PORT unset: its default"
    flag: str | None = None  # set on the command line, e.g. "--bind"
    found: str | None = None  # found in the project, e.g. "project: manage.py:12"

    @property
    def source(self) -> str:
        if self.flag:
            return self.flag
        if self.found:
            return self.found
        if self.file is None:
            return "default"
        where = f"{self.file}:{self.line}"
        return f"{where} via {', '.join(self.via)}" if self.via else where


def value_origins(loaded: LoadedProfile, plan: LaunchPlan | None = None) -> list[ValueOrigin]:
    """Every leaf of the resolved profile, in schema order, with where it was set; with the
    plan, what the profile leaves to the project (app, settings, chdir) as found there."""
    resolved = loaded.profile.model_dump(mode="json")
    rows = [_origin(loaded, path, value) for path, value in _leaves(loaded, resolved, ())]
    found = _found_in_project(loaded, plan) if plan else {}
    added = [found[key] for key in found if key.startswith(("before_start.", "processes."))]
    return [found.get(row.key, row) for row in rows] + added


def _found_in_project(loaded: LoadedProfile, plan: LaunchPlan) -> dict[str, ValueOrigin]:
    project = plan.project
    if project is None:
        return {}
    found: dict[str, ValueOrigin] = {}
    if loaded.profile.app is None:
        found["app"] = ValueOrigin("app", plan.app or None, found=f"project: {plan.app_source}")
    if loaded.profile.settings is None and project.settings:
        settings = project.settings
        found["settings"] = ValueOrigin(
            "settings", settings.value, found=f"project: {settings.source}"
        )
    if ("chdir",) not in loaded.origins:
        found["chdir"] = ValueOrigin(
            "chdir", str(project.root), found="project: the manage.py at or above where launch runs"
        )
    for step in project.steps:
        if step.name in plan.found_steps:
            key = f"before_start.{step.name}"
            found[key] = ValueOrigin(key, step.command, found=f"project: {step.why}")
    written = set(loaded.profile.processes)
    for process in plan.processes:
        if process.name not in written:
            key = f"processes.{process.name}"
            value = mask_value(process.name, process.command.label)
            found[key] = ValueOrigin(key, value, found=f"project: {process.why}")
    return found


def _leaves(loaded: LoadedProfile, value: Any, path: KeyPath) -> list[tuple[KeyPath, Any]]:
    """Mappings open up key by key; a list item by item only where a file wrote the list."""
    if isinstance(value, dict) and value:
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list) and value and path in loaded.origins:
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return [(path, value)]
    return [leaf for k, v in items for leaf in _leaves(loaded, v, (*path, k))]


def _origin(loaded: LoadedProfile, path: KeyPath, value: Any) -> ValueOrigin:
    key = ".".join(path)
    if isinstance(value, str):
        value = mask_value(path[-1], value)
    option = overriding(path, loaded.overrides)
    if option:
        return ValueOrigin(key, value, flag=option)
    origin = loaded.origins.get(path)
    if origin is None:
        return ValueOrigin(key, value)
    return ValueOrigin(key, value, origin.file, origin.line, origin.via)
