"""Loading agent cards and graph specs from YAML, with errors that name the file, the line and the field.

Every problem is found before any model call and reported together (not just the first), each as
``graphs/x.yaml:12: nodes.debate.rounds: <what was expected>``. Lines come from the YAML node tree, so an error
points at the offending key even deep inside a mapping. Agent cards may be inline in the graph or referenced by
path (relative to the graph file) and are checked in the graph's context (the variables their node provides).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agentmesh._yaml import LineMap, Loc, YamlError, line_map, line_of, read_yaml_file
from agentmesh.errors import SpecError
from agentmesh.spec.agent import AgentCard
from agentmesh.spec.checks import Problem, condition_problems, did_you_mean, reference_problems
from agentmesh.spec.graph import GraphSpec, name_problems
from agentmesh.spec.operators import OperatorParams, operator_names, operator_params, unknown_operator


class Located(BaseModel):
    """A problem with its file and line."""

    file: str
    line: int | None
    problem: Problem

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = self.problem.field
        return f"{where}: {field}: {self.problem.message}" if field else f"{where}: {self.problem.message}"


def _read(path: Path) -> tuple[Any, LineMap]:
    if not path.is_file():
        raise SpecError(f"{path}: file not found", file=str(path))
    try:  # UTF-8 whatever the locale; a file that is not (a Latin-1 export) was a UnicodeDecodeError traceback
        data, root = read_yaml_file(path)
    except YamlError as exc:
        raise SpecError(str(exc), file=str(path)) from None
    return data, (line_map(root) if root is not None else {})


def _pydantic_problems(exc: ValidationError, prefix: Loc, model: type[BaseModel] | None = None) -> list[Problem]:
    """``exc``'s errors as problems at ``prefix`` + their place; ``model``, the class that was validated, lets an
    unknown field say which fields were expected there (the closest first: a typo's fix)."""
    out = []
    for e in exc.errors(include_url=False):
        loc = _yaml_path(e["loc"])
        got = e.get("input")
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] in ("missing",):
            message = "required field is missing"
        elif e["type"] == "extra_forbidden":
            message = "unknown field (not part of this schema)"
            fields = _fields_at(model, loc[:-1]) if model is not None and loc else None
            if fields:
                message = f"unknown field; {did_you_mean(loc[-1], fields)}expected one of: {', '.join(fields)}"
        elif isinstance(got, str) and "\n" in got.strip():
            pass  # a prompt of many lines: the message says what of it is wrong, the file shows it
        elif not isinstance(got, dict | list) and got is not None and "got" not in message:
            message = f"{message} (got {got!r})"
        out.append(Problem(loc=(*prefix, *loc), message=message))
    return out


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str] | None:
    """The fields (by their YAML names) of the model at ``loc`` inside ``model`` (a card's ``sampling``, a rounds
    node's ``rank``), ``None`` where that is not a model's mapping (a dict of agents, a list, a stop policy)."""
    current: Any = model
    for part in loc:
        if typing.get_origin(current) is dict:  # (a mapping of names to models: the graph's inputs)
            current = typing.get_args(current)[1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or not isinstance(part, str):
            return None
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        annotation = field.annotation
        kinds = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
        current = annotation if typing.get_origin(annotation) is dict else kinds[0] if len(kinds) == 1 else None
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return None
    return [f.alias or n for n, f in current.model_fields.items()]


def _yaml_path(loc: Loc) -> Loc:
    """A pydantic error location as the path of keys in the YAML file.

    Pydantic's validator and union markers (``function-before[...]``, ``tagged-union[...]``) are dropped. A stop
    policy's tag is its YAML key (``{consensus: {fraction: ...}}`` fails at ``consensus.fraction``) and stays, but
    ``any``/``all`` hold their list under a field of the same name (``(any, any, 0)`` is ``any[0]`` in the file),
    and ``{max_rounds: N}`` holds its count as the key's value rather than under ``rounds``.
    """
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and "[" in part and "]" in part:
            continue
        if out and out[-1] in _TAGS and (part == out[-1] or (out[-1], part) == ("max_rounds", "rounds")):
            continue
        out.append(part)
    return tuple(out)


_TAGS = {"any", "all", "consensus", "score_threshold", "max_rounds", "budget"}


def _raise(file: str, lines: LineMap, problems: Iterable[Problem]) -> None:
    located = [Located(file=file, line=line_of(lines, p.loc), problem=p) for p in problems]
    if not located:
        return
    first = located[0]
    message = "\n".join(str(x) for x in located)
    raise SpecError(
        message if len(located) == 1 else f"{len(located)} problems in {file}:\n{message}",
        file=file,
        line=first.line,
        field=first.problem.field,
        expected=first.problem.message,
        problems=[str(x) for x in located],
    )


def load_agent(path: str | Path) -> AgentCard:
    """Load one agent card file.

    A card may start with ``extends: <card file>`` (relative to it): it takes that card's fields and overrides
    the ones it gives (mappings such as ``sampling`` merged key by key). A team of roles then shares one prompt
    and parser, each role card giving only its name and persona.
    """
    file = Path(path)
    data, lines = _card_data(file, ())
    data.setdefault("name", file.stem)
    try:
        card = AgentCard.model_validate(data)
    except ValidationError as exc:
        _raise(str(file), lines, _pydantic_problems(exc, (), AgentCard))
        raise AssertionError("unreachable") from None  # pragma: no cover
    several = card.samples_problem()  # (a graph's inline cards are checked by GraphSpec.problems)
    if several is not None:
        if ("sampling", "n") not in lines:  # inherited: this file's line would point at nothing to change
            several += " (n is set in a card this one extends)"
        _raise(str(file), lines, [Problem(loc=("sampling", "n"), message=several)])
    return card


def _card_data(file: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], LineMap]:
    data, lines = _read(file)
    if not isinstance(data, dict):
        _raise(str(file), lines, [Problem(loc=(), message="expected a mapping (name, prompt, parser, ...)")])
    base_ref = data.pop("extends", None)
    if base_ref is None:
        return data, lines
    if not isinstance(base_ref, str):
        _raise(str(file), lines, [Problem(loc=("extends",), message="expected the path of another agent card")])
    base_file = (file.parent / base_ref).resolve()
    if base_file in chain or base_file == file.resolve():
        cycle = " -> ".join(str(p) for p in (*chain, file.resolve(), base_file))
        _raise(str(file), lines, [Problem(loc=("extends",), message=f"cards extend each other in a cycle: {cycle}")])
    if not base_file.is_file():
        _raise(str(file), lines, [Problem(loc=("extends",), message=f"card {base_ref} not found ({base_file})")])
    base, _ = _card_data(base_file, (*chain, file.resolve()))
    base.pop("name", None)
    merged = dict(base)
    for key, value in data.items():
        old = merged.get(key)
        merged[key] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    return merged, lines


