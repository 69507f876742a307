"""6. The limiter alone, in-process, no HTTP: why the governor schedules its own slots instead of using aiolimiter.

Workers take turns through each limiter and record the moment they are let through (the event loop's clock);
each then spends `work_ms` of CPU on the loop, as a request and its report line would. Figures: the most
admissions in any 1 s window (the ceiling: at most R) and the achieved rate over the whole run (goal: at least
0.97 R). aiolimiter 1.3 is the library the team chose first; these are the numbers that replaced it.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter
from common import line

from orchestrator.governor import Governor
from orchestrator.plan import Rate

WORKERS = 32

Gate = Callable[[], AbstractAsyncContextManager[None]]


def aiolimiter_bucket(rate: int) -> Gate:
    """AsyncLimiter(R, 1 s): the natural spelling, a bucket of R."""
    limiter = AsyncLimiter(rate, 1.0)
    return lambda: limiter


def aiolimiter_strict(rate: int) -> Gate:
    """AsyncLimiter(1, 1/R): a bucket of one, the only aiolimiter shape that never lets R+1 through."""
    limiter = AsyncLimiter(1, 1.0 / rate)
    return lambda: limiter


def governor(rate: int) -> Gate:
    """orchestrator's governor (slot grid + start log), credentials taken as proven, no 429s."""
    gate = Governor(Rate(rate, 1.0), WORKERS, adaptive=False)
    gate.proven.set()
    return gate.call


LIMITERS: dict[str, Callable[[int], Gate]] = {
    "aiolimiter AsyncLimiter(R, 1)": aiolimiter_bucket,
    "aiolimiter AsyncLimiter(1, 1/R)": aiolimiter_strict,
    "orchestrator governor": governor,
}


async def admissions(make: Callable[[int], Gate], rate: int, count: int, work_ms: float) -> list[float]:
    gate = make(rate)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def worker() -> None:
        while len(times) < count:
            async with gate():
                if len(times) >= count:
                    return
                times.append(loop.time())
            end = time.perf_counter() + work_ms / 1000
            while time.perf_counter() < end:  # CPU on the loop, as parsing a reply and writing a line would be
                pass
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return times


def max_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered))


def run(quick: bool, work: Path) -> list[dict[str, Any]]:
    seconds = 2 if quick else 5
    figures = []
    for rate in (50, 200):
        for work_ms in (0.0, 2.0 if rate == 200 else 5.0):
            for name, make in LIMITERS.items():
                times = asyncio.run(admissions(make, rate, rate * seconds, work_ms))
                achieved = (len(times) - 1) / (times[-1] - times[0])
                most = max_in_window(times, 1.0)
                figures.append(
                    {
                        "figure": f"limiter R={rate}/s",
                        "limiter": name,
                        "work_ms": work_ms,
                        "admissions": len(times),
                        "max_in_1s": most,
                        "achieved_over_R": achieved / rate,
                        "goal_met": most <= rate + 1 and achieved >= 0.97 * rate,
                    }
                )
    return figures


def show(figure: dict[str, Any]) -> str:
    return line(
        f"{figure['figure']} {figure['limiter']}",
        work_ms=figure["work_ms"],
        max_in_1s=figure["max_in_1s"],
        achieved_over_R=round(figure["achieved_over_R"], 3),
        goal="met" if figure["goal_met"] else "MISSED",
    )
