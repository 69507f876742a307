"""The engine: observe each instance, then change its proxies, retrying what is worth retrying.

Per instance (all instances concurrently; the API's governor bounds calls in flight and their rate):
  1. list the instance's proxies (paged, one listing per instance, never one per proxy);
  2. resolve the plan's targets against the listing (`preview.resolve`): `all` expands, goals already met
     are `unchanged`, proxies not listed are `failed`;
  3. unless this is a dry run, change the rest through `per_instance` lanes. A lane starts its next proxy
     only after the previous job has left Pending/Running (the service runs one operation per instance and
     answers 409 DBS.200019 otherwise, contract §10).
Every settled target is handed to `on_outcome` at once (the report writes it before anything else happens).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .api import PAGE_LIMIT, ProxyApi, Reply
from .budget import FailureBudget
from .errors import AuthError, TransportError
from .gate import Key, drift
from .plan import JobSettings, Mode, Plan, RetrySettings, Target
from .preview import Action, ListingError, ObservedProxy, Step, parse_proxy_page, resolve
from .report import Outcome, TargetOutcome
from .retrying import BUSY_CODES, Failure, decide, parse_retry_after

# Contract §3: Pending/Running are in progress; Completed is success; anything else is terminal failure.
JOB_IN_PROGRESS = frozenset({"Pending", "Running"})
JOB_SUCCESS = "Completed"
# Why a run stopped early: it decides the exit code (run.py).
StopKind = Literal["requested", "auth", "budget", "window", "signal"]
BUDGET_FAILURES = frozenset({Outcome.FAILED, Outcome.UNKNOWN})  # what the failure budget counts
MAX_PAGES = 1000  # 100 per page: far beyond any real instance, but a broken server cannot loop us forever


@dataclass(frozen=True, slots=True)
class CallResult:
    """The last answer of a call after retries: a reply, or the transport error of the last attempt."""

    reply: Reply | None
    error: TransportError | None
    attempts: int
    wire: int

    @property
    def ok(self) -> bool:
        return self.reply is not None and self.reply.ok

    def describe(self) -> tuple[int | None, str | None, str | None]:
        """(http_status, error_code, error_msg) for the report."""
        if self.reply is not None:
            return self.reply.status, self.reply.error_code, self.reply.error_msg
        assert self.error is not None
        return None, f"transport.{self.error.kind}", self.error.detail


@dataclass(frozen=True, slots=True)
class JobResult:
    job_id: str
    status: str  # Completed, Failed, …, or "timeout" / "error" when we could not tell
    fail_reason: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One instance's listing, or why it could not be read."""

    proxies: tuple[ObservedProxy, ...] | None
    call: CallResult
    problem: str | None = None


