"""Profile -> LaunchPlan: resolve paths, worker counts and commands, with no side effects."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping

from launcher.plan.backends import BACKENDS, EXTRA_ENV
from launcher.plan.backends.gunicorn import worker_class_to_check
from launcher.plan.loader import LoadedProfile
from launcher.plan.model import Bind, Command, LaunchPlan, Probe, RestartPolicy, WatchSet
from launcher.plan.policy import workers_for
from launcher.plan.wrapper import resolve_wrapper

# Imports `module`, then looks up `attr`: run in a subprocess so the launcher stays clean.
# Django's settings come first, on their own (exit 3 when they fail): the before_start steps
# need them too, so start-up waits for the "settings ok" line before running any.
# Under gunicorn, the worker class (a gunicorn name or `pkg.mod.Class`) must then import and be
# a gunicorn worker (exit 4 otherwise): gunicorn itself would say so only in a master traceback.
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
    "if len(sys.argv) > 2:\n"
    "    try:\n"
    "        from gunicorn.workers import SUPPORTED_WORKERS\n"
    "        from gunicorn.workers.base import Worker\n"
    "        path = SUPPORTED_WORKERS.get(sys.argv[2], sys.argv[2])\n"
    "        module, _, name = path.rpartition('.')\n"
    "        cls = getattr(importlib.import_module(module), name)\n"
    "        if not (isinstance(cls, type) and issubclass(cls, Worker)):\n"
    "            raise TypeError(f'{path} is {cls!r}, not a gunicorn worker class "
    "(a subclass of gunicorn.workers.base.Worker)')\n"
    "    except BaseException:\n"
    "        import traceback; traceback.print_exc(); sys.exit(4)\n"
)


def build_plan(
    loaded: LoadedProfile, *, python: str, cpus: int, env: Mapping[str, str]
) -> LaunchPlan:
    """Decide everything about a launch up front; `env` is the caller's environment."""
    p = loaded.profile
    cwd = (loaded.base_dir(("chdir",)) / p.chdir).resolve()
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

    worker = (worker_class_to_check(p),) if p.server == "gunicorn" else ()
    checks = [Command((python, "-c", IMPORT_CHECK, p.app, *worker), cwd=cwd, env=child_env)]
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
        wrapper=resolve_wrapper(p.wrap, python=python, env={**env, **child_env}, cwd=cwd),
    )
