"""3. Cost per call: CPU seconds and wall time per target of the client process only, no rate limit
(10000/s, the plan's maximum), no latency, 0 s jobs, every target needing a change.

orchestrator (run.execute in-process: governor, retries, report file; token, and AK/SK signing) against
(a) the official SDK's GaussDBClient (AK/SK; a plain loop, and a 32-thread pool) and (b) a bare aiohttp loop
of 32 workers sending the same PUTs with a token (the floor of the Python HTTP stack). The orchestrator also
lists each instance (100 proxies per instance: one listing per 100 PUTs) and checks running jobs once.
Goal: orchestrator CPU per target <= 2x bare aiohttp; orchestrator throughput >= 2.5x the SDK's 32 threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import client, line, simulator, write_plan


def run(quick: bool, work: Path) -> list[dict[str, Any]]:
    instances = 5 if quick else 20
    n = instances * 100
    plan = write_plan(work / "cost.yaml", instances, 100, rate="10000/s", concurrency=32, per_instance=100)
    rows: dict[str, dict[str, Any]] = {}
    runs = [
        ("orchestrator (token)", "orchestrator", [str(work / "cost-token.jsonl")]),
        ("orchestrator (AK/SK)", "orchestrator", [str(work / "cost-aksk.jsonl"), "aksk"]),
        ("bare aiohttp, 32 workers", "aiohttp", ["32"]),
        ("SDK, sequential", "sdk", ["1"]),
        ("SDK, 32 threads", "sdk", ["32"]),
    ]
    for label, name, extra in runs:
        with simulator(plan, "--same-instance", "allow") as (url, stats):
            result = client(name, str(plan), url, *extra)
        rows[label] = {
            "cpu_ms_per_target": 1000 * result["cpu"] / n,
            "wall_ms_per_target": 1000 * result["wall"] / n,
            "targets_per_s": n / result["wall"],
            "requests": stats["requests"],
            "jobs_created": stats["jobs_created"],
        }
    floor = rows["bare aiohttp, 32 workers"]["cpu_ms_per_target"]
    pool = rows["SDK, 32 threads"]["targets_per_s"]
    ours = rows["orchestrator (token)"]
    figure = {
        "figure": "cost per call",
        "targets": n,
        "rows": rows,
        "cpu_over_floor": ours["cpu_ms_per_target"] / floor,
        "throughput_over_sdk32": ours["targets_per_s"] / pool,
    }
    figure["goal_met"] = figure["cpu_over_floor"] <= 2.0 and figure["throughput_over_sdk32"] >= 2.5
    return [figure]


def show(figure: dict[str, Any]) -> str:
    lines = [
        line(
            figure["figure"],
            targets=figure["targets"],
            cpu_over_floor=round(figure["cpu_over_floor"], 2),
            throughput_over_sdk32=round(figure["throughput_over_sdk32"], 2),
            goal="met" if figure["goal_met"] else "MISSED",
        )
    ]
    for label, row in figure["rows"].items():
        lines.append(
            line(
                f"  {label}",
                cpu_ms=round(row["cpu_ms_per_target"], 3),
                wall_ms=round(row["wall_ms_per_target"], 3),
                per_s=round(row["targets_per_s"]),
                requests=row["requests"],
            )
        )
    return "\n".join(lines)
