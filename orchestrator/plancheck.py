"""Every rule a plan must follow: a pydantic schema for fields, checks across fields, our messages. Pure.

pydantic (strict, unknown keys forbidden) finds type, range and format errors in one pass; we map each error's
location back to the YAML mark of the offending value (or of the unknown key, or of the mapping that lacks a
required key) and write our own short message: "<what is wrong>; allowed: <what is allowed>" or
"expected <what is allowed>, got <what YAML read>". Then come the checks pydantic cannot do: YAML 1.1
spellings, region vs endpoint, delays, defaults for mode and project_id, duplicate and ambiguous targets.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime
from pathlib import PurePath
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError

from orchestrator.endpoints import KNOWN_REGIONS, REGION_RE, check_endpoint, without_userinfo
from orchestrator.errors import PlanError, PlanIssue
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
from orchestrator.planyaml import BOOL_WORDS, TIMESTAMP_TAG, Path, Scalar, YamlDoc, field_name, odd_number


# --- the schema: pydantic checks types, ranges and formats; the messages are ours (see _Checker) ------
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
        raise ValueError(f"invalid name {show(value)}; allowed: {_SPECS['name']}")
    return value


def _check_region(value: str) -> str:
    if not REGION_RE.fullmatch(value):
        raise ValueError(f"invalid region {show(value)}; allowed: {_SPECS['region']}")
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
_DEFAULT_LIMITS, _DEFAULT_RETRY, _DEFAULT_JOBS = Limits(), RetrySettings(), JobSettings()
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
    attempts: Annotated[int, Field(ge=1, le=20)] = _DEFAULT_RETRY.attempts
    base_delay: _Positive = _DEFAULT_RETRY.base_delay
    max_delay: _Positive = _DEFAULT_RETRY.max_delay
    timeout: _Positive = _DEFAULT_RETRY.timeout


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


class _PlanModel(_Strict):
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


# Keys allowed in each mapping, by field path with list indices written as [].
_SECTIONS: Final[dict[str, type[_Strict]]] = {
    "": _PlanModel, "limits": _LimitsModel, "retry": _RetryModel, "jobs": _JobsModel,
    "defaults": _DefaultsModel, "targets[]": _TargetModel, "gate": _GateModel, "window": _WindowModel,
    "stop": _StopModel,
}  # fmt: skip
_KEYS: Final = {section: tuple(model.model_fields) for section, model in _SECTIONS.items()}
_POSITIVE: Final = f"a duration above 0: {DURATION_ALLOWED}"
_MODES_TEXT: Final = f"one of {', '.join(MODES)}"
# What each field accepts, for "expected ..., got ..." messages.
_SPECS: Final[dict[str, str]] = {
    "": "a mapping with the keys " + ", ".join(_KEYS[""]),
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
    **{s: "a mapping with the keys " + ", ".join(keys) for s, keys in _KEYS.items() if s},
}  # fmt: skip
_TEXT_FIELDS: Final = frozenset(
    {"name", "region", "endpoint", "iam_endpoint", "project_id", "defaults.mode"}
    | {f"targets[].{key}" for key in ("instance_id", "proxy_id", "mode", "project_id")}
)
# Where each section key belongs, to answer "unknown key 'rate'" with "did you mean 'limits.rate'?".
_NESTED: Final = ("limits", "retry", "jobs", "defaults", "gate", "window", "stop")
_HOMES: Final = {
    key: [f"{s}.{key}" for s in _NESTED if key in _KEYS[s]] for key in {key for s in _NESTED for key in _KEYS[s]}
}
# Times YAML may read as timestamps when unquoted: they are checked from their source text, like quoted ones.
_TIME_PATHS: Final = (("window", "not_before"), ("window", "not_after"))


def _spec_key(path: Path) -> str:
    return field_name(tuple("[]" if isinstance(p, int) else p for p in path)).replace(".[]", "[]")


def _describe(value: object, scalar: Scalar | None) -> str:
    """What YAML made of a value, for "got ..."."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        said = "true" if value else "false"
        quoted = f" (unquoted `{scalar.text}`)" if scalar and scalar.text != said else ""
        return f"the boolean {said}{quoted}"
    if isinstance(value, int | float):
        return f"the number {scalar.text if scalar else value}"
    if isinstance(value, datetime | date):
        return f"the {'timestamp' if isinstance(value, datetime) else 'date'} {scalar.text if scalar else value}"
    if isinstance(value, str):
        return show(value)
    return "a list" if isinstance(value, list) else "a mapping"


