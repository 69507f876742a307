"""The engine: observe each instance, then change its proxies, retrying what is worth retrying.

Per instance (all instances concurrently; the API's governor bounds calls in flight and their rate):
  1. list the instance's proxies (paged, one listing per instance, never one per proxy);
  2. resolve the plan's targets against the listing (`preview.resolve`): `all` expands, goals already met
     are `unchanged`, proxies not listed are `failed`;
  3. unless this is a dry run, change the rest through `per_instance` lanes. A lane starts its next proxy
     only after the previous job has left Pending/Running (the service runs one operation per instance and
     answers 409 DBS.200019 otherwise, contract §10).
Every settled target is handed to `on_outcome` at once (the report writes it before anything else happens).

Nothing is sent for an instance whose listing fails (its targets are `failed`, error_code `listing_failed`),
nor for a project whose running consistency jobs cannot be listed at start (`running_jobs_unknown`): a job left
by an earlier run could still be running there, and changing on top of it could duplicate it.

A PUT whose answer was lost after it was sent may have been applied. Before any further attempt for that
proxy the engine reads the instance's listing again: if the proxy is at its goal the change is settled as
`submitted` without a job id; if it cannot tell, the outcome is `unknown`, never a blind re-send.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog

from .api import PAGE_LIMIT, ProxyApi, Reply
from .budget import FailureBudget
from .calls import Caller, CallResult, CallStats
from .gate import Key, drift
from .jobs import JOB_IN_PROGRESS, JOB_NOT_FOLLOWED, JOB_SUCCESS, JobResult, JobWatcher
from .plan import JobSettings, Mode, Plan, Target
from .preview import Action, ListingError, ObservedProxy, Step, parse_proxy_page, resolve
from .report import Outcome, TargetOutcome
from .retrying import BUSY_CODES

# Why a run stopped early: it decides the exit code (run.py).
StopKind = Literal["requested", "auth", "budget", "window", "signal"]
BUDGET_FAILURES = frozenset({Outcome.FAILED, Outcome.UNKNOWN})  # what the failure budget counts
# Appended to the budget's stop reason: the report's `failed` count also holds targets failed with nothing sent.
BUDGET_COUNTS = (
    "; it counts changes sent that failed or whose outcome is unknown, not targets failed before anything was "
    "sent (listing_failed, running_jobs_unknown, proxy_not_found)"
)
# Contract §1: "After the consistency level is changed, you need to manually reboot the proxy instance or
# reconnect your application."
EFFECT_NOTE = "takes effect once the proxy restarts or clients reconnect"
# A stop reason says why (the report summary shows it as "stopped: <reason>"), never "stopped: ..." itself.
log = structlog.get_logger("orchestrator")
MAX_PAGES = 1000  # 100 per page: far beyond any real instance, but a broken server cannot loop us forever


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One instance's listing, or why it could not be read."""

    proxies: tuple[ObservedProxy, ...] | None
    call: CallResult
    problem: str | None = None

    def failure(self) -> str:
        """Why the listing could not be read, in one line: the service's answer, the transport, or the body."""
        return self.problem if self.problem is not None else self.call.failure()


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
        self._jobs: JobSettings = plan.jobs
        self._per_instance = plan.limits.per_instance
        self._on_outcome = on_outcome
        self._on_job = on_job
        self._dry_run = dry_run
        self._clock = clock
        self._approved = approved  # the approved preview's observed modes: per-item compare-and-set
        self._skip = skip  # targets done in an earlier run (resume): not listed for, not sent, not reported
        self._budget = budget
        self._on_stop = on_stop  # e.g. close the governor: calls still waiting for their turn are not sent
        self._wait = plan.jobs.wait if wait is None else wait  # follow every job to its end, then verify
        self._budget_changed = asyncio.Condition()
        self._changes_in_flight = 0
        self._wakers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.stop_reason: str | None = None
        self.stop_kind: StopKind | None = None
        self.auth_failure: str | None = None  # set when the credentials were refused: the run stops
        self.stats = CallStats()
        self._caller = Caller(
            plan.retry,
            stats=self.stats,
            is_stopping=self._stopping.is_set,
            on_auth_failure=self._authentication_failed,
            rng=rng,
            sleep=sleep,
            wall_clock=wall_clock,
        )
        self._watcher = JobWatcher(api, self._caller, plan.jobs, clock=clock, is_stopping=self._stopping.is_set)
        self.retry_budget = self._caller.budget
        self._busy_at_start: dict[tuple[str, str], list[str]] = {}
        # project -> (HTTP status, why) its running jobs could not be listed at start: nothing is sent there
        self._jobs_unknown: dict[str, tuple[int | None, str]] = {}
        self.steps: list[Step] = []  # every resolved step, in the order instances were observed
        self.skipped = 0  # targets skipped because an earlier run settled them
        self._settled: set[Key] = set()  # every key an outcome was emitted for
        self._put_in_flight: set[Key] = set()  # keys whose PUT may be on the wire right now
        self._resolved: dict[tuple[str, str], list[Step]] = {}
        self._last_outcome: dict[Key, Outcome] = {}
        self._cut_short: set[Key] = set()  # targets whose outcome the stop decided (not_started, cut short)

    # --- public -------------------------------------------------------------------------------------------

    def stop(self, reason: str, kind: StopKind = "requested") -> None:
        """Start nothing new; targets not yet started settle as `not_started`. The first reason wins."""
        if not self._stopping.is_set():
            self.stop_reason = reason
            self.stop_kind = kind
            self._stopping.set()
            self._on_stop()
            if self._budget is not None:  # lanes waiting for the budget must see the stop
                self._wakers.add(task := asyncio.get_running_loop().create_task(self._wake_budget_waiters()))
                task.add_done_callback(self._wakers.discard)

    async def _wake_budget_waiters(self) -> None:
        async with self._budget_changed:
            self._budget_changed.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def cut_short(self) -> int:
        """How many targets the stop left undone: `not_started`, a retry or a job's end it kept from happening,
        a change cancelled on the wire. 0 after a stop means it came too late to matter (run.exit_code_for)."""
        return len(self._cut_short)

    async def run(self) -> None:
        """Run every instance; whatever way it ends (cancelled included), every target gets exactly one line."""
        groups = group_by_instance(self._plan.targets)
        try:
            if not self._dry_run:
                await self._find_jobs_left_running({project for project, _ in groups})
            await asyncio.gather(*(self._run_instance(key, targets) for key, targets in groups.items()))
        finally:
            self._settle_the_rest(groups)

    async def follow(self, recorded: Sequence[tuple[Step, str]], *, wait: bool) -> None:
        """`orchestrator jobs`: the final state of jobs an earlier run recorded (`submitted` with a job id).

        Each job is polled once (or, with `wait`, to its end); ended ones get their final outcome after one
        read-back listing per instance, as with `apply --wait`; jobs still in progress get a `job` line. If the
        run stops, the jobs not followed yet stay `submitted` (a new line, with a note), to be followed later.
        """
        groups: dict[tuple[str, str], list[tuple[Step, str]]] = {}
        for step, job_id in recorded:
            groups.setdefault((step.project_id, step.instance_id), []).append((step, job_id))

        async def one_instance(key: tuple[str, str], items: list[tuple[Step, str]]) -> None:
            ended: list[tuple[Step, str, JobResult]] = []
            for step, job_id in items:
                job = await (self._watcher.wait if wait else self._watcher.peek)(step.project_id, job_id)
                if job.status in JOB_IN_PROGRESS:
                    self._on_job(step, job)
                else:
                    ended.append((step, job_id, job))
            if ended:
                await self._verify(key[0], key[1], ended)

        await asyncio.gather(*(one_instance(key, items) for key, items in groups.items()))

    def _settle_the_rest(self, groups: Mapping[tuple[str, str], list[Target]]) -> None:
        """After a cancellation: a PUT that was on the wire is `unknown`, anything else `not_started`."""
        now = self._clock()
        note = self.stop_reason or "the run ended before this target"
        for key, targets in groups.items():
            steps = self._resolved.get(key)
            if steps is None:
                for target in targets:
                    if target.key not in self._settled and target.key not in self._skip:
                        self._emit_plain(target, None, Outcome.NOT_STARTED, now, note=note)
                continue
            for step in steps:
                if step.key in self._settled or step.key in self._skip:
                    continue
                if step.key in self._put_in_flight:
                    error = (None, "outcome_unknown", "the run was cancelled while this change was on the wire")
                    self._emit(step, Outcome.UNKNOWN, now, error=error, note=note, cut_short=True)
                else:
                    self._emit(step, Outcome.NOT_STARTED, now, note=note)

    # --- per instance -------------------------------------------------------------------------------------

    async def _run_instance(self, key: tuple[str, str], targets: list[Target]) -> None:
        project_id, instance_id = key
        started = self._clock()
        if all(t.key in self._skip for t in targets):  # resume: all done before, not even a listing
            self.skipped += len(targets)
            return
        if self._stopping.is_set():
            self._settle_unlisted(targets, Outcome.NOT_STARTED, started, note=self.stop_reason)
            return
        if project_id in self._jobs_unknown:
            status, problem = self._jobs_unknown[project_id]
            why = f"the consistency jobs still running in the project cannot be listed: {problem}"
            note = "nothing sent: a job left running by an earlier run could be duplicated"
            self._settle_unlisted(
                targets, Outcome.FAILED, started, error=(status, "running_jobs_unknown", why), note=note
            )
            return
        if key in self._busy_at_start:
            await self._wait_for_jobs(project_id, instance_id, self._busy_at_start[key])
        view = await self.observe(project_id, instance_id)
        if view.proxies is None and view.call.wire == 0 and self._stopping.is_set():
            # the run stopped before this instance's listing was sent
            self._settle_unlisted(targets, Outcome.NOT_STARTED, started, note=self.stop_reason)
            return
        if view.proxies is None:
            status, _, _ = view.call.describe()
            why = f"the instance's proxy listing failed: {view.failure()}"
            self._settle_unlisted(
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
            self._settle_unlisted(targets, Outcome.FAILED, started, error=error)
            return
        self._resolved[key] = steps
        self.steps.extend(steps)
        pending: deque[Step] = deque()
        for step in steps:
            if step.key in self._skip:
                self.skipped += 1
                continue
            drifted = drift(self._approved, step) if self._approved is not None else None
            if drifted is not None:
                self._emit(step, Outcome.DRIFTED, started, note=drifted)
            elif step.action is Action.UNCHANGED:
                self._emit(step, Outcome.UNCHANGED, started, note="already at the goal; nothing sent")
            elif step.action is Action.MISSING:
                self._emit(
                    step,
                    Outcome.FAILED,
                    started,
                    error=(None, "proxy_not_found", "the proxy is not in the instance's proxy listing"),
                )
            elif self._dry_run:
                self._emit(step, Outcome.WOULD_CHANGE, started)
            else:
                pending.append(step)
        lanes = min(self._per_instance, len(pending))
        waited: list[tuple[Step, str, JobResult]] = []
        await asyncio.gather(*(self._lane(pending, waited) for _ in range(lanes)))
        if waited:
            await self._verify(project_id, instance_id, waited)

    async def _lane(self, pending: deque[Step], waited: list[tuple[Step, str, JobResult]]) -> None:
        while pending:
            step = pending.popleft()
            if self._stopping.is_set() or not await self._budget_allows_start():
                self._emit(step, Outcome.NOT_STARTED, self._clock(), note=self.stop_reason)
                continue
            failed = True
            try:
                job_id = await self._change(step)
                failed = self._last_outcome.get(step.key) in BUDGET_FAILURES
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
                await self._budget_settled(failed)

    async def _verify(self, project_id: str, instance_id: str, waited: list[tuple[Step, str, JobResult]]) -> None:
        """--wait: read the instance back once and give each waited change its final outcome.

        A job the run stopped following keeps the outcome `submitted` (the change was accepted and its job id
        is known; `unknown` is for a PUT whose answer was lost), with a note, so that `orchestrator jobs`
        follows it later and `--resume` does not send it again.
        """
        started = self._clock()
        modes: dict[str, Mode | None] | None = None
        if any(job.status != JOB_NOT_FOLLOWED for _, _, job in waited):
            view = await self.observe(project_id, instance_id)
            modes = {p.proxy_id: p.mode for p in view.proxies} if view.proxies is not None else None
        for step, job_id, job in waited:
            # A read-back kept from us by a stop leaves `verified` null: the job's end is known, nothing is undone.
            verified = None if modes is None else modes.get(step.proxy_id) == step.mode_target
            if job.status == JOB_NOT_FOLLOWED:
                why = self.stop_reason or "the run stopped"
                note = f"job not followed to its end, the run stopped: {why}; `orchestrator jobs REPORT` follows it"
                note = f"{note}; {EFFECT_NOTE}"
                self._emit(step, Outcome.SUBMITTED, started, job_id=job_id, note=note, cut_short=True)
            elif job.status == JOB_SUCCESS:
                note = EFFECT_NOTE if verified is not False else "the job completed but the listing shows another mode"
                self._emit(step, Outcome.COMPLETED, started, job_id=job_id, verified=verified, note=note)
            elif job.status == "timeout":
                error = (None, "job_timeout", job.fail_reason)
                self._emit(step, Outcome.JOB_TIMEOUT, started, job_id=job_id, verified=verified, error=error)
            elif job.status == "unreadable":
                error = (None, "job_unreadable", job.fail_reason)
                self._emit(step, Outcome.UNKNOWN, started, job_id=job_id, verified=verified, error=error)
            else:  # Failed, Canceled, Unauthorized or a status the contract does not know: a failure
                error = (None, f"job_{job.status.lower()}", job.fail_reason or f"the job ended {job.status}")
                self._emit(step, Outcome.JOB_FAILED, started, job_id=job_id, verified=verified, error=error)

    # --- jobs left running ---------------------------------------------------------------------------------

    async def _find_jobs_left_running(self, projects: set[str]) -> None:
        """Which instances still run a consistency job (an earlier run's, killed or back to back)?

        Such a job may finish after our listing and make our change a duplicate, so those instances wait for
        it first. The listing is retried like any call; if it still fails (a permission, an outage), nothing is
        sent in that project: its targets fail as `running_jobs_unknown` (see _run_instance).
        """
        for project_id in sorted(projects):
            running = await self._watcher.running(project_id)
            if running.problem is not None and not self._stopping.is_set():
                log.warning(
                    "consistency jobs still running cannot be listed: the project's targets are not changed",
                    project=project_id,
                    problem=running.problem,
                )
                self._jobs_unknown[project_id] = (running.status, running.problem)
            for instance_id, job_ids in running.by_instance.items():
                self._busy_at_start[(project_id, instance_id)] = job_ids

    async def _wait_for_jobs(self, project_id: str, instance_id: str, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            log.info("waiting for a job already running on the instance", instance=instance_id, job_id=job_id)
            await self._watcher.wait(project_id, job_id)

    async def _wait_instance_idle(self, project_id: str, instance_id: str) -> bool:
        """Wait for the consistency jobs running on the instance; False if they could not be listed."""
        running = await self._watcher.running(project_id)
        await self._wait_for_jobs(project_id, instance_id, running.by_instance.get(instance_id, []))
        return running.problem is None

    # --- the failure budget ---------------------------------------------------------------------------------

    async def _budget_allows_start(self) -> bool:
        """Wait until the budget lets one more change start (True), or the run stops (False).

        The check and the count of changes in flight happen with no await between them, so the budget can
        never be overshot however many lanes wait here (see budget.py).
        """
        if self._budget is None:
            return True
        async with self._budget_changed:
            while not self._stopping.is_set():
                if self._budget.exhausted:
                    self._stop_for_budget()
                    break
                if self._budget.may_start(self._changes_in_flight):
                    self._changes_in_flight += 1
                    return True
                await self._budget_changed.wait()
            self._budget_changed.notify_all()
            return False

    async def _budget_settled(self, failed: bool) -> None:
        if self._budget is None:
            return
        async with self._budget_changed:
            self._changes_in_flight -= 1
            self._budget.record(failed)
            if self._budget.exhausted:
                self._stop_for_budget()
            self._budget_changed.notify_all()

    def _stop_for_budget(self) -> None:
        assert self._budget is not None
        self.stop((self._budget.reason or "the failure budget is spent") + BUDGET_COUNTS, "budget")

    # --- observing ----------------------------------------------------------------------------------------

    async def observe(self, project_id: str, instance_id: str) -> InstanceView:
        """Every proxy of one instance, all pages (contract §2: no total_count; stop at a short page)."""
        proxies: list[ObservedProxy] = []
        offset = 0
        attempts = wire = 0
        for _ in range(MAX_PAGES):
            self.stats.listings += 1
            call = await self._caller.call("list", functools.partial(self._list_page, project_id, instance_id, offset))
            attempts += call.attempts
            wire += call.wire
            total = CallResult(call.reply, call.error, attempts, wire)
            if not call.ok:
                return InstanceView(None, total)
            assert call.reply is not None
            if call.reply.body is None:
                return InstanceView(None, total, problem="the listing is not JSON (cut short or garbled)")
            try:
                page = parse_proxy_page(call.reply.body)
            except ListingError as exc:
                return InstanceView(None, total, problem=f"unexpected listing: {exc}")
            proxies.extend(page)
            if len(page) < PAGE_LIMIT:
                return InstanceView(tuple(proxies), total)
            offset += len(page)
        return InstanceView(None, total, problem=f"listing did not end after {MAX_PAGES} pages")

    def _list_page(self, project_id: str, instance_id: str, offset: int) -> Awaitable[Reply]:
        return self._api.list_proxies(project_id, instance_id, offset=offset, limit=PAGE_LIMIT)

    # --- changing -----------------------------------------------------------------------------------------

    async def _change(self, step: Step) -> str | None:
        """Change one proxy; emit its outcome; return the job id when there is one."""
        started = self._clock()
        attempts = wire = 0
        ambiguous = False  # an earlier attempt may have been applied
        busy = False  # the instance was busy: maybe with a change of this very proxy (an earlier run's, say)
        while True:
            if ambiguous or busy:
                settled = await self._settled_after_ambiguity(step)
                if settled is True:
                    if ambiguous:
                        note = "an earlier attempt's answer was lost, but the listing shows the proxy at its goal"
                        self._emit(step, Outcome.SUBMITTED, started, attempts=attempts, wire=wire, note=note)
                    else:
                        note = "reached its goal while another operation ran on the instance; nothing more sent"
                        self._emit(step, Outcome.UNCHANGED, started, attempts=attempts, wire=wire, note=note)
                    return None
                if settled is None and ambiguous:
                    self._emit(
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
                    admitted=lambda: self._put_in_flight.add(step.key),  # from now on it may be on the wire
                )
            )
            if error is None or not error.sent:
                self._put_in_flight.discard(step.key)
            wire += reply.wire if reply is not None else error.wire if error is not None else 0
            if reply is not None and reply.ok:
                job_id = reply.body.get("job_id") if isinstance(reply.body, dict) else None
                if isinstance(job_id, str) and job_id:
                    self._emit(
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
                settled = await self._settled_after_ambiguity(step)
                if settled is True:
                    note = f"the service answered {reply.status} with {what}; the listing shows the proxy at its goal"
                    self._emit(step, Outcome.SUBMITTED, started, attempts=attempts, wire=wire, reply=reply, note=note)
                else:
                    problem = (reply.status, "no_job_id", f"the service answered {reply.status} with {what}")
                    self._emit(step, Outcome.UNKNOWN, started, attempts=attempts, wire=wire, error=problem)
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
                    self._emit(step, Outcome.NOT_STARTED, started, attempts=attempts, note=self.stop_reason)
                    return None
                outcome = Outcome.UNKNOWN if ambiguous else Outcome.FAILED
                result = CallResult(reply, error, attempts, wire)
                status, code, msg = result.describe()
                error_ = (status, code, msg)
                # `retry` still true: only the stop kept this change from another attempt.
                self._emit(step, outcome, started, attempts=attempts, wire=wire, error=error_, cut_short=retry)
                return None
            self.stats.retries += 1
            await self._caller.sleep(delay)

    async def _settled_after_ambiguity(self, step: Step) -> bool | None:
        """True: the proxy is at its goal. False: it is not (safe to send again). None: cannot tell.

        A job our lost PUT (or someone) started may still run: wait for the instance's running consistency
        jobs first, so that the listing shows their result.
        """
        if not await self._wait_instance_idle(step.project_id, step.instance_id):
            return None  # a job may still run unseen: a listing now could show the mode from before it
        view = await self.observe(step.project_id, step.instance_id)
        if view.proxies is None:
            return None
        for proxy in view.proxies:
            if proxy.proxy_id == step.proxy_id:
                return proxy.mode == step.mode_target if proxy.mode is not None else None
        return None

    def _authentication_failed(self, detail: str) -> None:
        """The Caller saw credentials refused for good: stop the run (nothing more is sent)."""
        if self.auth_failure is None:
            self.auth_failure = detail
            self.stop(f"authentication failed ({detail})", "auth")

    # --- outcomes -----------------------------------------------------------------------------------------

    def _emit(
        self,
        step: Step,
        outcome: Outcome,
        started: float,
        *,
        attempts: int = 0,
        wire: int = 0,
        reply: Reply | None = None,
        job_id: str | None = None,
        error: tuple[int | None, str | None, str | None] | None = None,
        note: str | None = None,
        verified: bool | None = None,
        cut_short: bool = False,
    ) -> None:
        """Hand one target's outcome to `on_outcome`. `cut_short`: the run's stop decided it (see cut_short)."""
        status, code, msg = error if error is not None else (reply.status if reply else None, None, None)
        if cut_short or outcome is Outcome.NOT_STARTED:
            self._cut_short.add(step.key)
        self._settled.add(step.key)
        self._put_in_flight.discard(step.key)
        self._last_outcome[step.key] = outcome
        self._on_outcome(
            TargetOutcome(
                project_id=step.project_id,
                instance_id=step.instance_id,
                proxy_id=step.proxy_id,
                mode_before=step.mode_before,
                mode_target=step.mode_target,
                outcome=outcome,
                job_id=job_id,
                attempts=attempts,
                wire_attempts=wire,
                http_status=status,
                error_code=code,
                error_msg=msg,
                elapsed_ms=round((self._clock() - started) * 1000),
                note=note,
                verified=verified,
            )
        )

    def _settle_unlisted(
        self,
        targets: Sequence[Target],
        outcome: Outcome,
        started: float,
        *,
        call: CallResult | None = None,
        error: tuple[int | None, str | None, str | None] | None = None,
        note: str | None = None,
    ) -> None:
        """Settle the targets of an instance whose proxies were not listed: nothing was sent for them (so the
        failure budget does not count them) and their mode before is unknown. Targets an earlier run settled
        (resume) stay settled: they are skipped, not reported again."""
        for target in targets:
            if target.key in self._skip:
                self.skipped += 1
            else:
                self._emit_plain(target, None, outcome, started, call=call, error=error, note=note)

    def _emit_plain(
        self,
        target: Target,
        mode_before: Mode | None,
        outcome: Outcome,
        started: float,
        *,
        call: CallResult | None = None,
        error: tuple[int | None, str | None, str | None] | None = None,
        note: str | None = None,
    ) -> None:
        step = Step(target.project_id, target.instance_id, target.proxy_id, mode_before, target.mode, Action.CHANGE)
        self._emit(
            step,
            outcome,
            started,
            attempts=call.attempts if call else 0,
            wire=call.wire if call else 0,
            error=error,
            note=note,
        )


def group_by_instance(targets: Sequence[Target]) -> dict[tuple[str, str], list[Target]]:
    """Targets per (project, instance), in the order instances first appear in the plan."""
    groups: dict[tuple[str, str], list[Target]] = {}
    for target in targets:
        groups.setdefault((target.project_id, target.instance_id), []).append(target)
    return groups
