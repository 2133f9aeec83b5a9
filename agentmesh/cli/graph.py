"""``agentmesh graph``: the JSON Schema of graph specs, validating spec files, and drawing a graph.

- ``agentmesh graph schema [-o FILE]`` — the JSON Schema (draft 2020-12) for editors and CI;
- ``agentmesh graph validate FILE...`` — one line per file; every problem of an invalid file with its line;
  exit code 2 if any file is invalid;
- ``agentmesh graph show FILE`` — a summary (inputs, agents, nodes, edges, stop policy, output) and the
  Mermaid text; ``--mermaid`` prints only the Mermaid text, ``--svg``/``--png`` write a drawing.

Files may also be built-in graph names (``debate``), as for ``agentmesh run``.
"""

from __future__ import annotations

import importlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from agentmesh.cli._common import console, err_console, write_output
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.schema import graph_json_schema
from agentmesh.viz import graph_mermaid, graph_svg
from agentmesh.viz.graph import graph_flow

app = typer.Typer(
    help="Graph specs: export the JSON Schema, validate files, draw a graph (Mermaid, SVG, PNG).",
    no_args_is_help=True,
)


class Direction(StrEnum):
    LR = "LR"
    TD = "TD"


def _load(graph: str) -> GraphSpec:
    from agentmesh.runtime.arguments import resolve_graph

    return resolve_graph(graph)


# --- schema ----------------------------------------------------------------------------------------------------


