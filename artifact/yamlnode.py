"""YAML with line numbers: the reader of reference files (torch-free).

Every value is a Node that knows its file, line and field path, so an error reads
`FILE:LINE: FIELD: problem; fix` and exits with code 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Optional, overload

import yaml

from artifact.errors import ArtifactError


class ReferenceFileError(ArtifactError):
    """The reference file cannot be used: printed as `FILE:LINE: FIELD: problem; fix`, exit 2."""


# --------------------------------------------------------------------------- YAML with line numbers
class _LineDict(dict):
    line: int = 0
    key_lines: dict


class _LineList(list):
    line: int = 0
    item_lines: list


# libyaml's parser when PyYAML has it (10x faster on the 80 KB H200 reference); the constructors,
# and so what a file may contain, are SafeLoader's either way.
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc,valid-type]
    """SafeLoader whose mappings and lists remember the line of every key and item."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            # `? [a, b]` makes a list a key: unhashable, it crashed the loader with a TypeError.
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or a mapping", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {out.key_lines[key]})", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class Node:
    """A value from the file with where it came from, and typed accessors that raise
    ReferenceFileError naming file, line and field path."""

    def __init__(self, value: Any, path: str, file: Path, line: int):
        self.value = value
        self.path = path
        self.file = file
        self.line = line

    def error(self, problem: str, fix: str = "") -> ReferenceFileError:
        where = f"{self.path}: " if self.path else ""
        return ReferenceFileError(f"{self.file}:{self.line}: {where}{problem}" + (f"; {fix}" if fix else ""))

    def _sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    # -- structure
    def mapping(self) -> dict:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {describe(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        return key in self.mapping()

    @overload
    def get(self, key: str) -> Node: ...
    @overload
    def get(self, key: str, required: Literal[True]) -> Node: ...
    @overload
    def get(self, key: str, required: bool) -> Optional[Node]: ...
    def get(self, key: str, required: bool = True) -> Optional[Node]:
        m = self.mapping()
        if key not in m:
            if required:
                raise self.error(f"missing field '{key}'", f"add '{key}:' to this entry")
            return None
        lines = getattr(m, "key_lines", {})
        return Node(m[key], self._sub(key), self.file, lines.get(key, self.line))

    def only_keys(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        m = self.mapping()
        for key in m:
            if key not in allowed:
                line = getattr(m, "key_lines", {}).get(key, self.line)
                raise Node(m[key], self._sub(str(key)), self.file, line).error(
                    "unknown field", f"allowed here: {', '.join(allowed)}"
                )

    def items(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {describe(self.value)}")
        lines = getattr(self.value, "item_lines", [self.line] * len(self.value))
        return [Node(v, f"{self.path}[{i}]", self.file, lines[i]) for i, v in enumerate(self.value)]

    # -- scalars
    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"expected a non-empty string, got {describe(self.value)}")
        return self.value

    def number(self, positive: bool = False, nonnegative: bool = False) -> float:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            raise self.error(f"expected a finite number, got {describe(v)}")
        if positive and v <= 0:
            raise self.error(f"must be positive, got {v!r}")
        if nonnegative and v < 0:
            raise self.error(f"must not be negative, got {v!r}")
        return float(v)

    def integer(self, positive: bool = False) -> int:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"expected a whole number, got {describe(v)}")
        if positive and v <= 0:
            raise self.error(f"must be positive, got {v!r}")
        return v

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {describe(self.value)}")
        return self.value

    def choice(self, options: Iterable[str]) -> str:
        options = tuple(options)
        if self.value not in options:
            raise self.error(f"{self.value!r} is not one of {', '.join(options)}")
        return self.value


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"


def load_yaml(path: Path) -> tuple[Node, str]:
    """The file's top-level node and its text; bad YAML names the line and column. Bounded in
    size, depth and aliases (harness.yamlsafe) before anything is built."""
    from harness import yamlsafe

    try:
        text = yamlsafe.read_user_file(path, noun="reference", missing_fix="; give an existing file to --reference",
                                       folder_fix="artifact/references/*.yaml", too_big_fix="not a reference file")
    except yamlsafe.UnreadableFile as exc:
        raise ReferenceFileError(str(exc)) from None
    try:
        data = yamlsafe.load(text, _Loader)
    except yamlsafe.YamlTooBig as exc:
        raise ReferenceFileError(f"{path}: {exc}; a reference file is written out plainly (no anchors needed)") from None
    except yamlsafe.YamlUnsafeText as exc:
        raise ReferenceFileError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        line, column, problem = yamlsafe.syntax_error(exc)
        at = f"{line}: column {column}: " if line is not None else "1: "
        raise ReferenceFileError(f"{path}:{at}malformed YAML: {problem}; fix the syntax at that line") from None
    return Node(data, "", path, getattr(data, "line", 1)), text


def plain(value: Any) -> Any:
    """Strip the line-tracking types so records serialise as ordinary JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
