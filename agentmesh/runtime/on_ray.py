"""Runs as Ray tasks: each run (an optimisation job's item, a batch's line) in a worker process, on this machine or
across a cluster, every worker writing to the one shared store.

Why Ray and not more asyncio: the items of a job or a batch are independent runs, and on the embedded model or a
model that is local to each machine (llama.cpp, vLLM per node) the work is CPU or GPU bound, so the runs must spread
over processes and machines; Ray schedules them, restarts crashed workers and is what a lab's cluster already runs.
The store stays the single source of truth: a worker stores its run as any run is stored (events as calls finish,
checkpoints per step, the caller's tags in its meta), under the id the caller chose for it (:func:`new_run_id`),
so the caller can name, report and wait for a run still going on in another process. A job resumes whichever
executor ran it; a batch's cut-short runs resume locally (``agentmesh resume --batch``).

What crosses to a worker is JSON text only (Ray moves Python objects with pickle; agentmesh hands it none of its
own): the graph spec as data, the inputs, the model reference, the model settings (aliases, endpoints, prices:
never keys, which the settings file refuses), the modules to import (``--import``) and the store's URL *without*
its password (a task's arguments show in Ray's dashboard and state API); back comes the run's result as JSON. A
worker finds keys and the database password in its own environment (``OPENAI_API_KEY``, ``PGPASSWORD`` or
``~/.pgpass``): a local cluster's workers inherit the driver's, a cluster's nodes need them set. Request-rate limits
(``rpm``, ``tpm``) are per process, so on Ray each worker keeps its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agentmesh.errors import AgentmeshError, ConfigError, DatabaseFailedError, RunNotFoundError
from agentmesh.models import ModelSettings, get_model
from agentmesh.models.providers.llamacpp import THREADS_ENV
from agentmesh.plugins import import_plugins
from agentmesh.runtime.recorded_model import reads_a_run
from agentmesh.runtime.run import RunResult, aresume, arun
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import dump_graph, graph_from_data
from agentmesh.spec.stop import Budget
from agentmesh.store import RunStatus, Store
from agentmesh.store._failures import DRIVER_ERRORS, database_failed, lasting_database_failure

#: How long a stopped job or batch waits for its cancelled runs to store themselves as interrupted.
CANCEL_GRACE_S = 10.0

RunOnRay = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]
"""Runs one run's task (the shared fields of :func:`job_payload` plus the run's own: ``run_id`` and ``inputs``,
``meta`` and ``budget`` for a new run, or ``resume``: the id of a run to continue) and returns what the worker said:
``run_id``, ``result`` (the :class:`~agentmesh.runtime.run.RunResult` as JSON) or, when the run failed, ``error``."""


def new_run_id() -> str:
    """An id for a run another process will store (the same form as the store's own)."""
    return uuid.uuid4().hex


def worker_db_url(store: Store, *, cluster: bool) -> str:
    """The URL a worker opens ``store`` with: absolute for a SQLite file, and never with a password.

    A cluster spans machines, and a SQLite file is on one of them: a worker elsewhere would create an empty
    database of its own and the job's runs would be split, so a cluster needs Postgres."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        if cluster:
            raise ConfigError(
                f"a Ray cluster (--ray-address) spans machines and the store {store.url} is a SQLite file on this "
                "one: give every node one Postgres store (--db postgresql://user@host/db), or leave --ray-address "
                "out to run Ray on this machine",
                url=store.url,
            )
        return url.set(database=str(Path(url.database or "").resolve())).render_as_string(hide_password=False)
    if url.password:
        raise ConfigError(
            f"the store's URL {store.url} holds a password, and a Ray task's arguments show in Ray's dashboard: "
            "give --db without it and set PGPASSWORD (or ~/.pgpass) where the workers run",
            url=store.url,
        )
    return url.render_as_string(hide_password=False)


def spec_data(spec: GraphSpec) -> dict[str, Any]:
    """``spec`` as plain data, which :func:`graph_from_data` loads back to an equal spec (round-trip tested)."""
    data = yaml.safe_load(dump_graph(spec))
    if not isinstance(data, dict):  # pragma: no cover - dump_graph always writes a mapping
        raise AgentmeshError(f"graph {spec.name!r} did not dump to a mapping")
    return data


def _connect(address: str | None) -> bool:
    """``ray.init`` for a job (``address``: a cluster; ``None``: a Ray started on this machine), unless this process
    has a Ray already; whether it started one here (and so is to shut it down)."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--executor ray needs Ray: pip install 'agentmesh[ray]'") from exc
    if ray.is_initialized():
        return False
    # "local" starts a Ray for this job even when $RAY_ADDRESS names a cluster: a cluster is asked for by name
    ray.init(
        address=address or "local",
        include_dashboard=False,
        log_to_driver=False,  # a worker's output would break the progress bar; errors come back as results
        logging_level=logging.WARNING,
        configure_logging=False,
    )
    return True


