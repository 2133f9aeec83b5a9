"""ALU's targets in the store (alu.md §3.1): versioned sets with soft delete, read by ``op: alu`` from the run's
store at the version current when the node runs, pinned so that resume and replay read the same targets; the
schema migration from a version-1 database; and the ``agentmesh targets`` commands.

Every store test runs on SQLite and, when ``$AGENTMESH_TEST_PG`` is set, on Postgres (``store_url``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

import agentmesh.systems.alu  # noqa: F401  (registers op: alu)
from agentmesh.errors import ConfigError, SchemaVersionError, StoreError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import resume, run
from agentmesh.runtime.replay import fork, replay
from agentmesh.store import Store, TargetSetNotFoundError, migrate, upgrade_database
from agentmesh.store.engine import make_engine
from agentmesh.store.schema import target_aliases, targets
from agentmesh.store.targets import normalize_alias, pack_vector, unpack_vector
from agentmesh.systems.alu.node import snapshot_from_input
from agentmesh.systems.alu.registry import TargetSet, load_targets_jsonl, snapshot_from_store, targets_of_records
from agentmesh.systems.alu.targets import Target, normalize
from tests._cli import run_cli

REPO = Path(__file__).resolve().parents[2]
GRAPH = REPO / "graphs" / "alu.yaml"

PEOPLE = [
    {"name": "Albus Dumbledore", "aliases": ["Dumbledore"], "description": "Headmaster of Hogwarts."},
    {"name": "Hermione Granger", "aliases": ["Hermione"], "description": "Gryffindor student."},
    {"name": "Severus Snape", "aliases": ["Snape"], "description": "Potions master.", "kind": "entity"},
]
KRUM = "How was Viktor Krum's experience at the Yule Ball?"
COMPOSED = {
    "vanilla": "Krum enjoyed it. He went with Hermione and they danced.",
    "auditor": "Hermione Granger",
    "eraser": json.dumps(["Krum enjoyed the ball.", "Krum danced a lot.", "Krum went with Hermione."]),
    "critic": "Final Rating List - [5, 5, 2]",
    "composer": "Krum enjoyed the ball and danced a lot.",
}


class Roles:
    """Answers by agent name (the same reply every time) and keeps every prompt it was sent."""

    def __init__(self, fail: str | None = None, **replies: str) -> None:
        self.replies = replies
        self.fail = fail
        self.prompts: dict[str, list[str]] = {}

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent = str(context.agent)
        self.prompts.setdefault(agent, []).append("\n".join(m.content for m in request.messages))
        if agent == self.fail:
            raise RuntimeError(f"{agent} is down")
        return self.replies[agent]


# --- the store --------------------------------------------------------------------------------------------------


def test_every_change_bumps_the_version_and_removal_is_soft(store_url: str) -> None:
    with Store(store_url) as store:
        assert not store.has_target_set("people")
        assert store.create_target_set("people").version == 0
        assert store.has_target_set("people") and not store.has_target_set("People")
        version, ids = store.add_targets("people", PEOPLE)
        assert (version, ids) == (1, [1, 2, 3])
        assert store.add_targets("people", [{"name": "Viktor Krum", "id": 10}]) == (2, [10])
        assert store.add_targets("people", [{"name": "Luna Lovegood"}]) == (3, [11])  # after the highest id
        assert store.remove_targets("people", [2, 10]) == 4
        assert [t.id for t in store.list_targets("people")] == [1, 3, 11]
        assert [t.id for t in store.list_targets("people", 1)] == [1, 2, 3]
        assert [t.id for t in store.list_targets("people", 2)] == [1, 2, 3, 10]
        assert [t.id for t in store.list_targets("people", 0)] == []
        every = {t.id: t for t in store.list_targets("people", include_removed=True)}
        assert (every[2].added_in_version, every[2].removed_in_version) == (1, 4)
        assert every[2].active_at(3) and not every[2].active_at(4)
        hermione = every[2].record()
        assert hermione == {
            "id": 2,
            "name": "Hermione Granger",
            "aliases": ["Hermione"],
            "description": "Gryffindor student.",
            "kind": "entity",
        }
        head = store.target_set("people")
        assert (head.version, head.active, head.total) == (4, 3, 5)
        assert [s.name for s in store.list_target_sets()] == ["people"]
        # an id stays taken after its removal: any earlier version's snapshot stays what it was
        with pytest.raises(StoreError, match="id 2 is already taken"):
            store.add_targets("people", [{"name": "Someone else", "id": 2}])


def test_concurrent_changes_get_distinct_versions(store_url: str) -> None:
    """Writers in several threads (each its own Store, as separate processes would be) never share a version,
    the first of them creating the set."""

    def add(worker: int) -> list[int]:
        with Store(store_url) as own:
            return [own.add_targets("people", [{"name": f"Person {worker}-{i}"}], create=True)[0] for i in range(5)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = [v for found in pool.map(add, range(4)) for v in found]
    assert sorted(versions) == list(range(1, 21))
    with Store(store_url) as store:
        listed = store.list_targets("people")
        assert len(listed) == 20 and sorted(t.id for t in listed) == list(range(1, 21))
        assert sorted(t.added_in_version for t in listed) == list(range(1, 21))


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"name": ""}], "record 1: a target needs a non-empty name"),
        ([{"name": "A"}, {"name": "   "}], "record 2: a target needs a non-empty name"),
        ([{"name": "A", "id": 5}, {"name": "B", "id": 5}], "record 2: id 5 is already given at record 1"),
        ([{"name": "A", "id": 1}], "id 1 is already taken"),
        ([{"name": "A", "aliases": "Ay"}], "aliases must be a list of strings"),
        ([{"name": "A", "kind": "planet"}], "kind must be one of entity, topic, option, other"),
        ([{"name": "A", "id": 0}], "id must be a positive integer"),
        ([], "no targets to add"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(store_url: str, records: list[Any], message: str) -> None:
    with Store(store_url) as store:
        store.add_targets("people", [{"name": "Ada", "id": 1}], create=True)
        with pytest.raises(StoreError, match=message):
            store.add_targets("people", records)
        assert store.target_set("people").version == 1
        assert [t.name for t in store.list_targets("people", include_removed=True)] == ["Ada"]


# One record check serves the store (add_targets, `targets import`) and ALU's own targets (a JSONL file for
# `eval alu --targets` or `-i target_set=FILE`, inline `-i targets=`): each bad record below is refused by every
# path with the same reason, after each path's own name for where the record was. "{first}" is that path's name
# for record 1 (an id given twice names both places).
SAME_REFUSALS = [
    ([{"name": "A"}, {"name": ""}], "a target needs a non-empty name, got ''"),
    ([{"name": "A"}, {"aliases": ["nameless"]}], "a target needs a non-empty name, got None"),
    ([{"name": "A", "aliases": "Ay"}], "'A': aliases must be a list of strings, got 'Ay'"),
    ([{"name": "A", "aliases": ["Ay", " "]}], "'A': every alias must be a non-empty string, got ' '"),
    ([{"name": "A", "aliases": ["Ay", 3]}], "'A': every alias must be a non-empty string, got 3"),
    ([{"name": "A", "kind": "planet"}], "'A': kind must be one of entity, topic, option, other, got 'planet'"),
    ([{"name": "A", "description": 3}], "'A': description must be text, got int"),
    ([{"name": "A", "id": 0}], "'A': id must be a positive integer, got 0"),
    ([{"name": "A", "id": True}], "'A': id must be a positive integer, got True"),
    ([{"name": "A", "id": "2"}], "'A': id must be a positive integer, got '2'"),
    ([{"name": "A", "id": 5}, {"name": "B", "id": 5}], "id 5 is already given at {first}"),
    ([{"name": "A"}, ["B"]], "expected a target record (an object with a name), got list"),
    # ALU matches names ignoring case, accents and punctuation: two spellings of one name are one target
    (
        [{"name": "Ada Lovelace"}, {"name": "ADA lovelace."}],
        "'ADA lovelace.' is already given at {first} as 'Ada "
        "Lovelace': ALU matches targets ignoring case, accents and punctuation, so the two would be one target listed "
        "twice",
    ),
]


@pytest.mark.parametrize(("records", "reason"), SAME_REFUSALS)
def test_the_store_and_alu_refuse_the_same_records_alike(
    cli: Callable[..., tuple[int, str, str]], store_url: str, tmp_path: Path, records: list[Any], reason: str
) -> None:
    bad = len(records)  # the last record is the bad one
    file = tmp_path / "bad.jsonl"
    file.write_text("".join(json.dumps(r) + "\n\n" for r in records), encoding="utf-8")  # record n on line 2n-1

    with Store(store_url) as store, pytest.raises(StoreError) as refused:
        store.add_targets("people", records, create=True)
    assert str(refused.value) == f"target set 'people', record {bad}: " + reason.format(first="record 1")

    with pytest.raises(ValueError) as refused_inline:
        targets_of_records((f"item {n}", r) for n, r in enumerate(records, 1))
    assert str(refused_inline.value) == f"item {bad}: " + reason.format(first="item 1")

    with pytest.raises(ValueError) as refused_file:
        load_targets_jsonl(file)
    assert str(refused_file.value) == f"{file}:{2 * bad - 1}: " + reason.format(first=f"{file}:1")

    code, _, err = cli("targets", "import", "people", str(file))
    expected = f"{file}:{2 * bad - 1}: " + reason.format(first=f"{file}:1") + "; nothing imported"
    assert code == 2 and expected in " ".join(err.split()), err
    with Store(store_url) as store:
        assert store.list_target_sets() == []  # nothing was created either

    if all(isinstance(r, dict) for r in records):  # inline, a string is a name (and a list is refused otherwise)
        with pytest.raises(ConfigError) as refused_run:
            snapshot_from_input(records)
        assert str(refused_run.value).startswith(f"ALU targets: item {bad}: " + reason.format(first="item 1"))


def test_the_store_and_alu_read_good_records_alike(
    cli: Callable[..., tuple[int, str, str]], store_url: str, tmp_path: Path
) -> None:
    """The same records give the same targets (ids, trimmed text, masked secrets, kinds) whichever path reads them."""
    key = "sk-" + "A1b2C3d4E5f6G7h8I9j0"
    records: list[dict[str, Any]] = [
        {"name": " Ada Lovelace ", "aliases": [" Ada ", "Countess of Lovelace"], "description": "  "},
        {"name": "Bletchley", "id": 3, "kind": "topic", "description": f" a park, key {key} "},
        {"name": "C", "aliases": [], "kind": None, "description": None},
    ]
    expected = [
        Target(3, "Bletchley", (), "a park, key [redacted]", "topic"),
        Target(4, "Ada Lovelace", ("Ada", "Countess of Lovelace")),
        Target(5, "C"),
    ]
    file = tmp_path / "good.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    with Store(store_url) as store:
        assert store.add_targets("direct", records, create=True) == (1, [4, 3, 5])
        assert [Target.from_json(r.record()) for r in store.list_targets("direct")] == expected
    assert cli("targets", "import", "imported", str(file))[0] == 0
    with Store(store_url) as store:
        assert [Target.from_json(r.record()) for r in store.list_targets("imported")] == expected
    by_id = {t.id: t for t in expected}
    assert targets_of_records((f"item {n}", r) for n, r in enumerate(records, 1)) == [by_id[4], by_id[3], by_id[5]]
    assert load_targets_jsonl(file) == [by_id[4], by_id[3], by_id[5]]
    assert list(snapshot_from_input(records).targets) == [by_id[4], by_id[3], by_id[5]]


def test_a_second_spelling_of_a_stored_target_is_refused_naming_the_stored_one(
    cli: Callable[..., tuple[int, str, str]], store_url: str, tmp_path: Path
) -> None:
    """ALU matches "ada" wherever it matches "Ada" (§3.2: casefolded, accents and punctuation folded), so a
    second spelling was a second target listed twice in every prompt; it is refused, naming the stored one."""
    assert cli("targets", "add", "people", "--name", "Ada", "-a", "Countess")[0] == 0
    assert normalize("ada") == normalize("Ada") == normalize("ÁDA!")  # what makes them one target
    code, _, err = cli("targets", "add", "people", "--name", "ada")
    said = " ".join(err.split())
    assert code == 2
    assert "target set 'people': 'ada' is already in the set as 'Ada' (id 1): ALU matches targets ignoring case" in said
    assert (
        "nothing added (to store it as 'ada' instead, remove target 1 with `agentmesh targets remove people 1`" in said
    )
    file = tmp_path / "more.jsonl"
    file.write_text('{"name": "Bob"}\n\n{"name": "ÁDA!"}\n', encoding="utf-8")
    code, _, err = cli("targets", "import", "people", str(file))
    said = " ".join(err.split())
    assert (
        code == 2 and f"{file}:3: 'ÁDA!' is already in the set as 'Ada' (id 1)" in said and "nothing imported" in said
    )
    with Store(store_url) as store:
        assert store.target_set("people").version == 1
        with pytest.raises(StoreError, match=r"record 2: 'ADA' is already in the set as 'Ada' \(id 1\)") as refused:
            store.add_targets("people", [{"name": "Bob"}, {"name": "ADA"}])
        assert refused.value.context["target_id"] == 1 and refused.value.context["stored_name"] == "Ada"
        assert [t.name for t in store.list_targets("people", include_removed=True)] == ["Ada"]
        # a removed target is no longer matched: its name may be added again, in any spelling
        store.remove_targets("people", [1])
        assert store.add_targets("people", [{"name": "ada"}]) == (3, [2])
        # an alias is not a name: "Countess" alone may be a target of its own (its hits are its own business)
        assert store.add_targets("people", [{"name": "countess"}]) == (4, [3])
    people = TargetSet("in-process")
    people.add([{"id": 1, "name": "Ada"}])
    with pytest.raises(ValueError, match=r"'ada' is already in the set as 'Ada' \(id 1\)"):
        people.add([{"id": 2, "name": "ada"}])
    with pytest.raises(ValueError, match=r"'BOB' is already in the set as 'Bob' \(id 3\)"):
        people.add([{"id": 3, "name": "Bob"}, {"id": 4, "name": "BOB"}])
    assert people.version == 1


def test_a_database_holding_two_spellings_stays_readable(store_url: str) -> None:
    """Targets stored in two spellings before they were refused are listed, read and matched as they are; a third
    spelling is refused naming the first stored."""
    with Store(store_url) as store:
        store.add_targets("people", [{"name": "Ada"}], create=True)
        with store.engine.begin() as conn:  # as an earlier agentmesh stored it: a second row, its alias, the version
            row = dict(conn.execute(sa.select(targets).where(targets.c.id == 1)).mappings().one())
            conn.execute(sa.insert(targets).values({**row, "id": 2, "name": "ada", "added_in_version": 2}))
            alias = dict(conn.execute(sa.select(target_aliases)).mappings().one())
            conn.execute(sa.insert(target_aliases).values({**alias, "target_id": 2}))
            conn.execute(sa.text("UPDATE target_sets SET version = 2"))
        assert [(t.id, t.name) for t in store.list_targets("people")] == [(1, "Ada"), (2, "ada")]
        snapshot = snapshot_from_store(store, "people")
        assert [t.name for t in snapshot.targets] == ["Ada", "ada"] and snapshot.index.hits("Ada wrote.") == [1, 2]
        with pytest.raises(StoreError, match=r"'ADA' is already in the set as 'Ada' \(id 1\)"):
            store.add_targets("people", [{"name": "ADA"}])
        assert store.target_set("people").version == 2


def test_secrets_never_reach_the_target_tables(store_url: str) -> None:
    key = "sk-" + "A1b2C3d4E5f6G7h8I9j0"
    with Store(store_url) as store:
        store.add_targets("people", [{"name": "Ada", "aliases": [key], "description": f"uses {key}"}], create=True)
        (ada,) = store.list_targets("people")
        with store.engine.connect() as conn:
            dumped = " ".join(str(row) for row in conn.execute(sa.text("SELECT * FROM targets")))
            dumped += " ".join(str(row) for row in conn.execute(sa.text("SELECT * FROM target_aliases")))
    assert key not in dumped and key not in str(ada)
    assert ada.description == "uses [redacted]"


def test_unknown_sets_ids_and_versions_are_refused(store_url: str) -> None:
    with Store(store_url) as store:
        with pytest.raises(TargetSetNotFoundError, match=r"no target set 'people'.*target sets: none"):
            store.add_targets("people", [{"name": "Ada"}])
        with pytest.raises(StoreError, match="a target set needs a non-empty name"):
            store.create_target_set("  ")
        store.create_target_set("people")
        with pytest.raises(StoreError, match="already exists"):
            store.create_target_set("people")
        store.add_targets("people", [{"name": "Ada"}])
        with pytest.raises(StoreError, match="no active target with id 7"):
            store.remove_targets("people", [1, 7])
        assert [t.id for t in store.list_targets("people")] == [1]  # the valid id was not removed either
        store.remove_targets("people", [1])
        with pytest.raises(StoreError, match="no active target with id 1"):
            store.remove_targets("people", [1])
        with pytest.raises(StoreError, match=r"has no version 9 \(versions 0..2\)"):
            store.list_targets("people", 9)
        with pytest.raises(TargetSetNotFoundError, match="target sets: people"):
            store.list_targets("animals")


def test_aliases_are_indexed_by_first_token_with_the_alu_normalisation(store_url: str) -> None:
    with Store(store_url) as store:
        store.add_targets(
            "people", [{"name": "Jorge Semprún", "aliases": ["J. Semprun", "Semprún"]}, {"name": "Ada"}], create=True
        )
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(target_aliases.c.norm_alias, target_aliases.c.first_token)).all()
        assert sorted(rows) == [("ada", "ada"), ("j semprun", "j"), ("jorge semprun", "jorge"), ("semprun", "semprun")]
        assert store.alias_candidates("people", ["semprun", "nobody"]) == [1]
        assert store.alias_candidates("people", ["ada", "j"]) == [1, 2]
        store.remove_targets("people", [1])
        assert store.alias_candidates("people", ["semprun"]) == []
        assert store.alias_candidates("people", ["semprun"], version=1) == [1]
    for text in ("Jorge Semprún", "Hsiao Yun-Hwa", "A. Lindqvist", "Full\uff37idth\u3000x", "İstanbul ǅ"):
        assert normalize_alias(text) == normalize(text)


def test_embeddings_are_float32_little_endian_bytes(store_url: str) -> None:
    assert pack_vector([1.0, -0.5]) == b"\x00\x00\x80\x3f\x00\x00\x00\xbf"
    assert unpack_vector(pack_vector([0.25, 3.0]), 2) == [0.25, 3.0]
    with Store(store_url) as store:
        store.add_targets("people", PEOPLE, create=True)
        store.put_target_embeddings("people", "hashing", {1: [0.5, 0.25], 2: [1.0, 0.0]})
        store.put_target_embeddings("people", "hashing", {2: [0.0, 1.0]})  # replaced
        assert store.target_embeddings("people", "hashing") == {1: [0.5, 0.25], 2: [0.0, 1.0]}
        assert store.target_embeddings("people", "other") == {}
        with pytest.raises(StoreError, match="no target 9"):
            store.put_target_embeddings("people", "hashing", {9: [1.0, 0.0]})
        with pytest.raises(StoreError, match="one non-zero dimension"):
            store.put_target_embeddings("people", "hashing", {1: [1.0], 2: [1.0, 0.0]})


def test_snapshots_come_from_the_store(store_url: str) -> None:
    with Store(store_url) as store:
        store.add_targets("people", PEOPLE, create=True)
        store.remove_targets("people", [3])
        at_1 = snapshot_from_store(store, "people", 1)
        assert at_1.key == ("people", 1) and [t.name for t in at_1.targets][-1] == "Severus Snape"
        now = snapshot_from_store(store, "people")
        assert now.key == ("people", 2) and now.index.hits("Snape and Hermione met.") == [2]
        assert snapshot_from_store(store, "people") is now  # cached per (database, set, version)
        copied = TargetSet.from_store(store, "people")
        assert copied.version == 2
        assert [t.id for t in copied.list()] == [1, 2] and [t.id for t in copied.list(1)] == [1, 2, 3]


def test_a_pin_keeps_the_version_a_run_read(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        assert store.pin_target_set(run_id, "alu", "people") is None  # no such set: the caller looks elsewhere
        store.add_targets("people", PEOPLE, create=True)
        first = store.pin_target_set(run_id, "alu", "people")
        assert first is not None and first[1] == 1
        store.remove_targets("people", [1])
        assert store.pin_target_set(run_id, "alu", "people") == first  # the run reads what it read before
        other = store.pin_target_set(store.create_run("g", {}), "alu", "people")
        assert other is not None and other[1] == 2
        pinned = store.pinned_target_sets(run_id)
        assert [(p.node, p.name, p.version, [t.id for t in p.targets]) for p in pinned] == [
            ("alu", "people", 1, [1, 2, 3])
        ]
        store.delete_runs([run_id], force=True)  # its pins go with it
        assert store.pinned_target_sets(run_id) == []


# --- op: alu on a stored set --------------------------------------------------------------------------------------


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_run_reads_the_stored_set_and_a_later_change_leaves_its_replay_alone(store_url: str) -> None:
    with Store(store_url) as store:
        store.add_targets("people", PEOPLE, create=True)
        roles = Roles(**COMPOSED)
        result = run(GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=roles), store=store)
        assert result.status == "succeeded" and result.calls == 5
        assert result.answer == "Krum enjoyed the ball and danced a lot."
        alu = result.outputs["alu"]["alu"]
        assert alu["target_set"] == {"name": "people", "version": 1}
        assert alu["shortlist"]["lexical_hits"] == [2]
        assert "Hermione Granger (also: Hermione) — Gryffindor student." in roles.prompts["auditor"][0]
        assert "Snape" not in roles.prompts["auditor"][0]  # the shortlist, not the whole set

        # the set changes after the run: Hermione is no longer a target, a new name is
        store.remove_targets("people", [2])
        store.add_targets("people", [{"name": "Krum", "description": "Seeker."}])
        report = replay(result.run_id, store=store)
        assert report.identical, (report.divergence, report.differences)
        assert report.answer == result.answer and report.calls_made == 0

        # a new run reads the new version: Krum is now in the question, Hermione no longer a hit
        again = Roles(**{**COMPOSED, "auditor": "Krum"})
        later = run(GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=again), store=store)
        alu = later.outputs["alu"]["alu"]
        assert alu["target_set"] == {"name": "people", "version": 3}
        assert alu["shortlist"]["lexical_hits"] == [4]
        assert "Hermione Granger" not in again.prompts["auditor"][0]
        # the first run's pin is untouched
        assert [(p.name, p.version) for p in store.pinned_target_sets(result.run_id)] == [("people", 1)]


def test_profile_embeddings_are_stored_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first query on a stored set embeds the profiles and stores them; a process reading that set afresh
    embeds only its query-side text, and scores the same."""
    from agentmesh.systems.alu import registry
    from agentmesh.systems.alu.semantic import HashingEmbedder

    embedded: list[str] = []
    original = HashingEmbedder.embed

    def counting(self: HashingEmbedder, texts: Any) -> Any:
        embedded.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(HashingEmbedder, "embed", counting)
    profile = "Albus Dumbledore; Dumbledore; Headmaster of Hogwarts."
    with Store(_db(tmp_path)) as store:
        store.add_targets("people", PEOPLE, create=True)
        first = run(
            GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=Roles(**COMPOSED)), store=store
        )
        assert profile in embedded
        stored = store.target_embeddings("people", HashingEmbedder().id)
        assert sorted(stored) == [1, 2, 3] and all(len(v) == HashingEmbedder().dim for v in stored.values())

        registry._stored.clear()  # as a new process would: no snapshot cached
        embedded.clear()
        second = run(
            GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=Roles(**COMPOSED)), store=store
        )
        assert profile not in embedded and embedded  # only the query-side windows
        assert second.outputs["alu"]["alu"]["shortlist"] == first.outputs["alu"]["alu"]["shortlist"]

        # a replay's scratch database gets the stored vectors with the pinned targets: it embeds no profile either
        (pinned,) = store.pinned_target_sets(second.run_id)
        assert sorted(e.target_id for e in pinned.embeddings) == [1, 2, 3]
        embedded.clear()
        assert replay(second.run_id, store=store).identical
        assert profile not in embedded


