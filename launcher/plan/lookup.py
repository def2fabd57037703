"""Where `launch NAME` finds a profile, in one order a person can predict:

1. NAME ending in .yaml/.yml or holding a `/` is a path;
2. the project's own profiles: each `configs/` directory at or above the working directory, up
   to the project root (the directory of manage.py), nearest first, as git and editorconfig
   look (without a project: ./configs only);
3. each directory of $LAUNCH_CONFIG_DIR (colon-separated, site-wide);
4. the profiles shipped inside the package.

First match wins, so a project's own profile is never hidden by a site-wide one. `extends: NAME`
looks beside the file, then further down the same order (`parent_profile`). The names of
commands are not profile names."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from launcher.errors import ProfileError
from launcher.plan.project import find_root

RESERVED_NAMES = frozenset(
    {"show", "check", "status", "reload", "stop", "systemd-unit", "k8s", "run", "help", "list",
     "schema"}
)
# The profiles shipped inside the package (package data), wherever it is installed.
SHIPPED_CONFIGS = Path(str(resources.files("launcher") / "profiles")).resolve()
SUFFIXES = (".yaml", ".yml")

# Where a directory of the lookup order comes from, as `launch list` and `show --origins` say.
PROJECT = "project configs"
SITE = "$LAUNCH_CONFIG_DIR"
SHIPPED = "shipped"


@dataclass(frozen=True)
class Place:
    """One directory of the lookup order and where it comes from (PROJECT, SITE, SHIPPED)."""

    directory: Path
    origin: str


@dataclass(frozen=True)
class Located:
    """The profile file `launch NAME` chose, the place it was found in (None: NAME was a path)
    and the order it was looked up in."""

    path: Path
    place: Place | None
    order: tuple[Place, ...]


@dataclass(frozen=True)
class Listed:
    """A profile the lookup can see; `hides` are the files of that name further down."""

    name: str
    path: Path
    place: Place
    hides: tuple[Path, ...]


def is_path(name: str) -> bool:
    """A profile named by its file rather than looked up."""
    return name.endswith(SUFFIXES) or "/" in name


def project_configs(cwd: Path) -> list[Path]:
    """The project's `configs/` directories, nearest first: at or above `cwd`, up to the
    project root. Without a project, ./configs. None exists: where one would go."""
    cwd = resolve(cwd)
    root = find_root(cwd)
    if root is None:
        return [cwd / "configs"]
    tops = [cwd, *cwd.parents]
    tops = tops[: tops.index(root) + 1]
    found = [d / "configs" for d in tops if _is_dir(d / "configs")]
    return found or [root / "configs"]


def site_dirs(cwd: Path, env: Mapping[str, str]) -> list[Path]:
    """Each directory of $LAUNCH_CONFIG_DIR, absolute (a relative one is taken from `cwd`)."""
    return [resolve(cwd / p) for p in env.get("LAUNCH_CONFIG_DIR", "").split(":") if p]


def lookup_order(cwd: Path, env: Mapping[str, str]) -> tuple[Place, ...]:
    """Project configs (nearest first), $LAUNCH_CONFIG_DIR, shipped; a directory named twice
    keeps its first place."""
    places = [Place(d, PROJECT) for d in project_configs(cwd)]
    places += [Place(d, SITE) for d in site_dirs(cwd, env)]
    places.append(Place(SHIPPED_CONFIGS, SHIPPED))
    seen: list[Place] = []
    for place in places:
        directory = resolve(place.directory)
        if all(directory != p.directory for p in seen):
            seen.append(Place(directory, place.origin))
    return tuple(seen)


def config_dirs(cwd: Path, env: Mapping[str, str]) -> list[Path]:
    """The directories of the lookup order, first first."""
    return [place.directory for place in lookup_order(cwd, env)]


def locate(name: str, cwd: Path, env: Mapping[str, str]) -> Located:
    """Resolve `launch NAME` to a file: a path to a .yaml, or NAME.yaml in the lookup order."""
    order = lookup_order(cwd, env)
    if is_path(name):
        path = resolve(cwd / name)
        if _is_dir(path):
            raise ProfileError(None, None, None, f"{name} is a directory, not a profile file")
        if not is_file(path):
            why = _why_not_a_file(cwd / name)
            raise ProfileError(None, None, None, f"profile file {name} {why}")
        _refuse_reserved(path.stem, path)
        return Located(path, None, order)
    _refuse_reserved(name, None)
    for place in order:
        hit = _in(place.directory, name)
        if hit is not None:
            return Located(hit, place, order)
    known = sorted(listed.name for listed in list_profiles(cwd, env))
    raise ProfileError(
        None,
        None,
        None,
        f"unknown profile '{name}'{nearest(name, known)}; looked in {_dirs(order)} "
        f"(profiles: {', '.join(known) or 'none'})",
    )


def find_profile(name: str, cwd: Path, env: Mapping[str, str]) -> Path:
    """The file `launch NAME` would run."""
    return locate(name, cwd, env).path


def parent_profile(
    child: Path, ref: str, cwd: Path, env: Mapping[str, str]
) -> tuple[Path | None, str]:
    """The file `extends: REF` in `child` means, or None and why not (one sentence).

    A path is taken from the child's directory. A name is looked for beside the child, then in
    the lookup order below the child's own directory (the whole order for a file outside it),
    never in the child itself: a project's configs/prod-wsgi.yaml saying `extends: prod-wsgi`
    means the next prod-wsgi.yaml down, a site-wide or the shipped one, and a lower layer never
    reaches back up into a higher one."""
    if is_path(ref):
        path = resolve(child.parent / ref)
        return (path, "") if is_file(path) else (None, f"profile '{ref}' not found ({path})")
    beside, itself = resolve(child.parent), resolve(child)
    order = lookup_order(cwd, env)
    own = [i for i, place in enumerate(order) if place.directory == beside]
    below = [place.directory for place in order[own[0] + 1 :]] if own else config_dirs(cwd, env)
    dirs = list(dict.fromkeys([beside, *below]))
    for directory in dirs:
        hit = _in(directory, ref, skip=itself)
        if hit is not None:
            return hit, ""
    where = f"beside it or in {_dirs(dirs[1:])}" if dirs[1:] else "beside it"
    if child.stem == ref:
        return None, (
            f"profile '{ref}' not found but this file itself (a file never extends itself): "
            f"no other {ref}.yaml {where}"
        )
    return None, f"profile '{ref}' not found: no {ref}.yaml {where}"


def list_profiles(cwd: Path, env: Mapping[str, str]) -> list[Listed]:
    """Every profile name the lookup can see, in the order's first-wins sense, with the files of
    the same name it hides further down."""
    found: dict[str, list[tuple[Path, Place]]] = {}
    for place in lookup_order(cwd, env):
        paths = sorted(place.directory.glob("*.y*ml")) if _is_dir(place.directory) else []
        for path in paths:
            if path.suffix in SUFFIXES and path.stem not in RESERVED_NAMES and is_file(path):
                found.setdefault(path.stem, []).append((path, place))
    return [
        Listed(name, hits[0][0], hits[0][1], tuple(path for path, _ in hits[1:]))
        for name, hits in found.items()
    ]


def _in(directory: Path, name: str, *, skip: Path | None = None) -> Path | None:
    """NAME.yaml (or .yml) in `directory`, unless it is `skip`."""
    for suffix in SUFFIXES:
        path = directory / f"{name}{suffix}"
        if is_file(path) and (skip is None or resolve(path) != skip):
            return path
    return None


def _dirs(dirs: Sequence[Place] | Sequence[Path]) -> str:
    return ", ".join(str(d.directory if isinstance(d, Place) else d) for d in dirs)


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
