"""LaunchPlan -> systemd unit text. Renders only; installing it is the user's call."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from launcher.plan.model import LaunchPlan


def render_unit(
    plan: LaunchPlan, *, launch: Sequence[str], user: str | None = None, group: str | None = None
) -> str:
    """A Type=notify unit: the launcher reports READY/RELOADING/STOPPING and pets the watchdog."""
    probe = plan.probe
    # The watchdog is fed while healthy; allow a few missed probes before systemd steps in.
    watchdog = int(probe.interval * (probe.failure_threshold + 2) + probe.timeout) + 1
    stop_timeout = int(plan.graceful_timeout) + 15
    start_timeout = int(probe.startup_timeout) + 60  # before_start steps (migrate) run first
    lines = [
        "[Unit]",
        f"Description=launcher: {plan.name} ({plan.profile.description or plan.backend})",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={' '.join(_systemd_quote(a) for a in launch)}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        f"WorkingDirectory={plan.cwd}",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStartSec={start_timeout}",
        f"TimeoutStopSec={stop_timeout}",
    ]
    if probe.enabled:
        lines.append(f"WatchdogSec={watchdog}")
    lines += [
        "Restart=on-failure",
        "RestartSec=2",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if user:
        lines.append(f"User={user}")
    if group:
        lines.append(f"Group={group}")
    lines += [
        "RuntimeDirectory=launcher-%N",
        "RuntimeDirectoryMode=0700",
        "Environment=LAUNCH_RUN_DIR=%t/launcher-%N",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectSystem=full",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RestrictRealtime=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _systemd_quote(arg: str) -> str:
    """systemd splits ExecStart like a shell, but expands `$` and `%`: escape those too."""
    quoted = shlex.quote(arg) if any(c.isspace() or c in "'\"\\" for c in arg) else arg
    return quoted.replace("%", "%%").replace("$", "$$")