@dataclass(slots=True)
class EngineStats:
    calls: int = 0
    retries: int = 0
    listings: int = 0
    job_polls: int = 0
    puts: int = 0
    throttled: int = 0
    per_route_wire: dict[str, int] = field(default_factory=dict)


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
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._plan = plan
        self._retry: RetrySettings = plan.retry
        self._jobs: JobSettings = plan.jobs
        self._per_instance = plan.limits.per_instance
        self._on_outcome = on_outcome
        self._on_job = on_job
        self._dry_run = dry_run
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock = clock
        self._now = wall_clock
        self._approved = approved  # the approved preview's observed modes: per-item compare-and-set
        self._skip = skip  # targets done in an earlier run (resume): not listed for, not sent, not reported
        self._budget = budget
        self._on_stop = on_stop  # e.g. close the governor: calls still waiting for their turn are not sent
        self._budget_changed = asyncio.Condition()
        self._changes_in_flight = 0
        self._wakers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.stop_reason: str | None = None
        self.stop_kind: StopKind | None = None
        self.auth_failure: str | None = None  # set when the credentials were refused: the run stops
        self.stats = EngineStats()
        self.steps: list[Step] = []  # every resolved step, in the order instances were observed
        self.skipped = 0  # targets skipped because an earlier run settled them
        self._settled: set[Key] = set()  # every key an outcome was emitted for
        self._put_in_flight: set[Key] = set()  # keys whose PUT may be on the wire right now
        self._resolved: dict[tuple[str, str], list[Step]] = {}
        self._last_outcome: dict[Key, Outcome] = {}

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

    async def run(self) -> None:
        """Run every instance; whatever way it ends (cancelled included), every target gets exactly one line."""
        groups = group_by_instance(self._plan.targets)
        try:
            await asyncio.gather(*(self._run_instance(key, targets) for key, targets in groups.items()))
        finally:
            self._settle_the_rest(groups)

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
                    self._emit(step, Outcome.UNKNOWN, now, error=error, note=note)
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
            for target in targets:
                self._emit_plain(target, None, Outcome.NOT_STARTED, started, note=self.stop_reason)
            return
        view = await self.observe(project_id, instance_id)
        if view.proxies is None and view.call.wire == 0 and self._stopping.is_set():
            for target in targets:  # the run stopped before this instance's listing was sent
                self._emit_plain(target, None, Outcome.NOT_STARTED, started, note=self.stop_reason)
            return
        if view.proxies is None:
            status, code, msg = view.call.describe()
            for target in targets:
                self._emit_plain(
                    target,
                    None,
                    Outcome.FAILED,
                    started,
                    call=view.call,
                    error=(status, code or "listing_failed", view.problem or msg),
                )
            return
        steps = resolve(targets, view.proxies)
        if not steps:
            for target in targets:
                self._emit_plain(
                    target,
                    None,
                    Outcome.FAILED,
                    started,
                    error=(None, "no_proxies", "the instance's proxy listing is empty"),
                )
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
        await asyncio.gather(*(self._lane(pending) for _ in range(lanes)))

    async def _lane(self, pending: deque[Step]) -> None:
        while pending:
            step = pending.popleft()
            if self._stopping.is_set() or not await self._budget_allows_start():
                self._emit(step, Outcome.NOT_STARTED, self._clock(), note=self.stop_reason)
                continue
            try:
                job_id = await self._change(step)
            finally:
                await self._budget_settled(step)
            if job_id is not None and pending:
                # The next change on this instance would be refused while this job runs.
                job = await self.wait_job(step.project_id, job_id)
                self._on_job(step, job)

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
                    self.stop(f"stopped by the failure budget: {self._budget.reason}", "budget")
                    break
                if self._budget.may_start(self._changes_in_flight):
                    self._changes_in_flight += 1
                    return True
                await self._budget_changed.wait()
            self._budget_changed.notify_all()
            return False

    async def _budget_settled(self, step: Step) -> None:
        if self._budget is None:
            return
        async with self._budget_changed:
            self._changes_in_flight -= 1
            if step.key in self._settled:
                self._budget.record(self._last_outcome.get(step.key) in BUDGET_FAILURES)
            if self._budget.exhausted:
                self.stop(f"stopped by the failure budget: {self._budget.reason}", "budget")
            self._budget_changed.notify_all()

    # --- observing ----------------------------------------------------------------------------------------

    async def observe(self, project_id: str, instance_id: str) -> InstanceView:
        """Every proxy of one instance, all pages (contract §2: no total_count; stop at a short page)."""
        proxies: list[ObservedProxy] = []
        offset = 0
        attempts = wire = 0
        for _ in range(MAX_PAGES):
            self.stats.listings += 1
            call = await self.call("list", functools.partial(self._list_page, project_id, instance_id, offset))
            attempts += call.attempts
            wire += call.wire
            total = CallResult(call.reply, call.error, attempts, wire)
            if not call.ok:
                return InstanceView(None, total)
            assert call.reply is not None
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
                    )
                    return None
            attempts += 1
            self.stats.puts += 1
            self._put_in_flight.add(step.key)
            reply, error = await self._attempt(
                lambda: self._api.change_consistency(step.project_id, step.instance_id, step.proxy_id, step.mode_target)
            )
            if error is None or not error.sent:
                self._put_in_flight.discard(step.key)
            wire += reply.wire if reply is not None else error.wire if error is not None else 0
            if reply is not None and reply.ok:
                job_id = reply.body.get("job_id") if isinstance(reply.body, dict) else None
                if isinstance(job_id, str) and job_id:
                    self._emit(
                        step, Outcome.SUBMITTED, started, attempts=attempts, wire=wire, reply=reply, job_id=job_id
                    )
                    return job_id
                # Contract §10: a no-op may answer 200 without a job; we never send no-ops, so this is a failure.
                what = "a JSON object without job_id" if isinstance(reply.body, dict) else "no JSON object"
                self._emit(
                    step,
                    Outcome.FAILED,
                    started,
                    attempts=attempts,
                    wire=wire,
                    reply=reply,
                    error=(reply.status, "no_job_id", f"the service answered {reply.status} with {what}"),
                )
                return None
            failure = self._failure(reply, error)
            if error is not None and error.sent:
                ambiguous = True
            busy = failure.status == 409 and failure.error_code in BUSY_CODES
            decision = decide(attempts, failure, self._retry, self._rng)
            if not decision.retry or self._stopping.is_set():
                if wire == 0 and self._stopping.is_set():  # nothing of this target ever left
                    self._emit(step, Outcome.NOT_STARTED, started, attempts=attempts, note=self.stop_reason)
                    return None
                outcome = Outcome.UNKNOWN if ambiguous else Outcome.FAILED
                result = CallResult(reply, error, attempts, wire)
                status, code, msg = result.describe()
                self._emit(step, outcome, started, attempts=attempts, wire=wire, error=(status, code, msg))
                return None
            self.stats.retries += 1
            await self._sleep(decision.delay)

    async def _settled_after_ambiguity(self, step: Step) -> bool | None:
        """True: the proxy is at its goal. False: it is not (safe to send again). None: cannot tell."""
        view = await self.observe(step.project_id, step.instance_id)
        if view.proxies is None:
            return None
        for proxy in view.proxies:
            if proxy.proxy_id == step.proxy_id:
                return proxy.mode == step.mode_target if proxy.mode is not None else None
        return None

    # --- jobs ---------------------------------------------------------------------------------------------

    async def wait_job(self, project_id: str, job_id: str) -> JobResult:
        """Poll `/jobs?id=` until the job leaves Pending/Running, tolerating "not found" for a grace period."""
        started = self._clock()
        while True:
            await self._sleep(self._jobs.poll_interval)
            elapsed = self._clock() - started
            self.stats.job_polls += 1
            call = await self.call("job", lambda: self._api.get_job(project_id, job_id))
            job = _job_of(call.reply) if call.ok else None
            status = job.get("status") if job is not None else None
            if isinstance(status, str) and status:
                if status not in JOB_IN_PROGRESS:
                    reason = job.get("fail_reason") if job is not None else None
                    return JobResult(job_id, status, reason if isinstance(reason, str) and reason else None)
            elif not _job_not_found_yet(call) or elapsed > self._jobs.visibility_grace:
                _, code, msg = call.describe() if not call.ok else (None, "job_unreadable", "no job in the answer")
                return JobResult(job_id, "error", f"{code}: {msg}")
            if elapsed > self._jobs.timeout:
                return JobResult(job_id, "timeout", f"still in progress after {self._jobs.timeout:g}s")

    # --- one call with retries ----------------------------------------------------------------------------

    async def call(self, route: str, send: Callable[[], Awaitable[Reply]]) -> CallResult:
        """A read-only call (listing, job poll), retried per the policy. Never used for PUTs."""
        attempts = wire = 0
        while True:
            attempts += 1
            reply, error = await self._attempt(send)
            wire += reply.wire if reply is not None else error.wire if error is not None else 0
            if reply is not None and reply.ok:
                return CallResult(reply, None, attempts, wire)
            decision = decide(attempts, self._failure(reply, error), self._retry, self._rng)
            if not decision.retry or (self._stopping.is_set() and route != "job"):
                return CallResult(reply, error, attempts, wire)
            self.stats.retries += 1
            await self._sleep(decision.delay)

    async def _attempt(self, send: Callable[[], Awaitable[Reply]]) -> tuple[Reply | None, TransportError | None]:
        self.stats.calls += 1
        try:
            reply = await send()
        except TransportError as exc:
            return None, exc
        except AuthError as exc:  # the credentials could not even be obtained (e.g. IAM refused the login)
            self._authentication_failed(str(exc))
            return Reply(401, {"error_code": "auth_failed", "error_msg": str(exc)}, wire=0), None
        if reply.status == 429:
            self.stats.throttled += 1
        elif reply.status == 401:
            # The API module already made the one refresh-and-retry that can help; another 401 means the
            # credentials are refused for the whole run. Hammering on would only lock an AK (contract §6).
            self._authentication_failed(f"HTTP 401 {reply.error_code or ''}: {reply.error_msg or ''}".strip())
        return reply, None

    def _authentication_failed(self, detail: str) -> None:
        if self.auth_failure is None:
            self.auth_failure = detail
            self.stop(f"stopped: authentication failed ({detail})", "auth")

    def _failure(self, reply: Reply | None, error: TransportError | None) -> Failure:
        if reply is None:
            assert error is not None
            return Failure(transport=error.kind)
        return Failure(
            status=reply.status,
            error_code=reply.error_code,
            retry_after=parse_retry_after(reply.retry_after, self._now()),
        )

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
    ) -> None:
        status, code, msg = error if error is not None else (reply.status if reply else None, None, None)
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
            )
        )

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


def _job_of(reply: Reply | None) -> dict[str, Any] | None:
    body = reply.body if reply is not None else None
    job = body.get("job") if isinstance(body, dict) else None
    return job if isinstance(job, dict) else None


def _job_not_found_yet(call: CallResult) -> bool:
    """Contract §3: a new job may not be queryable for a few seconds; the answer then is [UNK].

    Any 4xx, or a 200 without a job status, is taken as "not visible yet" during the grace period.
    """
    if call.reply is None:
        return False
    return call.reply.ok or 400 <= call.reply.status < 500
