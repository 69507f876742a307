"""A job's end and the read-back that verifies it: `apply --wait` and `orchestrator jobs`.

With --wait every job a lane submitted is followed to its end; once an instance's lanes are done, the instance
is read back once and each waited change gets its final outcome (`verify`). `orchestrator jobs` does the same
for jobs an earlier run recorded (`follow`), polling each once unless asked to wait.

A class of its own rather than a part of Engine: both commands end here, and it needs only the job watcher,
the listing, the outcome ledger and the stop's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from .jobs import JOB_IN_PROGRESS, JOB_NOT_FOLLOWED, JOB_SUCCESS, JobResult, JobWatcher
from .listing import InstanceView
from .outcomes import EFFECT_NOTE, Outcomes
from .plan import Mode
from .preview import Step
from .report import Outcome
from .stopping import Stopping

# A change whose job was followed: its step, its job id, and how the job ended (or that it was not followed).
Waited = tuple[Step, str, JobResult]


class Verifier:
    def __init__(
        self,
        watcher: JobWatcher,
        observe: Callable[[str, str], Awaitable[InstanceView]],
        outcomes: Outcomes,
        stopping: Stopping,
        *,
        on_job: Callable[[Step, JobResult], None],
        clock: Callable[[], float],
    ) -> None:
        self._watcher = watcher
        self._observe = observe
        self._outcomes = outcomes
        self._stopping = stopping
        self._on_job = on_job
        self._clock = clock

    async def follow(self, recorded: Sequence[tuple[Step, str]], *, wait: bool) -> None:
        """`orchestrator jobs`: the final state of jobs an earlier run recorded (see Engine.follow)."""
        groups: dict[tuple[str, str], list[tuple[Step, str]]] = {}
        for step, job_id in recorded:
            groups.setdefault((step.project_id, step.instance_id), []).append((step, job_id))

        async def one_instance(key: tuple[str, str], items: list[tuple[Step, str]]) -> None:
            ended: list[Waited] = []
            for step, job_id in items:
                job = await (self._watcher.wait if wait else self._watcher.peek)(step.project_id, job_id)
                if job.status in JOB_IN_PROGRESS:
                    self._on_job(step, job)
                else:
                    ended.append((step, job_id, job))
            if ended:
                await self.verify(key[0], key[1], ended)

        await asyncio.gather(*(one_instance(key, items) for key, items in groups.items()))

    async def verify(self, project_id: str, instance_id: str, waited: list[Waited]) -> None:
        """--wait: read the instance back once and give each waited change its final outcome.

        A job the run stopped following keeps the outcome `submitted` (the change was accepted and its job id
        is known; `unknown` is for a PUT whose answer was lost), with a note, so that `orchestrator jobs`
        follows it later and `--resume` does not send it again.
        """
        emit = self._outcomes.emit
        started = self._clock()
        modes: dict[str, Mode | None] | None = None
        if any(job.status != JOB_NOT_FOLLOWED for _, _, job in waited):
            view = await self._observe(project_id, instance_id)
            modes = {p.proxy_id: p.mode for p in view.proxies} if view.proxies is not None else None
        for step, job_id, job in waited:
            # A read-back kept from us by a stop leaves `verified` null: the job's end is known, nothing is undone.
            verified = None if modes is None else modes.get(step.proxy_id) == step.mode_target
            if job.status == JOB_NOT_FOLLOWED:
                why = self._stopping.reason or "the run stopped"
                note = f"job not followed to its end, the run stopped: {why}; `orchestrator jobs REPORT` follows it"
                note = f"{note}; {EFFECT_NOTE}"
                emit(step, Outcome.SUBMITTED, started, job_id=job_id, note=note, cut_short=True)
            elif job.status == JOB_SUCCESS:
                note = EFFECT_NOTE if verified is not False else "the job completed but the listing shows another mode"
                emit(step, Outcome.COMPLETED, started, job_id=job_id, verified=verified, note=note)
            elif job.status == "timeout":
                error = (None, "job_timeout", job.fail_reason)
                emit(step, Outcome.JOB_TIMEOUT, started, job_id=job_id, verified=verified, error=error)
            elif job.status == "unreadable":
                error = (None, "job_unreadable", job.fail_reason)
                emit(step, Outcome.UNKNOWN, started, job_id=job_id, verified=verified, error=error)
            else:  # Failed, Canceled, Unauthorized or a status the contract does not know: a failure
                error = (None, f"job_{job.status.lower()}", job.fail_reason or f"the job ended {job.status}")
                emit(step, Outcome.JOB_FAILED, started, job_id=job_id, verified=verified, error=error)
