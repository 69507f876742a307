"""The command line: the only place that reads the environment, talks to the terminal and picks exit codes.

Every deliberate error is an `OrchestratorError`, caught once in `main` and printed as one line per problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from . import __version__
from .api import HttpApi
from .auth import KIND_LABELS
from .connect import IAM_ENDPOINT_ENV, Overrides, connection
from .credentials import read_text_file
from .errors import AuthError, ExitCode, OrchestratorError, TransportError, UsageError
from .gate import preview_document
from .governor import Governor
from .journal import read_journal
from .lock import hold_locks, lock_paths
from .plan import Plan, load_plan
from .preview import Action, Step, render_table, summarize
from .redact import Scrubber, scrub_tree
from .report import FAILING_OUTCOMES, Outcome, SecretRedactor, TargetOutcome
from .run import RunOptions, RunResult, execute

if TYPE_CHECKING:
    from .progress import Progress
from .safety import ResumeState, approved_observations, check_window, estimate_seconds, resume_state

EXIT_CODES_HELP = """\
exit codes:
  0    all done, or nothing to do
  1    internal error
  2    usage error or invalid plan (nothing was sent)
  3    finished, but some targets failed or their outcome is unknown (report: some need a look)
  4    the preview gate refused the run
  5    the change window is closed or not open yet
  6    stopped by the failure budget
  7    another run holds the lock
  130  interrupted (SIGINT)   143  terminated (SIGTERM)
