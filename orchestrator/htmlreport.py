"""A static HTML report of a summary: one self-contained file to attach to the change ticket. Pure.

No external resource: the CSS and the small filter script are inline, and a Content-Security-Policy allows
exactly those two (by hash) and nothing else, so a viewer loads nothing from anywhere. Report content is
untrusted (an error message comes from a server): every value is written through `html.escape`, and the
script only reads attributes and toggles `hidden`, never writes HTML.

The timeline is an inline SVG histogram per run: the targets settled per time bucket, by kind (done, failing,
not started, preview). Reports record the run's total calls, not when each call was made, so request rates
are given per run (calls over duration, and the plan's limit), not per bucket.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Final

from .summary import QUIET_OUTCOMES, RunInfo, Settled, Summary, TargetRow, needs_a_look, sent
from .summarytext import format_duration, format_time, traffic_line

_BUCKETS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
_MAX_BARS: Final = 60
_KINDS: Final = ("done", "failing", "not_started", "preview")  # stacking order, bottom up
_WIDTH, _HEIGHT, _PAD = 720, 160, 28

_CSS: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1a1a1a; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, td.id { font-family: ui-monospace, monospace; font-size: .92em; }
.verdict { font-size: 1.1em; font-weight: 600; padding: .4em .7em; display: inline-block; border-radius: 4px; }
.ok { background: #e3f4e6; } .look { background: #fde4e1; }
.o-preview { color: #1565c0; } .o-done { color: #1e7b34; } .o-not_started { color: #777; }
.o-failing { color: #b3261e; font-weight: 600; }
svg { background: #fafafa; border: 1px solid #ddd; }
.bar-done { fill: #4caf50; } .bar-failing { fill: #e53935; } .bar-not_started { fill: #9e9e9e; }
.bar-preview { fill: #42a5f5; } .axis { fill: #555; font-size: 11px; }
.filters { margin: .5em 0; } .filters input { width: 22em; }
"""

_SCRIPT: Final = """
(function () {
  var outcome = document.getElementById("filter-outcome");
  var text = document.getElementById("filter-text");
  var shown = document.getElementById("shown");
  var rows = document.querySelectorAll("#targets tbody tr");
  function apply() {
    var o = outcome.value, t = text.value.trim().toLowerCase(), n = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var ok = (!o || row.getAttribute("data-outcome") === o) &&
               (!t || row.getAttribute("data-search").indexOf(t) !== -1);
      row.hidden = !ok;
      if (ok) { n++; }
    }
    shown.textContent = String(n);
  }
  outcome.addEventListener("change", apply);
  text.addEventListener("input", apply);
  apply();
})();
"""


def render_html(summary: Summary, *, title: str = "orchestrator report", generated: str | None = None) -> str:
    """The whole report as one HTML document. `generated`: a time to show as the report's date, if any."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_policy()}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{escape(title)}</h1>",
        _overview(summary, generated),
        _counts(summary),
        _runs(summary.runs),
        _failures(summary),
        _timeline(summary),
        _targets(summary),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _policy() -> str:
    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    return f"default-src 'none'; style-src {digest(_CSS)}; script-src {digest(_SCRIPT)}"


def kind_of(outcome: str) -> str:
    """How a target's outcome reads at a glance: done, failing, not_started or preview."""
    if outcome == "would_change":
        return "preview"
    if outcome in QUIET_OUTCOMES:
        return "done"
    return "not_started" if outcome == "not_started" else "failing"


def _overview(summary: Summary, generated: str | None) -> str:
    look = needs_a_look(summary)  # the same verdict as the table's, and `report`'s exit code
    if look:
        verdict, css = "needs a look: " + "; ".join(look), "look"
    elif not summary.rows:
        verdict, css = "nothing to report", "ok"
    else:
        verdict, css = "preview only: nothing was sent" if summary.dry_run else "every target is done", "ok"
    files = ", ".join(f"<code>{escape(name)}</code>" for name in summary.files)
    when = f" Written {escape(generated)}." if generated else ""
    shown = f" Filtered: {escape(summary.filters.describe())}." if summary.filters.active else ""
    lines = [
        f'<p class="verdict {css}">{escape(verdict)}</p>',
        f"<p>{summary.total} targets in {len(summary.runs)} runs, from {files}.{shown}{when}</p>",
    ]
    if summary.bad_lines:
        items = "".join(f"<li><code>{escape(line)}</code></li>" for line in summary.bad_lines)
        lines.append(f"<p>Lines that could not be read, ignored:</p><ul>{items}</ul>")
    return "\n".join(lines)


