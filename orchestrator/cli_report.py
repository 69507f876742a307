"""The commands for after a run and for getting started: report, rollback, init, plan from-csv.

The edge of summary.py, planwrite.py and htmlreport.py (all pure): this module reads the files named on the
command line, prints, and writes files. `add_commands` adds the subcommands to the CLI's parser and returns
their handlers; every deliberate error is a one-line `UsageError` (exit 2), printed by `cli.main`.

Reports are read together with the reports their runs resumed (named in `run_started.resumes`, found by
`journal.read_reports`), oldest first: the summary, the retry plan and the rollback plan of a resumed run cover
the whole effort. A resumed report that is gone for good is read without only when `--lost` names it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .cli_common import EXIT_CODES_HELP, add_subcommand, command_line
from .errors import ExitCode, UsageError
from .journal import Journal, ReportFiles, parse_journal, read_reports
from .plan import load_plan
from .planwrite import EmptyPlan, check_same_plan, init_plan, plan_from_csv, retry_plan, rollback_plan
from .summary import journal_for_summary, make_filters, needs_a_look, summarize
from .summarytext import render_csv, render_json, render_table

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
FORMATS = {"table": render_table, "json": render_json, "csv": render_csv}


# --- the parser ---------------------------------------------------------------------------------------------------
def add_commands(sub: Subparsers, common: argparse.ArgumentParser) -> dict[str, Handler]:
    """Add report, rollback, init and plan (from-csv) to the CLI's subparsers; return {command: handler}."""

    def command(parent: Subparsers, name: str, help_text: str, examples: Sequence[str]) -> argparse.ArgumentParser:
        return add_subcommand(parent, common, name, help_text, examples)

    p = command(
        sub,
        "report",
        "summarise one or more reports (a run and the runs that resumed it); write a retry plan or an HTML report",
        [
            "orchestrator report reports/wave1-20261207T010000Z.jsonl",
            "orchestrator report R.jsonl --outcome failed --outcome unknown --format csv > failed.csv",
            "orchestrator report R.jsonl --retry-plan retry.yaml --plan plans/wave1.yaml",
            "orchestrator report R.jsonl --html wave1.html",
        ],
    )
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report files (JSON lines), oldest first")
    p.add_argument(
        "--outcome",
        action="append",
        metavar="X",
        help="only targets with this outcome (repeatable, or comma-separated): submitted, unchanged, failed, "
        "unknown, drifted, not_started, ...",
    )
    p.add_argument("--instance", action="append", metavar="ID", help="only the targets of this instance (repeatable)")
    p.add_argument("--format", choices=tuple(FORMATS), default="table", help="output on stdout (default: table)")
    p.add_argument(
        "--retry-plan",
        metavar="FILE",
        help="write a plan of the targets that did not succeed (and match the filters); needs --plan",
    )
    p.add_argument("--plan", metavar="PLAN", help="with --retry-plan: the plan the reports ran (its settings are kept)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report to FILE")
    p.add_argument("--force", action="store_true", help="overwrite an existing --retry-plan file")
    add_lost(p, "the summary then needs a look: the targets of its runs are missing")

    p = command(
        sub,
        "rollback",
        "write the inverse plan of one or more reports: every proxy they changed back to its mode before",
        ["orchestrator rollback reports/wave1-20261207T010000Z.jsonl --plan plans/wave1.yaml --out rollback.yaml"],
    )
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report files (JSON lines), oldest first")
    p.add_argument("--plan", metavar="PLAN", required=True, help="the plan the reports ran (its settings are kept)")
    p.add_argument("--out", metavar="FILE", required=True, help="the rollback plan to write ('-': stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    add_lost(p, "the proxies its runs changed are then not in the rollback plan")

    p = command(
        sub,
        "init",
        "write a commented starter plan (every key explained; valid as it is, with example IDs to replace)",
        ["orchestrator init --out plans/wave1.yaml"],
    )
    p.add_argument(
        "--out", metavar="FILE", default="plan.yaml", help="where to write it (default: plan.yaml; '-': stdout)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    plan = sub.add_parser(
        "plan",
        help="write plans from other sources (plan from-csv)",
        description="write plans from other sources",
        epilog=f"example:\n  orchestrator plan from-csv fleet.csv --region cn-north-4 --project-id P --out fleet.yaml"
        f"\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan_sub = plan.add_subparsers(dest="plan_command", required=True, metavar="SUBCOMMAND")
    p = command(
        plan_sub,
        "from-csv",
        "build a plan from a CSV with a header row: instance_id, proxy_id, mode and optionally project_id "
        "(any order and case; other columns are ignored)",
        [
            "orchestrator plan from-csv fleet.csv --region cn-north-4 --project-id 619d3e78f61b4be68bc5aa0b59edcf7b "
            "--out plans/fleet.yaml",
            "cmdb-export | orchestrator plan from-csv - --region cn-north-4 --project-id P > plans/fleet.yaml",
        ],
    )
    p.add_argument("csv", metavar="CSV", help="the CSV file ('-': stdin)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", help="the plan's region, such as cn-north-4")
    where.add_argument("--endpoint", help="the plan's endpoint URL, instead of a region")
    p.add_argument("--project-id", required=True, help="the default project_id (a project_id column overrides it)")
    p.add_argument("--name", help="the plan's name (default: the plan file's name)")
    p.add_argument("--out", metavar="FILE", default="-", help="the plan to write (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    return {"report": cmd_report, "rollback": cmd_rollback, "init": cmd_init, "plan": cmd_plan}


def add_lost(parser: argparse.ArgumentParser, then: str) -> None:
    parser.add_argument(
        "--lost",
        action="append",
        metavar="REPORT",
        help=f"a report the runs resumed that is gone for good, as the error names it: read without it ({then}; "
        "repeatable)",
    )


# --- the commands -------------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    filters = make_filters(args.outcome or (), args.instance or ())
    if args.plan and not args.retry_plan:
        raise UsageError("--plan is used with --retry-plan only")
    if args.retry_plan and not args.plan:
        raise UsageError("--retry-plan needs --plan PLAN: the plan the reports ran (its settings are kept)")
    for option, value in (("--retry-plan", args.retry_plan), ("--html", args.html)):
        if value == "-":
            raise UsageError(f"{option}: give a file name: stdout carries the summary")
    if args.retry_plan:
        refuse_overwrite(args.retry_plan, "--retry-plan", force=args.force)
    found = reports_of(args)
    files = found.files
    journal = journal_for_summary(files, left_out=found.left_out)
    warn_bad_lines(journal, quiet=args.quiet)
    summary = summarize(journal, filters)
    sys.stdout.write(FORMATS[args.format](summary))
    if args.html:
        from .htmlreport import render_html

        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        write_file(args.html, render_html(summary, generated=generated), "--html")
        note(args, f"HTML report written to {args.html}")
    if args.retry_plan:
        plan = load_plan(args.plan)
        if summary.dry_run:
            raise UsageError("--retry-plan: these reports hold only dry runs: nothing was sent, nothing to retry")
        check_same_plan(journal, plan)
        try:
            text = retry_plan(journal, plan, sources=[name for name, _ in files], only=filters)
        except EmptyPlan as exc:
            note(args, f"{exc}; no retry plan written")
        else:
            write_file(args.retry_plan, text, "--retry-plan")
            note(args, f"retry plan written to {args.retry_plan}; next: {command_line('preview', args.retry_plan)}")
    # Like apply's: 3 when any target shown is not done (the verdict NEEDS A LOOK), so scripts can test it.
    return ExitCode.FAILED_TARGETS if needs_a_look(summary) else ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    refuse_overwrite(args.out, "--out", force=args.force)
    plan = load_plan(args.plan)
    found = reports_of(args)
    files = found.files
    journal = parse_journal(files, left_out=found.left_out)  # dry runs changed nothing: their lines are left out
    warn_bad_lines(journal, quiet=args.quiet)
    try:
        text = rollback_plan(journal, plan, sources=[name for name, _ in files])
    except EmptyPlan as exc:
        note(args, f"{exc}; no rollback plan written")
        return ExitCode.OK
    write_file(args.out, text, "--out")
    if args.out != "-":
        note(args, f"rollback plan written to {args.out}; review it, then: orchestrator preview {args.out}")
    return ExitCode.OK


def cmd_init(args: argparse.Namespace) -> int:
    refuse_overwrite(args.out, "--out", force=args.force)
    write_file(args.out, init_plan(), "--out")
    if args.out != "-":
        note(args, f"starter plan written to {args.out}; edit its IDs, then: {command_line('validate', args.out)}")
    return ExitCode.OK


def cmd_plan(args: argparse.Namespace) -> int:
    if args.plan_command != "from-csv":  # argparse allows only the subcommands it knows
        raise UsageError(f"plan: unknown subcommand {args.plan_command!r}")
    refuse_overwrite(args.out, "--out", force=args.force)
    name = "<stdin>" if args.csv == "-" else args.csv
    text = read_csv_text(args.csv)
    plan = plan_from_csv(
        text, project_id=args.project_id, region=args.region, endpoint=args.endpoint, file=name, name=args.name
    )
    write_file(args.out, plan, "--out")
    if args.out != "-":
        note(args, f"plan written to {args.out}; next: {command_line('validate', args.out)}")
    return ExitCode.OK


# --- files --------------------------------------------------------------------------------------------------------
def reports_of(args: argparse.Namespace) -> ReportFiles:
    """The reports named and, before them, the reports their runs resumed; a note on stderr of the latter and
    of those left out (--lost), unless -q."""
    found = read_reports(args.reports, lost=args.lost or ())
    if not args.quiet:
        if found.followed:
            also = ", ".join(found.followed)
            print(f"orchestrator: also reading the reports these runs resumed: {also}", file=sys.stderr)
        for left_out in found.left_out:
            print(f"orchestrator: warning: {left_out}", file=sys.stderr)
    return found


def read_csv_text(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else _read_bytes(path)
    except OSError as exc:
        raise UsageError(f"cannot read the CSV {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text; save the CSV as UTF-8 (CSV UTF-8 in a spreadsheet)") from None


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def warn_bad_lines(journal: Journal, *, quiet: bool) -> None:
    if not quiet:
        for bad in journal.bad_lines:
            print(f"orchestrator: warning: {bad}", file=sys.stderr)


def refuse_overwrite(path: str, option: str, *, force: bool) -> None:
    if path != "-" and os.path.exists(path) and not force:
        raise UsageError(f"{option}: {path} exists; pass --force to overwrite it")


def write_file(path: str, text: str, option: str) -> None:
    """Write `text` to `path` atomically ('-': stdout); UsageError if it cannot be written."""
    if path == "-":
        sys.stdout.write(text)
        return
    from .files import write_atomically

    try:
        write_atomically(path, text)
    except OSError as exc:
        raise UsageError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None


def note(args: argparse.Namespace, message: str) -> None:
    """A line for the operator, on stderr (stdout carries only what was asked for); none with -q."""
    if not getattr(args, "quiet", False):
        print(f"orchestrator: {message}", file=sys.stderr)
