"""Where `launch NAME` finds a profile: a path, or NAME.yaml in $LAUNCH_CONFIG_DIR, ./configs
and the configs shipped with launcher, first match wins. The names of commands are not
profile names."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from launcher.errors import ProfileError

RESERVED_NAMES = frozenset(
    {"show", "check", "status", "reload", "stop", "systemd-unit", "k8s", "run", "help", "list",
     "schema"}
)
# The profiles shipped inside the package (package data), wherever it is installed.
SHIPPED_CONFIGS = Path(str(resources.files("launcher") / "profiles")).resolve()


def config_dirs(cwd: Path, env: Mapping[str, str]) -> list[Path]:
    """Profile lookup order: $LAUNCH_CONFIG_DIR, ./configs, then the shipped configs/."""
    dirs = [Path(p) for p in env.get("LAUNCH_CONFIG_DIR", "").split(":") if p]
    dirs += [cwd / "configs", SHIPPED_CONFIGS]
    seen: list[Path] = []
    for d in dirs:
        if resolve(d) not in seen:
            seen.append(resolve(d))
    return seen


def find_profile(name: str, cwd: Path, env: Mapping[str, str]) -> Path:
    """Resolve `launch NAME` to a file: a path to a .yaml, or NAME.yaml in the config dirs."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = resolve(cwd / name)
        if _is_dir(path):
            raise ProfileError(None, None, None, f"{name} is a directory, not a profile file")
        if not is_file(path):
            why = _why_not_a_file(cwd / name)
            raise ProfileError(None, None, None, f"profile file {name} {why}")
        _refuse_reserved(path.stem, path)
        return path
    _refuse_reserved(name, None)
    dirs = config_dirs(cwd, env)
    for d in dirs:
        for suffix in (".yaml", ".yml"):
            if is_file(d / f"{name}{suffix}"):
                return d / f"{name}{suffix}"
    known = sorted(list_profiles(cwd, env))
    hint = nearest(name, known)
    listed = ", ".join(known) or "none"
    raise ProfileError(
        None,
        None,
        None,
        f"unknown profile '{name}'{hint}; looked in {', '.join(map(str, dirs))} "
        f"(profiles: {listed})",
    )


def resolve(path: Path) -> Path:
    """Path.resolve() that survives symlink loops and NUL bytes (the path then stays as given)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _why_not_a_file(path: Path) -> str:
    try:
        path.stat()
    except OSError as exc:
        return "is a symlink loop" if exc.errno == errno.ELOOP else "does not exist"
    except ValueError:
        return "does not exist"
    return "is not a regular file"


def list_profiles(cwd: Path, env: Mapping[str, str]) -> dict[str, Path]:
    """Every profile name the lookup can see, first directory wins."""
    found: dict[str, Path] = {}
    for d in config_dirs(cwd, env):
        for path in sorted(d.glob("*.y*ml")) if d.is_dir() else []:
            if path.stem not in RESERVED_NAMES:
                found.setdefault(path.stem, path)
    return found


def _refuse_reserved(name: str, path: Path | None) -> None:
    if name in RESERVED_NAMES:
        raise ProfileError(
            path,
            None,
            None,
            f"'{name}' is a launch command, so it cannot name a profile; rename the profile file",
        )


def nearest(word: str, choices: list[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
