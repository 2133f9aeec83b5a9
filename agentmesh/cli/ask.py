"""``agentmesh ask``: one prompt to one model, recorded as a run like any graph run."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from agentmesh._text import counted
from agentmesh.cli._common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    fmt_cost,
    fmt_seconds,
    number_option,
    run_async,
)
from agentmesh.errors import AgentmeshError
from agentmesh.models import ModelClient, ModelRequest, ModelResponse, Usage, get_model, load_settings
from agentmesh.runtime.recorded_model import reads_a_run
from agentmesh.runtime.recording import StoreRecorder
from agentmesh.store.records import RunStatus

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store",)


def ask(
    prompt: Annotated[str, typer.Argument(help="The question or instruction.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model reference or alias.")] = "local",
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    max_tokens: Annotated[
        int,
        number_option(
            "--max-tokens", whole=True, at_least=1, help="Most tokens the reply may take (a model's thinking counts)."
        ),
    ] = 256,
    temperature: Annotated[
        float,
        number_option(
            "--temperature",
            whole=False,
            at_least=0.0,
            at_most=2.0,
            help="Sampling temperature (0: the likeliest reply).",
        ),
    ] = 0.0,
    reasoning_effort: Annotated[
        str | None, typer.Option("--reasoning-effort", help="For reasoning models: low, medium, high...")
    ] = None,
    show_reasoning: Annotated[
        bool, typer.Option("--reasoning", help="Print a reasoning model's thinking before its answer.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask one model one question; the call is stored as a run (see agentmesh show)."""
    from agentmesh.cli._store import open_store  # (SQLAlchemy: not for ask --help)

    settings = load_settings(config)
    # resolved (and failing) before a run is created; a replay:<run> model reads the run from the store asked of
    options: dict[str, Any] = {"store": db} if db is not None and reads_a_run(model) else {}
    client = get_model(model, settings=settings, **options)
    request = ModelRequest.of(
        prompt, system=system, max_tokens=max_tokens, temperature=temperature, reasoning_effort=reasoning_effort
    )
    with open_store(db) as store:
        run_id = store.create_run("ask", {"prompt": prompt, "system": system}, model=client.reference)
        recorder = StoreRecorder(store, run_id)
        try:
            with console.status(f"asking {client.reference} …", spinner="dots"):
                response = run_async(_ask(client, request, recorder))
        except AgentmeshError as exc:
            store.finish_run(run_id, RunStatus.FAILED, stop_reason="model error", error=str(exc))
            raise
        except KeyboardInterrupt:
            store.finish_run(run_id, RunStatus.INTERRUPTED, stop_reason="interrupted by user")
            raise
        run = store.finish_run(run_id, RunStatus.SUCCEEDED, stop_reason="completed: single call")
    if as_json:
        console.print_json(json.dumps({"run_id": run_id, "answer": response.text, **response.model_dump(mode="json")}))
        return
    reasoning = response.choices[0].reasoning if response.choices else None
    if reasoning and show_reasoning:
        console.print(Text(reasoning, style="dim"))
    console.print(response.text, markup=False, highlight=False)
    usage = response.usage
    thought = ""
    if reasoning and not show_reasoning:
        thought = f" · reasoned {counted(len(reasoning), 'char', spec=',')} (--reasoning prints them)"
    console.print(
        f"[dim]run {run.id} · {escape(client.reference)} · {usage.prompt_tokens}+{usage.completion_tokens} tokens"
        f"{_token_detail(usage)} · {fmt_seconds(response.latency_s)} · "
        f"{fmt_cost(response.cost_usd)} · agentmesh show {run.id[:8]}{thought}[/]"
    )


def _token_detail(usage: Usage) -> str:
    """What the token counts hold: estimated, the prompt's cached part, the completion's thinking."""
    parts = ["estimated"] if usage.estimated else []
    if usage.cached_prompt_tokens:
        parts.append(f"{usage.cached_prompt_tokens:,} cached")
    if usage.reasoning_tokens:
        parts.append(f"{usage.reasoning_tokens:,} thinking")
    return f" ({', '.join(parts)})" if parts else ""


async def _ask(client: ModelClient, request: ModelRequest, recorder: StoreRecorder) -> ModelResponse:
    try:
        response = await client.complete(request, observer=recorder)
        await recorder.settle()  # the call's event is stored before the run is said to be done
        return response
    finally:
        await client.aclose()
