"""One run of a plan: the engine wired to the HTTP edge and to the report, and the run's exit code.

The CLI decides what to run and prints; this module runs it and writes the report: `run_started`, one line
per settled target (and per polled job), and `run_finished`, even when the run stops early. It also owns the
run's clocks and signals: the change window's cutoff, SIGTERM/SIGINT with a grace period, and the lock's
lease renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from .api import HttpApi
from .budget import FailureBudget
from .calls import CallStats
from .connect import Connection
from .engine import Engine, StopKind
from .errors import ExitCode, UsageError
from .gate import Key
from .governor import Governor
from .jobs import JobResult
from .lock import RunLock
from .plan import Mode, Plan
from .preview import Step
from .report import FAILING_OUTCOMES, Outcome, Report, TargetOutcome
from .window import seconds_until_cutoff

log = structlog.get_logger("orchestrator")

SIGNAL_EXIT = {"SIGINT": ExitCode.SIGINT, "SIGTERM": ExitCode.SIGTERM}
STOP_EXIT: Mapping[StopKind, ExitCode] = {"budget": ExitCode.BUDGET_EXHAUSTED, "window": ExitCode.WINDOW_CLOSED}


@dataclass(frozen=True, slots=True)
class RunOptions:
    command: str
    dry_run: bool = False
    wait: bool | None = None  # --wait; None: the plan's jobs.wait
    report_path: str | None = None
    approved: Mapping[Key, Mode | None] | None = None  # the approved preview's observations (the gate)
    skip: frozenset[Key] = frozenset()  # resume: targets an earlier run settled
    started_fields: Mapping[str, Any] = field(default_factory=dict)  # extra run_started fields (resume, gate)
    resume_hint: str | None = None  # the command that resumes this run, for run_finished when it stops early
    grace: float = 30.0  # seconds in-flight calls may finish after SIGTERM/SIGINT
    handle_signals: bool = False
    locks: Sequence[RunLock] = ()  # renewed while the run lasts
    # A live display (progress.Progress) to run beside the engine; None on a non-terminal.
    progress: Any = None
    # What the engine does; default: run the plan. `orchestrator jobs` follows recorded jobs instead.
    work: Callable[[Engine], Coroutine[Any, Any, None]] | None = None


@dataclass(slots=True)
class RunResult:
    run_id: str
    exit_code: ExitCode
    duration_s: float
    outcomes: list[TargetOutcome] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    wire: int = 0
    skipped: int = 0
    auth_failure: str | None = None
    stop_reason: str | None = None  # why the run stopped early; None if nothing stopped it (see late_stop)
    stop_kind: StopKind | None = None
    signal: str | None = None  # the signal that interrupted the run
    cut_short: int = 0  # targets the stop left undone (Engine.cut_short)
    late_stop: str | None = None  # a stop that came once every target had settled: logged, changes nothing
    report_error: str | None = None  # the report could not be written (disk full...): the run stopped there
    retry_budget: dict[str, int] = field(default_factory=dict)
    rate: dict[str, Any] = field(default_factory=dict)
    finished: dict[str, Any] = field(default_factory=dict)  # the run_finished record

    @property
    def latest(self) -> list[TargetOutcome]:
        """Each target's latest line (with --wait, the final outcome after `submitted`)."""
        by_key = {(o.project_id, o.instance_id, o.proxy_id): o for o in self.outcomes}
        return list(by_key.values())

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.latest if o.outcome is outcome)

    @property
    def failing(self) -> list[TargetOutcome]:
        return [o for o in self.latest if o.outcome in FAILING_OUTCOMES or o.verified is False]


def exit_code_for(result: RunResult) -> ExitCode:
    """Signals first, then the failure budget and the window, then refused credentials, then failed targets.

    A signal, the budget or the window decides the exit code only if the stop left something undone: a target
    `not_started`, or a change it cut short (a retry, a job's end, an answer it kept from happening). A stop
    that came once every target had settled (the cutoff passing while the last answer was on its way, the
    budget spent by the very last change, SIGTERM during the final report line) stopped nothing: the targets'
    outcomes decide, 0 or 3, and no resume is offered. Refused credentials are not such a stop: they decide
    on their own (2 or 3), as a wrong key needs fixing whenever it was found out.
    """
    if result.report_error is not None:  # outcomes went unrecorded: some may be changes nobody can see
        return ExitCode.FAILED_TARGETS
    stopped_something = result.cut_short > 0 or result.count(Outcome.NOT_STARTED) > 0
    if result.signal is not None and stopped_something:
        return SIGNAL_EXIT[result.signal]
    if result.stop_kind in STOP_EXIT and stopped_something:
        return STOP_EXIT[result.stop_kind]  # type: ignore[index]
    if result.auth_failure is not None and not any(_changed_by_this_run(o) for o in result.outcomes):
        return ExitCode.USAGE
    if result.auth_failure is not None or result.failing:
        return ExitCode.FAILED_TARGETS
    return ExitCode.OK


