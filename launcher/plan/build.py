"""Profile -> LaunchPlan: find the project, resolve paths, worker counts and commands, with no
side effects."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path

from launcher import wire
from launcher.errors import ProfileError
from launcher.plan.backends import BACKENDS, EXTRA_ENV
from launcher.plan.backends.gunicorn import is_import_path, worker_class_to_check
from launcher.plan.backends.uvicorn import server_kwargs
from launcher.plan.hosts import open_address
from launcher.plan.loader import KeyPath, LoadedProfile
from launcher.plan.model import Bind, Command, LaunchPlan, Probe, RestartPolicy, WatchSet
from launcher.plan.policy import workers_for
from launcher.plan.processes import expand_found, plan_processes
from launcher.plan.project import (
    SETTINGS_ENV,
    Found,
    Project,
    discover,
    find_root,
    production_sibling,
)
from launcher.plan.schema import Profile
from launcher.plan.wrapper import resolve_wrapper

ASGI_WORKERS = ("uvicorn", "asgi")


def interface_of(profile: Profile) -> str:
    """Which callable the server wants: uvicorn and the ASGI workers want ASGI. A worker class
    by import path says so itself when gunicorn loads it ("auto", see launcher.child.workers)."""
    if profile.server == "uvicorn" or profile.worker_class in ASGI_WORKERS:
        return "asgi"
    if is_import_path(profile.worker_class):
        return "auto"
    return "wsgi"


def build_plan(
    loaded: LoadedProfile,
    *,
    python: str,
    cpus: int,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> LaunchPlan:
    """Decide everything about a launch up front.

    `env` is the caller's environment and `cwd` where `launch` was run: without `chdir:`, the
    project is the one around `cwd` (the nearest manage.py at or above it).
    """
    p = loaded.profile
    project, workdir, unset_in_procfile = _where(loaded, (cwd or Path.cwd()).resolve(), env)
    interface = interface_of(p)
    app = Found(p.app, "the profile's app") if p.app else _detected_app(project, interface)
    settings = project.settings.value if project and project.settings else p.settings
    _require_app_or_settings(loaded, app, settings, project, cwd or Path.cwd(), workdir)
    workers = 1 if p.reload else workers_for(cpus) if p.workers == "auto" else int(p.workers)
    child_env = _child_env(loaded, env, settings, app.value if app else "", interface, workdir)

    def step(spec: str | tuple[str, ...]) -> Command:
        if isinstance(spec, str):
            argv: tuple[str, ...] = (python, "-m", wire.MANAGE_MODULE, *shlex.split(spec))
        else:
            argv = tuple(spec)
        label = spec if isinstance(spec, str) else shlex.join(spec)
        return Command(argv=argv, cwd=workdir, env=child_env, label=label)

    steps = _steps(p, project)
    bind = Bind.parse(p.bind)
    watch = _watch(loaded, workdir)
    server_app = f"{wire.APP_MODULE}:{'application' if interface == 'auto' else interface}"
    url, warnings = _open_address(bind, project, dev=p.reload)
    if not (p.reload or p.settings or env.get(SETTINGS_ENV)):  # chosen by hand: not second-guessed
        warnings += _settings_warnings(loaded, project)
    return LaunchPlan(
        name=loaded.name,
        source=loaded.path,
        backend=p.server,
        bind=bind,
        workers=workers,
        cwd=workdir,
        env=child_env,
        python=python,
        steps=tuple(step(spec) for _, spec in steps),
        checks=_checks(loaded.name, p, python, interface, bind, workdir, child_env, step,
                       django=bool(settings)),
        probe=_probe(p),
        restart=RestartPolicy(**p.restart.model_dump()),
        watch=watch,
        max_worker_memory=int(p.limits.max_worker_memory) if p.limits.max_worker_memory else None,
        memory_check_interval=p.limits.check_interval,
        graceful_timeout=float(p.graceful_timeout),
        server=BACKENDS[p.server](p, python=python, app=server_app, workers=workers, watch=watch),
        origins=_origins(loaded, steps, project),
        project=project,
        interface=interface,
        app=app.value if app else "",
        app_source=app.source if app else "built by the launcher from the settings",
        server_app=server_app,
        deferred_env=(*loaded.deferred, *unset_in_procfile),
        uvicorn_kwargs=server_kwargs(p),
        wrapper=resolve_wrapper(p.wrap, python=python, env={**env, **child_env}, cwd=workdir),
        description=p.description,
        worker_class=p.worker_class if p.server == "gunicorn" else "",
        worker_timeout=p.timeout if p.server == "gunicorn" else 0,
        step_timeout=p.step_timeout,
        found_steps=tuple(key for key, _ in steps[len(p.steps()):]),
        backlog=p.backlog,
        admin_bind=Bind.parse(p.admin.bind) if p.admin.bind else None,
        log_format=p.log_format,
        url=url,
        warnings=warnings,
        processes=plan_processes(loaded, project, python=python, cwd=workdir, env=child_env),
        refusals=_refusals(loaded, project) if p.refuse_insecure else (),
    )


def _where(
    loaded: LoadedProfile, cwd: Path, env: Mapping[str, str]
) -> tuple[Project | None, Path, tuple[str, ...]]:
    """The project (its Procfile's `$NAME`s expanded, as its commands will run), the working
    directory, and the Procfile's names left unset: `chdir:` when the profile sets it, else
    the project around where launch runs."""
    p = loaded.profile
    chdir = _directory(loaded, ("chdir",), p.chdir) if ("chdir",) in loaded.origins else None
    project = _project(loaded, chdir or cwd, env)
    unset: tuple[str, ...] = ()
    if project is not None:
        project, unset = expand_found(project, {**env, **p.env}, keep_unset=loaded.defer_env)
    if chdir is not None:
        return project, chdir, unset
    if project is not None:
        return project, project.root, unset
    return project, _directory(loaded, ("chdir",), p.chdir), unset


def _require_app_or_settings(
    loaded: LoadedProfile, app: Found | None, settings: str | None, project: Project | None,
    cwd: Path, workdir: Path,
) -> None:
    """Something to serve: an app, or the settings the launcher builds one from."""
    if app is None and project is None:
        raise ProfileError(
            loaded.path,
            None,
            "app",
            f"no Django project found at or above {cwd} (no manage.py): run launch "
            "inside your project, or set app: (and chdir:) in the profile",
        )
    if app is None and not settings:
        raise ProfileError(
            loaded.path,
            None,
            "settings",
            f"cannot tell the settings module of {workdir}: neither manage.py nor wsgi.py/asgi.py "
            "sets DJANGO_SETTINGS_MODULE; set settings: in the profile or $DJANGO_SETTINGS_MODULE",
        )


def _child_env(
    loaded: LoadedProfile, env: Mapping[str, str], settings: str | None, app: str,
    interface: str, workdir: Path,
) -> dict[str, str]:
    """The environment every child runs with on top of the caller's: the settings, the
    profile's pythonpath and env:, what the app wrapper reads, the server's own."""
    p = loaded.profile
    child_env: dict[str, str] = {}
    if settings:
        child_env["DJANGO_SETTINGS_MODULE"] = settings
    if p.pythonpath:
        paths = [str((loaded.base_dir(("pythonpath",)) / d).resolve()) for d in p.pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        child_env["PYTHONPATH"] = os.pathsep.join(paths)
    child_env.update(_wrapper_env(loaded, p, app, interface, workdir))
    child_env.update(p.env)
    child_env.update(EXTRA_ENV[p.server](p))
    return child_env


def _checks(
    name: str, p: Profile, python: str, interface: str, bind: Bind, workdir: Path,
    child_env: Mapping[str, str], step: Callable[[str], Command], *, django: bool,
) -> tuple[Command, ...]:
    """The app check (the server's own import of the app), then Django's checks when there
    are settings."""
    check_argv = [python, "-m", wire.CHECK_MODULE, "--interface", interface]
    if p.server == "gunicorn":
        named = p.worker_class if ":" in p.worker_class else worker_class_to_check(p)
        check_argv += ["--worker-class", named]
    if bind.host:
        check_argv += ["--host", bind.host]
    if p.refuse_insecure:
        check_argv += ["--refuse-insecure", name]
    checks = [Command(tuple(check_argv), cwd=workdir, env=dict(child_env), label="app")]
    if django:
        # Django's checks as a start runs them (before its first step), and a reload too; the
        # deploy checks only for `launch check` (check_deploy): a start and a reload refuse the
        # same things, and on Django 6.1 a fresh startproject's console email backend is a
        # deploy error (mail.E001).
        checks.append(step("check"))
        if p.check_deploy:
            checks.append(step("check --deploy --fail-level ERROR"))
    return tuple(checks)


def _watch(loaded: LoadedProfile, workdir: Path) -> WatchSet | None:
    """What dev watches: the profile's roots, else the project and the profile's directory."""
    p = loaded.profile
    if not p.reload:
        return None
    base = loaded.base_dir(("watch", "roots"))
    roots = tuple((base / r).resolve() for r in p.watch.roots) or (workdir, loaded.path.parent)
    return WatchSet(
        roots=roots,
        include=p.watch.include,
        exclude=p.watch.exclude,
        delay=p.watch.delay,
        drain_timeout=p.watch.drain_timeout,
    )


def _refusals(loaded: LoadedProfile, project: Project | None) -> tuple[str, ...]:
    """One line per setting that would harm a public site, in file order, naming its file and
    line and the key that lets it run anyway. (What the settings compute, the app check
    judges once they import: `--refuse-insecure`.)"""
    return tuple(
        wire.insecure_line(found.source, found.value, found.value.split()[0], loaded.name)
        for found in (project.insecure if project else ())
    )


def _settings_warnings(loaded: LoadedProfile, project: Project | None) -> tuple[str, ...]:
    """A prod profile on dev-looking settings, found in the project's own files, while a
    production module sits beside them."""
    found = project.settings if project else None
    sibling = production_sibling(project.root, found.value) if project and found else None
    if found is None or sibling is None:
        return ()
    return (f"settings {found.value} (from {found.source}) look like development settings "
            f"under {loaded.name}, and {sibling} exists: set DJANGO_SETTINGS_MODULE={sibling} "
            "(or `settings:` in the profile) if that is the one to serve",)


def _open_address(
    bind: Bind, project: Project | None, *, dev: bool
) -> tuple[str, tuple[str, ...]]:
    """The URL to open and, in dev, a warning when the project's ALLOWED_HOSTS would refuse it
    (in prod a proxy in front sends the site's own name)."""
    if not bind.host or bind.port is None:
        return "", ()
    hosts = project.allowed_hosts if project and dev else None
    url, warning = open_address(
        bind.host, bind.port, hosts[0] if hosts else None, project.debug if project else None,
        hosts[1] if hosts else "",
    )
    return url, (warning,) if warning else ()


def _detected_app(project: Project | None, interface: str) -> Found | None:
    if project is None:
        return None
    return project.asgi_app if interface == "asgi" else project.wsgi_app


def _steps(p: Profile, project: Project | None) -> list[tuple[str, str | tuple[str, ...]]]:
    """The profile's steps, then those the project's files call for (project.found_steps)
    that it neither runs already nor switches off. `compress` needs the collected files:
    only where collectstatic runs."""
    steps = p.steps()
    commands = {spec.split()[0] if isinstance(spec, str) else "" for _, spec in steps}
    present = {key for key, _ in steps} | commands | p.steps_off()
    for found in project.steps if project else ():
        if found.name in present or (found.name == "compress" and "collectstatic" not in commands):
            continue
        if isinstance(found.command, str) and found.command.split()[0] in commands:
            continue  # a Procfile's `release: python manage.py migrate` where migrate runs
        steps.append((found.name, found.command))
    return steps


def _origins(
    loaded: LoadedProfile, steps: list[tuple[str, str | tuple[str, ...]]], project: Project | None
) -> dict[str, tuple[Path, int]]:
    """Where each key was written, by dotted path. A step is also known by its place in the
    run (`before_start.N`, as failures name it): a named step at its line, a found one at the
    setting or file that asked for it."""
    origins = {".".join(k): (o.file, o.line) for k, o in loaded.origins.items()}
    found = {f.name: f.setting for f in project.steps if f.setting} if project else {}
    for index, (key, _) in enumerate(steps):
        where = origins.get(f"before_start.{key}")
        if where is None and project is not None and key in found:
            file, line = found[key]
            where = (project.root / file, line)
        if where is not None:
            origins[f"before_start.{index}"] = where
    return origins


def _project(loaded: LoadedProfile, start: Path, env: Mapping[str, str]) -> Project | None:
    """The project at or above `start`, and what its files say."""
    root = find_root(start)
    if root is None:
        return None
    return discover(
        root,
        dev=loaded.profile.reload,
        env_settings=env.get("DJANGO_SETTINGS_MODULE") or None,
        profile_settings=loaded.profile.settings,
    )


def _wrapper_env(
    loaded: LoadedProfile, p: Profile, app: str, interface: str, workdir: Path
) -> dict[str, str]:
    """What launcher.child.app reads inside the server (see launcher/wire.py)."""
    static = "off" if not p.static.serve else "dev" if p.reload else "prod"
    root_base = loaded.base_dir(("static", "root")) if p.static.root else workdir
    env = {
        wire.APP_ENV: app,
        wire.INTERFACE_ENV: interface,
        wire.STATIC_ENV: static,
        wire.STATIC_ROOT_ENV: str((root_base / (p.static.root or "staticfiles")).resolve()),
    }
    if p.warm_urls:
        env[wire.WARM_URLS_ENV] = "1"
    if p.static.media and not p.reload:  # dev serves media anyway, as runserver would
        env[wire.MEDIA_ENV] = "1"
    if interface != "wsgi":
        env[wire.SYNC_THREADS_ENV] = str(p.asgi.sync_threads if p.asgi.sync_pool else 0)
    if p.health.path:
        env[wire.PROBE_PATH_ENV] = p.health.path.partition("?")[0]
    if p.log_format == "json":  # launcher.child.jsonlog: the servers' lines carry the profile
        env[wire.LOG_FORMAT_ENV] = "json"
        env[wire.LOG_PROFILE_ENV] = loaded.name
    return env


def _probe(p: Profile) -> Probe:
    health = p.health.model_dump()
    if p.health.path is None:
        health["path"] = wire.PROBE_PATH + (f"?{wire.PROBE_DEEP_QUERY}" if p.health.deep else "")
    health.pop("deep")
    # Dev serves the developer's 500 with its debug page: a broken page never stops dev.
    smoke = () if p.reload or not p.health.enabled else p.health.smoke
    health["smoke"] = ("/",) if smoke is None else tuple(smoke)
    return Probe(**health, own=p.health.path is None)


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
