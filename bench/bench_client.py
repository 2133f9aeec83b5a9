"""Client-layer benchmark: throughput against a fixed-capacity server, and requests-per-minute pacing.

Run it (from the repository root, in the project's venv):

    python bench/bench_client.py

Options: ``--requests 500 --delay-ms 50 --slots 8 --concurrency 16 --rpm 6000 --rpm 1200 --rpm-requests 500 200``
(``--help`` for all). It prints figures and PASS/FAIL lines; it is never run as a timed test.

What it does:

* starts a loopback OpenAI-compatible server (starlette + uvicorn, in a subprocess so that it does not share the
  client's interpreter) that answers every chat completion after a fixed delay, with a fixed number of slots
  (an ``asyncio.Semaphore``: requests beyond it wait). Its capacity is ``slots / delay`` requests per second.
  It is bounded: it refuses requests beyond ``--max-server-requests`` and exits after ``--max-server-seconds``,
  and the bench stops it at the end (the whole bench has an overall timeout too);
* (a) sends ``--requests`` requests through :class:`agentmesh.models.ModelClient` with ``max_concurrency`` above
  the slot count, all gathered at once, and reports the achieved throughput as a fraction of the capacity
  (target >= 0.9);
* (b) for each ``--rpm`` value, sends requests with that limit set and reports the achieved rate (from the
  server's arrival times: (n - 1) / (last - first)) and the highest number of arrivals in any 1 s sliding
  window; the rate must be within 5 % of the limit and no window may hold more than the limit allows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

# --------------------------------------------------------------------------------------------------------------
# the server (runs in a subprocess: `bench_client.py --serve ...`)


def serve(delay_s: float, slots: int, max_requests: int, max_seconds: float) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    arrivals: list[float] = []
    limiter: asyncio.Semaphore | None = None
    # When each slot is next free, on the theoretical schedule: a request starts at max(arrival, slot free) and
    # holds its slot for exactly `delay_s`, so the event loop's own wake-up latency does not eat into the
    # capacity (slots / delay_s) that the client is measured against.
    free_at: deque[float] = deque([0.0] * slots)
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }
    server: uvicorn.Server | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        nonlocal limiter
        limiter = asyncio.Semaphore(slots)

        async def watchdog() -> None:
            await asyncio.sleep(max_seconds)
            assert server is not None
            server.should_exit = True

        task = asyncio.create_task(watchdog())
        yield
        task.cancel()

    async def chat(request: Request) -> Response:
        arrived = time.monotonic()
        arrivals.append(arrived)
        if len(arrivals) > max_requests:
            return JSONResponse({"error": {"message": "bench server request budget spent"}}, status_code=503)
        await request.body()
        assert limiter is not None
        async with limiter:
            start = max(arrived, free_at.popleft())
            end = start + delay_s
            await asyncio.sleep(end - time.monotonic())
            free_at.append(end)
        return JSONResponse(body)

    async def stats(request: Request) -> Response:
        return JSONResponse({"arrivals": arrivals})

    async def reset(request: Request) -> Response:
        arrivals.clear()
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/reset", reset, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections queue here until uvicorn accepts them
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, backlog=2048))
    server.run(sockets=[sock])


@contextlib.contextmanager
def bench_server(delay_s: float, slots: int, max_requests: int, max_seconds: float) -> Any:
    cmd = [
        sys.executable,
        __file__,
        "--serve",
        f"--delay-ms={delay_s * 1000}",
        f"--slots={slots}",
        f"--max-server-requests={max_requests}",
        f"--max-server-seconds={max_seconds}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the child prints its port once it listens (or exits)
        if not line.startswith("PORT "):
            raise RuntimeError(f"bench server did not start (exit code {proc.poll()}): {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def _post(url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=10) as resp:
        return json.load(resp)


# --------------------------------------------------------------------------------------------------------------
# the client side


@dataclass
class Run:
    label: str
    requests: int
    elapsed_s: float
    starts: list[float]  # when the client layer let each request go (after its limits), time.monotonic()
    arrivals: list[float]  # when the server received each request
    failures: int


def _timed(provider: Any, starts: list[float]) -> Any:
    """Wrap a provider so that every call's start (the moment the client layer admits it) is recorded."""
    from agentmesh.models import Provider

    class Timed(Provider):
        name = provider.name

        @property
        def endpoint(self) -> str:
            return str(provider.endpoint)

        @property
        def model_name(self) -> str:
            return str(provider.model_name)

        async def complete(self, request: Any, context: Any) -> Any:
            starts.append(time.monotonic())
            return await provider.complete(request, context)

        async def aclose(self) -> None:
            await provider.aclose()

    return Timed()


