"""5. Faults: 20% 500s and 5% 429s (Retry-After: 1): requests / targets, and makespan / the fault-free
makespan, with the plan's default retry policy (5 attempts, 500 ms base, full jitter) and the default adaptive
rate (limits.adaptive: true, which cuts the rate on every 429); a second line repeats it with adaptive: false.
The simulator's injected 429s are random, independent of the rate: a pessimistic case for an AIMD limiter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import cli_apply, finished, line, outcome_counts, simulator, write_plan

CAP = 240.0  # seconds per run; past it the run is sent SIGTERM and the figure says capped


def run(quick: bool, work: Path) -> list[dict[str, Any]]:
    return [one(quick, work, adaptive=True), one(quick, work, adaptive=False)]


def one(quick: bool, work: Path, *, adaptive: bool) -> dict[str, Any]:
    n = 150 if quick else 400  # every 429 pauses the whole run for its Retry-After: the cost grows with n
    work = work / f"adaptive-{adaptive}"
    work.mkdir()
    plan = write_plan(work / "faults.yaml", n, 1, rate="200/s", concurrency=50, adaptive=adaptive)
    results = {}
    for label, args in (("clean", []), ("faulty", ["--error-500", "0.2", "--throttle-429", "0.05"])):
        report = work / f"faults-{label}.jsonl"
        with simulator(plan, "--job-duration", "0.1", *args) as (url, stats):
            run = cli_apply(plan, url, report, timeout=CAP)
        results[label] = {
            "makespan_s": finished(report)["duration_s"],
            "requests": stats["requests"],
            "statuses": stats["statuses"],
            "outcomes": outcome_counts(report),
            "exit_code": run.returncode,
            "capped": run.returncode == 143,
            "max_jobs_per_proxy": stats["max_jobs_per_proxy"],
        }
    clean, faulty = results["clean"], results["faulty"]
    return {
        "figure": f"faults 20%500+5%429 adapt={'on' if adaptive else 'off'}",
        "targets": n,
        "requests_per_target_clean": clean["requests"] / n,
        "requests_per_target": faulty["requests"] / n,
        "makespan_clean_s": clean["makespan_s"],
        "makespan_s": faulty["makespan_s"],
        "makespan_ratio": faulty["makespan_s"] / clean["makespan_s"],
        "outcomes": faulty["outcomes"],
        "max_jobs_per_proxy": faulty["max_jobs_per_proxy"],
        "capped": faulty["capped"],
        "details": results,
    }


def show(figure: dict[str, Any]) -> str:
    return line(
        figure["figure"],
        targets=figure["targets"],
        req_per_target=round(figure["requests_per_target"], 2),
        clean_req_per_target=round(figure["requests_per_target_clean"], 2),
        makespan_s=round(figure["makespan_s"], 1),
        clean_s=round(figure["makespan_clean_s"], 1),
        makespan_ratio=round(figure["makespan_ratio"], 2),
        outcomes=",".join(f"{k}:{v}" for k, v in sorted(figure["outcomes"].items())),
        changed_twice=figure["max_jobs_per_proxy"] > 1,
        capped=figure["capped"],
    )