def _is_text_or_number(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _not_text(value: object, text: str) -> str | None:
    """The message for a plain scalar that YAML did not read as text where text is expected, else None."""
    if_text = f"quote it ('{text}') if you meant the text"
    if isinstance(value, bool):
        return f"unquoted `{text}` is read by YAML as the boolean {'true' if value else 'false'}; {if_text}"
    if isinstance(value, int | float):
        return f"expected a string, got the number {text}; quote it ('{text}')"
    if isinstance(value, date):
        return f"unquoted `{text}` is read by YAML as a date; {if_text}"
    return None


class _Checker:
    """Validates one YAML document: pydantic for fields, then checks across fields; collects every issue."""

    def __init__(self, doc: YamlDoc) -> None:
        self.restore_times(doc)
        self.doc = doc
        self.issues: list[PlanIssue] = [issue for _, issue in doc.issues]
        self.bad: set[Path] = set(doc.replaced)  # paths that have an issue: later checks skip them

    def check(self) -> _PlanModel | None:
        model = self.check_fields()
        self.check_texts_and_numbers()
        self.check_cross_fields()
        return model if not self.issues else None

    def add(self, path: Path, mark_path: Path, message: str, *, key: bool = False) -> None:
        mark = self.doc.key_mark(mark_path) if key else self.doc.mark(mark_path)
        self.issues.append(PlanIssue(self.doc.file, mark.line, mark.column, field_name(path), message))
        self.bad.add(path)

    def is_ok(self, path: Path) -> bool:
        return not any(path[:end] in self.bad for end in range(len(path) + 1))

    @staticmethod
    def restore_times(doc: YamlDoc) -> None:
        """Put back the source text of unquoted times, so that one parser judges quoted and unquoted alike.

        PyYAML's timestamps accept what RFC 3339 does not (`2026-12-03 1:00:00 +1`), make a time without
        offset naive, and reject `2026-13-03T00:00:00Z` with a "quote it" that would not help.
        """
        window = doc.data.get("window") if isinstance(doc.data, dict) else None
        for path in _TIME_PATHS:
            scalar = doc.scalars.get(path)
            if not isinstance(window, dict) or scalar is None or scalar.tag != TIMESTAMP_TAG:
                continue
            window[path[-1]] = scalar.text
            if path in doc.replaced:  # not a valid date: drop the builder's issue, parse_time says why
                doc.replaced.discard(path)
                doc.issues[:] = [(where, issue) for where, issue in doc.issues if where != path]

    def check_fields(self) -> _PlanModel | None:
        try:
            return _PlanModel.model_validate(self.doc.data, strict=True)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.add_pydantic_error(error["type"], tuple(error["loc"]), error["input"], error.get("ctx"))
            return None

    def add_pydantic_error(self, kind: str, path: Path, value: object, ctx: dict[str, Any] | None) -> None:
        if not self.is_ok(path):  # already reported while reading the YAML (odd tag, bad date)
            return
        spec_key = _spec_key(path)
        if kind == "missing":
            self.add(path, path[:-1], f"missing required key {path[-1]!r}; expected {_SPECS[spec_key]}")
        elif kind == "extra_forbidden":
            self.add(path, path, self.unknown_key(path), key=True)
        else:
            scalar = self.doc.scalars.get(path)
            surprise = _not_text(value, scalar.text) if scalar and spec_key in _TEXT_FIELDS else None
            if surprise:
                self.add(path, path, surprise)
            elif kind == "value_error" and ctx and _is_text_or_number(value):
                self.add(path, path, str(ctx["error"]))  # our validators' own messages
            else:
                expected = _SPECS.get(spec_key, "something else")
                self.add(path, path, f"expected {expected}, got {_describe(value, scalar)}")

    def unknown_key(self, path: Path) -> str:
        key = str(path[-1])
        allowed = _KEYS.get(_spec_key(path[:-1]), ())
        homes = _HOMES.get(key) if len(path) == 1 else None
        close = [repr(home) for home in homes] if homes else difflib.get_close_matches(key, allowed, n=1)
        if close:
            suggestion = " or ".join(close) if homes else repr(close[0])
            return f"unknown key {show(key)} (did you mean {suggestion}?)"
        return f"unknown key {show(key)}; allowed: {', '.join(allowed)}"

    def check_texts_and_numbers(self) -> None:
        """YAML 1.1 spellings pydantic cannot see: `y`/`n` as text, octal/hex/sexagesimal numbers."""
        for path, scalar in self.doc.scalars.items():
            if odd_number(scalar) and self.is_ok(path):
                value = self.value_at(path)
                self.add(
                    path,
                    path,
                    f"unquoted `{scalar.text}` is read by YAML 1.1 as the number {value!r}; "
                    f"write {value!r} if you meant that, or quote it",
                )
            elif scalar.text.lower() in BOOL_WORDS and _spec_key(path) in _TEXT_FIELDS and self.is_ok(path):
                text = scalar.text
                self.add(
                    path,
                    path,
                    f"unquoted `{text}` is read as a boolean by some YAML tools; "
                    f"quote it ('{text}') if you meant the text",
                )

    def value_at(self, path: Path) -> object:
        value: Any = self.doc.data
        for part in path:
            value = value[part]
        return value

    def raw(self, path: Path) -> object:
        """The value at `path` if it is present and passed its own checks, else None."""
        if not self.is_ok(path):
            return None
        try:
            return self.value_at(path)
        except (KeyError, IndexError, TypeError):
            return None

    def check_cross_fields(self) -> None:
        top = self.doc.data
        if not isinstance(top, dict) or not self.is_ok(()):
            return
        self.check_region(top)
        self.check_delays()
        self.check_window()
        self.check_stop()
        targets = top.get("targets")
        if isinstance(targets, list) and self.is_ok(("targets",)):
            self.check_targets(top, targets)

    def check_region(self, top: dict[str, object]) -> None:
        if "region" not in top and "endpoint" not in top:
            self.add(("region",), (), "missing region or endpoint; set region (e.g. cn-north-4) or endpoint")
            return
        region = self.raw(("region",))
        if isinstance(region, str) and region not in KNOWN_REGIONS and "endpoint" not in top:
            known = ", ".join(sorted(KNOWN_REGIONS))
            message = f"unknown region {show(region)}; known: {known}; or set endpoint"
            self.add(("region",), ("region",), message)

    def check_delays(self) -> None:
        retry, base_path, max_path = self.raw(("retry",)), ("retry", "base_delay"), ("retry", "max_delay")
        if not isinstance(retry, dict) or not (self.is_ok(base_path) and self.is_ok(max_path)):
            return
        base = parse_duration(retry["base_delay"]) if "base_delay" in retry else _DEFAULT_RETRY.base_delay
        ceiling = parse_duration(retry["max_delay"]) if "max_delay" in retry else _DEFAULT_RETRY.max_delay
        if ceiling >= base:
            return
        if "max_delay" in retry:
            self.add(
                max_path,
                max_path,
                f"max_delay {ceiling:g}s is below base_delay {base:g}s; allowed: a duration >= base_delay",
            )
        else:
            self.add(
                base_path,
                base_path,
                f"base_delay {base:g}s is above the default max_delay {ceiling:g}s; set max_delay too",
            )

    def check_window(self) -> None:
        window, start_path, end_path = self.raw(("window",)), ("window", "not_before"), ("window", "not_after")
        if not isinstance(window, dict) or not (self.is_ok(start_path) and self.is_ok(end_path)):
            return
        start, end = parse_time(window["not_before"]), parse_time(window["not_after"])
        if end <= start:
            message = (
                f"not_after {_show_time(end)} is not after not_before {_show_time(start)}; "
                "allowed: a time after not_before"
            )
            self.add(end_path, end_path, message)
            return
        cutoff_path = ("window", "cutoff")
        length = (end - start).total_seconds()
        if "cutoff" in window and self.is_ok(cutoff_path) and parse_duration(window["cutoff"]) >= length:
            cutoff = parse_duration(window["cutoff"])
            message = (
                f"cutoff {cutoff:g}s is not shorter than the window ({length:g}s from not_before to not_after): "
                "no target could ever start; allowed: a duration below the window's length"
            )
            self.add(cutoff_path, cutoff_path, message)

    def check_stop(self) -> None:
        stop, max_path, sample_path = self.raw(("stop",)), ("stop", "max_failures"), ("stop", "min_sample")
        if not isinstance(stop, dict) or not (self.is_ok(max_path) and self.is_ok(sample_path)):
            return
        if "max_failures" not in stop or not stop.get("min_sample"):
            return
        if not isinstance(parse_max_failures(stop["max_failures"]), Percent):
            message = (
                "min_sample applies to a percent max_failures (such as '5%') only; an absolute max_failures "
                "holds from the first target: remove min_sample or write max_failures as a percent"
            )
            self.add(sample_path, sample_path, message)

    def check_targets(self, top: dict[str, object], targets: list[object]) -> None:
        """Fill in project_id and mode from the top level, then refuse duplicate and ambiguous targets."""
        defaults = top.get("defaults")
        has_default_mode = (isinstance(defaults, dict) and "mode" in defaults) or not self.is_ok(("defaults",))
        first: dict[tuple[str, str, str], int] = {}  # (project, instance, proxy) -> first target with it
        every: dict[tuple[str, str], int] = {}  # (project, instance) -> first target with proxy_id: all
        named: dict[tuple[str, str], int] = {}  # (project, instance) -> first target with an explicit proxy
        for index, target in enumerate(targets):
            path = ("targets", index)
            if not isinstance(target, dict) or not self.is_ok(path):
                continue
            if "mode" not in target and not has_default_mode:
                message = f"missing mode and no defaults.mode is set; allowed: {', '.join(MODES)}"
                self.add((*path, "mode"), path, message)
            if "project_id" not in target and "project_id" not in top:
                message = f"missing project_id and no top-level project_id; allowed: {ID_ALLOWED['project_id']}"
                self.add((*path, "project_id"), path, message)
            project_path = (*path, "project_id") if "project_id" in target else ("project_id",)
            project, instance = self.raw(project_path), self.raw((*path, "instance_id"))
            proxy = self.raw((*path, "proxy_id"))
            if isinstance(project, str) and isinstance(instance, str) and isinstance(proxy, str):
                self.check_duplicate(index, (project, instance, proxy), first, every, named)

    def check_duplicate(
        self,
        index: int,
        key: tuple[str, str, str],
        first: dict[tuple[str, str, str], int],
        every: dict[tuple[str, str], int],
        named: dict[tuple[str, str], int],
    ) -> None:
        path, instance = ("targets", index), key[:2]
        if key in first:
            message = f"duplicate target: same project_id, instance_id and proxy_id as {self.where(first[key])}"
            self.add(path, path, f"{message}; keep one")
            return
        first[key] = index
        if key[2] == ALL_PROXIES:
            other = named.get(instance)
            every.setdefault(instance, index)
            conflict = f"proxy_id: all covers the proxy that {self.where(other)} names on the same instance"
        else:
            other = every.get(instance)
            named.setdefault(instance, index)
            conflict = f"{self.where(other)} already covers every proxy of this instance with proxy_id: all"
        if other is not None:
            self.add(path, path, f"ambiguous: {conflict}; keep one")

    def where(self, index: int | None) -> str:
        if index is None:
            return ""
        return f"targets[{index}] (line {self.doc.mark(('targets', index)).line})"


def _build(model: _PlanModel, *, path: str, digest: str, doc: YamlDoc) -> Plan:
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


def _show_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def check_plan(doc: YamlDoc, *, path: str, digest: str) -> Plan:
    """Validate a composed plan and build it; raise PlanError listing every issue, in file order."""
    checker = _Checker(doc)
    model = checker.check()
    if model is None:
        raise PlanError(sorted(checker.issues, key=lambda i: (i.line, i.column, i.field)))
    return _build(model, path=path, digest=digest, doc=doc)
