"""Prometheus textfile-collector metrics of a finished run, for node_exporter. Loaded only when asked for.

`render_metrics` (pure) turns a run's `run_finished` record into the text exposition format; `write_metrics`
writes it atomically: a temporary file in the same directory (node_exporter reads only `*.prom`, so it never
sees a half-written file), flushed and fsynced, made readable (mkstemp creates it 0600; node_exporter usually
runs as another user), then renamed over the target.

The last success time survives failed runs: it is read back from the file being replaced. Each plan should
write its own file (label `plan`), e.g. /var/lib/node_exporter/textfile/orchestrator-wave1.prom.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import UsageError
from .files import write_atomically
from .summary import report_time

PREFIX: Final = "orchestrator_"
_REQUESTS: Final = (  # run_finished.requests key -> metric suffix, help
    ("calls", "last_run_requests", "API calls of the last run (retries and job polls included)."),
    ("wire", "last_run_wire_requests", "HTTP requests the last run sent on the wire."),
    ("retries", "last_run_retries", "Retried calls of the last run."),
    ("throttled", "last_run_throttled", "Answers HTTP 429 (throttled) the last run received."),
    ("job_polls", "last_run_job_polls", "Job status polls of the last run."),
)
_SUCCESS: Final = PREFIX + "last_success_timestamp_seconds"


def check_metrics_path(path: str) -> str:
    """UsageError unless `path` can become a textfile-collector file: `*.prom` in an existing directory."""
    if not path.endswith(".prom"):
        raise UsageError(
            f"--metrics-file: {path} must end in .prom: node_exporter's textfile collector reads only those"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"--metrics-file: the directory {directory} does not exist")
    return path


def render_metrics(
    finished: Mapping[str, Any],
    counts: Mapping[str, int] | None = None,
    *,
    plan: str,
    end_ts: float,
    last_success_ts: float | None = None,
) -> str:
    """The exposition text of one finished run. `counts` defaults to the record's own `counts`.

    `end_ts` is when the run ended (Unix seconds); the run is a success if its exit code is 0, and then
    `end_ts` is the last success, else `last_success_ts` (from the previous file) is kept, if any.
    """
    raw_counts = counts if counts is not None else _mapping(finished.get("counts"))
    outcomes = sorted((str(o), n) for o, n in raw_counts.items() if _number(n) is not None)
    exit_code = _number(finished.get("exit_code"))
    labels = {"plan": plan}
    if exit_code == 0:
        last_success_ts = end_ts
    out: list[str] = []
    out += _metric("last_run_targets", "Targets of the last run, by outcome.",
                   [({**labels, "outcome": o}, n) for o, n in outcomes])  # fmt: skip
    out += _metric("last_run_duration_seconds", "Duration of the last run.",
                   [(labels, _number(finished.get("duration_s")) or 0.0)])  # fmt: skip
    if exit_code is not None:
        out += _metric("last_run_exit_code", "Exit code of the last run (0: all done).", [(labels, exit_code)])
    out += _metric("last_run_timestamp_seconds", "When the last run ended (Unix time).", [(labels, end_ts)])
    if last_success_ts is not None:
        out += _metric("last_success_timestamp_seconds", "When the last run that exited 0 ended (Unix time).",
                       [(labels, last_success_ts)])  # fmt: skip
    requests = _mapping(finished.get("requests"))
    for key, name, help_text in _REQUESTS:
        value = _number(requests.get(key))
        if value is not None:
            out += _metric(name, help_text, [(labels, value)])
    return "\n".join(out) + "\n"


def write_metrics(
    path: str,
    run_finished_record: Mapping[str, Any],
    counts: Mapping[str, int] | None = None,
    *,
    plan: str,
    end_ts: float | None = None,
) -> None:
    """Write the metrics of a finished run to `path`, atomically, keeping the last success time it held.

    `end_ts` defaults to the record's `ts`, else now. Raise OSError if the file cannot be written (the caller
    decides whether a run fails for it).
    """
    if end_ts is None:
        end_ts = _timestamp(run_finished_record.get("ts"))
    if end_ts is None:
        end_ts = time.time()
    previous = None
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as old:
        previous = last_success(old.read(), plan=plan)
    text = render_metrics(run_finished_record, counts, plan=plan, end_ts=end_ts, last_success_ts=previous)
    write_atomically(path, text)


def last_success(text: str, *, plan: str) -> float | None:
    """The last success time of `plan` in an earlier metrics file, if it has one."""
    wanted = f"{_SUCCESS}{_labels({'plan': plan})} "
    for line in text.splitlines():
        if line.startswith(wanted):
            with contextlib.suppress(ValueError):
                value = float(line[len(wanted) :].split()[0])
                return value if math.isfinite(value) else None
    return None


# --- the exposition format -------------------------------------------------------------------------------------
_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _metric(name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    full = PREFIX + name
    assert _NAME_RE.fullmatch(full), full
    lines = [f"# HELP {full} {help_text}", f"# TYPE {full} gauge"]
    lines += [f"{full}{_labels(labels)} {_value(value)}" for labels, value in samples]
    return lines


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _number(value: object) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _timestamp(value: object) -> float | None:
    moment = report_time(value)
    return None if moment is None else moment.timestamp()
