"""Read a YAML profile: line marks, `extends:`, `${VAR:-default}`, and errors as file:line key.

Reading the profile files is the only I/O here; the environment comes in as a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from launcher.errors import ProfileError
from launcher.plan.lookup import Located, locate, nearest, parent_profile, resolve
from launcher.plan.overrides import apply as apply_overrides
from launcher.plan.overrides import overriding
from launcher.plan.reader import MAX_PROFILE_BYTES, KeyPath, Origin, read_profile_file
from launcher.plan.schema import Process, Profile
from launcher.plan.secrets import Masker, is_secret

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

MAX_EXTENDS = 16  # profiles in one extends chain


@dataclass(frozen=True)
class LoadedProfile:
    """A validated profile plus where each of its values came from."""

    name: str
    path: Path
    profile: Profile
    origins: Mapping[KeyPath, Origin]
    # Variables an `env:` value needs that were not set (only when loaded with `defer_env`).
    deferred: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()  # dotted keys set on the command line (`--bind`, ...)
    # How `launch NAME` found it, and the files its `extends:` chain read (itself first).
    located: Located | None = None
    chain: tuple[Path, ...] = ()
    defer_env: bool = False  # loaded for a unit or a pod: variables may be set where it runs

    def base_dir(self, key: KeyPath) -> Path:
        """Relative paths resolve against the directory of the file that wrote them."""
        origin = self.origins.get(key)
        return (origin.file if origin else self.path).parent


def load_profile(
    name: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    defer_env: bool = False,
) -> LoadedProfile:
    """Find, read, merge, interpolate and validate a profile.

    `defer_env`: an unset variable in an `env:` value is no error, it stays `${NAME}` and is
    listed in `deferred` (a systemd unit is rendered where its secrets are not set).
    """
    located = locate(name, cwd, env)
    path = located.path
    data, origins, chain = _read_with_extends(path, cwd, env)
    via: dict[KeyPath, list[str]] = {}
    deferred: list[str] = []
    data = _interpolate(data, origins, env, (), via, deferred if defer_env else None)
    origins = {
        k: replace(o, via=tuple(via[k])) if k in via else o for k, o in origins.items()
    }
    apply_overrides(data, overrides or {})
    profile = _validate(data, origins, path, overrides or {})
    return LoadedProfile(
        name=path.stem,
        path=path,
        profile=profile,
        origins=origins,
        overrides=tuple(overrides or ()),
        deferred=tuple(deferred),
        located=located,
        chain=chain,
        defer_env=defer_env,
    )


def extends_chain(path: Path, cwd: Path, env: Mapping[str, str]) -> tuple[Path, ...]:
    """The files a profile reads through `extends:` when launched from `cwd` with `env`
    (itself first): what a systemd unit or a pod must find again."""
    return _read_with_extends(path, cwd, env)[2]


def _read_with_extends(
    path: Path, cwd: Path, env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[KeyPath, Origin], tuple[Path, ...]]:
    """The profile merged over the chain of profiles it extends, read in bounded work."""
    layers: list[tuple[dict[str, Any], dict[KeyPath, Origin]]] = []
    chain: list[Path] = []
    budget = MAX_PROFILE_BYTES
    while True:
        data, origins, size = read_profile_file(path, budget)
        budget -= size
        chain.append(path)
        layers.append((data, origins))
        parent_ref = data.pop("extends", None)
        if parent_ref is None:
            break
        line = origins[("extends",)].line
        if not isinstance(parent_ref, str) or not parent_ref:
            raise ProfileError(path, line, "extends", "must be a profile name")
        parent_path, why = parent_profile(path, parent_ref, cwd, env)
        if parent_path is None:
            raise ProfileError(path, line, "extends", why)
        if resolve(parent_path) in map(resolve, chain):
            loop = " -> ".join(p.name for p in (*chain, parent_path))
            raise ProfileError(path, line, "extends", f"extends loops back on itself: {loop}")
        if len(chain) >= MAX_EXTENDS:
            raise ProfileError(
                path, line, "extends", f"extends chain longer than {MAX_EXTENDS} profiles"
            )
        path = parent_path
    data, origins = layers.pop()
    _long_processes(data, origins, {}, {})
    while layers:
        child, child_origins = layers.pop()
        _long_processes(child, child_origins, data, origins)
        data, origins = _merge(data, child), {**origins, **child_origins}
    return data, origins, tuple(map(resolve, chain))


def _long_processes(
    data: dict[str, Any],
    origins: dict[KeyPath, Origin],
    base: dict[str, Any],
    base_origins: dict[KeyPath, Origin],
) -> None:
    """A process written short (a command line, an argv) as the mapping it stands for, so a
    profile that extends it can change one key (`worker: {instances: 4}`); a layer that gives
    `command:` or `argv:` replaces both below it, as a whole command."""
    processes = data.get("processes")
    if not isinstance(processes, dict):
        return
    below = base.get("processes")
    for name, spec in processes.items():
        written = ("processes", str(name))
        if isinstance(spec, str | list):
            field = "command" if isinstance(spec, str) else "argv"
            processes[name] = spec = {field: spec}
            for path in [k for k in origins if k[:2] == written]:
                origins[(*written, field, *path[2:])] = origins[path]
        under = below.get(name) if isinstance(below, dict) else None
        if isinstance(spec, dict) and isinstance(under, dict) and {"command", "argv"} & set(spec):
            assert isinstance(below, dict)
            below[name] = {k: v for k, v in under.items() if k not in ("command", "argv")}
            for path in [k for k in base_origins if k[:2] == written and k[2:3] in
                         (("command",), ("argv",))]:
                del base_origins[path]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced whole."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _interpolate(
    value: Any,
    origins: Mapping[KeyPath, Origin],
    env: Mapping[str, str],
    key_path: KeyPath,
    via: dict[KeyPath, list[str]],
    deferred: list[str] | None = None,
) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string; `$$` is a literal `$`.

    `via` collects, per key, which variables filled it in (names only: values may be secret).
    """
    if isinstance(value, dict):
        return {
            k: _interpolate(v, origins, env, (*key_path, k), via, deferred)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, origins, env, (*key_path, str(i)), via, deferred)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            via.setdefault(key_path, []).append(f"${name}")
            return env[name]
        if default is not None:
            via.setdefault(key_path, []).append(f"${name} unset: its default")
            return default
        # An environment's value, the profile's or a process's: set where the unit runs.
        in_env = key_path[:1] == ("env",) or (key_path[:1] == ("processes",)
                                               and key_path[2:3] == ("env",))
        if deferred is not None and in_env:
            deferred.append(name)
            return f"${{{name}}}"
        origin = origins.get(key_path)
        raise ProfileError(
            origin.file if origin else None,
            origin.line if origin else None,
            ".".join(key_path),
            f"${{{name}}} is not set (write ${{{name}:-default}} for a default)",
        )

    return _VAR.sub(expand, value)


