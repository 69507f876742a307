"""The run's stop, and the failure budget that can pull it.

A stop starts nothing new: targets not yet started settle as `not_started`. The first reason wins, and its kind
decides the exit code (run.py). Three things stop a run from inside: credentials refused for good (the Caller
reports them), a spent failure budget, and whoever calls `Engine.stop` (the window's cutoff, a signal).

The failure budget (budget.py decides) is enforced here: a lane waits for the budget's leave before it starts a
change, and reports how the change settled. A class of its own, not a part of Engine: the stop is one piece of
state (an event, its reason and kind) that the engine, the Caller and the JobWatcher all read, and the budget's
gate must wake on a stop, so the two live together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from .budget import FailureBudget
from .report import Outcome

# Why a run stopped early: it decides the exit code (run.py).
StopKind = Literal["requested", "auth", "budget", "window", "signal"]
BUDGET_FAILURES = frozenset({Outcome.FAILED, Outcome.UNKNOWN})  # what the failure budget counts
# Appended to the budget's stop reason: the report's `failed` count also holds targets failed with nothing sent.
BUDGET_COUNTS = (
    "; it counts changes sent that failed or whose outcome is unknown, not targets failed before anything was "
    "sent (listing_failed, running_jobs_unknown, proxy_not_found)"
)


class Stopping:
    def __init__(self, budget: FailureBudget | None, on_stop: Callable[[], None]) -> None:
        self._budget = budget
        self._on_stop = on_stop  # e.g. close the governor: calls still waiting for their turn are not sent
        self._budget_changed = asyncio.Condition()
        self._changes_in_flight = 0
        self._wakers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        # A stop reason says why (the report summary shows it as "stopped: <reason>"), never "stopped: ..." itself.
        self.reason: str | None = None
        self.kind: StopKind | None = None
        self.auth_failure: str | None = None  # set when the credentials were refused: the run stops

    def stop(self, reason: str, kind: StopKind = "requested") -> None:
        """Start nothing new; targets not yet started settle as `not_started`. The first reason wins."""
        if not self._stopping.is_set():
            self.reason = reason
            self.kind = kind
            self._stopping.set()
            self._on_stop()
            if self._budget is not None:  # lanes waiting for the budget must see the stop
                self._wakers.add(task := asyncio.get_running_loop().create_task(self._wake_budget_waiters()))
                task.add_done_callback(self._wakers.discard)

    def is_set(self) -> bool:
        return self._stopping.is_set()

    def authentication_failed(self, detail: str) -> None:
        """The Caller saw credentials refused for good: stop the run (nothing more is sent)."""
        if self.auth_failure is None:
            self.auth_failure = detail
            self.stop(f"authentication failed ({detail})", "auth")

    async def _wake_budget_waiters(self) -> None:
        async with self._budget_changed:
            self._budget_changed.notify_all()

    # --- the failure budget ---------------------------------------------------------------------------------

    async def budget_allows_start(self) -> bool:
        """Wait until the budget lets one more change start (True), or the run stops (False).

        The check and the count of changes in flight happen with no await between them, so the budget can
        never be overshot however many lanes wait here (see budget.py).
        """
        if self._budget is None:
            return True
        async with self._budget_changed:
            while not self._stopping.is_set():
                if self._budget.exhausted:
                    self._stop_for_budget()
                    break
                if self._budget.may_start(self._changes_in_flight):
                    self._changes_in_flight += 1
                    return True
                await self._budget_changed.wait()
            self._budget_changed.notify_all()
            return False

    async def budget_settled(self, failed: bool) -> None:
        """One change that `budget_allows_start` let start has settled; `failed`: the budget counts it."""
        if self._budget is None:
            return
        async with self._budget_changed:
            self._changes_in_flight -= 1
            self._budget.record(failed)
            if self._budget.exhausted:
                self._stop_for_budget()
            self._budget_changed.notify_all()

    def _stop_for_budget(self) -> None:
        assert self._budget is not None
        self.stop((self._budget.reason or "the failure budget is spent") + BUDGET_COUNTS, "budget")
