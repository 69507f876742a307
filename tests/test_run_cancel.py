"""A run cancelled from outside (asyncio.run on Ctrl-C, or a caller) passes the cancellation on."""

from __future__ import annotations

import asyncio

import pytest
from fakes import PROJECT, instance_id, make_plan, proxy_id

from orchestrator.auth import StaticToken
from orchestrator.connect import Connection
from orchestrator.plan import Limits, Rate, Target
from orchestrator.run import RunOptions, execute
from orchestrator.simulator import Faults, Fleet, Simulator, SimulatorConfig

TOKEN = "MIIcancel-test-token-0000"


async def test_a_run_cancelled_from_outside_is_cancelled_not_finished() -> None:
    """Cancelling the task that awaits `execute` raises CancelledError there: a preview interrupted this way must
    not look finished (it once returned normally, and its partial preview was written as if whole)."""
    fleet = Fleet()
    targets = []
    for n in range(40):
        fleet.add_proxy(PROJECT, instance_id(n), proxy_id(n), "eventual")
        targets.append(Target(PROJECT, instance_id(n), proxy_id(n), "global"))
    plan = make_plan(targets, limits=Limits(Rate(20, 1.0), 4, 1))
    config = SimulatorConfig(tokens=frozenset({TOKEN}), faults=Faults(latency=0.05))
    async with Simulator(fleet, config) as sim:
        options = RunOptions(command="preview", dry_run=True)
        run = asyncio.create_task(execute(plan, Connection(sim.url, StaticToken(TOKEN)), options))
        await asyncio.sleep(0.5)  # 40 instances to list at 20/s: two seconds of work, a quarter done
        assert sim.stats.count() >= 3 and not run.done()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
