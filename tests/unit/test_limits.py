"""Process-wide endpoint limits: GCRA pacing, the cross-loop semaphore, and the limiter that combines them."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from agentmesh.models import CallContext, EndpointLimits, ModelClient, ModelRequest, Provider
from agentmesh.models.limits import CrossLoopSemaphore, EndpointLimiter, Pacer, limiter_for
from agentmesh.models.messages import Choice, ProviderResult

# --- Pacer (deterministic: `now` is passed in, far from the real clock where refunds clamp) -----------------------

T0 = time.monotonic() + 10_000.0


def test_pacer_spaces_requests_evenly_with_burst_one() -> None:
    p = Pacer(rate_per_s=10, burst=1)
    waits = [p.reserve(1, now=T0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-9)


def test_pacer_idle_time_does_not_bank_credit_beyond_the_burst() -> None:
    p = Pacer(rate_per_s=10, burst=3)
    assert [p.reserve(1, now=T0) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1], abs=1e-9)
    later = T0 + 100.0  # a long idle period
    assert [p.reserve(1, now=later) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1], abs=1e-9)


def test_pacer_waits_are_measured_from_now() -> None:
    p = Pacer(rate_per_s=2, burst=1)
    assert p.reserve(1, now=T0) == 0.0
    assert p.reserve(1, now=T0 + 0.2) == pytest.approx(0.3)  # next slot at T0 + 0.5
    assert p.reserve(1, now=T0 + 5.0) == 0.0


def test_pacer_lets_a_large_reservation_through_into_debt() -> None:
    p = Pacer(rate_per_s=100, burst=1000)  # 100 tokens/s, a 1000-token bucket
    assert p.reserve(500, now=T0) == 0.0
    assert p.reserve(600, now=T0) == pytest.approx(1.0)  # 1100 > 1000: waits for the 100 missing tokens
    assert p.reserve(5000, now=T0 + 100.0) == pytest.approx(40.0)  # larger than the bucket: waits its share


def test_pacer_refund_gives_back_unused_units() -> None:
    p = Pacer(rate_per_s=1, burst=1)
    assert p.reserve(1, now=T0) == 0.0
    assert p.reserve(1, now=T0) == pytest.approx(1.0)
    p.refund(1)
    assert p.reserve(1, now=T0) == pytest.approx(1.0)  # the refunded slot is handed out again
    p.refund(0)
    p.refund(-5)  # no-ops
    assert p.reserve(1, now=T0) == pytest.approx(2.0)


def test_pacer_refund_never_creates_credit_beyond_the_burst() -> None:
    p = Pacer(rate_per_s=1, burst=1)
    assert p.reserve(1) == 0.0
    p.refund(1000)
    assert p.reserve(1) == 0.0
    assert p.reserve(1) > 0.9  # still one per second afterwards


def test_pacer_charge_makes_later_callers_wait_for_overuse() -> None:
    p = Pacer(rate_per_s=1, burst=1)
    assert p.reserve(1, now=T0) == 0.0
    p.charge(2)
    assert p.reserve(1, now=T0) == pytest.approx(3.0)
    p.charge(0)
    assert p.reserve(1, now=T0) == pytest.approx(4.0)


def test_pacer_postpone_moves_the_schedule_with_a_late_start() -> None:
    p = Pacer(rate_per_s=10, burst=1)
    assert p.reserve(1, now=T0) == 0.0
    p.postpone(0.05)  # that call really started 50 ms late
    assert p.reserve(1, now=T0) == pytest.approx(0.15)
    p.postpone(0)
    p.postpone(-1)  # no-ops
    assert p.reserve(1, now=T0) == pytest.approx(0.25)


def test_pacer_reservations_from_many_threads_never_share_a_slot() -> None:
    p = Pacer(rate_per_s=100, burst=1)
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [p.reserve(1, now=T0) for _ in range(50)]
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([i / 100 for i in range(400)], abs=1e-9)


# --- CrossLoopSemaphore ------------------------------------------------------------------------------------------


async def settle() -> None:
    """Let every task that is ready run up to its next suspension point (deterministic in asyncio)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_semaphore_bounds_holders_and_wakes_on_release() -> None:
    sem = CrossLoopSemaphore(2)
    await sem.acquire()
    await sem.acquire()
    third = asyncio.create_task(sem.acquire())
    await settle()
    assert not third.done()
    sem.release()
    await asyncio.wait_for(third, 5)
    assert third.done() and third.exception() is None


async def test_semaphore_is_fifo_and_a_newcomer_cannot_barge() -> None:
    sem = CrossLoopSemaphore(1)
    await sem.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await sem.acquire()
        order.append(name)

    waiters = [asyncio.create_task(take(n)) for n in ("w1", "w2", "w3")]
    await settle()
    sem.release()  # hands the slot to w1 ...
    newcomer = asyncio.create_task(take("newcomer"))  # ... so this one queues behind w2 and w3
    await settle()
    for _ in range(3):
        sem.release()
        await settle()
    await asyncio.wait_for(asyncio.gather(*waiters, newcomer), 5)
    assert order == ["w1", "w2", "w3", "newcomer"]


