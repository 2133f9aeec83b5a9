"""Node specs: one node of a graph, an operator name and that operator's parameters.

Apart from :mod:`agentmesh.spec.operators`, which holds each operator's parameter model and the registry, because a
node is how a spec writes them -- flat in YAML (``{op: rounds, rounds: 3, ...}``) -- and turning that form into
the right model (and back) is a concern of its own. A :class:`~agentmesh.spec.graph.GraphSpec` holds its nodes
as these; code that builds nodes (the research systems' generated graphs) imports them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

from agentmesh.spec.operators import OperatorParams, operator_names, operator_params, unknown_operator


class NodeSpec(BaseModel):
    """A node: an operator name and its parameters, written flat in YAML (``{op: rounds, rounds: 3, ...}``).

    In Python the same flat form works as keywords (``NodeSpec(op="call", agent="solver")``), and so does the
    parameters given apart, as a mapping or the operator's parameter model (``NodeSpec(op="loop", params={...})``).
    """

    model_config = ConfigDict(frozen=True)

    op: str
    description: str = ""
    params: OperatorParams

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "op" not in data:
            raise ValueError(f"a node needs 'op' (one of {', '.join(operator_names())})")
        op = data["op"]
        params_model = operator_params(str(op))
        if params_model is None:
            raise ValueError(unknown_operator(op))
        nested = data.get("params")
        if isinstance(nested, OperatorParams):
            if not isinstance(nested, params_model):
                wrong = type(nested).__name__
                raise ValueError(f"params of a {op!r} node must be {params_model.__name__}, not {wrong}")
            return data
        rest = {k: v for k, v in data.items() if k not in ("op", "description", "params")}
        if isinstance(nested, Mapping):
            rest = {**nested, **rest}
        elif nested is not None:
            raise ValueError(
                f"params of a {op!r} node: expected a mapping or {params_model.__name__}, got {type(nested).__name__}"
            )
        return {"op": op, "description": data.get("description", ""), "params": params_model.model_validate(rest)}

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        if self.description:
            out["description"] = self.description
        out.update(self.params.model_dump(mode="json", by_alias=True, exclude_defaults=True))
        return out
