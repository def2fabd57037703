"""The one masking rule: what counts as a secret, and how it is hidden wherever text surfaces.

Every output path (`launch show` text and JSON, `launch status`, the state file, the
supervisor's log lines, reload replies, error messages) passes through `Masker`, so a secret
is hidden the same way everywhere. The rule, as the README states it:

1. A variable whose NAME is secret has its whole value masked. Case does not matter. A name is
   secret when it contains SECRET, PASSWORD, PASSWD, PASSPHRASE, TOKEN, KEY (so KEYS, APIKEY,
   FERNET_KEYS), DSN, CREDENTIAL or PRIVATE anywhere, or has PASS, PWD, AUTH or SALT as one of
   its `_`/`-`/`.`-separated words (DB_PASS, MYSQL_PWD, BASIC_AUTH). The shell's own `PWD` is
   not a secret. Accepted false positives, masked although harmless: names that merely
   contain KEY or TOKEN (KEYBOARD_LAYOUT, MONKEY_PATCH, KEYCLOAK_URL, TOKENIZERS_PARALLELISM).
2. In any text, whatever the name: the password of a URL (`scheme://user:PASSWORD@host`, the
   password running to the last `@` before the host, so it may hold `/`, `#`, `?`, `@`, `:`),
   of a scheme-less `user:PASSWORD@host`, a secret-named query parameter or keyword
   (`?password=`, `&pass=`, `token=`, libpq's `password=... host=...`) and the word after a
   secret-named flag (`--token VALUE`).
3. The values found by 1 and 2 in the environment and the profile are also replaced wherever
   they appear inside other text (an error message, a failed reload's reason), when they are
   at least `MIN_SEARCHED` characters long (a shorter one would hide unrelated words).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

MASK = "***"
MIN_SEARCHED = 6

_ANYWHERE = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|KEY|DSN|CREDENTIAL|PRIVATE", re.IGNORECASE
)
_WORDS = frozenset({"PASS", "PWD", "AUTH", "SALT"})
_NOT_SECRET = frozenset({"PWD"})  # the shell's working directory

# scheme://user:PASSWORD@host: up to the last '@' of the word, so the password may hold '/',
# '#', '?', '@' and ':' (what a URL parser would cut it at is no protection here). Found by
# _url_passwords, in linear time: as one regex it rescans the word from every position.
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_URL_USER = re.compile(r"[^\s:/?#@]*:")
_SPACE = re.compile(r"\s")
# Each pattern: `head` is kept, `secret` becomes MASK.
# user:PASSWORD@host with no scheme (DSN-like values), not the tail of a scheme://.
_BARE_PASSWORD = re.compile(
    r"(?P<head>(?<![\w.+\-/:@%*])[A-Za-z0-9_.+-]*:)(?!//)(?P<secret>\S+)(?=@[\w\[])"
)
# name=value in a query string or a keyword DSN; hidden when the name is secret.
_PARAM = re.compile(
    r"(?P<head>(?<![^\s?&;,(])(?P<name>[A-Za-z0-9_.\-]+)=)"
    r"(?P<secret>'[^']*'|\"[^\"]*\"|[^\s&;,#)]*)"
)
# --flag VALUE; hidden when the flag's name is secret.
_FLAG = re.compile(
    r"(?P<head>(?<!\S)--?(?P<name>[A-Za-z][A-Za-z0-9_-]*)\s+)(?P<secret>[^\s-]\S*)"
)

# Each pattern with a character every match holds.
_PATTERNS = ((_BARE_PASSWORD, "@"), (_PARAM, "="), (_FLAG, "-"))


@functools.lru_cache(maxsize=1024)  # called for every name=value and --flag in every text
def is_secret(name: str) -> bool:
    """Whether a variable, parameter or flag of this name holds a secret (rule 1)."""
    if name.upper() in _NOT_SECRET:
        return False
    if _ANYWHERE.search(name):
        return True
    return any(word in _WORDS for word in re.split(r"[_.\-\d\s]+", name.upper()))


def mask_text(text: str, found: Callable[[str], Any] | None = None) -> str:
    """Hide the passwords and secret parameters any text may hold (rule 2).

    `found` is called with each hidden value (to search for it elsewhere, rule 3)."""

    def hidden(secret: str, name: str | None = None) -> bool:
        # "$NAME" refers to a variable (as `launch show`'s command line does): nothing to hide.
        reference = secret.strip("\"'").startswith("$")
        if not secret or secret == MASK or reference or (name is not None and not is_secret(name)):
            return False
        if found is not None:
            found(secret)
        return True

    def hide(match: re.Match[str]) -> str:
        name = match["name"] if "name" in match.re.groupindex else None
        return match["head"] + MASK if hidden(match["secret"], name) else match.group(0)

    pieces, last = [], 0
    for start, end in _url_passwords(text):
        if hidden(text[start:end]):
            pieces += [text[last:start], MASK]
            last = end
    text = "".join(pieces) + text[last:]
    for pattern, needed in _PATTERNS:
        if needed in text:  # a scan at C speed saves a pass of the pattern over a long text
            text = pattern.sub(hide, text)
    return text


def _url_passwords(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each password in `scheme://user:PASSWORD@host`: from the user's
    `:` to the last `@` of the word. Each character is looked at a bounded number of times."""
    spans: list[tuple[int, int]] = []
    resume = 0  # a scheme starts after the previous password (matches do not overlap)
    word_end, word_last_at = -1, -1  # the word being read: where it ends, its last '@'
    sep = text.find("://")
    while sep != -1:
        start = sep
        while start > resume and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < sep and not ("a" <= text[start].lower() <= "z"):
            start += 1  # a scheme begins with a letter
        user = _URL_USER.match(text, sep + 3) if start < sep else None
        if user is not None:
            secret = user.end()
            if secret > word_end:
                space = _SPACE.search(text, secret)
                word_end = space.start() if space else len(text)
                word_last_at = text.rfind("@", secret, word_end)
            if word_last_at >= secret:
                spans.append((secret, word_last_at))
                resume = word_last_at
                sep = text.find("://", word_last_at)
            else:  # no '@' left in this word: nor for any later scheme in it
                sep = text.find("://", word_end)
            continue
        sep = text.find("://", sep + 3)
    return spans