@app.command("schema")
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--out", "--output", "-o", help="Write the schema to this file instead of printing it."),
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of graph spec files."""
    text = json.dumps(graph_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    write_output(output, text)
    console.print(Text(f"wrote {output}"))


# --- validate --------------------------------------------------------------------------------------------------


@app.command("validate")
def validate(
    files: Annotated[list[str], typer.Argument(help="Graph spec files (or built-in graph names).")],
) -> None:
    """Check graph spec files: structure, agents, operators, edges, templates — before any model call."""
    from agentmesh.runtime.arguments import graph_file
    from agentmesh.runtime.operators.registry import check_functions

    failed = 0
    for file in files:
        try:
            spec = _load(file)
        except AgentmeshError as exc:
            failed += 1
            err_console.print(Text("✗ ", style="bold red") + Text(str(exc)), soft_wrap=True)
            continue
        where = graph_file(file)
        try:  # registered by the runtime and --import: what a run would not find
            check_functions(spec, where)
        except AgentmeshError as exc:
            failed += 1
            said = str(exc) if where is not None else f"{file}: {exc}"  # (with the file's lines, it names it)
            err_console.print(Text("✗ ", style="bold red") + Text(said), soft_wrap=True)
            continue
        n_nodes, n_agents = len(spec.nodes), len(spec.agents)
        line = Text("✓ ", style="bold green") + Text(
            f"{file}: graph {spec.name}, {n_nodes} node{'s' * (n_nodes != 1)}, {n_agents} agent{'s' * (n_agents != 1)}"
        )
        console.print(line, soft_wrap=True)
    if failed:
        raise typer.Exit(2)


# --- show ------------------------------------------------------------------------------------------------------


@app.command("show")
def show(
    graph: Annotated[str, typer.Argument(help="A graph spec file (or a built-in graph name).")],
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print only the Mermaid flowchart text.")] = False,
    svg: Annotated[Path | None, typer.Option("--svg", help="Write an SVG drawing to this file.")] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Write a PNG drawing to this file (needs the cairosvg package).")
    ] = None,
    direction: Annotated[
        Direction, typer.Option("--direction", "-d", help="Left to right (LR) or top down (TD).")
    ] = Direction.LR,
) -> None:
    """Describe a graph and draw it: a summary and Mermaid text, or an SVG/PNG file."""
    for path, option, suffix in ((svg, "--svg", ".svg"), (png, "--png", ".png")):
        if path is not None and path.suffix.lower() != suffix:  # a PNG named x.jpg opens as a broken JPEG
            raise ConfigError(f"{option} {path}: it writes {suffix[1:].upper()}; name the file *{suffix}")
    converter = _png_converter() if png is not None else None
    spec = _load(graph)
    if svg is not None or png is not None:
        drawing = graph_svg(spec, direction.value)
        if svg is not None:
            write_output(svg, drawing)
            console.print(Text(f"wrote {svg}"), soft_wrap=True)
        if png is not None:
            png.parent.mkdir(parents=True, exist_ok=True)
            converter.svg2png(bytestring=drawing.encode("utf-8"), write_to=str(png), scale=2.0)  # type: ignore[union-attr]
            console.print(Text(f"wrote {png}"), soft_wrap=True)
        if not mermaid:
            return
    text = graph_mermaid(spec, direction.value)
    if mermaid:
        typer.echo(text, nl=False)
        return
    _summary(spec, graph)
    console.rule(Text("Mermaid", style="bold"))
    console.print(Text(text.rstrip("\n")), soft_wrap=True)


def _png_converter() -> Any:
    """cairosvg, or a clear error saying what to install -- checked before anything is written."""
    instead = "or write an SVG instead with --svg OUT.svg (any browser opens it)"
    try:
        return importlib.import_module("cairosvg")
    except ImportError:
        raise ConfigError(
            "writing a PNG needs the optional 'cairosvg' package, which is not installed "
            f'(pip install "agentmesh[png]"); {instead}'
        ) from None
    except OSError as exc:  # cairocffi found no cairo library to load
        raise ConfigError(
            f"writing a PNG needs the cairo library, which cairosvg could not load ({exc}; Debian: apt-get "
            f"install libcairo2); {instead}"
        ) from None


def _fmt(value: Any) -> str:
    if isinstance(value, BaseModel):
        if type(value).__str__ is not BaseModel.__str__:
            return str(value)  # stop policies describe themselves
        dumped = value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if not dumped:  # written with its defaults (ratings: {}): which values those are, not "{}"
            full = value.model_dump(mode="json", by_alias=True, exclude_none=True)
            return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in full.items()) + "} (defaults)"
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in dumped.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _params(spec: GraphSpec, name: str) -> str:
    params = spec.nodes[name].params
    dumped = params.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    fields = {(info.alias or field): field for field, info in type(params).model_fields.items()}
    return "\n".join(f"{key}: {_fmt(getattr(params, fields.get(key, key)))}" for key in dumped)


def _summary(spec: GraphSpec, source: str) -> None:
    head = Text(f"graph {spec.name}", style="bold") + Text(f"  ({source})", style="dim")
    console.print(head, soft_wrap=True)
    if spec.description:
        console.print(Text(spec.description))
    model = spec.model or "the run's model"
    console.print(Text(f"spec version {spec.version} · model: {model}", style="dim"))

    inputs = Table(title="Inputs", title_justify="left", show_edge=False, expand=False)
    for col in ("name", "type", "required", "default", "description"):
        inputs.add_column(col)
    for name, i in spec.inputs.items():
        default = "" if i.default is None else json.dumps(i.default, ensure_ascii=False)
        inputs.add_row(Text(name), Text(i.type), "yes" if i.required else "no", Text(default), Text(i.description))
    console.print(inputs if spec.inputs else Text("Inputs: none"))

    agents = Table(title="Agents", title_justify="left", show_edge=False)
    for col in ("name", "role", "parser", "model", "sampling"):
        agents.add_column(col)
    for name, card in spec.agents.items():
        parser = card.parser.name + (f" {json.dumps(card.parser.params)}" if card.parser.params else "")
        model = card.model or (f"{spec.model} (graph)" if spec.model else "run's model")
        sampling = card.sampling.model_dump(mode="json", exclude_defaults=True)
        agents.add_row(
            Text(name),
            Text(card.role),
            Text(parser),
            Text(model),
            Text(", ".join(f"{k}={v}" for k, v in sampling.items())),
        )
    console.print(agents if spec.agents else Text("Agents: none"))

    nodes = Table(title="Nodes", title_justify="left", show_edge=False)
    for col in ("name", "op", "parameters", "description"):
        nodes.add_column(col)
    for name, node in spec.nodes.items():
        nodes.add_row(Text(name, style="bold"), Text(node.op), Text(_params(spec, name)), Text(node.description))
    console.print(nodes)

    edges = Table(title="Edges and routes", title_justify="left", show_edge=False)
    for col in ("from", "to", "kind", "label"):
        edges.add_column(col)
    for e in graph_flow(spec):
        edges.add_row(Text(e.src), Text(e.dst), Text(e.kind), Text(e.label))
    console.print(edges)

    stop = str(spec.stop) if spec.stop is not None else "none at graph level (nodes' own stops and budgets apply)"
    console.print(Text("Stop policy: ", style="bold") + Text(stop), soft_wrap=True)
    console.print(Text("Output node: ", style="bold") + Text(spec.output_node()), soft_wrap=True)
