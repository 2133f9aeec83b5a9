"""The agentmesh store: runs, events, LangGraph checkpoints and unlearning target sets in one SQLAlchemy database.

``Store(url)`` opens (and on first use creates) the database named by ``url``, ``$AGENTMESH_DB`` or the default
SQLite file ``.agentmesh/agentmesh.db``; ``store.checkpointer()`` is the LangGraph saver on the same database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmesh._lazy import lazy_attributes

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time, __getattr__ imports each on first use
    from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver
    from agentmesh.store.engine import make_engine, resolve_db_url
    from agentmesh.store.events import EventFields, event_row
    from agentmesh.store.migrate import upgrade_database
    from agentmesh.store.records import EventKind, EventRecord, RunRecord, RunStatus
    from agentmesh.store.runs import Store
    from agentmesh.store.schema import SCHEMA_VERSION
    from agentmesh.store.targets import PinnedTargetSet, TargetRow, TargetSetInfo, TargetSetNotFoundError

#: Each public name and the module it comes from: imported on first use (PEP 562), because importing any part of
#: the store runs this module first, and its eager imports (SQLAlchemy, Alembic, LangGraph's checkpoint classes:
#: half a second) were paid by whatever only needed a light part (:mod:`._redact`'s masking, for ``agentmesh
#: models``; the records' classes).
_LAZY: dict[str, str] = {
    "SCHEMA_VERSION": "agentmesh.store.schema",
    "EventFields": "agentmesh.store.events",
    "EventKind": "agentmesh.store.records",
    "EventRecord": "agentmesh.store.records",
    "PinnedTargetSet": "agentmesh.store.targets",
    "RunRecord": "agentmesh.store.records",
    "RunStatus": "agentmesh.store.records",
    "SQLAlchemyCheckpointSaver": "agentmesh.store.checkpointer",
    "Store": "agentmesh.store.runs",
    "TargetRow": "agentmesh.store.targets",
    "TargetSetInfo": "agentmesh.store.targets",
    "TargetSetNotFoundError": "agentmesh.store.targets",
    "event_row": "agentmesh.store.events",
    "make_engine": "agentmesh.store.engine",
    "resolve_db_url": "agentmesh.store.engine",
    "upgrade_database": "agentmesh.store.migrate",
}

__all__ = [
    "SCHEMA_VERSION",
    "EventFields",
    "EventKind",
    "EventRecord",
    "PinnedTargetSet",
    "RunRecord",
    "RunStatus",
    "SQLAlchemyCheckpointSaver",
    "Store",
    "TargetRow",
    "TargetSetInfo",
    "TargetSetNotFoundError",
    "event_row",
    "make_engine",
    "resolve_db_url",
    "upgrade_database",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
