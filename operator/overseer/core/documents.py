"""Load a YAML or JSON file strictly, keeping enough to say on which line a value is.

Strict means: UTF-8 text only, one document, no duplicate mapping keys (PyYAML keeps the
last one silently; a duplicated job field is a bug to report), no NaN/Infinity in JSON,
and a bound on the size of a document once its YAML aliases are expanded (a few lines of
nested aliases can otherwise stand for billions of nodes).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import yaml
import yaml.constructor

from overseer import errors

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
YAML_SUFFIXES = (".yml", ".yaml")
JSON_SUFFIXES = (".json",)
_TOO_DEEP = "the document is nested too deeply; flatten it"


@dataclasses.dataclass(frozen=True)
class Document:
    """The loaded value, and its YAML node tree to find lines in (None for JSON)."""

    value: Any
    node: yaml.Node | None = None

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node found along ``path``; None without a tree."""
        node = self.node
        if node is None:
            return None
        line = node.start_mark.line + 1
        for step in path:
            child = _child(node, step)
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line


def _child(node: yaml.Node, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
        return node.value[step] if 0 <= step < len(node.value) else None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                return value  # type: ignore[no-any-return]
    return None


# libyaml's parser is about five times faster than the pure-Python one, which
# dominated the sync of large repositories; the pure one remains the fallback.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable key: SafeLoader reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first on line {first.start_mark.line + 1}); "
                    "keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def decode(text: str | bytes) -> str:
    """The text of a file; bytes must be UTF-8 (a byte-order mark is allowed)."""
    if isinstance(text, str):
        return text
    if len(text) > MAX_BYTES:
        msg = (
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it into several files"
        )
        raise errors.LoadError(msg)
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        msg = f"the file is not UTF-8 text (bad byte at offset {error.start}); save it as UTF-8"
        raise errors.LoadError(msg) from None


def load(path: str, text: str | bytes) -> Document:
    """Load ``text`` as JSON when ``path`` ends in .json, as YAML otherwise."""
    content = decode(text)
    if len(content) > MAX_BYTES:
        msg = (
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it into several files"
        )
        raise errors.LoadError(msg)
    if path.lower().endswith(JSON_SUFFIXES):
        return Document(load_json(content))
    return load_yaml(content)


def load_json(content: str) -> Any:
    """Parse JSON, refusing duplicate keys and NaN/Infinity."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                msg = f"found the key {key!r} twice in one object; keep one"
                raise errors.LoadError(msg)
            result[key] = value
        return result

    def constant(name: str) -> Any:
        msg = f"{name} is not a JSON value; use a number or a string"
        raise errors.LoadError(msg)

    try:
        return json.loads(content, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise errors.LoadError(f"not valid JSON: {error.msg}", error.lineno, error.colno) from None
    except RecursionError:
        raise errors.LoadError(_TOO_DEEP) from None


def load_yaml(content: str) -> Document:
    """Parse one YAML document, strictly."""
    loader = _StrictLoader(content)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None)
        _check_size(node)
        return Document(loader.construct_document(node), node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = "; ".join(p for p in (error.context, error.problem) if p)
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise errors.LoadError(f"not valid YAML: {problem or error}", line, column) from None
    except yaml.YAMLError as error:
        raise errors.LoadError(f"not valid YAML: {error}") from None
    except RecursionError:
        raise errors.LoadError(_TOO_DEEP) from None
    finally:
        loader.dispose()


def _check_size(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise errors.LoadError("the document refers to itself through an alias", *_mark(node))
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > MAX_NODES:
            msg = (
                f"the document expands to more than {MAX_NODES} values through its aliases; "
                "write it out with fewer aliases"
            )
            raise errors.LoadError(msg, *_mark(node))
        sizes[key] = total
        return total

    size(root)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