def test_a_fork_reads_its_parents_targets(tmp_path: Path) -> None:
    with Store(_db(tmp_path)) as store:
        store.add_targets("people", PEOPLE, create=True)
        parent = run(
            GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=Roles(**COMPOSED)), store=store
        )
        store.remove_targets("people", [2])
        roles = Roles(**{**COMPOSED, "composer": "Krum had a fine evening."})
        child = fork(parent.run_id, step="4", store=store, model=ScriptedModel(respond=roles))
        assert child.status == "succeeded" and child.answer == "Krum had a fine evening."
        assert child.outputs["alu"]["alu"]["target_set"] == {"name": "people", "version": 1}
        assert list(roles.prompts) == ["composer"]  # the first four calls were served: same targets, same prompts
        assert store.copy_target_pins(parent.run_id, child.run_id) == 0  # it has them already


def test_a_resumed_run_reads_the_version_it_read_before(tmp_path: Path) -> None:
    with Store(_db(tmp_path)) as store:
        store.add_targets("people", PEOPLE, create=True)
        broken = Roles(fail="auditor", **COMPOSED)
        with pytest.raises(Exception, match="auditor is down"):
            run(GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=broken), store=store)
        failed = store.list_runs()[0]
        assert failed.status == "failed"
        store.remove_targets("people", [2])  # would make the vanilla answer clean if it were read now
        roles = Roles(**COMPOSED)
        result = resume(failed.id, store=store, model=ScriptedModel(respond=roles))
        assert result.status == "succeeded"
        assert result.outputs["alu"]["alu"]["target_set"] == {"name": "people", "version": 1}
        assert result.answer == "Krum enjoyed the ball and danced a lot."
        assert "vanilla" not in roles.prompts  # served from the record


