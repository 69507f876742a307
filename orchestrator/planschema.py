"""The schema of a plan: pydantic models for its fields, what each field accepts, and the Plan they build. Pure.

The models are strict and forbid unknown keys; their validators raise our own short messages. The tables below
them (allowed keys per section, what each field accepts, where a misplaced key belongs) are what the checker
(`plancheck.py`) writes its "expected ..., got ..." and "did you mean ...?" messages from.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePath
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator

from orchestrator.endpoints import REGION_RE, check_endpoint, without_userinfo
from orchestrator.plan import (
    ALL_PROXIES,
    DURATION_ALLOWED,
    ID_ALLOWED,
    INSTANCE_ID_RE,
    MAX_FAILURES_ALLOWED,
    MODES,
    NAME_RE,
    PROJECT_ID_RE,
    PROXY_ID_RE,
    RATE_ALLOWED,
    TIME_ALLOWED,
    GateSettings,
    JobSettings,
    Limits,
    Mode,
    Percent,
    Plan,
    Rate,
    RetrySettings,
    StopSettings,
    Target,
    Window,
    parse_duration,
    parse_max_failures,
    parse_rate,
    parse_time,
    show,
)
from orchestrator.planyaml import YamlDoc


# --- the models: pydantic checks types, ranges and formats; the messages are ours -------------------------
def _check_id(kind: str, regex: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if (kind == "proxy_id" and value == ALL_PROXIES) or regex.fullmatch(value):
            return value
        raise ValueError(f"invalid {kind} {show(value)}; allowed: {ID_ALLOWED[kind]}")

    return AfterValidator(check)


def _check_version(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported plan version {value}; this orchestrator reads version 1")
    return value


def _check_name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"invalid name {show(value)}; allowed: {SPECS['name']}")
    return value


def _check_region(value: str) -> str:
    if not REGION_RE.fullmatch(value):
        raise ValueError(f"invalid region {show(value)}; allowed: {SPECS['region']}")
    return value


def _check_endpoint(value: str) -> str:
    try:
        return check_endpoint(value)
    except ValueError as exc:
        raise ValueError(f"invalid endpoint {show(without_userinfo(value))}: {exc}") from None


# No setting of a run needs more than a year; beyond that a date computed from it (a preview's expiry, say)
# would overflow, and a typo such as 99999999999h would silently mean "forever".
MAX_DURATION: Final = 366 * 86400.0


def _duration(minimum: float, *, inclusive: bool) -> PlainValidator:
    def check(value: object) -> float:
        seconds = parse_duration(value)
        got = show(value) if isinstance(value, str) else repr(value)
        if seconds < minimum or (seconds == minimum and not inclusive):
            relation = "at least" if inclusive else "above"
            raise ValueError(f"the duration must be {relation} {minimum:g}s, got {got}")
        if seconds > MAX_DURATION:
            raise ValueError(f"the duration must be at most 366 days, got {got}")
        return seconds

    return PlainValidator(check)


_Positive = Annotated[float, _duration(0.0, inclusive=False)]
_NonNegative = Annotated[float, _duration(0.0, inclusive=True)]
_ProjectId = Annotated[str, _check_id("project_id", PROJECT_ID_RE)]
_Time = Annotated[datetime, PlainValidator(parse_time)]
_DEFAULT_LIMITS, DEFAULT_RETRY, _DEFAULT_JOBS = Limits(), RetrySettings(), JobSettings()
_DEFAULT_GATE = GateSettings()


def _absent() -> Any:
    """`Field(default=None)` on a non-optional type: the key may be left out, but an explicit empty value
    (`name:` or `name: null`) is an error, not a silent default."""
    return Field(default=None)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _LimitsModel(_Strict):
    rate: Annotated[Rate, PlainValidator(parse_rate)] = _DEFAULT_LIMITS.rate
    concurrency: Annotated[int, Field(ge=1, le=1000)] = _DEFAULT_LIMITS.concurrency
    per_instance: Annotated[int, Field(ge=1, le=100)] = _DEFAULT_LIMITS.per_instance
    adaptive: bool = _DEFAULT_LIMITS.adaptive


class _RetryModel(_Strict):
    attempts: Annotated[int, Field(ge=1, le=20)] = DEFAULT_RETRY.attempts
    base_delay: _Positive = DEFAULT_RETRY.base_delay
    max_delay: _Positive = DEFAULT_RETRY.max_delay
    timeout: _Positive = DEFAULT_RETRY.timeout


class _JobsModel(_Strict):
    poll_interval: _Positive = _DEFAULT_JOBS.poll_interval
    timeout: _Positive = _DEFAULT_JOBS.timeout
    visibility_grace: _NonNegative = _DEFAULT_JOBS.visibility_grace
    wait: bool = _DEFAULT_JOBS.wait


class _DefaultsModel(_Strict):
    mode: Mode = _absent()


class _GateModel(_Strict):
    max_age: _Positive = _DEFAULT_GATE.max_age


class _WindowModel(_Strict):
    not_before: _Time
    not_after: _Time
    cutoff: _NonNegative = 0.0


class _StopModel(_Strict):
    max_failures: Annotated[int | Percent, PlainValidator(parse_max_failures)]
    min_sample: Annotated[int, Field(ge=0)] = 0


class _TargetModel(_Strict):
    instance_id: Annotated[str, _check_id("instance_id", INSTANCE_ID_RE)]
    proxy_id: Annotated[str, _check_id("proxy_id", PROXY_ID_RE)]
    mode: Mode = _absent()
    project_id: _ProjectId = _absent()


class PlanModel(_Strict):
    version: Annotated[int, AfterValidator(_check_version)]
    name: Annotated[str, AfterValidator(_check_name)] = _absent()
    region: Annotated[str, AfterValidator(_check_region)] = _absent()
    endpoint: Annotated[str, AfterValidator(_check_endpoint)] = _absent()
    iam_endpoint: Annotated[str, AfterValidator(_check_endpoint)] = _absent()
    project_id: _ProjectId = _absent()
    limits: _LimitsModel = _LimitsModel()
    retry: _RetryModel = _RetryModel()
    jobs: _JobsModel = _JobsModel()
    defaults: _DefaultsModel = _DefaultsModel()
    targets: Annotated[list[_TargetModel], Field(min_length=1)]
    gate: _GateModel = _GateModel()
    window: _WindowModel = _absent()
    stop: _StopModel = _absent()


# --- what each field accepts, for the checker's messages --------------------------------------------------
# Keys allowed in each mapping, by field path with list indices written as [].
_SECTIONS: Final[dict[str, type[_Strict]]] = {
    "": PlanModel, "limits": _LimitsModel, "retry": _RetryModel, "jobs": _JobsModel,
    "defaults": _DefaultsModel, "targets[]": _TargetModel, "gate": _GateModel, "window": _WindowModel,
    "stop": _StopModel,
}  # fmt: skip
KEYS: Final = {section: tuple(model.model_fields) for section, model in _SECTIONS.items()}
_POSITIVE: Final = f"a duration above 0: {DURATION_ALLOWED}"
_MODES_TEXT: Final = f"one of {', '.join(MODES)}"
# What each field accepts, for "expected ..., got ..." messages.
SPECS: Final[dict[str, str]] = {
    "": "a mapping with the keys " + ", ".join(KEYS[""]),
    "version": "the integer 1",
    "name": "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    "region": "a region id such as cn-north-4",
    "endpoint": "an https:// URL (http:// only for localhost, 127.0.0.0/8 or ::1)",
    "iam_endpoint": "an https:// URL (http:// only for localhost, 127.0.0.0/8 or ::1)",
    "project_id": ID_ALLOWED["project_id"],
    "limits.rate": f"a rate: {RATE_ALLOWED}",
    "limits.concurrency": "an integer from 1 to 1000",
    "limits.per_instance": "an integer from 1 to 100",
    "limits.adaptive": "true or false",
    "jobs.wait": "true or false",
    "retry.attempts": "an integer from 1 to 20",
    "retry.base_delay": _POSITIVE, "retry.max_delay": _POSITIVE, "retry.timeout": _POSITIVE,
    "jobs.poll_interval": _POSITIVE, "jobs.timeout": _POSITIVE,
    "jobs.visibility_grace": f"a duration of 0 or more: {DURATION_ALLOWED}",
    "defaults.mode": _MODES_TEXT,
    "targets": "a non-empty list of targets",
    "targets[].instance_id": ID_ALLOWED["instance_id"],
    "targets[].proxy_id": ID_ALLOWED["proxy_id"],
    "targets[].mode": _MODES_TEXT,
    "targets[].project_id": ID_ALLOWED["project_id"],
    "gate.max_age": _POSITIVE,
    "window.not_before": TIME_ALLOWED, "window.not_after": TIME_ALLOWED,
    "window.cutoff": f"a duration of 0 or more, shorter than the window: {DURATION_ALLOWED}",
    "stop.max_failures": MAX_FAILURES_ALLOWED,
    "stop.min_sample": "an integer of 0 or more",
    **{s: "a mapping with the keys " + ", ".join(keys) for s, keys in KEYS.items() if s},
}  # fmt: skip
TEXT_FIELDS: Final = frozenset(
    {"name", "region", "endpoint", "iam_endpoint", "project_id", "defaults.mode"}
    | {f"targets[].{key}" for key in ("instance_id", "proxy_id", "mode", "project_id")}
)
# Where each section key belongs, to answer "unknown key 'rate'" with "did you mean 'limits.rate'?".
_NESTED: Final = ("limits", "retry", "jobs", "defaults", "gate", "window", "stop")
HOMES: Final = {
    key: [f"{s}.{key}" for s in _NESTED if key in KEYS[s]] for key in {key for s in _NESTED for key in KEYS[s]}
}
# Times YAML may read as timestamps when unquoted: they are checked from their source text, like quoted ones.
TIME_PATHS: Final = (("window", "not_before"), ("window", "not_after"))


# --- the Plan a valid model builds ------------------------------------------------------------------------
def build_plan(model: PlanModel, *, path: str, digest: str, doc: YamlDoc) -> Plan:
    """The Plan of a model that passed every check: targets get the top-level project_id and defaults.mode."""
    default_mode = model.defaults.mode
    targets = tuple(
        Target(
            project_id=t.project_id or model.project_id,
            instance_id=t.instance_id,
            proxy_id=t.proxy_id,
            mode=t.mode or default_mode,
            line=doc.mark(("targets", i)).line,
        )
        for i, t in enumerate(model.targets)
    )
    limits, retry, jobs, window, stop = model.limits, model.retry, model.jobs, model.window, model.stop
    return Plan(
        path=path,
        name=model.name or PurePath(path).stem,
        digest=digest,
        region=model.region,
        endpoint=model.endpoint,
        project_id=model.project_id,
        limits=Limits(limits.rate, limits.concurrency, limits.per_instance, limits.adaptive),
        retry=RetrySettings(retry.attempts, retry.base_delay, retry.max_delay, retry.timeout),
        jobs=JobSettings(jobs.poll_interval, jobs.timeout, jobs.visibility_grace, jobs.wait),
        targets=targets,
        gate=GateSettings(model.gate.max_age),
        window=Window(window.not_before, window.not_after, window.cutoff) if window else None,
        stop=StopSettings(stop.max_failures, stop.min_sample) if stop else None,
        iam_endpoint=model.iam_endpoint,
    )
