"""The agentmesh store: runs, events, LangGraph checkpoints and unlearning target sets in one SQLAlchemy database.

``Store(url)`` opens (and on first use creates) the database named by ``url``, ``$AGENTMESH_DB`` or the default
SQLite file ``.agentmesh/agentmesh.db``; ``store.checkpointer()`` is the LangGraph saver on the same database.
"""

from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver
from agentmesh.store.engine import make_engine, resolve_db_url
from agentmesh.store.events import EventFields, event_row
from agentmesh.store.migrate import upgrade_database
from agentmesh.store.records import EventKind, EventRecord, RunRecord, RunStatus
from agentmesh.store.runs import Store
from agentmesh.store.schema import SCHEMA_VERSION
from agentmesh.store.targets import PinnedTargetSet, TargetRow, TargetSetInfo, TargetSetNotFoundError

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
