"""An event's fields are defined once (:class:`agentmesh.store.events.EventFields`): what is built from that list
takes every field of it, and what cannot be built from it (the ``events`` table, :class:`EventRecord`) is checked
against it here, so that a field added in one place and not the others fails a test rather than an import."""

from __future__ import annotations

import copy
import inspect
from datetime import UTC, datetime
from typing import Any, get_args, get_type_hints

import pytest

from agentmesh.models.messages import CallContext, CallRecord, ChatMessage, Choice, ModelRequest, ModelResponse, Usage
from agentmesh.store import EventRecord, Store, event_row
from agentmesh.store.events import EVENT_FIELD_TYPES, EVENT_FIELDS, EventFields
from agentmesh.store.schema import events
from agentmesh.store.transfer import export_run, import_run

#: The columns an event has besides its fields: given by the store (its id, run, position, version) or by the
#: caller apart from the fields (its kind, its time).
_NOT_FIELDS = ("id", "run_id", "seq", "kind", "created_at", "schema_version")

#: A value of each field that is not its default, as a user would record it.
_GIVEN: EventFields = {
    "node": "solver",
    "agent": "solver_a",
    "round": 2,
    "call_index": 3,
    "attempt": 1,
    "request": {"messages": [{"role": "user", "content": "2+2?"}]},
    "request_hash": "abc",
    "response": {"text": "4"},
    "prompt_tokens": 5,
    "completion_tokens": 1,
    "total_tokens": 6,
    "usage_estimated": True,
    "latency_s": 0.25,
    "cost_usd": 0.001,
    "error": "ServerError: 503",
    "data": {"answer": "4"},
}


def _expected_hint(name: str) -> Any:
    """The field type the ``events`` column ``name`` calls for: ``Any`` for JSON (stored redacted), else the
    column's Python type, ``| None`` when the column is nullable."""
    column = events.c[name]
    python_type = column.type.python_type
    if python_type is object:  # the JSON payload columns (CompressedJSON / JSONB)
        return Any
    return python_type | None if column.nullable else python_type


def test_the_event_fields_are_the_events_columns_with_their_types() -> None:
    columns = [c.name for c in events.columns if c.name not in _NOT_FIELDS]
    assert list(EVENT_FIELDS) == columns
    assert {name: EVENT_FIELD_TYPES[name] for name in columns} == {name: _expected_hint(name) for name in columns}


def test_event_row_takes_the_event_fields_written_out() -> None:
    # written out for speed (the hottest path); held to EventFields here: names, order, types, keyword-only
    parameters = list(inspect.signature(event_row).parameters.values())
    assert [p.name for p in parameters] == ["kind", *EVENT_FIELDS, "created_at"]
    fields = parameters[1:-1]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in fields)
    hints = get_type_hints(event_row)
    assert {p.name: hints[p.name] for p in fields} == dict(EVENT_FIELD_TYPES)
    # left out, a field is None, usage_estimated False (as EventFields says, and an import fills in)
    assert {p.name: p.default for p in fields} == {**dict.fromkeys(EVENT_FIELDS), "usage_estimated": False}


def test_an_event_record_has_every_column_typed_as_the_event_fields() -> None:
    assert list(EventRecord.model_fields) == [c.name for c in events.columns]
    assert {name: EventRecord.model_fields[name].annotation for name in EVENT_FIELDS} == dict(EVENT_FIELD_TYPES)


#: The event fields a model call's record has no value for (:meth:`CallRecord.event_fields` leaves them out).
_NOT_FROM_A_CALL = ("data",)


