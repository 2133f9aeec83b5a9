"""The agentmesh store: runs, events, LangGraph checkpoints and unlearning target sets in one SQLAlchemy database.

``Store(url)`` opens (and on first use creates) the database named by ``url``, ``$AGENTMESH_DB`` or the default
SQLite file ``.agentmesh/agentmesh.db``; ``store.checkpointer()`` is the LangGraph saver on the same database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmesh._lazy import lazy_attributes

if TYPE_CHECKING:  # what type checkers and IDEs see (each name as itself: exported); at run time, _LAZY
    from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver as SQLAlchemyCheckpointSaver
    from agentmesh.store.engine import make_engine as make_engine
    from agentmesh.store.engine import resolve_db_url as resolve_db_url
    from agentmesh.store.events import EventFields as EventFields
    from agentmesh.store.events import event_row as event_row
    from agentmesh.store.migrate import upgrade_database as upgrade_database
    from agentmesh.store.records import EventKind as EventKind
    from agentmesh.store.records import EventRecord as EventRecord
    from agentmesh.store.records import RunRecord as RunRecord
    from agentmesh.store.records import RunStatus as RunStatus
    from agentmesh.store.runs import Store as Store
    from agentmesh.store.schema import SCHEMA_VERSION as SCHEMA_VERSION
    from agentmesh.store.targets import PinnedTargetSet as PinnedTargetSet
    from agentmesh.store.targets import TargetRow as TargetRow
    from agentmesh.store.targets import TargetSetInfo as TargetSetInfo
    from agentmesh.store.targets import TargetSetNotFoundError as TargetSetNotFoundError

#: Each public name and the module it comes from: imported on first use (PEP 562), because importing any part of
#: the store runs this module first, and its eager imports (SQLAlchemy, Alembic, LangGraph's checkpoint classes:
#: half a second) were paid by whatever only needed a light part (:mod:`._redact`'s masking, for ``agentmesh
#: models``; the records' classes). The one list of them: ``__all__`` is made from it, and the ``TYPE_CHECKING``
#: imports above mirror it (``tests/unit/test_lazy_packages.py`` holds them to it).
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

__all__ = [*_LAZY]  # (each public name is written once, in _LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