def load_graph(path: str | Path) -> GraphSpec:
    """Load a graph spec file: structure, agents (inline or by path), nodes, cross-references, templates."""
    file = Path(path)
    if not file.suffix and not file.exists():  # a built-in's name, most likely: say where those are found
        raise SpecError(
            f"{file}: file not found (a shipped graph by name, or a file: agentmesh.resolve_graph({str(path)!r}))",
            file=str(file),
        )
    data, lines = _read(file)
    return graph_from_data(data, file=str(file), lines=lines, base_dir=file.parent)


def graph_from_data(
    data: Any,
    *,
    file: str = "<spec>",
    lines: LineMap | None = None,
    base_dir: Path | None = None,
    stored: bool = False,
) -> GraphSpec:
    """Validate already-parsed YAML data as a graph spec (``file``/``lines`` make the errors point; ``stored``: see
    :func:`stored_graph`)."""
    lines = lines or {}
    if not isinstance(data, dict):
        _raise(file, lines, [Problem(loc=(), message="expected a mapping (name, inputs, agents, nodes, edges, ...)")])
    if "prompt" in data and "nodes" not in data:  # a card given where a graph goes: say so, not 5 field errors
        message = (
            "this is an agent card (it has a prompt), not a graph spec (which has nodes); a graph uses it from its "
            "agents, e.g. agents: {critic: cards/critic.yaml}"
        )
        _raise(file, lines, [Problem(loc=(), message=message)])
    problems: list[Problem] = []
    data = dict(data)

    agents: dict[str, Any] = {}
    card_files: dict[str, tuple[str, Path]] = {}  # agents whose cards are files: as written, and found
    raw_agents = data.get("agents", {})
    if not isinstance(raw_agents, Mapping):
        problems.append(Problem(loc=("agents",), message="expected a mapping of agent name to card or card path"))
        raw_agents = {}
    for key, raw in raw_agents.items():
        if (
            key in AgentCard.model_fields
            and isinstance(raw, str)
            and not (base_dir or Path.cwd()).joinpath(raw).is_file()
        ):
            # (``prompt:`` one level too far left): read as an agent named prompt whose card is a file named so
            message = f"{key!r} is a card's field, not an agent: indent it under its agent's name"
            problems.append(Problem(loc=("agents", key), message=message))
            continue
        if raw is None:  # ``solver:`` with nothing under it: pydantic said "a valid dictionary or instance of ..."
            message = "empty: expected the card's fields (prompt, parser, ...) indented under it, or a card file's path"
            problems.append(Problem(loc=("agents", key), message=message))
            continue
        if isinstance(raw, str):
            card_path = (base_dir or Path.cwd()) / raw
            try:
                card = load_agent(card_path)
            except SpecError as exc:
                problems.append(Problem(loc=("agents", key), message=f"in card {raw}: {exc.message}"))
                continue
            card_files[key] = (raw, card_path)
            agents[key] = card.model_copy(update={"name": key}) if card.name != key else card
            continue
        card_data = {"name": key, **raw} if isinstance(raw, dict) and "name" not in raw else raw
        try:
            agents[key] = AgentCard.model_validate(card_data)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, ("agents", key), AgentCard))
    data["agents"] = agents

    raw_nodes = data.get("nodes", {})
    valid_params: dict[str, OperatorParams] = {}
    if not isinstance(raw_nodes, Mapping):
        problems.append(Problem(loc=("nodes",), message="expected a mapping of node name to {op: ..., ...}"))
        raw_nodes = {}
    for key, raw in raw_nodes.items():
        if not isinstance(raw, Mapping) or "op" not in raw:
            message = f"expected {{op: <operator>, ...}}; operators: {', '.join(operator_names())}"
            if not isinstance(raw, Mapping) and _is_node_field(str(key)):  # (``agents: [...]`` a level too far left)
                message = f"{key!r} is a node's field, not a node: indent it under its node's name"
            problems.append(Problem(loc=("nodes", key), message=message))
            continue
        params_model = operator_params(str(raw["op"]))
        if params_model is None:
            problems.append(
                Problem(
                    loc=("nodes", key, "op"),
                    message=unknown_operator(raw["op"]),
                )
            )
            continue
        fields = {k: v for k, v in raw.items() if k not in ("op", "description")}
        try:
            valid_params[key] = params_model.model_validate(fields)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, ("nodes", key), params_model))
            partial = _partial_params(params_model, fields, exc)
            if partial is not None:
                valid_params[key] = partial
    if problems:
        # names pointing nowhere are reported with the type problems, so one attempt shows every kind of mistake
        edges = data.get("edges")
        problems.extend(
            reference_problems(
                list(raw_agents), list(raw_nodes), valid_params, edges if isinstance(edges, list) else []
            )
        )
        problems.extend(_top_level_problems(data))
        # and what needs no name resolved: the names themselves, a branch condition's syntax and variables
        problems.extend(name_problems(data.get("name"), raw_nodes))
        inputs = data.get("inputs")
        problems.extend(condition_problems(valid_params, inputs if isinstance(inputs, Mapping) else {}))
        _raise(file, lines, problems)

    try:
        spec = GraphSpec.model_validate(data, context={"defer_checks": True})
    except ValidationError as exc:
        _raise(file, lines, _pydantic_problems(exc, (), GraphSpec))
        raise AssertionError("unreachable") from None  # pragma: no cover
    _raise(file, lines, [_in_card_file(p, card_files) for p in spec.problems(stored=stored)])
    return spec


