"""Profile -> LaunchPlan: resolve paths, worker counts and commands, with no side effects."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from launcher.errors import ProfileError
from launcher.plan.backends import BACKENDS, EXTRA_ENV
from launcher.plan.loader import KeyPath, LoadedProfile
from launcher.plan.model import Bind, Command, LaunchPlan, Probe, RestartPolicy, WatchSet
from launcher.plan.policy import workers_for

# Imports `module`, then looks up `attr`: run in a subprocess so the launcher stays clean.
# Django's settings come first, on their own (exit 3 when they fail): the before_start steps
# need them too, so start-up waits for the "settings ok" line before running any.
IMPORT_CHECK = (
    "import importlib, os, sys\n"
    "if os.environ.get('DJANGO_SETTINGS_MODULE'):\n"
    "    try:\n"
    "        importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE'])\n"
    "    except BaseException:\n"
    "        import traceback; traceback.print_exc(); sys.exit(3)\n"
    "print('settings ok', flush=True)\n"
    "module, _, attr = sys.argv[1].partition(':')\n"
    "obj = importlib.import_module(module)\n"
    "for part in attr.split('.'):\n"
    "    obj = getattr(obj, part)\n"
)


def build_plan(
    loaded: LoadedProfile, *, python: str, cpus: int, env: Mapping[str, str]
) -> LaunchPlan:
    """Decide everything about a launch up front; `env` is the caller's environment."""
    p = loaded.profile
    cwd = _directory(loaded, ("chdir",), p.chdir)
    if p.app is None:
        raise _error(loaded, ("app",), "is required: module:attr, e.g. mysite.wsgi:application")
    workers = 1 if p.reload else workers_for(cpus) if p.workers == "auto" else int(p.workers)

    child_env: dict[str, str] = {}
    if p.settings:
        child_env["DJANGO_SETTINGS_MODULE"] = p.settings
    if p.pythonpath:
        paths = [str((loaded.base_dir(("pythonpath",)) / d).resolve()) for d in p.pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        child_env["PYTHONPATH"] = os.pathsep.join(paths)
    child_env.update(p.env)
    child_env.update(EXTRA_ENV[p.server](p))

    def step(spec: str | tuple[str, ...]) -> Command:
        argv = (python, "-m", "django", *shlex.split(spec)) if isinstance(spec, str) else spec
        return Command(argv=tuple(argv), cwd=cwd, env=child_env)

    checks = [Command((python, "-c", IMPORT_CHECK, str(p.app)), cwd=cwd, env=child_env)]
    if p.settings:
        checks.append(step("check --deploy --fail-level ERROR" if p.check_deploy else "check"))

    watch = None
    if p.reload:
        base = loaded.base_dir(("watch", "roots"))
        roots = tuple((base / r).resolve() for r in p.watch.roots) or (cwd, loaded.path.parent)
        watch = WatchSet(
            roots=roots,
            include=p.watch.include,
            exclude=p.watch.exclude,
            delay=p.watch.delay,
            drain_timeout=p.watch.drain_timeout,
        )

    return LaunchPlan(
        name=loaded.name,
        source=loaded.path,
        profile=p,
        backend=p.server,
        bind=Bind.parse(p.bind),
        workers=workers,
        cwd=cwd,
        env=child_env,
        python=python,
        steps=tuple(step(s) for s in p.before_start),
        checks=tuple(checks),
        probe=Probe(**p.health.model_dump()),
        restart=RestartPolicy(**p.restart.model_dump()),
        watch=watch,
        max_worker_memory=int(p.limits.max_worker_memory) if p.limits.max_worker_memory else None,
        memory_check_interval=p.limits.check_interval,
        graceful_timeout=float(p.graceful_timeout),
        build_argv=BACKENDS[p.server],
        origins={k[0]: (o.file, o.line) for k, o in loaded.origins.items() if len(k) == 1},
    )


def _directory(loaded: LoadedProfile, key: KeyPath, value: str) -> Path:
    """A directory the profile names, resolved against the file that wrote it; it must exist."""
    path = loaded.base_dir(key) / value
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop, no permission
        raise _error(loaded, key, f"directory {path} does not exist") from None
    if not resolved.is_dir():
        raise _error(loaded, key, f"{resolved} is not a directory")
    return resolved


def _error(loaded: LoadedProfile, key: KeyPath, message: str) -> ProfileError:
    origin = loaded.origins.get(key)
    file, line = (origin.file, origin.line) if origin else (loaded.path, None)
    return ProfileError(file, line, ".".join(key), message)
