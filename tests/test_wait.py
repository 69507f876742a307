"""Jobs to the end (issue 5): --wait follows every job, gives completed/job_failed/job_timeout, verifies."""

from __future__ import annotations

import random
from dataclasses import replace

from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.api import HttpApi
from orchestrator.auth import StaticToken
from orchestrator.engine import Engine
from orchestrator.governor import Governor
from orchestrator.plan import JobSettings, Limits, Plan, Rate, RetrySettings, Target
from orchestrator.report import Outcome, TargetOutcome
from orchestrator.simulator import Fleet, Simulator, SimulatorConfig

TOKEN = "MIIwait-test-token"
RETRY = RetrySettings(attempts=4, base_delay=0.01, max_delay=0.05, timeout=5.0)
JOBS = JobSettings(poll_interval=0.02, timeout=5.0, visibility_grace=2.0, wait=True)


def fleet_plan(instances: int, per_instance: int, **jobs: object) -> tuple[Fleet, Plan]:
    fleet = Fleet()
    targets = []
    for i in range(instances):
        for p in range(per_instance):
            pid = proxy_id(i * 10 + p)
            fleet.add_proxy(PROJECT, instance_id(i), pid, "eventual")
            targets.append(Target(PROJECT, instance_id(i), pid, "global"))
    plan = make_plan(targets, retry=RETRY, jobs=replace(JOBS, **jobs), limits=Limits(Rate(500, 1.0), 20, 1))
    return fleet, plan


async def run(sim: Simulator, plan: Plan) -> tuple[list[TargetOutcome], Engine]:
    lines: list[TargetOutcome] = []
    async with HttpApi(sim.url, StaticToken(TOKEN), Governor(plan.limits.rate, 20), timeout=5.0) as api:
        engine = Engine(api, plan, on_outcome=lines.append, rng=random.Random(4))
        await engine.run()
    return lines, engine


def final(lines: list[TargetOutcome]) -> dict[str, TargetOutcome]:
    return {line.proxy_id: line for line in lines}


async def test_every_target_ends_completed_and_verified() -> None:
    """With --wait each changed proxy gets its submitted line, then completed with verified true."""
    fleet, plan = fleet_plan(4, 3)
    async with Simulator(fleet, SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.05)) as sim:
        lines, engine = await run(sim, plan)
        assert {o.outcome for o in final(lines).values()} == {Outcome.COMPLETED}
        assert all(o.verified is True and o.job_id for o in final(lines).values())
        assert [o.outcome for o in lines].count(Outcome.SUBMITTED) == 12
        assert set(sim.fleet.modes().values()) == {"global"}
        # One poll loop per job serves both the chain and --wait: about job_duration / poll_interval polls each.
        assert sim.stats.count(route="get_job") == engine.stats.job_polls
        assert sim.stats.count(route="list_proxies") == 4 + 4  # the first listing and the read-back, per instance


async def test_failed_jobs_are_job_failed_with_their_reason() -> None:
    """A job that ends Failed gives job_failed with the service's fail_reason; the proxy keeps its mode."""
    fleet, plan = fleet_plan(2, 1)
    victim = proxy_id(10)
    config = SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.05, fail_proxies=frozenset({victim}))
    async with Simulator(fleet, config) as sim:
        lines, _ = await run(sim, plan)
    by = final(lines)
    assert by[victim].outcome is Outcome.JOB_FAILED and by[victim].error_code == "job_failed"
    assert by[victim].error_msg and by[victim].verified is False
    assert by[proxy_id(0)].outcome is Outcome.COMPLETED


async def test_a_job_not_visible_at_first_is_still_followed() -> None:
    """Jobs that answer "not found" for their first 0.2 s are tolerated within the grace period."""
    fleet, plan = fleet_plan(2, 2)
    config = SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.05, job_visibility_delay=0.2)
    async with Simulator(fleet, config) as sim:
        lines, _ = await run(sim, plan)
        assert {o.outcome for o in final(lines).values()} == {Outcome.COMPLETED}
        assert sim.stats.count(route="get_job", status=404) > 0


async def test_a_job_that_never_ends_is_job_timeout_not_a_hang() -> None:
    """A job still running at jobs.timeout gives job_timeout."""
    fleet, plan = fleet_plan(1, 1, timeout=0.3)
    async with Simulator(fleet, SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=60.0)) as sim:
        lines, _ = await run(sim, plan)
    only = final(lines)[proxy_id(0)]
    assert only.outcome is Outcome.JOB_TIMEOUT and only.error_code == "job_timeout"


async def test_without_wait_submitted_lines_say_when_the_change_takes_effect() -> None:
    """Without --wait a changed target's line is submitted, with the restart/reconnect note of contract §1."""
    fleet, plan = fleet_plan(1, 1, wait=False)
    async with Simulator(fleet, SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.05)) as sim:
        lines, _ = await run(sim, plan)
    assert [o.outcome for o in lines] == [Outcome.SUBMITTED]
    assert lines[0].note and "restarts or clients reconnect" in lines[0].note
