"""``Store.create_run`` and ``Store.acreate_run`` take their keywords from one list,
:class:`agentmesh.store.run_lifecycle.NewRunFields` (``**fields: Unpack[NewRunFields]``): each keyword given to
either is stored, and a keyword that is not in it is refused with the ``TypeError`` a written-out signature raised,
before anything is stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentmesh.store import Store
from agentmesh.store.run_lifecycle import NewRunFields


def _fields(parent: str, run_id: str) -> NewRunFields:
    return {"spec_hash": "h1", "model": "scripted:x", "parent_run_id": parent, "meta": {"who": "me"}, "run_id": run_id}


@pytest.mark.parametrize("how", ["create_run", "acreate_run"])
def test_every_new_run_field_is_stored(sqlite_url: str, how: str) -> None:
    with Store(sqlite_url) as store:
        parent = store.create_run("g", {"q": "?"})
        given = _fields(parent, "r" * 32)
        assert list(given) == list(NewRunFields.__annotations__)  # every field given here
        if how == "create_run":
            run_id = store.create_run("g", {"q": "2+2?"}, **given)
        else:
            run_id = asyncio.run(store.acreate_run("g", {"q": "2+2?"}, **given))
        record = store.get_run(run_id)
    assert run_id == "r" * 32
    assert (record.spec_hash, record.model, record.parent_run_id) == ("h1", "scripted:x", parent)
    assert record.meta["who"] == "me"
    assert (record.graph, record.inputs, record.status.value) == ("g", {"q": "2+2?"}, "running")


@pytest.mark.parametrize("how", ["create_run", "acreate_run"])
def test_a_keyword_that_is_no_new_run_field_is_refused_by_name(sqlite_url: str, how: str) -> None:
    misspelt: dict[str, Any] = {"spec_has": "h1"}
    with Store(sqlite_url) as store:
        with pytest.raises(TypeError) as raised:
            if how == "create_run":
                store.create_run("g", {}, **misspelt)
            else:
                asyncio.run(store.acreate_run("g", {}, **misspelt))
        assert store.list_runs() == []
    assert str(raised.value) == (
        f"Store.{how}() got an unexpected keyword argument 'spec_has'; its keywords are spec_hash, model, "
        "parent_run_id, meta, run_id"
    )
