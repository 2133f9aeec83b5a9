"""Large event payloads and checkpoint blobs are stored compressed and read back unchanged (store._compress)."""

from __future__ import annotations

import base64
import json
import sqlite3
import zlib
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from agentmesh.store import Store
from agentmesh.store._compress import THRESHOLD, CompressingSerde

PROMPT = " ".join(f"agent {i % 7} said the answer is {i * 17 % 91}." for i in range(200))


def test_large_event_payloads_are_compressed_on_sqlite_and_read_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(f"sqlite:///{path}") as store:
        run_id = store.create_run("g", {"question": "q"})
        request = {"messages": [{"role": "user", "content": PROMPT}]}
        store.record_event(run_id, "model_call", node="n", agent="a", request=request, response={"text": "short"})
        (event,) = store.events(run_id)
        assert event.request == request and event.response == {"text": "short"}
    raw_request, raw_response = sqlite3.connect(path).execute("SELECT request, response FROM events").fetchone()
    stored = json.loads(raw_request)
    assert set(stored) == {"$zstd"} and len(raw_request) < len(json.dumps(request)) / 2
    assert json.loads(raw_response) == {"text": "short"}  # small documents stay as they are


def test_large_blobs_are_compressed_and_tagged() -> None:
    serde = CompressingSerde(JsonPlusSerializer(pickle_fallback=False))
    type_, blob = serde.dumps_typed({"answers": [PROMPT] * 3})
    assert type_.startswith("zstd+") and serde.loads_typed((type_, blob)) == {"answers": [PROMPT] * 3}
    small_type, small_blob = serde.dumps_typed({"round": 1})
    assert not small_type.startswith("zstd+") and len(small_blob) < THRESHOLD
    assert serde.loads_typed((small_type, small_blob)) == {"round": 1}
    plain = JsonPlusSerializer(pickle_fallback=False).dumps_typed({"answers": [PROMPT]})
    assert serde.loads_typed(plain) == {"answers": [PROMPT]}  # blobs written before compression still load


def test_documents_and_blobs_written_zlib_compressed_by_earlier_versions_still_read(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    request = {"messages": [{"role": "user", "content": PROMPT}]}
    with Store(f"sqlite:///{path}") as store:
        run_id = store.create_run("g", {"question": "q"})
        store.record_event(run_id, "model_call", node="n", agent="a", request={"placeholder": True})
    old = {"$zlib": base64.b64encode(zlib.compress(json.dumps(request).encode(), 6)).decode("ascii")}
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET request = ?", (json.dumps(old),))
    with Store(f"sqlite:///{path}") as store:
        assert store.events(run_id)[0].request == request
    inner = JsonPlusSerializer(pickle_fallback=False)
    type_, blob = inner.dumps_typed({"answers": [PROMPT]})
    assert CompressingSerde(inner).loads_typed(("zlib+" + type_, zlib.compress(blob, 6))) == {"answers": [PROMPT]}
