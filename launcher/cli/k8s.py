"""`launch k8s NAME --image IMAGE`: print a Deployment and a Service for the profile."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from launcher.errors import ProfileError
from launcher.plan.k8s import render_k8s
from launcher.plan.model import LaunchPlan


def container_command(name: str, options: Sequence[tuple[str, str]]) -> list[str]:
    """What the container runs, in the image's working directory (the project): the profile as
    named here (a relative path stays relative), with the overriding options given here."""
    return ["launch", name, *(word for option, value in options for word in (option, value))]


def k8s(plan: LaunchPlan, args: argparse.Namespace, options: Sequence[tuple[str, str]]) -> int:
    if not args.image:
        raise ProfileError(
            None,
            None,
            "--image",
            "required: the image that holds the project and the launcher, e.g. "
            "registry.example.com/mysite:1.4",
        )
    command = container_command(args.config or args.profile, options)
    print(render_k8s(plan, image=args.image, command=command, name=args.name), end="")
    return 0
