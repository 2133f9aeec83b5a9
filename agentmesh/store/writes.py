"""How the store writes: SQLAlchemy write transactions for the rare writes, and a group-committing writer thread
for the hot ones (a run's events, LangGraph's checkpoints, a run's start and end).

Why a writer thread. A run writes often: every model call's event, every step's checkpoint and pending writes.
Through SQLAlchemy Core each of those statements costs 100-300 µs of Python and each transaction about a
millisecond (begin, compile-cache lookup, execution context, commit), held under the GIL while the event loop
waits -- several times what LangGraph itself spends per step. :class:`BatchWriter` instead keeps one connection
of the database driver (``sqlite3``, ``psycopg``) in one thread per database and runs *prepared* statements on it
(:mod:`agentmesh.store.statements`: a row is byte-for-byte what SQLAlchemy would have written, and reads back
through the same types). Everything queued while a transaction is being committed goes into the next one: a
parallel team's seven events and the step's checkpoint cost one commit.

Guarantees:

* **order** -- one FIFO queue per database in a process: a write submitted before another commits no later than
  it (a call's event is on disk before the checkpoint of the step that used it). :class:`Writer` transactions
  (deletes, imports, migrations) first wait for the queue, so they order after it too;
* **isolation** -- when a batch fails, it is rolled back and its operations are retried one transaction each, so a
  bad operation fails alone and its neighbours commit;
* **read your writes** -- the store's readers call :meth:`BatchWriter.flush` first;
* **no loss at exit** -- writers still open when the interpreter exits are drained by an ``atexit`` hook.

A caller chooses whether to wait for a write's commit: a submitted write returns a ``concurrent.futures.Future``
that resolves once it is committed (or with its error), a posted one a lighter :class:`Posted`. The runtime does
not make a model call wait for its event's commit: the answer arrived before the commit either way, so waiting
would not make a crash lose less; the FIFO order keeps the event ahead of anything that depends on it, and a run
checks its writes' outcomes at every node.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa

from agentmesh.errors import StoreError
from agentmesh.store.engine import BEGIN_OPTION
from agentmesh.store.statements import Tx

T = TypeVar("T")


class Resolvable(Protocol):
    """A queued write's outcome holder, as the writer resolves it: a ``concurrent.futures.Future`` (submitted
    writes) or a :class:`Posted`."""

    def set_running_or_notify_cancel(self) -> bool: ...

    def set_result(self, result: Any) -> None: ...

    def set_exception(self, exception: BaseException) -> None: ...


_POSTED_LOCK = threading.Lock()


class Posted(Generic[T]):
    """The outcome of a posted write: done or not, its result or its error; read by the code that posted it.

    Not a ``concurrent.futures.Future`` on purpose: a Future builds a ``threading.Condition`` (a lock and its
    bookkeeping) so that any thread can block on it, and a run posts one write per model call that nobody blocks
    on. Waiting here (:meth:`result`, :meth:`exception`) flushes the writer instead, which commits everything
    queued so far, this write included.
    """

    __slots__ = ("_callbacks", "_done", "_exc", "_result", "_writer")

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer
        self._done = False
        self._result: T | None = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[Posted[T]], None]] = []

    def done(self) -> bool:
        return self._done

    def result(self, timeout: float | None = None) -> T:
        """The write's result once committed (waiting for it); raises its error if it failed."""
        exc = self.exception(timeout)
        if exc is not None:
            raise exc
        return self._result  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The write's error (``None`` if it committed), waiting for the commit."""
        if not self._done:
            self._writer.flush(timeout)
        if not self._done:
            raise StoreError("a posted write cannot be waited for from the store's writer thread")
        return self._exc

    def add_done_callback(self, fn: Callable[[Posted[T]], None]) -> None:
        """Call ``fn(self)`` once the write is resolved (at once if it is; else in the writer thread)."""
        with _POSTED_LOCK:
            if not self._done:
                self._callbacks.append(fn)
                return
        fn(self)

    # the writer's side, named as concurrent.futures.Future's so that both kinds resolve alike
    def set_running_or_notify_cancel(self) -> bool:
        return True

    def set_result(self, result: T) -> None:
        self._resolve(result, None)

    def set_exception(self, exception: BaseException) -> None:
        self._resolve(None, exception)

    def _resolve(self, result: T | None, exc: BaseException | None) -> None:
        with _POSTED_LOCK:
            self._result, self._exc, self._done = result, exc, True
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)


