"""A fleet read from a CSV file: one row per target. Pure: text in, rows or located errors out.

Fleets are often exported from a console or a CMDB as spreadsheets, so the reader is lenient about the form
and strict about the content:
* a header row names the columns `instance_id`, `proxy_id`, `mode` and, optionally, `project_id`, in any order
  and any case (`Instance ID`, `proxy-id` too); other columns are ignored;
* a UTF-8 byte order mark, CRLF line ends, blank lines, spaces around cells, `;` or tab separators are fine;
* every ID, mode and duplicate is checked like in a plan, and every problem is reported, one line each, as
  `file:line:column: column_name: message`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import PlanError, PlanIssue
from .plan import ALL_PROXIES, ID_ALLOWED, INSTANCE_ID_RE, MODES, PROJECT_ID_RE, PROXY_ID_RE, show

REQUIRED_COLUMNS: Final = ("instance_id", "proxy_id", "mode")
OPTIONAL_COLUMNS: Final = ("project_id",)
MAX_ISSUES: Final = 50  # a wrong export can have thousands of bad rows: the first ones say enough
_CHECKS: Final = {"instance_id": INSTANCE_ID_RE, "proxy_id": PROXY_ID_RE, "project_id": PROJECT_ID_RE}


@dataclass(frozen=True, slots=True)
class CsvTarget:
    project_id: str | None  # None: the plan's default project
    instance_id: str
    proxy_id: str
    mode: str
    line: int


def read_fleet_csv(text: str, *, file: str, default_project: str | None = None) -> tuple[CsvTarget, ...]:
    """The targets of a fleet CSV; PlanError listing every problem (the first MAX_ISSUES) otherwise."""
    reader = _FleetReader(file, default_project)
    targets = reader.read(text.removeprefix("\ufeff"))
    if reader.issues:
        found = sorted(reader.issues, key=lambda i: (i.line, i.column))
        issues = found[:MAX_ISSUES]
        if len(found) > MAX_ISSUES:
            more = f"... and {len(found) - MAX_ISSUES} more problems, not shown"
            issues.append(PlanIssue(file, found[MAX_ISSUES].line, 1, "", more))
        raise PlanError(issues)
    return targets


def _column_name(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").split())


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return max((",", ";", "\t"), key=first.count) if first else ","


class _FleetReader:
    def __init__(self, file: str, default_project: str | None) -> None:
        self.file = file
        self.default_project = default_project
        self.issues: list[PlanIssue] = []
        self.columns: dict[str, int] = {}  # column name -> 0-based index

    def issue(self, line: int, column: str, message: str, *, index: int | None = None) -> None:
        """One problem; `index` (0-based) when the column is not (yet) the one the header chose."""
        if index is None:
            index = self.columns.get(column, 0) if column else 0
        self.issues.append(PlanIssue(self.file, line, index + 1, column, message))

    def read(self, text: str) -> tuple[CsvTarget, ...]:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
        targets: list[CsvTarget] = []
        seen: dict[tuple[str | None, str, str], int] = {}
        header: list[str] | None = None
        try:
            for row in rows:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = row
                    if not self.read_header(row, rows.line_num):
                        return ()
                    continue
                target = self.read_row(row, rows.line_num, len(header))
                if target is not None and self.is_new(target, seen):
                    targets.append(target)
        except csv.Error as exc:  # an unterminated quote, a NUL byte
            self.issue(rows.line_num, "", f"not readable as CSV: {exc}")
            return ()
        if header is None:
            self.issue(1, "", "the file is empty; expected a header row: " + ",".join(REQUIRED_COLUMNS))
        elif not targets and not self.issues:
            self.issue(rows.line_num, "", "no rows after the header: a plan needs at least one target")
        return tuple(targets)

    def read_header(self, row: Sequence[str], line: int) -> bool:
        for index, cell in enumerate(row):
            name = _column_name(cell)
            if name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
                if name in self.columns:
                    first = self.columns[name] + 1
                    message = f"column {name!r} appears twice (columns {first} and {index + 1}); keep one"
                    self.issue(line, name, message, index=index)
                    continue
                self.columns[name] = index
        missing = [name for name in REQUIRED_COLUMNS if name not in self.columns]
        if missing:
            found = ", ".join(show(cell.strip()) for cell in row)
            for name in missing:
                self.issue(line, name, f"missing column {name!r}; the header row has: {found}")
        return not missing and not self.issues

    def read_row(self, row: Sequence[str], line: int, width: int) -> CsvTarget | None:
        extra = [cell for cell in row[width:] if cell.strip()]
        if extra:
            self.issue(line, "", f"{len(row)} cells, but the header has {width} columns")
            return None
        cells = {name: (row[index].strip() if index < len(row) else "") for name, index in self.columns.items()}
        if cells["proxy_id"].lower() == ALL_PROXIES:  # a spreadsheet's "ALL", like its "Global": case is not meant
            cells["proxy_id"] = ALL_PROXIES
        before = len(self.issues)
        for name in REQUIRED_COLUMNS:
            if not cells[name]:
                self.issue(line, name, f"empty {name}")
        mode = cells["mode"].lower()
        if cells["mode"] and mode not in MODES:
            self.issue(line, "mode", f"invalid mode {show(cells['mode'])}; allowed: {', '.join(MODES)}")
        for name, regex in _CHECKS.items():
            value = cells.get(name, "")
            if value and not (regex.fullmatch(value) or (name == "proxy_id" and value == ALL_PROXIES)):
                self.issue(line, name, f"invalid {name} {show(value)}; allowed: {ID_ALLOWED[name]}")
        project = cells.get("project_id") or None
        if project is None and self.default_project is None and not self.issues[before:]:
            self.issue(line, "project_id", "empty project_id and no default project: give --project-id")
        if len(self.issues) > before:
            return None
        return CsvTarget(project, cells["instance_id"], cells["proxy_id"], mode, line)

    def is_new(self, target: CsvTarget, seen: dict[tuple[str | None, str, str], int]) -> bool:
        project = target.project_id or self.default_project
        key = (project, target.instance_id, target.proxy_id)
        if key in seen:
            message = f"duplicate target: same project, instance and proxy as line {seen[key]}; keep one"
            self.issue(target.line, "proxy_id", message)
            return False
        if target.proxy_id == ALL_PROXIES:
            other = next((n for k, n in seen.items() if k[:2] == key[:2]), None)
        else:
            other = seen.get((project, target.instance_id, ALL_PROXIES))
        if other is not None:
            message = (
                f"ambiguous: 'all' and a named proxy of instance {target.instance_id} (line {other} and this "
                "one); keep one"
            )
            self.issue(target.line, "proxy_id", message)
            return False
        seen[key] = target.line
        return True
