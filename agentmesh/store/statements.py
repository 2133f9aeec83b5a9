"""Prepared statements for the store's writer thread: plain SQL run on the database driver's own connection, with
values bound (and rows read back) exactly as SQLAlchemy's column types would bind and read them.

Why not SQLAlchemy Core on the hot path: each Core statement costs 100-300 µs of Python (compile-cache lookup,
execution context) and a run writes one per model call (see :mod:`agentmesh.store.writes`). A :class:`Statement`
is compiled once per dialect into the driver's parameter style with each column type's bind processor, so a row
written here is byte-for-byte what SQLAlchemy would have written, and reads back through the same types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class Statement:
    """A SQL statement written with ``:name`` parameters, whose values are bound as the named columns' types bind.

    Compiled once per dialect into the driver's own parameter style (``:name`` for sqlite3, ``%(name)s`` for
    psycopg) with each parameter's bind processor (JSON serialisation, compression, UTC datetimes...), taken from
    the SQLAlchemy column types of the schema. Parameters without a type are passed as they are.
    """

    def __init__(self, sql: str, types: Mapping[str, sa.types.TypeEngine[Any]] | None = None) -> None:
        self.sql = sql
        self.types = dict(types or {})
        self._bound: dict[str, tuple[str, tuple[tuple[str, Callable[[Any], Any]], ...]]] = {}

    @classmethod
    def insert(cls, table: sa.Table, columns: Sequence[str], suffix: str = "") -> Statement:
        """``INSERT INTO table (columns) VALUES (...)`` plus ``suffix`` (an ``ON CONFLICT``, a ``RETURNING``)."""
        names = ", ".join(columns)
        values = ", ".join(f":{c}" for c in columns)
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({values}) {suffix}".strip()
        return cls(sql, {c: table.c[c].type for c in columns})

    def bound(self, dialect: sa.Dialect) -> tuple[str, tuple[tuple[str, Callable[[Any], Any]], ...]]:
        """(SQL in the driver's style, the parameters that need processing and their processors) for ``dialect``."""
        found = self._bound.get(dialect.name)
        if found is None:
            # sqlite3 takes ``:name`` as written; psycopg wants ``%(name)s``
            sql = self.sql if dialect.name == "sqlite" else _PARAM.sub(r"%(\1)s", self.sql)
            processors = []
            for name, type_ in self.types.items():
                processor = type_.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors.append((name, processor))
            found = self._bound[dialect.name] = (sql, tuple(processors))
        return found


class Tx:
    """A transaction of the writer thread: runs :class:`Statement` objects on the driver connection."""

    def __init__(self, connection: Any, dialect: sa.Dialect) -> None:
        self.connection = connection
        self.dialect = dialect
        self.cursor = connection.cursor()

    @property
    def postgres(self) -> bool:
        return self.dialect.name == "postgresql"

    def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Any:
        """Run ``statement`` once; returns the driver cursor (for ``fetchone``, ``lastrowid``)."""
        sql, processors = statement.bound(self.dialect)
        self.cursor.execute(sql, _processed(params or {}, processors))
        return self.cursor

    def executemany(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        sql, processors = statement.bound(self.dialect)
        self.cursor.executemany(sql, [_processed(row, processors) for row in rows])

    def scalar(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Any:
        row = self.execute(statement, params).fetchone()
        return None if row is None else row[0]


def _processed(row: Mapping[str, Any], processors: tuple[tuple[str, Callable[[Any], Any]], ...]) -> dict[str, Any]:
    out = dict(row)
    for name, processor in processors:
        value = out.get(name)
        if value is not None:
            out[name] = processor(value)
    return out


def result_processors(table: sa.Table, dialect: sa.Dialect) -> list[Callable[[Any], Any] | None]:
    """Per column of ``table`` (in order), the type's result processor on ``dialect``: how SQLAlchemy would read it."""
    out: list[Callable[[Any], Any] | None] = []
    for column in table.columns:
        try:
            out.append(column.type.dialect_impl(dialect).result_processor(dialect, None))
        except TypeError:  # a driver-specific numeric type that needs the column's type code; values come as-is
            out.append(None)
    return out
