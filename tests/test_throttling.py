"""Throttling (issue 5): one governor for every call, a 429 pauses the whole run, adaptive rate, the retry
budget, and the simulator's account-level token bucket."""

from __future__ import annotations

import random
from dataclasses import replace

from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.api import HttpApi
from orchestrator.auth import StaticToken
from orchestrator.engine import Engine
from orchestrator.governor import AdaptiveRate, Governor
from orchestrator.plan import JobSettings, Limits, Rate, RetrySettings, Target
from orchestrator.report import Outcome, TargetOutcome
from orchestrator.retrying import Failure, RetryBudget
from orchestrator.simulator import Faults, Fleet, Simulator, SimulatorConfig
from orchestrator.simulator.throttle import AccountBuckets

TOKEN = "MIIthrottle-test-token"


def test_a_429_cuts_the_rate_once_per_second_and_pauses_everyone() -> None:
    """Each 429 extends the shared pause; the effective rate drops ×0.7 at most once a second."""
    pacing = AdaptiveRate(100.0)
    pacing.throttled(10.0, pause=2.0)
    pacing.throttled(10.5, pause=1.0)  # a burst of 429s from concurrent calls: one cut
    assert pacing.effective == 70.0 and pacing.paused_until == 12.0 and pacing.throttles == 2
    pacing.throttled(11.2, pause=3.0)
    assert pacing.effective == 49.0 and pacing.paused_until == 14.2


def test_sustained_success_grows_the_rate_back_never_above_the_ceiling() -> None:
    """Every 5 s without a 429 the rate grows by 10% of the configured one, up to it and no further."""
    pacing = AdaptiveRate(100.0)
    pacing.throttled(0.0, pause=0.0)
    pacing.throttled(1.0, pause=0.0)
    assert round(pacing.effective, 6) == 49.0
    for second in range(2, 60):
        pacing.succeeded(float(second))
    assert pacing.effective == 100.0
    assert [rate for _, rate in pacing.trace][:3] == [70.0, 49.0, 59.0]
    assert max(rate for _, rate in pacing.trace) == 100.0


def test_without_adaptive_the_rate_stays_but_the_pause_holds() -> None:
    """limits.adaptive: false keeps the configured rate; a 429 still pauses every dispatch."""
    pacing = AdaptiveRate(100.0, adaptive=False)
    pacing.throttled(5.0, pause=2.0)
    assert pacing.effective == 100.0 and pacing.paused_until == 7.0 and pacing.trace == []


def test_retry_budget_runs_dry_and_refills_on_success() -> None:
    """Retries cost 5 tokens (timeouts 10); an empty budget denies retries; successes refill one token."""
    budget = RetryBudget(capacity=20, tokens=20)
    assert budget.spend(Failure(status=500)) and budget.spend(Failure(transport="timeout"))
    assert budget.tokens == 5 and budget.spend(Failure(status=503)) and not budget.spend(Failure(status=503))
    assert budget.denied == 1
    for _ in range(30):
        budget.refund()
    assert budget.tokens == 20 and budget.state() == {"tokens": 20, "capacity": 20, "denied": 1}


def test_account_bucket_allows_the_burst_then_the_rate() -> None:
    """The simulator's bucket lets `burst` calls through at once, then one per 1/rate seconds."""
    buckets = AccountBuckets(rate=10.0, burst=3.0)
    assert [buckets.take("p", 0.0) for _ in range(3)] == [None, None, None]
    wait = buckets.take("p", 0.0)
    assert wait is not None and abs(wait - 0.1) < 1e-9
    assert buckets.take("p", 0.1) is None
    assert buckets.take("other", 0.1) is None  # accounts are independent


async def test_a_ceiling_below_the_plan_rate_adapts_with_few_429s() -> None:
    """Plan 60/s against an account ceiling of 20/s: the run adapts, every target is changed once, and the
    429s stay a small fixed number instead of growing with the targets."""
    fleet = Fleet()
    targets = []
    for n in range(60):
        fleet.add_proxy(PROJECT, instance_id(n), proxy_id(n), "eventual")
        targets.append(Target(PROJECT, instance_id(n), proxy_id(n), "session"))
    plan = make_plan(
        targets,
        limits=Limits(Rate(60, 1.0), 20, 1),
        retry=RetrySettings(attempts=8, base_delay=0.05, max_delay=1.0, timeout=5.0),
        jobs=JobSettings(poll_interval=0.05, timeout=10.0, visibility_grace=2.0),
    )
    config = SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.0, account_rate=20.0, account_burst=20.0)
    outcomes: list[TargetOutcome] = []
    async with Simulator(fleet, config) as sim:
        governor = Governor(plan.limits.rate, plan.limits.concurrency)
        async with HttpApi(sim.url, StaticToken(TOKEN), governor, timeout=5.0) as api:
            engine = Engine(api, plan, on_outcome=outcomes.append, rng=random.Random(2))
            await engine.run()
        assert {o.outcome for o in outcomes} == {Outcome.SUBMITTED}
        assert set(sim.stats.jobs_by_proxy.values()) == {1}
        throttled = sim.stats.count(status=429)
        assert 0 < throttled <= 12
        assert governor.pacing.effective < 60.0 and governor.pacing.trace


async def test_throttling_pauses_every_worker_not_only_the_throttled_one() -> None:
    """After a 429 with Retry-After: 1, no request at all reaches the service for a second."""
    fleet = Fleet()
    targets = []
    for n in range(30):
        fleet.add_proxy(PROJECT, instance_id(n), proxy_id(n), "eventual")
        targets.append(Target(PROJECT, instance_id(n), proxy_id(n), "session"))
    plan = make_plan(
        targets,
        limits=Limits(Rate(100, 1.0), 10, 1, adaptive=False),
        retry=RetrySettings(attempts=5, base_delay=0.01, max_delay=0.05, timeout=5.0),
    )
    config = SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.0)
    async with Simulator(fleet, config) as sim:
        sim.set_faults(Faults(throttle_429=0.0, seed=1))
        governor = Governor(plan.limits.rate, plan.limits.concurrency, adaptive=False)
        async with HttpApi(sim.url, StaticToken(TOKEN), governor, timeout=5.0) as api:
            engine = Engine(api, plan, on_outcome=lambda o: None, rng=random.Random(2))
            sim.set_config(faults=Faults(throttle_429=0.15, retry_after=1.0, seed=3))
            await engine.run()
        records = sim.stats.requests
        for record in records:
            if record.status == 429:
                # Calls already on the wire arrive within milliseconds; nothing new is sent for the second.
                assert [r for r in records if record.at + 0.05 < r.at < record.at + 0.95] == []
                break
        else:
            raise AssertionError("no 429 was injected")
    assert replace(Limits(), adaptive=False).adaptive is False


def test_steady_throttling_never_stops_a_run() -> None:
    """However many 429s come, the effective rate stays at or above a tenth of the configured one."""
    pacing = AdaptiveRate(200.0)
    for second in range(100):
        pacing.throttled(float(second), pause=1.0)
    assert pacing.effective == 20.0


def test_throttled_retries_cost_no_retry_budget() -> None:
    """A 429 retry is paced by the governor's pause, so it does not spend the retry budget."""
    budget = RetryBudget(capacity=5, tokens=5)
    assert all(budget.spend(Failure(status=429)) for _ in range(100))
    assert budget.tokens == 5 and budget.denied == 0