@contextlib.contextmanager
def one_ray(executor: str, address: str | None, store: Store) -> Iterator[None]:
    """One Ray for the whole of a job that runs its items in several rounds (SE-Jury's calibration items, then
    its held-out items; ``eval alu``'s systems, then each one's judge): every
    :func:`agentmesh.optimize.items.run_items` inside keeps it (:func:`start_ray`), and it is shut down once, at
    the end, if it was started here. Nothing happens unless ``executor`` is ``"ray"``.

    Why: each round started a Ray and shut it down again, tens of seconds each (a minute on a busy machine) spent
    between the rounds with nothing running, once more per baseline and per judge. ``store`` is checked as the
    rounds will check it (a SQLite file is refused with a cluster), before connecting rather than after."""
    if executor != "ray":
        yield
        return
    worker_db_url(store, cluster=address is not None)
    started_here = _connect(address)
    try:
        yield
    finally:
        if started_here:
            import ray

            ray.shutdown()


def start_ray(address: str | None, cpus_per_item: float) -> tuple[RunOnRay, Callable[[], None]]:
    """Connect to Ray (``address``: a cluster; ``None``: a Ray started on this machine for the job) and return
    (how to run an item there, how to let Ray go at the end). A process that has already called ``ray.init`` (or
    is inside :func:`one_ray`) keeps its Ray, and keeps it running afterwards."""
    if cpus_per_item <= 0:
        raise ConfigError(f"CPUs per item must be above 0, got {cpus_per_item}")
    started_here = _connect(address)
    import ray
    import ray.exceptions

    if address is None:
        # a task asking for more CPUs than the Ray on this machine has is never scheduled: the job waited forever,
        # nothing running, nothing said (Ray's warning goes to the workers' log, not here)
        resources: Callable[[], dict[str, float]] = ray.cluster_resources  # (untyped in Ray)
        cpus = float(resources().get("CPU", 0))
        if cpus_per_item > cpus:
            if started_here:
                ray.shutdown()
            raise ConfigError(
                f"CPUs per item (--ray-cpus) {cpus_per_item:g} is more than the {cpus:g} CPUs of the Ray on this "
                f"machine, so no item could ever start (the job would wait forever); give at most {cpus:g} (a "
                "fraction packs several items per core), or run on a cluster with larger nodes (--ray-address)"
            )
    task = ray.remote(num_cpus=cpus_per_item, max_retries=0)(run_item_task)

    async def run_on_ray(payload: Mapping[str, Any]) -> dict[str, Any]:
        ref = task.remote(json.dumps(payload))
        try:
            answer = await ref
        except asyncio.CancelledError:
            ray.cancel(ref)  # the worker's run is cancelled and stores itself as interrupted (see _interruptible)
            raise
        except ray.exceptions.RayError as exc:  # the worker died (out of memory, killed), or Ray failed the task
            return {"error": f"Ray could not run the item: {type(exc).__name__}: {exc}"}
        result: dict[str, Any] = json.loads(answer)
        return result

    def release() -> None:
        if started_here:
            ray.shutdown()

    return run_on_ray, release