"""

IAM_HELP = (
    f"IAM endpoint for a password login (default: the plan's iam_endpoint, else ${IAM_ENDPOINT_ENV}, "
    "else the plan region's)"
)
log = structlog.get_logger("orchestrator")
EXTRA_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
# A lock's lease: the run renews it every third of this; a holder silent for longer is taken over.
LOCK_LEASE = 600.0


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
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="human logs on stderr as readable lines (default) or JSON lines",
    )
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

    p = command("validate", "check a plan; send nothing", "orchestrator validate plans/small.yaml --credentials")
    p.add_argument("plan")
    p.add_argument(
        "--credentials",
        action="store_true",
        help="also check the credentials in the environment with one read-only call (a proxy listing)",
    )
    p.add_argument("--endpoint", help="service endpoint URL (default: the plan's endpoint, or its region's)")
    p.add_argument("--iam-endpoint", help=IAM_HELP)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("plan")
        p.add_argument("--endpoint", help="service endpoint URL (default: the plan's endpoint, or its region's)")
        p.add_argument("--iam-endpoint", help=IAM_HELP)
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
    p.add_argument(
        "--wait",
        action="store_true",
        default=None,
        help="follow every job to its end (completed, job_failed, job_timeout) and read each proxy back "
        "(default: the plan's jobs.wait)",
    )
    p.add_argument(
        "--resume",
        action="append",
        metavar="REPORT",
        help="continue an earlier run: targets its report shows submitted or unchanged are not sent again",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="start even if the estimate says the run cannot finish inside the change window",
    )
    p.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="write Prometheus textfile-collector metrics (*.prom) at the end of the run, atomically",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="S",
        help="after SIGTERM/SIGINT, seconds in-flight calls may finish before they are cancelled (default 30)",
    )

    p = command(
        "jobs",
        "follow the jobs an earlier run recorded (submitted targets) to their final state; change nothing",
        "orchestrator jobs reports/demo-20261203T010000Z.jsonl --wait",
    )
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report(s) of earlier runs, oldest first")
    p.add_argument("--wait", action="store_true", help="poll each job until it ends (default: poll once)")
    p.add_argument("--plan", help="the plan of those runs (default: the one their run_started line names)")
    p.add_argument("--endpoint", help="service endpoint URL (default: the plan's endpoint, or its region's)")
    p.add_argument("--iam-endpoint", help=IAM_HELP)
    p.add_argument("--report", help="the new report (default: reports/<plan name>-<UTC time>.jsonl)")

    p = command(
        "simulate",
        "run the simulator as a server; it accepts the credentials set in its environment, the same variables "
        "the client reads (AK/SK, token, IAM user), or any token if none is set",
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
        help="also accept this X-Auth-Token (repeatable)",
    )
    p.add_argument(
        "--token-lifetime",
        type=float,
        default=86400.0,
        metavar="S",
        help="lifetime of tokens issued by the simulated IAM (default 24h; a few seconds tests expiry)",
    )
    from .cli_report import add_commands  # report, rollback, init, plan from-csv

    EXTRA_COMMANDS.update(add_commands(sub, common))
    return parser


# --- logging ---------------------------------------------------------------------------------------------------

# Where the secrets of this process are (the credentials in use): human logs and error lines are scrubbed of
# them, as the report is. Secrets are never logged on purpose; this catches one quoted back by a server.
SECRET_SOURCES: list[Callable[[], Iterable[str]]] = []


def current_scrubber() -> Scrubber:
    return Scrubber(secret for source in SECRET_SOURCES for secret in source())


def redact(text: str) -> str:
    return current_scrubber()(text)


def configure_logging(verbosity: int, quiet: bool, log_format: str = "text") -> None:
    """Human logs on stderr: warnings and errors only, unless -v (info) or -vv (debug)."""
    level = 40 if quiet else 30 - 10 * min(verbosity, 2)
    structlog.configure(
        processors=[
            SecretRedactor(lambda: (secret for source in SECRET_SOURCES for secret in source())),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True)
            if log_format == "json"
            else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.processors.JSONRenderer()
            if log_format == "json"
            else structlog.dev.ConsoleRenderer(colors=False),
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
    if args.credentials:
        return asyncio.run(check_credentials(args, plan))
    return ExitCode.OK


def overrides(args: argparse.Namespace) -> Overrides:
    return Overrides(
        endpoint=args.endpoint,
        iam_endpoint=args.iam_endpoint,
        simulate=getattr(args, "simulate", False),
        sim_job_duration=getattr(args, "sim_job_duration", 0.3),
        seed=getattr(args, "seed", 0),
    )


async def check_credentials(args: argparse.Namespace, plan: Plan) -> int:
    """One read-only call (a one-proxy listing of the plan's first instance) with the credentials found."""
    target = plan.targets[0]
    async with connection(plan, overrides(args), os.environ, read_text_file) as conn:
        SECRET_SOURCES.append(conn.auth.secrets)
        governor = Governor(plan.limits.rate, 1)
        async with HttpApi(conn.endpoint, conn.auth, governor, timeout=plan.retry.timeout) as api:
            try:
                reply = await api.list_proxies(target.project_id, target.instance_id, offset=0, limit=1)
            except TransportError as exc:
                raise UsageError(f"credentials: cannot reach {conn.endpoint}: {exc.kind}: {exc.detail}") from None
    what = f"{conn.auth.describe()} at {conn.endpoint}"
    if reply.status in (401, 403):
        raise AuthError(f"credentials refused: {what}: HTTP {reply.status} {reply.error_code}: {reply.error_msg}")
    if not reply.ok:
        print(
            f"credentials accepted, but listing instance {target.instance_id} answered HTTP {reply.status} "
            f"{reply.error_code}: {reply.error_msg} ({what})"
        )
        return ExitCode.FAILED_TARGETS
    if not args.quiet:
        print(f"credentials work: {what} listed the proxies of instance {target.instance_id}")
    return ExitCode.OK


def default_report_path(plan: Plan, now: datetime) -> str:
    return os.path.join("reports", f"{plan.name}-{now.strftime('%Y%m%dT%H%M%SZ')}.jsonl")


async def run_plan(args: argparse.Namespace, plan: Plan, *, dry_run: bool) -> int:
    now = datetime.now(UTC)
    resume = resume_state(plan, args.resume) if getattr(args, "resume", None) else ResumeState()
    for note in resume.notes:
        log.warning("resume: " + note)
    report_path = args.report or (None if dry_run else default_report_path(plan, now))

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
        if dry_run:
            options = RunOptions(command=args.command, dry_run=True, report_path=report_path)
            result = await execute(plan, conn, options, on_outcome=warn)
            if result.auth_failure is not None:  # nothing was read: no preview to approve, one line to say why
                print(redact(auth_failure_line(result, credentials)), file=sys.stderr)
                return result.exit_code
            write_preview(args, plan, conn.identity, result, now, credentials)
            return result.exit_code
        if args.metrics_file:
            from .metrics import check_metrics_path

            check_metrics_path(args.metrics_file)
        preview, approved = approved_observations(plan, conn.identity, args.approved, args.no_gate, now)
        estimate = estimate_seconds(plan, preview)
        check_window(plan, now, estimate, allow_partial=args.allow_partial)
        if report_path not in (None, "-") and os.path.dirname(report_path):
            os.makedirs(os.path.dirname(report_path), exist_ok=True)  # its lock file lives beside it
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
                resume_hint=f"orchestrator apply {plan.path} --resume {report_path}"
                + (f" --endpoint {args.endpoint}" if args.endpoint else "")
                + (f" --approved {args.approved}" if args.approved else " --no-gate"),
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
    atomic_write(out, json.dumps(scrub_tree(document, current_scrubber()), indent=1) + "\n")
    if not args.quiet:
        endpoint_option = f" --endpoint {args.endpoint}" if getattr(args, "endpoint", None) else ""
        approve = f"orchestrator apply {plan.path}{endpoint_option} --approved {out}"
        print(f"preview written to {out}; approve it with: {approve}")


def atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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
        from .summary import journal_for_summary, render_table, summarize

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
    """What a run says at its end: refused credentials in one line, then (unless -q) the summary."""
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulator import Faults, SimulatorConfig, fleet_from_plan, run_simulator, simulator_auth_from_env

    plan = load_plan(args.fleet)
    faults = Faults(
        error_500=args.error_500,
        throttle_429=args.throttle_429,
        retry_after=args.retry_after if args.retry_after >= 0 else None,
        drop_before=args.drop_before,
        drop_after=args.drop_after,
        latency=args.latency,
        seed=args.seed,
    )
    # The simulated IAM scopes tokens to the plan's projects; the default one is named after the region.
    region = plan.region or "sim-region-1"
    projects = {f"{region}-{pid[:8]}": pid for pid in {t.project_id for t in plan.targets}}
    if plan.project_id:
        projects[region] = plan.project_id
    accepted = simulator_auth_from_env(os.environ, read_text_file, projects=projects)
    config = accepted.apply(
        SimulatorConfig(job_duration=args.job_duration, faults=faults, token_lifetime=args.token_lifetime)
    )
    if args.token:
        config = replace(config, tokens=frozenset(args.token) | (config.tokens or frozenset()))

    def ready(url: str) -> None:
        print(f"simulator listening on {url} ({len(plan.targets)} plan targets seeded)", flush=True)
        print(f"simulator accepts: {accepted.describe() if not args.token else 'the --token values'}", flush=True)

    def log_request(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    run_simulator(
        fleet_from_plan(plan, seed=args.seed),
        config,
        host=args.host,
        port=args.port,
        ready=ready,
        log=log_request if args.verbose else None,
    )
    return ExitCode.OK


def cmd_jobs(args: argparse.Namespace) -> int:
    journal = read_journal(args.reports)
    plan_path = args.plan or next((run.plan for run in reversed(journal.runs) if run.plan), None)
    if not plan_path:
        raise UsageError(f"{args.reports[-1]}: no run_started line names the plan; give --plan PLAN")
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


COMMANDS = {
    "jobs": cmd_jobs,
    "validate": cmd_validate,
    "preview": cmd_preview,
    "apply": cmd_apply,
    "simulate": cmd_simulate,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet, getattr(args, "log_format", "text"))
    try:
        return int({**COMMANDS, **EXTRA_COMMANDS}[args.command](args))
    except OrchestratorError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"orchestrator: error: {redact(line)}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return int(ExitCode.SIGINT)
    except Exception as exc:  # a bug: one line, and the traceback only when asked for
        if args.verbose >= 2:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        print(
            f"orchestrator: internal error: {type(exc).__name__}: {redact(str(exc))} (run with -vv for details)",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)
