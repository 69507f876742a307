"""The engine and the real HTTP edge against the simulator over loopback: the whole apply path, no fakes."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.api import HttpApi
from orchestrator.auth import StaticToken
from orchestrator.engine import Engine
from orchestrator.governor import Governor
from orchestrator.plan import JobSettings, Limits, Plan, Rate, RetrySettings, Target
from orchestrator.report import Outcome, TargetOutcome
from orchestrator.simulator import Faults, Fleet, Simulator, SimulatorConfig

TOKEN = "MIIsimulated-token-for-tests"
FAST_RETRY = RetrySettings(attempts=6, base_delay=0.01, max_delay=0.05, timeout=2.0)
FAST_JOBS = JobSettings(poll_interval=0.02, timeout=10.0, visibility_grace=2.0)


def fleet_of(instances: int, proxies: int, mode: str = "eventual") -> tuple[Fleet, list[Target]]:
    fleet = Fleet()
    targets = []
    for i in range(instances):
        for p in range(proxies):
            pid = proxy_id(i * 100 + p)
            fleet.add_proxy(PROJECT, instance_id(i), pid, mode)
            targets.append(Target(PROJECT, instance_id(i), pid, "session"))
    return fleet, targets


async def apply(sim: Simulator, plan: Plan, *, dry_run: bool = False) -> tuple[list[TargetOutcome], Engine, HttpApi]:
    outcomes: list[TargetOutcome] = []
    governor = Governor(plan.limits.rate, plan.limits.concurrency)
    async with HttpApi(sim.url, StaticToken(TOKEN), governor, timeout=plan.retry.timeout) as api:
        engine = Engine(api, plan, on_outcome=outcomes.append, dry_run=dry_run, rng=random.Random(3))
        await engine.run()
    return outcomes, engine, api


def config(**changes: object) -> SimulatorConfig:
    return replace(SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.05), **changes)  # type: ignore[arg-type]


async def test_every_target_changes_exactly_once() -> None:
    """A clean run submits one PUT per proxy, records every job id, and the fleet ends at its goal."""
    fleet, targets = fleet_of(6, 3)
    plan = make_plan(targets, retry=FAST_RETRY, jobs=FAST_JOBS, limits=Limits(Rate(500, 1.0), 8, 1))
    async with Simulator(fleet, config()) as sim:
        outcomes, _, api = await apply(sim, plan)
        await_all = [sim.fleet.mode(PROJECT, t.instance_id, t.proxy_id) for t in targets]
        assert {o.outcome for o in outcomes} == {Outcome.SUBMITTED}
        assert len({o.job_id for o in outcomes}) == 18
        assert all(n == 1 for n in sim.stats.puts_by_proxy.values()) and len(sim.stats.puts_by_proxy) == 18
        assert sim.stats.count(route="list_proxies") == 6
        assert api.wire.by_method.get("PUT") == 18
    # Jobs of the last proxy on each instance may still be running when the run ends; the others are done.
    assert await_all.count("session") >= 12


async def test_rate_is_a_ceiling_from_the_first_request() -> None:
    """At 20/s the simulator never sees more than 20 requests in any 1 s window, start-up included."""
    fleet, targets = fleet_of(30, 1)
    plan = make_plan(targets, retry=FAST_RETRY, jobs=FAST_JOBS, limits=Limits(Rate(20, 1.0), 30, 1))
    async with Simulator(fleet, config()) as sim:
        await apply(sim, plan)
        # 30 listings + 30 PUTs + the 2 running-jobs checks (Pending, Running) of the start
        assert sim.stats.count() == 62 and sim.stats.count(route="list_jobs") == 2
        assert sim.stats.max_in_window(1.0) <= 20


async def test_server_errors_are_retried_until_success() -> None:
    """With 40% injected 500s every target still ends submitted, after retries, each changed once."""
    fleet, targets = fleet_of(10, 1)
    plan = make_plan(targets, retry=replace(FAST_RETRY, attempts=20), jobs=FAST_JOBS)
    async with Simulator(fleet, config(faults=Faults(error_500=0.4, seed=5))) as sim:
        outcomes, engine, _ = await apply(sim, plan)
        assert {o.outcome for o in outcomes} == {Outcome.SUBMITTED}
        assert engine.stats.retries > 0 and sim.stats.count(status=500) > 0
        assert max(o.attempts for o in outcomes) > 1
        assert set(sim.stats.jobs_by_proxy.values()) == {1}


async def test_bad_request_is_not_retried() -> None:
    """A proxy the service does not know fails once with the service's error, never retried."""
    fleet, _ = fleet_of(1, 1)
    ghost = Target(PROJECT, instance_id(0), proxy_id(99), "session")
    async with Simulator(fleet, config()) as sim:
        # The PUT itself, sent directly: the service's answer for a proxy it does not know.
        async with HttpApi(sim.url, StaticToken(TOKEN), Governor(Rate(100, 1.0), 2), timeout=2.0) as api:
            reply = await api.change_consistency(PROJECT, ghost.instance_id, ghost.proxy_id, "session")
        assert reply.status == 400 and reply.error_code == "DBS.201028"
        outcomes, _, _ = await apply(sim, make_plan([ghost], retry=FAST_RETRY, jobs=FAST_JOBS))
        assert outcomes[0].outcome is Outcome.FAILED and outcomes[0].error_code == "proxy_not_found"
        assert sim.stats.count(route="put_consistency") == 1  # only the direct probe above


