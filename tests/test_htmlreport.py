"""The HTML report: self-contained, everything escaped, a timeline per run and a filterable table of targets."""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from reportfixtures import I1, I2, P1, P2, P3, START, ReportBuilder, first_run, second_run

from orchestrator.htmlreport import bucket_seconds, histogram, kind_of, render_html
from orchestrator.summary import Settled, Summary, journal_for_summary, make_filters, summarize


class Page(HTMLParser):
    """The parts of a page the tests look at: tags with attributes, table rows, texts of script and style."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[tuple[dict[str, str | None], list[str]]] = []  # #targets tbody rows: attributes, cells
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id")
        if tag == "tr" and self._table == "targets" and "data-outcome" in attributes:
            self.rows.append((attributes, []))
        if tag == "td" and self.rows and self._table == "targets":
            self._cell = []
        if tag in ("script", "style"):
            self._in.append(tag)
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell))
            self._cell = None
        if tag == "table":
            self._table = None
        if tag in ("script", "style") and self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in:
            target = self.scripts if self._in[-1] == "script" else self.styles
            target[-1] += data


def both_runs() -> Summary:
    files = [("one.jsonl", first_run().data()), ("two.jsonl", second_run().data())]
    return summarize(journal_for_summary(files))


def test_the_table_has_one_row_per_target_with_its_outcome() -> None:
    """Each target of the summary is one row of the targets table, its outcome in data-outcome and first cell."""
    summary = both_runs()
    page = Page(render_html(summary))
    assert len(page.rows) == len(summary.rows) == 6
    for (attributes, cells), row in zip(page.rows, summary.rows, strict=True):
        assert attributes["data-outcome"] == row.outcome == cells[0]
        assert cells[1:3] == [row.instance_id, row.proxy_id]
        assert attributes["data-search"] == f"{row.instance_id} {row.proxy_id} {row.project_id}".lower()


def test_the_filter_offers_every_outcome_of_the_summary() -> None:
    """The outcome filter lists 'all' and each outcome with its count."""
    page = Page(render_html(both_runs()))
    options = [a.get("value") for tag, a in page.tags if tag == "option"]
    assert options == ["", "submitted", "unchanged", "failed"]
    assert any(tag == "input" and a.get("id") == "filter-text" for tag, a in page.tags)


def test_report_content_is_escaped_everywhere() -> None:
    """Markup in report fields is shown as text: no element, attribute or script comes from a report."""
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"
    report = (
        ReportBuilder("run-<u>", command="<i>apply</i>")
        .target(P1, "failed", error_code='E"><svg onload=alert(3)>', error_msg=hostile, note=hostile)
        .target(P2, '"><img src=y>', error_msg=hostile)
        .finished(at=3.0, stop_reason=hostile)
    )
    summary = summarize(journal_for_summary([("<evil>.jsonl", report.data())]))
    html = render_html(summary, title="<t>")
    page = Page(html)
    assert [tag for tag, _ in page.tags if tag in ("img", "i", "u", "t", "evil")] == []
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]
    assert not any(name.startswith("on") for _, attributes in page.tags for name in attributes)
    svg_tags = [tag for tag, _ in page.tags if tag == "svg"]
    assert len(svg_tags) == 1  # the timeline's, not the one in the error code
    assert page.rows[0][1][-2] == hostile  # the message cell reads as the raw text
    assert page.rows[1][0]["data-outcome"] == '"><img src=y>'


def test_the_page_loads_nothing_from_outside() -> None:
    """No element refers to another resource, and the CSP allows only the inline style and script by hash."""
    html = render_html(both_runs())
    page = Page(html)
    assert not [a for tag, a in page.tags for name in ("src", "href") if a.get(name)]
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    policy = next(a["content"] for tag, a in page.tags if tag == "meta" and a.get("http-equiv"))
    assert policy is not None and policy.startswith("default-src 'none'; ")

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"script-src 'sha256-{digest(page.scripts[0])}'" in policy
    assert f"style-src 'sha256-{digest(page.styles[0])}'" in policy


def test_the_summary_parts_are_on_the_page() -> None:
    """Verdict, counts, runs with their rate and limit, and the failures by error code are shown."""
    html = render_html(both_runs(), generated="2026-12-07 03:00:00Z")
    assert "needs a look: 2 failed" in html
    assert "effective rate 2.13 requests/s sent (limit 5/s)" in html
    assert "<h2>Failures by error code</h2>" in html and "DBS.200001" in html
    assert "stopped: the change window&#x27;s cutoff was reached" in html
    assert "Written 2026-12-07 03:00:00Z." in html


def test_each_run_has_a_timeline_of_its_settled_targets() -> None:
    """One SVG per run; its bars add up to the target lines the run wrote for the shown targets."""
    summary = both_runs()
    page = Page(render_html(summary))
    assert [a.get("aria-label") for tag, a in page.tags if tag == "svg"] == [
        "Targets settled per 1 seconds during run run-one-0000",
        "Targets settled per 1 seconds during run run-two-0000",
    ]
    titles = "".join(re.findall(r"<title>([^<]*)</title>", render_html(summary)))
    settled = Counter(s.run_id for row in summary.rows for s in row.settled)
    assert sum(int(n) for n in re.findall(r"(\d+) (?:done|failing|not_started|preview)", titles)) == sum(
        settled.values()
    )


def test_histogram_buckets_count_each_kind() -> None:
    """Settled targets fall into buckets of a round size from the start, counted by kind."""
    settled = [
        Settled(START + timedelta(seconds=s), outcome, "r")
        for s, outcome in [(0.5, "submitted"), (1.0, "failed"), (30.0, "unknown"), (119.0, "not_started")]
    ]
    size, buckets = histogram(settled, START)
    assert size == 2 and len(buckets) == 60
    assert buckets[0] == Counter({"done": 1, "failing": 1})
    assert buckets[15] == Counter({"failing": 1}) and buckets[59] == Counter({"not_started": 1})
    assert sum(sum(b.values()) for b in buckets) == 4


@pytest.mark.parametrize(
    ("span", "size"), [(1, 1), (59, 1), (61, 2), (600, 10), (3600, 60), (7200, 120), (10**7, 166667)]
)
def test_bucket_sizes_are_round_and_keep_to_sixty_bars(span: float, size: int) -> None:
    """The bucket is the smallest round size that draws the span in at most 60 bars."""
    assert bucket_seconds(span) == size and span / size <= 60


def test_outcomes_read_as_four_kinds() -> None:
    """done, failing, not started and preview are the colours of the timeline."""
    kinds = {o: kind_of(o) for o in ("submitted", "unchanged", "completed", "failed", "unknown", "drifted",
                                      "not_started", "would_change", "zzz")}  # fmt: skip
    assert kinds == {
        "submitted": "done", "unchanged": "done", "completed": "done", "failed": "failing", "unknown": "failing",
        "drifted": "failing", "not_started": "not_started", "would_change": "preview", "zzz": "failing",
    }  # fmt: skip


def test_a_filtered_summary_shows_only_its_targets() -> None:
    """The HTML of a filtered summary lists the matching targets and says which filter was used."""
    files = [("one.jsonl", first_run().data()), ("two.jsonl", second_run().data())]
    summary = summarize(journal_for_summary(files), make_filters([], [I2]))
    page = Page(render_html(summary))
    assert {cells[1] for _, cells in page.rows} == {I2}
    assert "Filtered: instance " in render_html(summary)


def test_an_empty_summary_is_still_a_page() -> None:
    """Reports without targets give a page that says there is nothing to report."""
    empty = ReportBuilder("r")
    empty.lines[0]["targets"] = 0  # a finished run of nothing: no target is missing its line
    summary = summarize(journal_for_summary([("e.jsonl", empty.finished(at=1.0).data())]))
    html = render_html(summary)
    assert "nothing to report" in html and Page(html).rows == []


def test_a_preview_summary_is_marked_as_such() -> None:
    """A summary of dry runs only says nothing was sent."""
    preview = ReportBuilder("dry", dry_run=True, command="preview").target(P3, "would_change", instance=I1)
    preview.lines[0]["targets"] = 1
    preview.finished(at=1.0)
    html = render_html(summarize(journal_for_summary([("p.jsonl", preview.data())])))
    assert "preview only: nothing was sent" in html and "(dry run)" in html


def test_a_killed_runs_page_needs_a_look_like_the_table() -> None:
    """A run with no run_finished line, all its lines done, is 'needs a look' on the page as in the table."""
    killed = ReportBuilder("killed-run-0000").target(P1, "submitted", at=1.0).target(P2, "unchanged", at=1.5)
    summary = summarize(journal_for_summary([("killed.jsonl", killed.text().encode())]))
    html = render_html(summary, generated="2026-12-07 03:00:00Z")
    assert "needs a look: " in html and "no run_finished line" in html and "every target is done" not in html
