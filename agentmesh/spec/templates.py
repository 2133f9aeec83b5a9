"""Prompt templates: Jinja2 with strict undefined variables, in a sandbox.

Templates come from YAML files people share, so they render in Jinja's sandbox (no attribute access to Python
internals). Undefined variables are errors, never empty strings: a typo in a prompt must fail when the spec is
loaded (we check the variables a template uses against what its node provides), not produce a silently
different prompt on a model that then answers something.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import lru_cache
from itertools import pairwise
from typing import Any, TypeGuard

import jinja2
import jinja2.meta
import jinja2.nodes
from jinja2.sandbox import SandboxedEnvironment

#: What ``getattr`` finds on a plain dict: its methods (Jinja's ``d.items`` is the method, even with an "items" key).
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(SandboxedEnvironment):
    """Jinja's sandbox, with each template's globals as one flat dict and a direct way to a dict's keys.

    Jinja keeps a template's globals as a ``ChainMap`` over the environment's and copies that into a fresh dict
    on every render: over half of rendering a debate prompt (measured: 19 µs a render, 8-10 µs with a flat dict),
    paid on every model call. Nothing here changes globals after a template is compiled (Jinja's own advice), so
    a flat copy made at compile time renders the same.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``p.text`` on a plain dict: its key, found without Jinja's way there.

        Jinja tries the attribute first and takes the key once that raised ``AttributeError``; a dict has no
        attributes but its methods, so for any other name the key is what Jinja would return -- without an
        exception raised and caught per access (prompts read ``p.text`` for every previous answer: a debate
        prompt rendered in 6-8 µs instead of 11-14). Missing keys, dict methods and every other object take
        the sandbox's own path.
        """
        if type(obj) is dict and type(attribute) is str and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_env = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


class TemplateSyntaxProblem(ValueError):
    """A template does not parse; ``line`` is the line inside the template."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    return _env.from_string(source)


@lru_cache(maxsize=1024)
def _parsed(source: str) -> jinja2.nodes.Template:
    """A template's syntax tree, parsed once for every check made of it at load (variables, node references)."""
    try:
        return _env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        # the problem is reported at the template's key in the file; in a prompt of many lines, say which one
        where = f" (line {exc.lineno} of the template)" if "\n" in source.strip() and exc.lineno else ""
        raise TemplateSyntaxProblem(f"template syntax error: {exc.message}{where}", exc.lineno) from None


def template_variables(source: str) -> frozenset[str]:
    """Top-level variables a template reads (loop variables and ``set`` names excluded). A template that parses
    but cannot compile -- a filter or test Jinja does not have (``{{ q | uppercase }}``) -- is a
    :class:`TemplateSyntaxProblem` too: Jinja's ``TemplateAssertionError`` came out of ``graph validate`` as a
    traceback, and would have failed the prompt when it rendered."""
    ast = _parsed(source)
    for used in ast.find_all((jinja2.nodes.Filter, jinja2.nodes.Test)):  # (Jinja checks one in an ``if`` only there)
        kind, known = ("filter", _env.filters) if isinstance(used, jinja2.nodes.Filter) else ("test", _env.tests)
        if used.name not in known:
            where = f" (line {used.lineno} of the template)" if "\n" in source.strip() else ""
            raise TemplateSyntaxProblem(f"template error: no {kind} named {used.name!r}{where}", used.lineno)
    try:
        return frozenset(jinja2.meta.find_undeclared_variables(ast))
    except jinja2.TemplateSyntaxError as exc:
        where = f" (line {exc.lineno} of the template)" if "\n" in source.strip() and exc.lineno else ""
        raise TemplateSyntaxProblem(f"template error: {exc.message}{where}", exc.lineno) from None


def guarded_variables(source: str) -> frozenset[str]:
    """Top-level variables a template tests with ``is defined`` / ``is undefined`` or reads through the ``default``
    filter: it says itself that they may be missing (a card shared by a ``call`` node and a ``rounds`` node reads
    ``{% if round is defined %}``), so the load-time check must not call them undefined. A use outside the guard
    still fails when the prompt renders, as every undefined variable does."""
    ast = _parsed(source)
    found: set[str] = set()
    for test in ast.find_all(jinja2.nodes.Test):
        if test.name in ("defined", "undefined") and isinstance(test.node, jinja2.nodes.Name):
            found.add(test.node.name)
    for flt in ast.find_all(jinja2.nodes.Filter):
        if flt.name in ("default", "d") and isinstance(flt.node, jinja2.nodes.Name):
            found.add(flt.node.name)
    return frozenset(found)


def node_references(source: str) -> list[tuple[str, str | None]]:
    """``(node, key)`` for every ``nodes.<node>`` a template reads, ``key`` being what it reads of that node's
    output next (``nodes.solve.answer`` → ``("solve", "answer")``; ``None`` when it reads the output whole, or
    calls a dict method on it). ``nodes["solve"]["answer"]`` counts too; names reached through a variable
    (``{% set n = nodes.solve %}``) are not followed.

    What it is for: a misspelt node or output key would otherwise be found only when the prompt renders, after
    the model calls of every node before it.
    """
    ast = _parsed(source)
    shadowed = "nodes" in {n.name for n in ast.find_all(jinja2.nodes.Name) if n.ctx in ("store", "param")}
    if shadowed:  # a loop or ``set`` rebinds the name: what it reads is not the graph's nodes
        return []
    found: list[tuple[str, str | None]] = []
    accesses = [a for a in ast.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)) if _is_access(a)]
    inner: set[int] = set()  # accesses that are the ``nodes.<node>`` part of a longer ``nodes.<node>.<key>``
    for access in accesses:
        target = access.node
        if _is_access(target) and _is_nodes(target.node):
            node = _accessed_name(target)
            if node is not None and node not in _DICT_ATTRIBUTES:
                key = _accessed_name(access)
                found.append((node, None if key in _DICT_ATTRIBUTES else key))
                inner.add(id(target))
    for access in accesses:
        if id(access) not in inner and _is_nodes(access.node):
            node = _accessed_name(access)
            if node is not None and node not in _DICT_ATTRIBUTES:
                found.append((node, None))
    return found


