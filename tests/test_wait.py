"""Jobs to the end (issue 5): --wait follows every job, gives completed/job_failed/job_timeout, verifies."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.api import HttpApi
from orchestrator.auth import StaticToken
from orchestrator.budget import FailureBudget
from orchestrator.connect import Connection
from orchestrator.engine import Engine
from orchestrator.errors import ExitCode
from orchestrator.governor import Governor
from orchestrator.journal import read_journal
from orchestrator.plan import JobSettings, Limits, Plan, Rate, RetrySettings, StopSettings, Target
from orchestrator.preview import Action, Step
from orchestrator.report import Outcome, TargetOutcome
from orchestrator.run import RunOptions, RunResult, execute
from orchestrator.simulator import Fleet, Simulator, SimulatorConfig
from orchestrator.summary import journal_for_summary, summarize
from orchestrator.summarytext import render_table

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


# --- a run stopped while its jobs are followed ------------------------------------------------------------


class JobClock:
    """The simulator's job clock, moved by hand: jobs stay Running until the test lets them end."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def expiring_token_sim(fleet: Fleet, clock: JobClock) -> Simulator:
    return Simulator(fleet, SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=10.0), clock=clock)


def expire_after_submitted(sim: Simulator, count: int, lines: list[TargetOutcome]) -> Callable[[TargetOutcome], None]:
    """An on_outcome that records each line and, at the `count`-th submitted one, expires the static token."""

    def settled(outcome: TargetOutcome) -> None:
        lines.append(outcome)
        if outcome.outcome is Outcome.SUBMITTED and [o.outcome for o in lines].count(Outcome.SUBMITTED) == count:
            sim.set_config(expired_tokens=frozenset({TOKEN}))  # 401 APIGW.0307 from now on; cannot be refreshed

    return settled


async def test_a_static_token_expiring_while_jobs_are_followed_leaves_them_submitted(tmp_path: Path) -> None:
    """A static token expiring during --wait stops the run; the targets whose PUT succeeded stay `submitted`
    with their job id and a note (their jobs were not followed to the end), never `unknown`; exit 3."""
    fleet, plan = fleet_plan(3, 2)
    report = tmp_path / "r.jsonl"
    lines: list[TargetOutcome] = []
    async with expiring_token_sim(fleet, JobClock()) as sim:
        options = RunOptions(command="apply", wait=True, report_path=str(report))
        connection = Connection(sim.url, StaticToken(TOKEN))
        result = await execute(plan, connection, options, on_outcome=expire_after_submitted(sim, 3, lines))
    latest = final(lines)
    assert result.stop_kind == "auth" and result.exit_code == ExitCode.FAILED_TARGETS
    assert sorted(o.outcome.value for o in latest.values()) == ["not_started"] * 3 + ["submitted"] * 3
    for line in (o for o in latest.values() if o.outcome is Outcome.SUBMITTED):
        assert line.job_id and line.error_code is None and line.verified is None
        assert line.note and "not followed to its end" in line.note and "orchestrator jobs" in line.note
    # The report's latest lines are what `orchestrator jobs REPORT` follows: submitted with a job id.
    journal = read_journal([str(report)])
    followable = {e.key for e in journal.latest.values() if e.outcome == "submitted" and e.job_id}
    assert followable == {(o.project_id, o.instance_id, o.proxy_id) for o in latest.values() if o.job_id}


async def test_jobs_not_followed_by_a_stopped_run_are_followed_later_by_orchestrator_jobs(tmp_path: Path) -> None:
    """`orchestrator jobs` on such a report follows the jobs the stopped run left: they end `completed`."""
    fleet, plan = fleet_plan(3, 1)
    report = tmp_path / "r.jsonl"
    clock = JobClock()
    async with expiring_token_sim(fleet, clock) as sim:
        options = RunOptions(command="apply", wait=True, report_path=str(report))
        await execute(
            plan, Connection(sim.url, StaticToken(TOKEN)), options, on_outcome=expire_after_submitted(sim, 3, [])
        )
        sim.set_config(expired_tokens=frozenset())  # a fresh token, as the operator would export
        clock.now += 10.0  # the jobs end
        result = await follow_jobs(sim, plan, report, tmp_path / "jobs.jsonl")
    assert result.exit_code == ExitCode.OK
    assert {o.outcome for o in result.latest} == {Outcome.COMPLETED} and len(result.latest) == 3


