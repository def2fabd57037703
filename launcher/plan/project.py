"""Find the Django project `launch` runs in, and what its own files say about how to run it.

A project says which settings it wants in `manage.py` (for `runserver`, i.e. dev) and in
`wsgi.py`/`asgi.py` (for servers, i.e. prod): a CMS-style project names `mysite.settings.dev`
in one and `mysite.settings.production` in the other. Both are read with `ast`, never imported:
this is the pure layer, and a project's modules may do anything at import.
"""

from __future__ import annotations

import ast
import shlex
from dataclasses import dataclass
from pathlib import Path

from launcher.plan.procfile import PROCFILE, RELEASE, WEB, read_procfile
from launcher.wire import INSECURE_KEY_PREFIX  # startproject's key: public in every tutorial

SETTINGS_ENV = "DJANGO_SETTINGS_MODULE"
MAX_SOURCE = 1 << 20  # bytes: a manage.py or settings file larger than this is not read
MAX_STAR_DEPTH = 8  # `from .base import *` chains followed when reading a setting


@dataclass(frozen=True)
class Found:
    """A value and where it was found, e.g. ('mysite.settings.dev', 'manage.py:9')."""

    value: str
    source: str


@dataclass(frozen=True)
class FoundStep:
    """A deploy step the project's own files call for: its before_start name, the management
    command, and why (the setting or file that asks for it)."""

    name: str
    command: str | tuple[str, ...]  # manage.py's words, or an argv (a Procfile's release)
    why: str
    setting: tuple[str, int] | None = None  # the file (from the root) and line that asks for it