def _full_call_record() -> CallRecord:
    """A model call's record with every part set, so that each of its event fields has a value."""
    request = ModelRequest(messages=(ChatMessage(role="user", content="2+2?"),))
    usage = Usage(prompt_tokens=5, completion_tokens=1, estimated=True)
    return CallRecord(
        reference="scripted:x",
        context=CallContext(run_id="r", node="solver", agent="solver_a", round=2, call_index=3),
        request=request,
        attempt=1,
        response=ModelResponse(model="m", choices=(Choice(text="4"),), usage=usage, latency_s=0.25, cost_usd=0.001),
        error="503",
        error_type="ServerError",
        latency_s=0.25,
        request_hash=request.request_hash(),
        finished_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def test_a_call_records_event_fields_are_the_event_fields() -> None:
    """``CallRecord.event_fields`` is written out (``agentmesh.models`` does not import the store, and every model
    call's event is built from it): held to :class:`EventFields` here -- the same names in the same order, but
    ``data`` (a call has none), then the call's time -- and each value of the field's type."""
    fields = _full_call_record().event_fields()
    assert list(fields) == ["created_at", *(name for name in EVENT_FIELDS if name not in _NOT_FROM_A_CALL)]
    for name, value in fields.items():
        hint = datetime if name == "created_at" else EVENT_FIELD_TYPES[name]
        if hint is not Any:
            assert isinstance(value, get_args(hint) or hint), (name, value, hint)
            assert value is not None, name  # set in the record above: the field reads the record's value
    assert event_row("model_call", **fields)["usage_estimated"] is True


def test_the_test_values_give_every_field() -> None:
    assert list(_GIVEN) == list(EVENT_FIELDS)  # else the round trips below miss a field


def test_every_field_given_to_record_event_is_stored_and_read_back(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {"q": "2+2?"})
        store.record_event(run_id, "model_call", **_GIVEN)
        [stored] = store.events(run_id)
    assert {name: getattr(stored, name) for name in EVENT_FIELDS} == _GIVEN


def test_an_event_left_without_its_fields_has_their_defaults(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {"q": "2+2?"})
        store.record_event(run_id, "log")
        [stored] = store.events(run_id)
    assert {name: getattr(stored, name) for name in EVENT_FIELDS} == {
        **dict.fromkeys(EVENT_FIELDS),
        "usage_estimated": False,
    }


def test_every_field_survives_an_export_and_an_import(tmp_path: Any) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with Store(f"sqlite:///{tmp_path / 'from.db'}") as source:
        run_id = source.create_run("g", {"q": "2+2?"})
        source.record_events(run_id, [event_row("model_call", created_at=when, **_GIVEN)])
        source.finish_run(run_id, "succeeded", stop_reason="completed")
        document = copy.deepcopy(export_run(source.get_run(run_id), source.events(run_id), None))
    with Store(f"sqlite:///{tmp_path / 'to.db'}") as target:
        imported = import_run(target, document)
        [event] = target.events(imported)
    assert {name: getattr(event, name) for name in EVENT_FIELDS} == _GIVEN
    assert (event.kind, event.created_at) == ("model_call", when)


def test_a_json_field_is_stored_without_its_secrets(store_url: str) -> None:
    secret = "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2"
    json_fields = [name for name, hint in EVENT_FIELD_TYPES.items() if hint is Any]
    assert json_fields == ["request", "response", "data"]
    with Store(store_url) as store:
        run_id = store.create_run("g", {"q": "2+2?"})
        given: dict[str, Any] = {name: {"api_key": secret, "note": f"key {secret}"} for name in json_fields}
        store.record_event(run_id, "log", **given)
        [stored] = store.events(run_id)
    for name in json_fields:
        assert secret not in repr(getattr(stored, name)), name


@pytest.mark.parametrize("call", ["event_row", "Store.record_event"])
def test_a_keyword_that_is_no_field_is_refused_by_name(sqlite_url: str, call: str) -> None:
    with Store(sqlite_url) as store:
        run_id = store.create_run("g", {"q": "2+2?"})
        with pytest.raises(TypeError) as raised:
            if call == "event_row":
                event_row("log", nod="solver")  # type: ignore[call-arg]
            else:
                store.record_event(run_id, "log", nod="solver", created_at=datetime.now(UTC))  # type: ignore[call-arg]
        assert store.events(run_id) == []  # nothing recorded under the misspelt name
    said = str(raised.value)
    assert said.startswith(f"{call}() got an unexpected keyword argument 'nod'")
    if call == "Store.record_event":  # its **fields are checked by agentmesh, which says what they may be
        assert "an event's fields are node, agent, round" in said
        assert "'created_at'" in said  # an event's time is event_row's to set, not record_event's


def test_a_keyword_that_is_no_field_is_said_before_a_missing_kind() -> None:
    # as when the keywords were written out: Python refused the call before the body looked at the kind
    with pytest.raises(TypeError, match="unexpected keyword argument 'nod'"):
        event_row("", nod="solver")  # type: ignore[call-arg]
