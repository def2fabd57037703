"""`launch list`: every profile the lookup can see, where it comes from, what it overrides, and
the order it was looked up in (launcher/plan/lookup.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from launcher.plan.lookup import Place, list_profiles, lookup_order


def order_lines(order: tuple[Place, ...]) -> list[str]:
    """The lookup order as `launch list` and `launch show --origins` print it."""
    width = max(len(place.origin) for place in order)
    return [
        f"  {i}. {place.origin:<{width}}  {place.directory}"
        + ("" if place.directory.is_dir() else "  (none)")
        for i, place in enumerate(order, 1)
    ]


def list_text(cwd: Path, env: Mapping[str, str]) -> str:
    listed = list_profiles(cwd, env)
    lines = ["# `launch NAME` looks here, first match wins:", *order_lines(lookup_order(cwd, env))]
    if not listed:
        return "\n".join([*lines, "", "no profiles found"])
    name_width = max(len("NAME"), *(len(p.name) for p in listed))
    origin_width = max(len("FROM"), *(len(p.place.origin) for p in listed))
    lines += ["", f"{'NAME':<{name_width}}  {'FROM':<{origin_width}}  PATH"]
    indent = " " * (name_width + origin_width + 4)
    for profile in listed:
        origin = profile.place.origin
        lines.append(f"{profile.name:<{name_width}}  {origin:<{origin_width}}  {profile.path}")
        lines += [f"{indent}  overrides {hidden}" for hidden in profile.hides]
    return "\n".join(lines)
