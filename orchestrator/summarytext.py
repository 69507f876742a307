"""A summary as text: an aligned table for people, JSON and CSV for tools. Pure.

Report content is untrusted (an error message comes from a server): the table shows control characters
escaped, and the CSV defuses cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from .summary import CSV_FIELDS, QUIET_OUTCOMES, RunInfo, Summary, needs_a_look, row_order


def render_json(summary: Summary) -> str:
    """One JSON document."""
    return json.dumps(summary.as_dict(), indent=2, ensure_ascii=False) + "\n"


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def render_csv(summary: Summary) -> str:
    """A header and one row per target; a cell a spreadsheet would read as a formula gets a leading quote."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in summary.rows:
        cells = row.as_dict()
        writer.writerow(_defuse(cells[name]) for name in CSV_FIELDS)
    return out.getvalue()


def _defuse(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_table(summary: Summary, *, message_width: int = 80, max_targets: int | None = None) -> str:
    """Aligned text: the runs, the counts per outcome, the failures by error code, then the targets.

    Without filters, only the targets that need a look are listed (failing or not started); with filters,
    every target that matches; with `max_targets`, the first that many, then how many more there are.
    """
    out: list[str] = [_headline(summary), _verdict(summary), ""]
    if summary.runs:
        out += _table(
            ("run", "started", "command", "duration", "exit", "note"),
            [
                (
                    run.run_id[:8],
                    format_time(run.started),
                    (run.command or "-") + (" (dry run)" if run.dry_run else ""),
                    "-" if run.duration_s is None else format_duration(run.duration_s),
                    "-" if run.exit_code is None else str(run.exit_code),
                    _run_note(run),
                )
                for run in summary.runs
            ],
        )
        out.append("")
    if not summary.rows:
        out.append("no targets" + (f" match {summary.filters.describe()}" if summary.filters.active else ""))
        return "\n".join(_clean(line) for line in out) + "\n"
    counts = [(outcome, str(n)) for outcome, n in summary.counts.items()]
    out += _table(("outcome", "targets"), [*counts, ("total", str(len(summary.rows)))], right=(1,))
    out += ["", traffic_line(summary)]
    if summary.failures:
        out += ["", "failures by error code:"]
        out += _table(
            ("count", "error code", "outcomes", "example message"),
            [
                (
                    str(group.count),
                    group.error_code or "-",
                    ", ".join(f"{n} {o}" for o, n in group.outcomes.items()),
                    _short(group.example, message_width),
                )
                for group in summary.failures
            ],
            right=(0,),
        )
    listed = (
        summary.rows if summary.filters.active else tuple(r for r in summary.rows if r.outcome not in QUIET_OUTCOMES)
    )
    if listed:
        title = "targets" if summary.filters.active else "targets that need a look"
        out += ["", f"{title} ({len(listed)}):"]
        order = {outcome: i for i, outcome in enumerate(summary.counts)}
        ordered = sorted(listed, key=lambda r: (order.get(r.outcome, 99), row_order(r)))
        out += _table(
            ("outcome", "instance", "proxy", "mode", "error", "message"),
            [
                (
                    row.outcome,
                    row.instance_id,
                    row.proxy_id,
                    f"{row.mode_before or '?'} -> {row.mode_target or '?'}",
                    " ".join(filter(None, (str(row.http_status or ""), row.error_code or ""))) or "-",
                    _short(row.error_msg or row.note, message_width),
                )
                for row in ordered[:max_targets]
            ],
        )
        if max_targets is not None and len(ordered) > max_targets:
            more = shlex.join(("orchestrator", "report", *summary.files))
            out.append(f"... and {len(ordered) - max_targets} more: {more}")
    return "\n".join(_clean(line).rstrip() for line in out) + "\n"


def _headline(summary: Summary) -> str:
    files = f"{len(summary.files)} report{'s' if len(summary.files) != 1 else ''}"
    runs = f"{len(summary.runs)} run{'s' if len(summary.runs) != 1 else ''}"
    what = "dry runs only: a preview, nothing was sent; " if summary.dry_run else ""
    shown = f" ({len(summary.rows)} match {summary.filters.describe()})" if summary.filters.active else ""
    bad = f"; {len(summary.bad_lines)} unreadable lines ignored" if summary.bad_lines else ""
    return f"{files}, {runs}: {what}{summary.total} targets{shown}{bad}"


def _verdict(summary: Summary) -> str:
    """The one line to read first."""
    look = needs_a_look(summary)
    if look:
        return "NEEDS A LOOK: " + "; ".join(look)
    if not summary.rows:
        return "nothing to report"
    if summary.dry_run:
        return f"preview: {summary.counts.get('would_change', 0)} would change"
    return "ok: every target is done"


def format_time(moment: datetime | None) -> str:
    """2026-12-03 13:53:25Z: to the second, UTC marked Z."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S%z").replace("+0000", "Z")


def _run_note(run: RunInfo) -> str:
    if not run.finished:
        return "no run_finished line: killed, or still running"
    return f"stopped: {run.stop_reason}" if run.stop_reason else ""


def traffic_line(summary: Summary) -> str:
    """Duration, calls and effective rate in one line (the table and the HTML report show the same)."""
    parts = [f"duration {format_duration(summary.duration_s)}"]
    requests = summary.requests
    if requests:
        parts.append(
            f"{requests['calls']} calls ({requests['wire']} sent on the wire, {requests['retries']} retries, "
            f"{requests['throttled']} throttled (HTTP 429), {requests['job_polls']} job polls)"
        )
    if summary.effective_rate is not None:
        limit = f" (limit {summary.rate_limit})" if summary.rate_limit else ""
        parts.append(f"effective rate {summary.effective_rate:.2f} requests/s sent{limit}")
    return "; ".join(parts)


def format_duration(seconds: float) -> str:
    """12.3s, 4m05s, 2h03m07s: short, and sortable by eye."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> list[str]:
    cells = [list(header), *([_clean(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]


def _short(text: str | None, width: int) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _clean(text: str) -> str:
    """Control characters (an escape sequence in an error message) shown, not sent to the terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
