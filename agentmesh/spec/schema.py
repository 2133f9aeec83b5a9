"""JSON Schema of graph specs, for editors: nodes validated per operator (``op`` selects the parameters)."""

from __future__ import annotations

import re
from typing import Any

from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import operator_names, operator_params
from agentmesh.spec.stop import Budget, Consensus, MaxRounds, ScoreThreshold

_LEAVES: dict[str, type[Consensus | ScoreThreshold | Budget]] = {
    "consensus": Consensus,
    "score_threshold": ScoreThreshold,
    "budget": Budget,
}


def _stop_policy_schema() -> dict[str, Any]:
    """Stop policies in their YAML form (``{consensus: {...}}``, ``{max_rounds: 4}``, ``{any: [...]}``)."""
    ref = {"$ref": "#/$defs/StopPolicy"}
    alternatives: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {k: {"type": "array", "items": ref, "minItems": 1}},
            "required": [k],
            "additionalProperties": False,
        }
        for k in ("any", "all")
    ]
    for kind, model in _LEAVES.items():
        body = model.model_json_schema()
        body.get("properties", {}).pop("kind", None)
        alternatives.append(
            {"type": "object", "properties": {kind: body}, "required": [kind], "additionalProperties": False}
        )
    rounds = MaxRounds.model_json_schema()["properties"]["rounds"]
    alternatives.append(
        {
            "type": "object",
            "properties": {"max_rounds": rounds},
            "required": ["max_rounds"],
            "additionalProperties": False,
        }
    )
    return {"title": "StopPolicy", "description": "See agentmesh.spec.stop.", "oneOf": alternatives}


def _replace_tagged_policies(node: Any) -> Any:
    """pydantic describes stop policies in their internal tagged form; point those places at the YAML form."""
    if isinstance(node, dict):
        if node.get("discriminator", {}).get("propertyName") == "kind":
            return {"$ref": "#/$defs/StopPolicy"}
        return {k: _replace_tagged_policies(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_tagged_policies(v) for v in node]
    return node


def graph_json_schema() -> dict[str, Any]:
    """GraphSpec's schema with ``NodeSpec`` replaced by one alternative per registered operator."""
    schema = GraphSpec.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    alternatives = []
    for name in operator_names():
        model = operator_params(name)
        assert model is not None
        params = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        for def_name, definition in params.pop("$defs", {}).items():
            defs.setdefault(def_name, definition)
        properties = {"op": {"const": name}, "description": {"type": "string"}, **params.get("properties", {})}
        alternatives.append(
            {
                "title": f"{name} node",
                "description": (model.__doc__ or "").strip().split("\n\n")[0],
                "type": "object",
                "properties": properties,
                "required": ["op", *params.get("required", [])],
                "additionalProperties": False,
            }
        )
    defs["NodeSpec"] = {"title": "Node", "oneOf": alternatives}
    schema = dict(_replace_tagged_policies(schema))
    for internal in ("AnyOf", "AllOf", "Consensus", "ScoreThreshold", "MaxRounds", "Budget"):
        schema["$defs"].pop(internal, None)
    schema["$defs"]["StopPolicy"] = _stop_policy_schema()
    # In a graph, a card's name defaults to its key, and a card may be given as a path to its YAML file.
    card = dict(schema["$defs"]["AgentCard"])
    card["required"] = [r for r in card.get("required", []) if r != "name"]
    schema["$defs"]["AgentCard"] = card
    schema["properties"]["agents"]["additionalProperties"] = {
        "anyOf": [{"$ref": "#/$defs/AgentCard"}, {"type": "string", "description": "Path of an agent card file."}]
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return dict(_for_users(schema))


_SPEC_REFERENCE = re.compile(r"\s*\([^()]*§[^()]*\)")


def _for_users(node: Any) -> Any:
    """Descriptions as an editor shows them: one paragraph per line, ``code`` as Markdown's `code`, and without
    the references to our method specs' sections (``(dylan.md §5)``), which users do not have."""
    if isinstance(node, dict):
        return {
            k: _user_text(v) if k == "description" and isinstance(v, str) else _for_users(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_for_users(v) for v in node]
    return node


def _user_text(text: str) -> str:
    text = _SPEC_REFERENCE.sub("", text)
    text = re.sub(r"````\s*(.+?)\s*````", r"\1", text)  # RST's way to quote backticks: ```` ```python ````
    text = "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))
    return re.sub(r"``(.+?)``", r"`\1`", text)