def _is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


# --- SQLAlchemy write transactions -------------------------------------------------------------------------------


class Writer:
    """Opens *write* transactions on an engine (for the writes that do not go through :class:`BatchWriter`).

    On SQLite they start with ``BEGIN IMMEDIATE`` (the write lock up front, so a transaction never fails to
    upgrade a read lock half-way), and threads of this process queue on an in-process lock per database file
    before asking SQLite: SQLite's own busy handler waits by sleeping in steps of milliseconds, which would
    cost a parallel team several milliseconds per write. Other processes still meet SQLite's lock and its busy
    timeout. On Postgres transactions are plain (row locks are taken explicitly where ordering matters). Every
    transaction first waits for the engine's queued batch writes, so writes commit in the order they were asked.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._options: sa.Engine = (
            engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}) if _is_sqlite(engine) else engine
        )

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        flush_engine(self.engine)
        lock = file_lock(self.engine)  # looked up each time: a forked child gets fresh locks (_forget_in_child)
        if lock is None:
            with self._options.begin() as conn:
                yield conn
            return
        with lock, self._options.begin() as conn:
            yield conn


def writer(engine: sa.Engine) -> Writer:
    """The :class:`Writer` of ``engine``."""
    return Writer(engine)


_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def file_lock(engine: sa.Engine) -> threading.Lock | None:
    """The in-process lock every writer of this SQLite file takes around its transactions (``None`` on Postgres)."""
    if not _is_sqlite(engine):
        return None
    key = str(engine.url.database or "")
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


# --- the writer thread -------------------------------------------------------------------------------------------

Op = Callable[[Tx], Any]
"""A write: runs inside the writer's transaction and returns its result (for the submitter's future). It must only
touch the database (it may run twice: once in a batch that failed, then alone).

