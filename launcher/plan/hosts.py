"""Which address a person opens for a loopback server, as the project's ALLOWED_HOSTS lets
Django answer it: `launch dev` on 127.0.0.1 where the settings allow only "localhost" answers
every request 400, and says so before anyone opens it."""

from __future__ import annotations

# What Django allows when DEBUG is on and ALLOWED_HOSTS is empty (django.http.request).
DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Django's validate_host: '*', an exact name, or '.domain' for it and its subdomains."""
    host = host.lower()
    for pattern in (p.lower() for p in patterns):
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith(".") and (host.endswith(pattern) or host == pattern[1:]):
            return True
    return False


def open_address(
    host: str, port: int, allowed: tuple[str, ...] | None, debug: bool | None, where: str
) -> tuple[str, str | None]:
    """(the URL to open, a warning or None) for a server bound to `host`:`port`.

    `allowed` is ALLOWED_HOSTS as written (None: computed, unknown), `debug` DEBUG as written
    (None: unknown), `where` the file and line of ALLOWED_HOSTS. Only loopback binds are
    judged: elsewhere the name people use is not known here."""
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if host not in LOOPBACK or allowed is None:
        return url, None
    patterns = allowed
    if not patterns:
        if debug is not True:
            return url, None  # empty with DEBUG off or unknown: nothing is served; Django says so
        patterns = DEBUG_HOSTS
    if host_allowed(shown, patterns):
        return url, None
    for name in ("localhost", "127.0.0.1", "[::1]"):
        if name != shown and host_allowed(name, patterns):
            better = f"http://{name}:{port}/"
            return better, (f"ALLOWED_HOSTS ({where}) does not allow {shown}: requests to "
                            f"{url} answer 400; open {better}")
    return url, (f"ALLOWED_HOSTS ({where}) allows no loopback name: every request to {url} "
                 f"answers 400 (add '{shown}' for local use)")
