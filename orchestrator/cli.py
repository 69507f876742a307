"""The command line: the only place that reads the environment, talks to the terminal and picks exit codes.

Every deliberate error is an `OrchestratorError`, caught once in `main` and printed as one line per problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from . import __version__
from .api import HttpApi
from .auth import Authenticator, StaticToken
from .endpoints import check_endpoint, endpoint_for_region
from .engine import Engine, JobResult
from .errors import ExitCode, OrchestratorError, UsageError
from .governor import Governor
from .plan import Plan, load_plan
from .preview import Step, render_table, summarize
from .report import FAILING_OUTCOMES, Outcome, Report, TargetOutcome

EXIT_CODES_HELP = """\
exit codes:
  0    all done, or nothing to do
  1    internal error
  2    usage error or invalid plan (nothing was sent)
  3    finished, but some targets failed or their outcome is unknown
  4    the preview gate refused the run
  5    the change window is closed or not open yet
  6    stopped by the failure budget
  7    another run holds the lock
  130  interrupted (SIGINT)   143  terminated (SIGTERM)
"""

TOKEN_ENV = "HUAWEICLOUD_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a secret
log = structlog.get_logger("orchestrator")


# --- arguments -------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Change the session consistency of GaussDB(for MySQL) / TaurusDB proxies across a fleet.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr (-vv: debug)")
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing on success (for cron)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}\n\n{EXIT_CODES_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = command("validate", "check a plan; send nothing", "orchestrator validate plans/small.yaml")
    p.add_argument("plan")

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("plan")
        p.add_argument("--endpoint", help="service endpoint URL (default: the plan's endpoint, or its region's)")
        p.add_argument("--report", help="report file (JSON lines; '-' for stdout); appended to if it exists")
        p.add_argument("--simulate", action="store_true", help="run against a built-in simulator seeded with the plan")
        p.add_argument(
            "--sim-job-duration",
            type=float,
            default=0.3,
            metavar="S",
            help="with --simulate: seconds a simulated job runs (default 0.3)",
        )
        p.add_argument("--seed", type=int, default=0, help="with --simulate: seed of the simulated fleet")

    p = command(
        "preview",
        "read the fleet and show what would change; send no change",
        "orchestrator preview plans/small.yaml --simulate",
    )
    run_options(p)
    p.add_argument("--out", help="preview file (default: PLAN.preview.json next to the plan)")
    p.add_argument("--show-unchanged", action="store_true", help="list targets already at their goal too")

    p = command("apply", "change the proxies of a plan", "orchestrator apply plans/demo.yaml --simulate --no-gate")
    run_options(p)
    gate = p.add_mutually_exclusive_group()
    gate.add_argument("--approved", metavar="PREVIEW", help="the reviewed preview file this run is approved by")
    gate.add_argument("--no-gate", action="store_true", help="run without an approved preview")
    p.add_argument("--dry-run", action="store_true", help="same as preview: read the fleet, send no change")

    p = command(
        "simulate",
        "run the simulator as a server",
        "orchestrator simulate --fleet plans/small.yaml --port 8443",
    )
    p.add_argument("--fleet", metavar="PLAN", required=True, help="seed the simulated fleet with this plan's proxies")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--seed", type=int, default=0, help="seed of the fleet and of the faults")
    p.add_argument("--job-duration", type=float, default=1.0, metavar="S")
    p.add_argument("--error-500", type=float, default=0.0, metavar="P", help="probability of a 500 answer")
    p.add_argument("--throttle-429", type=float, default=0.0, metavar="P", help="probability of a 429 answer")
    p.add_argument(
        "--retry-after",
        type=float,
        default=1.0,
        metavar="S",
        help="Retry-After on simulated 429s; a negative value sends none",
    )
    p.add_argument(
        "--drop-before",
        type=float,
        default=0.0,
        metavar="P",
        help="probability of dropping the connection before acting",
    )
    p.add_argument(
        "--drop-after",
        type=float,
        default=0.0,
        metavar="P",
        help="probability of dropping the connection after applying a change",
    )
    p.add_argument("--latency", type=float, default=0.0, metavar="S", help="seconds added to every answer")
    p.add_argument(
        "--token",
        action="append",
        default=None,
        help=f"accepted X-Auth-Token (repeatable; default: ${TOKEN_ENV} if set, else any token)",
    )
    return parser


# --- logging ---------------------------------------------------------------------------------------------------


def configure_logging(verbosity: int, quiet: bool) -> None:
    """Human logs on stderr: warnings and errors only, unless -v (info) or -vv (debug)."""
    level = 40 if quiet else 30 - 10 * min(verbosity, 2)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


# --- commands --------------------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    instances = len({(t.project_id, t.instance_id) for t in plan.targets})
    if not args.quiet:
        print(f"{args.plan}: valid plan '{plan.name}': {len(plan.targets)} targets on {instances} instances")
    return ExitCode.OK


@dataclass(frozen=True, slots=True)
class Connection:
    endpoint: str
    auth: Authenticator


def resolve_endpoint(plan: Plan, override: str | None) -> str:
    try:
        if override:
            return check_endpoint(override)
        if plan.endpoint:
            return check_endpoint(plan.endpoint)
        if plan.region:
            return endpoint_for_region(plan.region)
    except ValueError as exc:
        raise UsageError(f"endpoint: {exc}") from None
    raise UsageError(f"{plan.path}: the plan names neither a region nor an endpoint")


def token_from_environment() -> Authenticator:
    token = os.environ.get(TOKEN_ENV, "")
    if not token.strip():
        raise UsageError(f"no credentials: set {TOKEN_ENV} to an IAM token (or use --simulate)")
    try:
        return StaticToken(token.strip(), source=f"${TOKEN_ENV}")
    except ValueError as exc:
        raise UsageError(f"${TOKEN_ENV}: {exc}") from None


@asynccontextmanager
async def connection(plan: Plan, args: argparse.Namespace) -> AsyncIterator[Connection]:
    """Where to send requests and with which credentials; with --simulate, a simulator started here."""
    if not args.simulate:
        yield Connection(resolve_endpoint(plan, args.endpoint), token_from_environment())
        return
    from .simulator import Simulator, SimulatorConfig, fleet_from_plan  # only --simulate loads the simulator

    token = secrets.token_urlsafe(32)
    config = SimulatorConfig(tokens=frozenset({token}), job_duration=args.sim_job_duration)
    async with Simulator(fleet_from_plan(plan, seed=args.seed), config) as simulator:
        log.info("simulator started", url=simulator.url)
        yield Connection(simulator.url, StaticToken(token, source="the built-in simulator"))


def default_report_path(plan: Plan, now: datetime) -> str:
    return os.path.join("reports", f"{plan.name}-{now.strftime('%Y%m%dT%H%M%SZ')}.jsonl")


async def run_plan(args: argparse.Namespace, plan: Plan, *, dry_run: bool) -> int:
    started_wall = datetime.now(UTC)
    started = time.monotonic()
    run_id = str(uuid.uuid4())
    async with connection(plan, args) as conn:
        log.info("credentials", kind=conn.auth.describe(), endpoint=conn.endpoint)
        report_path = args.report if args.report else (None if dry_run else default_report_path(plan, started_wall))
        report = Report.open(report_path, run_id=run_id) if report_path else None
        outcomes: list[TargetOutcome] = []
        try:
            if report is not None:
                report.run_started(
                    plan=plan.path,
                    plan_digest=plan.digest,
                    command=args.command,
                    dry_run=dry_run,
                    targets=len(plan.targets),
                    endpoint=conn.endpoint,
                    limits={
                        "rate": str(plan.limits.rate),
                        "concurrency": plan.limits.concurrency,
                        "per_instance": plan.limits.per_instance,
                    },
                    retry={
                        "attempts": plan.retry.attempts,
                        "base_delay": plan.retry.base_delay,
                        "max_delay": plan.retry.max_delay,
                        "timeout": plan.retry.timeout,
                    },
                )

            def on_outcome(outcome: TargetOutcome) -> None:
                outcomes.append(outcome)
                if report is not None:
                    report.target(outcome)
                if outcome.outcome in FAILING_OUTCOMES:
                    log.warning(
                        "target failed",
                        instance=outcome.instance_id,
                        proxy=outcome.proxy_id,
                        outcome=outcome.outcome.value,
                        error_code=outcome.error_code,
                        http_status=outcome.http_status,
                    )

            def on_job(step: Step, job: JobResult) -> None:
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
                    log.warning(
                        "job did not complete",
                        proxy=step.proxy_id,
                        job_id=job.job_id,
                        status=job.status,
                        reason=job.fail_reason,
                    )

            governor = Governor(plan.limits.rate, plan.limits.concurrency)
            async with HttpApi(conn.endpoint, conn.auth, governor, timeout=plan.retry.timeout) as api:
                engine = Engine(api, plan, on_outcome=on_outcome, on_job=on_job, dry_run=dry_run)
                await engine.run()
            failing = sum(1 for o in outcomes if o.outcome in FAILING_OUTCOMES)
            exit_code = ExitCode.FAILED_TARGETS if failing else ExitCode.OK
            duration = time.monotonic() - started
            if report is not None:
                report.run_finished(
                    exit_code=int(exit_code),
                    duration_s=duration,
                    requests={
                        "calls": engine.stats.calls,
                        "wire": api.wire.sent,
                        "retries": engine.stats.retries,
                        "throttled": engine.stats.throttled,
                        "job_polls": engine.stats.job_polls,
                    },
                )
        finally:
            if report is not None:
                report.close()
    if dry_run:
        write_preview(args, plan, conn.endpoint, engine.steps, outcomes, started_wall)
    elif not args.quiet or exit_code:
        print_summary(outcomes, duration, report_path, args.quiet)
    return exit_code


def write_preview(
    args: argparse.Namespace,
    plan: Plan,
    endpoint: str,
    steps: Sequence[Step],
    outcomes: Sequence[TargetOutcome],
    now: datetime,
) -> None:
    counts = summarize(steps)
    failed = [o for o in outcomes if o.outcome in FAILING_OUTCOMES]
    if not args.quiet:
        for line in render_table(steps, show_unchanged=getattr(args, "show_unchanged", False)):
            print(line)
        for o in failed:
            print(f"  ! {o.instance_id}/{o.proxy_id}  cannot be read: {o.error_code}: {o.error_msg}")
        print(
            f"preview: {counts['change']} to change, {counts['unchanged']} already at their goal, "
            f"{len(failed)} cannot be read"
        )
    out = getattr(args, "out", None) or f"{os.path.splitext(plan.path)[0]}.preview.json"
    document: dict[str, Any] = {
        "kind": "orchestrator-preview",
        "version": 1,
        "plan": plan.path,
        "plan_digest": plan.digest,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "expires_at": (now + timedelta(hours=24)).isoformat().replace("+00:00", "Z"),
        "endpoint": endpoint,
        "counts": {**counts, "unreadable": len(failed) - counts["missing"]},
        "targets": [
            {
                "project_id": s.project_id,
                "instance_id": s.instance_id,
                "proxy_id": s.proxy_id,
                "mode_before": s.mode_before,
                "mode_target": s.mode_target,
                "action": s.action.value,
            }
            for s in steps
        ],
    }
    atomic_write(out, json.dumps(document, indent=1) + "\n")
    if not args.quiet:
        print(f"preview written to {out}")


def atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def print_summary(outcomes: Sequence[TargetOutcome], duration: float, report_path: str | None, quiet: bool) -> None:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome.value] = counts.get(o.outcome.value, 0) + 1
    parts = ", ".join(f"{counts[o.value]} {o.value}" for o in Outcome if counts.get(o.value))
    where = f"; report: {report_path}" if report_path and report_path != "-" else ""
    print(
        f"apply: {len(outcomes)} targets in {duration:.1f}s: {parts or 'nothing to do'}{where}",
        file=sys.stderr,
    )
    if not quiet:
        for o in outcomes:
            if o.outcome in FAILING_OUTCOMES:
                print(
                    f"  {o.outcome.value}: {o.instance_id}/{o.proxy_id}: "
                    f"{o.http_status or '-'} {o.error_code}: {o.error_msg}",
                    file=sys.stderr,
                )


def cmd_preview(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    return asyncio.run(run_plan(args, plan, dry_run=True))


def cmd_apply(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    if args.approved and not Path(args.approved).is_file():
        raise UsageError(f"--approved: no such preview file: {args.approved}")
    return asyncio.run(run_plan(args, plan, dry_run=args.dry_run))


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import Faults, SimulatorConfig, fleet_from_plan, run_simulator

    plan = load_plan(args.fleet)
    tokens = args.token or ([os.environ[TOKEN_ENV]] if os.environ.get(TOKEN_ENV) else None)
    faults = Faults(
        error_500=args.error_500,
        throttle_429=args.throttle_429,
        retry_after=args.retry_after if args.retry_after >= 0 else None,
        drop_before=args.drop_before,
        drop_after=args.drop_after,
        latency=args.latency,
        seed=args.seed,
    )
    config = SimulatorConfig(
        tokens=frozenset(tokens) if tokens else None, job_duration=args.job_duration, faults=faults
    )

    def ready(url: str) -> None:
        print(f"simulator listening on {url} ({sum(1 for _ in plan.targets)} plan targets seeded)", flush=True)

    run_simulator(fleet_from_plan(plan, seed=args.seed), config, host=args.host, port=args.port, ready=ready)
    return ExitCode.OK


COMMANDS = {"validate": cmd_validate, "preview": cmd_preview, "apply": cmd_apply, "simulate": cmd_simulate}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        return int(COMMANDS[args.command](args))
    except OrchestratorError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"orchestrator: error: {line}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return int(ExitCode.SIGINT)
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if args.verbose >= 2:
            traceback.print_exc()
        print(
            f"orchestrator: internal error: {type(exc).__name__}: {exc} (run with -vv for details)",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)