def mask_value(name: str, value: str) -> str:
    """A variable's value as it may be shown: all of it hidden for a secret name (rule 1),
    else with the passwords inside it hidden (rule 2)."""
    return MASK if is_secret(name) else mask_text(value)


@dataclass(frozen=True)
class Masker:
    """Applies the rule to text and data, knowing the secret values to search for (rule 3)."""

    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, *envs: Mapping[str, Any]) -> Masker:
        """From environments (the caller's, the profile's): secret-named values and the
        passwords inside any value."""
        values: set[str] = set()
        for env in envs:
            for name, value in env.items():
                if not isinstance(value, str | int | float) or isinstance(value, bool):
                    continue
                text = str(value)
                if is_secret(str(name)):
                    values.update([text.strip(), *text.splitlines()])
                mask_text(text, values.add)
        return cls.with_values(values)

    @classmethod
    def with_values(cls, values: Iterable[str]) -> Masker:
        expanded = set()
        for value in values:
            value = value.strip().strip("'\"")
            expanded.update({value, unquote(value)})
        kept = {v for v in expanded if len(v) >= MIN_SEARCHED}
        return cls(tuple(sorted(kept, key=len, reverse=True)))

    def __add__(self, other: Masker) -> Masker:
        return Masker.with_values((*self.values, *other.values))

    def text(self, text: str) -> str:
        """Known secret values replaced, then rule 2 applied."""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return mask_text(text)

    def data(self, value: Any) -> Any:
        """Every string in a JSON-like structure masked; a secret-named key's value hidden."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: MASK if isinstance(v, str) and is_secret(str(k)) and v else self.data(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
