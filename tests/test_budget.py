"""The failure budget: its size, the never-overshoot start rule, min_sample's rate check, under concurrency."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.budget import FailureBudget
from orchestrator.plan import Percent, StopSettings


@pytest.mark.parametrize(
    ("limit", "total", "allowed"),
    [
        (3, 200, 3),
        (500, 20, 500),
        (Percent(3), 200, 6),
        (Percent(3), 150, 4),  # 4.5 rounded down: never more than 3%
        (Percent(3), 20, 1),  # 0.6, but at least one failure must be possible or nothing could start
        (Percent(0.1), 1000, 1),  # exact decimal arithmetic: 0.1% of 1000 is 1, not 0.999...
        (Percent(7), 100, 7),
        (Percent(100), 7, 7),
    ],
)
def test_allowed_failures(limit: int | Percent, total: int, allowed: int) -> None:
    """N allows N failures; P% allows floor(P% of the targets), at least 1."""
    assert FailureBudget(StopSettings(limit), total).allowed_failures == allowed


def test_no_budget_never_stops_anything() -> None:
    """Without a stop section every target may start and the budget is never exhausted."""
    budget = FailureBudget(None, 10)
    for _ in range(10):
        budget.record(failed=True)
    assert budget.allowed_failures is None and budget.remaining is None
    assert budget.may_start(10**6) and not budget.exhausted and budget.reason is None


def test_in_flight_targets_never_exceed_the_failures_still_allowed() -> None:
    """With 3 allowed, a 4th target may not start while 3 run; after one failure only 2 may run."""
    budget = FailureBudget(StopSettings(3), 50)
    assert [budget.may_start(n) for n in range(5)] == [True, True, True, False, False]
    budget.record(failed=True)
    assert [budget.may_start(n) for n in range(4)] == [True, True, False, False]
    budget.record(failed=False)  # a success frees a slot but does not widen the budget
    assert [budget.may_start(n) for n in range(4)] == [True, True, False, False]


def test_reaching_the_budget_exhausts_it_with_a_reason() -> None:
    """The third failure of three allowed exhausts the budget and nothing may start, in flight or not."""
    budget = FailureBudget(StopSettings(Percent(1.5)), 200)
    for failed in (True, False, True, True):
        assert not budget.exhausted
        budget.record(failed)
    assert budget.exhausted and not budget.may_start(0)
    assert budget.reason == (
        "failure budget spent: 3 failures, 3 allowed by stop.max_failures 1.5% (1.5% of 200 targets)"
    )


def test_an_absolute_budget_names_its_limit() -> None:
    """The reason of an absolute budget names the number."""
    budget = FailureBudget(StopSettings(1), 9)
    budget.record(failed=True)
    assert budget.reason == "failure budget spent: 1 failures, 1 allowed by stop.max_failures 1"


def test_the_rate_is_not_judged_before_min_sample() -> None:
    """2 failures among the first 3 settled do not stop a 10% budget with min_sample 10 (the cap is 10)."""
    budget = FailureBudget(StopSettings(Percent(10), min_sample=10), 100)
    for failed in (True, True, False):
        budget.record(failed)
    assert not budget.exhausted and budget.may_start(0)


def test_after_min_sample_a_rate_above_the_percent_stops() -> None:
    """Once 10 settled, 2 failures (20%) exceed 10% and exhaust the budget although the cap of 10 is far."""
    budget = FailureBudget(StopSettings(Percent(10), min_sample=10), 100)
    for failed in [True, True] + [False] * 7:
        budget.record(failed)
    assert not budget.exhausted  # 9 settled: below the sample
    budget.record(failed=False)
    assert budget.exhausted and not budget.may_start(0)
    assert budget.reason == (
        "failure rate 2/10 (20%) is above stop.max_failures 10% after 10 settled targets (min_sample 10)"
    )


def test_a_rate_equal_to_the_percent_does_not_stop() -> None:
    """1 failure in 10 settled is exactly 10%: allowed, not above."""
    budget = FailureBudget(StopSettings(Percent(10), min_sample=10), 100)
    for failed in [True] + [False] * 9:
        budget.record(failed)
    assert not budget.exhausted


def test_without_min_sample_a_percent_is_only_a_cap() -> None:
    """min_sample 0: a first failure (100% of one settled) does not stop a 10%-of-100 budget."""
    budget = FailureBudget(StopSettings(Percent(10)), 100)
    budget.record(failed=True)
    assert not budget.exhausted and budget.remaining == 9


def test_the_repr_shows_the_counts() -> None:
    """The repr names allowed failures, failures, settled and total."""
    budget = FailureBudget(StopSettings(2), 5)
    budget.record(failed=True)
    assert repr(budget) == "FailureBudget(allowed=2, failures=1, settled=1, total=5)"


# --- a worker pool that follows the rule ------------------------------------------------------------------
@dataclass
class PoolResult:
    failures: int
    settled: int
    not_started: int
    max_in_flight: int
    max_failures_seen: int  # the highest failure count at any moment


async def run_pool(budget: FailureBudget, outcomes: list[bool], workers: int, rng: random.Random) -> PoolResult:
    """Workers take targets in order; each asks may_start under a condition, and waits for a settlement if told no."""
    pending = deque(range(len(outcomes)))
    condition = asyncio.Condition()
    in_flight = max_in_flight = max_failures_seen = 0

    async def worker() -> None:
        nonlocal in_flight, max_in_flight, max_failures_seen
        while True:
            async with condition:
                while pending and not budget.exhausted and not budget.may_start(in_flight):
                    await condition.wait()
                if not pending or budget.exhausted:
                    return
                index = pending.popleft()
                in_flight += 1  # counted in flight with no await since may_start said yes
                max_in_flight = max(max_in_flight, in_flight)
            for _ in range(rng.randint(0, 5)):  # the "call" takes a random number of loop turns
                await asyncio.sleep(0)
            async with condition:
                in_flight -= 1
                budget.record(outcomes[index])
                max_failures_seen = max(max_failures_seen, budget.failures)
                condition.notify_all()

    await asyncio.gather(*(worker() for _ in range(workers)))
    return PoolResult(budget.failures, budget.settled, len(pending), max_in_flight, max_failures_seen)


async def test_a_budget_of_3_under_50_workers_where_everything_fails_stops_at_exactly_3() -> None:
    """Budget 3, 50 concurrent workers, 200 targets that all fail: exactly 3 failures, never more than 3 in flight."""
    budget = FailureBudget(StopSettings(3), 200)
    result = await run_pool(budget, [True] * 200, workers=50, rng=random.Random(4))
    assert result == PoolResult(failures=3, settled=3, not_started=197, max_in_flight=3, max_failures_seen=3)
    assert budget.exhausted


async def test_a_percent_budget_under_50_workers_stops_at_exactly_its_size() -> None:
    """3% of 200 under 50 workers where everything fails: exactly 6 failures."""
    budget = FailureBudget(StopSettings(Percent(3)), 200)
    result = await run_pool(budget, [True] * 200, workers=50, rng=random.Random(5))
    assert (result.failures, result.settled, result.not_started) == (6, 6, 194)


async def test_without_failures_the_pool_runs_everything_at_the_budgets_width() -> None:
    """With no failure all 200 targets run, never more than the budget (5) at once."""
    budget = FailureBudget(StopSettings(5), 200)
    result = await run_pool(budget, [False] * 200, workers=50, rng=random.Random(6))
    assert (result.settled, result.not_started, result.max_in_flight) == (200, 0, 5)


async def test_without_a_budget_the_pool_uses_every_worker() -> None:
    """No stop section: all 50 workers run at once at some point and every target settles."""
    result = await run_pool(FailureBudget(None, 200), [True] * 200, workers=50, rng=random.Random(7))
    assert (result.settled, result.max_in_flight) == (200, 50)


@settings(max_examples=150, deadline=None)
@given(
    outcomes=st.lists(st.booleans(), min_size=1, max_size=120),
    limit=st.one_of(st.integers(1, 20), st.integers(1, 100).map(Percent)),
    min_sample=st.integers(0, 30),
    workers=st.integers(1, 60),
    seed=st.integers(0, 2**32),
)
def test_failures_never_exceed_the_budget_whatever_the_interleaving(
    outcomes: list[bool], limit: int | Percent, min_sample: int, workers: int, seed: int
) -> None:
    """For any outcomes, budget, worker count and timing: failures never exceed the budget, and the run ends
    either with every target settled or with the budget exhausted."""
    stop = StopSettings(limit, min_sample if isinstance(limit, Percent) else 0)
    budget = FailureBudget(stop, len(outcomes))
    result = asyncio.run(run_pool(budget, outcomes, workers, random.Random(seed)))
    assert budget.allowed_failures is not None
    assert result.max_failures_seen <= budget.allowed_failures
    assert result.max_in_flight <= min(workers, budget.allowed_failures)
    assert result.not_started == 0 or budget.exhausted
    assert result.settled + result.not_started == len(outcomes)


@given(
    limit=st.one_of(st.integers(1, 20), st.integers(1, 100).map(Percent)),
    min_sample=st.integers(0, 30),
    outcomes=st.lists(st.booleans(), max_size=60),
)
def test_may_start_with_nothing_in_flight_unless_exhausted(
    limit: int | Percent, min_sample: int, outcomes: list[bool]
) -> None:
    """Liveness: with nothing in flight a target may start exactly when the budget is not exhausted."""
    budget = FailureBudget(StopSettings(limit, min_sample if isinstance(limit, Percent) else 0), 60)
    for failed in outcomes:
        assert budget.may_start(0) is not budget.exhausted
        budget.record(failed)
    assert budget.may_start(0) is not budget.exhausted