@dataclass(frozen=True)
class FoundProcess:
    """A process the project's own files call for (a Procfile entry, the tasks framework's
    worker): manage.py's words or an argv, its own environment, and why."""

    name: str
    words: tuple[str, ...]
    manage: bool
    why: str
    setting: tuple[str, int] | None = None  # the file (from the root) and line that asks for it
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Project:
    """A Django project: its root (the directory of manage.py) and what its files say."""

    root: Path
    settings: Found | None
    wsgi_app: Found | None
    asgi_app: Found | None
    steps: tuple[FoundStep, ...] = ()
    # The settings' own STATIC_ROOT as written (an expression's source), and where; None when
    # they set none or set it empty: then the profile's static.root is used.
    static_root: Found | None = None
    media_root: Found | None = None  # the settings' MEDIA_ROOT as written, and where
    # ALLOWED_HOSTS as written, when it is a literal list of strings, and where; DEBUG as
    # written (None: computed). What `launch dev` checks its URL against (plan/hosts.py).
    allowed_hosts: tuple[tuple[str, ...], str] | None = None
    debug: bool | None = None
    processes: tuple[FoundProcess, ...] = ()
    # What would harm a production site, as the settings write it: (the assignment, file:line).
    insecure: tuple[Found, ...] = ()

    def describe(self) -> list[str]:
        """Lines for `launch show` and `launch check`: what was detected, and from where."""
        lines = [f"project   {self.root}"]
        if self.settings:
            lines.append(f"settings  {self.settings.value}  (from {self.settings.source})")
        for kind, found in (("wsgi", self.wsgi_app), ("asgi", self.asgi_app)):
            if found:
                lines.append(f"{kind} app  {found.value}  (from {found.source})")
            else:
                lines.append(f"{kind} app  none in the project: built from the settings")
        return lines


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding a manage.py."""
    for directory in (start, *start.parents):
        if (directory / "manage.py").is_file():
            return directory
    return None


def discover(
    root: Path, *, dev: bool, env_settings: str | None, profile_settings: str | None
) -> Project:
    """What the project's own files say: settings by precedence, then its WSGI and ASGI apps.

    Settings: the profile's `settings:`, else $DJANGO_SETTINGS_MODULE, else manage.py's
    `setdefault` in dev or the wsgi.py/asgi.py `setdefault` in prod (each falling back to the
    other).
    """
    from_manage = _setdefault(root / "manage.py", root)
    package = _package_of(from_manage.value) if from_manage else None
    entries = _entry_modules(root, package)
    from_entries = next(
        (found for path in entries.values() if (found := _setdefault(path, root))), None
    )
    settings: Found | None
    if profile_settings:
        settings = Found(profile_settings, "the profile's settings")
    elif env_settings:
        settings = Found(env_settings, f"${SETTINGS_ENV}")
    elif dev:
        settings = from_manage or from_entries
    else:
        settings = from_entries or from_manage
    if settings and not entries:
        entries = _entry_modules(root, _package_of(settings.value))
    apps: dict[str, Found | None] = {}
    for kind, setting in (("wsgi", "WSGI_APPLICATION"), ("asgi", "ASGI_APPLICATION")):
        named = _read_setting(root, settings.value, setting) if settings else None
        if named and _module_file(root, named.value.rpartition(".")[0]):
            module, _, attr = named.value.rpartition(".")
            apps[kind] = Found(f"{module}:{attr}", named.source)
        elif kind in entries and _assigns(entries[kind], "application"):
            path = entries[kind]
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            apps[kind] = Found(f"{module}:application", _relative(path, root))
        else:
            apps[kind] = None
    steps = found_steps(root, settings.value) if settings else ()
    procfile = read_procfile(root)
    steps += tuple(
        FoundStep(RELEASE, shlex.join(e.words) if e.manage else e.words,
                  f"the Procfile's release entry ({PROCFILE}:{e.line})", (PROCFILE, e.line))
        for e in procfile if e.name == RELEASE
    )
    processes = tuple(
        FoundProcess(e.name, e.words, e.manage, f"{PROCFILE}:{e.line}", (PROCFILE, e.line), e.env)
        for e in procfile if e.name not in (WEB, RELEASE)
    )
    processes += found_processes(root, settings.value) if settings else ()
    if settings is None:
        return Project(root, settings, apps["wsgi"], apps["asgi"], steps, processes=processes)
    debug = _read_constant(root, settings.value, "DEBUG")
    key = _read_constant(root, settings.value, "SECRET_KEY")
    insecure = [Found("DEBUG = True", debug.source)] if debug and debug.value is True else []
    if key and isinstance(key.value, str) and key.value.startswith(INSECURE_KEY_PREFIX):
        insecure.append(Found(f"SECRET_KEY = '{INSECURE_KEY_PREFIX}...'", key.source))
    return Project(
        root, settings, apps["wsgi"], apps["asgi"], steps, processes=processes,
        static_root=_written(root, settings.value, "STATIC_ROOT"),
        media_root=_written(root, settings.value, "MEDIA_ROOT"),
        allowed_hosts=_literal_strings(root, settings.value, "ALLOWED_HOSTS"),
        debug=debug.value if debug and isinstance(debug.value, bool) else None,
        insecure=tuple(sorted(insecure, key=lambda f: _line_order(f.source))),
    )


DEV_NAMES = frozenset({"dev", "development", "local", "debug"})
PROD_NAMES = ("production", "prod", "live")


def production_sibling(root: Path, settings: str) -> str | None:
    """The production settings module beside a dev-looking one (`mysite.settings.dev` when
    `mysite/settings/production.py` exists), else None: a prod profile running the first is
    most likely missing DJANGO_SETTINGS_MODULE, as a Dockerfile would set it."""
    package, _, leaf = settings.rpartition(".")
    if leaf.lower() not in DEV_NAMES or not package:
        return None
    return next((f"{package}.{name}" for name in PROD_NAMES
                 if _module_file(root, f"{package}.{name}")), None)


# Database backends of Django's tasks framework, run by their `db_worker` command: the
# django-tasks backport's own (before 0.12), and django-tasks-db's (the backport from 0.12 and
# Django 6's django.tasks, which ships no database backend itself).
DB_TASK_BACKENDS = frozenset({
    "django_tasks.backends.database.DatabaseBackend",
    "django_tasks_db.DatabaseBackend",
    "django_tasks_db.backend.DatabaseBackend",
})
DB_WORKER = "db_worker"


def found_processes(root: Path, settings: str) -> tuple[FoundProcess, ...]:
    """The processes the settings call for: Django's tasks framework with a database backend
    stores tasks that only its `db_worker` runs (one per such backend, by its alias)."""
    assigned = _assignments(root, settings, "TASKS", plain=True)
    if not assigned:
        return ()
    value, where = assigned[-1]
    file, _, line = where.rpartition(":")
    found = []
    for alias, backend in _backends(value):
        if backend not in DB_TASK_BACKENDS:
            continue
        default = alias == "default"
        found.append(FoundProcess(
            DB_WORKER if default else f"{DB_WORKER}-{alias}",
            (DB_WORKER,) if default else (DB_WORKER, "--backend", alias),
            True,
            f"TASKS[{alias!r}] uses {backend.rpartition('.')[2]} ({where})",
            (file, int(line)),
        ))
    return tuple(found)


def _backends(value: ast.expr) -> list[tuple[str, str]]:
    """(alias, BACKEND) of each entry of a TASKS dict written out in the settings."""
    if not isinstance(value, ast.Dict):
        return []
    found = []
    for key, entry in zip(value.keys, value.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)
                and isinstance(entry, ast.Dict)):
            continue
        for name, backend in zip(entry.keys, entry.values, strict=True):
            if (isinstance(name, ast.Constant) and name.value == "BACKEND"
                    and isinstance(backend, ast.Constant) and isinstance(backend.value, str)):
                found.append((key.value, backend.value))
    return found


def found_steps(root: Path, settings: str) -> tuple[FoundStep, ...]:
    """The deploy steps the project needs beyond migrate and collectstatic, as its settings and
    files say. django-compressor with COMPRESS_OFFLINE: every page with `{% compress %}` raises
    OfflineGenerationError (a 500) until `compress` has run after collectstatic. Translations
    shipped as .po files: `compilemessages` makes the .mo files Django reads."""
    steps = []
    offline = _read_constant(root, settings, "COMPRESS_OFFLINE")
    if offline and offline.value is True and "compressor" in _strings(root, settings,
                                                                      "INSTALLED_APPS"):
        file, _, line = offline.source.rpartition(":")
        steps.append(FoundStep("compress", "compress",
                               f"COMPRESS_OFFLINE = True ({offline.source})", (file, int(line))))
    catalogs = _message_catalogs(root)
    if catalogs:
        first = _relative(catalogs[0], root)
        more = f" and {len(catalogs) - 1} more" if len(catalogs) > 1 else ""
        steps.append(FoundStep("compilemessages", COMPILE_MESSAGES,
                               f"translations in {first}{more}"))
    return tuple(steps)


# compilemessages walks the whole tree below the project: not into a virtualenv kept there.
COMPILE_MESSAGES = "compilemessages --ignore .* --ignore node_modules --ignore venv"
# Where a project keeps its translations: locale/ at its root and in its top-level packages
# (each app's own); virtualenvs and dot-directories are not the project's.
_NOT_PROJECT = frozenset({"node_modules", "venv", "env", "site-packages", "staticfiles"})


def _message_catalogs(root: Path) -> list[Path]:
    """The .po files of the project's own locale directories."""
    try:
        tops = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []
    found: list[Path] = []
    for directory in (root, *(d for d in tops if d.name not in _NOT_PROJECT)):
        locale = directory / "locale"
        if locale.is_dir():
            found += sorted(locale.glob("*/LC_MESSAGES/*.po"))
    return found


