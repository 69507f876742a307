"""A scripted, in-memory stand-in for `ProxyApi` and a fake clock, for engine tests without sockets."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.api import Reply
from orchestrator.errors import TransportError
from orchestrator.plan import JobSettings, Limits, Plan, Rate, RetrySettings, Target

PROJECT = "619d3e78f61b4be68bc5aa0b59edcf7b"


def instance_id(n: int) -> str:
    return f"{n:032x}in07"


def proxy_id(n: int) -> str:
    return f"{n:031x}po01"


def make_plan(targets: list[Target], **overrides: object) -> Plan:
    fields: dict[str, object] = dict(
        path="plans/test.yaml",
        name="test",
        digest="0" * 64,
        region="cn-north-4",
        endpoint=None,
        project_id=PROJECT,
        limits=Limits(Rate(1000, 1.0), 10, 1),
        retry=RetrySettings(attempts=4, base_delay=0.5, max_delay=4.0, timeout=5.0),
        jobs=JobSettings(poll_interval=1.0, timeout=60.0, visibility_grace=5.0),
        targets=tuple(targets),
    )
    fields.update(overrides)
    return Plan(**fields)  # type: ignore[arg-type]


@dataclass
class FakeClock:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


Scripted = Reply | TransportError | Callable[[], Reply | TransportError]


@dataclass
class FakeApi:
    """A fleet {(project, instance): {proxy: mode}}; jobs complete after `job_polls` polls.

    `script[route]` holds answers to give instead of the normal behaviour, one per call, in order
    (route: "put", "list", "job"). A TransportError in the script is raised. `apply_before_drop` makes a
    scripted TransportError on a PUT still apply the change (the answer was lost after the server acted).
    """

    fleet: dict[tuple[str, str], dict[str, str]]
    job_polls: int = 1
    script: dict[str, deque[Scripted]] = field(default_factory=dict)
    apply_before_drop: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    jobs: dict[str, list[object]] = field(default_factory=dict)  # job_id -> [remaining polls, key, mode]
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _scripted(self, route: str) -> Reply | None:
        queue = self.script.get(route)
        if not queue:
            return None
        answer = queue.popleft()
        if callable(answer):
            answer = answer()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def change_consistency(
        self, project_id: str, instance_id: str, proxy_id: str, mode: str, *, admitted=lambda: None
    ) -> Reply:
        self.calls.append(("put", proxy_id))
        admitted()
        await asyncio.sleep(0)
        try:
            scripted = self._scripted("put")
        except TransportError:  # the answer was lost, maybe after the server acted
            if self.apply_before_drop:
                self._apply(project_id, instance_id, proxy_id, mode)
            raise
        if scripted is not None:
            return scripted
        return Reply(200, {"job_id": self._apply(project_id, instance_id, proxy_id, mode)})

    def _apply(self, project_id: str, instance_id: str, proxy_id: str, mode: str) -> str:
        job_id = f"job-{next(self._ids)}"
        self.jobs[job_id] = [self.job_polls, (project_id, instance_id, proxy_id), mode]
        if self.job_polls == 0:
            self.fleet[(project_id, instance_id)][proxy_id] = mode
        return job_id

    async def list_proxies(self, project_id: str, instance_id: str, *, offset: int, limit: int) -> Reply:
        self.calls.append(("list", f"{instance_id}@{offset}"))
        await asyncio.sleep(0)
        scripted = self._scripted("list")
        if scripted is not None:
            return scripted
        proxies = self.fleet.get((project_id, instance_id))
        if proxies is None:
            return Reply(404, {"error_code": "DBS.200002", "error_msg": "The DB instance does not exist."})
        items = list(proxies.items())[offset : offset + limit]
        return Reply(200, {"proxy_list": [{"proxy": {"pool_id": p, "consistence_mode": m}} for p, m in items]})

    async def get_job(self, project_id: str, job_id: str) -> Reply:
        self.calls.append(("job", job_id))
        await asyncio.sleep(0)
        scripted = self._scripted("job")
        if scripted is not None:
            return scripted
        job = self.jobs[job_id]
        remaining, key, mode = job
        assert isinstance(remaining, int)
        if remaining > 1:
            job[0] = remaining - 1
            return Reply(200, {"job": {"id": job_id, "status": "Running", "process": "50%"}})
        project_id_, instance_id_, proxy_id_ = key  # type: ignore[misc]
        self.fleet[(project_id_, instance_id_)][proxy_id_] = mode  # type: ignore[index]
        return Reply(200, {"job": {"id": job_id, "status": "Completed", "process": ""}})

    async def list_jobs(self, project_id: str, *, status: str, job_name: str, offset: int, limit: int) -> Reply:
        self.calls.append(("jobs", status))
        await asyncio.sleep(0)
        scripted = self._scripted("jobs")
        if scripted is not None:
            return scripted
        return Reply(200, {"jobs": [], "total_count": 0})

    def routes(self, *, with_job_lists: bool = False) -> list[str]:
        """The routes called in order; the running-jobs checks (route "jobs") only when asked for."""
        return [route for route, _ in self.calls if with_job_lists or route != "jobs"]
