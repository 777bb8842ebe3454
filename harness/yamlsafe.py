"""YAML for files a user hands in (plans, reference files): bounded before anything is built (torch-free).

SafeLoader builds no objects it should not, but it builds as many as the document describes: an
alias bomb of 8 KB (anchors of lists of aliases of lists ...) describes 10^9 values, and anything
that walks the result (a copy, a type check, a recursive conversion) walks every one of them,
which took 40 s and 2.4 GB at 10^8 and never ended at 10^9. Here the node graph is composed
first, its size with every alias expanded is counted (memoised, so counting is linear in the
document), and a document beyond MAX_NODES values, MAX_DEPTH levels or MAX_BYTES is refused
before construction.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any, Optional

import yaml

from harness.records import unsafe_text

MAX_BYTES = 4 * 2**20  # the largest shipped reference is 80 KB
MAX_NODES = 200_000  # values after expanding aliases; the largest shipped reference has ~20,000
MAX_DEPTH = 64


class YamlTooBig(ValueError):
    """The document is larger, deeper or more aliased than any plan or reference file."""


class YamlUnsafeText(ValueError):
    """A value holds a control or bidi character: plans and references are plain text."""


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The file's text. Raises OSError (unreadable, a folder, not a plain file),
    UnicodeDecodeError, or YamlTooBig."""
    # O_NONBLOCK: a FIFO given as a plan or reference must not wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a plain file", str(path))
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise YamlTooBig(f"larger than {max_bytes // 2**20} MiB, which no plan or reference file is")
    return raw.decode("utf-8")


class UnreadableFile(ValueError):
    """read_user_file's one-line reason, for the caller to raise as its own error type."""


def read_user_file(path: Path, *, noun: str, missing_fix: str, folder_fix: str, too_big_fix: str) -> str:
    """read_text for a file a user named (a plan, a reference): every way it can fail becomes one
    line naming the file, the problem and the fix. `noun` is "plan" or "reference"."""
    try:
        return read_text(path)
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: {noun} file not found{missing_fix}") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{path}: is a folder; give a {noun} file ({folder_fix})") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read the {noun} file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{path}: not UTF-8 text (byte {exc.start}); a {noun} is a YAML text file") from None
    except YamlTooBig as exc:
        raise UnreadableFile(f"{path}: {exc}; {too_big_fix}") from None


def syntax_error(exc: yaml.YAMLError) -> tuple[Optional[int], Optional[int], str]:
    """(line, column, problem) of a YAML syntax error, 1-based; None where PyYAML gives no mark."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return None, None, problem
    return mark.line + 1, mark.column + 1, problem


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_size(root: yaml.Node, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Raise YamlTooBig when the node graph, aliases expanded, exceeds the bounds (iterative: a
    deep document must not exhaust the interpreter's stack here either), and YamlUnsafeText for
    a value with a control character (the same walk visits every value)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if size[key] > max_nodes:
                raise YamlTooBig(f"expands to more than {max_nodes} values (aliases repeating aliases?), "
                                 "more than any plan or reference file")
            if depth[key] > max_depth:
                raise YamlTooBig(f"nested more than {max_depth} levels deep")
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlTooBig("an alias refers to the node that contains it (a recursive document)")
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            bad = unsafe_text(node.value)
            if bad:
                # A terminal escape or a bidi override in a claim id or GPU name would reach the
                # reviewer's terminal and verdict.md, or hide what a string is.
                raise YamlUnsafeText(f"line {node.start_mark.line + 1}: a value holds the control character {bad}; "
                                     "plans and references are plain text")
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) not in size:
                stack.append((kid, False))


def load(text: str, loader_cls: type = yaml.SafeLoader) -> Any:
    """Like yaml.load(text, loader_cls), refusing oversized documents before building them.
    Raises yaml.YAMLError for bad syntax, YamlTooBig for documents beyond the bounds and
    YamlUnsafeText for a value with a control character."""
    loader = loader_cls(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlTooBig(f"nested more than {MAX_DEPTH} levels deep") from None
        if node is None:
            return None
        check_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
