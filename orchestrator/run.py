"""One run of a plan: the engine wired to the HTTP edge and to the report, and the run's exit code.

The CLI decides what to run and prints; this module runs it and writes the report: `run_started`, one line
per settled target (and per polled job), and `run_finished`, even when the run stops early.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from .api import HttpApi
from .connect import Connection
from .engine import Engine, EngineStats, JobResult
from .errors import ExitCode
from .governor import Governor
from .plan import Plan
from .preview import Step
from .report import FAILING_OUTCOMES, Outcome, Report, TargetOutcome

log = structlog.get_logger("orchestrator")


@dataclass(slots=True)
class RunResult:
    run_id: str
    exit_code: ExitCode
    duration_s: float
    outcomes: list[TargetOutcome] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    stats: EngineStats = field(default_factory=EngineStats)
    wire: int = 0
    auth_failure: str | None = None
    stop_reason: str | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    @property
    def failing(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.outcome in FAILING_OUTCOMES]


def exit_code_for(outcomes: list[TargetOutcome], auth_failure: str | None) -> ExitCode:
    """0 all done; 2 credentials refused before anything was submitted; 3 failed or unknown targets."""
    if auth_failure is not None and not any(o.outcome is Outcome.SUBMITTED for o in outcomes):
        return ExitCode.USAGE
    if auth_failure is not None or any(o.outcome in FAILING_OUTCOMES for o in outcomes):
        return ExitCode.FAILED_TARGETS
    return ExitCode.OK


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
    }


async def execute(
    plan: Plan,
    conn: Connection,
    *,
    command: str,
    dry_run: bool,
    report_path: str | None,
    on_outcome: Callable[[TargetOutcome], None] = lambda outcome: None,
) -> RunResult:
    """Run the plan against `conn`; write the report at `report_path` (None: no report)."""
    started = time.monotonic()
    result = RunResult(run_id=str(uuid.uuid4()), exit_code=ExitCode.OK, duration_s=0.0)
    report = Report.open(report_path, run_id=result.run_id, secrets=conn.auth.secrets) if report_path else None
    try:
        if report is not None:
            report.run_started(
                plan=plan.path,
                plan_digest=plan.digest,
                command=command,
                dry_run=dry_run,
                targets=len(plan.targets),
                endpoint=conn.endpoint,
                credentials=conn.auth.kind,
                **limits_record(plan),
            )

        def settled(outcome: TargetOutcome) -> None:
            result.outcomes.append(outcome)
            if report is not None:
                report.target(outcome)
            on_outcome(outcome)

        def job_seen(step: Step, job: JobResult) -> None:
            if report is not None:
                report.job(
                    project_id=step.project_id,
                    instance_id=step.instance_id,
                    proxy_id=step.proxy_id,
                    job_id=job.job_id,
                    job_status=job.status,
                    fail_reason=job.fail_reason,
                )
            if job.status != "Completed":
                log.warning("job did not complete", proxy=step.proxy_id, job_id=job.job_id, status=job.status)

        governor = Governor(plan.limits.rate, plan.limits.concurrency)
        async with HttpApi(conn.endpoint, conn.auth, governor, timeout=plan.retry.timeout) as api:
            engine = Engine(api, plan, on_outcome=settled, on_job=job_seen, dry_run=dry_run)
            try:
                await engine.run()
            finally:
                result.steps = engine.steps
                result.stats = engine.stats
                result.wire = api.wire.sent
                result.auth_failure = engine.auth_failure
                result.stop_reason = engine.stop_reason
        result.exit_code = exit_code_for(result.outcomes, result.auth_failure)
    except KeyboardInterrupt:
        result.exit_code = ExitCode.SIGINT
        raise
    except Exception:
        result.exit_code = ExitCode.INTERNAL
        raise
    finally:
        result.duration_s = time.monotonic() - started
        if report is not None:
            report.run_finished(
                exit_code=int(result.exit_code),
                duration_s=result.duration_s,
                stop_reason=result.stop_reason,
                requests={
                    "calls": result.stats.calls,
                    "wire": result.wire,
                    "retries": result.stats.retries,
                    "throttled": result.stats.throttled,
                    "job_polls": result.stats.job_polls,
                },
            )
            report.close()
    return result
