"""New stores opened from several threads at once: each creates its schema through Alembic, which keeps its state
in module globals (a thread pool running one item per database did this)."""

from __future__ import annotations

import threading
from pathlib import Path

from agentmesh.store import Store


def test_new_stores_opened_by_threads_at_once_each_get_their_schema(tmp_path: Path) -> None:
    """Before a process-wide lock around Alembic's commands: "table runs already exists" on one file, ``KeyError:
    'config'`` on another, and now and then a crash of the interpreter."""
    for attempt in range(3):  # the race showed on every attempt before; three make a pass unlikely by chance
        errors: list[str] = []
        start = threading.Barrier(6)

        def open_one(
            i: int, attempt: int = attempt, errors: list[str] = errors, start: threading.Barrier = start
        ) -> None:
            start.wait()
            try:
                with Store(f"sqlite:///{tmp_path / f'{attempt}-{i}.db'}") as store:
                    run_id = store.create_run("g", {"i": i})
                    assert store.get_run(run_id).inputs == {"i": i}
            except Exception as exc:  # collected: an assertion in a thread would not fail the test
                errors.append(f"store {attempt}-{i}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
