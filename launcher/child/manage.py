"""Django management commands as the servers see the project: `python -m launcher.child.manage
migrate --noinput`. Like `python -m django`, plus the launcher's setting defaults (STATIC_ROOT
when the settings name none), so `collectstatic` fills the directory the servers serve."""

from __future__ import annotations

import sys


def main() -> None:
    from django.core.management import execute_from_command_line

    from launcher.child.app import apply_setting_defaults

    apply_setting_defaults()
    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