async def drive(root: str, n: int, *, max_concurrency: int, rpm: float | None, warmup: int, label: str) -> Run:
    """``warmup`` requests, then ``n`` measured ones, all gathered at once, through one long-lived client."""
    from agentmesh.models import EndpointLimits, ModelClient, ModelRequest, ModelSettings, get_model

    url = f"{root}/v1"
    limits = EndpointLimits(max_concurrency=max_concurrency, rpm=rpm, timeout_s=60, max_retries=0)
    inner = get_model(f"openai:bench@{url}", settings=ModelSettings(endpoints={url: limits}))
    starts: list[float] = []
    client = ModelClient(_timed(inner.provider, starts), reference=inner.reference, limits=limits)
    request = ModelRequest.of("ping", max_tokens=1)
    try:
        await asyncio.gather(*(client.complete(request) for _ in range(warmup)))  # connections, first-use costs
        await asyncio.to_thread(_post, f"{root}/reset")
        starts.clear()
        started = time.perf_counter()
        results = await asyncio.gather(*(client.complete(request) for _ in range(n)), return_exceptions=True)
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
    return await _finish(root, label, n, elapsed, sorted(starts), results)


async def drive_bare_sdk(root: str, n: int, *, max_concurrency: int, warmup: int) -> Run:
    """The same load through the bare openai SDK (an asyncio.Semaphore for concurrency): the baseline."""
    from openai import AsyncOpenAI

    sdk = AsyncOpenAI(base_url=f"{root}/v1", api_key="none", max_retries=0)
    gate = asyncio.Semaphore(max_concurrency)
    starts: list[float] = []

    async def one() -> None:
        async with gate:
            starts.append(time.monotonic())
            await sdk.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": "ping"}], max_tokens=1
            )

    try:
        await asyncio.gather(*(one() for _ in range(warmup)))
        await asyncio.to_thread(_post, f"{root}/reset")
        starts.clear()
        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        elapsed = time.perf_counter() - started
    finally:
        await sdk.close()
    return await _finish(root, "bare openai SDK", n, elapsed, sorted(starts), results)


async def _finish(root: str, label: str, n: int, elapsed: float, starts: list[float], results: list[Any]) -> Run:
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"{label}: {len(failures)} failed, first: {failures[0]!r}")
    arrivals = sorted((await asyncio.to_thread(_get, f"{root}/stats"))["arrivals"])
    return Run(label, n, elapsed, starts, arrivals, len(failures))


def max_in_window(times: list[float], window_s: float = 1.0) -> int:
    """Most events in any half-open window [t, t + window_s) (it suffices to start windows at events)."""
    best, j = 0, 0
    for i, t in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < t + window_s:
            j += 1
        best = max(best, j - i)
    return best


