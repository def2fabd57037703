"""The Django versions launcher supports, and the gate that refuses any other before a plan.

launcher is installed into the project's own virtualenv, beside the project's pinned Django; a
project can force an older Django after launcher was installed (`pip install 'django==4.2.*'`).
Its server code (launcher/child/) then fails on an import deep inside a worker, and the error
reads as if it were the project's. Every profile command makes its plan first, in the project's
interpreter and before anything of the project is imported (launcher/plan/source.py): there
the installed version is read from the package metadata (Django itself is not imported) and
an unsupported one is one line and exit 2.

The floor is pyproject.toml's `django>=` bound (tests/plan/test_versions.py checks they agree).
There is no ceiling: a newer Django is tried, as pip would install it.
"""

from __future__ import annotations

import re
from importlib import metadata

from launcher.errors import LaunchError

DJANGO_MIN = (5, 2)  # pyproject.toml: "django>=5.2"
FLOOR = ".".join(map(str, DJANGO_MIN))
SUPPORTED = f"Django {FLOOR} or newer"


def release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string: "5.2.20" -> (5, 2, 20), "6.1a1" -> (6, 1)."""
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in numbers.group().split(".")) if numbers else ()


def django_refusal(version: str | None) -> str | None:
    """Why this Django (None: not installed) cannot run under launcher, or None if it can."""
    if version is None:
        return f"Django is not installed in this interpreter; launcher needs {SUPPORTED}"
    if release(version)[:2] < DJANGO_MIN:
        return (f"Django {version} is installed; launcher supports {SUPPORTED} "
                f"(upgrade the project's Django: pip install 'django>={FLOOR}')")
    return None


def installed_django() -> str | None:
    """The installed Django's version, from its metadata (importing Django costs ~50 ms and
    would run the code the gate is there to keep from running)."""
    try:
        return metadata.version("django")
    except metadata.PackageNotFoundError:
        return None


def require_supported_django() -> None:
    """Raise the one-line error for an unsupported (or missing) Django."""
    refusal = django_refusal(installed_django())
    if refusal is not None:
        raise LaunchError(refusal)
