"""The simulated fleet and its jobs: a pure state machine driven by an injected clock.

Projects hold instances, instances hold proxies; a consistency change is a `Job` that is Pending, then
Running for its duration, then Completed (the proxy takes the new mode at that moment) or Failed (it keeps
the old one). Nothing here sleeps or touches a socket: every method that depends on time takes `now`
(default: the bound clock), and jobs are resolved lazily whenever state is read, so a test can move a fake
clock and read the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

Clock = Callable[[], float]

JOB_NAME: Final = "GaussDBforMySQLModifyProxyConsist"  # [SRC enum; INF that /jobs shows it, §1, §12]
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%z"  # "2026-12-03T12:00:00+0000" [§3]


@dataclass(slots=True)
class Proxy:
    """One database proxy (a "pool" in the API: `pool_id` is the proxy id)."""

    project_id: str
    instance_id: str
    pool_id: str
    name: str
    consistence_mode: str
    type: str = "readwrite"
    status: str = "ACTIVE"
    created: float = 0.0  # clock time
    updated: float = 0.0  # clock time of the last completed change

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project_id, self.instance_id, self.pool_id)


@dataclass(slots=True)
class Instance:
    project_id: str
    id: str
    name: str
    proxies: dict[str, Proxy] = field(default_factory=dict)  # insertion order is the listing order


@dataclass(slots=True)
class Job:
    """One consistency change; its status is a function of the clock."""

    id: str
    project_id: str
    instance_id: str
    proxy_id: str
    mode: str  # the proxy's mode once the job completes
    created: float  # clock times, all of them
    visible: float  # /jobs?id= does not find it before this [DOC §3 "takes several seconds"]
    starts: float  # Pending before this
    ends: float  # Running before this, then Completed or Failed
    fail_reason: str = ""  # non-empty: the job ends Failed
    applied: bool = False

    def status(self, now: float) -> str:
        if now < self.starts:
            return "Pending"
        if now < self.ends:
            return "Running"
        return "Failed" if self.fail_reason else "Completed"

    def in_flight(self, now: float) -> bool:
        return now < self.ends

    def process(self, now: float) -> str:
        """Progress as the service shows it: "NN%" only while running, else "" [§3]."""
        if self.status(now) != "Running":
            return ""
        span = self.ends - self.starts
        return f"{min(99, int(100 * (now - self.starts) / span)) if span > 0 else 0}%"


class Fleet:
    """Every simulated project, instance, proxy and job."""

    def __init__(self, *, clock: Clock = time.monotonic, wall_origin: datetime | None = None) -> None:
        self._instances: dict[tuple[str, str], Instance] = {}
        self._jobs: dict[str, Job] = {}
        self._unapplied: list[Job] = []
        self.bind_clock(clock, wall_origin)

    def bind_clock(self, clock: Clock, wall_origin: datetime | None = None) -> None:
        """Read time from `clock`; wall-clock stamps are `wall_origin` (default: now, UTC) + elapsed clock."""
        self.clock = clock
        self._clock_origin = clock()
        if not self._jobs:  # re-stamp a fresh fleet built under another clock
            for proxy in self.all_proxies():
                proxy.created = proxy.updated = self._clock_origin
        origin = wall_origin or datetime.now(UTC)
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)  # a naive origin is taken as UTC: stamps always carry an offset
        self._wall_origin = origin.replace(microsecond=0)

    def wall(self, at: float) -> str:
        """The service's timestamp string for clock time `at`."""
        return self.wall_time(at).strftime(TIME_FORMAT)

    def wall_time(self, at: float) -> datetime:
        """The wall-clock moment of clock time `at` (UTC)."""
        return self._wall_origin + timedelta(seconds=at - self._clock_origin)

    # --- building -------------------------------------------------------------------------------------

    def add_proxy(
        self,
        project_id: str,
        instance_id: str,
        proxy_id: str,
        mode: str = "eventual",
        *,
        name: str | None = None,
        type: str = "readwrite",
    ) -> Proxy:
        """Add a proxy (and its instance if new); adding an existing proxy returns it unchanged."""
        instance = self._instances.get((project_id, instance_id))
        if instance is None:
            instance = Instance(project_id, instance_id, name=f"gaussdb-{instance_id[:8]}")
            self._instances[(project_id, instance_id)] = instance
        existing = instance.proxies.get(proxy_id)
        if existing is not None:
            return existing
        now = self.clock()
        proxy = Proxy(
            project_id,
            instance_id,
            proxy_id,
            name=name or f"proxy-{proxy_id[:8]}",
            consistence_mode=mode,
            type=type,
            created=now,
            updated=now,
        )
        instance.proxies[proxy_id] = proxy
        return proxy

    # --- reading (resolves finished jobs first) ----------------------------------------------------------

    def instance(self, project_id: str, instance_id: str, now: float | None = None) -> Instance | None:
        self.settle(now)
        return self._instances.get((project_id, instance_id))

    def proxy(self, project_id: str, instance_id: str, proxy_id: str, now: float | None = None) -> Proxy | None:
        instance = self.instance(project_id, instance_id, now)
        return None if instance is None else instance.proxies.get(proxy_id)

    def mode(self, project_id: str, instance_id: str, proxy_id: str, now: float | None = None) -> str:
        """The proxy's current consistence_mode; KeyError if there is no such proxy."""
        proxy = self.proxy(project_id, instance_id, proxy_id, now)
        if proxy is None:
            raise KeyError((project_id, instance_id, proxy_id))
        return proxy.consistence_mode

    def modes(self, now: float | None = None) -> dict[tuple[str, str, str], str]:
        """Every proxy's current mode, keyed like `orchestrator.plan.Target.key`."""
        self.settle(now)
        return {proxy.key: proxy.consistence_mode for proxy in self.all_proxies()}

    def all_proxies(self) -> Iterator[Proxy]:
        for instance in self._instances.values():
            yield from instance.proxies.values()

    @property
    def jobs(self) -> dict[str, Job]:
        """Every job ever created, by id (read-only use)."""
        return self._jobs

    def project_jobs(self, project_id: str) -> list[Job]:
        """The project's jobs, oldest first (creation order)."""
        return [job for job in self._jobs.values() if job.project_id == project_id]

    def job(self, project_id: str, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.project_id == project_id else None

    def jobs_in_flight(self, project_id: str, instance_id: str, now: float | None = None) -> list[Job]:
        at = self._now(now)
        self.settle(at)
        return [j for j in self._unapplied if (j.project_id, j.instance_id) == (project_id, instance_id)]

    # --- changing -------------------------------------------------------------------------------------

    def start_job(
        self,
        job_id: str,
        proxy: Proxy,
        mode: str,
        *,
        now: float,
        duration: float,
        pending: float = 0.0,
        visibility_delay: float = 0.0,
        after: float | None = None,
        fail_reason: str = "",
    ) -> Job:
        """Create a job changing `proxy` to `mode`; it starts at max(now + pending, after)."""
        starts = max(now + pending, after if after is not None else now)
        job = Job(
            id=job_id,
            project_id=proxy.project_id,
            instance_id=proxy.instance_id,
            proxy_id=proxy.pool_id,
            mode=mode,
            created=now,
            visible=now + visibility_delay,
            starts=starts,
            ends=starts + duration,
            fail_reason=fail_reason,
        )
        self._jobs[job_id] = job
        self._unapplied.append(job)
        self.settle(now)  # a zero-length job completes at once
        return job

    def settle(self, now: float | None = None) -> None:
        """Apply every job that has ended by `now`, in the order they ended."""
        at = self._now(now)
        done = sorted((j for j in self._unapplied if not j.in_flight(at)), key=lambda j: (j.ends, j.created))
        for job in done:
            job.applied = True
            proxy = self._instances[(job.project_id, job.instance_id)].proxies.get(job.proxy_id)
            if proxy is not None and not job.fail_reason:
                proxy.consistence_mode = job.mode
                proxy.updated = job.ends
        if done:
            self._unapplied = [j for j in self._unapplied if not j.applied]

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now