def _validate(
    data: dict[str, Any],
    origins: Mapping[KeyPath, Origin],
    path: Path,
    overrides: Mapping[str, Any],
) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(p) for p in error["loc"])
        # pydantic reports union members as extra loc parts (e.g. 'int', 'literal[...]').
        if error["type"] != "missing":
            loc = _trim_to_known(loc, data)
        key = ".".join(loc)
        # The profile's own secrets (env values) never reach the message, whatever key failed.
        env = data.get("env")
        masker = Masker.of(env if isinstance(env, dict) else {})
        option = overriding(loc, overrides)
        if option:
            message = masker.text(_message(error, loc))
            raise ProfileError(None, None, option, message) from None
        origin = origins.get(loc)
        while origin is None and loc:
            loc = loc[:-1]
            origin = origins.get(loc)
        raise ProfileError(
            origin.file if origin else path,
            origin.line if origin else None,
            key,
            masker.text(_message(error, tuple(key.split(".")))),
        ) from None


def _trim_to_known(loc: tuple[str, ...], data: Any) -> tuple[str, ...]:
    """The parts of `loc` that name keys and items of the data: a union member's tag between
    them (`list` in before_start.list.0) is left out, and nothing past the data's end."""
    kept: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif not isinstance(node, dict | list):
            break
        else:
            continue
        kept.append(part)
    return tuple(kept)


def _message(error: Mapping[str, Any], loc: tuple[str, ...]) -> str:
    if error["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        hint = nearest(loc[-1], list(model.model_fields)) if model else ""
        return f"unknown setting{hint}"
    if error["type"] == "missing":
        return "is required"
    given = error.get("input")
    text = str(error["msg"])
    text = text.removeprefix("Value error, ")
    if any(is_secret(part) for part in loc):
        # Never echo what a secret-named key holds: not even a number given for a string.
        return f"{text} (value not shown: '{loc[-1]}' names a secret)"
    if isinstance(given, str | int | float | bool) and not isinstance(given, dict):
        return f"{text} (got {given!r})"
    return text


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Profile
    if loc[:1] == ("processes",) and len(loc) >= 2:  # a mapping of processes, by name
        model, loc = Process, loc[2:]
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model