async def test_semaphore_cancelled_waiter_leaves_the_queue() -> None:
    sem = CrossLoopSemaphore(1)
    await sem.acquire()
    waiter = asyncio.create_task(sem.acquire())
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    sem.release()
    # The slot went back to the pool, not to the cancelled waiter: the next acquire does not wait.
    again = asyncio.create_task(sem.acquire())
    await asyncio.sleep(0)
    assert again.done()


async def test_semaphore_slot_handed_to_a_waiter_cancelled_at_that_moment_passes_on() -> None:
    sem = CrossLoopSemaphore(1)
    await sem.acquire()
    first = asyncio.create_task(sem.acquire())
    second = asyncio.create_task(sem.acquire())
    await settle()
    sem.release()  # pops `first` and schedules its wake-up ...
    first.cancel()  # ... but it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 5)  # the slot was passed on, not lost
    sem.release()
    probe = asyncio.create_task(sem.acquire())
    await asyncio.sleep(0)
    assert probe.done()  # and exactly one slot exists again
    extra = asyncio.create_task(sem.acquire())
    await settle()
    assert not extra.done()
    extra.cancel()


@pytest.fixture
def other_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in another thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="other-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def barrier(loop: asyncio.AbstractEventLoop) -> None:
    """Block until everything already scheduled on ``loop`` ran up to its next suspension point."""
    for _ in range(3):
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)


async def test_semaphore_hands_slots_across_event_loops(other_loop: asyncio.AbstractEventLoop) -> None:
    sem = CrossLoopSemaphore(1)
    await sem.acquire()  # held by this loop

    there: Future[None] = asyncio.run_coroutine_threadsafe(sem.acquire(), other_loop)
    await asyncio.to_thread(barrier, other_loop)
    assert not there.done()  # the other loop's task is queued
    sem.release()  # released here, woken there
    await asyncio.wait_for(asyncio.wrap_future(there), 10)

    here = asyncio.create_task(sem.acquire())
    await settle()
    assert not here.done()  # now the other loop holds it
    other_loop.call_soon_threadsafe(sem.release)
    await asyncio.wait_for(here, 10)


async def test_semaphore_waiter_cancelled_on_another_loop_frees_its_place(
    other_loop: asyncio.AbstractEventLoop,
) -> None:
    sem = CrossLoopSemaphore(1)
    await sem.acquire()
    there = asyncio.run_coroutine_threadsafe(sem.acquire(), other_loop)
    await asyncio.to_thread(barrier, other_loop)
    there.cancel()
    await asyncio.to_thread(barrier, other_loop)
    assert there.cancelled()
    sem.release()
    probe = asyncio.create_task(sem.acquire())
    await asyncio.sleep(0)
    assert probe.done()


def test_semaphore_bounds_holders_across_two_threads_with_their_own_loops() -> None:
    sem = CrossLoopSemaphore(2)
    lock = threading.Lock()
    holding = 0
    peak = 0
    done = 0

    async def worker() -> None:
        nonlocal holding, peak, done
        for _ in range(30):
            await sem.acquire()
            try:
                with lock:
                    holding += 1
                    peak = max(peak, holding)
                await asyncio.sleep(0.001)
                with lock:
                    holding -= 1
                    done += 1
            finally:
                sem.release()

    async def many() -> None:
        await asyncio.gather(*(worker() for _ in range(3)))

    threads = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert done == 2 * 3 * 30
    assert peak == 2


# --- EndpointLimiter ---------------------------------------------------------------------------------------------


async def test_limiter_bounds_concurrency() -> None:
    limiter = EndpointLimiter("test:conc", EndpointLimits(max_concurrency=3))
    inside = 0
    peak = 0

    async def call() -> None:
        nonlocal inside, peak
        await limiter.admit(0)
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        limiter.done(0, 0)

    await asyncio.gather(*(call() for _ in range(12)))
    assert peak == 3


async def test_limiter_paces_requests_per_minute() -> None:
    limiter = EndpointLimiter("test:rpm", EndpointLimits(rpm=1200, max_concurrency=100))  # one per 50 ms
    admitted: list[float] = []

    async def call() -> None:
        await limiter.admit(0)
        admitted.append(time.monotonic())
        limiter.done(0, 0)

    await asyncio.gather(*(call() for _ in range(6)))
    gaps = [b - a for a, b in itertools.pairwise(admitted)]
    assert len(admitted) == 6
    assert min(gaps) >= 0.05 - 0.001  # never faster than the limit


async def test_limiter_does_not_catch_up_after_a_stalled_event_loop() -> None:
    limiter = EndpointLimiter("test:stall", EndpointLimits(rpm=600, max_concurrency=100))  # one per 100 ms
    admitted: list[float] = []

    async def call() -> None:
        await limiter.admit(0)
        admitted.append(time.monotonic())
        limiter.done(0, 0)

    async def stall() -> None:
        await asyncio.sleep(0.05)
        time.sleep(0.35)  # the loop is blocked: the calls waiting for their turn all become late

    await asyncio.gather(*(call() for _ in range(5)), stall())
    gaps = [b - a for a, b in itertools.pairwise(admitted)]
    # Catching up would start the late calls back to back; each must still wait its 100 ms after the last.
    assert min(gaps) >= 0.1 - 0.001