def _counts(summary: Summary) -> str:
    rows = [(f'<span class="o-{kind_of(o)}">{escape(o)}</span>', str(n)) for o, n in summary.counts.items()]
    rows.append(("<b>total</b>", f"<b>{len(summary.rows)}</b>"))
    body = "".join(f'<tr><td>{o}</td><td class="n">{n}</td></tr>' for o, n in rows)
    return (
        "<h2>Outcomes</h2>"
        f"<table><thead><tr><th>outcome</th><th>targets</th></tr></thead><tbody>{body}</tbody></table>"
        f"<p>{escape(traffic_line(summary))}</p>"
    )


def _runs(runs: Sequence[RunInfo]) -> str:
    if not runs:
        return ""
    rows = []
    for run in runs:
        rate = ""
        if run.requests and run.duration_s:
            rate = f"{sent(run.requests) / run.duration_s:.2f}/s"
        note = (
            "no run_finished line: killed, or still running"
            if not run.finished
            else (f"stopped: {run.stop_reason}" if run.stop_reason else "")
        )
        cells = [
            f'<td class="id" title="{escape(run.run_id)}">{escape(run.run_id[:8])}</td>',
            f"<td>{escape(format_time(run.started))}</td>",
            f"<td>{escape(run.command or '-')}{' (dry run)' if run.dry_run else ''}</td>",
            f'<td class="n">{escape("-" if run.duration_s is None else format_duration(run.duration_s))}</td>',
            f'<td class="n">{run.requests.get("calls", "-")}</td>',
            f'<td class="n">{escape(rate)}</td>',
            f"<td>{escape(run.rate_limit or '-')}</td>",
            f'<td class="n">{"-" if run.exit_code is None else run.exit_code}</td>',
            f"<td>{escape(note)}</td>",
            f"<td><code>{escape(run.file)}</code></td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("run", "started", "command", "duration", "calls", "sent/s", "limit", "exit", "note", "report")
    )
    return f"<h2>Runs</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _failures(summary: Summary) -> str:
    if not summary.failures:
        return ""
    rows = "".join(
        f'<tr><td class="n">{g.count}</td><td><code>{escape(g.error_code or "-")}</code></td>'
        f"<td>{escape(', '.join(f'{n} {o}' for o, n in g.outcomes.items()))}</td>"
        f"<td>{escape(g.example or '-')}</td></tr>"
        for g in summary.failures
    )
    head = "<tr><th>count</th><th>error code</th><th>outcomes</th><th>example message</th></tr>"
    return f"<h2>Failures by error code</h2><table><thead>{head}</thead><tbody>{rows}</tbody></table>"


# --- the timeline ---------------------------------------------------------------------------------------------
def bucket_seconds(span_s: float) -> int:
    """The smallest round bucket that draws `span_s` seconds in at most 60 bars."""
    wanted = span_s / _MAX_BARS
    return next((b for b in _BUCKETS if b >= wanted), max(_BUCKETS[-1], math.ceil(wanted)))