def _in_card_file(problem: Problem, card_files: Mapping[str, tuple[str, Path]]) -> Problem:
    """``problem`` saying where in its card file it is, when it is in a card the graph names by path: it is
    reported at the graph's line naming the card (``agents.w.prompt`` at ``w: cards/w.yaml``), and the prompt to
    fix is in the card's file."""
    loc = problem.loc
    if len(loc) < 3 or loc[0] != "agents" or loc[1] not in card_files:
        return problem
    written, path = card_files[str(loc[1])]
    try:
        _, card_lines = _card_data(path, ())
    except SpecError:  # (it loaded a moment ago)
        return problem
    line = card_lines.get(loc[2:])
    where = f"{written}:{line}" if line is not None else written
    return problem.model_copy(update={"message": f"{problem.message} (in card file {where})"})


def _is_node_field(name: str) -> bool:
    """Whether ``name`` is a parameter of some operator (``agents``, ``rounds``, ``from``...) or ``op`` itself."""
    if name in ("op", "description", "params"):
        return True
    for op in operator_names():
        params = operator_params(op)
        if params is not None and any(name in (f, i.alias) for f, i in params.model_fields.items()):
            return True
    return False


def stored_graph(data: Any, run_id: str) -> GraphSpec:
    """The graph spec run ``run_id`` stored (``meta.spec``), read back; errors name the run.

    Checked as any spec is, but for what an earlier agentmesh let a run store and this one refuses for new runs: a
    card's ``sampling.n`` above 1 (such a run kept its calls' first samples). Its record stays readable --
    ``show``, ``export``, ``report``, ``diff`` -- while a resume or a replay, which would ask the model again, is
    refused at its first call, saying why (:meth:`RunContext.ask <agentmesh.runtime.context.RunContext.ask>`)."""
    return graph_from_data(data, file=f"run {run_id} (stored spec)", stored=True)