def achieved_rate(times: list[float]) -> float:
    """Events per second over a run: (n - 1) intervals over the time from the first to the last."""
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=132)
    delay = args.delay_ms / 1000.0
    capacity = args.slots / delay
    warmup = args.slots * 2
    verdicts: list[tuple[str, bool]] = []
    rpm_requests = list(args.rpm_requests) + [args.rpm_requests[-1]] * (len(args.rpm) - len(args.rpm_requests))
    budget = 2 * (2 * args.requests + sum(rpm_requests) + warmup * (2 + len(args.rpm)))
    with bench_server(delay, args.slots, budget, args.timeout) as root:
        console.print(
            f"server {root}: delay {args.delay_ms:g} ms, {args.slots} slots, capacity {capacity:.1f} req/s; "
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )

        # (a) throughput against the server's capacity
        table = Table(title=f"(a) {args.requests} requests gathered at once, max_concurrency {args.concurrency}")
        for col in ("client", "wall s", "ideal s", "req/s", "of capacity", "server req/s", "failed"):
            table.add_column(col, justify="right")
        ideal_s = math.ceil(args.requests / args.slots) * delay
        runs = [
            await drive(
                root,
                args.requests,
                max_concurrency=args.concurrency,
                rpm=None,
                warmup=warmup,
                label="agentmesh ModelClient",
            ),
            await drive_bare_sdk(root, args.requests, max_concurrency=args.concurrency, warmup=warmup),
        ]
        for run in runs:
            throughput = run.requests / run.elapsed_s
            table.add_row(
                run.label,
                f"{run.elapsed_s:.3f}",
                f"{ideal_s:.3f}",
                f"{throughput:.1f}",
                f"{throughput / capacity:.3f}",
                f"{achieved_rate(run.arrivals):.1f}",
                str(run.failures),
            )
        console.print(table)
        fraction = runs[0].requests / runs[0].elapsed_s / capacity
        verdicts.append(
            (
                f"throughput: {fraction:.3f} of the server's capacity (target >= 0.9)",
                fraction >= 0.9 and runs[0].failures == 0,
            )
        )

        # (b) requests-per-minute pacing
        table = Table(
            title="(b) with an rpm limit: starts = when the client layer let requests go; "
            "arrivals = when the server got them"
        )
        for col in (
            "rpm",
            "limit/s",
            "n",
            "starts/s",
            "of limit",
            "max starts in 1 s",
            "arrivals/s",
            "max arrivals in 1 s",
            "failed",
        ):
            table.add_column(col, justify="right")
        for rpm, n in zip(args.rpm, rpm_requests, strict=True):
            run = await drive(root, n, max_concurrency=args.concurrency, rpm=rpm, warmup=warmup, label=f"rpm {rpm:g}")
            limit = rpm / 60.0
            rate, peak = achieved_rate(run.starts), max_in_window(run.starts)
            allowed = math.floor(limit)  # rpm_burst 1: at most limit x 1 s starts in any 1 s window
            table.add_row(
                f"{rpm:g}",
                f"{limit:g}",
                str(n),
                f"{rate:.2f}",
                f"{rate / limit:.4f}",
                f"{peak} / {allowed}",
                f"{achieved_rate(run.arrivals):.2f}",
                str(max_in_window(run.arrivals)),
                str(run.failures),
            )
            verdicts.append(
                (
                    f"rpm {rpm:g}: achieved {rate:.2f}/s, within 5 % of {limit:g}/s and not above it",
                    0.95 * limit <= rate <= limit and run.failures == 0,
                )
            )
            verdicts.append(
                (f"rpm {rpm:g}: never above in any 1 s window (max {peak} starts, limit {allowed})", peak <= allowed)
            )
        console.print(table)
        console.print(
            "[dim]Arrivals add the HTTP path's own jitter (connection reuse, scheduling) to the starts; the "
            "limiter controls the starts.[/]"
        )
    for text, ok in verdicts:
        console.print(f"[{'green' if ok else 'red'}]{'PASS' if ok else 'FAIL'}[/] {text}")
    return 0 if all(ok for _, ok in verdicts) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--requests", type=int, default=500, help="requests in the throughput run (default 500)")
    p.add_argument("--delay-ms", type=float, default=50.0, help="server delay per request (default 50 ms)")
    p.add_argument("--slots", type=int, default=8, help="server slots (default 8)")
    p.add_argument("--concurrency", type=int, default=16, help="client max_concurrency (default 16)")
    p.add_argument("--rpm", type=float, nargs="+", default=[6000.0, 1200.0], help="rpm limits (default 6000 1200)")
    p.add_argument("--rpm-requests", type=int, nargs="+", default=[500, 200], help="requests per rpm run")
    p.add_argument("--timeout", type=float, default=180.0, help="overall timeout in seconds (default 180)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--max-server-requests", type=int, default=5000, help=argparse.SUPPRESS)
    p.add_argument("--max-server-seconds", type=float, default=300.0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve:
        serve(arguments.delay_ms / 1000.0, arguments.slots, arguments.max_server_requests, arguments.max_server_seconds)
        sys.exit(0)
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), arguments.timeout)))
    except TimeoutError:
        print(f"FAIL bench did not finish within {arguments.timeout:g} s", file=sys.stderr)
        sys.exit(2)