def histogram(settled: Iterable[Settled], start: datetime) -> tuple[int, list[Counter[str]]]:
    """Targets settled per bucket since `start`, counted by kind; and the bucket's length in seconds."""
    moments = sorted(settled, key=lambda s: s.at)
    span = max(((moments[-1].at - start).total_seconds() if moments else 0.0), 1.0)
    size = bucket_seconds(span)
    buckets: list[Counter[str]] = [Counter() for _ in range(int(span // size) + 1)]
    for item in moments:
        index = max(0, int((item.at - start).total_seconds() // size))
        buckets[min(index, len(buckets) - 1)][kind_of(item.outcome)] += 1
    return size, buckets


def _timeline(summary: Summary) -> str:
    by_run: dict[str, list[Settled]] = {}
    for item in (s for row in summary.rows for s in row.settled):
        by_run.setdefault(item.run_id, []).append(item)
    charts = []
    for run in summary.runs:
        settled = by_run.get(run.run_id)
        if not settled:
            continue
        start = run.started or min(s.at for s in settled)
        charts.append(_chart(run, settled, start))
    if not charts:
        return ""
    legend = " ".join(f'<span class="o-{kind}">&#9632; {kind.replace("_", " ")}</span>' for kind in _KINDS)
    return "<h2>Timeline: targets settled over each run</h2><p>" + legend + "</p>" + "\n".join(charts)


def _chart(run: RunInfo, settled: Sequence[Settled], start: datetime) -> str:
    size, buckets = histogram(settled, start)
    peak = max(sum(b.values()) for b in buckets) or 1
    plot_w, plot_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD
    bar_w = plot_w / len(buckets)
    shapes = []
    for index, bucket in enumerate(buckets):
        x, y = _PAD + index * bar_w, float(_HEIGHT - _PAD)
        begin = start + timedelta(seconds=index * size)
        tip = f"{format_time(begin)} +{size}s: " + ", ".join(f"{bucket[k]} {k}" for k in _KINDS if bucket[k])
        for kind in _KINDS:
            if bucket[kind]:
                height = bucket[kind] / peak * plot_h
                y -= height
                shapes.append(
                    f'<rect class="bar-{kind}" x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                    f'height="{height:.1f}"><title>{escape(tip)}</title></rect>'
                )
    end = start + timedelta(seconds=len(buckets) * size)
    axis = [
        f'<text class="axis" x="{_PAD}" y="{_HEIGHT - 8}">{escape(format_time(start))}</text>',
        f'<text class="axis" x="{_WIDTH - _PAD}" y="{_HEIGHT - 8}" text-anchor="end">{escape(format_time(end))}</text>',
        f'<text class="axis" x="4" y="{_PAD - 8}">{peak} per {size}s</text>',
        f'<line x1="{_PAD}" y1="{_HEIGHT - _PAD}" x2="{_WIDTH - _PAD}" y2="{_HEIGHT - _PAD}" stroke="#555"/>',
    ]
    rate = ""
    if run.requests and run.duration_s:
        limit = f", limit {run.rate_limit}" if run.rate_limit else ""
        rate = f": {sent(run.requests)} requests sent in {format_duration(run.duration_s)}, "
        rate += f"{sent(run.requests) / run.duration_s:.2f}/s on average{limit}"
    caption = f"run {run.run_id[:8]}{rate}; {len(settled)} targets settled, bars of {size}s"
    label = f"Targets settled per {size} seconds during run {run.run_id}"
    return (
        f"<figure><figcaption>{escape(caption)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{escape(label)}">'
        + "".join(shapes + axis)
        + "</svg></figure>"
    )


# --- the targets ----------------------------------------------------------------------------------------------
_COLUMNS: Final = ("outcome", "instance", "proxy", "project", "mode before", "goal", "job", "error", "message", "when")


def _targets(summary: Summary) -> str:
    options = "".join(f'<option value="{escape(o)}">{escape(o)} ({n})</option>' for o, n in summary.counts.items())
    controls = (
        '<div class="filters"><label>outcome <select id="filter-outcome"><option value="">all</option>'
        f"{options}</select></label> "
        '<label>instance or proxy <input id="filter-text" type="search" placeholder="part of an ID"></label> '
        f'<span id="shown">{len(summary.rows)}</span> of {len(summary.rows)} shown</div>'
    )
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    body = "\n".join(_target_row(row) for row in summary.rows)
    return (
        f'<h2>Targets</h2>{controls}<table id="targets"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'
    )


def _target_row(row: TargetRow) -> str:
    search = f"{row.instance_id} {row.proxy_id} {row.project_id}".lower()
    error = " ".join(str(part) for part in (row.http_status, row.error_code) if part)
    cells = [
        f'<td class="o-{kind_of(row.outcome)}">{escape(row.outcome)}</td>',
        f'<td class="id">{escape(row.instance_id)}</td>',
        f'<td class="id">{escape(row.proxy_id)}</td>',
        f'<td class="id">{escape(row.project_id)}</td>',
        f"<td>{escape(row.mode_before or '-')}</td>",
        f"<td>{escape(row.mode_target or '-')}</td>",
        f'<td class="id">{escape(row.job_id or "-")}</td>',
        f"<td>{escape(error or '-')}</td>",
        f"<td>{escape(row.error_msg or row.note or '')}</td>",
        f"<td>{escape(format_time(row.ts))}</td>",
    ]
    return f'<tr data-outcome="{escape(row.outcome)}" data-search="{escape(search)}">' + "".join(cells) + "</tr>"