async def test_jobs_stopped_by_a_refused_token_keeps_the_jobs_followable_and_exits_2(tmp_path: Path) -> None:
    """`orchestrator jobs` with a token refused at once changes nothing: exit 2, and each recorded job keeps a
    `submitted` line with its job id in the new report (not `unknown`), so a later run can follow it."""
    fleet, plan = fleet_plan(3, 1)
    report = tmp_path / "r.jsonl"
    async with expiring_token_sim(fleet, JobClock()) as sim:
        await execute(
            plan,
            Connection(sim.url, StaticToken(TOKEN)),
            RunOptions(command="apply", wait=False, report_path=str(report)),
        )
        sim.set_config(expired_tokens=frozenset({TOKEN}))
        result = await follow_jobs(sim, plan, report, tmp_path / "jobs.jsonl")
    assert result.stop_kind == "auth" and result.exit_code == ExitCode.USAGE
    assert all(o.outcome is Outcome.SUBMITTED and o.job_id for o in result.latest) and len(result.latest) == 3
    journal = read_journal([str(tmp_path / "jobs.jsonl")])
    assert {e.outcome for e in journal.latest.values()} == {"submitted"}


async def follow_jobs(sim: Simulator, plan: Plan, report: Path, out: Path) -> RunResult:
    """What `orchestrator jobs REPORT --wait` does: follow the submitted targets' jobs, writing `out`."""
    journal = read_journal([str(report)])
    recorded = [
        (Step(*e.key, e.mode_before, e.mode_target, Action.CHANGE), e.job_id)  # type: ignore[arg-type]
        for e in journal.latest.values()
        if e.outcome == "submitted" and e.job_id
    ]
    options = RunOptions(command="jobs", report_path=str(out), work=lambda engine: engine.follow(recorded, wait=True))
    return await execute(plan, Connection(sim.url, StaticToken(TOKEN)), options)


async def test_stop_reasons_do_not_repeat_the_word_stopped(tmp_path: Path) -> None:
    """The stop reason says why, not "stopped: ...": the report summary adds "stopped: " once, not twice."""
    fleet, plan = fleet_plan(2, 2)
    report = tmp_path / "r.jsonl"
    async with expiring_token_sim(fleet, JobClock()) as sim:
        options = RunOptions(command="apply", wait=True, report_path=str(report))
        result = await execute(
            plan, Connection(sim.url, StaticToken(TOKEN)), options, on_outcome=expire_after_submitted(sim, 2, [])
        )
    assert result.stop_reason is not None and result.stop_reason.startswith(
        "authentication failed (HTTP 401 APIGW.0307"
    )
    assert all(o.note == result.stop_reason for o in result.latest if o.outcome is Outcome.NOT_STARTED)
    table = render_table(summarize(journal_for_summary([(str(report), report.read_bytes())])))
    assert "stopped: authentication failed (" in table and "stopped: stopped" not in table


async def test_the_failure_budgets_stop_reason_does_not_start_with_stopped() -> None:
    """A run stopped by its failure budget gives the budget's own reason (the summary prefixes "stopped: ")."""
    fleet, plan = fleet_plan(4, 1)
    plan = replace(plan, stop=StopSettings(1), limits=Limits(Rate(500, 1.0), 1, 1))
    config = SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.05, fail_proxies=frozenset({proxy_id(0)}))
    lines: list[TargetOutcome] = []
    budget = FailureBudget(plan.stop, len(plan.targets))
    async with (
        Simulator(fleet, config) as sim,
        HttpApi(sim.url, StaticToken(TOKEN), Governor(plan.limits.rate, 1), timeout=5.0) as api,
    ):
        engine = Engine(api, plan, on_outcome=lines.append, budget=budget, rng=random.Random(4))
        await engine.run()
    assert engine.stop_kind == "budget"
    assert engine.stop_reason == (
        "failure budget spent: 1 failures, 1 allowed by stop.max_failures 1; it counts changes sent that failed or "
        "whose outcome is unknown, not targets failed before anything was sent (listing_failed, "
        "running_jobs_unknown, proxy_not_found)"
    )