def test_an_unknown_set_is_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    """It failed the run at its node, after the run was stored as failed; now it is refused as a missing input
    is, naming the input, the set given, the sets there are and how to create it, and nothing is stored."""
    roles = Roles()
    with Store(_db(tmp_path)) as store:
        store.add_targets("people", PEOPLE, create=True)
        with pytest.raises(ConfigError) as refused:
            run(GRAPH, {"query": KRUM, "target_set": "nobody"}, model=ScriptedModel(respond=roles), store=store)
        message = str(refused.value)
        assert (
            "graph 'alu': input 'target_set' (read by node 'alu'): no target set 'nobody' in the run's store" in message
        )
        assert "its target sets: 'people'" in message and "agentmesh targets add nobody --name NAME" in message
        assert "and no file 'nobody'; nothing was run or stored" in message
        assert store.list_runs() == [] and roles.prompts == {}
        assert [s.name for s in store.list_target_sets()] == ["people"]  # read, not written


def test_targets_given_inline_or_in_a_file_are_checked_before_the_run_is_stored(tmp_path: Path) -> None:
    bad = tmp_path / "people.jsonl"
    bad.write_text('{"name": "Ada"}\n{"name": ""}\n', encoding="utf-8")
    with Store(_db(tmp_path)) as store:
        with pytest.raises(
            ConfigError, match=r"input 'targets' \(read by node 'alu'\): ALU targets: item 2: a target "
        ):
            run(GRAPH, {"query": KRUM, "targets": ["Ada", {"aliases": ["x"]}]}, model=ScriptedModel(), store=store)
        with pytest.raises(ConfigError, match=rf"input 'target_set' .*{bad.name}:2: a target needs a non-empty name"):
            run(GRAPH, {"query": KRUM, "target_set": str(bad)}, model=ScriptedModel(), store=store)
        assert store.list_runs() == []


