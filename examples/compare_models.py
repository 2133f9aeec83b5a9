"""Ask several models the same questions at once and compare answers, tokens, latency and cost.

Every call is recorded in the store as a run (graph "compare"), so `agentmesh runs -g compare` and
`agentmesh show RUN` show what happened afterwards.

    python examples/compare_models.py local "openai:qwen2.5@http://127.0.0.1:8000/v1" -q "What is 17*3?"
"""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentmesh.errors import AgentmeshError
from agentmesh.models import CallContext, ModelClient, ModelRequest, get_model
from agentmesh.runtime import StoreRecorder
from agentmesh.store import RunStatus, Store


def _resolve(ref: str) -> ModelClient | AgentmeshError:
    """The model's client, or why there is none: one model that cannot be used must not stop the comparison."""
    try:
        return get_model(ref)
    except AgentmeshError as exc:
        return exc


async def compare(refs: list[str], questions: list[str], db: str | None) -> int:
    """Ask every model every question, store the calls as one run, print the table; returns how many answered.

    A run where no model answered at all (every reference mistyped, no key, no server up) is stored as failed, so
    that neither `agentmesh runs` nor the script's exit code calls it a comparison."""
    console = Console()
    clients = [_resolve(r) for r in refs]
    with Store(db) as store:
        run_id = store.create_run("compare", {"models": refs, "questions": questions})
        recorder = StoreRecorder(store, run_id)

        async def one(ci: int, qi: int) -> tuple[int, int, str, str]:
            client = clients[ci]
            if isinstance(client, AgentmeshError):  # no such model here (no key, a typo): its column says why
                return ci, qi, f"[red]{escape(str(client))}[/]", ""
            request = ModelRequest.of(questions[qi], max_tokens=128, temperature=0)
            # each call says which model and question it is, so that `agentmesh show` tells the answers apart
            context = CallContext(run_id=run_id, node="compare", agent=refs[ci], call_index=qi)
            try:
                r = await client.complete(request, context, observer=recorder)
            except Exception as exc:  # show the error in the table, keep the other answers
                return ci, qi, f"[red]{escape(str(exc))}[/]", ""
            cost = "n/a" if r.cost_usd is None else f"${r.cost_usd:.5f}"
            # replies are escaped: a model's "[...]" is text, not rich markup
            return ci, qi, escape(r.text.strip()), f"{r.usage.total_tokens} tok, {r.latency_s:.2f}s, {cost}"

        results = await asyncio.gather(*(one(c, q) for c in range(len(clients)) for q in range(len(questions))))
        await recorder.settle()  # every call's event stored (or its failure raised) before the run is closed
        answered = sum(1 for *_, meta in results if meta)  # a failed call has no usage line
        if answered:
            store.finish_run(run_id, RunStatus.SUCCEEDED, stop_reason="completed: all questions asked")
        else:
            store.finish_run(run_id, RunStatus.FAILED, error="no model answered any question (see the table)")
    for client in clients:
        if isinstance(client, ModelClient):
            await client.aclose()
    table = Table(title=f"run {run_id[:12]}", show_lines=True)
    table.add_column("question")
    for ref in refs:
        table.add_column(ref, overflow="fold")
    for qi, q in enumerate(questions):
        cells = {ci: f"{text}\n[dim]{meta}[/]" for ci, qj, text, meta in results if qj == qi}
        table.add_row(q, *(cells[ci] for ci in range(len(refs))))
    console.print(table)
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model references, e.g. local openai:gpt-4o-mini")
    parser.add_argument("-q", "--question", action="append", required=True)
    parser.add_argument("--db", default=None, help="database URL (default $AGENTMESH_DB or .agentmesh/)")
    args = parser.parse_args()
    if asyncio.run(compare(args.models, args.question, args.db)) == 0:
        raise SystemExit("error: no model answered any question; the table says why for each")


if __name__ == "__main__":
    main()