def job_payload(
    spec: GraphSpec, model: str, settings: ModelSettings, db_url: str, imports: Sequence[str], cpus_per_item: float
) -> dict[str, Any]:
    """The fields the tasks of a job or a batch share."""
    return {
        "spec": spec_data(spec),
        "model": model,
        "settings": settings.model_dump(mode="json", exclude_unset=True),  # an entry gives only what it sets
        "db": db_url,
        "imports": list(imports),
        "cwd": os.getcwd(),  # where a module named by --import was found (a local Ray's workers start there too)
        # an embedded model computes with the CPUs its task holds, not every core of the machine (see llama_threads)
        "llama_threads": max(1, math.floor(cpus_per_item)),
    }


async def run_there(
    run_on_ray: RunOnRay,
    store: Store,
    shared: Mapping[str, Any],
    run_id: str,
    *,
    resume: bool = False,
    inputs: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    budget: Budget | None = None,
) -> RunResult:
    """One run as a Ray task, stored under ``run_id``, and its result: a new run of ``inputs`` (tagged ``meta``,
    within ``budget``) or, with ``resume``, the stored run of that id continued (the rest is not used then).

    Stopped (cancelled), it waits for the worker to store the run as interrupted (:func:`until_stopped`). A run that
    failed raises :class:`AgentmeshError` whose ``context["run"]`` is the run's id, absent when the worker failed
    before storing it, and ``context["error_class"]`` the class name of the worker's error. A failure of the
    database that every later run would meet too (a full disk, a read-only or vanished database) is raised as a
    :class:`DatabaseFailedError` whose ``context["lasting"]`` says why, as a run made here would raise it: the
    caller stops starting runs (:class:`~agentmesh.runtime.stop_starting.StopStarting`)."""
    payload: dict[str, Any] = {**shared, "run_id": run_id}
    if resume:
        payload["resume"] = run_id
    else:
        payload |= {
            "inputs": dict(inputs or {}),
            "meta": dict(meta or {}),
            "budget": None if budget is None else budget.model_dump(mode="json", exclude_none=True),
        }
    try:
        said = await run_on_ray(payload)
    except asyncio.CancelledError:  # the job or batch is stopped: the run in the worker is being stopped too
        until_stopped(store, [run_id])
        raise
    if said.get("error"):
        context = {"run": said.get("run_id"), "error_class": said.get("error_class")}
        if said.get("lasting"):  # the database failed for good in the worker: the caller stops starting runs
            raise DatabaseFailedError(str(said["error"]), lasting=str(said["lasting"]), url=said.get("url"), **context)
        raise AgentmeshError(str(said["error"]), **context)
    return RunResult.model_validate(said["result"])


def until_stopped(store: Store, run_ids: Sequence[str]) -> None:
    """Wait (at most :data:`CANCEL_GRACE_S`) until none of ``run_ids`` is stored as running.

    Why: Ray says a cancelled task is done at once, before its worker has stored the run as interrupted; a job or a
    batch stopped by Ctrl-C that shut its Ray down then would kill the workers first and leave their runs "running"
    (resumable all the same, but a stopped batch should say what it stopped). A run not stored yet never started.

    It blocks the event loop on purpose: it runs while a stopped job shuts down, when asyncio cancels every task,
    some of them twice (``asyncio.run``'s shutdown, then the job's ``gather`` cancelling its items again), and an
    awaited wait would be cut short by the second cancellation. Nothing else has work to do by then."""
    deadline = time.monotonic() + CANCEL_GRACE_S
    waiting = list(run_ids)
    while waiting and time.monotonic() < deadline:
        waiting = [r for r in waiting if _is_running(store, r)]
        if waiting:
            time.sleep(0.1)


