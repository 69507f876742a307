"""Running the real CLI in subprocesses, and a simulator in a thread whose state the test can read."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.plan import load_plan
from orchestrator.simulator import Fleet, Simulator, SimulatorConfig, fleet_from_plan

ROOT = Path(__file__).resolve().parents[1]


def cli_env(extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    """This checkout's code, none of the caller's Huawei Cloud credentials, and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUAWEICLOUD_")}
    env["PYTHONPATH"] = str(ROOT)
    if home is not None:
        env["HOME"] = str(home)  # never the operator's own ~/.huaweicloud/credentials
    env.update(extra or {})
    return env


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=cli_env(env, cwd), capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=cli_env(env, cwd), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def report_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def targets_of(path: Path) -> list[dict[str, Any]]:
    return [line for line in report_lines(path) if line["event"] == "target"]


class SimulatorThread:
    """A simulator serving from its own thread and event loop, so that CLI subprocesses can use it while the
    test reads its fleet and statistics."""

    def __init__(self, fleet: Fleet, config: SimulatorConfig) -> None:
        self._fleet = fleet
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.simulator: Simulator | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with Simulator(self._fleet, self._config) as simulator:
            self.simulator = simulator
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the simulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        assert self.simulator is not None
        return self.simulator.url

    def call(self, function: Any, *args: Any) -> Any:
        """Run `function(simulator, *args)` on the simulator's loop and return its result."""
        assert self.simulator is not None
        simulator = self.simulator

        async def run() -> Any:
            return function(simulator, *args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)


@contextmanager
def simulator_for(plan_path: Path, **config: Any) -> Iterator[SimulatorThread]:
    """A threaded simulator seeded with the plan's proxies (seed 0), accepting any token."""
    fleet = fleet_from_plan(load_plan(plan_path))
    with SimulatorThread(fleet, SimulatorConfig(**config)) as thread:
        yield thread
