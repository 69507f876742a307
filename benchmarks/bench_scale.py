"""4. Scale: validate and apply at 1k, 10k, 100k targets: seconds and peak RSS of the child process.

validate: `orchestrator validate` as a child (wall, ru_maxrss), and load_plan's own time in-process compared
with libyaml's bare yaml.load(CSafeLoader) of the same file (also in its own process). apply: `orchestrator
apply --no-gate` at 10000/s against the simulator (100 proxies per instance, 0 s jobs), capped: past the cap
the run is sent SIGTERM (it stops starting targets, exits 143) and the figure says so.
Goal at 100k: validate within 3x libyaml, peak RSS <= 200 MB for validate and apply, linear growth.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common import child_env, cli_apply, client, finished, line, measure, outcome_counts, simulator, write_plan

APPLY_CAP = 240.0  # seconds


def run(quick: bool, work: Path) -> list[dict[str, Any]]:
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    figures = []
    for n in sizes:
        plan = write_plan(work / f"scale{n}.yaml", n // 100, 100, rate="10000/s", concurrency=64, per_instance=100)
        cli = measure([sys.executable, "-m", "orchestrator", "validate", str(plan), "-q"], env=child_env())
        ours = client("validate", str(plan))
        bare = client("libyaml", str(plan))
        with simulator(plan, "--same-instance", "allow") as (url, stats):
            applied = cli_apply(plan, url, work / f"scale{n}.jsonl", timeout=APPLY_CAP)
        report = work / f"scale{n}.jsonl"
        counts = outcome_counts(report)
        figures.append(
            {
                "figure": f"scale {n}",
                "targets": n,
                "validate_cli_s": cli.wall,
                "validate_cli_rss_mb": cli.maxrss_mb,
                "load_plan_s": ours["wall"],
                "libyaml_s": bare["wall"],
                "libyaml_rss_mb": bare["maxrss_mb"],
                "validate_over_libyaml": ours["wall"] / bare["wall"],
                "apply_s": applied.wall,
                "apply_run_s": finished(report)["duration_s"] if report.exists() else None,
                "apply_cpu_s": applied.cpu,
                "apply_rss_mb": applied.maxrss_mb,
                "apply_exit": applied.returncode,
                "apply_capped": applied.returncode == 143,
                "submitted": counts.get("submitted", 0),
                "simulator_requests": stats["requests"],
            }
        )
    last = figures[-1]
    last["goal_met"] = (
        last["validate_over_libyaml"] <= 3.0
        and last["validate_cli_rss_mb"] <= 200
        and last["apply_rss_mb"] <= 200
        and not last["apply_capped"]
    )
    return figures


def show(figure: dict[str, Any]) -> str:
    goal = {} if "goal_met" not in figure else {"goal": "met" if figure["goal_met"] else "MISSED"}
    return line(
        figure["figure"],
        validate_s=round(figure["validate_cli_s"], 2),
        validate_rss_mb=round(figure["validate_cli_rss_mb"]),
        load_plan_s=round(figure["load_plan_s"], 2),
        libyaml_s=round(figure["libyaml_s"], 2),
        over_libyaml=round(figure["validate_over_libyaml"], 2),
        apply_s=round(figure["apply_s"], 1),
        apply_cpu_s=round(figure["apply_cpu_s"], 1),
        apply_rss_mb=round(figure["apply_rss_mb"]),
        submitted=figure["submitted"],
        capped=figure["apply_capped"],
        **goal,
    )
