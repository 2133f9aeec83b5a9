"""The run store on SQLite and Postgres: runs, events, totals, concurrency, secrets, schema versions, migrations."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

import agentmesh.store.migrate as migrate
from agentmesh.errors import BatchNotFoundError, ConfigError, RunNotFoundError, SchemaVersionError, StoreError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import run
from agentmesh.runtime.replay import fork, replay
from agentmesh.spec.operators import OperatorParams
from agentmesh.store import SCHEMA_VERSION, EventKind, RunStatus, Store, upgrade_database
from agentmesh.store.engine import make_engine
from agentmesh.store.schema import (
    events,
    graph_checkpoint_blobs,
    graph_checkpoint_writes,
    graph_checkpoints,
    metadata,
    runs,
)

# --- runs ----------------------------------------------------------------------------------------------------


def test_create_finish_get_and_list_runs(store_url: str) -> None:
    with Store(store_url) as store:
        first = store.create_run("dylan_math", {"question": "1+1?"}, spec_hash="abc123", model="local")
        second = store.create_run("dylan_math", {"question": "2+2?"}, meta={"dataset": "gsm8k", "item": 7})
        third = store.create_run("sejury", {"artifact": "x"})

        running = store.get_run(second)
        assert running.status is RunStatus.RUNNING
        assert running.inputs == {"question": "2+2?"}
        owner = running.meta.pop("owner")  # which process runs it (agentmesh.store.owner)
        assert running.meta == {"dataset": "gsm8k", "item": 7} and owner["pid"] == os.getpid()
        assert running.finished_at is None
        assert running.created_at.utcoffset() == timedelta(0)  # timezone-aware UTC on both backends
        assert running.totals["calls"] == 0

        done = store.finish_run(first, RunStatus.SUCCEEDED, stop_reason="consensus 3/4")
        assert done.status is RunStatus.SUCCEEDED and done.stop_reason == "consensus 3/4"
        assert done.finished_at is not None and done.finished_at >= done.created_at
        assert (done.spec_hash, done.model, done.graph) == ("abc123", "local", "dylan_math")
        store.finish_run(third, "failed", stop_reason="model error", error="ServerError: 503")

        assert [r.id for r in store.list_runs()] == [third, second, first]
        assert [r.id for r in store.list_runs(graph="dylan_math")] == [second, first]
        assert [r.id for r in store.list_runs(status="failed")] == [third]
        assert [r.id for r in store.list_runs(graph="dylan_math", status=RunStatus.RUNNING)] == [second]
        assert [r.id for r in store.list_runs(limit=1)] == [third]
        assert store.list_runs(graph="alu") == []
        assert store.get_run(third).error == "ServerError: 503"

        exported = json.loads(json.dumps(done.model_dump(mode="json")))
        assert exported["status"] == "succeeded" and exported["id"] == first


def test_runs_of_a_batch_are_listed_and_counted(store_url: str) -> None:
    with Store(store_url) as store:
        ours = [store.create_run("debate", {"q": i}, meta={"batch": {"id": "b1", "line": i}}) for i in (1, 2, 3)]
        store.create_run("debate", {"q": 9}, meta={"batch": {"id": "b2", "line": 1}})
        store.create_run("debate", {"q": 0}, meta={"batch": "not a mapping"})
        store.create_run("debate", {"q": 0})
        store.finish_run(ours[1], "failed", stop_reason="error", error="x")
        assert [r.id for r in store.list_runs(batch="b1")] == ours[::-1]
        assert [r.id for r in store.list_runs(batch="b1", status="failed")] == [ours[1]]
        assert [r.id for r in store.list_runs(batch="b1", limit=2)] == ours[:0:-1]
        assert store.count_runs(batch="b1") == 3 and store.count_runs(batch="b1", status="running") == 2
        assert store.count_runs() == 6 and store.count_runs(graph="debate", batch="b2") == 1
        assert store.list_runs(batch="nope") == [] and store.count_runs(batch="nope") == 0


def test_invalid_statuses_and_limits_are_refused(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        with pytest.raises(StoreError, match="unknown run status 'done'"):
            store.finish_run(run_id, "done")
        with pytest.raises(StoreError, match="final status"):
            store.finish_run(run_id, RunStatus.RUNNING)
        with pytest.raises(StoreError, match="unknown run status"):
            store.list_runs(status="nope")
        with pytest.raises(StoreError, match="limit must be at least 1"):
            store.list_runs(limit=0)
        with pytest.raises(StoreError, match="needs a kind"):
            store.record_event(run_id, "")


def test_get_run_by_unique_prefix(store_url: str) -> None:
    with Store(store_url) as store:
        store.create_run("g", {}, run_id="abc111")
        store.create_run("g", {}, run_id="abc222")
        store.create_run("g", {}, run_id="abc")
        store.create_run("g", {}, run_id="a_c%99")

        assert store.get_run("abc1").id == "abc111"
        assert store.get_run("abc").id == "abc"  # an exact id wins over being a prefix of others
        assert store.get_run("a_c").id == "a_c%99"  # LIKE wildcards in the prefix are literal
        with pytest.raises(RunNotFoundError, match=r"'ab' is ambiguous: it matches .*abc111.*give more characters"):
            store.get_run("ab")
        with pytest.raises(RunNotFoundError, match="no run 'zzz'"):
            store.get_run("zzz")
        with pytest.raises(RunNotFoundError, match="no run id given"):
            store.get_run("  ")


def test_a_batch_id_is_resolved_from_a_unique_prefix_in_the_words_of_a_run_id(store_url: str) -> None:
    """A run was found by a prefix of its id, a batch only by its whole id (12 characters to copy from a summary).
    A batch's prefix is resolved as a run's: an exact id first, then the only batch whose id starts with it; none,
    or several (each named, newest first), is the same error as a run's."""
    with Store(store_url) as store:
        for batch in ("abc111", "abc111", "abc222", "abc", "a_c%99", "def333"):
            store.create_run("g", {}, meta={"batch": {"id": batch, "line": 1}})
        store.create_run("g", {}, run_id="abc999")  # a run's id is no batch's

        assert store.resolve_batch("def") == "def333"
        assert store.resolve_batch("abc1") == "abc111"  # one batch, two runs: unique all the same
        assert store.resolve_batch("abc") == "abc"  # an exact id wins over being a prefix of others
        assert store.resolve_batch("a_c") == "a_c%99"  # LIKE wildcards in the prefix are literal
        with pytest.raises(BatchNotFoundError) as ambiguous:
            store.resolve_batch("ab")
        said = re.fullmatch(
            r"batch id prefix 'ab' is ambiguous: it matches (.*); give more characters", str(ambiguous.value)
        )
        assert said is not None and sorted(said[1].split(", ")) == ["abc", "abc111", "abc222"], str(ambiguous.value)
        with pytest.raises(BatchNotFoundError, match=re.escape(f"no batch 'abc9' in {store.url}")):
            store.resolve_batch("abc9")
        with pytest.raises(BatchNotFoundError, match="no batch id given"):
            store.resolve_batch(" ")


