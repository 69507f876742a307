"""The engine: observe each instance, then change its proxies, retrying what is worth retrying.

Per instance (all instances concurrently; the API's governor bounds calls in flight and their rate):
  1. list the instance's proxies (paged, one listing per instance, never one per proxy: `listing.py`);
  2. resolve the plan's targets against the listing (`preview.resolve`): `all` expands, goals already met
     are `unchanged`, proxies not listed are `failed`;
  3. unless this is a dry run, change the rest through `per_instance` lanes. A lane starts its next proxy
     only after the previous job has left Pending/Running (the service runs one operation per instance and
     answers 409 DBS.200019 otherwise, contract §10).
Every settled target is handed to `on_outcome` at once (the report writes it before anything else happens:
`outcomes.py`).

Nothing is sent for an instance whose listing fails (its targets are `failed`, error_code `listing_failed`),
nor for a project whose running consistency jobs cannot be listed at start (`running_jobs_unknown`): a job left
by an earlier run could still be running there, and changing on top of it could duplicate it.

A PUT whose answer was lost after it was sent may have been applied. Before any further attempt for that
proxy the engine reads the instance's listing again: if the proxy is at its goal the change is settled as
`submitted` without a job id; if it cannot tell, the outcome is `unknown`, never a blind re-send
(`lostanswers.py`).

The run's stop and its failure budget are `stopping.py`; following jobs to their end and verifying them
(--wait, `orchestrator jobs`) is `verifying.py`. The engine wires them together and owns the lanes and the PUT.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from datetime import UTC, datetime

from .api import ProxyApi
from .budget import FailureBudget
from .calls import Caller, CallResult, CallStats
from .gate import Key, drift
from .jobs import JOB_NOT_FOLLOWED, JOB_SUCCESS, JobResult, JobWatcher
from .listing import InstanceView, list_instance
from .lostanswers import LostAnswers
from .outcomes import EFFECT_NOTE, Outcomes
from .plan import Mode, Plan, Target
from .preview import Action, Step, resolve
from .report import Outcome, TargetOutcome
from .retrying import BUSY_CODES
from .stopping import BUDGET_FAILURES, StopKind, Stopping
from .verifying import Verifier, Waited

__all__ = ["Engine", "StopKind", "group_by_instance"]


class Engine:
    def __init__(
        self,
        api: ProxyApi,
        plan: Plan,
        *,
        on_outcome: Callable[[TargetOutcome], None],
        on_job: Callable[[Step, JobResult], None] = lambda step, job: None,
        dry_run: bool = False,
        approved: Mapping[Key, Mode | None] | None = None,
        skip: Set[Key] = frozenset(),
        budget: FailureBudget | None = None,
        on_stop: Callable[[], None] = lambda: None,
        wait: bool | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._plan = plan
        self._per_instance = plan.limits.per_instance
        self._on_job = on_job
        self._dry_run = dry_run
        self._clock = clock
        self._approved = approved  # the approved preview's observed modes: per-item compare-and-set
        self._wait = plan.jobs.wait if wait is None else wait  # follow every job to its end, then verify
        self._stopping = Stopping(budget, on_stop)
        self._outcomes = Outcomes(on_outcome, clock=clock, skip=skip)
        self.stats = CallStats()
        self._caller = Caller(
            plan.retry,
            stats=self.stats,
            is_stopping=self._stopping.is_set,
            on_auth_failure=self._stopping.authentication_failed,
            rng=rng,
            sleep=sleep,
            wall_clock=wall_clock,
        )
        self._watcher = JobWatcher(api, self._caller, plan.jobs, clock=clock, is_stopping=self._stopping.is_set)
        self.retry_budget = self._caller.budget
        self._lost = LostAnswers(self._watcher, self.observe, is_stopping=self._stopping.is_set)
        self._verifier = Verifier(
            self._watcher, self.observe, self._outcomes, self._stopping, on_job=on_job, clock=clock
        )
        self.steps: list[Step] = []  # every resolved step, in the order instances were observed
        self._resolved: dict[tuple[str, str], list[Step]] = {}

    # --- public -------------------------------------------------------------------------------------------

    def stop(self, reason: str, kind: StopKind = "requested") -> None:
        """Start nothing new; targets not yet started settle as `not_started`. The first reason wins."""
        self._stopping.stop(reason, kind)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def stop_reason(self) -> str | None:
        """Why the run stopped (the first reason given), or None."""
        return self._stopping.reason

    @property
    def stop_kind(self) -> StopKind | None:
        """Why the run stopped early: it decides the exit code (run.py)."""
        return self._stopping.kind

    @property
    def auth_failure(self) -> str | None:
        """Set when the credentials were refused: the run stops."""
        return self._stopping.auth_failure

    @property
    def skipped(self) -> int:
        """Targets skipped because an earlier run settled them."""
        return self._outcomes.skipped

    @property
    def cut_short(self) -> int:
        """How many targets the stop left undone: `not_started`, a retry or a job's end it kept from happening,
        a change cancelled on the wire. 0 after a stop means it came too late to matter (run.exit_code_for)."""
        return len(self._outcomes.cut_short)

    async def run(self) -> None:
        """Run every instance; whatever way it ends (cancelled included), every target gets exactly one line."""
        groups = group_by_instance(self._plan.targets)
        try:
            if not self._dry_run:
                await self._lost.find_jobs_left_running({project for project, _ in groups})
            await asyncio.gather(*(self._run_instance(key, targets) for key, targets in groups.items()))
        finally:
            note = self.stop_reason or "the run ended before this target"
            self._outcomes.settle_the_rest(groups, self._resolved, note)

    async def follow(self, recorded: Sequence[tuple[Step, str]], *, wait: bool) -> None:
        """`orchestrator jobs`: the final state of jobs an earlier run recorded (`submitted` with a job id).

        Each job is polled once (or, with `wait`, to its end); ended ones get their final outcome after one
        read-back listing per instance, as with `apply --wait`; jobs still in progress get a `job` line. If the
        run stops, the jobs not followed yet stay `submitted` (a new line, with a note), to be followed later.
        """
        await self._verifier.follow(recorded, wait=wait)

    async def observe(self, project_id: str, instance_id: str) -> InstanceView:
        """Every proxy of one instance, all pages (contract §2: no total_count; stop at a short page)."""
        return await list_instance(self._api, self._caller, project_id, instance_id)

    # --- per instance -------------------------------------------------------------------------------------

    async def _run_instance(self, key: tuple[str, str], targets: list[Target]) -> None:
        project_id, instance_id = key
        started = self._clock()
        if all(t.key in self._outcomes.skip for t in targets):  # resume: all done before, not even a listing
            self._outcomes.skipped += len(targets)
            return
        if self._stopping.is_set():
            self._outcomes.settle_unlisted(targets, Outcome.NOT_STARTED, started, note=self.stop_reason)
            return
        if project_id in self._lost.jobs_unknown:
            status, problem = self._lost.jobs_unknown[project_id]
            why = f"the consistency jobs still running in the project cannot be listed: {problem}"
            note = "nothing sent: a job left running by an earlier run could be duplicated"
            self._outcomes.settle_unlisted(
                targets, Outcome.FAILED, started, error=(status, "running_jobs_unknown", why), note=note
            )
            return
        await self._lost.wait_for_jobs_left_running(key)
        view = await self.observe(project_id, instance_id)
        if view.proxies is None and view.call.wire == 0 and self._stopping.is_set():
            # the run stopped before this instance's listing was sent
            self._outcomes.settle_unlisted(targets, Outcome.NOT_STARTED, started, note=self.stop_reason)
            return
        if view.proxies is None:
            status, _, _ = view.call.describe()
            why = f"the instance's proxy listing failed: {view.failure()}"
            self._outcomes.settle_unlisted(
                targets,
                Outcome.FAILED,
                started,
                call=view.call,
                error=(status, "listing_failed", why),
                note="nothing sent",
            )
            return
        steps = resolve(targets, view.proxies)
        if not steps:
            error = (None, "no_proxies", "the instance's proxy listing is empty")
            self._outcomes.settle_unlisted(targets, Outcome.FAILED, started, error=error)
            return
        self._resolved[key] = steps
        self.steps.extend(steps)
        pending: deque[Step] = deque()
        for step in steps:
            if step.key in self._outcomes.skip:
                self._outcomes.skipped += 1
                continue
            drifted = drift(self._approved, step) if self._approved is not None else None
            if drifted is not None:
                self._outcomes.emit(step, Outcome.DRIFTED, started, note=drifted)
            elif step.action is Action.UNCHANGED:
                self._outcomes.emit(step, Outcome.UNCHANGED, started, note="already at the goal; nothing sent")
            elif step.action is Action.MISSING:
                self._outcomes.emit(
                    step,
                    Outcome.FAILED,
                    started,
                    error=(None, "proxy_not_found", "the proxy is not in the instance's proxy listing"),
                )
            elif self._dry_run:
                self._outcomes.emit(step, Outcome.WOULD_CHANGE, started)
            else:
                pending.append(step)
        lanes = min(self._per_instance, len(pending))
        waited: list[Waited] = []
        await asyncio.gather(*(self._lane(pending, waited) for _ in range(lanes)))
        if waited:
            await self._verifier.verify(project_id, instance_id, waited)

    async def _lane(self, pending: deque[Step], waited: list[Waited]) -> None:
        while pending:
            step = pending.popleft()
            if self._stopping.is_set() or not await self._stopping.budget_allows_start():
                self._outcomes.emit(step, Outcome.NOT_STARTED, self._clock(), note=self.stop_reason)
                continue
            failed = True
            try:
                job_id = await self._change(step)
                failed = self._outcomes.last.get(step.key) in BUDGET_FAILURES
                if job_id is not None and (self._wait or pending):
                    # The next change on this instance would be refused while this job runs; with --wait
                    # every job is followed to its end. One poll loop serves both.
                    job = await self._watcher.wait(step.project_id, job_id)
                    if self._wait:
                        waited.append((step, job_id, job))
                        failed = job.status not in (JOB_SUCCESS, JOB_NOT_FOLLOWED)
                    elif job.status != JOB_NOT_FOLLOWED:  # the run stopped: nothing was learnt about the job
                        self._on_job(step, job)
            finally:
                await self._stopping.budget_settled(failed)

    # --- changing -----------------------------------------------------------------------------------------

    async def _change(self, step: Step) -> str | None:
        """Change one proxy; emit its outcome; return the job id when there is one."""
        started = self._clock()
        attempts = wire = 0
        ambiguous = False  # an earlier attempt may have been applied
        busy = False  # the instance was busy: maybe with a change of this very proxy (an earlier run's, say)
        while True:
            if ambiguous or busy:
                settled = await self._lost.settled_after_ambiguity(step)
                if settled is True:
                    if ambiguous:
                        note = "an earlier attempt's answer was lost, but the listing shows the proxy at its goal"
                        self._outcomes.emit(step, Outcome.SUBMITTED, started, attempts=attempts, wire=wire, note=note)
                    else:
                        note = "reached its goal while another operation ran on the instance; nothing more sent"
                        self._outcomes.emit(step, Outcome.UNCHANGED, started, attempts=attempts, wire=wire, note=note)
                    return None
                if settled is None and ambiguous:
                    self._outcomes.emit(
                        step,
                        Outcome.UNKNOWN,
                        started,
                        attempts=attempts,
                        wire=wire,
                        error=(None, "outcome_unknown", "an attempt's answer was lost and the state cannot be read"),
                        cut_short=self._stopping.is_set(),  # the state may have gone unread because of the stop
                    )
                    return None
            attempts += 1
            self.stats.puts += 1
            reply, error = await self._caller.attempt(
                lambda: self._api.change_consistency(
                    step.project_id,
                    step.instance_id,
                    step.proxy_id,
                    step.mode_target,
                    admitted=lambda: self._outcomes.put_in_flight.add(step.key),  # from now on it may be on the wire
                )
            )
            if error is None or not error.sent:
                self._outcomes.put_in_flight.discard(step.key)
            wire += reply.wire if reply is not None else error.wire if error is not None else 0
            if reply is not None and reply.ok:
                job_id = reply.body.get("job_id") if isinstance(reply.body, dict) else None
                if isinstance(job_id, str) and job_id:
                    self._outcomes.emit(
                        step,
                        Outcome.SUBMITTED,
                        started,
                        attempts=attempts,
                        wire=wire,
                        reply=reply,
                        job_id=job_id,
                        note=EFFECT_NOTE,
                    )
                    return job_id
                # A 2xx means the service accepted the change, but without a readable job_id (contract §10
                # allows 200 without a job for a no-op, which we never send; a cut body does the same). So
                # never `failed`: let the instance's jobs end, then the listing says submitted or unknown.
                what = "a JSON object without job_id" if isinstance(reply.body, dict) else "no JSON object"
                settled = await self._lost.settled_after_ambiguity(step)
                if settled is True:
                    note = f"the service answered {reply.status} with {what}; the listing shows the proxy at its goal"
                    self._outcomes.emit(
                        step, Outcome.SUBMITTED, started, attempts=attempts, wire=wire, reply=reply, note=note
                    )
                else:
                    problem = (reply.status, "no_job_id", f"the service answered {reply.status} with {what}")
                    self._outcomes.emit(step, Outcome.UNKNOWN, started, attempts=attempts, wire=wire, error=problem)
                return None
            failure = self._caller.failure(reply, error)
            if error is not None and error.sent:
                ambiguous = True
            busy = failure.status == 409 and failure.error_code in BUSY_CODES
            retry, delay = self._caller.decide(attempts, failure)
            if not retry or self._stopping.is_set():
                not_sent = error is not None and error.kind == "not_sent"
                if self._stopping.is_set() and not ambiguous and (wire == 0 or not_sent):
                    # Nothing of this target left, or only attempts the service refused for sure: not applied.
                    self._outcomes.emit(step, Outcome.NOT_STARTED, started, attempts=attempts, note=self.stop_reason)
                    return None
                outcome = Outcome.UNKNOWN if ambiguous else Outcome.FAILED
                result = CallResult(reply, error, attempts, wire)
                status, code, msg = result.describe()
                error_ = (status, code, msg)
                # `retry` still true: only the stop kept this change from another attempt.
                self._outcomes.emit(step, outcome, started, attempts=attempts, wire=wire, error=error_, cut_short=retry)
                return None
            self.stats.retries += 1
            await self._caller.sleep(delay)


def group_by_instance(targets: Sequence[Target]) -> dict[tuple[str, str], list[Target]]:
    """Targets per (project, instance), in the order instances first appear in the plan."""
    groups: dict[tuple[str, str], list[Target]] = {}
    for target in targets:
        groups.setdefault((target.project_id, target.instance_id), []).append(target)
    return groups