def _package_of(module: str) -> str:
    return module.split(".")[0]


def _entry_modules(root: Path, package: str | None) -> dict[str, Path]:
    """wsgi.py and asgi.py of the project package (or of the only package that has them)."""
    packages = [root / package] if package else sorted(p for p in root.iterdir() if p.is_dir())
    found: dict[str, Path] = {}
    for directory in packages:
        for kind in ("wsgi", "asgi"):
            path = directory / f"{kind}.py"
            if path.is_file():
                found.setdefault(kind, path)
    return found


def _parse(path: Path) -> ast.Module | None:
    try:
        if path.stat().st_size > MAX_SOURCE:
            return None
        return ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None  # the import check reports a broken file, with its line


def _setdefault(path: Path, root: Path) -> Found | None:
    """`os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x")` in `path`, with its line."""
    tree = _parse(path) if path.is_file() else None
    for node in ast.walk(tree) if tree else ():
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
            and node.args[0].value == SETTINGS_ENV  # type: ignore[attr-defined]
        ):
            return Found(node.args[1].value, f"{_relative(path, root)}:{node.lineno}")  # type: ignore[attr-defined]
    return None


def _assigns(path: Path, name: str) -> bool:
    tree = _parse(path)
    return tree is not None and any(
        isinstance(node, ast.Assign | ast.AnnAssign)
        and any(isinstance(t, ast.Name) and t.id == name for t in _targets(node))
        for node in tree.body
    )


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


