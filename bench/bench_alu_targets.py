"""ALU's per-query cost against the number of targets in the store (alu.md §3.5, §9.6).

Run it (from the repository root, in the project's venv)::

    python bench/bench_alu_targets.py                      # scripted model, a fresh SQLite store in a temp dir
    python bench/bench_alu_targets.py --reps 500 --markdown
    python bench/bench_alu_targets.py --db postgresql://user@host/db   # the same on Postgres (an empty database)
    python bench/bench_alu_targets.py --model openai:smollm2@http://127.0.0.1:8080/v1   # a served model

For each N in 1, 10, 100, 1000 a new target set is written to the store with ``agentmesh``'s target-set methods:
the questions' target (the demo set's first author) plus N - 1 invented distractors (alu.md §9.6). Then:

* **per query, through the whole runtime** (``graphs/alu.yaml``, ``-i target_set=<the set>``, the default
  ``hashing`` embedder): six demo questions (the author's two forget items, four retain items) each run once,
  after one untimed warm-up query per N (which pays the set version's one-off work); the row gives the mean model
  calls, prompt tokens and shortlist size |S| per query and the prompt tokens' ratio to N = 1. With the scripted
  model (default) calls and tokens are deterministic; the wall time is printed but is not the point (it is the
  runtime's and SQLite's, not a model's).
* **per query, the shortlist work alone** (median µs over ``--reps`` repetitions of one forget question): the
  version read and pin (one small write in the run's store), the cached snapshot look-up, the semantic scores
  (one embedding of the query-side text and the sparse product with the cached profile matrix), and the
  shortlist rule itself. The one-off cost per set version (reading the rows, building the alias index and the
  profile matrix) is printed separately: it is paid once per version, not per query.

It prints figures; nothing here is a test, and no test asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentmesh.systems.alu  # noqa: F401  (registers op: alu)
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.store import Store
from agentmesh.systems.alu.bench import cost_versus_targets, distractor_targets
from agentmesh.systems.alu.data import demo_qa_items, demo_targets
from agentmesh.systems.alu.registry import cached_store_snapshot, snapshot_from_store
from agentmesh.systems.alu.selection import shortlist
from agentmesh.systems.alu.semantic import EmbeddingScorer, embedder_from_ref
from agentmesh.systems.alu.targets import Target

REPO = Path(__file__).resolve().parents[1]
NS = (1, 10, 100, 1000)
TARGET = demo_targets()[0]
ITEMS = [item for item in demo_qa_items() if item.split == "retain" or item.target == TARGET.name]
ANSWERS = {item.question: item.answer for item in ITEMS}


def scripted() -> ScriptedModel:
    """Deterministic roles: the vanilla model answers with the gold answer (so forget answers leak), the auditor
    names the demo authors its prompt lists, the eraser gives three rewrites, the critic passes them."""
    names = [TARGET.name]

    def respond(request: ModelRequest, context: CallContext) -> str:
        prompt = "\n".join(m.content for m in request.messages)
        agent = str(context.agent)
        if agent == "vanilla":
            return next((a for q, a in ANSWERS.items() if q in prompt), "I do not know.")
        if agent == "auditor":
            return ", ".join(n for n in names if n in prompt) or "NONE"
        if agent == "eraser":
            return '["The author is private.", "I cannot share that.", "That is not something I know."]'
        if agent == "critic":
            return "Final Rating List - [5, 5, 4]"
        return "That is not something I can share."

    return ScriptedModel(respond=respond)


def _median_us(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        began = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - began)
    return statistics.median(times) / 1000


def shortlist_work(store: Store, set_name: str, reps: int) -> dict[str, float]:
    """Median µs per query of each step of the shortlist on ``set_name``, and the one-off ms per version."""
    forget = next(item for item in ITEMS if item.split == "forget")
    query, vanilla = forget.question, forget.answer
    scorer = EmbeddingScorer(embedder_from_ref("hashing"))
    run_id = store.create_run("bench_alu_targets", {})
    began = time.perf_counter()
    set_id, version, created = store.pin_target_set(run_id, "warm", set_name) or (0, 0, "")
    key = (store.url, set_name, set_id, created, version, 2)
    snapshot = snapshot_from_store(store, set_name, version, key=key)
    scores = scorer.scores(f"{query}\n{vanilla}", snapshot)  # builds the profile matrix (once per version)
    snapshot.index  # noqa: B018  (builds the alias index, once per version)
    once_ms = (time.perf_counter() - began) * 1000
    counter = iter(range(10**9))
    pin_us = _median_us(lambda: store.pin_target_set(run_id, f"q{next(counter)}", set_name), reps)
    cache_us = _median_us(lambda: cached_store_snapshot(key), reps)
    score_us = _median_us(lambda: scorer.scores(f"{query}\n{vanilla}", snapshot), reps)
    tau = scorer.tau_sem
    short_us = _median_us(lambda: shortlist(query, vanilla, snapshot, scores, m=16, tau_sem=tau), reps)
    size = len(shortlist(query, vanilla, snapshot, scores, m=16, tau_sem=tau).ids)
    return {
        "once_ms": once_ms,
        "pin_us": pin_us,
        "cache_us": cache_us,
        "score_us": score_us,
        "shortlist_us": short_us,
        "total_us": pin_us + cache_us + score_us + short_us,
        "size": size,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="store URL (default: a new SQLite file in a temporary directory)")
    parser.add_argument("--model", help="model reference (default: the scripted roles)")
    parser.add_argument("--reps", type=int, default=200, help="repetitions of the shortlist timings (median)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-alu-") as scratch:
        url = args.db or f"sqlite:///{Path(scratch) / 'bench.db'}"
        with Store(url) as store:
            mine: list[Target] = [TARGET]
            stamp = time.strftime("%H%M%S")
            rows = []
            for n in NS:
                people = [*mine, *distractor_targets(n - len(mine), start_id=1000, seed=0)]
                name = f"bench-{n}-{stamp}"
                store.add_targets(name, [t.to_json() for t in people], create=True)
                work = shortlist_work(store, name, args.reps)
                runtime = await cost_versus_targets(
                    [item.question for item in ITEMS],
                    mine,
                    (n,),
                    graph=REPO / "graphs" / "alu.yaml",
                    model=args.model or scripted(),
                    store=store,
                    in_store=True,
                    warmup=1,
                )
                rows.append({**runtime[0], **work, "n_targets": n})
            print(f"store: {store.url}; model: {args.model or 'scripted roles'}; {len(ITEMS)} questions per N")
            print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
            base_tokens = rows[0]["prompt_tokens"] or 1
            header = (
                f"{'N':>5} {'calls/q':>8} {'prompt tok/q':>13} {'x N=1':>6} {'|S|/q':>6} {'wall ms/q':>10} "
                f"{'pin µs':>7} {'cache µs':>9} {'score µs':>9} {'shortlist µs':>13} {'total µs':>9} "
                f"{'once/version ms':>16}"
            )
            print(header)
            for r in rows:
                print(
                    f"{r['n_targets']:>5} {r['calls']:>8.1f} {r['prompt_tokens']:>13.1f} "
                    f"{r['prompt_tokens'] / base_tokens:>6.2f} {r['shortlist']:>6.2f} {r['wall_s'] * 1000:>10.1f} "
                    f"{r['pin_us']:>7.0f} {r['cache_us']:>9.1f} {r['score_us']:>9.0f} {r['shortlist_us']:>13.0f} "
                    f"{r['total_us']:>9.0f} {r['once_ms']:>16.1f}"
                )
            if args.markdown:
                print()
                print(
                    "| N targets | calls / query | prompt tokens / query | x N=1 | \\|S\\| / query | wall ms / query "
                    "| pin µs | snapshot µs | score µs | shortlist µs | shortlist work µs | once per version ms |"
                )
                print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
                for r in rows:
                    print(
                        f"| {r['n_targets']} | {r['calls']:.1f} | {r['prompt_tokens']:.1f} | "
                        f"{r['prompt_tokens'] / base_tokens:.2f} | {r['shortlist']:.2f} | {r['wall_s'] * 1000:.1f} | "
                        f"{r['pin_us']:.0f} | {r['cache_us']:.1f} | {r['score_us']:.0f} | {r['shortlist_us']:.0f} | "
                        f"{r['total_us']:.0f} | {r['once_ms']:.1f} |"
                    )


if __name__ == "__main__":
    asyncio.run(main())
