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
from typing import Any, NamedTuple, TypeGuard

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
    return frozenset(name for name in _guarded(source) if "." not in name)


def guarded_nodes(source: str) -> frozenset[str]:
    """The nodes whose output a template says itself may be missing, the way :func:`guarded_variables` finds a
    variable's: ``{% if nodes.x is defined %}``, ``nodes.x | default(...)``, and the two only nodes have,
    ``'x' in nodes`` and ``nodes.get('x')``. A read of ``nodes.x.key`` under ``is defined`` or ``default`` is no
    guard: Jinja fails on the missing ``nodes.x`` before the test or the filter sees anything."""
    return frozenset(name.removeprefix("nodes.") for name in _guarded(source) if name.startswith("nodes."))


def _guarded(source: str) -> frozenset[str]:
    """What a template guards against being undefined: a variable by its name (``round``), a node's output as
    ``nodes.<node>`` (one analysis for both, so that a guard Jinja honours is a guard to every load-time check)."""
    ast = _parsed(source)
    return _guards_in(ast, graph_nodes="nodes" not in _rebound(ast))


def _guards_in(expr: jinja2.nodes.Node, *, graph_nodes: bool) -> frozenset[str]:
    """The guards of :func:`_guarded` written anywhere inside ``expr`` (a template, or an ``if``'s test);
    ``graph_nodes``: ``nodes`` is the graph's (no loop or ``set`` of the template rebinds it)."""

    def guarded_name(node: jinja2.nodes.Node | None) -> str | None:
        if isinstance(node, jinja2.nodes.Name):
            return str(node.name)
        if graph_nodes and node is not None and _is_access(node) and _is_nodes(node.node):
            name = _accessed_name(node)
            return None if name is None or name in _DICT_ATTRIBUTES else f"nodes.{name}"
        return None

    scope = jinja2.nodes.Output([expr])  # (find_all looks below a node, not at it: an ``if``'s test is often a guard)
    found: set[str | None] = set()
    for test in scope.find_all(jinja2.nodes.Test):
        if test.name in ("defined", "undefined"):
            found.add(guarded_name(test.node))
    for flt in scope.find_all(jinja2.nodes.Filter):
        if flt.name in ("default", "d"):
            found.add(guarded_name(flt.node))
    if graph_nodes:
        for compare in scope.find_all(jinja2.nodes.Compare):  # 'x' in nodes, 'x' not in nodes
            for left, operand in zip([compare.expr, *(o.expr for o in compare.ops)], compare.ops, strict=False):
                if operand.op in ("in", "notin") and _is_nodes(operand.expr) and isinstance(left, jinja2.nodes.Const):
                    found.add(f"nodes.{left.value}" if isinstance(left.value, str) else None)
        for call in scope.find_all(jinja2.nodes.Call):  # nodes.get('x')
            method = call.node
            if (
                isinstance(method, jinja2.nodes.Getattr)
                and method.attr == "get"
                and _is_nodes(method.node)
                and call.args
                and isinstance(call.args[0], jinja2.nodes.Const)
                and isinstance(call.args[0].value, str)
            ):
                found.add(f"nodes.{call.args[0].value}")
    return frozenset(name for name in found if name is not None)


def _rebound(ast: jinja2.nodes.Template) -> set[str]:
    """The names a template binds itself (a loop's variable, a ``set``, a macro's parameter)."""
    return {n.name for n in ast.find_all(jinja2.nodes.Name) if n.ctx in ("store", "param")}


def _under_guards(ast: jinja2.nodes.Template, *, graph_nodes: bool) -> dict[int, frozenset[str]]:
    """For each part of a template inside an ``{% if %}`` (or an ``a if c else b``) whose test guards something
    (:func:`_guards_in`), by ``id``: what those tests guard. A card shared by two nodes reads the earlier node's
    output in a block that only the later node renders (``{% if nodes.review is defined %} ... {{ nodes.draft.text
    }}``): what the block reads depends on whether the guarded output is there."""
    under: dict[int, frozenset[str]] = {}

    def walk(node: jinja2.nodes.Node, guards: frozenset[str]) -> None:
        if guards:
            under[id(node)] = guards
        if isinstance(node, jinja2.nodes.If | jinja2.nodes.CondExpr):
            inside = guards | _guards_in(node.test, graph_nodes=graph_nodes)
            walk(node.test, guards)
            branches = (
                [*node.body, *node.elif_, *node.else_]
                if isinstance(node, jinja2.nodes.If)
                else [n for n in (node.expr1, node.expr2) if n is not None]
            )
            for child in branches:
                walk(child, inside)
            return
        for child in node.iter_child_nodes():
            walk(child, guards)

    walk(ast, frozenset())
    return under


class NodeRead(NamedTuple):
    """One ``nodes.<node>`` a template reads: what of it (``key``, see :func:`node_references`), on which line of
    the template, and what the tests of the ``if`` blocks around it guard (``{% if nodes.review is defined %}``:
    ``{"nodes.review"}``; empty outside any)."""

    node: str
    key: str | None
    line: int
    under: frozenset[str]


def node_references(source: str) -> list[tuple[str, str | None]]:
    """``(node, key)`` for every ``nodes.<node>`` a template reads, ``key`` being what it reads of that node's
    output next (``nodes.solve.answer`` → ``("solve", "answer")``; ``None`` when it reads the output whole, or
    calls a dict method on it). ``nodes["solve"]["answer"]`` counts too; names reached through a variable
    (``{% set n = nodes.solve %}``) are not followed.

    What it is for: a misspelt node or output key would otherwise be found only when the prompt renders, after
    the model calls of every node before it.
    """
    return [(read.node, read.key) for read in node_reads(source)]


def node_reads(source: str) -> list[NodeRead]:
    """:func:`node_references` with where each read is: its line in the template (a check refusing one says where
    in a prompt of many lines it is) and the guards around it (a read in a block the node does not render is none
    of its reads)."""
    ast = _parsed(source)
    if "nodes" in _rebound(ast):  # a loop or ``set`` rebinds the name: what it reads is not the graph's nodes
        return []
    under = _under_guards(ast, graph_nodes=True)
    found: list[NodeRead] = []
    accesses = [a for a in ast.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)) if _is_access(a)]
    inner: set[int] = set()  # accesses that are the ``nodes.<node>`` part of a longer ``nodes.<node>.<key>``
    for access in accesses:
        target = access.node
        if _is_access(target) and _is_nodes(target.node):
            node = _accessed_name(target)
            if node is not None and node not in _DICT_ATTRIBUTES:
                key = _accessed_name(access)
                guards = under.get(id(target), frozenset())
                found.append(NodeRead(node, None if key in _DICT_ATTRIBUTES else key, target.lineno, guards))
                inner.add(id(target))
    for access in accesses:
        if id(access) not in inner and _is_nodes(access.node):
            node = _accessed_name(access)
            if node is not None and node not in _DICT_ATTRIBUTES:
                found.append(NodeRead(node, None, access.lineno, under.get(id(access), frozenset())))
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
