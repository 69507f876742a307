"""1. Rate ceiling: the most requests the simulator saw in any sliding 1 s window (its own clock), and the
achieved rate, at R = 50/s and 200/s. Goal: never above R (+1), achieved >= 0.97 R."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import cli_apply, line, write_plan


def run(quick: bool, work: Path) -> list[dict[str, Any]]:
    n = 300 if quick else 2000
    figures = []
    for rate in (50, 200):
        plan = write_plan(work / f"rate{rate}.yaml", n, 1, rate=f"{rate}/s", concurrency=50)
        from common import simulator

        with simulator(plan, "--job-duration", "0.1") as (url, stats):
            run = cli_apply(plan, url, work / f"rate{rate}.jsonl")
        span = stats["last"] - stats["first"]
        achieved = (stats["requests"] - 1) / span if span > 0 else float("nan")
        figures.append(
            {
                "figure": f"rate ceiling R={rate}/s",
                "targets": n,
                "requests": stats["requests"],
                "max_in_1s": stats["max_in_1s"],
                "achieved_per_s": achieved,
                "max_over_R": stats["max_in_1s"] / rate,
                "achieved_over_R": achieved / rate,
                "goal_met": stats["max_in_1s"] <= rate + 1 and achieved >= 0.97 * rate,
                "exit_code": run.returncode,
            }
        )
    return figures


def show(figure: dict[str, Any]) -> str:
    return line(
        figure["figure"],
        targets=figure["targets"],
        requests=figure["requests"],
        max_in_1s=figure["max_in_1s"],
        max_over_R=round(figure["max_over_R"], 3),
        achieved_over_R=round(figure["achieved_over_R"], 3),
        goal="met" if figure["goal_met"] else "MISSED",
    )
