"""Run every benchmark (each against the simulator in its own process, on loopback) and print one line per
figure; the figures also go to benchmarks/results.json (or --quick: results-quick.json).

    python benchmarks/run_all.py [--quick] [--only rate,makespan,cost,scale,faults,limiter]

Run on demand, not part of the test suite. A full run takes about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cost
import bench_faults
import bench_limiter
import bench_makespan
import bench_rate
import bench_scale
from common import HERE, machine

BENCHMARKS = {
    "rate": bench_rate,
    "makespan": bench_makespan,
    "cost": bench_cost,
    "scale": bench_scale,
    "faults": bench_faults,
    "limiter": bench_limiter,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller N: a smoke run of a minute or two")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    started = time.perf_counter()
    print(f"# {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC{'; quick' if args.quick else ''}", flush=True)
    results: dict[str, object] = {"machine": machine(), "date": datetime.now(UTC).isoformat(), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        for name in chosen:
            module = BENCHMARKS[name]
            work = Path(tmp) / name
            work.mkdir()
            began = time.perf_counter()
            figures = module.run(args.quick, work)
            for figure in figures:
                print(module.show(figure), flush=True)
            results[name] = {"seconds": time.perf_counter() - began, "figures": figures}
    out = HERE / ("results-quick.json" if args.quick else "results.json")
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"# done in {time.perf_counter() - started:.0f}s; figures in {out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
