"""`launch systemd-unit`: the unit for the systemd of this machine, or of the one named."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from launcher.errors import ProfileError
from launcher.plan.carry import for_unit
from launcher.plan.loader import LoadedProfile
from launcher.plan.model import LaunchPlan
from launcher.plan.overrides import ONLY
from launcher.plan.unit import render_unit

_VERSION = re.compile(r"^systemd (\d+)")


def version_option(text: str) -> int:
    """`--systemd-version`: 253, or what `systemctl --version` prints first (253.1, 253~rc1)."""
    match = re.fullmatch(r"([0-9]{1,5})(?:[.~-][0-9A-Za-z.~+-]*)?", text.strip())
    if not match:
        raise ProfileError(
            None, None, "--systemd-version", f"{text!r} is not a systemd version such as 253"
        )
    return int(match.group(1))


def installed_version() -> int | None:
    """The systemd of this machine (`systemctl --version`, else `systemd-analyze --version`);
    None when neither runs, which renders for an older one."""
    for tool in ("systemctl", "systemd-analyze"):
        path = shutil.which(tool)
        if path is None:
            continue
        try:
            result = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            continue
        match = _VERSION.match(result.stdout)
        if result.returncode == 0 and match:
            return int(match.group(1))
    return None


def systemd_unit(
    plan: LaunchPlan,
    loaded: LoadedProfile,
    args: argparse.Namespace,
    cwd: Path,
    env: Mapping[str, str],
    options: Sequence[tuple[str, str]],
) -> int:
    """The unit runs this interpreter on the profile it finds as `launch` did here, from the
    project, with the overriding options given here."""
    given = args.systemd_version
    version = version_option(given) if given is not None else installed_version()
    carried = for_unit(loaded, cwd=cwd, env=env, server_dir=plan.cwd)
    extra = [word for option, value in options for word in (option, value)]
    if args.only:
        extra += [ONLY, args.only]
    text = render_unit(
        plan,
        only=args.only,
        user=args.user,
        group=args.group,
        launch=[sys.executable, "-m", "launcher", carried.profile, *extra],
        workdir=carried.workdir,
        config_dirs=carried.config_dirs,
        systemd_version=version,
    )
    print(text, end="")
    return 0