async def test_same_instance_changes_are_serialized_by_job() -> None:
    """On one instance, each PUT arrives only after the previous job completed: the service never says 409."""
    fleet, targets = fleet_of(1, 4)
    plan = make_plan(targets, retry=FAST_RETRY, jobs=FAST_JOBS)
    async with Simulator(fleet, config(job_duration=0.1)) as sim:
        outcomes, engine, _ = await apply(sim, plan)
        assert {o.outcome for o in outcomes} == {Outcome.SUBMITTED}
        assert sim.stats.count(status=409) == 0
        assert engine.stats.job_polls >= 3
        puts = [r.at for r in sim.stats.requests if r.route == "put_consistency"]
        assert all(b - a >= 0.1 for a, b in itertools.pairwise(puts))


async def test_lost_answers_never_duplicate_a_change() -> None:
    """With every PUT's answer dropped after the change is applied, each proxy still gets exactly one job."""
    fleet, targets = fleet_of(5, 1)
    plan = make_plan(targets, retry=FAST_RETRY, jobs=FAST_JOBS)
    async with Simulator(fleet, config(job_duration=0.0, faults=Faults(drop_after=1.0, seed=1))) as sim:
        outcomes, _, api = await apply(sim, plan)
        assert {o.outcome for o in outcomes} == {Outcome.SUBMITTED}
        assert all(o.job_id is None and o.note for o in outcomes)
        assert set(sim.stats.jobs_by_proxy.values()) == {1}
        assert set(sim.stats.puts_by_proxy.values()) == {1}  # aiohttp's silent re-send is off
        assert all(o.wire_attempts == 1 for o in outcomes)
        assert api.wire.by_method["PUT"] == 5


async def test_lost_answer_while_the_job_still_runs_waits_for_it_and_never_duplicates() -> None:
    """If a lost PUT's job is still running, the engine waits for the instance's running jobs before reading the
    listing again: each proxy ends submitted after exactly one PUT and one job."""
    fleet, targets = fleet_of(3, 1)
    plan = make_plan(targets, retry=replace(FAST_RETRY, attempts=4), jobs=FAST_JOBS)
    async with Simulator(fleet, config(job_duration=0.5, faults=Faults(drop_after=1.0, seed=2))) as sim:
        outcomes, _, _ = await apply(sim, plan)
        assert {o.outcome for o in outcomes} == {Outcome.SUBMITTED}
        assert all(o.attempts == 1 and o.job_id is None and o.note for o in outcomes)
        assert set(sim.stats.jobs_by_proxy.values()) == {1}
        assert sim.stats.count(route="put_consistency") == 3


async def test_dry_run_against_the_simulator_sends_no_put() -> None:
    """A dry run reads every instance once and sends no PUT."""
    fleet, targets = fleet_of(4, 2)
    async with Simulator(fleet, config()) as sim:
        outcomes, _, _ = await apply(sim, make_plan(targets), dry_run=True)
        assert {o.outcome for o in outcomes} == {Outcome.WOULD_CHANGE}
        assert sim.stats.count(route="put_consistency") == 0 and sim.stats.count(route="list_proxies") == 4


async def test_wrong_token_costs_one_request() -> None:
    """A token the gateway rejects (401) is sent once (the start's running-jobs check); nothing else is sent
    and every target is not_started."""
    fleet, targets = fleet_of(5, 1)
    plan = make_plan(targets, retry=FAST_RETRY, jobs=FAST_JOBS)
    async with Simulator(fleet, config(tokens=frozenset({"another"}))) as sim:
        outcomes, engine, _ = await apply(sim, plan)
        assert [o.outcome for o in outcomes] == [Outcome.NOT_STARTED] * 5
        assert sim.stats.count() == 1 and sim.stats.count(status=401) == 1
        assert engine.auth_failure and "APIGW.0301" in engine.auth_failure
