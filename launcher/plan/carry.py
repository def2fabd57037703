"""What a systemd unit or a pod carries so that `launch` there finds the profile it was rendered
from, and every file its `extends:` reads: a working directory, the word that names the profile
(its name when the lookup finds it, else its path) and $LAUNCH_CONFIG_DIR when it matters.

Each choice is checked by doing the lookup again as the target will (plan/lookup.py), from the
target's working directory with only what the target's environment will hold: the first choice
that reads the same files wins, so what is carried is what is needed, and never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import ProfileError
from launcher.plan.loader import LoadedProfile, extends_chain
from launcher.plan.lookup import SHIPPED_CONFIGS, is_path, locate, resolve, site_dirs
from launcher.plan.project import find_root


@dataclass(frozen=True)
class Carried:
    """`launch PROFILE` run in `workdir`, with LAUNCH_CONFIG_DIR set to `config_dirs` (if any)."""

    workdir: Path
    profile: str
    config_dirs: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, str]:
        """The lookup's part of the target's environment."""
        return {"LAUNCH_CONFIG_DIR": ":".join(self.config_dirs)} if self.config_dirs else {}


def reads_the_same(carried: Carried, chain: tuple[Path, ...]) -> bool:
    """Does `launch PROFILE` from the target's directory and environment read `chain`?"""
    try:
        path = locate(carried.profile, carried.workdir, carried.env).path
        return extends_chain(path, carried.workdir, carried.env) == chain
    except ProfileError:
        return False


def for_unit(
    loaded: LoadedProfile, *, cwd: Path, env: Mapping[str, str], server_dir: Path
) -> Carried:
    """A systemd unit's WorkingDirectory, ExecStart profile and LAUNCH_CONFIG_DIR.

    WorkingDirectory is the project `launch` ran in (else the server's own directory; where
    launch ran as the last resort), the profile its name, else its absolute path, and
    LAUNCH_CONFIG_DIR every directory of this one, absolute, when the lookup needs it. A unit
    has no shell: nothing else of this environment reaches it."""
    here = resolve(cwd)
    chain = _chain(loaded)
    dirs = tuple(str(d) for d in site_dirs(here, env))
    words = [w for w in (loaded.path.stem, str(loaded.path)) if _nameable(w)]
    for workdir in dict.fromkeys([find_root(here) or resolve(server_dir), here]):
        for word in words:
            for carried_dirs in dict.fromkeys([(), dirs]):
                carried = Carried(workdir, word, carried_dirs)
                if reads_the_same(carried, chain):
                    return carried
    # Not reached: the last choice is this very lookup (same directory, same LAUNCH_CONFIG_DIR).
    raise ProfileError(
        loaded.path, None, None, f"the unit could not find this profile again from {here}"
    )


def for_pod(loaded: LoadedProfile, *, cwd: Path, env: Mapping[str, str]) -> Carried:
    """The container's command word and LAUNCH_CONFIG_DIR, run in the image's working
    directory: the project. A profile from the project's configs by name, one given by a path
    inside the project by that path relative to it; LAUNCH_CONFIG_DIR when the profile (or a
    file it extends) came from there, its directories inside the project relative to it.
    Anything else the pod would not have is refused."""
    here = resolve(cwd)
    project = find_root(here) or here
    chain = _chain(loaded)
    relative = _relative(loaded.path, project)
    if relative is None and not reads_the_same(Carried(project, loaded.path.stem), chain):
        site_wide = any(_inside(loaded.path, d) for d in site_dirs(here, env))
        if not site_wide:
            raise ProfileError(
                loaded.path, None, None, f"outside the project {project}: the container runs "
                f"`launch` there (the image's working directory); put the profile in "
                f"{project / 'configs'}, or in a directory of $LAUNCH_CONFIG_DIR the image holds"
            )
    dirs = tuple(_relative(d, project) or str(d) for d in site_dirs(here, env))
    words = [loaded.path.stem, *([relative] if relative else [])]
    if loaded.located is not None and loaded.located.place is None:
        words.reverse()  # given as a path: by that path first
    for word in filter(_nameable, words):
        for carried_dirs in dict.fromkeys([(), dirs]):
            carried = Carried(project, word, carried_dirs)
            if reads_the_same(carried, chain):
                _refuse_unreachable(chain, project, carried)
                return carried
    raise ProfileError(
        loaded.path, None, None, f"the pod, running `launch` in the project {project}, would not "
        f"read the same files ({' -> '.join(map(str, chain))}); run `launch k8s` in the project"
    )


def _chain(loaded: LoadedProfile) -> tuple[Path, ...]:
    return loaded.chain or (resolve(loaded.path),)


def _nameable(word: str) -> bool:
    """A word `launch WORD` takes as a profile, not as an option."""
    return bool(word) and not word.startswith("-")


def _inside(path: Path, directory: Path) -> bool:
    return resolve(path).is_relative_to(resolve(directory))


def _relative(path: Path, project: Path) -> str | None:
    """`path` relative to the project, written so `launch` takes it as a path; None outside."""
    if not _inside(path, project):
        return None
    text = str(resolve(path).relative_to(resolve(project)))
    return text if is_path(text) else f"./{text}"


def _refuse_unreachable(chain: Iterable[Path], project: Path, carried: Carried) -> None:
    """Every file the profile reads must be in the image: the project, launcher's shipped
    profiles, or a directory of the carried LAUNCH_CONFIG_DIR (which the image must hold)."""
    homes = [project, SHIPPED_CONFIGS, *(project / d for d in carried.config_dirs)]
    for path in chain:
        if not any(_inside(path, home) for home in homes):
            raise ProfileError(
                path, None, None, f"outside the project {project}: the container runs `launch` "
                f"there (the image's working directory) and would not have this file"
            )
