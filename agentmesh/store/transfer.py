"""Moving runs between stores: a versioned JSON document per run (``agentmesh export`` / ``agentmesh import``).

The document holds the run record, every event in order, and the run's final node outputs (so a report or a
timeline of an imported run still has its networks and scores), and the target sets the run read at the versions
it read them (``target_sets``, kept in the imported run's ``meta`` so that a replay there reads the same targets,
whatever sets the destination has). LangGraph checkpoints are not carried: an imported
run can be shown, reported, diffed, replayed and forked, but not resumed mid-way. Secrets are redacted again on
the way out (the store already keeps none; an export must not depend on that), and the document is checked
before anything is written on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model

from agentmesh.errors import StoreError
from agentmesh.store._redact import redact, redact_named, stored_meta
from agentmesh.store.events import EVENT_FIELD_TYPES, EVENT_FIELDS, event_row, stored_json, stored_text
from agentmesh.store.records import EventRecord, RunRecord, RunStatus
from agentmesh.store.run_totals import running_totals
from agentmesh.store.runs import Store
from agentmesh.store.schema import SCHEMA_VERSION, events, runs
from agentmesh.store.target_records import TargetRow
from agentmesh.store.targets import IMPORTED_PINS, PinnedTargetSet

FORMAT = "agentmesh-run"
VERSION = 1
#: The event kind that carries an imported run's final node outputs.
OUTPUTS_EVENT = "final_outputs"


def export_run(
    record: RunRecord,
    run_events: list[EventRecord],
    outputs: Mapping[str, Any] | None,
    target_sets: Sequence[PinnedTargetSet] = (),
) -> dict[str, Any]:
    """The export document of a run (``target_sets``: :meth:`Store.pinned_target_sets` of it)."""
    run = record.model_dump(mode="json")
    pinned = {"target_sets": [redact(p.model_dump(mode="json", exclude={"embeddings"})) for p in target_sets]}
    return {
        "format": FORMAT,
        "version": VERSION,
        "store_schema_version": SCHEMA_VERSION,
        "run": {k: stored_meta(v) if k == "meta" else redact(v) for k, v in run.items()},
        # an imported run's outputs event is what "outputs" carries: exported too, each round trip added one more
        "events": [
            redact({k: v for k, v in e.model_dump(mode="json").items() if k not in ("id", "run_id")})
            for e in run_events
            if not (e.kind == OUTPUTS_EVENT and outputs is not None)
        ],
        "outputs": redact_named(outputs, "outputs") if outputs is not None else None,
        **(pinned if target_sets else {}),
    }


def _no_nul(value: str) -> str:
    """A name (a run's id or graph, an event's node or agent) as a store can keep it. The store replaces a NUL in
    free text (a reply, an error) by U+FFFD, but a name changed so would no longer be the one the document's other
    parts refer to; and unchecked, such a document was a driver's error on Postgres ("text fields cannot contain
    NUL") and was stored as it was on SQLite, whose export then could not be imported into Postgres."""
    if "\x00" in value:
        raise ValueError(
            f"a NUL character (\\u0000) at character {value.index(chr(0))}: a name no store keeps (Postgres "
            "refuses it in text); the document was changed or damaged after its export"
        )
    return value


_Name = Annotated[str, AfterValidator(_no_nul)]


class _Run(BaseModel):
    """What an export's run must be to be stored: read back, a run that is not so broke every listing of the store
    (a status that is not one, inputs that are not an object), and a date that is not one was a traceback."""

    model_config = ConfigDict(extra="ignore")

    id: _Name = Field(min_length=1)
    graph: _Name = Field(min_length=1)
    spec_hash: _Name | None = None
    inputs: dict[str, Any]
    status: RunStatus
    stop_reason: str | None = None
    parent_run_id: _Name | None = None
    model: str | None = None
    totals: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    meta: dict[str, Any] | None = None