def numbers_compared(source: str) -> list[tuple[str, str, object]]:
    """``(node, key, number)`` for every ``nodes.<node>.<key> == <number>`` (or ``!=``, either side) a template
    writes: an answer is its parser's normalised text (``'51'``), which is never equal to the number ``51``."""
    found: list[tuple[str, str, object]] = []
    for compare in _parsed(source).find_all(jinja2.nodes.Compare):
        sides = [compare.expr, *(operand.expr for operand in compare.ops)]
        for (left, right), operand in zip(pairwise(sides), compare.ops, strict=True):
            if operand.op not in ("eq", "ne"):
                continue
            for ref, other in ((left, right), (right, left)):
                number = other.value if isinstance(other, jinja2.nodes.Const) else None
                if not isinstance(number, int | float) or isinstance(number, bool) or not _is_access(ref):
                    continue
                target, key = ref.node, _accessed_name(ref)
                if _is_access(target) and _is_nodes(target.node) and key is not None:
                    node = _accessed_name(target)
                    if node is not None:
                        found.append((node, key, number))
    return found


def _is_access(expr: jinja2.nodes.Node) -> TypeGuard[jinja2.nodes.Getattr | jinja2.nodes.Getitem]:
    return isinstance(expr, jinja2.nodes.Getattr | jinja2.nodes.Getitem)


def _is_nodes(expr: jinja2.nodes.Node) -> bool:
    return isinstance(expr, jinja2.nodes.Name) and expr.name == "nodes"


def _accessed_name(access: jinja2.nodes.Node) -> str | None:
    """The constant name ``x.name`` or ``x["name"]`` reads (``None`` for ``x[expression]``)."""
    if isinstance(access, jinja2.nodes.Getattr):
        return str(access.attr)
    if isinstance(access, jinja2.nodes.Getitem) and isinstance(access.arg, jinja2.nodes.Const):
        value = access.arg.value
        return value if isinstance(value, str) else None
    return None


def check_template(source: str) -> None:
    """Raise :class:`TemplateSyntaxProblem` if ``source`` does not parse."""
    template_variables(source)


def render(source: str, variables: dict[str, Any]) -> str:
    """Render with strict undefined variables; a missing one raises :class:`jinja2.UndefinedError`."""
    return _compiled(source).render(**variables)