def _module_file(root: Path, module: str) -> Path | None:
    """The file of a module inside the project (a module or a package's __init__)."""
    if not module or not all(part.isidentifier() for part in module.split(".")):
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _read_setting(root: Path, module: str, name: str) -> Found | None:
    """A string constant assigned to `name` at the top of a settings module, following
    `from x import *` into the project's own modules (a settings package's base.py)."""
    found = _read_constant(root, module, name)
    return Found(found.value, found.source) if found and isinstance(found.value, str) else None


@dataclass(frozen=True)
class _Constant:
    value: object  # a str, bool, number or None, as written
    source: str


def _read_constant(root: Path, module: str, name: str) -> _Constant | None:
    """The constant last assigned to `name` at the top level of a settings module and the
    modules it star-imports; None when the last assignment is computed (Django decides)."""
    assigned = _assignments(root, module, name, plain=True)
    value, where = assigned[-1] if assigned else (None, "")
    return _Constant(value.value, where) if isinstance(value, ast.Constant) else None


def _line_order(source: str) -> tuple[str, int]:
    file, _, line = source.rpartition(":")
    return file, int(line)


def _written(root: Path, module: str, name: str) -> Found | None:
    """The last value assigned to `name` as its source text (shortened), unless it is written
    empty (None or ""): what Django will use, as far as reading can tell."""
    assigned = _assignments(root, module, name, plain=True)
    if not assigned:
        return None
    value, where = assigned[-1]
    if isinstance(value, ast.Constant) and value.value in (None, ""):
        return None
    text = ast.unparse(value)
    return Found(text if len(text) <= 60 else text[:57] + "...", where)


def _literal_strings(root: Path, module: str, name: str) -> tuple[tuple[str, ...], str] | None:
    """A list of strings as the settings write it (`=` a list or tuple of string constants,
    then any `+=` of the same), and where it was last set; None when any part is computed."""
    assigned = _assignments(root, module, name)
    if not assigned:
        return None
    plain = {source for _, source in _assignments(root, module, name, plain=True)}
    values: list[str] = []
    where = ""
    for value, source in assigned:
        if not isinstance(value, ast.List | ast.Tuple) or not all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
        ):
            return None
        items = [str(e.value) for e in value.elts if isinstance(e, ast.Constant)]
        values = items if source in plain else [*values, *items]
        where = source
    return tuple(values), where


def _strings(root: Path, module: str, name: str) -> set[str]:
    """The string constants written in assignments to `name` (a list such as INSTALLED_APPS,
    however it is assembled: `+=`, `[*BASE, ...]`)."""
    found: set[str] = set()
    for value, _ in _assignments(root, module, name):
        found |= {n.value for n in ast.walk(value)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return found


def _assignments(
    root: Path, module: str, name: str, *, plain: bool = False, depth: int = 0
) -> list[tuple[ast.expr, str]]:
    """Every value assigned to `name` at the top level of a settings module, in the order
    Python runs them, `from x import *` of the project's own modules followed; `plain`: only
    `=`, not `+=`."""
    path = _module_file(root, module)
    tree = _parse(path) if path and depth <= MAX_STAR_DEPTH else None
    if tree is None or path is None:
        return []
    found: list[tuple[ast.expr, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            target = _absolute(module, path, node)
            if target:
                found += _assignments(root, target, name, plain=plain, depth=depth + 1)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            augmented = isinstance(node, ast.AugAssign)
            targets = [node.target] if isinstance(node, ast.AugAssign) else _targets(node)
            named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
            if named and node.value is not None and not (plain and augmented):
                found.append((node.value, f"{_relative(path, root)}:{node.lineno}"))
    return found


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    package = module.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    if node.level > 1:
        package = package[: -(node.level - 1)] or []
    parts = [*package, *([node.module] if node.module else [])]
    return ".".join(parts) if parts else None


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
