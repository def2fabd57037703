"""Where a plan comes from, so it can be made again: `launch reload` and a dev edit read the
profile anew through the same path as the first launch, with no call back into the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.plan.build import build_plan
from launcher.plan.loader import LoadedProfile, load_profile
from launcher.plan.model import LaunchPlan
from launcher.plan.versions import require_supported_django


@dataclass(frozen=True)
class PlanSource:
    """A profile name or path, where `launch` ran, its environment and command-line overrides."""

    name: str
    cwd: Path
    env: Mapping[str, str]
    python: str
    cpus: int
    overrides: Mapping[str, str] = field(default_factory=dict)
    # systemd-unit, k8s: variables for the unit's EnvironmentFile (the pod's Secret) may be unset
    defer_env: bool = False

    def load(self) -> LoadedProfile:
        """The profile as read now; first, an unsupported Django is refused (every profile
        command passes here, in the project's interpreter, before the project is imported)."""
        require_supported_django()
        return load_profile(
            self.name,
            cwd=self.cwd,
            env=self.env,
            overrides=dict(self.overrides) or None,
            defer_env=self.defer_env,
        )

    def plan(self, loaded: LoadedProfile | None = None) -> LaunchPlan:
        """The plan, from `loaded` or from reading the profile now."""
        loaded = loaded or self.load()
        plan = build_plan(loaded, python=self.python, cpus=self.cpus, env=self.env, cwd=self.cwd)
        return dataclasses.replace(plan, overridden=frozenset(loaded.overrides))