def _is_running(store: Store, run_id: str) -> bool:
    try:
        return store.get_run(run_id).status == RunStatus.RUNNING
    except RunNotFoundError:
        return False


def run_item_task(payload: str) -> str:
    """The Ray task, in a worker: one run, or the resumption of a cut-short one; JSON in, JSON out."""
    fields = json.loads(payload)
    os.environ[THREADS_ENV] = str(fields["llama_threads"])
    cwd = fields.get("cwd")
    if cwd and os.path.isdir(cwd) and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        import_plugins(fields["imports"])
    except AgentmeshError as exc:
        return json.dumps({"error": f"in the Ray worker: {exc}"})
    return json.dumps(_interruptible(_run_item(fields)))


def _interruptible(work: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` on an event loop in a thread of its own; a ``KeyboardInterrupt`` of this thread cancels it.

    Why: Ray stops a task (``ray.cancel``, a stopped job) by raising ``KeyboardInterrupt`` in the worker's main
    thread, wherever it is. Raised inside a run's own code, it would go past the run's handlers and leave the run
    "running" in the store. Here it can only land in this thread's wait, and the run is cancelled as Ctrl-C cancels
    one: stored as interrupted, with every finished call, and resumable."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(work)
    outcome: dict[str, Any] = {}

    def drive() -> None:
        try:
            outcome["result"] = loop.run_until_complete(task)
        except BaseException as exc:  # handed to the task's thread below
            outcome["error"] = exc
        finally:
            loop.close()

    thread = threading.Thread(target=drive, name="agentmesh-ray-item", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(task.cancel)
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    result: dict[str, Any] = outcome["result"]
    return result


def _failure(exc: Exception, db_url: str) -> dict[str, Any]:
    """A worker's failed run as JSON for the driver: ``error`` (the message; a driver's own error named as the
    failure of the database), ``error_class`` (the error's class name) and, when the database failed in a way
    every later run would meet too (a full disk, a read-only or vanished database), ``lasting`` (why) and ``url``
    (the database, password masked), so that the driver stops starting runs as it does for a run of its own
    (:class:`~agentmesh.runtime.stop_starting.StopStarting`): the error itself does not cross, only its words."""
    named: Exception = database_failed(db_url, exc) if isinstance(exc, DRIVER_ERRORS) else exc
    said: dict[str, Any] = {
        "error": str(named) if isinstance(named, AgentmeshError) else f"{type(named).__name__}: {named}",
        "error_class": type(named).__name__,
    }
    lasting = lasting_database_failure(named, db_url)
    if lasting is not None:
        said |= {"lasting": lasting.context["lasting"], "url": lasting.context.get("url")}
    return said


async def _run_item(fields: dict[str, Any]) -> dict[str, Any]:
    run_id: str = fields.get("resume") or fields["run_id"]
    try:
        spec = graph_from_data(fields["spec"])
        reference, settings = fields["model"], ModelSettings.model_validate(fields["settings"])
        # a replay:<run-id> model reads its run from the shared store
        client = (
            get_model(reference, store=fields["db"])
            if reads_a_run(reference)
            else get_model(reference, settings=settings)
        )
        budget = Budget.model_validate(fields["budget"]) if fields.get("budget") else None
    except AgentmeshError as exc:
        return {"run_id": None, "error": f"in the Ray worker: {exc}"}
    try:
        with Store(fields["db"]) as store:
            if fields.get("resume"):
                result = await aresume(run_id, store=store, model=client)
            else:
                result = await arun(
                    spec, fields["inputs"], model=client, store=store, meta=fields["meta"], budget=budget, run_id=run_id
                )
        return {"run_id": result.run_id, "result": result.model_dump(mode="json")}
    except Exception as exc:  # one bad run must not sink the others; the store records its failure
        return {"run_id": run_id, **_failure(exc, fields["db"])}
    finally:
        await client.aclose()
