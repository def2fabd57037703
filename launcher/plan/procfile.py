"""A project's Procfile (the Heroku and honcho convention), read as data: `name: command` lines,
`#` comments and blank lines. launch runs no shell, so a command is split into words as a
shell would (quotes, backslashes) and what only a shell does (`&&`, pipes, redirections,
`$(...)`) is refused on its line rather than run differently.

Supported: leading `NAME=value` assignments (the process's environment), and `$NAME`,
`${NAME}`, `${NAME:-default}` inside a word, replaced from the environment as inside double
quotes (no word splitting, no globbing); `$$` is a literal `$`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import ProfileError

PROCFILE = "Procfile"
WEB = "web"  # the server's own entry: launch serves the site itself (`--only web`)
RELEASE = "release"  # the entry run before the site starts (Heroku's release phase): a step
MAX_PROCFILE = 1 << 16  # bytes: a Procfile larger than this is not a Procfile
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,63})\s*:\s*(.*)")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SHELL_ONLY = re.compile(r"[;&|<>`]|\$\(")
# `python manage.py X`, `python3.12 manage.py X`, `./manage.py X`, `django-admin X`,
# `python -m django X`: a management command, X and what follows.
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_ADMIN = ("django-admin", "django-admin.py")


@dataclass(frozen=True)
class Entry:
    """One `name: command` line: manage.py's words (`manage`) or an argv, run as is, with the
    environment its leading assignments set."""

    name: str
    words: tuple[str, ...]
    manage: bool
    line: int
    env: tuple[tuple[str, str], ...] = ()


def read_procfile(root: Path) -> tuple[Entry, ...]:
    """The entries of the Procfile at `root`, none when there is no Procfile."""
    path = root / PROCFILE
    if not path.is_file():
        return ()
    try:
        if path.stat().st_size > MAX_PROCFILE:
            raise ProfileError(path, None, None, f"larger than {MAX_PROCFILE} bytes: not read")
        text = path.read_text(encoding="utf-8-sig")  # an editor's BOM is no part of line 1
    except UnicodeDecodeError:
        raise ProfileError(path, None, None, "is not UTF-8 text") from None
    except OSError as exc:
        raise ProfileError(path, None, None, f"cannot be read: {exc.strerror}") from None
    return parse_procfile(text, path)


def parse_procfile(text: str, path: Path) -> tuple[Entry, ...]:
    """Every entry of a Procfile's text, in order; one error naming the line otherwise."""
    entries: dict[str, Entry] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if not match:
            raise ProfileError(path, number, None, "not a `name: command` line")
        name, command = match.groups()
        if name in entries:
            raise ProfileError(path, number, name, f"also at line {entries[name].line}")
        entries[name] = _entry(name, command, path, number)
    return tuple(entries.values())


def _entry(name: str, command: str, path: Path, number: int) -> Entry:
    try:
        words = shlex.split(command, comments=True)
    except ValueError as exc:  # "No closing quotation"
        message = f"cannot split into words: {str(exc).lower()}"
        raise ProfileError(path, number, name, message) from None
    shell = next((w for w in _shell_tokens(command) if _SHELL_ONLY.search(w)), None)
    if shell is not None:
        raise ProfileError(
            path, number, name, f"{shell!r} needs a shell, and launch runs commands without one: "
            "write a script, or the command in the profile's processes: or before_start:"
        )
    env = []
    while words and _ASSIGN.fullmatch(words[0]):
        key, _, value = words.pop(0).partition("=")
        env.append((key, value))
    if not words:
        raise ProfileError(path, number, name, "no command")
    if env and name == RELEASE:  # a step runs in the server's environment, as every step does
        raise ProfileError(path, number, name, f"{env[0][0]}=... cannot be given to the release "
                           "step: set it in the profile's env:")
    manage = management_words(words)
    return Entry(name, tuple(manage if manage else words), manage is not None, number, tuple(env))


def _shell_tokens(command: str) -> list[str]:
    """The command's tokens with shell operators split out (`a;b` -> a ; b), quoted text
    whole: an operator inside quotes is an argument, not shell syntax."""
    lexer = shlex.shlex(command, posix=False, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    return [t for t in lexer if not (t[:1] in "'\"" and t[-1:] == t[:1] and len(t) > 1)]


def management_words(words: list[str]) -> list[str] | None:
    """The management command's words when `words` run manage.py or django-admin, else None."""
    rest = words
    if _PYTHON.fullmatch(Path(rest[0]).name):
        if rest[1:3] == ["-m", "django"]:
            return rest[3:] or None
        rest = rest[1:]
    if rest and (Path(rest[0]).name == "manage.py" or rest[0] in _ADMIN):
        return rest[1:] or None
    return None


def expand(
    words: tuple[str, ...], env: Mapping[str, str], *, keep_unset: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Words with `$NAME`, `${NAME}` and `${NAME:-default}` replaced from `env`, and the names
    that were unset with no default (left as `${NAME}` when `keep_unset`, for a unit's
    EnvironmentFile or a pod's Secret to set where it runs)."""
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(3)
        default = match.group(2)
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        if name in env:
            return ""
        missing.append(name)
        return f"${{{name}}}" if keep_unset else ""

    return tuple(_VAR.sub(value, word) for word in words), tuple(missing)