def test_limiter_paces_calls_from_two_threads_on_one_schedule() -> None:
    limiter = EndpointLimiter("test:rpm-threads", EndpointLimits(rpm=1200, max_concurrency=100))  # 50 ms
    admitted: list[float] = []
    lock = threading.Lock()

    async def calls() -> None:
        async def one() -> None:
            await limiter.admit(0)
            with lock:
                admitted.append(time.monotonic())
            limiter.done(0, 0)

        await asyncio.gather(*(one() for _ in range(3)))

    threads = [threading.Thread(target=asyncio.run, args=(calls(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    admitted.sort()
    assert len(admitted) == 6
    assert min(b - a for a, b in itertools.pairwise(admitted)) >= 0.05 - 0.001


async def test_limiter_gives_back_the_place_of_a_call_cancelled_while_pacing() -> None:
    limiter = EndpointLimiter("test:cancel-refund", EndpointLimits(rpm=60, max_concurrency=10))  # one per second
    await limiter.admit(0)
    limiter.done(0, 0)
    pacing = asyncio.create_task(limiter.admit(0))  # reserved the slot at +1 s
    await settle()
    pacing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pacing
    assert limiter.requests is not None
    assert limiter.requests.reserve(1) < 1.5  # the +1 s place is free again (not +2 s)


def test_limiter_settles_token_reservations_with_real_usage() -> None:
    def fresh() -> EndpointLimiter:
        limiter = EndpointLimiter("test:tpm", EndpointLimits(tpm=60))  # 1 token/s, a 60-token bucket
        assert limiter.tokens is not None
        assert limiter.tokens.reserve(60) == 0.0  # what admit() reserved
        return limiter

    exact, under, over = fresh(), fresh(), fresh()
    exact.done(60, 60)
    under.done(60, 30)  # 30 tokens given back
    over.done(60, 90)  # 30 more than reserved: charged
    assert exact.tokens and under.tokens and over.tokens
    assert 0.0 < exact.tokens.reserve(1) <= 1.0
    assert under.tokens.reserve(1) == 0.0
    assert over.tokens.reserve(1) > 30.0


async def test_limiter_cancelled_while_waiting_for_a_slot_leaks_nothing() -> None:
    limiter = EndpointLimiter("test:cancel-slot", EndpointLimits(max_concurrency=1))
    await limiter.admit(0)
    waiting = asyncio.create_task(limiter.admit(0))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    limiter.done(0, 0)
    probe = asyncio.create_task(limiter.slots.acquire())
    await asyncio.sleep(0)
    assert probe.done()


async def test_limiter_cancelled_while_pacing_releases_its_slot() -> None:
    limiter = EndpointLimiter("test:cancel-pace", EndpointLimits(max_concurrency=1, rpm=1))  # 60 s spacing
    await limiter.admit(0)
    limiter.done(0, 0)
    pacing = asyncio.create_task(limiter.admit(0))  # holds the only slot while it waits ~60 s
    await settle()
    assert not pacing.done()
    pacing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pacing
    probe = asyncio.create_task(limiter.slots.acquire())
    await asyncio.sleep(0)
    assert probe.done()


def test_limiter_for_is_process_wide_per_endpoint_and_limits() -> None:
    a = EndpointLimits(max_concurrency=4)
    first = limiter_for("test:registry", a)
    assert limiter_for("test:registry", EndpointLimits(max_concurrency=4)) is first
    assert limiter_for("test:registry-other", a) is not first
    changed = limiter_for("test:registry", EndpointLimits(max_concurrency=5))
    assert changed is not first and changed.limits.max_concurrency == 5


# --- through ModelClient: two clients, two threads, one endpoint ------------------------------------------------


class ProbeProvider(Provider):
    """Counts how many calls are inside it at once, across threads."""

    name = "probe"
    free = True

    def __init__(self, endpoint: str, state: dict[str, int], lock: threading.Lock) -> None:
        self._endpoint = endpoint
        self.state = state
        self.lock = lock

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def model_name(self) -> str:
        return "probe"

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        with self.lock:
            self.state["inside"] += 1
            self.state["peak"] = max(self.state["peak"], self.state["inside"])
        await asyncio.sleep(0.005)
        with self.lock:
            self.state["inside"] -= 1
            self.state["calls"] += 1
        return ProviderResult(model="probe", choices=[Choice(text="ok")])


def test_clients_on_two_threads_share_the_endpoint_slots() -> None:
    state = {"inside": 0, "peak": 0, "calls": 0}
    lock = threading.Lock()
    limits = EndpointLimits(max_concurrency=2)

    def job() -> None:
        client = ModelClient(ProbeProvider("test:shared-endpoint", state, lock), limits=limits)

        async def run() -> None:
            await asyncio.gather(*(client.complete(ModelRequest.of("q")) for _ in range(20)))

        asyncio.run(run())

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert state["calls"] == 40
    assert state["peak"] == 2  # 2 slots for the endpoint, not 2 per client