def test_run_ids_and_parents_are_checked(store_url: str) -> None:
    with Store(store_url) as store:
        parent = store.create_run("g", {}, run_id="parent")
        with pytest.raises(StoreError, match="'parent' already exists"):
            store.create_run("g", {}, run_id="parent")
        with pytest.raises(RunNotFoundError, match="parent run 'ghost'"):
            store.create_run("g", {}, parent_run_id="ghost")
        child = store.create_run("g", {}, parent_run_id=parent)
        assert store.get_run(child).parent_run_id == parent


def test_missing_runs_raise_run_not_found(store_url: str) -> None:
    with Store(store_url) as store:
        with pytest.raises(RunNotFoundError, match="no run 'nope'"):
            store.record_event("nope", "log", data={"x": 1})
        with pytest.raises(RunNotFoundError):
            store.finish_run("nope", "succeeded")
        with pytest.raises(RunNotFoundError):
            store.events("nope")


# --- events and totals -----------------------------------------------------------------------------------


def test_events_are_ordered_and_totals_summed(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("dylan_math", {"question": "q"})
        first = store.record_event(
            run_id,
            EventKind.MODEL_CALL,
            node="layer",
            agent="solver_a",
            round=0,
            call_index=0,
            attempt=1,
            request={"messages": [{"role": "user", "content": "q"}], "max_tokens": 32},
            request_hash="h0",
            error="RateLimitedError: 429",
            latency_s=0.01,
        )
        store.record_event(
            run_id,
            "model_call",
            node="layer",
            agent="solver_a",
            round=0,
            call_index=0,
            attempt=2,
            request={"messages": [{"role": "user", "content": "q"}], "max_tokens": 32},
            request_hash="h0",
            response={"choices": [{"text": "2"}], "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
            prompt_tokens=10,
            completion_tokens=2,
            total_tokens=12,
            latency_s=0.5,
            cost_usd=0.001,
        )
        store.record_event(run_id, "node_result", node="layer", round=0, data={"answers": ["2"]})
        store.record_event(
            run_id,
            "model_call",
            node="layer",
            agent="solver_b",
            round=0,
            call_index=0,
            attempt=1,
            prompt_tokens=7,
            completion_tokens=3,
            total_tokens=10,
            usage_estimated=True,
            cost_usd=0.002,
        )
        store.record_event(run_id, "score", agent="solver_a", data={"importance": 0.7})

        all_events = store.events(run_id)
        assert [e.seq for e in all_events] == [1, 2, 3, 4, 5]
        assert [e.kind for e in all_events] == ["model_call", "model_call", "node_result", "model_call", "score"]
        assert all_events[0].id == first and all_events[0].error == "RateLimitedError: 429"
        assert all_events[1].response == {
            "choices": [{"text": "2"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2},
        }
        assert all_events[1].request == {"messages": [{"role": "user", "content": "q"}], "max_tokens": 32}
        assert all_events[0].response is None and all_events[2].request is None
        assert all_events[3].usage_estimated is True
        assert [e.agent for e in store.events(run_id, kind="model_call")] == ["solver_a", "solver_a", "solver_b"]
        assert [e.seq for e in store.events(run_id, kind=EventKind.SCORE)] == [5]
        json.dumps([e.model_dump(mode="json") for e in all_events])

        record = store.finish_run(run_id, RunStatus.SUCCEEDED, stop_reason="max rounds")
        assert record.totals == {
            "calls": 3,
            "prompt_tokens": 17,
            "completion_tokens": 5,
            "total_tokens": 22,
            "cost_usd": pytest.approx(0.003),
            "estimated_tokens": True,
            "errors": 1,
        }
        assert store.get_run(run_id).totals == record.totals


def test_totals_without_known_prices(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        store.record_event(run_id, "model_call", prompt_tokens=1, completion_tokens=1, total_tokens=2)
        totals = store.finish_run(run_id, "stopped", stop_reason="budget").totals
        assert totals["cost_usd"] is None and totals["calls"] == 1 and totals["estimated_tokens"] is False


def test_recorded_calls_are_found_by_their_replay_key(store_url: str) -> None:
    # Replay looks calls up by (run, node, agent, round, call_index); the store indexes exactly that.
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        for round_ in range(3):
            for agent in ("a", "b"):
                store.record_event(
                    run_id,
                    "model_call",
                    node="n",
                    agent=agent,
                    round=round_,
                    call_index=0,
                    request_hash=f"{agent}{round_}",
                )
        e = events.c
        with store.engine.connect() as conn:
            found = conn.execute(
                sa.select(e.request_hash).where(
                    e.run_id == run_id, e.node == "n", e.agent == "b", e.round == 1, e.call_index == 0
                )
            ).scalar_one()
        assert found == "b1"
        index_columns = [tuple(ix["column_names"]) for ix in sa.inspect(store.engine).get_indexes("events")]
        assert ("run_id", "node", "agent", "round", "call_index") in index_columns


# --- concurrency -----------------------------------------------------------------------------------------


def _assert_contiguous(store: Store, run_id: str, expected: int) -> None:
    seqs = [e.seq for e in store.events(run_id)]
    assert seqs == list(range(1, expected + 1))


def test_concurrent_record_event_from_threads(store_url: str) -> None:
    threads, per_thread = 8, 25
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        barrier = threading.Barrier(threads)
        failures: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    store.record_event(run_id, "model_call", agent=f"w{worker}", call_index=i, total_tokens=1)
            except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
                failures.append(exc)

        pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not failures
        _assert_contiguous(store, run_id, threads * per_thread)
        assert store.finish_run(run_id, "succeeded").totals["total_tokens"] == threads * per_thread


def test_two_stores_share_one_database(store_url: str) -> None:
    with Store(store_url) as a, Store(store_url) as b:
        run_id = a.create_run("g", {})
        failures: list[BaseException] = []

        def work(store: Store, name: str) -> None:
            try:
                for i in range(40):
                    store.record_event(run_id, "log", agent=name, call_index=i)
            except BaseException as exc:
                failures.append(exc)

        pool = [threading.Thread(target=work, args=(s, n)) for s, n in ((a, "a"), (b, "b"), (a, "a2"), (b, "b2"))]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not failures
        _assert_contiguous(a, run_id, 160)
        assert b.finish_run(run_id, "succeeded").status is RunStatus.SUCCEEDED
        assert a.get_run(run_id).status is RunStatus.SUCCEEDED


_WRITER = """
import sys
from agentmesh.store import Store
url, run_id, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Store(url) as store:
    for i in range(count):
        store.record_event(run_id, "log", agent=name, call_index=i, data={"i": i})
"""


def test_several_processes_write_one_run(store_url: str) -> None:
    processes, per_process = 3, 30
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        root = str(Path(__file__).resolve().parents[2])
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, store_url, run_id, f"p{n}", str(per_process)],
                cwd=root,
                env={**os.environ, "PYTHONPATH": root},
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(processes)
        ]
        for child in children:
            _, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
        _assert_contiguous(store, run_id, processes * per_process)
        by_writer = {e.agent for e in store.events(run_id)}
        assert by_writer == {f"p{n}" for n in range(processes)}


# --- secrets ---------------------------------------------------------------------------------------------

SECRETS = {
    "openai": "sk-proj-Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2",
    "bearer": "tok_live_4f9a8b7c6d5e4f3a2b1c",
    "password": "correct-horse-battery-staple-77",
    "hf": "hf_QwErTyUiOpAsDfGhJkLzXcVbNm12345678",
    "db": "dbpassw0rd-xyz",
}


class _State(TypedDict):
    x: int


def _dump_database(store: Store) -> str:
    """Every value of every row of every table, as text."""
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    else:
                        parts.append(json.dumps(value, default=str))
    return "\n".join(parts)


def test_secrets_never_reach_the_store(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run(
            "g",
            {"question": f"my key is {SECRETS['openai']}, keep it safe", "api_key": SECRETS["openai"]},
            model=f"openai:gpt-4o@http://admin:{SECRETS['db']}@llm.internal:8000/v1",
            meta={"db_url": f"postgresql://svc:{SECRETS['db']}@db/agentmesh", "api_key_env": "OPENAI_API_KEY"},
        )
        store.record_event(
            run_id,
            "model_call",
            request={
                "headers": {"Authorization": f"Bearer {SECRETS['bearer']}"},
                "max_tokens": 64,
                "messages": [{"role": "user", "content": f"use {SECRETS['hf']}"}],
            },
            response={"choices": [{"text": "ok"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}},
            data={"login": {"user": "bob", "password": SECRETS["password"]}},
            error=f"AuthenticationError: Incorrect API key provided: {SECRETS['openai']}",
            prompt_tokens=5,
            completion_tokens=1,
            total_tokens=6,
        )
        store.finish_run(
            run_id,
            "failed",
            stop_reason=f"auth failed for {SECRETS['openai']}",
            error=f"401 Unauthorized (sent Authorization: Bearer {SECRETS['bearer']})",
        )

        # Checkpoint metadata picks up configurable values: a key passed there must not be stored either.
        graph = StateGraph(_State)
        graph.add_node("inc", lambda s: {"x": s["x"] + 1})
        graph.add_edge(START, "inc")
        graph.add_edge("inc", END)
        app = graph.compile(checkpointer=store.checkpointer())
        app.invoke({"x": 1}, {"configurable": {"thread_id": run_id, "api_key": SECRETS["openai"]}})

        dump = _dump_database(store)
        for name, secret in SECRETS.items():
            assert secret not in dump, f"the {name} secret reached the database"

        run = store.get_run(run_id)
        assert run.inputs == {"question": "my key is [redacted], keep it safe", "api_key": "[redacted]"}
        assert run.meta["api_key_env"] == "OPENAI_API_KEY"
        event = store.events(run_id)[0]
        assert event.request["max_tokens"] == 64
        assert event.request["headers"] == {"Authorization": "[redacted]"}
        assert event.response["usage"] == {"prompt_tokens": 5, "completion_tokens": 1}
        assert event.data == {"login": {"user": "bob", "password": "[redacted]"}}
        assert event.error == "AuthenticationError: Incorrect API key provided: [redacted]"
        assert (event.prompt_tokens, event.total_tokens) == (5, 6)
        assert run.error == "401 Unauthorized (sent Authorization: Bearer [redacted])"
        assert run.stop_reason == "auth failed for [redacted]"

    if store_url.startswith("sqlite"):
        # Nothing on disk either: the database file, its WAL and shared-memory files.
        folder = Path(store_url.removeprefix("sqlite:///")).parent
        raw = b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())
        assert raw, "expected database files"
        for secret in SECRETS.values():
            assert secret.encode() not in raw


# --- schema versions and migrations ------------------------------------------------------------------------


def test_every_row_carries_the_schema_version(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        store.record_event(run_id, "log")
        graph = StateGraph(_State)
        graph.add_node("inc", lambda s: {"x": s["x"] + 1})
        graph.add_edge(START, "inc")
        app = graph.compile(checkpointer=store.checkpointer(), interrupt_after=["inc"])
        config: Any = {"configurable": {"thread_id": run_id}}
        app.invoke({"x": 1}, config)
        app.update_state(config, {"x": 5})
        store.add_targets("people", [{"name": "Ada"}], create=True)
        store.put_target_embeddings("people", "hashing", {1: [0.5, -0.5]})
        assert store.pin_target_set(run_id, "alu", "people") is not None
        with store.engine.connect() as conn:
            for table in metadata.sorted_tables:
                versions = conn.execute(sa.select(table.c.schema_version)).scalars().all()
                assert versions, f"no rows in {table.name}"
                assert set(versions) == {SCHEMA_VERSION}, table.name
        assert store.get_run(run_id).schema_version == SCHEMA_VERSION
        assert store.events(run_id)[0].schema_version == SCHEMA_VERSION


def test_records_from_a_newer_schema_are_refused(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        store.record_event(run_id, "log")
        with store.engine.begin() as conn:
            conn.execute(sa.update(runs).values(schema_version=SCHEMA_VERSION + 1))
            conn.execute(sa.update(events).values(schema_version=SCHEMA_VERSION + 1))
        newer = rf"schema version {SCHEMA_VERSION + 1}; this agentmesh reads up to {SCHEMA_VERSION}"
        with pytest.raises(SchemaVersionError, match=newer):
            store.get_run(run_id)
        with pytest.raises(SchemaVersionError):
            store.events(run_id)


def test_fresh_database_is_created_at_head(store_url: str) -> None:
    with Store(store_url) as store:
        with store.engine.connect() as conn:
            revision = MigrationContext.configure(
                conn, opts={"version_table": migrate.VERSION_TABLE}
            ).get_current_revision()
            tables = set(sa.inspect(conn).get_table_names())
            if conn.dialect.name == "postgresql":  # everything, version table included, in the test's schema
                schema = conn.execute(sa.text("select current_schema()")).scalar_one()
                assert schema.startswith("am_")
                assert migrate.VERSION_TABLE in set(sa.inspect(conn).get_table_names(schema=schema))
        assert revision == migrate.head_revision() == f"{SCHEMA_VERSION:04d}"
        assert {t.name for t in metadata.sorted_tables} | {migrate.VERSION_TABLE} <= tables
        assert store.upgrade() == migrate.head_revision()  # already there: a no-op


def test_migrations_create_exactly_the_declared_schema(store_url: str) -> None:
    with Store(store_url) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


def test_packaged_migrations_end_at_this_schema_version() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.head_revision()


def test_downgrade_removes_the_schema(store_url: str) -> None:
    with Store(store_url) as store:
        with store.engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "base")
        with store.engine.connect() as conn:
            left = set(sa.inspect(conn).get_table_names()) - {migrate.VERSION_TABLE}
        assert left == set()
        assert store.upgrade() == migrate.head_revision()
        assert store.list_runs() == []


_NEXT_MIGRATION = """
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "note")
"""


def test_older_and_newer_databases_are_refused_until_upgraded(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {"q": 1})

    # A future agentmesh: schema version 4, shipped with a 0004 migration.
    future = tmp_path / "future_migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, future, ignore=shutil.ignore_patterns("__pycache__"))
    (future / "versions" / "0004_note.py").write_text(_NEXT_MIGRATION)
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", future)
    monkeypatch.setattr(migrate, "SCHEMA_VERSION", 4)

    with pytest.raises(
        SchemaVersionError, match=r"at schema revision 0003; this agentmesh needs 0004.*agentmesh db upgrade"
    ):
        Store(store_url)
    url, revision = upgrade_database(store_url)
    assert revision == "0004"
    assert url.startswith(store_url.split(":", 1)[0])
    with Store(store_url) as store:
        assert store.get_run(run_id).inputs == {"q": 1}  # data survived the migration
        with store.engine.connect() as conn:
            assert "note" in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert store.upgrade() == "0004"

    # Back to this agentmesh: the database is now newer than it knows, for opening and for upgrading.
    monkeypatch.undo()
    with pytest.raises(SchemaVersionError, match=r"0004, newer than this agentmesh knows.*upgrade agentmesh"):
        Store(store_url)
    with pytest.raises(SchemaVersionError, match="newer than this agentmesh knows"):
        upgrade_database(store_url)


def test_upgrade_database_creates_a_new_database(store_url: str) -> None:
    url, revision = upgrade_database(store_url)
    assert revision == migrate.head_revision()
    assert "***" in url or ":" not in url.split("://", 1)[1].split("@", 1)[0]
    with Store(store_url) as store:
        assert store.list_runs() == []


def test_json_values_come_back_exactly_whatever_the_serialiser(store_url: str) -> None:
    """Columns are written by orjson, with json for what orjson refuses: both read back as the value written."""
    data = {
        "big": 2**70,  # beyond 64 bits: orjson refuses it, json takes over
        "negative": -(2**63),
        "float": 0.1,
        "tiny": 1e-7,
        "unicode": "é ✓ 日本 \u2028",
        "control": 'tab\tnewline\nquote"backslash\\',
        "nested": [{"a": [1, 2, None, True]}, []],
    }
    with Store(store_url) as store:
        run_id = store.create_run("g", {"item": data})
        store.record_event(run_id, "log", data=data)
        assert store.events(run_id)[0].data == data
        assert store.get_run(run_id).inputs == {"item": data}


# --- deleting runs -------------------------------------------------------------------------------------------------


def _checkpoint_rows(store: Store, run_id: str) -> int:
    with store.engine.connect() as conn:
        return sum(
            conn.execute(sa.select(sa.func.count()).where(table.c.thread_id == run_id)).scalar_one()
            for table in (graph_checkpoints, graph_checkpoint_blobs, graph_checkpoint_writes)
        )


def test_deleting_runs_takes_their_events_and_checkpoints_and_nothing_else(store_url: str) -> None:
    """Real runs (events and LangGraph checkpoints), a fork of one: deleting the parent leaves the fork whole (its
    checkpoints were copied, its own calls are its own) and only clears its link; an unknown or running run among
    the ids deletes nothing; the database can then be vacuumed."""
    parent = run("self_consistency", {"question": "Q?"}, model=ScriptedModel(default="\\boxed{1}"), store=store_url)
    other = run("self_consistency", {"question": "R?"}, model=ScriptedModel(default="\\boxed{2}"), store=store_url)
    child = fork(parent.run_id, step="3", store=store_url, model=ScriptedModel(default="\\boxed{3}"))
    with Store(store_url) as store:
        before = {r: (len(store.events(r)), _checkpoint_rows(store, r)) for r in (parent.run_id, other.run_id)}
        child_before = (len(store.events(child.run_id)), _checkpoint_rows(store, child.run_id))
        assert all(e and c for e, c in before.values()) and all(child_before)
        assert store.get_run(child.run_id).parent_run_id == parent.run_id

        with pytest.raises(RunNotFoundError, match=r"no run 'nope'.*nothing deleted"):
            store.delete_runs([parent.run_id, "nope"])
        running = store.create_run("g", {})
        with pytest.raises(StoreError, match=r"is running.*nothing deleted"):
            store.delete_runs([parent.run_id, running])
        assert len(store.events(parent.run_id)) == before[parent.run_id][0]  # both refusals deleted nothing

        assert store.delete_runs([parent.run_id, parent.run_id]) == before[parent.run_id][0]
        with pytest.raises(RunNotFoundError):
            store.get_run(parent.run_id)
        with store.engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).where(events.c.run_id == parent.run_id)).scalar_one()
        assert left == 0 and _checkpoint_rows(store, parent.run_id) == 0
        assert store.get_run(child.run_id).parent_run_id is None
        assert (len(store.events(child.run_id)), _checkpoint_rows(store, child.run_id)) == child_before
        assert (len(store.events(other.run_id)), _checkpoint_rows(store, other.run_id)) == before[other.run_id]

        assert store.delete_runs([running], force=True) == 0
        assert store.delete_runs([]) == 0
        store.vacuum()
        assert {r.id for r in store.list_runs()} == {other.run_id, child.run_id}
    # the fork still replays from its own record, with zero calls
    assert replay(child.run_id, store=store_url).identical


def test_a_database_with_tables_of_agentmeshs_names_but_no_revision_is_refused_untouched(store_url: str) -> None:
    """Pointed at another application's database, the store says so rather than failing half-way through creating
    its schema ("table runs already exists") or writing into the other application's tables."""
    foreign = make_engine(store_url)
    try:
        with foreign.begin() as conn:
            conn.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY, payload TEXT)"))
            conn.execute(sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO runs VALUES (1, 'theirs')"))
        refused = r"is not an agentmesh database: .* tables named runs; nothing was changed"
        with pytest.raises(StoreError, match=refused):
            Store(store_url)
        with pytest.raises(StoreError, match=refused):  # `agentmesh db upgrade`: "cannot open ...: table runs exists"
            upgrade_database(store_url)
        with foreign.connect() as conn:
            assert conn.execute(sa.text("SELECT payload FROM runs")).scalar_one() == "theirs"
            assert sorted(sa.inspect(conn).get_table_names()) == ["runs", "users"]
            conn.execute(sa.text("DROP TABLE runs"))
            conn.commit()
        with Store(store_url) as store:  # other applications' tables of other names are left alone
            store.create_run("g", {})
        with foreign.connect() as conn:
            assert "users" in sa.inspect(conn).get_table_names()
    finally:
        foreign.dispose()


def test_a_runs_cost_is_unknown_when_one_of_its_calls_price_is(store_url: str) -> None:
    """A free call (the embedded model: $0) beside one of a model missing from the price table summed to "$0":
    a partial sum passed for the run's cost. Failed attempts (no answer, no cost) do not count."""
    with Store(store_url) as store:
        for costs, expected in (([0.0, 0.002], 0.002), ([0.0, None], None), ([0.001, 0.002], 0.003), ([], 0.0)):
            run_id = store.create_run("g", {})
            for i, cost in enumerate(costs):
                store.record_event(run_id, "model_call", call_index=i, response={"text": "x"}, cost_usd=cost)
            store.record_event(run_id, "model_call", call_index=9, error="timeout")  # a failed attempt
            totals = store.finish_run(run_id, RunStatus.SUCCEEDED).totals
            assert totals["calls"] == len(costs) + 1 and totals["errors"] == 1  # ([]: only a failed one, $0)
            assert totals["cost_usd"] == (None if expected is None else pytest.approx(expected)), costs


def test_a_store_given_a_path_says_to_give_a_url(tmp_path: Path) -> None:
    """``Store(Path("runs.db"))`` failed in SQLAlchemy's URL parser: "expected string or bytes-like object"."""
    with pytest.raises(
        ConfigError, match=r"Store: expected a database URL .* got PosixPath .*\(a SQLite file: 'sqlite:///"
    ):
        Store(tmp_path / "runs.db")  # type: ignore[arg-type]
    assert not (tmp_path / "runs.db").exists()


class _TextState(TypedDict):
    question: str
    answer: list[str]


def test_a_failed_tasks_error_quoting_a_key_is_masked_in_the_checkpoints(store_url: str) -> None:
    """LangGraph stores a failed task's error (its repr) as a pending write: an error quoting the inputs kept a key
    whole there, masked everywhere else."""
    question = f"my key is {SECRETS['openai']}; header Authorization: Bearer {SECRETS['bearer']}"

    def fail(s: _TextState) -> dict[str, Any]:
        raise ValueError(f"cannot answer {s['question']!r}")

    graph = StateGraph(_TextState)
    graph.add_node("fail", fail)
    graph.add_edge(START, "fail")
    graph.add_edge("fail", END)
    with Store(store_url) as store:
        with pytest.raises(ValueError):
            graph.compile(checkpointer=store.checkpointer()).invoke(
                {"question": "plain", "answer": []} | {"question": question}, {"configurable": {"thread_id": "t-err"}}
            )
        store.flush()
        writes = [
            w
            for t in store.checkpointer().list({"configurable": {"thread_id": "t-err"}})
            for w in t.pending_writes or []
        ]
        errors = [repr(value) for _, channel, value in writes if channel == "__error__"]
        assert errors and all("cannot answer" in e and "[redacted]" in e for e in errors)
        for name in ("openai", "bearer"):
            assert all(SECRETS[name] not in e for e in errors), name


def test_a_run_keeps_no_key_its_inputs_or_replies_quote_in_its_checkpoints(store_url: str) -> None:
    """A key quoted in a question or a reply was masked in the run's record and events but kept whole in the state
    agentmesh checkpoints (the inputs channel, every answer)."""
    from agentmesh.models import ScriptedModel
    from agentmesh.runtime import run

    question = f"What is 2+2? my key is {SECRETS['openai']}"
    reply = f"\\boxed{{4}} (and the token Bearer {SECRETS['bearer']})"
    with Store(store_url) as store:
        result = run("debate", {"question": question}, model=ScriptedModel(default=reply), store=store)
        assert result.status == "succeeded" and result.answer == "4"
        saved = store.checkpointer().get_tuple({"configurable": {"thread_id": result.run_id, "checkpoint_ns": ""}})
        assert saved is not None
        state = json.dumps(saved.checkpoint["channel_values"], default=str)
        assert "[redacted]" in state
        dump = _dump_database(store)
        for name in ("openai", "bearer"):
            assert SECRETS[name] not in state and SECRETS[name] not in dump, name


class _Credentials(BaseModel):
    user: str
    password: str
    note: str


@dataclasses.dataclass
class _Header:
    authorization: str
    text: str


class _LeakParams(OperatorParams):
    pass


def test_a_users_function_or_operator_returning_a_key_does_not_get_it_into_the_checkpoints(store_url: str) -> None:
    """State from agentmesh's own operators holds only replies and inputs, masked where they entered the run; a
    user's function or operator may return what neither carried (a key it read from its environment), and that was
    stored whole in the checkpoints. It is masked as it enters the state, models and dataclasses as their fields
    (what a resumed run reads back), and the next node sees the masked values."""
    from agentmesh.runtime import operator, register_function
    from agentmesh.runtime.operators import NodeRun
    from agentmesh.spec import graph_from_data

    seen: dict[str, Any] = {}

    @register_function("test_store_leaky_function")
    def leaky(outputs: Any, inputs: Any) -> dict[str, Any]:
        return {
            "api_key": SECRETS["openai"],
            "said": f"use Bearer {SECRETS['bearer']} please",
            "login": _Credentials(user="ann", password=SECRETS["password"], note=f"token {SECRETS['hf']}"),
            "pair": ("kept", 3),
            "score": 0.5,
        }

    @operator("test_store_leaky_operator", params=_LeakParams)
    async def leaky_op(run: NodeRun) -> dict[str, Any]:
        seen.update(run.outputs["first"])
        return {"headers": [_Header(authorization=f"Bearer {SECRETS['bearer']}", text="hello")], "answer": "ok"}

    spec = graph_from_data(
        {
            "name": "leaky",
            "inputs": {},
            "nodes": {
                "first": {"op": "function", "function": "test_store_leaky_function"},
                "second": {"op": "test_store_leaky_operator"},
            },
            "edges": [["first", "second"]],
        }
    )
    with Store(store_url) as store:
        result = run(spec, {}, model=ScriptedModel(default="unused"), store=store)
        assert result.status == "succeeded", result.error
        assert seen["api_key"] == "[redacted]" and seen["said"] == "use Bearer [redacted] please"
        assert seen["login"] == {"user": "ann", "password": "[redacted]", "note": "token [redacted]"}
        assert seen["pair"] == ["kept", 3] and seen["score"] == 0.5  # as a resumed run would read them back
        assert result.outputs["second"]["headers"] == [{"authorization": "[redacted]", "text": "hello"}]
        saved = store.checkpointer().get_tuple({"configurable": {"thread_id": result.run_id, "checkpoint_ns": ""}})
        assert saved is not None
        state = json.dumps(saved.checkpoint["channel_values"], default=str)
        dump = _dump_database(store)
        for name in ("openai", "bearer", "password", "hf"):
            assert SECRETS[name] not in state and SECRETS[name] not in dump, name
