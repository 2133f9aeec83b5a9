"""A graph whose inputs, agents or nodes are named like credentials (``api_key``, ``password_checker``, ``auth``).

The store masks a value stored under a credential's name, whatever it is; in a run's stored spec that masked the
whole definition of such an input, agent or node (``"auth": "[redacted]"``), so the spec no longer loaded: export,
replay, resume and fork of every run of the graph failed ("stored spec: nodes.auth: expected {op: <operator>,
...}"), and an export's outputs of node ``auth`` were masked too, so its import was refused. The names are kept now;
what they define is redacted inside, and an input named like a credential still has its default masked.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import agentmesh
from agentmesh.runtime.replay import replay
from agentmesh.store import Store
from agentmesh.store._redact import REDACTED
from agentmesh.store.transfer import export_run, import_run

GRAPH = """
name: named_like_secrets
inputs:
  question: {type: string}
  api_key: {type: string, default: plainpassword123}
agents:
  password_checker:
    prompt: "{{ question }}"
  writer:
    prompt: "{{ nodes.auth.text }} again"
nodes:
  auth: {op: call, agent: password_checker}
  final: {op: call, agent: writer}
edges: [[auth, final]]
output: final
"""


def test_a_run_of_a_graph_with_such_names_replays_and_moves_between_stores(tmp_path: Path) -> None:
    graph = tmp_path / "graph.yaml"
    graph.write_text(GRAPH)
    script = tmp_path / "script.yaml"
    script.write_text('default: "\\\\boxed{42}"\n')
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = agentmesh.run(str(graph), {"question": "hi"}, model=f"scripted:{script}", store=url)
    assert result.status == "succeeded"

    with Store(url) as store:
        record = store.get_run(result.run_id)
        spec = record.meta["spec"]
        assert set(spec["agents"]) == {"password_checker", "writer"} and spec["nodes"]["auth"]["op"] == "call"
        assert spec["inputs"]["api_key"]["default"] == REDACTED  # a credential's name: its value is still masked
        assert replay(result.run_id, store=store).identical
        document = copy.deepcopy(export_run(record, store.events(result.run_id), result.outputs))
    assert "plainpassword123" not in json.dumps(document)
    assert document["outputs"]["auth"]["text"] == "\\boxed{42}"
    assert document["run"]["meta"]["spec"]["nodes"]["auth"]["agent"] == "password_checker"

    other = f"sqlite:///{tmp_path / 'b.db'}"
    with Store(other) as store:
        assert import_run(store, document) == result.run_id
        assert replay(result.run_id, store=store).identical
        assert store.get_run(result.run_id).meta["spec"] == spec
