"""2. Makespan vs the physical bound: many instances with several proxies each, 100 ms latency, 2 s jobs.

ratio = makespan / max(N / R, longest per-instance job chain), the chain being proxies-per-instance × job
duration. With `apply --wait` (used when this checkout has it) the run follows every job to its end and reads
each instance back; without it, the run ends when the last PUT is answered and the chain it waits for is one
job shorter. The tighter "request bound" also counts the requests the run cannot avoid: the running-jobs check
(2), one listing per instance, one PUT per target, at least one poll per job it waits for, and with --wait one
read-back listing per instance.
The makespan is the report's run_finished.duration_s (the run itself, not the interpreter's start-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import cli_apply, finished, has_wait, line, outcome_counts, simulator, write_plan

LATENCY = 0.1
JOB = 2.0


def run(quick: bool, work: Path) -> list[dict[str, Any]]:
    instances, proxies, rate = (60, 5, 100) if quick else (400, 5, 200)
    n = instances * proxies
    plan = write_plan(
        work / "makespan.yaml",
        instances,
        proxies,
        rate=f"{rate}/s",
        concurrency=100,
        jobs="{poll_interval: 1s, timeout: 30m, visibility_grace: 30s}",
    )
    wait = has_wait()
    with simulator(plan, "--job-duration", str(JOB), "--latency", str(LATENCY)) as (url, stats):
        result = cli_apply(plan, url, work / "makespan.jsonl", wait=wait)
    makespan = finished(work / "makespan.jsonl")["duration_s"]
    chain = proxies * JOB
    bound = max(n / rate, chain)
    if wait:
        needed = 2 + instances + n + n + instances
        request_bound = max(needed / rate, chain)
    else:
        needed = 2 + instances + n + (n - instances)
        request_bound = max(needed / rate, (proxies - 1) * JOB)  # the last job is not waited for
    return [
        {
            "figure": "makespan (--wait)" if wait else "makespan (no --wait)",
            "wait": wait,
            "targets": n,
            "instances": instances,
            "rate": rate,
            "makespan_s": makespan,
            "bound_s": bound,
            "ratio": makespan / bound,
            "requests": stats["requests"],
            "routes": stats["routes"],
            "request_bound_s": request_bound,
            "ratio_to_request_bound": makespan / request_bound,
            "goal_met": makespan / bound <= 1.03,
            "outcomes": outcome_counts(work / "makespan.jsonl"),
            "exit_code": result.returncode,
        }
    ]


def show(figure: dict[str, Any]) -> str:
    return line(
        figure["figure"],
        targets=figure["targets"],
        makespan_s=round(figure["makespan_s"], 1),
        bound_s=round(figure["bound_s"], 1),
        ratio=round(figure["ratio"], 2),
        requests=figure["requests"],
        request_bound_s=round(figure["request_bound_s"], 1),
        ratio_to_request_bound=round(figure["ratio_to_request_bound"], 2),
        goal="met" if figure["goal_met"] else "MISSED",
    )
