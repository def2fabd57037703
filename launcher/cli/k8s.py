"""`launch k8s NAME --image IMAGE`: print a Deployment and a Service for the profile's server,
and a Deployment for each of its other processes."""

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


# A pod's IP is assigned when it starts, and the kubelet probes from outside the container.
WILDCARD = "0.0.0.0"
ADMIN_PORT = 9100


def pod_binds(
    plan: LaunchPlan, bind: str | None, admin_bind: str | None
) -> list[tuple[str, str]]:
    """The options a pod needs that were not given: the site's TCP port and the admin
    listener on every address (the shipped profiles bind loopback, and a pod always needs
    both). A unix socket or an explicit option is left as it is, for render_k8s to judge."""
    needed = []
    if bind is None and plan.bind.port is not None and plan.bind.host not in (WILDCARD, "::"):
        needed.append(("--bind", f"{WILDCARD}:{plan.bind.port}"))
    admin = plan.admin_bind
    if admin_bind is None and (admin is None or admin.host not in (WILDCARD, "::")):
        port = admin.port if admin is not None and admin.port else ADMIN_PORT
        needed.append(("--admin-bind", f"{WILDCARD}:{port}"))
    return needed


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
        plan, image=args.image, command=command, name=args.name, lookup_env=carried.env,
        only=args.only,
    )
    print(text, end="")
    return 0
