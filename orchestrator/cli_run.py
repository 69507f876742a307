"""preview, apply and jobs: a plan run against the service, and what the operator sees of it (the progress
line, the end summary, the preview file), with the locks that keep two runs apart."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .auth import KIND_LABELS
from .cli_common import SECRET_SOURCES, command_line, current_scrubber, log, overrides, redact
from .connect import connection
from .credentials import read_text_file
from .errors import ExitCode, UsageError
from .files import why_not_appendable, write_atomically
from .gate import preview_document
from .journal import read_journal
from .lock import hold_locks, lock_paths
from .plan import Plan, load_plan
from .preview import Action, Step, render_table, summarize
from .redact import scrub_tree
from .report import FAILING_OUTCOMES, Outcome, TargetOutcome
from .run import RunOptions, RunResult, execute
from .safety import ResumeState, approved_observations, check_window, estimate_seconds, resume_state

if TYPE_CHECKING:
    from .progress import Progress

# A lock's lease: the run renews it every third of this; a holder silent for longer is taken over.
LOCK_LEASE = 600.0


def check_report_path(path: str | None) -> None:
    """A report that cannot be written is a usage error before anything is sent (not an internal error later)."""
    problem = None if path in (None, "-") else why_not_appendable(str(path))
    if problem is not None:
        raise UsageError(f"--report: {path} {problem}")


def default_report_path(plan: Plan, now: datetime) -> str:
    return os.path.join("reports", f"{plan.name}-{now.strftime('%Y%m%dT%H%M%SZ')}.jsonl")


async def run_plan(args: argparse.Namespace, plan: Plan, *, dry_run: bool) -> int:
    now = datetime.now(UTC)
    report_path = args.report or (None if dry_run else default_report_path(plan, now))
    resume = (
        resume_state(plan, args.resume, report_path=report_path) if getattr(args, "resume", None) else ResumeState()
    )
    for note in resume.notes:
        log.warning("resume: " + note)

    def warn(outcome: TargetOutcome) -> None:
        if outcome.outcome in FAILING_OUTCOMES:
            log.info(
                "target failed",
                instance=outcome.instance_id,
                proxy=outcome.proxy_id,
                outcome=outcome.outcome.value,
                http_status=outcome.http_status,
                error_code=outcome.error_code,
            )

    async with connection(plan, overrides(args), os.environ, read_text_file) as conn:
        SECRET_SOURCES.append(conn.auth.secrets)
        log.info("connecting", credentials=conn.auth.describe(), endpoint=conn.endpoint)
        credentials = KIND_LABELS.get(conn.auth.kind, conn.auth.kind)
        if getattr(args, "simulate", False):  # not the operator's own credentials, which --simulate ignores
            credentials += " of the built-in simulator"
        if dry_run:
            check_report_path(report_path)
            options = RunOptions(command=args.command, dry_run=True, report_path=report_path, handle_signals=True)
            result = await execute(plan, conn, options, on_outcome=warn)
            if result.auth_failure is not None:  # nothing was read: no preview to approve, one line to say why
                print(redact(auth_failure_line(result, credentials)), file=sys.stderr)
                return result.exit_code
            if result.signal is not None:  # a fleet half read approves nothing
                print(f"orchestrator: interrupted by {result.signal}: no preview written", file=sys.stderr)
                return result.exit_code
            write_preview(args, plan, conn.identity, result, now, credentials)
            return result.exit_code
        if args.metrics_file:
            from .metrics import check_metrics_path

            check_metrics_path(args.metrics_file)
        preview, approved = approved_observations(plan, conn.identity, args.approved, args.no_gate, now)
        estimate = estimate_seconds(plan, preview)
        check_window(plan, now, estimate, allow_partial=args.allow_partial)
        check_report_path(report_path)  # and make its directory: its lock file lives beside it
        with hold_locks(lock_paths(plan.path, report_path), lease=LOCK_LEASE, owner=lock_owner()) as locks:
            for lock in locks:
                if lock.took_over:
                    log.warning(lock.took_over, lock=lock.path)
            options = RunOptions(
                command=args.command,
                progress=progress_for(args, plan),
                wait=args.wait,
                report_path=report_path,
                approved=approved,
                skip=resume.skip,
                started_fields={
                    **resume.started_fields,
                    "approved_preview": args.approved,
                    "estimated_duration_s": round(estimate, 1),
                },
                resume_hint=command_line(
                    "apply",
                    plan.path,
                    "--resume",
                    report_path or "-",
                    *(("--endpoint", args.endpoint) if args.endpoint else ()),
                    *(("--approved", args.approved) if args.approved else ("--no-gate",)),
                ),
                grace=args.grace,
                handle_signals=True,
                locks=locks,
            )
            result = await execute(plan, conn, options, on_outcome=warn)
    if getattr(args, "metrics_file", None):
        write_run_metrics(args.metrics_file, plan, result)
    print_result(result, report_path, args.quiet, "apply", credentials)
    return result.exit_code


def auth_failure_line(result: RunResult, credentials: str) -> str:
    return f"orchestrator: error: authentication failed, run stopped: {result.auth_failure} ({credentials})"


def write_run_metrics(path: str, plan: Plan, result: RunResult) -> None:
    from .metrics import write_metrics  # optional extra: loaded only when asked for

    try:
        write_metrics(path, result.finished, result.finished.get("counts"), plan=plan.name)
    except OSError as exc:
        log.error("cannot write the metrics file", path=path, error=exc.strerror or str(exc))


def progress_for(args: argparse.Namespace, plan: Plan) -> Progress | None:
    """A live progress line on a terminal (never for cron: not a TTY, or -q)."""
    if args.quiet or not sys.stderr.isatty():
        return None
    from .progress import Progress  # an optional extra: loaded only on a terminal

    closes = plan.window.last_start if plan.window is not None else None
    return Progress(sys.stderr, verb=args.command, configured_rate=plan.limits.rate.per_second, window_closes=closes)


def lock_owner() -> str:
    return f"{user_name()}: orchestrator {' '.join(sys.argv[1:3])}"


def user_name() -> str:
    """Who runs this: $USER or $LOGNAME, else the account of the uid (cron may set neither), else the uid."""
    import pwd

    try:
        account = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without an account, as in some containers
        account = f"uid {os.getuid()}"
    return os.environ.get("USER") or os.environ.get("LOGNAME") or account


def write_preview(
    args: argparse.Namespace, plan: Plan, endpoint: str, result: RunResult, now: datetime, credentials: str
) -> None:
    """The preview's table and counts (unless -q; with -q, the count line alone when something went wrong) and
    its file, scrubbed of secrets like the report: it is the file that goes round for approval."""
    steps = result.steps
    counts = summarize(steps)
    unreadable = [o for o in result.failing if o.error_code != "proxy_not_found"]
    estimate = estimate_seconds(plan, None)
    document = preview_document(plan, endpoint, steps, unreadable, now, estimate)
    count_line = (
        f"preview: {counts['change']} to change, {counts['unchanged']} already at their goal, "
        f"{counts['missing']} not found, {document['counts']['unreadable']} cannot be read"
        + f" (read with {credentials})"
    )
    if args.quiet:
        if result.exit_code:
            print(redact(count_line), file=sys.stderr)
    else:
        for line in render_table(steps, show_unchanged=getattr(args, "show_unchanged", False)):
            print(line)
        for o in unreadable:
            print(redact(f"  ! {o.instance_id}/{o.proxy_id}  cannot be read: {o.error_code}: {o.error_msg}"))
        print(count_line)
        window = document["window"]
        if window is not None and window["fits"] is False:
            print(
                f"warning: the run needs about {estimate:.0f}s and cannot finish before the window's last start "
                f"({window['last_start']}); apply will refuse it without --allow-partial"
            )
    out = getattr(args, "out", None) or f"{os.path.splitext(plan.path)[0]}.preview.json"
    try:
        write_atomically(out, json.dumps(scrub_tree(document, current_scrubber()), indent=1) + "\n")
    except OSError as exc:
        raise UsageError(f"--out: cannot write the preview {out}: {exc.strerror or exc}") from None
    if not args.quiet:
        where: tuple[str, ...] = ("--endpoint", args.endpoint) if getattr(args, "endpoint", None) else ()
        approve = command_line("apply", plan.path, *where, "--approved", out)
        print(f"preview written to {out}; approve it with: {approve}")


LOGGED_TARGETS = 10  # targets that need a look listed in the end summary when stderr is not a terminal


def print_summary(
    result: RunResult, report_path: str | None, quiet: bool, verb: str = "apply", credentials: str = ""
) -> None:
    """One line (all that -q prints, on failure only); then, unless -q, the summary table of this run.

    The line says which kind of credentials the run used (`credentials`, never the secret).
    """
    parts = ", ".join(f"{result.count(o)} {o.value}" for o in Outcome if result.count(o))
    where = f"; report: {report_path}" if report_path and report_path != "-" else ""
    total = len(result.latest)
    rate = result.wire / max(result.duration_s, 1e-9)
    how = f"{rate:.1f} requests/s" + (f", {credentials}" if credentials else "")
    print(
        f"{verb}: {total} targets in {result.duration_s:.1f}s ({how}): {parts or 'nothing to do'}{where}",
        file=sys.stderr,
    )
    if quiet or not result.failing:
        return
    # On a terminal the whole list; in a log (cron), the first few: the report has them all.
    shown = None if sys.stderr.isatty() else LOGGED_TARGETS
    if report_path and report_path != "-" and os.path.exists(report_path):
        from .summary import journal_for_summary, summarize
        from .summarytext import render_table

        with open(report_path, "rb") as handle:  # this run's lines only: the file may hold earlier runs
            mine = b"".join(line for line in handle if result.run_id.encode() in line)
        table = render_table(summarize(journal_for_summary([(report_path, mine)])), max_targets=shown)
        print(redact(table), file=sys.stderr, end="")
        return
    for o in result.failing[:shown]:
        line = (
            f"  {o.outcome.value}: {o.instance_id}/{o.proxy_id}: {o.http_status or '-'} {o.error_code}: {o.error_msg}"
        )
        print(redact(line), file=sys.stderr)
    if shown is not None and len(result.failing) > shown:
        print(f"  ... and {len(result.failing) - shown} more", file=sys.stderr)


def print_result(result: RunResult, report_path: str | None, quiet: bool, verb: str, credentials: str) -> None:
    """What a run says at its end: refused credentials or an unwritable report in one line, then (unless -q)
    the summary."""
    if result.report_error is not None:  # with -q, the one line; the report cannot be summarised
        print(
            redact(
                f"orchestrator: error: {result.report_error}; the run stopped: outcomes after the last line written "
                f"are not recorded (a change may have been made): make room, then preview before running again"
            ),
            file=sys.stderr,
        )
        return
    if result.auth_failure is not None:  # with -q, this is the one line of the failure
        print(redact(auth_failure_line(result, credentials)), file=sys.stderr)
    if not quiet or (result.exit_code and result.auth_failure is None):
        print_summary(result, report_path, quiet, verb=verb, credentials=credentials)


def cmd_preview(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    return asyncio.run(run_plan(args, plan, dry_run=True))


def cmd_apply(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    return asyncio.run(run_plan(args, plan, dry_run=args.dry_run))


def cmd_jobs(args: argparse.Namespace) -> int:
    journal = read_journal(args.reports, lost=args.lost or ())
    for note in journal.left_out:
        log.warning(note)
    plan_path = args.plan or next((run.plan for run in reversed(journal.runs) if run.plan), None)
    if not plan_path:
        raise UsageError(f"{args.reports[-1]}: no run_started line names the plan; give --plan PLAN")
    if not args.plan and not os.path.exists(plan_path):  # named relative to where that run was started
        raise UsageError(f"{args.reports[-1]}: its run's plan {plan_path} is not found from here; give --plan PLAN")
    plan = load_plan(plan_path)
    if not args.endpoint:  # follow the jobs where they were made, not where the plan's region points
        recorded_endpoint = next((r.started.get("endpoint") for r in reversed(journal.runs) if r.started), None)
        if isinstance(recorded_endpoint, str) and recorded_endpoint:
            args.endpoint = recorded_endpoint
    recorded = [
        (
            Step(*entry.key, entry.mode_before, entry.mode_target, Action.CHANGE),  # type: ignore[arg-type]
            entry.job_id,
        )
        for entry in journal.latest.values()
        if entry.outcome == Outcome.SUBMITTED.value and entry.job_id and entry.mode_target
    ]
    if not recorded:
        if not args.quiet:
            print(f"nothing to follow: no submitted target with a job id in {', '.join(args.reports)}")
        return ExitCode.OK
    now = datetime.now(UTC)
    report_path = args.report or default_report_path(plan, now)
    args.simulate = False

    async def follow() -> tuple[RunResult, str]:
        async with connection(plan, overrides(args), os.environ, read_text_file) as conn:
            SECRET_SOURCES.append(conn.auth.secrets)
            log.info("connecting", credentials=conn.auth.describe(), endpoint=conn.endpoint)
            check_report_path(report_path)
            options = RunOptions(
                command="jobs",
                report_path=report_path,
                started_fields={"follows": list(args.reports), "jobs": len(recorded), "wait": args.wait},
                handle_signals=True,
                work=lambda engine: engine.follow(recorded, wait=args.wait),
            )
            return await execute(plan, conn, options), KIND_LABELS.get(conn.auth.kind, conn.auth.kind)

    result, credentials = asyncio.run(follow())
    print_result(result, report_path, args.quiet, "jobs", credentials)
    running = len(recorded) - len(result.latest)
    if running and not args.quiet:
        print(f"  {running} jobs still in progress: run again later, or with --wait", file=sys.stderr)
    return result.exit_code