#: An event's fields that name something (rather than hold free text, which the store cleans): no NUL in them.
_EVENT_NAMES = frozenset({"node", "agent", "request_hash"})
#: An event's whole numbers (round, tokens...) as the ``events`` table's INTEGER columns hold them: a larger one
#: failed the import on Postgres with the driver's "integer out of range", naming neither the file nor the field,
#: and was stored on SQLite (whose export then could not go to Postgres).
_Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


def _event_field(name: str, hint: Any) -> Any:
    if name in _EVENT_NAMES:
        return _Name | None
    if hint == int | None:
        return _Int32 | None
    return hint if hint is Any else hint | None


_EVENT_FIELD_DEFINITIONS: dict[str, Any] = {
    name: (_event_field(name, hint), None) for name, hint in EVENT_FIELD_TYPES.items()
}
_Event: type[BaseModel] = create_model(
    "_Event",
    __config__=ConfigDict(extra="ignore"),
    __doc__="""An export's event, typed as the ``events`` table stores it (a string where a round number goes failed
    on Postgres half-way through the import, and was stored as it was on SQLite). Built from
    :class:`~agentmesh.store.events.EventFields`, so that a new field travels in exports with no list of them here;
    each may be missing or ``None`` (an export by an older agentmesh has fewer).""",
    kind=(_Name, Field(min_length=1)),
    **_EVENT_FIELD_DEFINITIONS,
    created_at=(datetime | None, None),
)


