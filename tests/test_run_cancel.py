"""Runs ended from outside: cancelled (asyncio.run on Ctrl-C, or a caller), or a report that cannot be written."""

from __future__ import annotations

import asyncio

import pytest
from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.auth import StaticToken
from orchestrator.connect import Connection
from orchestrator.plan import Limits, Plan, Rate, Target
from orchestrator.report import Outcome
from orchestrator.run import RunOptions, execute
from orchestrator.simulator import Faults, Fleet, Simulator, SimulatorConfig

TOKEN = "MIIcancel-test-token-0000"


def forty_instances(limits: Limits) -> tuple[Fleet, Plan]:
    """One eventual proxy on each of 40 instances, and a plan setting them all to global."""
    fleet = Fleet()
    targets = []
    for n in range(40):
        fleet.add_proxy(PROJECT, instance_id(n), proxy_id(n), "eventual")
        targets.append(Target(PROJECT, instance_id(n), proxy_id(n), "global"))
    return fleet, make_plan(targets, limits=limits)


async def test_a_run_cancelled_from_outside_is_cancelled_not_finished() -> None:
    """Cancelling the task that awaits `execute` raises CancelledError there: a preview interrupted this way must
    not look finished (it once returned normally, and its partial preview was written as if whole)."""
    fleet, plan = forty_instances(Limits(Rate(20, 1.0), 4, 1))
    config = SimulatorConfig(tokens=frozenset({TOKEN}), faults=Faults(latency=0.05))
    async with Simulator(fleet, config) as sim:
        options = RunOptions(command="preview", dry_run=True)
        run = asyncio.create_task(execute(plan, Connection(sim.url, StaticToken(TOKEN)), options))
        await asyncio.sleep(0.5)  # 40 instances to list at 20/s: two seconds of work, a quarter done
        assert sim.stats.count() >= 3 and not run.done()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


async def test_a_report_that_fills_up_stops_the_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """When a target line cannot be written (disk full), nothing more is started, the run ends without an
    exception, with exit 3 and the reason: outcomes it cannot record are outcomes it must not make."""
    from orchestrator.errors import ExitCode
    from orchestrator.report import Report

    fleet, plan = forty_instances(Limits(Rate(50, 1.0), 2, 1))
    written = 0
    real_target = Report.target

    def target(self: Report, outcome) -> None:  # type: ignore[no-untyped-def]
        nonlocal written
        if written == 3:
            raise OSError(28, "No space left on device")
        written += 1
        real_target(self, outcome)

    monkeypatch.setattr(Report, "target", target)
    config = SimulatorConfig(tokens=frozenset({TOKEN}), job_duration=0.0)
    async with Simulator(fleet, config) as sim:
        options = RunOptions(command="apply", report_path=str(tmp_path / "r.jsonl"))
        result = await execute(plan, Connection(sim.url, StaticToken(TOKEN)), options)
        puts = sim.stats.count(route="put_consistency")
    assert result.exit_code == ExitCode.FAILED_TARGETS
    assert result.report_error == f"cannot write the report {tmp_path / 'r.jsonl'}: No space left on device"
    assert puts < 10 and result.count(Outcome.NOT_STARTED) > 25