An op may also have a ``coalesce_key`` attribute and a ``run_group(tx, ops)`` method: consecutive queued ops with
the same key then run as one group (e.g. a run's events appended with one sequence lookup) when their batch
commits together; ``run_group`` returns one result per op."""

#: How long a posted write (:meth:`BatchWriter.post`) may wait for company before the writer commits it anyway.
#: Any awaited write commits it at once, in order; so does a flush, a read or the end of a run.
POST_DELAY_S = 0.010

#: How long the writer keeps looking for posted writes on its own after its last one (see :meth:`BatchWriter.post`).
IDLE_AFTER_S = 1.0


class BatchWriter:
    """The writer thread of one database in this process (see the module docstring). Thread-safe."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._stopping = False
        self._closed = False
        self._fresh_thread_state()

    def _fresh_thread_state(self) -> None:
        """No thread, connection, queue or lock in use yet: a new writer's state, and a forked child's."""
        self._lock = file_lock(self.engine)
        self._items: deque[tuple[Op, Resolvable]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._urgent = False  # a submitted (awaited) write is queued: commit now
        self._posted_at: float | None = None  # when the oldest posted write still queued was posted
        self._idle = True  # the writer sleeps until notified (else it wakes every POST_DELAY_S to look)
        self._active_at = 0.0  # when the writer last found work
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._unfinished = 0  # queued and not yet resolved (under _cond); read without it as a hint only
        self._pooled: Any = None  # the pool's connection proxy, returned on close

    # --- submitting -------------------------------------------------------------------------------------------

    def submit(self, op: Op) -> Future[Any]:
        """Queue ``op`` and wake the writer; the future resolves with its result once its transaction commits."""
        future: Future[Any] = Future()
        self._enqueue(op, future, wake=True)
        return future

    def post(self, op: Op) -> Posted[Any]:
        """Queue ``op`` without waking the writer: it commits with the next submitted write, or about
        :data:`POST_DELAY_S` after it was posted. For writes nobody waits for (a run's events).

        A busy writer is not woken at all: while it has had work in the last :data:`IDLE_AFTER_S` it looks at the
        queue every :data:`POST_DELAY_S` by itself, and only a writer asleep for longer is notified. Waking a
        thread costs far more than the write itself here: the woken thread must take the GIL from the event loop,
        which then waits to take it back (measured: ~0.8 ms per run of a 28-call debate for one such wake-up)."""
        posted: Posted[Any] = Posted(self)
        self._enqueue(op, posted, wake=False)
        return posted

    def _enqueue(self, op: Op, future: Resolvable, *, wake: bool) -> None:
        if self._closed:
            raise StoreError(f"the store's writer for {self.engine.url.render_as_string(hide_password=True)} is closed")
        if self._thread is None:
            self._start_thread()
        with self._cond:
            self._unfinished += 1
            self._items.append((op, future))
            if wake:
                self._urgent = True
                self._cond.notify()
            elif self._posted_at is None:
                self._posted_at = time.monotonic()
                if self._idle:
                    self._cond.notify()  # asleep: it would not look by itself

    def run(self, op: Op) -> Any:
        """Queue ``op`` and wait for its commit; its result, or its exception."""
        if threading.current_thread() is self._thread:
            raise StoreError("a batch write cannot wait for another from the writer thread")
        return self.submit(op).result()

    async def arun(self, op: Op) -> Any:
        """:meth:`run` for the event loop: waits without blocking it (no worker thread involved)."""
        return await asyncio.wrap_future(self.submit(op))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is committed (or failed). Immediate when nothing is queued."""
        if self._unfinished and threading.current_thread() is not self._thread and not self._closed:
            self.submit(_noop).result(timeout)

    async def aflush(self) -> None:
        if self._unfinished and not self._closed:
            await asyncio.wrap_future(self.submit(_noop))

    def close(self) -> None:
        """Commit what is queued, stop the thread and give its connection back to the engine's pool."""
        with self._start:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            thread.join()

    # --- the thread -------------------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._start:
            if self._thread is None:
                name = f"agentmesh-store-writer[{self.engine.dialect.name}]"
                self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    self._commit(batch)
                if stop:
                    return
        finally:
            self._release()

    def _next_batch(self) -> tuple[list[tuple[Op, Resolvable]], bool]:
        """Wait for a reason to commit (a submitted write, posted ones past their delay, close); take the queue.

        Posted writes do not notify a writer that had work in the last :data:`IDLE_AFTER_S` (see :meth:`post`):
        such a writer waits at most :data:`POST_DELAY_S` at a time and looks at the queue itself."""
        with self._cond:
            while not (self._urgent or self._stopping):
                now = time.monotonic()
                if self._posted_at is None:
                    if now - self._active_at >= IDLE_AFTER_S:
                        self._idle = True
                        self._cond.wait()
                    else:
                        self._cond.wait(POST_DELAY_S)
                    continue
                remaining = self._posted_at + POST_DELAY_S - now
                if remaining <= 0:
                    break
                self._idle = False
                self._cond.wait(remaining)
            batch = list(self._items)
            self._items.clear()
            self._urgent = False
            self._posted_at = None
            self._idle = False
            self._active_at = time.monotonic()
            return batch, self._stopping

    def _commit(self, batch: list[tuple[Op, Resolvable]]) -> None:
        live = [(op, f) for op, f in batch if f.set_running_or_notify_cancel()]
        try:
            results = self._transaction([op for op, _ in live], coalesce=True)
        except BaseException:
            # one of them failed: each alone, so it fails by itself and the others commit
            for op, future in live:
                try:
                    result = self._transaction([op], coalesce=False)[0]
                except BaseException as exc:  # handed to the submitter, whatever it is
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        else:
            for (_, future), result in zip(live, results, strict=True):
                future.set_result(result)
        finally:
            with self._cond:
                self._unfinished -= len(batch)

    def _transaction(self, ops: Sequence[Op], *, coalesce: bool) -> list[Any]:
        connection = self._connection()
        sqlite = _is_sqlite(self.engine)
        lock = self._lock
        if lock is not None:
            lock.acquire()
        try:
            if sqlite:
                connection.execute("BEGIN IMMEDIATE")
            tx = Tx(connection, self.engine.dialect)
            try:
                results: list[Any] = []
                for group in _groups(ops) if coalesce else ([op] for op in ops):
                    if len(group) > 1:
                        results.extend(group[0].run_group(tx, group))  # type: ignore[attr-defined]
                    else:
                        results.append(group[0](tx))
                if sqlite:
                    connection.execute("COMMIT")
                else:
                    connection.commit()
            except BaseException:
                self._rollback(connection, sqlite)
                raise
            finally:
                tx.cursor.close()
            return results
        finally:
            if lock is not None:
                lock.release()

    def _connection(self) -> Any:
        if self._pooled is None:
            # the pool's "connect" hooks apply the SQLite pragmas (WAL, busy timeout, autocommit off in sqlite3)
            self._pooled = self.engine.raw_connection()
        return self._pooled.driver_connection

    def _rollback(self, connection: Any, sqlite: bool) -> None:
        try:
            if sqlite:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            else:
                connection.rollback()
        except Exception:  # the connection is broken: drop it, the next transaction opens a new one
            self._release(invalidate=True)

    def _release(self, *, invalidate: bool = False) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is None:
            return
        try:
            if invalidate:
                pooled.invalidate()
            else:
                pooled.close()
        except Exception:  # closing a broken connection: nothing left to save
            pass


def _noop(tx: Tx) -> None:
    return None


def _groups(ops: Sequence[Op]) -> Iterator[list[Op]]:
    """Consecutive ops with the same ``coalesce_key`` together; every other op alone."""
    group: list[Op] = []
    key: Any = None
    for op in ops:
        op_key = getattr(op, "coalesce_key", None)
        if group and (op_key is None or op_key != key):
            yield group
            group = []
        group.append(op)
        key = op_key
    if group:
        yield group


_WRITERS: weakref.WeakKeyDictionary[sa.Engine, BatchWriter] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def batch_writer(engine: sa.Engine) -> BatchWriter:
    """The one :class:`BatchWriter` of ``engine`` (shared by its store and checkpointers, so their writes are
    ordered among themselves)."""
    with _WRITERS_GUARD:
        found = _WRITERS.get(engine)
        if found is None or found._closed:
            found = _WRITERS[engine] = BatchWriter(engine)
        return found


def flush_engine(engine: sa.Engine) -> None:
    """Wait for ``engine``'s queued batch writes, if it has a writer."""
    found = _WRITERS.get(engine)
    if found is not None:
        found.flush()


def close_engine_writer(engine: sa.Engine) -> None:
    """Drain and stop ``engine``'s writer thread (before the engine is disposed)."""
    with _WRITERS_GUARD:
        found = _WRITERS.pop(engine, None)
    if found is not None:
        found.close()


def _forget_in_child() -> None:
    """After ``fork``: the child has none of the parent's threads, and must not use the parent's connections.
    Its writers start afresh (a new thread and connection on first use); what the parent had queued is the
    parent's to commit. The engine's pool forgets the inherited connections without closing them (SQLAlchemy's
    recipe for forked processes): two processes on one connection would corrupt its protocol state. Locks the
    parent's writer thread may have held at the fork are replaced: in the child nobody would release them."""
    global _POSTED_LOCK, _FILE_LOCKS_GUARD, _WRITERS_GUARD
    _POSTED_LOCK = threading.Lock()
    _FILE_LOCKS_GUARD = threading.Lock()
    _WRITERS_GUARD = threading.Lock()
    for key in list(_FILE_LOCKS):  # a parent's writer thread may have been inside a transaction
        _FILE_LOCKS[key] = threading.Lock()
    for found in list(_WRITERS.values()):
        found.engine.dispose(close=False)
        found._fresh_thread_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def _drain_at_exit() -> None:
    with _WRITERS_GUARD:
        writers = list(_WRITERS.values())
    for found in writers:
        found.close()