def _invalid(where: str, what: str, exc: ValidationError) -> StoreError:
    """The first problem of a document's part, by its field: ``run.json: event 3: round: Input should be ...``."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(the whole of it)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return StoreError(f"{where}: {what}: {field}: {first['msg']} (got {first.get('input')!r}){more}; nothing imported")


#: The fields an export of this version has, part by part: any other one came from a newer agentmesh (or an edit).
_KNOWN_TOP = frozenset({"format", "version", "store_schema_version", "run", "events", "outputs", "target_sets"})
_KNOWN_RUN = frozenset(RunRecord.model_fields)
_KNOWN_EVENT = frozenset(EventRecord.model_fields)
_KNOWN_PIN = frozenset(PinnedTargetSet.model_fields)
_KNOWN_TARGET = frozenset(TargetRow.model_fields)


def unknown_fields(document: Any) -> list[str]:
    """The fields of an export document that this agentmesh does not know and an import would drop, by where they
    are: ``run.priority``, ``events[].sandbox (3 of 9 events)``, ``target_sets[].targets[].lang``, ``owner`` (at the
    top). Free-form parts (a run's inputs, meta and totals, an event's request, response and data, the outputs)
    are stored whole, so nothing in them is unknown. Empty for a document that is not an export at all (the
    import's own checks say what is wrong with it)."""
    if not isinstance(document, Mapping):
        return []
    found = [str(k) for k in document if k not in _KNOWN_TOP]
    run = document.get("run")
    if isinstance(run, Mapping):
        found += [f"run.{k}" for k in run if k not in _KNOWN_RUN]

    def each(label: str, rows: Any, known: frozenset[str], noun: str) -> list[Mapping[str, Any]]:
        listed = [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []
        counts: dict[str, int] = {}
        for row in listed:
            for key in row:
                if key not in known:
                    counts[str(key)] = counts.get(str(key), 0) + 1
        for key, n in counts.items():
            found.append(f"{label}[].{key} ({n} of {len(listed)} {noun})" if len(listed) > 1 else f"{label}[].{key}")
        return listed

    each("events", document.get("events"), _KNOWN_EVENT, "events")
    pins = each("target_sets", document.get("target_sets"), _KNOWN_PIN, "target sets")
    each("target_sets[].targets", [t for p in pins for t in (p.get("targets") or [])], _KNOWN_TARGET, "targets")
    return found


def _refuse_unknown(document: Mapping[str, Any], where: str) -> None:
    """Refuse an export by a newer agentmesh whose fields this one does not know: imported, they were dropped
    without a word (its run, events and target sets are read with ``extra="ignore"``), and the copy here was
    less than the run. ``drop_unknown_fields`` (``--drop-unknown-fields``) imports what this version knows."""
    theirs = document.get("store_schema_version")
    if not isinstance(theirs, int) or theirs <= SCHEMA_VERSION:
        return  # an older or same version's export: a field this version lacks is one it no longer has
    unknown = unknown_fields(document)
    if unknown:
        raise StoreError(
            f"{where}: written by a newer agentmesh (store schema version {theirs}; this agentmesh's is "
            f"{SCHEMA_VERSION}), with fields this version does not know and would drop: {', '.join(unknown)}; "
            "nothing imported. Upgrade agentmesh to import all of it, or import what this version knows with "
            "--drop-unknown-fields (drop_unknown_fields=True in Python)",
            file=where,
            fields=unknown,
            export_schema_version=theirs,
            schema_version=SCHEMA_VERSION,
        )


def _check(document: Any, where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise StoreError(f"{where}: not an agentmesh run export (expected a JSON object with format {FORMAT!r})")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise StoreError(
            f"{where}: export format version {version!r} is not one this agentmesh reads (up to {VERSION}); "
            "upgrade agentmesh"
        )
    run, run_events = document.get("run"), document.get("events")
    if not isinstance(run, Mapping) or not isinstance(run_events, list):
        raise StoreError(f"{where}: expected 'run' (an object) and 'events' (a list)")
    missing = [k for k in ("id", "graph", "inputs", "status", "created_at") if k not in run]
    if missing:
        raise StoreError(f"{where}: the run lacks {', '.join(missing)}")
    try:
        checked = _Run.model_validate(run).model_dump()
    except ValidationError as exc:
        raise _invalid(where, "the run", exc) from None
    checked_events = []
    for i, event in enumerate(run_events):
        if not isinstance(event, Mapping) or not isinstance(event.get("kind"), str):
            raise StoreError(f"{where}: event {i} is not an object with a 'kind'")
        try:
            checked_events.append(_Event.model_validate(event).model_dump())
        except ValidationError as exc:
            raise _invalid(where, f"event {i}", exc) from None
        for name in _OBJECTS.get(event["kind"], ()):
            value = event.get(name)
            if value is not None and not isinstance(value, Mapping):
                raise StoreError(
                    f"{where}: event {i} ({event['kind']}): {name} should be an object, got {_shown(value)}; "
                    "nothing imported"
                )
    outputs = document.get("outputs")
    if outputs is not None:
        bad = (
            [
                f"{node!r}: {_shown(out)}"
                for node, out in outputs.items()
                if out is not None and not isinstance(out, Mapping)
            ]
            if isinstance(outputs, Mapping)
            else [_shown(outputs)]
        )
        if bad:
            raise StoreError(
                f"{where}: 'outputs' should map each node to an object, got {', '.join(bad[:3])}; nothing imported"
            )
    return checked, checked_events


#: What the events agentmesh reads back hold as objects (a model call's request and response, a node's result):
#: anything else there broke ``show``, ``report``, ``replay`` and ``runs`` of the store it was imported into.
_OBJECTS: dict[str, tuple[str, ...]] = {"model_call": ("request", "response"), "node_result": ("data",)}


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def import_run(
    store: Store,
    document: Any,
    *,
    where: str = "export",
    new_id: str | None = None,
    drop_unknown_fields: bool = False,
) -> str:
    """Write an exported run into ``store`` (one transaction: all or nothing); returns its id there.

    An export by a newer agentmesh (a higher ``store_schema_version``) with fields this version does not know is
    refused, naming them (:func:`unknown_fields`), unless ``drop_unknown_fields``: then what this version knows is
    imported and those fields are left out."""
    run, run_events = _check(document, where)
    if not drop_unknown_fields:
        _refuse_unknown(document, where)
    run_id = new_id or str(run["id"])
    store.flush()
    with store.engine.connect() as conn:
        if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None:
            raise StoreError(
                f"{where}: run {run_id} is already in {store.url} (agentmesh import --new-id, or new_id= in "
                "Python, stores a copy)"
            )
        parent = run.get("parent_run_id")
        if parent and conn.execute(sa.select(runs.c.id).where(runs.c.id == parent)).first() is None:
            parent = None  # the parent stays where it was; the link is kept in meta
    meta = dict(run.get("meta") or {})
    if run.get("parent_run_id") and parent is None:
        meta["parent_run_id_elsewhere"] = run["parent_run_id"]
    meta["imported_from"] = {"run_id": run["id"], "schema_version": document["run"].get("schema_version")}
    status, stop_reason = run["status"], run.get("stop_reason")
    if status is RunStatus.RUNNING:
        # exported while it ran: no process runs it here, and "running" would keep it from being resumed or
        # deleted (without --force) for good; it is what an interruption leaves, its calls so far recorded
        status, stop_reason = RunStatus.INTERRUPTED, "interrupted: exported while it was running"
        meta["imported_from"]["status"] = RunStatus.RUNNING.value
    if document.get("target_sets"):
        try:
            pinned = [PinnedTargetSet.model_validate(p) for p in document["target_sets"]]
        except (ValidationError, TypeError) as exc:
            raise StoreError(f"{where}: 'target_sets' is not a list of pinned target sets ({exc})") from None
        meta[IMPORTED_PINS] = [p.model_dump(mode="json", exclude={"embeddings"}) for p in pinned]
    rows = []
    for event in run_events:
        if event["kind"] == OUTPUTS_EVENT and document.get("outputs") is not None:
            continue  # an export by an older agentmesh carried the outputs twice: once is kept, below
        fields: dict[str, Any] = {k: event.get(k) for k in EVENT_FIELDS}
        fields["usage_estimated"] = bool(fields["usage_estimated"])
        row = event_row(str(event["kind"]), **fields)
        row["created_at"] = event.get("created_at") or row["created_at"]
        rows.append(row)
    if document.get("outputs") is not None:
        row = event_row(OUTPUTS_EVENT)
        row["data"] = redact_named(document["outputs"], "outputs")  # by node: a node's name is no credential's
        rows.append(row)
    try:
        _write(store, run_id, run, status, stop_reason, parent, meta, rows)
    except sa.exc.IntegrityError as exc:  # another import of it (or a run under its id) got there first
        with store.engine.connect() as conn:
            there = conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None
        if there:
            raise StoreError(f"{where}: run {run_id} is already in {store.url}; nothing imported") from None
        raise StoreError(f"{where}: {store.url} refused the run ({exc.orig}); nothing imported") from None
    return run_id


def _write(
    store: Store,
    run_id: str,
    run: Mapping[str, Any],
    status: RunStatus,
    stop_reason: str | None,
    parent: str | None,
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """The imported run and its events, in one transaction. Its JSON goes through what a run's own writes do
    (:func:`~agentmesh.store.events.stored_json`: secrets masked, NUL and lone surrogates replaced): redacted only,
    an input holding a NUL failed the import on Postgres with the driver's "\\u0000 cannot be converted to text"."""
    with store._writer.begin() as conn:
        conn.execute(
            sa.insert(runs).values(
                id=run_id,
                graph=str(run["graph"]),
                spec_hash=run.get("spec_hash"),
                inputs=stored_json(run.get("inputs") or {}, "inputs"),
                status=RunStatus(status).value,
                stop_reason=stored_text(stop_reason),
                parent_run_id=parent,
                model=stored_text(run.get("model")),
                totals=stored_json(run.get("totals") or {}, "totals"),
                error=stored_text(run.get("error")),
                created_at=run["created_at"],
                finished_at=run.get("finished_at"),
                meta=stored_meta(meta),
                schema_version=SCHEMA_VERSION,
            )
        )
        if rows:
            values = [{**row, "run_id": run_id, "seq": i + 1} for i, row in enumerate(rows)]
            conn.execute(sa.insert(events), values)
        if run["status"] is RunStatus.RUNNING:
            # a running run's stored totals are summed when it ends, so its export carried zeros: imported as
            # interrupted, it was listed and shown with "0 calls, 0 tokens, $0" beside its calls
            summed = running_totals(conn, [run_id]).get(run_id)
            if summed is not None:
                conn.execute(sa.update(runs).where(runs.c.id == run_id).values(totals=stored_json(summed, "totals")))
