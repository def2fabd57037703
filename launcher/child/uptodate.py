"""Whether a before_start step has nothing to do, found in milliseconds in the preparing process.

`migrate` with nothing to apply still builds the whole migration state and sends post_migrate
(~0.15 s on a CMS site); `collectstatic` with nothing new still post-processes every file under
a manifest storage (~0.3 s). Here `migrate` has nothing to do when every migration file on disk
is recorded as applied in the default database (listing the files, one query: no migration is
imported), and `collectstatic` when a fingerprint of the source files (path, size, mtime), the
settings that place them and the step's own words equals the one recorded in the run dir after
the last run, and every file it collected is still there. Anything unusual (other options,
another database, a remote storage, no record) runs the real command: a false "changed" costs
time, never correctness. A skipped `migrate` sends no post_migrate signal, as nothing migrated.
`compress` has nothing to do while django-compressor is off (COMPRESS_ENABLED, False under
DEBUG by default: pages then name their files uncompressed), `compilemessages` when every .po
file has a .mo at least as new (or msgfmt is missing and every .mo is there).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import importlib.util
import json
import os
import pkgutil
import shutil
from pathlib import Path
from typing import Any

# Options that change nothing about what the command does.
_QUIET = {"--noinput", "--no-input", "--no-color", "--force-color", "--traceback"}
_VERBOSITY = {"-v", "--verbosity"}
_IGNORE_PATTERNS = ["CVS", ".*", "*~"]  # collectstatic's defaults


def nothing_to_do(words: list[str], record: Path | None) -> str | None:
    """Why the step `words` (manage.py's words) has nothing to do, or None: run it. `record`
    is where collectstatic's last fingerprint was kept."""
    if words and words[0] == "compress" and words[1:] == []:
        return _compressor_off()
    if words and words[0] == "compilemessages":
        return _messages_compiled(words)
    if not plain(words):
        return None
    if words[0] == "migrate":
        return None if migrations_pending() else "no migrations to apply"
    if words[0] == "collectstatic" and record is not None:
        fingerprint, collected = static_state(words)
        unchanged = fingerprint is not None and fingerprint == _recorded(record)
        if unchanged and all(path.exists() for path in collected):
            return "static files unchanged"
    return None


def plain(words: list[str]) -> bool:
    """A command with only options that change nothing (and a verbosity): nothing positional,
    no --database, no --dry-run."""
    if not words:
        return False
    rest = iter(words[1:])
    for word in rest:
        if word in _VERBOSITY:
            next(rest, None)
        elif word not in _QUIET and not word.startswith(("-v", "--verbosity=")):
            return False
    return True


def _compressor_off() -> str | None:
    from django.conf import settings

    if getattr(settings, "COMPRESS_ENABLED", True):
        return None
    return "COMPRESS_ENABLED is off: pages name their files uncompressed"


def _messages_compiled(words: list[str]) -> str | None:
    """Every catalog compilemessages would compile (the project's tree as Django walks it, less
    what `--ignore` leaves out, and LOCALE_PATHS) already has a .mo at least as new."""
    ignore: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        if word in ("--ignore", "-i"):
            ignore.append(next(rest, ""))
        elif word.startswith("--ignore="):
            ignore.append(word.partition("=")[2])
        elif word not in _QUIET and word not in _VERBOSITY and not word.startswith("-v"):
            return None  # --locale, --use-fuzzy, ...: let the command decide
    stale = [po for po in _catalogs(ignore) if not _newer_or_same(po.with_suffix(".mo"), po)]
    if not stale:
        return "translations already compiled"
    if shutil.which("msgfmt") is None and all(po.with_suffix(".mo").exists() for po in stale):
        return "msgfmt (GNU gettext) is not installed: the .mo files are used as they are"
    return None


def _catalogs(ignore: list[str]) -> list[Path]:
    from django.conf import settings

    bases = [Path("conf/locale"), Path("locale"), *map(Path, settings.LOCALE_PATHS)]
    for directory, names, _files in os.walk("."):
        names[:] = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in ignore)]
        bases += [Path(directory, n) for n in names if n == "locale"]
    return sorted({po for base in bases for po in base.glob("*/LC_MESSAGES/*.po")})


def _newer_or_same(mo: Path, po: Path) -> bool:
    try:
        return mo.stat().st_mtime_ns >= po.stat().st_mtime_ns
    except OSError:
        return False


def migrations_pending() -> bool:
    """A migration file on disk that the default database has not recorded as applied."""
    from django.apps import apps
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections[DEFAULT_DB_ALIAS])
    if not recorder.has_table():
        return True
    applied = set(recorder.applied_migrations())
    for config in apps.get_app_configs():
        module, _explicit = MigrationLoader.migrations_module(config.label)
        if module is None:
            continue
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            return True  # let migrate say what is wrong
        if spec is None or not spec.submodule_search_locations:
            continue  # an app without migrations
        for _finder, name, is_pkg in pkgutil.iter_modules(spec.submodule_search_locations):
            # Django's loader skips the same names (packages, `_private`, `~backup`).
            if not is_pkg and name[0] not in "_~" and (config.label, name) not in applied:
                return True
    return False


def _storage_root() -> Path | None:
    """Where collectstatic writes, when that is a local directory; None for remote storage."""
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.files.storage import FileSystemStorage

    if not isinstance(staticfiles_storage, FileSystemStorage):
        return None
    return Path(staticfiles_storage.location)


def static_state(words: list[str]) -> tuple[str | None, list[Path]]:
    """A digest of what collectstatic would read and how it would write (None: cannot tell),
    and the files it would write (their unhashed copies)."""
    import django
    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders

    root = _storage_root()
    if root is None:
        return None, []
    storages = getattr(settings, "STORAGES", {}) or {}
    files: list[Any] = []
    collected: list[Path] = []
    for finder in get_finders():
        for path, storage in finder.list(_IGNORE_PATTERNS):
            source = getattr(storage, "path", None)
            if source is None:
                return None, []  # a finder's storage that is not on disk
            stat = Path(source(path)).stat()
            prefix = getattr(storage, "prefix", None) or ""
            files.append([prefix, path, str(source(path)), stat.st_size, stat.st_mtime_ns])
            collected.append(root / prefix / path)
    state = {
        "django": django.get_version(),
        "words": words,
        "root": str(root),
        "url": str(getattr(settings, "STATIC_URL", "")),
        "storage": repr(storages.get("staticfiles")),
        "dirs": repr(getattr(settings, "STATICFILES_DIRS", [])),
        "finders": list(getattr(settings, "STATICFILES_FINDERS", [])),
        "files": sorted(files),
    }
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest(), collected


def _recorded(record: Path) -> str | None:
    try:
        return record.read_text().strip()
    except OSError:
        return None


def record_collected(fingerprint: str | None, record: Path | None) -> None:
    """After collectstatic succeeded: what it collected from, for the next start."""
    if fingerprint is None or record is None:
        return
    with contextlib.suppress(OSError):  # read-only: the next start collects again
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # owner-only, as every file in the run dir (one made before too)
        with os.fdopen(fd, "w") as handle:
            handle.write(fingerprint + "\n")
