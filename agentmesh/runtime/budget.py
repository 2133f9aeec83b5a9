"""Run-wide budgets (model calls, tokens, cost, wall time) shared by every agent of a run.

Calls are *reserved* before they are made, under a lock, so a parallel team can never overshoot a call budget:
with 3 calls left and 7 agents about to call, exactly 3 get through. Tokens and cost are only known after a
call, so those budgets are checked before each call against what has been spent (a call in flight may take the
total past the limit; no further call starts).
"""

from __future__ import annotations

import threading
import time

from agentmesh._text import counted
from agentmesh.errors import AgentmeshError
from agentmesh.models.messages import ModelResponse
from agentmesh.spec.stop import Budget


class BudgetExhausted(AgentmeshError):
    """A run's budget is spent: no further model call may start. ``reason`` is the stop reason recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetTracker:
    """What a run has spent, against its budgets (any of them may be absent)."""

    def __init__(
        self,
        budgets: list[Budget],
        *,
        started: float | None = None,
        calls: int = 0,
        tokens: int = 0,
        cost_usd: float = 0.0,
        unpriced: str | None = None,
    ) -> None:
        """``calls``, ``tokens`` and ``cost_usd`` are what the run had already spent (a resumed run); ``unpriced``
        the model of a call it made whose cost is unknown (no price in the table)."""
        self.budgets = budgets
        self.started = time.monotonic() if started is None else started
        self.calls = calls
        self.tokens = tokens
        self.cost_usd = cost_usd
        #: a model whose calls have no price: what is spent is unknown, so a cost budget cannot be kept (it counted
        #: such a call $0, and a run on a model without a price made every call under any cost budget)
        self.unpriced = unpriced
        #: in a replay of a run that stopped on its wall-time budget, that stop reason: a replay takes no time, so
        #: the budget is not met again, and the calls the run never made for lack of time read as a changed graph
        self.replayed_wall: str | None = None
        self._ended: str | None = None  # that budget, met in the replay: no further call starts
        self._lock = threading.Lock()

    def reserve_call(self) -> None:
        """Count one more call, or raise :class:`BudgetExhausted` if any budget forbids it."""
        with self._lock:
            reason = self._exhausted()
            if reason is not None:
                raise BudgetExhausted(reason)
            self.calls += 1

    def check_admitted(self) -> None:
        """Raise :class:`BudgetExhausted` if a token, cost or wall-time budget was reached while a reserved call
        waited for its endpoint (a parallel team's calls queue behind the embedded model's one slot, or a server's
        ``max_concurrency``): reserved, they then ran after the budget was spent (a team of five under
        ``--max-seconds 3`` made all five). Its call is already counted, so a call budget holds as it is."""
        with self._lock:
            elapsed = time.monotonic() - self.started
            for b in self.budgets:
                reason = self._reason(b, elapsed, calls=False)  # (a budget's copy per call would cost ~5 µs)
                if reason is not None:
                    raise BudgetExhausted(reason)

    def release_call(self) -> None:
        """A reserved call was not made after all (served from the record, or failed before sending)."""
        with self._lock:
            self.calls -= 1

    def spend(self, response: ModelResponse) -> None:
        with self._lock:
            self.tokens += response.usage.total_tokens
            if response.cost_usd is None:
                self.unpriced = self.unpriced or response.model
            self.cost_usd += response.cost_usd or 0.0

    def overspent(self) -> str | None:
        """What a run spent beyond a token or cost budget, else ``None``.

        Those budgets are checked before each call, so the calls already in flight when one is reached (a parallel
        team's) finish and can take the total past it. A run that then makes no further call reaches its end
        without being stopped; its stop reason must still say it went over (a reason of "every node ran" beside
        290 tokens spent of 100 read as a budget that was kept)."""
        with self._lock:
            for b in self.budgets:
                if b.tokens is not None and self.tokens > b.tokens:
                    return (
                        f"over budget: {self.tokens} tokens spent of {b.tokens} (calls in flight when it was reached)"
                    )
                if b.cost_usd is not None and self.cost_usd > b.cost_usd:
                    return (
                        f"over budget: ${self.cost_usd:.4f} spent of ${b.cost_usd:g} (calls in flight when it was "
                        "reached)"
                    )
                if b.cost_usd is not None and self.unpriced is not None:
                    return (
                        f"over budget, perhaps: ${b.cost_usd:g} could not be kept, model {self.unpriced!r} has no "
                        "price (give it one under prices: in .agentmesh/config.yaml)"
                    )
        return None

    def exhausted(self) -> str | None:
        """The stop reason if no further call may start, else ``None``."""
        with self._lock:
            return self._exhausted()

    def reached(self, budget: Budget) -> str | None:
        """The stop reason if what the run has spent reaches ``budget``, which need not be one of the run's own:
        a node's stop policy (``stop: {budget: {calls: 6}}`` on a ``rounds`` node) ends that node once the run has
        spent so much, while the run's budgets (:meth:`exhausted`) refuse every further call."""
        with self._lock:
            return self._reason(budget, time.monotonic() - self.started)

    def end_replayed_wall(self) -> str | None:
        """In a replay, the recorded wall-time stop (:attr:`replayed_wall`), from now on met: the run stopped
        here, and every later check says so, as the run's own tracker said after its time ran out."""
        with self._lock:
            self._ended = self.replayed_wall
            return self._ended

    def _exhausted(self) -> str | None:
        if self._ended is not None:
            return self._ended
        elapsed = time.monotonic() - self.started
        return next((r for r in (self._reason(b, elapsed) for b in self.budgets) if r is not None), None)

    def _reason(self, b: Budget, elapsed: float, *, calls: bool = True) -> str | None:
        if calls and b.calls is not None and self.calls >= b.calls:
            # (more only under a node's budget, checked after a parallel layer: the run's refuse the next call)
            return f"budget: {counted(b.calls, 'model call')}" + (
                f" (spent {self.calls})" if self.calls > b.calls else ""
            )
        if b.tokens is not None and self.tokens >= b.tokens:
            return f"budget: {counted(b.tokens, 'token')} (spent {self.tokens})"
        if b.cost_usd is not None and self.cost_usd >= b.cost_usd:
            return f"budget: ${b.cost_usd:g} (spent ${self.cost_usd:.4f})"
        if b.cost_usd is not None and self.unpriced is not None:
            return (
                f"budget: ${b.cost_usd:g} cannot be kept: model {self.unpriced!r} has no price, so what its calls "
                "cost is unknown (give it one under prices: in .agentmesh/config.yaml)"
            )
        if b.wall_s is not None and elapsed >= b.wall_s:
            return f"budget: {b.wall_s:g} s wall time"
        return None
