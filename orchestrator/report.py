"""The JSON-lines report: one object per line, appended and flushed as each target settles.

The schema (pure: `TargetOutcome`, `Outcome`, `Tally`) is separate from the writer (`Report`, the only file
writer of a run). Lines are rendered by structlog; its `WriteLogger` writes each line with one `write` and a
flush under a lock, so a crash loses at most the line being written and lines never interleave.

Every line carries `ts` (UTC, ISO 8601), `event` and `run_id`. Events:
  run_started   plan, plan_digest, command, targets, limits, endpoint
  target        project_id, instance_id, proxy_id, mode_before, mode_target, outcome, job_id, attempts,
                wire_attempts, http_status, error_code, error_msg, elapsed_ms, note
  job           project_id, instance_id, proxy_id, job_id, job_status, fail_reason   (a job we polled)
  run_finished  counts (per outcome), exit_code, duration_s, requests
"""

from __future__ import annotations

import enum
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from .plan import Mode
from .redact import Scrubber, scrub_tree


class Outcome(enum.StrEnum):
    SUBMITTED = "submitted"  # the PUT was accepted; job_id names the job
    UNCHANGED = "unchanged"  # already at the goal: nothing sent
    WOULD_CHANGE = "would_change"  # preview only
    FAILED = "failed"  # a definite failure: nothing was changed by us
    UNKNOWN = "unknown"  # a PUT may or may not have been applied (answer lost); never re-sent blindly
    NOT_STARTED = "not_started"  # the run stopped before this target
    DRIFTED = "drifted"  # its mode is no longer what the approved preview observed: skipped, nothing sent
    COMPLETED = "completed"  # --wait: the job completed (see `verified`)
    JOB_FAILED = "job_failed"  # --wait: the job ended Failed, Canceled, ... (error_msg: fail_reason)
    JOB_TIMEOUT = "job_timeout"  # --wait: the job was still in progress at jobs.timeout


# Outcomes that make a finished run exit 3: something the operator must look at.
FAILING_OUTCOMES = frozenset(
    {Outcome.FAILED, Outcome.UNKNOWN, Outcome.DRIFTED, Outcome.JOB_FAILED, Outcome.JOB_TIMEOUT}
)


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    project_id: str
    instance_id: str
    proxy_id: str
    mode_before: Mode | None
    mode_target: Mode
    outcome: Outcome
    job_id: str | None = None
    attempts: int = 0
    wire_attempts: int = 0
    http_status: int | None = None
    error_code: str | None = None
    error_msg: str | None = None
    elapsed_ms: int = 0
    note: str | None = None
    verified: bool | None = None  # --wait: the proxy read back at its goal after the job

    def record(self) -> dict[str, Any]:
        # Every field is a str, int, bool, None or StrEnum: no deep copy needed (asdict's was 30% of a line).
        line = {name: getattr(self, name) for name in _OUTCOME_FIELDS}
        line["outcome"] = self.outcome.value
        return line


_OUTCOME_FIELDS: Final = tuple(f.name for f in fields(TargetOutcome))


@dataclass(slots=True)
class Tally:
    """Counts per outcome as a run goes: a target's latest line wins (with --wait a changed target has a
    `submitted` line, then its final one)."""

    latest: dict[tuple[str, str, str], Outcome]

    def __init__(self) -> None:
        self.latest = {}

    def add(self, key: tuple[str, str, str], outcome: Outcome) -> None:
        self.latest[key] = outcome

    @property
    def failing(self) -> int:
        return sum(1 for o in self.latest.values() if o in FAILING_OUTCOMES)

    def as_dict(self) -> dict[str, int]:
        counts = Counter(o.value for o in self.latest.values())
        return {o.value: counts[o.value] for o in Outcome}


_FIRST_KEYS = ("ts", "event", "run_id")
Secrets = Iterable[str] | Callable[[], Iterable[str]]


def _order_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """ts, event and run_id first, the rest as given: lines read well with `head` and jq alike."""
    ordered = {k: event_dict.pop(k) for k in _FIRST_KEYS if k in event_dict}
    ordered.update(event_dict)
    return ordered


class SecretRedactor:
    """A structlog processor that replaces known secret strings anywhere in string values.

    Defence in depth: secrets are never put into events on purpose, but an error message echoed by a server
    or a library might quote one. `secrets` may be a callable, read at every event: an IAM token exists only
    once the first login happened.
    """

    def __init__(self, secrets: Secrets = ()) -> None:
        if callable(secrets):
            self._source: Callable[[], Iterable[str]] = secrets
        else:
            fixed = tuple(secrets)
            self._source = lambda: fixed
        self._current: tuple[str, ...] = ()
        self._scrubber = Scrubber(())

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        current = tuple(self._source())
        if current != self._current:  # an IAM token appeared or was refreshed
            self._current, self._scrubber = current, Scrubber(current)
        if not self._scrubber.secrets:
            return event_dict
        return {k: scrub_tree(v, self._scrubber) for k, v in event_dict.items()}


class Report:
    """Writes one run's lines. `path` None or "-" means stdout; an existing file is appended to."""

    def __init__(self, stream: TextIO, *, run_id: str, secrets: Secrets = (), owns_stream: bool = False):
        self.run_id = run_id
        self._stream = stream
        self._owns_stream = owns_stream
        self.tally = Tally()
        self._log = structlog.wrap_logger(
            structlog.WriteLogger(stream),
            processors=[
                SecretRedactor(secrets),
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
                _order_keys,
                structlog.processors.JSONRenderer(sort_keys=False, ensure_ascii=False),
            ],
            # Explicit, so that the human logs' global level filter (structlog.configure) never drops a line.
            wrapper_class=structlog.make_filtering_bound_logger(0),
            context_class=dict,
            cache_logger_on_first_use=True,
        ).bind(run_id=run_id)

    @classmethod
    def open(cls, path: str | None, *, run_id: str, secrets: Secrets = ()) -> Report:
        if path in (None, "-"):
            return cls(sys.stdout, run_id=run_id, secrets=secrets)
        assert path is not None
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by Report.close
        return cls(stream, run_id=run_id, secrets=secrets, owns_stream=True)

    @property
    def path(self) -> str:
        return getattr(self._stream, "name", "-") if self._owns_stream else "-"

    def run_started(self, **fields: Any) -> None:
        self._log.info("run_started", **fields)

    def target(self, outcome: TargetOutcome) -> None:
        self.tally.add((outcome.project_id, outcome.instance_id, outcome.proxy_id), outcome.outcome)
        self._log.info("target", **outcome.record())

    def job(self, **fields: Any) -> None:
        self._log.info("job", **fields)

    def run_finished(self, *, exit_code: int, duration_s: float, **fields: Any) -> None:
        self._log.info(
            "run_finished", counts=self.tally.as_dict(), exit_code=exit_code, duration_s=round(duration_s, 3), **fields
        )

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
