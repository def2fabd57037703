"""Read one profile file into plain values, with the line of every key, in bounded time and memory.

A profile is small; a hostile or mistaken one must not make the launcher hang or swell. So the
bytes read, the nesting depth and the values built (aliases included) are all capped, and YAML
is composed here from the parser's events, without recursion, instead of by PyYAML's composer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from launcher.errors import ProfileError

MAX_PROFILE_BYTES = 256 * 1024  # a profile and the files it extends, together
MAX_DEPTH = 32  # nested mappings and lists (the schema needs 3)
MAX_VALUES = 10_000  # values built from one file, after aliases are expanded

KeyPath = tuple[str, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Origin:
    """Where a value was written: the file and line, and the `${VAR}`s that filled it in."""

    file: Path
    line: int
    via: tuple[str, ...] = ()


def read_profile_file(
    path: Path, budget: int = MAX_PROFILE_BYTES
) -> tuple[dict[str, Any], dict[KeyPath, Origin], int]:
    """The mapping in `path`, the origin of each key, and the bytes it used of `budget`."""
    raw = _read_bytes(path, budget)
    text = _decode(path, raw)
    loader = _Loader(text)
    try:
        node = _compose(path, loader)
        origins: dict[KeyPath, Origin] = {}
        builder = _Builder(path, loader, origins)
        data = builder.build(node, (), 0) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and mark and mark.index >= len(text.rstrip()):
            mark = exc.context_mark  # an unclosed quote or bracket: point where it opened
        line = mark.line + 1 if mark else None
        raise ProfileError(path, line, None, f"invalid YAML: {exc.problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ProfileError(
            path, line, None, f"invalid YAML: character U+{exc.character:04X} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise ProfileError(path, None, None, f"invalid YAML: {_first_line(exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ProfileError(path, 1, None, "a profile must be a mapping of settings")
    return data, origins, len(raw)


def _read_bytes(path: Path, budget: int) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(budget + 1)
    except IsADirectoryError:
        raise ProfileError(path, None, None, "is a directory, not a profile file") from None
    except OSError as exc:
        raise ProfileError(path, None, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > budget:
        raise ProfileError(
            path,
            None,
            None,
            f"too large: a profile and the files it extends may hold "
            f"{MAX_PROFILE_BYTES // 1024} KiB together",
        )
    return raw


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProfileError(
            path,
            line,
            None,
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
        ) from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _mark(mark: object) -> yaml.Mark | None:
    """An event's mark as a node's: the C parser's Mark has the same fields (line, column)
    though the stubs give nodes only the pure-Python class."""
    return cast("yaml.Mark | None", mark)


def _compose(path: Path, loader: yaml.SafeLoader) -> yaml.Node | None:
    """Parser events -> one document's node graph, iteratively, refusing what would not end well.

    Unlike PyYAML's composer, an anchor is usable only once its node is complete, so an alias
    can never point into its own collection (no cycles to walk later).
    """
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # DocumentStart
    anchors: dict[str, yaml.Node] = {}
    stack: list[list[Any]] = []  # [collection node, pending mapping key or None]
    root: yaml.Node | None = None
    while root is None:
        event = loader.get_event()
        line = event.start_mark.line + 1
        node: yaml.Node
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise ProfileError(
                    path, line, None, f"invalid YAML: alias *{event.anchor} has no anchor before it"
                )
            node = anchors[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag in (None, "!"):
                tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(
                tag, event.value, _mark(event.start_mark), _mark(event.end_mark), style=event.style
            )
            if event.anchor is not None:
                anchors[event.anchor] = node
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise ProfileError(path, line, None, f"nested more than {MAX_DEPTH} levels deep")
            kind = (
                yaml.SequenceNode
                if isinstance(event, yaml.SequenceStartEvent)
                else yaml.MappingNode
            )
            tag = event.tag
            if tag in (None, "!"):
                tag = loader.resolve(kind, None, event.implicit)
            stack.append([kind(tag, [], _mark(event.start_mark), None), None, event.anchor])
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            node, _, anchor = stack.pop()
            node.end_mark = event.end_mark
            if anchor is not None:
                anchors[anchor] = node
        else:  # DocumentEnd cannot come before the root node is complete
            raise ProfileError(path, line, None, "invalid YAML: unexpected end of document")
        if not stack:
            root = node
        elif isinstance(stack[-1][0], yaml.SequenceNode):
            stack[-1][0].value.append(node)
        elif stack[-1][1] is None:
            stack[-1][1] = node
        else:
            stack[-1][0].value.append((stack[-1][1], node))
            stack[-1][1] = None
    loader.get_event()  # DocumentEnd
    if loader.check_event(yaml.DocumentStartEvent):
        line = loader.peek_event().start_mark.line + 1
        raise ProfileError(path, line, None, "a profile is one YAML document; found a second")
    return root


class _Builder:
    """Nodes -> dicts, lists and scalars, noting the line of every key and list item."""

    def __init__(self, path: Path, loader: yaml.SafeLoader, origins: dict[KeyPath, Origin]):
        self.path = path
        self.loader = loader
        self.origins = origins
        self.count = 0

    def error(self, node: yaml.Node, key_path: KeyPath, message: str) -> ProfileError:
        return ProfileError(
            self.path, node.start_mark.line + 1, ".".join(key_path) or None, message
        )

    def build(self, node: yaml.Node, key_path: KeyPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.error(
                node, key_path, f"more than {MAX_VALUES} values (aliases expanding too far?)"
            )
        if depth > MAX_DEPTH:
            raise self.error(node, key_path, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, key_path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.error(node, key_path, f"YAML tag {_short(node.tag)} is not supported")
            items = []
            for index, item in enumerate(node.value):
                item_path = (*key_path, str(index))
                self.origins[item_path] = Origin(self.path, item.start_mark.line + 1)
                items.append(self.build(item, item_path, depth + 1))
            return items
        return self.scalar(node, key_path)

    def mapping(self, node: yaml.MappingNode, key_path: KeyPath, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            raise self.error(node, key_path, f"YAML tag {_short(node.tag)} is not supported")
        result: dict[str, Any] = {}
        # `<<: *base` first, so keys written out beside it win (and keep their own lines).
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.error(
                            key_node, key_path, "<< merges a mapping (or a list of them)"
                        )
                    for key, value in self.mapping(source, key_path, depth + 1).items():
                        result.setdefault(key, value)
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, key_path, "a key must be a plain name")
            key = str(self.scalar(key_node, key_path))
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ProfileError(self.path, line, ".".join((*key_path, key)), "duplicate key")
            seen.add(key)
            self.origins[(*key_path, key)] = Origin(self.path, line)
            result[key] = self.build(value_node, (*key_path, key), depth + 1)
        return result

    def scalar(self, node: yaml.Node, key_path: KeyPath) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError, LookupError):
            # e.g. `!!int x`, `!!bool auto`, `!!timestamp nope`, an int of over 4300 digits
            raise self.error(node, key_path, f"not a valid {_short(node.tag)} value") from None


def _short(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")
