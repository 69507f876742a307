"""Report files for the summary, plan-writer, metrics, HTML and report-command tests, in the documented schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fakes import PROJECT, instance_id, proxy_id

from orchestrator.plan import Plan, parse_plan

I1, I2, I3 = instance_id(1), instance_id(2), instance_id(3)
P1, P2, P3, P4, P5, P6 = (proxy_id(n) for n in range(1, 7))
START = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)

PLAN_TEXT = f"""\
version: 1
name: wave1
region: cn-north-4
project_id: {PROJECT}
limits: {{rate: 5/s, concurrency: 7, per_instance: 2}}
retry: {{attempts: 3, base_delay: 250ms, max_delay: 10s, timeout: 20s}}
jobs: {{poll_interval: 2s, timeout: 15m, visibility_grace: 0s}}
defaults: {{mode: global}}
gate: {{max_age: 12h}}
window: {{not_before: "2026-12-07T01:00:00+08:00", not_after: "2026-12-07T03:00:00+08:00", cutoff: 10m}}
stop: {{max_failures: "5%", min_sample: 20}}
targets:
  - {{instance_id: {I1}, proxy_id: {P1}}}
  - {{instance_id: {I1}, proxy_id: {P2}}}
  - {{instance_id: {I1}, proxy_id: {P3}}}
  - {{instance_id: {I2}, proxy_id: {P4}, mode: session}}
  - {{instance_id: {I2}, proxy_id: {P5}}}
  - {{instance_id: {I3}, proxy_id: all, mode: eventual}}
"""


def wave_plan(path: str = "plans/wave1.yaml") -> Plan:
    return parse_plan(PLAN_TEXT, path=path)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class ReportBuilder:
    """One run's report lines, with times chosen by the test (seconds after `start`)."""

    def __init__(
        self,
        run_id: str,
        *,
        start: datetime = START,
        digest: str | None = None,
        dry_run: bool = False,
        command: str = "apply",
        rate: str = "5/s",
        resumes: list[str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.start = start
        self.lines: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        started: dict[str, Any] = {
            "plan": "plans/wave1.yaml", "plan_digest": digest or wave_plan().digest, "command": command,
            "dry_run": dry_run, "targets": 6, "endpoint": "https://gaussdb.cn-north-4.myhuaweicloud.com",
            "credentials": "token", "limits": {"rate": rate, "concurrency": 7, "per_instance": 2},
        }  # fmt: skip
        if resumes is not None:
            started["resumes"] = resumes
        self.line("run_started", 0.0, **started)

    def line(self, event: str, at: float, **fields: Any) -> ReportBuilder:
        ts = iso(self.start + timedelta(seconds=at))
        self.lines.append({"ts": ts, "event": event, "run_id": self.run_id, **fields})
        return self

    def target(
        self,
        proxy: str,
        outcome: str,
        *,
        at: float = 1.0,
        instance: str = I1,
        project: str = PROJECT,
        before: str | None = "session",
        goal: str = "global",
        job_id: str | None = None,
        http_status: int | None = None,
        error_code: str | None = None,
        error_msg: str | None = None,
        note: str | None = None,
    ) -> ReportBuilder:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if job_id is None and outcome == "submitted":
            job_id = f"job-{proxy[-8:]}"
        return self.line(
            "target", at, project_id=project, instance_id=instance, proxy_id=proxy, mode_before=before,
            mode_target=goal, outcome=outcome, job_id=job_id, attempts=1, wire_attempts=1, http_status=http_status,
            error_code=error_code, error_msg=error_msg, elapsed_ms=120, note=note,
        )  # fmt: skip

    def finished(
        self,
        *,
        at: float,
        exit_code: int = 0,
        calls: int = 10,
        wire: int | None = None,  # default: calls + 1 (one retry went on the wire)
        retries: int = 2,
        throttled: int = 1,
        job_polls: int = 3,
        stop_reason: str | None = None,
    ) -> ReportBuilder:
        wire = calls + 1 if wire is None else wire
        requests = {"calls": calls, "wire": wire, "retries": retries, "throttled": throttled, "job_polls": job_polls}
        return self.line(
            "run_finished", at, counts=dict(self.counts), exit_code=exit_code, duration_s=at,
            stop_reason=stop_reason, skipped=0, resume=None, requests=requests,
        )  # fmt: skip

    def text(self) -> str:
        return "".join(json.dumps(line) + "\n" for line in self.lines)

    def data(self) -> bytes:
        return self.text().encode()


def first_run() -> ReportBuilder:
    """A run stopped by its window: two submitted, one unchanged, a failure, an unknown, the rest not started."""
    return (
        ReportBuilder("run-one-0000")
        .target(P1, "submitted", at=2.0)
        .target(P2, "unchanged", at=2.5, before="global")
        .target(P3, "failed", at=4.0, http_status=409, error_code="DBS.200019", error_msg="instance busy")
        .target(
            P4,
            "unknown",
            at=6.0,
            instance=I2,
            goal="session",
            before="eventual",
            error_code="outcome_unknown",
            error_msg="the answer was lost",
        )
        .target(P5, "not_started", at=9.0, instance=I2, before=None, note="the change window's cutoff was reached")
        .target("all", "not_started", at=9.0, instance=I3, before=None, goal="eventual", note="cutoff")
        .finished(at=10.0, exit_code=5, calls=20, stop_reason="the change window's cutoff was reached")
    )


def second_run(resumes: list[str] | None = None) -> ReportBuilder:
    """The resumed run: the failure and the unknown settle, the instance listed as a whole fails per proxy."""
    return (
        ReportBuilder("run-two-0000", start=START + timedelta(hours=1), resumes=resumes)
        .target(P3, "submitted", at=1.0)
        .target(P4, "unchanged", at=2.0, instance=I2, before="session", goal="session")
        .target(P5, "failed", at=3.0, instance=I2, http_status=500, error_code="DBS.200001", error_msg="internal")
        .target(
            P6,
            "failed",
            at=3.5,
            instance=I3,
            goal="eventual",
            http_status=500,
            error_code="DBS.200001",
            error_msg="internal",
        )
        .finished(at=5.0, exit_code=3, calls=10)
    )