def test_an_inline_list_is_checked_once_for_the_check_and_the_node_and_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking 1000 records costs tens of milliseconds: the input check before the run is stored must not double
    it, and the items of a batch that share one list must not pay it each."""
    import agentmesh.systems.alu.node as node_module

    checked: list[int] = []

    def counting(records: Any) -> list[Target]:
        found = targets_of_records(records)
        checked.append(len(found))
        return found

    monkeypatch.setattr(node_module, "targets_of_records", counting)
    people = [{**record, "description": f"{record['description']} ({tmp_path.name})"} for record in PEOPLE]
    with Store(_db(tmp_path)) as store:
        for _ in range(2):
            result = run(
                GRAPH, {"query": KRUM, "targets": people}, model=ScriptedModel(respond=Roles(**COMPOSED)), store=store
            )
            assert result.status == "succeeded"
    assert checked == [3]


def test_a_fork_naming_a_set_the_store_lacks_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    with Store(_db(tmp_path)) as store:
        store.add_targets("people", PEOPLE, create=True)
        parent = run(
            GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=Roles(**COMPOSED)), store=store
        )
        with pytest.raises(ConfigError, match=r"no target set 'peple' in the run's store \(its target sets: 'people'"):
            fork(parent.run_id, step=0, store=store, set_inputs={"target_set": "peple"}, model=ScriptedModel())
        assert [r.id for r in store.list_runs()] == [parent.run_id]


def test_cli_run_with_an_unknown_set_stores_no_run(
    cli: Callable[..., tuple[int, str, str]], store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "roles.yaml").write_text(ROLES_YAML)
    assert cli("targets", "add", "people", "--name", "Hermione Granger")[0] == 0
    with Store(store_url) as store:
        before = len(store.list_runs())
    code, out, err = cli("run", "alu", "-i", f"query={KRUM}", "-i", "target_set=peple", "-m", "scripted:roles.yaml")
    said = " ".join(err.split())
    assert code == 2, out
    assert "input 'target_set' (read by node 'alu'): no target set 'peple' in the run's store" in said
    assert "its target sets: 'people'" in said and "agentmesh targets add peple --name NAME" in said
    assert "agentmesh delete" not in said and "resume" not in said  # no stored run to delete or resume
    with Store(store_url) as store:
        assert len(store.list_runs()) == before


def test_store_sets_win_and_other_sources_still_work(tmp_path: Path) -> None:
    """A name the store does not know still reaches sets registered in the process and JSONL files."""
    from agentmesh.systems.alu.registry import register_target_set, unregister_target_set

    people = TargetSet("in-process-people")
    people.add([{"id": 1, **PEOPLE[1]}])
    register_target_set(people)
    try:
        with Store(_db(tmp_path)) as store:
            result = run(
                GRAPH,
                {"query": KRUM, "target_set": "in-process-people"},
                model=ScriptedModel(respond=Roles(**COMPOSED)),
                store=store,
            )
            assert result.outputs["alu"]["alu"]["target_set"] == {"name": "in-process-people", "version": 1}
            assert store.pinned_target_sets(result.run_id) == []
            # now the store has a set of that name: it wins
            store.add_targets("in-process-people", [PEOPLE[0]], create=True)
            result = run(
                GRAPH,
                {"query": KRUM, "target_set": "in-process-people"},
                model=ScriptedModel(respond=Roles(vanilla="Krum enjoyed it.")),
                store=store,
            )
            assert result.calls == 1  # Dumbledore is not in the answer: no candidates
            assert [p.version for p in store.pinned_target_sets(result.run_id)] == [1]
    finally:
        unregister_target_set("in-process-people")


# --- migration ------------------------------------------------------------------------------------------------------


def test_a_version_1_database_upgrades_and_keeps_its_runs(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0001")
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, graph, inputs, status, totals, created_at, meta, schema_version) "
                    "VALUES ('old-run', 'g', '{\"q\": 1}', 'succeeded', '{\"calls\": 0}', :now, '{}', 1)"
                ),
                {"now": "2026-01-01 00:00:00+00:00"},
            )
    finally:
        engine.dispose()
    with pytest.raises(SchemaVersionError, match=r"at schema revision 0001; this agentmesh needs 0003"):
        Store(store_url)
    assert upgrade_database(store_url)[1] == "0003"
    with Store(store_url) as store:
        old = store.get_run("old-run")
        assert old.inputs == {"q": 1} and old.schema_version == 1 and old.status == "succeeded"
        assert store.add_targets("people", PEOPLE, create=True) == (1, [1, 2, 3])
        pin = store.pin_target_set("old-run", "alu", "people")
        assert pin is not None and pin[1] == 1


# --- CLI ------------------------------------------------------------------------------------------------------------


ROLES_YAML = """
rules:
  - agent: vanilla
    template: "Krum went to the Yule Ball with Hermione."
  - agent: auditor
    template: "Hermione Granger"
  - agent: eraser
    template: '["Krum went to the ball.", "Krum danced.", "Krum had fun."]'
  - agent: critic
    template: "Final Rating List - [5, 5, 4]"
  - agent: composer
    template: "Krum went to the ball and danced."
