"""The command line: the only place that reads the environment, talks to the terminal and picks exit codes.

This module holds the parser, `validate`, `simulate` and `main`; `cli_run` runs plans (preview, apply, jobs),
`cli_report` reads reports (report, rollback) and writes plans (init, plan from-csv), and `cli_common` holds
what they share (logging, the scrubbing of secrets from output, the exit-code help).

Every deliberate error is an `OrchestratorError`, caught once in `main` and printed as one line per problem.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace

from . import __version__
from .api import HttpApi
from .cli_common import EXIT_CODES_HELP, IAM_HELP, SECRET_SOURCES, add_subcommand, configure_logging, overrides, redact
from .cli_run import cmd_apply, cmd_jobs, cmd_preview
from .connect import connection
from .credentials import read_text_file
from .errors import AuthError, ExitCode, OrchestratorError, TransportError, UsageError
from .governor import Governor
from .plan import Plan, load_plan

EXTRA_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


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
        return add_subcommand(sub, common, name, help_text, [example])

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
    p.add_argument(
        "--lost",
        action="append",
        metavar="REPORT",
        help="a report the runs resumed that is gone for good, as the error names it: read without it "
        "(its jobs are not followed; repeatable)",
    )

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


# --- commands --------------------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    instances = len({(t.project_id, t.instance_id) for t in plan.targets})
    if not args.quiet:
        print(f"{args.plan}: valid plan '{plan.name}': {len(plan.targets)} targets on {instances} instances")
    if args.credentials:
        return asyncio.run(check_credentials(args, plan))
    return ExitCode.OK


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
        lines = str(exc).splitlines() or [type(exc).__name__]
        if args.quiet and len(lines) > 1:  # -q promises one line: the first problem, and how many more
            more = len(lines) - 1
            lines = [f"{lines[0]} (and {more} more problem{'s' if more > 1 else ''}; run without -q to see all)"]
        for line in lines:
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
