"""A model cascade, written as an operator of your own: ask a cheap agent first and escalate to a stronger one only
when the cheap one is unsure (its samples disagree, or give no answer): FrugalGPT-style routing in a few lines on
agentmesh's operator API, then used from YAML like any built-in operator (`examples/cascade.yaml`).

    python examples/model_cascade.py -q "What is 17*3?"                              # both tiers: the embedded model
    python examples/model_cascade.py -q "What is 17*3?" --strong openai:gpt-4o-mini  # escalate to a hosted model
    agentmesh --import examples/model_cascade.py run examples/cascade.yaml -i question="What is 17*3?"

Every call is stored as usual: `agentmesh show RUN` shows which tier answered.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import ClassVar

from pydantic import Field

import agentmesh
from agentmesh.errors import AgentmeshError
from agentmesh.runtime.operators import NodeOutput, NodeRun, answer_of, gather_answers
from agentmesh.runtime.recorded_model import model_for
from agentmesh.spec import GraphSpec
from agentmesh.spec.operators import OperatorParams

GRAPH = Path(__file__).with_name("cascade.yaml")


class CascadeParams(OperatorParams):
    """Agents from the cheapest to the strongest: each tier samples ``samples`` answers, and the first tier whose
    samples agree on an answer answers for the node (the last tier answers whatever it says)."""

    agents: list[str] = Field(min_length=1, description="The tiers' agents, cheapest first.")
    samples: int = Field(default=2, ge=1, description="Answers sampled per tier; they must agree to stop there.")
    # what the node's output holds, so that a prompt reading nodes.<node>.tier is checked when the spec loads
    outputs: ClassVar[frozenset[str] | None] = frozenset({"answers", "answer", "value", "text", "votes", "tier"})

    def agents_used(self) -> list[tuple[str, str]]:
        """Which agents the node calls, named by field (so that an unknown agent is reported where it is)."""
        return [(f"agents[{i}]", agent) for i, agent in enumerate(self.agents)]


@agentmesh.operator("cascade", params=CascadeParams)
async def cascade(run: NodeRun) -> NodeOutput:
    """Tier by tier: sample, and stop at the first tier that agrees with itself."""
    p = run.params
    assert isinstance(p, CascadeParams)
    for tier, agent in enumerate(p.agents):
        # each call of the node has its own slot, so a resumed run finds every call it already made
        calls = [(agent, tier * p.samples + i, {}) for i in range(p.samples)]
        out = await gather_answers(run, calls)  # concurrently, recorded, within the run's budget
        keys = {a["key"] for a in out["answers"]}
        agreed = len(out["answers"]) == p.samples and len(keys) == 1 and None not in keys
        if agreed or tier == len(p.agents) - 1 or "stopped" in out:
            return {**out, **answer_of(out["answers"]), "tier": tier}
    raise AssertionError("unreachable: the last tier always answers")


def with_strong_model(spec: GraphSpec, model: str | None) -> GraphSpec:
    """The graph with its ``strong`` agent on ``model`` (the other agents keep the run's model)."""
    if model is None:
        return spec
    agents = {**spec.agents, "strong": spec.agents["strong"].model_copy(update={"model": model})}
    return spec.model_copy(update={"agents": agents})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-q", "--question", required=True)
    parser.add_argument("-m", "--model", default=None, help="the run's model (default: the embedded one)")
    parser.add_argument("--strong", default=None, help="model of the strong tier (default: the run's model)")
    parser.add_argument("--db", default=None, help="database URL (default $AGENTMESH_DB or .agentmesh/)")
    args = parser.parse_args()
    spec = with_strong_model(agentmesh.resolve_graph(GRAPH), args.strong)
    try:
        if args.strong is not None:  # resolved now: without its key, fail before the cheap tier is paid for
            asyncio.run(model_for(args.strong, args.db).aclose())
        result = agentmesh.run(spec, {"question": args.question}, model=args.model, store=args.db)
    except AgentmeshError as exc:  # a missing key, an unreachable server...: the message says what to do
        raise SystemExit(f"error: {exc}") from None
    node = result.outputs["answer"]
    who = node["answers"][0]["agent"] if node["answers"] else "nobody"
    print(f"answer {result.answer} from tier {node['tier']} ({who})")
    print(f"{result.calls} calls · run {result.run_id} (agentmesh show {result.run_id[:12]})")


if __name__ == "__main__":
    main()
