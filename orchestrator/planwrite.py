"""Plans written for the operator: retry, rollback, a starter plan, a plan from a CSV. Pure: text in, text out.

Every plan written here is an ordinary version-1 plan that goes through `validate`, `preview` and the gate like
a hand-written one, and every function checks its own output with `parse_plan` before returning it. Strings
are written double-quoted (JSON-escaped), so no YAML reader can take an ID for a number, a date or a boolean;
text from a report (an error message) only ever appears in comments, one line, control characters escaped.

* `retry_plan`: the targets that did not succeed, with the original plan's settings.
* `rollback_plan`: every proxy a run changed (or may have changed: `unknown`) back to its mode before.
* `init_plan`: a commented starter plan; `plan_from_csv`: a plan from instance/proxy/mode rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .endpoints import KNOWN_REGIONS, check_endpoint
from .errors import UsageError
from .journal import DONE_OUTCOMES, Journal, JournalEntry
from .plan import (
    ALL_PROXIES,
    ID_ALLOWED,
    MODES,
    NAME_RE,
    PROJECT_ID_RE,
    GateSettings,
    JobSettings,
    Limits,
    Percent,
    Plan,
    Rate,
    RetrySettings,
    StopSettings,
    Window,
    parse_plan,
    show,
)
from .plancsv import read_fleet_csv
from .summary import Filters, current_entries

# A change was accepted (or its job seen done); `unknown`: the PUT may have been applied; `job_timeout`: its
# job was still running when the run stopped waiting, so it may yet apply.
CHANGED_OUTCOMES: Final = frozenset({"submitted", "completed", "verified"})
MAYBE_CHANGED_OUTCOMES: Final = frozenset({"unknown", "job_timeout"})
# The API contract's own example IDs: valid, and obviously not anybody's real fleet.
EXAMPLE_PROJECT_ID: Final = "619d3e78f61b4be68bc5aa0b59edcf7b"
EXAMPLE_INSTANCE_ID: Final = "d512257ecca04d96a0f3a9021018a385in07"
EXAMPLE_PROXY_ID: Final = "7bf4a8bbb4f4fb58233a242ee13603bpo01"
_NAME_MAX: Final = 64


class EmptyPlan(ValueError):
    """There is no target to write (nothing to retry, nothing to roll back): a plan needs at least one."""


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """A target to write, with an optional one-line comment above it."""

    project_id: str
    instance_id: str
    proxy_id: str
    mode: str
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything of a plan but its targets."""

    name: str | None = None
    region: str | None = None
    endpoint: str | None = None
    iam_endpoint: str | None = None
    project_id: str | None = None
    limits: Limits = field(default_factory=Limits)
    retry: RetrySettings = field(default_factory=RetrySettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    window: Window | None = None
    stop: StopSettings | None = None
    default_mode: str | None = None  # defaults.mode

    @classmethod
    def of(cls, plan: Plan, *, suffix: str) -> Settings:
        """The settings of `plan`, named after it with `suffix` (`small` -> `small-retry`)."""
        return cls(
            name=plan.name[: _NAME_MAX - len(suffix)] + suffix,
            region=plan.region,
            endpoint=plan.endpoint,
            iam_endpoint=plan.iam_endpoint,
            project_id=plan.project_id,
            limits=plan.limits,
            retry=plan.retry,
            jobs=plan.jobs,
            gate=plan.gate,
            window=plan.window,
            stop=plan.stop,
        )


# --- retry and rollback ---------------------------------------------------------------------------------------
def check_same_plan(journal: Journal, plan: Plan, *, option: str = "--plan") -> None:
    """UsageError unless the reports' (non-dry) runs ran this version of `plan`, or recorded no digest."""
    digests = journal.plan_digests
    if digests and plan.digest not in digests:
        ran = next((run.plan for run in journal.runs if run.plan and not run.dry_run), None) or "another plan"
        raise UsageError(
            f"{option} {plan.path} is not the plan these reports ran ({ran}, another version: the sha256 differs); "
            "pass the plan file the run used"
        )


def retry_plan(journal: Journal, plan: Plan, *, sources: Sequence[str] = (), only: Filters | None = None) -> str:
    """A plan of the targets of `plan` that did not succeed according to `journal`, with `plan`'s settings.

    Not succeeded: any latest outcome but submitted/unchanged/completed/verified (failed, unknown,
    not_started, drifted, ...), and targets of the plan no report mentions (a run killed before them: they
    count as not_started for `only`). Each target's goal is the plan's. `only` keeps the targets it allows.
    Raise EmptyPlan if no target is left.
    """
    targets, notes = _retry_targets(journal, plan, only or Filters())
    if not targets:
        which = f" that match {only.describe()}" if only is not None and only.active else ""
        raise EmptyPlan(f"nothing to retry: no target of {plan.path}{which} is left to do in these reports")
    header = [
        f"Retry plan: the targets of {plan.path} that did not succeed ({len(targets)}), with its settings.",
        *_from(sources or journal.files),
        *(f"{gone}; the targets only they settled count as never reached" for gone in journal.left_out),
        *notes,
    ]
    return render_plan(Settings.of(plan, suffix="-retry"), targets, header=header)


def rollback_plan(journal: Journal, plan: Plan, *, sources: Sequence[str] = ()) -> str:
    """The inverse plan: every proxy the reports show changed back to its mode before, with `plan`'s settings.

    Changed: an outcome submitted, completed or verified at any time; `unknown` and `job_timeout` too (the
    change may have been applied; if it was not, the preview shows the proxy unchanged and nothing is sent).
    The mode to go back to is the one recorded before the first change. A proxy whose mode before is unknown
    (null) is left out and named in a comment, and so is each resumed report left out (`journal.left_out`):
    what its runs changed is not in the plan. Raise EmptyPlan if no proxy was changed.
    """
    targets: list[PlanTarget] = []
    notes: list[str] = []
    for key in sorted(journal.latest):
        target, note = _rollback_target(journal.latest[key])
        targets += [target] if target else []
        notes += [note] if note else []
    if not targets:
        raise EmptyPlan("nothing to roll back: no proxy was changed in these reports" + _left_out(notes))
    header = [
        f"Rollback plan: {len(targets)} proxies changed by the runs of {plan.path}, back to their mode before.",
        *_from(sources or journal.files),
        *(f"{gone}; the proxies they changed are NOT in this plan" for gone in journal.left_out),
        *notes,
    ]
    return render_plan(Settings.of(plan, suffix="-rollback"), targets, header=header)


def _retry_targets(journal: Journal, plan: Plan, only: Filters) -> tuple[list[PlanTarget], list[str]]:
    goals = {t.key: t.mode for t in plan.targets}
    targets: list[PlanTarget] = []
    notes: list[str] = []
    for entry in current_entries(journal):
        if entry.outcome in DONE_OUTCOMES or not only.allows(entry.key[1], entry.outcome):
            continue
        goal = goals.get(entry.key) or goals.get((*entry.key[:2], ALL_PROXIES))
        if goal is None:
            notes.append(f"left out {_slash(entry.key)}: {entry.outcome}, but not a target of {plan.path}")
            continue
        targets.append(PlanTarget(*entry.key, mode=goal, comment=_why(entry)))
    instances = {key[:2] for key in journal.latest}
    for target in plan.targets:
        reached = target.key[:2] in instances if target.proxy_id == ALL_PROXIES else target.key in journal.latest
        if not reached and only.allows(target.instance_id, "not_started"):
            targets.append(PlanTarget(*target.key, mode=target.mode, comment="never reached: no report line"))
    return targets, notes


def _why(entry: JournalEntry) -> str:
    record = entry.record
    detail = ": ".join(str(record[k]) for k in ("error_code", "error_msg") if record.get(k)) or record.get("note")
    return f"{entry.outcome}{': ' + str(detail) if detail else ''} ({entry.file}:{entry.line})"


def _rollback_target(entry: JournalEntry) -> tuple[PlanTarget | None, str | None]:
    if entry.key[2] == ALL_PROXIES:
        return None, None  # a whole instance's line: its listing failed, nothing was changed
    outcomes = CHANGED_OUTCOMES | MAYBE_CHANGED_OUTCOMES
    changes = [line for line in entry.history if line.get("outcome") in outcomes]
    if not changes:
        return None, None
    first = changes[0]
    before, goal = first.get("mode_before"), first.get("mode_target")
    if before is None:
        return None, f"left out {_slash(entry.key)}: {first.get('outcome')} but its mode before is unknown (null)"
    if before not in MODES:
        return None, f"left out {_slash(entry.key)}: its mode before {before!r} is not a mode"
    if before == goal:
        return None, None
    sure = any(line.get("outcome") in CHANGED_OUTCOMES for line in changes)
    what = "changed" if sure else "outcome unknown, may have been changed"
    where = f"{entry.file}:{entry.line}"
    return PlanTarget(*entry.key, mode=str(before), comment=f"{what} {before} -> {goal} ({where})"), None


def _from(sources: Sequence[str]) -> list[str]:
    return ["From the reports: " + ", ".join(sources)] if sources else []


def _left_out(notes: Sequence[str]) -> str:
    return f" ({len(notes)} left out: {notes[0]}{', ...' if len(notes) > 1 else ''})" if notes else ""


def _slash(key: tuple[str, str, str]) -> str:
    return f"{key[1]}/{key[2]}"


# --- rendering ------------------------------------------------------------------------------------------------
KEY_HELP: Final[Mapping[str, str]] = {
    "version": "required; this orchestrator reads version 1",
    "name": "report and lock file names; default: the file's name",
    "region": "the service endpoint is the region's (or set endpoint)",
    "endpoint": "wins over region; http:// only for loopback",
    "iam_endpoint": "password login's IAM; default: $HUAWEICLOUD_SDK_IAM_ENDPOINT, else the region's",
    "project_id": "default project of every target: 32 letters or digits",
    "limits.rate": "API calls started at most, in any window: N/s, N/min, N/h",
    "limits.concurrency": "HTTP calls in flight (1..1000)",
    "limits.per_instance": "changes in flight per instance (1..100): one job at a time",
    "limits.adaptive": "slow down on HTTP 429, speed up again, never above rate",
    "retry.attempts": "per call, the first included (1..20): 5xx, 429, busy, network",
    "retry.base_delay": "first backoff; doubles up to max_delay (full jitter)",
    "retry.max_delay": "longest backoff",
    "retry.timeout": "per attempt",
    "jobs.poll_interval": "between polls of a change's job (the next change waits for it)",
    "jobs.timeout": "stop waiting for one job after this long",
    "jobs.visibility_grace": "a brand-new job may be 'not found' this long",
    "jobs.wait": "wait for every job to end and read the proxy back",
    "gate.max_age": "how long a preview approves an apply",
    "defaults.mode": "goal of targets without a mode: session | global | eventual",
    "window.not_before": "RFC 3339; the offset is required",
    "window.not_after": "nothing runs after this",
    "window.cutoff": "no target starts this long before not_after",
    "stop.max_failures": "failed or unknown changes, or a share of the targets ('5%')",
    "stop.min_sample": "with a percent: also judge the rate once this many settled",
    "targets": 'one entry per proxy (or per instance, with proxy_id "all")',
    "targets.instance_id": "32 letters or digits, then 'in' and two digits",
    "targets.proxy_id": 'or "all": every proxy of the instance',
    "targets.mode": "session | global | eventual",
}


def render_plan(
    settings: Settings,
    targets: Sequence[PlanTarget],
    *,
    header: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> str:
    """A version-1 plan, each key explained in a comment; `optional`: lines (commented-out keys) to put before
    the targets. The text is checked with `parse_plan` before it is returned."""
    if not targets:
        raise EmptyPlan("a plan needs at least one target")
    out = [f"# {_comment(line)}".rstrip() for line in header]
    out += ["", *_entries("", _top(settings))]
    for section, values in _sections(settings).items():
        out += ["", f"{section}:", *_entries(section, values, indent="  ")]
    if optional:
        out += ["", *optional]
    out += ["", f"targets:{_help('targets', 'targets:')}"]
    for target in targets:
        if target.comment:
            out.append(f"  # {_comment(target.comment)}")
        first = f"  - instance_id: {quote(target.instance_id)}"
        out.append(first + _help("targets.instance_id", first))
        out += _entries("targets", {"proxy_id": target.proxy_id, "mode": target.mode}, indent="    ")
        if target.project_id != settings.project_id:
            out.append(f"    project_id: {quote(target.project_id)}")
    text = "\n".join(out) + "\n"
    parse_plan(text, path=f"<{settings.name or 'written'} plan>")  # a plan we write is always valid input
    return text


def _top(settings: Settings) -> dict[str, Any]:
    top: dict[str, Any] = {"version": 1, "name": settings.name}
    top |= {"region": settings.region, "endpoint": settings.endpoint, "iam_endpoint": settings.iam_endpoint}
    top["project_id"] = settings.project_id
    return {k: v for k, v in top.items() if v is not None}


def _sections(settings: Settings) -> dict[str, dict[str, Any]]:
    sections = {name: _settings_of(getattr(settings, name)) for name in ("limits", "retry", "jobs", "gate")}
    if settings.default_mode is not None:
        sections["defaults"] = {"mode": settings.default_mode}
    window, stop = settings.window, settings.stop
    if window is not None:
        sections["window"] = {
            "not_before": window.not_before.isoformat(),
            "not_after": window.not_after.isoformat(),
            "cutoff": duration_text(window.cutoff),
        }
    if stop is not None:
        limit = stop.max_failures
        sections["stop"] = {"max_failures": str(limit) if isinstance(limit, Percent) else limit}
        if stop.min_sample:
            sections["stop"]["min_sample"] = stop.min_sample
    return sections


def _settings_of(values: object) -> dict[str, Any]:
    """A settings section as the plan writes it: every field, so that a new setting is never dropped."""
    out: dict[str, Any] = {}
    for setting in dataclasses.fields(values):  # type: ignore[arg-type]
        value = getattr(values, setting.name)
        if isinstance(value, Rate):
            out[setting.name] = _rate(value)
        elif isinstance(value, float):  # every float setting is a duration in seconds
            out[setting.name] = duration_text(value)
        elif isinstance(value, bool | int | str):
            out[setting.name] = value
        else:
            raise TypeError(f"no plan spelling for {setting.name}={value!r}")
    return out


def _entries(section: str, values: Mapping[str, Any], *, indent: str = "") -> list[str]:
    lines = []
    for key, value in values.items():
        text = f"{indent}{key}: {quote(value) if isinstance(value, str) else json.dumps(value)}"
        lines.append(text + _help(f"{section}.{key}" if section else key, text))
    return lines


def _help(key: str, text: str) -> str:
    note = KEY_HELP.get(key)
    return f"{' ' * max(1, 52 - len(text))}# {note}" if note else ""


def quote(text: str) -> str:
    """A double-quoted YAML scalar that every YAML 1.1 or 1.2 reader reads as exactly `text`."""
    return json.dumps(text, ensure_ascii=True)


def _comment(text: str, limit: int = 300) -> str:
    """One comment line: no line break can end the comment early, control characters shown escaped."""
    flat = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _rate(rate: Rate) -> str:
    if rate.period in (1.0, 60.0, 3600.0):
        return str(rate)
    return repr(rate.count / rate.period)  # parse_rate turns a number back into the same fraction


def duration_text(seconds: float) -> str:
    """A duration as the plan writes it: 24h, 30m, 5s, 500ms, or plain seconds."""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    if seconds == 0:
        return "0s"
    if round(seconds * 1000, 6).is_integer():
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:.6f}".rstrip("0")


# --- getting started --------------------------------------------------------------------------------------------
def plan_from_csv(
    text: str,
    *,
    project_id: str,
    region: str | None = None,
    endpoint: str | None = None,
    file: str = "-",
    name: str | None = None,
) -> str:
    """A plan of the rows of a fleet CSV (see orchestrator.plancsv) with default settings.

    `project_id` is the default project (a `project_id` column overrides it per row); `region` or `endpoint`
    says where the service is. UsageError for a bad argument, PlanError (file:line:column: column: message,
    one line per problem) for bad rows.
    """
    _check_arguments(project_id=project_id, region=region, endpoint=endpoint, name=name)
    rows = read_fleet_csv(text, file=file, default_project=project_id)
    targets = [PlanTarget(r.project_id or project_id, r.instance_id, r.proxy_id, r.mode) for r in rows]
    settings = Settings(name=name, region=region, endpoint=endpoint, project_id=project_id)
    header = [
        f"Plan of {len(targets)} row{'s' if len(targets) != 1 else ''} of {file}, written by `orchestrator plan "
        "from-csv`, with default settings.",
        "Check it, then: orchestrator validate PLAN && orchestrator preview PLAN",
    ]
    return render_plan(settings, targets, header=header)


def _check_arguments(*, project_id: str, region: str | None, endpoint: str | None, name: str | None) -> None:
    if not PROJECT_ID_RE.fullmatch(project_id):
        raise UsageError(f"--project-id: invalid project_id {show(project_id)}; allowed: {ID_ALLOWED['project_id']}")
    if region is None and endpoint is None:
        raise UsageError("--region or --endpoint is required: where the service is")
    if region is not None and region not in KNOWN_REGIONS and endpoint is None:
        raise UsageError(f"--region: unknown region {show(region)}; known: {', '.join(sorted(KNOWN_REGIONS))}")
    if endpoint is not None:
        try:
            check_endpoint(endpoint)
        except ValueError as exc:
            raise UsageError(f"--endpoint: invalid endpoint {show(endpoint)}: {exc}") from None
    if name is not None and not NAME_RE.fullmatch(name):
        raise UsageError(f"--name: invalid name {show(name)}; allowed: 1 to 64 letters, digits, '.', '_' or '-'")


def init_plan() -> str:
    """A commented starter plan: valid as it is (the IDs are the API documentation's examples)."""
    settings = Settings(name="my-plan", region="cn-north-4", project_id=EXAMPLE_PROJECT_ID, default_mode="session")
    target = PlanTarget(EXAMPLE_PROJECT_ID, EXAMPLE_INSTANCE_ID, EXAMPLE_PROXY_ID, "global")
    text = render_plan(settings, [target], header=INIT_HEADER, optional=INIT_OPTIONAL)
    return text + f'    # project_id: "{EXAMPLE_PROJECT_ID}"  # optional: another project than the top-level one\n'


INIT_HEADER: Final = (
    "An orchestrator plan (version 1): which GaussDB(for MySQL) / TaurusDB proxies get which session consistency.",
    "",
    "1. Replace the example IDs below (the API documentation's examples) with yours, or build the targets from",
    "   a spreadsheet: orchestrator plan from-csv fleet.csv --region R --project-id P --out plan.yaml",
    "2. orchestrator validate plan.yaml                         checks every key; sends nothing",
    "3. orchestrator preview plan.yaml                          reads the fleet, changes nothing; writes",
    "                                                           plan.preview.json, the approval of step 4",
    "4. orchestrator apply plan.yaml --approved plan.preview.json",
    "5. orchestrator report reports/<name>-<time>.jsonl         what happened; then --retry-plan or rollback",
    "",
    "Only version, region (or endpoint) and targets are required: the other keys below show their defaults.",
    "Durations: 500ms, 30s, 1m30s, 2h, or a number of seconds. Quote text: unquoted on/off/yes/no are booleans.",
)
INIT_OPTIONAL: Final = (
    '# endpoint: "https://gaussdb.cn-north-4.myhuaweicloud.com"   # instead of region; http:// only for loopback',
    '# iam_endpoint: "https://iam.cn-north-4.myhuaweicloud.com"   # password login only; default: the region\'s',
    "",
    "# window:                            # optional: when apply may start targets (for cron)",
    '#   not_before: "2026-12-07T01:00:00+08:00"    # RFC 3339; the offset is required',
    '#   not_after: "2026-12-07T03:00:00+08:00"     # nothing runs after this',
    '#   cutoff: "10m"                    # no target starts in the last 10 minutes',
    "",
    "# stop:                              # optional failure budget: no target starts once failures reach",
    '#   max_failures: "2%"               # this share of the targets (failed or unknown), or a count such as 5',
    "#   min_sample: 50                   # with a percent only: also stop above it once 50 targets settled",
)
