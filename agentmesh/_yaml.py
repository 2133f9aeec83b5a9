"""Reading the YAML files people write (graph specs, agent cards, model settings, scripted models), strictly.

PyYAML keeps the last of two equal keys in a mapping and drops the other without a word: two nodes or two
endpoints of one name would leave one of them silently unused. Every YAML file agentmesh reads goes through
:func:`read_yaml`, which refuses that, and says where a file is not valid YAML (line, problem, context).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]
"""A path into a YAML document: mapping keys and sequence indexes."""

LineMap = dict[Loc, int]
"""The line of every path of a document (see :func:`line_map`)."""


class YamlError(ValueError):
    """A file that is not valid YAML, or that writes a key twice; the message starts with ``file:line:``."""


def read_yaml_file(path: Path) -> tuple[Any, yaml.Node | None]:
    """:func:`read_yaml` of the file at ``path``, read as UTF-8 whatever the locale: a file that is not (saved as
    Latin-1) or cannot be read is a :class:`YamlError` naming the file, the line and the byte, not a
    ``UnicodeDecodeError`` traceback."""
    return read_yaml(read_utf8(path), str(path))


def read_utf8(path: Path) -> str:
    """The text of ``path``, read as UTF-8; :class:`YamlError` naming the file (and where it is not UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise YamlError(
            f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise YamlError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None


def read_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    """The data in ``text`` and its node tree (for line numbers); :class:`YamlError` naming ``file`` otherwise."""
    loader = yaml.SafeLoader(text)
    try:  # one parse: the data is constructed from the composed tree, as yaml.safe_load does internally
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = f"{problem} ({context} at line {context_mark.line + 1})"
        raise YamlError(f"{file}{line}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    duplicates = duplicate_keys(root) if root is not None else []
    if duplicates:
        listed = "\n".join(f"{file}:{d}" for d in duplicates)
        raise YamlError(listed if len(duplicates) == 1 else f"{len(duplicates)} problems in {file}:\n{listed}")
    return data, root


def duplicate_keys(node: yaml.Node, loc: tuple[str | int, ...] = ()) -> list[str]:
    """``line: field: key 'k' again (first at line N)...`` for every mapping key written twice under ``node``."""
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            line = key.start_mark.line + 1
            if k in seen and k != "<<":
                where = ".".join(str(p) for p in loc) or "top level"
                found.append(f"{line}: {where}: key {k!r} again (first at line {seen[k]}); YAML keeps only the last")
            seen.setdefault(k, line)
            found += duplicate_keys(value, (*loc, k))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += duplicate_keys(item, (*loc, i))
    return found


def line_map(node: yaml.Node, loc: Loc = ()) -> LineMap:
    """The line of every key and item under ``node``, by its path: so that an error found in the data (by pydantic,
    by a check of ours) can point at the line the user wrote it on."""
    lines: LineMap = {loc: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            lines[(*loc, k)] = key.start_mark.line + 1
            for sub, line in line_map(value, (*loc, k)).items():
                lines.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(line_map(item, (*loc, i)))
    return lines


def line_of(lines: LineMap, loc: Loc) -> int | None:
    """The line of ``loc``, or of the nearest enclosing key the file has (a missing field's mapping)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