def _forget_a_late_stop(result: RunResult) -> None:
    """A stop that left nothing undone is no stop (see exit_code_for): no stop reason, no signal, no resume hint.

    Kept in `late_stop` and logged. Refused credentials always count (they are reported on their own).
    """
    if result.stop_kind in (None, "auth") or result.cut_short or result.count(Outcome.NOT_STARTED):
        return
    log.info("the run stopped once every target had settled: nothing was cut short", reason=result.stop_reason)
    result.late_stop = result.stop_reason
    result.stop_reason = result.stop_kind = result.signal = None


def _changed_by_this_run(outcome: TargetOutcome) -> bool:
    """A PUT of this run was accepted (`submitted` after attempts on the wire), or a job ended `completed`.

    A `submitted` line without a wire attempt only repeats a job id whose job was not followed to its end (see
    Engine._verify): `orchestrator jobs` refused at once has changed nothing.
    """
    if outcome.outcome is Outcome.SUBMITTED:
        return outcome.wire_attempts > 0
    return outcome.outcome is Outcome.COMPLETED


def limits_record(plan: Plan) -> dict[str, Any]:
    return {
        "limits": {
            "rate": str(plan.limits.rate),
            "concurrency": plan.limits.concurrency,
            "per_instance": plan.limits.per_instance,
        },
        "retry": {
            "attempts": plan.retry.attempts,
            "base_delay": plan.retry.base_delay,
            "max_delay": plan.retry.max_delay,
            "timeout": plan.retry.timeout,
        },
        "stop": None if plan.stop is None else {"max_failures": str(plan.stop.max_failures)},
    }


async def execute(
    plan: Plan,
    conn: Connection,
    options: RunOptions,
    *,
    on_outcome: Callable[[TargetOutcome], None] = lambda outcome: None,
) -> RunResult:
    """Run the plan against `conn`; write the report at `options.report_path` (None: no report)."""
    started = time.monotonic()
    result = RunResult(run_id=str(uuid.uuid4()), exit_code=ExitCode.OK, duration_s=0.0)
    path = options.report_path
    report = Report.open(path, run_id=result.run_id, secrets=conn.auth.secrets) if path else None
    try:
        if report is not None:
            try:
                report.run_started(
                    plan=plan.path,
                    plan_digest=plan.digest,
                    command=options.command,
                    dry_run=options.dry_run,
                    targets=len(plan.targets),
                    endpoint=conn.endpoint,
                    credentials=conn.auth.kind,
                    **limits_record(plan),
                    **options.started_fields,
                )
            except OSError as exc:  # nothing was sent yet
                result.report_error = f"cannot write the report {report.path}: {exc.strerror or exc}"
                raise UsageError(f"--report: {result.report_error}") from None

        def record(write: Callable[[Report], None]) -> None:
            """Write a line; if the report cannot take it (disk full...), stop: a run that cannot record its
            outcomes must not make more of them."""
            if report is None or result.report_error is not None:
                return
            try:
                write(report)
            except OSError as exc:
                result.report_error = f"cannot write the report {report.path}: {exc.strerror or exc}"
                engine.stop(f"{result.report_error}; nothing more is started", "requested")

        def settled(outcome: TargetOutcome) -> None:
            result.outcomes.append(outcome)
            record(lambda report: report.target(outcome))
            if options.progress is not None:
                options.progress.settled(outcome)
            on_outcome(outcome)

        def job_seen(step: Step, job: JobResult) -> None:
            record(
                lambda report: report.job(
                    project_id=step.project_id,
                    instance_id=step.instance_id,
                    proxy_id=step.proxy_id,
                    job_id=job.job_id,
                    job_status=job.status,
                    fail_reason=job.fail_reason,
                )
            )
            if job.status not in ("Completed", "Pending", "Running") and not engine_stopping():
                log.warning("job did not complete", proxy=step.proxy_id, job_id=job.job_id, status=job.status)

        governor = Governor(plan.limits.rate, plan.limits.concurrency, adaptive=plan.limits.adaptive)
        engine_stopping = governor.is_closed
        budget = FailureBudget(plan.stop, len(plan.targets)) if plan.stop and not options.dry_run else None
        async with HttpApi(conn.endpoint, conn.auth, governor, timeout=plan.retry.timeout) as api:
            engine = Engine(
                api,
                plan,
                on_outcome=settled,
                on_job=job_seen,
                dry_run=options.dry_run,
                approved=options.approved,
                skip=options.skip,
                budget=budget,
                on_stop=governor.close,
                wait=options.wait,
            )
            try:
                await _supervised(engine, plan, options, result)
            finally:
                result.steps = engine.steps
                result.stats = engine.stats
                result.wire = api.wire.sent
                result.skipped = engine.skipped
                result.auth_failure = engine.auth_failure
                result.stop_reason = engine.stop_reason
                result.stop_kind = engine.stop_kind
                result.cut_short = engine.cut_short
                _forget_a_late_stop(result)
                result.retry_budget = engine.retry_budget.state()
                result.rate = {
                    "configured_per_s": round(governor.pacing.configured, 3),
                    "effective_per_s": round(governor.pacing.effective, 3),
                    "throttles": governor.pacing.throttles,
                    "trace": [list(point) for point in governor.pacing.trace],
                }
        result.exit_code = exit_code_for(result)
    except Exception:
        result.exit_code = ExitCode.INTERNAL
        raise
    finally:
        result.duration_s = time.monotonic() - started
        stopped_early = result.stop_reason is not None or result.count(Outcome.NOT_STARTED) > 0
        result.finished = {
            "exit_code": int(result.exit_code),
            "duration_s": round(result.duration_s, 3),
            "stop_reason": result.stop_reason,
            "skipped": result.skipped,
            "resume": options.resume_hint if stopped_early else None,
            "rate": result.rate,
            "retry_budget": result.retry_budget,
            "requests": {
                "calls": result.stats.calls,
                "wire": result.wire,
                "retries": result.stats.retries,
                "throttled": result.stats.throttled,
                "job_polls": result.stats.job_polls,
            },
        }
        if report is not None:
            if result.report_error is None:
                try:
                    report.run_finished(**result.finished)
                except OSError as exc:
                    result.report_error = f"cannot write the report {report.path}: {exc.strerror or exc}"
                    result.exit_code = exit_code_for(result)
            result.finished["counts"] = report.tally.as_dict()
            with contextlib.suppress(OSError):  # said above, once
                report.close()
    return result