def _top_level_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Type problems of everything but the agents and nodes (inputs, edges, stop, output, unknown keys), found
    when those already failed: the whole spec is validated only once its agents and nodes are, and a bad card must
    not hide a bad input type until the next attempt."""
    rest = {k: v for k, v in data.items() if k not in ("agents", "nodes")}
    stand_in = {"_": {"op": "function", "function": "_"}}  # a valid node: ``nodes`` must not be empty
    try:
        GraphSpec.model_validate({**rest, "nodes": stand_in}, context={"defer_checks": True})
    except ValidationError as exc:
        return _pydantic_problems(exc, (), GraphSpec)
    return []


def _partial_params(
    params_model: type[OperatorParams], fields: Mapping[str, Any], exc: ValidationError
) -> OperatorParams | None:
    """A node's parameters without what failed, for checking the names the rest refer to (a bad ``rounds`` must
    not hide an unknown agent in ``agents``); ``None`` when what is left cannot say which names it uses (a required
    field failed that those depend on, a nested value is still raw).

    A list whose failures are all in some of its items (``agents: [a, 7, b]``) keeps its other items in place, the
    failed ones as ``None``: their positions, and so the paths of the names checked, stay those of the file.
    """
    failed: set[Any] = set()
    bad_items: dict[Any, set[int]] = {}
    for error in exc.errors():
        loc = error["loc"]
        if len(loc) >= 2 and isinstance(loc[1], int):
            bad_items.setdefault(loc[0], set()).add(loc[1])
        elif loc:
            failed.add(loc[0])
    kept = {k: v for k, v in fields.items() if k not in failed and k in params_model.model_fields}
    for key, items in bad_items.items():
        value = kept.get(key)
        if isinstance(value, list):
            kept[key] = [None if i in items else item for i, item in enumerate(value)]
        else:
            kept.pop(key, None)
    partial = params_model.model_construct(**kept)
    try:
        names = [*partial.agents_used(), *partial.nodes_read()]
    except Exception:  # an attribute of a failed field, or a raw nested mapping: nothing reliable to check
        return None
    return partial if all(name is None or isinstance(name, str) for _, name in names) else None


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (prompts) as ``|`` blocks, so dumped specs read like hand-written ones."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_graph(spec: GraphSpec) -> str:
    """YAML text that :func:`load_graph` (or :func:`graph_from_data`) loads back to an equal spec."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    for key, card in data.get("agents", {}).items():
        if card.get("name") == key:
            del card["name"]
    data["edges"] = [list(e) for e in data.get("edges", [])]
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


__all__ = ["Located", "dump_graph", "graph_from_data", "load_agent", "load_graph"]