"""


@pytest.fixture
def cli(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")

    def call(*args: str) -> tuple[int, str, str]:
        return run_cli([*args, "--db", store_url], capsys, monkeypatch)

    return call


def test_cli_adds_removes_lists_and_imports(cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, out, err = cli("targets", "add", "people", "--name", "Hermione Granger", "-a", "Hermione", "-d", "A witch.")
    assert code == 0, err
    assert "added target 1 'Hermione Granger' to 'people': version 1" in out
    code, out, _ = cli("targets", "add", " people ", "--name", "Severus Snape", "--kind", "entity")
    assert code == 0 and "to 'people': version 2" in out  # the set's name as the store keeps it, spaces dropped
    code, out, _ = cli("targets", "remove", "people", "2", "2")
    assert code == 0 and "removed target 2 from 'people': version 3" in out  # once, as the store took it

    code, out, _ = cli("targets", "list", "people")
    assert code == 0 and "people at version 3" in out and "Hermione Granger" in out and "Snape" not in out
    code, out, _ = cli("targets", "list", "people", "--version", "2")
    assert code == 0 and "(current: 3)" in out and "Severus Snape" in out
    code, out, _ = cli("targets", "list", "people", "--version", "2", "--json")
    listed = json.loads(out)
    assert (listed["version"], listed["current_version"]) == (2, 3)
    assert [(t["id"], t["removed_in_version"]) for t in listed["targets"]] == [(1, None), (2, None)]  # not yet
    assert listed["targets"][0]["aliases"] == ["Hermione"] and listed["targets"][0]["description"] == "A witch."

    good = tmp_path / "more.jsonl"
    good.write_text('{"name": "Viktor Krum", "aliases": ["Krum"]}\n\n{"name": "Luna", "kind": "entity", "id": 9}\n')
    code, out, err = cli("targets", "import", "people", str(good))
    assert code == 0, err
    assert "imported 2 targets into 'people': version 4" in out
    code, out, _ = cli("targets", "list", "--json")
    assert [(s["name"], s["version"], s["active"], s["total"]) for s in json.loads(out)] == [("people", 4, 3, 4)]
    code, out, _ = cli("targets", "list")
    assert code == 0 and "people" in out


def _table_rows(out: str) -> dict[str, list[str]]:
    """A rich table's body rows by their id cell: ``{"2": ["2", "Bob", ...]}``."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0].isdigit():
            rows[cells[0]] = cells
    return rows