async def _supervised(engine: Engine, plan: Plan, options: RunOptions, result: RunResult) -> None:
    """Run the engine under the window's cutoff, the signals and the locks' renewal."""
    task = asyncio.create_task(options.work(engine) if options.work is not None else engine.run())
    helpers: list[asyncio.Task[None]] = []

    async def cutoff(seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert plan.window is not None
        engine.stop(f"the change window's cutoff was reached ({plan.window.last_start.isoformat()})", "window")

    async def renew(locks: Sequence[RunLock]) -> None:
        interval = max(1.0, min(lock.lease for lock in locks) / 3)
        while True:
            await asyncio.sleep(interval)
            for lock in locks:
                lock.renew()

    async def grace_then_cancel() -> None:
        await asyncio.sleep(options.grace)
        log.warning("grace period over: cancelling the calls still in flight", grace_s=options.grace)
        task.cancel()

    def on_signal(name: str) -> None:
        if result.signal is None:
            result.signal = name
            log.warning(f"{name}: starting nothing new; in-flight calls may finish", grace_s=options.grace)
            engine.stop(f"interrupted by {name}", "signal")
            helpers.append(asyncio.create_task(grace_then_cancel()))
        else:
            log.warning(f"{name} again: stopping now")
            task.cancel()

    if plan.window is not None and not options.dry_run:
        helpers.append(asyncio.create_task(cutoff(seconds_until_cutoff(plan.window, datetime.now(UTC)))))
    if options.locks:
        helpers.append(asyncio.create_task(renew(options.locks)))
    if options.progress is not None:
        options.progress.bind(total=lambda: max(len(plan.targets), len(engine.steps)), calls=lambda: engine.stats.calls)
        helpers.append(asyncio.create_task(options.progress.run()))
    with _signals(on_signal if options.handle_signals else None):
        try:
            await task
        except asyncio.CancelledError:
            # The engine's task cancelled by the grace period or a second signal ends the run here; this task
            # cancelled from outside (asyncio.run on Ctrl-C, a caller) must pass it on, even though cancelling
            # it cancelled the engine's task as well.
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)


@contextlib.contextmanager
def _signals(handler: Callable[[str], None] | None) -> Iterator[None]:
    if handler is None:
        yield
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler, sig.name)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
