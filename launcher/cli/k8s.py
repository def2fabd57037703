"""`launch k8s NAME --image IMAGE`: print a Deployment and a Service for the profile."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from launcher.plan.carry import for_pod
from launcher.plan.k8s import render_k8s
from launcher.plan.loader import LoadedProfile
from launcher.plan.model import LaunchPlan


def container_command(profile: str, options: Sequence[tuple[str, str]]) -> list[str]:
    """What the container runs, in the image's working directory (the project): the profile as
    the lookup there finds it (plan/carry.py), with the overriding options given here."""
    return ["launch", profile, *(word for option, value in options for word in (option, value))]


def k8s(
    plan: LaunchPlan,
    loaded: LoadedProfile,
    args: argparse.Namespace,
    cwd: Path,
    env: Mapping[str, str],
    options: Sequence[tuple[str, str]],
) -> int:
    carried = for_pod(loaded, cwd=cwd, env=env)
    command = container_command(carried.profile, options)
    text = render_k8s(
        plan, image=args.image, command=command, name=args.name, lookup_env=carried.env
    )
    print(text, end="")
    return 0