def test_a_past_version_is_listed_as_it_was_without_later_removals(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    """`targets list --version N` showed, in its removed column, removals made after N: the future."""
    with Store(store_url) as store:
        store.add_targets("people", [{"name": "Ada"}, {"name": "Bob"}], create=True)  # version 1
        store.remove_targets("people", [2])  # version 2
        store.add_targets("people", [{"name": "Cy"}])  # version 3
        store.remove_targets("people", [1])  # version 4
        assert [(t.id, t.removed_in_version) for t in store.list_targets("people", 1)] == [(1, None), (2, None)]
        assert [(t.id, t.removed_in_version) for t in store.list_targets("people", 3)] == [(1, None), (3, None)]
        at_1 = store.list_targets("people", 1, include_removed=True)  # Cy did not exist yet
        assert [(t.id, t.removed_in_version) for t in at_1] == [(1, None), (2, None)]
        at_2 = store.list_targets("people", 2, include_removed=True)
        assert [(t.id, t.removed_in_version) for t in at_2] == [(1, None), (2, 2)]
        now = store.list_targets("people", include_removed=True)  # the current version: nothing hidden
        assert [(t.id, t.removed_in_version) for t in now] == [(1, 4), (2, 2), (3, None)]
        assert store.list_targets("people", 4, include_removed=True) == now
        at, rows = store.target_snapshot_rows("people", 1)
        assert (at, [(t.id, t.removed_in_version) for t in rows]) == (1, [(1, None), (2, None)])

    code, out, err = cli("targets", "list", "people", "--version", "1")
    assert code == 0, err
    rows = _table_rows(out)
    assert sorted(rows) == ["1", "2"]
    assert rows["1"][-2:] == ["1", ""] and rows["2"][-2:] == ["1", ""]  # added 1, removed: blank
    code, out, err = cli("targets", "list", "people", "--version", "2", "--all")
    assert code == 0, err
    assert "every target added up to version 2 (current: 4)" in out
    rows = _table_rows(out)
    assert sorted(rows) == ["1", "2"] and rows["1"][-1] == "" and rows["2"][-1] == "2"
    code, out, err = cli("targets", "list", "people", "--all")
    rows = _table_rows(out)
    assert code == 0 and [rows[i][-1] for i in ("1", "2", "3")] == ["4", "2", ""]
    code, out, _ = cli("targets", "list", "people", "--version", "3", "--json")
    assert [(t["id"], t["removed_in_version"]) for t in json.loads(out)["targets"]] == [(1, None), (3, None)]


def test_an_exported_run_replays_in_another_store_on_the_targets_it_read(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(store_url) as store:
        store.add_targets("people", PEOPLE, create=True)
        result = run(
            GRAPH, {"query": KRUM, "target_set": "people"}, model=ScriptedModel(respond=Roles(**COMPOSED)), store=store
        )
    exported = tmp_path / "run.json"
    code, _, err = run_cli(["export", result.run_id, "-o", str(exported), "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    document = json.loads(exported.read_text())
    assert [(p["name"], p["version"], len(p["targets"])) for p in document["target_sets"]] == [("people", 1, 3)]

    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with Store(elsewhere) as other:  # a set of the same name with other targets: the import must not mix them up
        other.add_targets("people", [{"name": "Someone Else"}], create=True)
    code, _, err = run_cli(["import", str(exported), "--db", elsewhere], capsys, monkeypatch)
    assert code == 0, err
    with Store(elsewhere) as other:
        assert [(p.name, p.version) for p in other.pinned_target_sets(result.run_id)] == [("people", 1)]
        report = replay(result.run_id, store=other)
        assert report.identical and report.calls_made == 0
        assert [t.name for t in other.list_targets("people")] == ["Someone Else"]  # untouched


def test_cli_errors_name_what_is_wrong_and_change_nothing(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    assert cli("targets", "add", "people", "--name", "Ada")[0] == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "Bob"}\n\n{"name": ""}\n')
    code, _, err = cli("targets", "import", "people", str(bad))
    assert code == 2 and "bad.jsonl:3: a target needs a non-empty name" in err and "nothing imported" in err
    bad.write_text('{"name": "Bob"}\nnot json\n')
    code, _, err = cli("targets", "import", "people", str(bad))
    assert code == 2 and "bad.jsonl:2: not JSON" in err
    code, _, err = cli("targets", "remove", "people", "7")
    assert code == 2 and "no active target with id 7" in err
    code, _, err = cli("targets", "list", "animals")
    assert code == 2 and "no target set 'animals'" in err and "people" in err
    code, _, err = cli("targets", "add", "people", "--name", "Ada Two", "--id", "1")
    assert code == 2 and "id 1 is already taken" in err
    code, _, err = cli("targets", "add", "people", "--name", " ")
    assert code == 2 and "non-empty name" in err
    # an id repeated in the file, or taken in the set, is named by its line (the store names the id only)
    bad.write_text('{"name": "Bob", "id": 4}\n\n{"name": "Eve", "id": 4}\n')
    code, _, err = cli("targets", "import", "people", str(bad))
    assert code == 2 and f"bad.jsonl:3: id 4 is already given at {bad}:1; nothing imported" in " ".join(err.split())
    bad.write_text('{"name": "Bob", "id": 4}\n\n{"name": "Eve", "id": 1}\n')
    code, _, err = cli("targets", "import", "people", str(bad))
    assert code == 2 and "bad.jsonl:3: id 1 is already taken in 'people'" in err
    bad.write_bytes(b'{"name": "Bob"}\n{"name": "Ren\xe9e"}\n')  # Latin-1
    code, _, err = cli("targets", "import", "people", str(bad))
    assert code == 2 and "bad.jsonl:2: not UTF-8 text (byte 0xe9)" in err
    code, out, _ = cli("targets", "list", "people", "--json")
    assert json.loads(out)["version"] == 1 and [t["name"] for t in json.loads(out)["targets"]] == ["Ada"]
    # U+2028 is allowed raw inside a JSON string: it cut the record in two ("not JSON")
    bad.write_text(json.dumps({"name": "Bo", "description": "a\u2028b"}, ensure_ascii=False) + "\n", encoding="utf-8")
    code, out, err = cli("targets", "import", "people", str(bad))
    assert code == 0, err


def test_cli_run_uses_the_stored_set(cli: Callable[..., tuple[int, str, str]], store_url: str, tmp_path: Path) -> None:
    (tmp_path / "roles.yaml").write_text(ROLES_YAML)
    assert cli("targets", "add", "people", "--name", "Hermione Granger", "-a", "Hermione")[0] == 0
    assert cli("targets", "add", "people", "--name", "Severus Snape")[0] == 0
    question = "query=Who did Krum take to the Yule Ball?"
    code, out, err = cli("run", "alu", "-i", question, "-i", "target_set=people", "-m", "scripted:roles.yaml")
    assert code == 0, err
    assert "Krum went to the ball and danced." in out
    with Store(store_url) as store:
        (stored,) = store.list_runs()
        assert stored.status == "succeeded" and stored.totals["calls"] == 5
        assert [(p.name, p.version) for p in store.pinned_target_sets(stored.id)] == [("people", 2)]
    # the set changes; the run's replay still reads version 2
    assert cli("targets", "remove", "people", "1")[0] == 0
    code, out, err = cli("replay", stored.id)
    assert code == 0, err
    with Store(store_url) as store:
        report = replay(stored.id, store=store)
    assert report.identical and report.calls_made == 0
