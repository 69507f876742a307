"""The service's asynchronous jobs (contract §3): waiting for one, and finding the ones still running.

A 200 to the PUT only means "job accepted". The engine waits for a job to leave Pending/Running before the
next change on the same instance (the service runs one operation per instance), and before changing an
instance at all it makes sure no consistency job is still running there: one left by an earlier run (killed,
or started back to back) would otherwise finish after our listing and make our change a duplicate.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from .api import ProxyApi, Reply
from .calls import Caller, CallResult
from .plan import JobSettings

# Contract §3: Pending/Running are in progress; Completed is success; anything else is terminal failure.
JOB_IN_PROGRESS: Final = frozenset({"Pending", "Running"})
JOB_SUCCESS: Final = "Completed"
# Not a service status: the run stopped (credentials refused, a signal, the window, the budget) before the job
# could be followed to its end. The job exists and its id is known: `orchestrator jobs` can follow it later.
JOB_NOT_FOLLOWED: Final = "not_followed"
JOB_NAME: Final = "GaussDBforMySQLModifyProxyConsist"  # contract §1 [SRC enum; INF for the listing]
JOBS_PAGE: Final = 50  # /immediate-jobs takes limit 10, 20 or 50
MAX_JOB_PAGES: Final = 200


@dataclass(frozen=True, slots=True)
class JobResult:
    job_id: str
    status: str  # Completed, Failed, …, or "timeout" / "unreadable" / JOB_NOT_FOLLOWED when we could not tell
    fail_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RunningJobs:
    """Consistency jobs in progress per instance of one project, or why they could not be listed."""

    by_instance: dict[str, list[str]]
    problem: str | None = None  # why the listing failed (after retries): `HTTP 403 APIGW.0302: ...`
    status: int | None = None  # the failed listing's HTTP status, if it had one


class JobWatcher:
    def __init__(
        self,
        api: ProxyApi,
        caller: Caller,
        settings: JobSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        is_stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._api = api
        self._caller = caller
        self._settings = settings
        self._clock = clock
        self._is_stopping = is_stopping  # a stopping run sends nothing more: a job can no longer be followed

    async def wait(self, project_id: str, job_id: str) -> JobResult:
        """Poll `/jobs?id=` until the job leaves Pending/Running, tolerating "not found" for a grace period.

        If the run stops first, the job is JOB_NOT_FOLLOWED: its end is unknown, but not its existence.
        """
        started = self._clock()
        while True:
            if self._is_stopping():
                return _not_followed(job_id)
            await self._caller.sleep(self._settings.poll_interval)
            elapsed = self._clock() - started
            self._caller.stats.job_polls += 1
            call = await self._caller.call("job", lambda: self._api.get_job(project_id, job_id))
            job = _job_of(call.reply) if call.ok else None
            status = job.get("status") if job is not None else None
            if isinstance(status, str) and status:
                if status not in JOB_IN_PROGRESS:
                    reason = job.get("fail_reason") if job is not None else None
                    return JobResult(job_id, status, reason if isinstance(reason, str) and reason else None)
            elif self._is_stopping():  # not sent because the run stopped, or refused credentials that stop it
                return _not_followed(job_id)
            elif not _not_found_yet(call) or elapsed > self._settings.visibility_grace:
                _, code, msg = call.describe() if not call.ok else (None, "job_unreadable", "no job in the answer")
                return JobResult(job_id, "unreadable", f"{code}: {msg}")
            if elapsed > self._settings.timeout:
                return JobResult(job_id, "timeout", f"still in progress after {self._settings.timeout:g}s")

    async def peek(self, project_id: str, job_id: str) -> JobResult:
        """One poll of `/jobs?id=`: the job's status now (Pending/Running included), "unreadable", or
        JOB_NOT_FOLLOWED if the run stopped first."""
        if self._is_stopping():
            return _not_followed(job_id)
        self._caller.stats.job_polls += 1
        call = await self._caller.call("job", lambda: self._api.get_job(project_id, job_id))
        job = _job_of(call.reply) if call.ok else None
        status = job.get("status") if job is not None else None
        if isinstance(status, str) and status:
            reason = job.get("fail_reason") if job is not None else None
            process = job.get("process") if job is not None else None
            detail = reason if isinstance(reason, str) and reason else process if isinstance(process, str) else None
            return JobResult(job_id, status, detail or None)
        if self._is_stopping():
            return _not_followed(job_id)
        _, code, msg = call.describe() if not call.ok else (None, "job_unreadable", "no job in the answer")
        return JobResult(job_id, "unreadable", f"{code}: {msg}")

    async def running(self, project_id: str) -> RunningJobs:
        """Consistency jobs Pending or Running in the project (`GET /immediate-jobs`, filtered by status)."""
        found: dict[str, list[str]] = {}
        for status in sorted(JOB_IN_PROGRESS):
            failed = await self._collect(project_id, status, found)
            if failed is not None:
                problem = failed.failure() + (f" (after {failed.attempts} attempts)" if failed.attempts > 1 else "")
                return RunningJobs(found, problem, failed.reply.status if failed.reply is not None else None)
        return RunningJobs(found)

    async def _collect(self, project_id: str, status: str, found: dict[str, list[str]]) -> CallResult | None:
        """Add the jobs with `status` to `found`, all pages; the failed call if a page cannot be read."""
        # Contract §3 [UNK]: whether `offset` counts records (SDK: "skip offset records") or pages (SDK:
        # "default 1"). Count records; if that brings nothing new while total_count says there is more, the
        # service counts pages: switch once.
        seen: set[str] = set()
        offset, page, by_page = 0, 1, False
        for _ in range(MAX_JOB_PAGES):
            self._caller.stats.job_lists += 1
            call = await self._caller.call("jobs", functools.partial(self._list, project_id, status, offset))
            if not call.ok:
                return call
            jobs, total = _jobs_page(call.reply)
            fresh = [job for job in jobs if job[0] not in seen]
            for job_id, instance_id in fresh:
                seen.add(job_id)
                found.setdefault(instance_id, []).append(job_id)
            if total is not None and len(seen) >= total:
                return None
            if not fresh:
                if by_page or offset == 0:
                    return None
                by_page, page = True, 2
                offset = page
                continue
            if total is None and len(jobs) < JOBS_PAGE:
                return None
            page += 1
            offset = page if by_page else len(seen)
        return None

    def _list(self, project_id: str, status: str, offset: int) -> Awaitable[Reply]:
        return self._api.list_jobs(project_id, status=status, job_name=JOB_NAME, offset=offset, limit=JOBS_PAGE)


def _not_followed(job_id: str) -> JobResult:
    return JobResult(job_id, JOB_NOT_FOLLOWED, "the run stopped before the job ended")


def _job_of(reply: Reply | None) -> dict[str, Any] | None:
    body = reply.body if reply is not None else None
    job = body.get("job") if isinstance(body, dict) else None
    return job if isinstance(job, dict) else None


def _not_found_yet(call: CallResult) -> bool:
    """Contract §3: a new job may not be queryable for a few seconds; the answer then is [UNK].

    Any 4xx, or a 200 without a job status, is taken as "not visible yet" during the grace period.
    """
    if call.reply is None:
        return False
    return call.reply.ok or 400 <= call.reply.status < 500


def _jobs_page(reply: Reply | None) -> tuple[list[tuple[str, str]], int | None]:
    body = reply.body if reply is not None else None
    items = body.get("jobs") if isinstance(body, dict) else None
    total = body.get("total_count") if isinstance(body, dict) else None
    jobs = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("job_name") not in (None, "", JOB_NAME):
            continue
        job_id, instance_id = item.get("job_id"), item.get("instance_id")
        if isinstance(job_id, str) and isinstance(instance_id, str):
            jobs.append((job_id, instance_id))
    return jobs, total if isinstance(total, int) and not isinstance(total, bool) else None
