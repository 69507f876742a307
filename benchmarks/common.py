"""Shared by the benchmarks: plan files, the simulator in a child process, and measuring a child process."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"
TOKEN = "MIIbenchmark-token-0123456789abcdef"  # noqa: S105 - the simulator accepts any token
AK = "BENCHAKEXAMPLE000000"
SK = "BENCHSKEXAMPLE0000000000000000000000000"


def instance_id(i: int) -> str:
    return f"{i:032x}in07"


def proxy_id(i: int, p: int) -> str:
    return f"{i:028x}{p:04x}po01"


def targets(instances: int, proxies: int) -> list[tuple[str, str]]:
    return [(instance_id(i), proxy_id(i, p)) for i in range(instances) for p in range(proxies)]


def write_plan(
    path: Path,
    instances: int,
    proxies: int,
    *,
    rate: str,
    concurrency: int,
    per_instance: int = 1,
    adaptive: bool = True,
    retry: str = "{attempts: 5, base_delay: 500ms, max_delay: 30s, timeout: 30s}",
    jobs: str = "{poll_interval: 1s, timeout: 30m, visibility_grace: 30s}",
) -> Path:
    """A plan of instances × proxies targets (all to `session`), one flow mapping per target line."""
    with path.open("w") as out:
        out.write(
            f"version: 1\nname: bench\nendpoint: http://127.0.0.1:1\nproject_id: {PROJECT}\n"
            f"limits: {{rate: {rate}, concurrency: {concurrency}, per_instance: {per_instance}, "
            f"adaptive: {'true' if adaptive else 'false'}}}\n"
            f"retry: {retry}\njobs: {jobs}\ndefaults: {{mode: session}}\ntargets:\n"
        )
        for instance, proxy in targets(instances, proxies):
            out.write(f"  - {{instance_id: {instance}, proxy_id: {proxy}}}\n")
    return path


@dataclass
class Measured:
    returncode: int
    wall: float
    cpu: float  # user + system seconds of the child (and of its own children, if any)
    maxrss_mb: float
    stdout: str
    stderr: str


def measure(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None) -> Measured:
    """Run a child; its wall time, CPU and peak RSS from wait4 (so only that process is counted)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env or child_env(), cwd=ROOT)  # noqa: S603
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.send_signal(signal.SIGTERM)  # the CLI stops starting targets and exits 143
                deadline = None
            time.sleep(0.02)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read(), err.read()
        )


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUAWEICLOUD_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@dataclass
class SimStats:
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


@contextmanager
def simulator(plan: Path, *args: str) -> Iterator[tuple[str, SimStats]]:
    """The simulator in its own process; yields (url, stats), stats filled in once it has stopped."""
    stats_file = plan.with_suffix(".simstats.json")
    proc = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(HERE / "simserver.py"), "--fleet", str(plan), "--stats", str(stats_file), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    stats = SimStats({})
    try:
        yield line.rsplit(" ", 1)[1].strip(), stats
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        if stats_file.exists():
            stats.data.update(json.loads(stats_file.read_text()))


def has_wait() -> bool:
    """Whether this checkout's `apply` has --wait (follow every job to its end)."""
    text = subprocess.run(
        [sys.executable, "-m", "orchestrator", "apply", "--help"], capture_output=True, text=True, env=child_env()
    ).stdout
    return "--wait" in text


def cli_apply(plan: Path, url: str, report: Path, *, timeout: float | None = None, wait: bool = False) -> Measured:
    """The real CLI, `apply --no-gate` (and --wait if asked), against `url`, as a measured child process."""
    cmd = [sys.executable, "-m", "orchestrator", "apply", str(plan), "--no-gate", "--endpoint", url]
    cmd += ["--report", str(report), "-q", *(["--wait"] if wait else [])]
    return measure(cmd, env=child_env(HUAWEICLOUD_AUTH_TOKEN=TOKEN), timeout=timeout)


def report_lines(report: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in report.read_text().splitlines():
        with suppress(ValueError):  # a torn last line
            lines.append(json.loads(raw))
    return lines


def finished(report: Path) -> dict[str, Any]:
    return next(line for line in reversed(report_lines(report)) if line["event"] == "run_finished")


def outcome_counts(report: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in report_lines(report):
        if line["event"] == "target":
            counts[line["outcome"]] = counts.get(line["outcome"], 0) + 1
    return counts


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, {platform.system()}"


def line(name: str, **values: Any) -> str:
    parts = []
    for key, value in values.items():
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return f"{name:<28} " + " ".join(parts)


def client(name: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """One of clients.py's clients in a child process: its JSON result (plus the child's own wall/cpu/rss)."""
    result = measure([sys.executable, str(HERE / "clients.py"), name, *args], timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"client {name} failed ({result.returncode}): {result.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    data["process"] = result
    return data
