"""The simulator in its own process, for the benchmarks: prints "simulator listening on URL", serves until
SIGTERM, then writes what it saw (on its own clock) as JSON to --stats.

Every proxy the plan targets starts in --initial-mode (so every target needs a change), unless it is "seeded"
(the plan's seeded modes, as `orchestrator simulate` does). Accepts any X-Auth-Token, and AK/SK signatures of
the key pair --ak/--sk (for the official SDK).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.plan import ALL_PROXIES, load_plan
from orchestrator.simulator import AccessKey, Faults, Fleet, Simulator, SimulatorConfig, fleet_from_plan


def build_fleet(plan_path: str, initial_mode: str) -> Fleet:
    plan = load_plan(plan_path)
    if initial_mode == "seeded":
        return fleet_from_plan(plan)
    fleet = Fleet()
    for target in plan.targets:
        assert target.proxy_id != ALL_PROXIES, "benchmark plans name every proxy"
        fleet.add_proxy(target.project_id, target.instance_id, target.proxy_id, initial_mode)
    return fleet


def summary(sim: Simulator) -> dict[str, object]:
    stats = sim.stats
    times = [r.at for r in stats.requests]
    return {
        "requests": len(times),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "max_in_1s": stats.max_in_window(1.0),
        "routes": dict(Counter(r.route for r in stats.requests)),
        "statuses": {str(k): v for k, v in stats.by_status().items()},
        "jobs_created": stats.jobs_created,
        "max_jobs_per_proxy": max(stats.jobs_by_proxy.values(), default=0),
        "proxies_changed": len(stats.jobs_by_proxy),
    }


async def serve(args: argparse.Namespace) -> Simulator:
    faults = Faults(
        error_500=args.error_500, throttle_429=args.throttle_429, retry_after=args.retry_after, latency=args.latency
    )
    config = SimulatorConfig(
        auth_mode="both",
        access_keys=(AccessKey(args.ak, args.sk),),
        job_duration=args.job_duration,
        same_instance=args.same_instance,
        faults=faults,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(build_fleet(args.fleet, args.initial_mode), config)
    url = await simulator.start("127.0.0.1", args.port)
    print(f"simulator listening on {url}", flush=True)
    await stop.wait()
    await simulator.close()
    return simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fleet", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--initial-mode", default="eventual")
    parser.add_argument("--job-duration", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--error-500", type=float, default=0.0)
    parser.add_argument("--throttle-429", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--same-instance", default="reject")
    parser.add_argument("--ak", default="BENCHAKEXAMPLE000000")
    parser.add_argument("--sk", default="BENCHSKEXAMPLE0000000000000000000000000")
    args = parser.parse_args()
    simulator = asyncio.run(serve(args))
    Path(args.stats).write_text(json.dumps(summary(simulator)))


if __name__ == "__main__":
    main()
