"""The plan: what to change, and how fast. Pure: parsing and validation never touch the network.

The value objects below are what every other layer sees. `load_plan(path)` reads and validates a YAML file
and returns a `Plan`, or raises `PlanError` listing every problem with file:line:column.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Final, Literal

from orchestrator.errors import PlanError, PlanIssue
from orchestrator.planyaml import load_yaml

Mode = Literal["session", "global", "eventual"]
MODES: Final[tuple[Mode, ...]] = ("session", "global", "eventual")
ALL_PROXIES: Final = "all"


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` requests in any window of `period` seconds."""

    count: int
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        units = {1.0: "s", 60.0: "min", 3600.0: "h"}
        return f"{self.count}/{units[self.period]}" if self.period in units else f"{self.count}/{self.period:g}s"


@dataclass(frozen=True, slots=True)
class Limits:
    rate: Rate = Rate(10, 1.0)
    concurrency: int = 10  # HTTP calls in flight
    per_instance: int = 1  # changes in flight per instance
    adaptive: bool = True  # cut the rate on 429s, grow it back on success, never above `rate`


@dataclass(frozen=True, slots=True)
class RetrySettings:
    attempts: int = 5  # total attempts per call, first one included
    base_delay: float = 0.5  # seconds
    max_delay: float = 30.0  # seconds, cap of one backoff sleep
    timeout: float = 30.0  # seconds, per attempt


@dataclass(frozen=True, slots=True)
class JobSettings:
    poll_interval: float = 5.0  # seconds between polls of /jobs?id=
    timeout: float = 1800.0  # give up waiting for a job after this long
    visibility_grace: float = 30.0  # a new job may be "not found" for this long
    wait: bool = False  # wait for every job to end and read the proxy back (apply --wait)


@dataclass(frozen=True, slots=True)
class GateSettings:
    max_age: float = 86400.0  # seconds a preview stays valid for `apply --approved`


@dataclass(frozen=True, slots=True)
class Window:
    """The change window: targets start only from `not_before` until `cutoff` seconds before `not_after`."""

    not_before: datetime  # timezone-aware
    not_after: datetime  # timezone-aware, after not_before
    cutoff: float = 0.0  # seconds before not_after from which nothing new starts; below the window's length

    @property
    def last_start(self) -> datetime:
        """From this moment on no new target starts (in-flight ones may run until not_after)."""
        return self.not_after - timedelta(seconds=self.cutoff)


@dataclass(frozen=True, slots=True)
class Percent:
    """A share of the plan's targets: 0 < value <= 100."""

    value: float

    def __str__(self) -> str:
        return f"{self.value:g}%"


@dataclass(frozen=True, slots=True)
class StopSettings:
    """The failure budget (see orchestrator.budget): stop starting targets once failures reach it."""

    max_failures: int | Percent  # an absolute count >= 1, or a share of the targets
    min_sample: int = 0  # with a Percent: also judge the failure rate once this many targets settled (0: never)


@dataclass(frozen=True, slots=True)
class Target:
    """One proxy (or, with proxy_id == ALL_PROXIES, every proxy of an instance) and its goal."""

    project_id: str
    instance_id: str
    proxy_id: str
    mode: Mode
    line: int = field(default=0, compare=False)  # where the plan declared it, for messages

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project_id, self.instance_id, self.proxy_id)


@dataclass(frozen=True, slots=True)
class Plan:
    path: str
    name: str
    digest: str  # sha256 hex of the file's bytes
    region: str | None
    endpoint: str | None
    project_id: str | None
    limits: Limits
    retry: RetrySettings
    jobs: JobSettings
    targets: tuple[Target, ...]
    # Issue 4, with defaults so that a Plan can still be built from the fields above alone.
    gate: GateSettings = GateSettings()
    window: Window | None = None
    stop: StopSettings | None = None
    # Issue 3: where a password login goes (below --iam-endpoint, above $HUAWEICLOUD_SDK_IAM_ENDPOINT).
    iam_endpoint: str | None = None


# --- IDs --------------------------------------------------------------------------------------------------
# api-contract §1 (path params): project_id is 32 alphanumerics; instance_id is documented as 36 characters
# ending in `in07`; proxy_id as 36 characters ending in `po01`, but the doc's own example proxy id
# `7bf4a8bbb4f4fb58233a242ee13603bpo01` has 35. The exact real-world length ranges are inferred, not
# documented: we accept instance ids of exactly 32+4 and proxy ids of 32..36 characters. ASCII only (a
# Cyrillic a, U+0430, is not 'a') and matched with fullmatch (so no trailing newline): `/`, `..`, `%`,
# whitespace and control characters never reach the request path these ids are pasted into.
PROJECT_ID_RE: Final = re.compile(r"[0-9a-zA-Z]{32}")
INSTANCE_ID_RE: Final = re.compile(r"[0-9a-zA-Z]{32}in[0-9]{2}")
PROXY_ID_RE: Final = re.compile(r"[0-9a-zA-Z]{28,32}po[0-9]{2}")
NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # it may end up in report and lock file names

ID_ALLOWED: Final = {
    "project_id": "32 letters or digits",
    "instance_id": "32 letters or digits followed by 'in' and two digits (36 characters)",
    "proxy_id": f"{ALL_PROXIES!r}, or 28 to 32 letters or digits followed by 'po' and two digits",
}


def show(value: str, limit: int = 40) -> str:
    """A value quoted for a message: ASCII-escaped (so look-alikes and control characters show) and short."""
    if len(value) <= limit:
        return ascii(value)
    return f"{value[:limit]!a}... ({len(value)} characters)"


# --- rates and durations ----------------------------------------------------------------------------------
_RATE_RE: Final = re.compile(r"([0-9]+)/(s|min|h)")
_RATE_PERIODS: Final = {"s": 1.0, "min": 60.0, "h": 3600.0}
MAX_RATE_PER_SECOND: Final = 10_000  # a sanity cap (the API gateway's default limit is 200/s, contract §8)
_NUMBER_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DURATION_RE: Final = re.compile(
    r"(?:(?P<h>[0-9]+(?:\.[0-9]+)?)h)?(?:(?P<m>[0-9]+(?:\.[0-9]+)?)m)?"
    r"(?:(?P<s>[0-9]+(?:\.[0-9]+)?)s)?(?:(?P<ms>[0-9]+(?:\.[0-9]+)?)ms)?"
)
_DURATION_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
RATE_ALLOWED: Final = "N/s, N/min or N/h with N a positive integer (10/s, 600/min), or a positive number per second"
DURATION_ALLOWED: Final = "a number of seconds, or h/m/s/ms parts in that order such as 500ms, 30s, 1m30s, 2h"


def parse_rate(value: object) -> Rate:
    """Read a rate: "N/s", "N/min", "N/h", or a positive number (or numeric text) meaning per second.

    A number r becomes the fraction count/period closest to r with a period of at most 1000 s:
    10 -> Rate(10, 1.0), 0.5 -> Rate(1, 2.0), 2.5 -> Rate(5, 2.0). Raise ValueError if it is none of these.
    """
    if isinstance(value, str):
        text = value.strip()
        match = _RATE_RE.fullmatch(text)
        if match:
            count, period = int(match[1]), _RATE_PERIODS[match[2]]
            if count == 0:
                raise ValueError(f"the rate must be above 0, got {show(value)}; allowed: {RATE_ALLOWED}")
            if count / period > MAX_RATE_PER_SECOND:
                raise ValueError(f"the rate must be at most {MAX_RATE_PER_SECOND}/s, got {show(value)}")
            return Rate(count, period)
        if not _NUMBER_RE.fullmatch(text):
            raise ValueError(f"invalid rate {show(value)}; allowed: {RATE_ALLOWED}")
        value = float(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"invalid rate {value!r}; allowed: {RATE_ALLOWED}")
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        raise ValueError(f"the rate must be a finite number above 0, got {value!r}; allowed: {RATE_ALLOWED}")
    if value > MAX_RATE_PER_SECOND:
        raise ValueError(f"the rate must be at most {MAX_RATE_PER_SECOND}/s, got {show(str(value))}/s")
    fraction = Fraction(value).limit_denominator(1000)
    if fraction == 0:
        raise ValueError(f"the rate {value!r}/s is below 1 per 1000 s; write it as N/h")
    return Rate(fraction.numerator, float(fraction.denominator))


def parse_duration(value: object) -> float:
    """Read a duration in seconds: a non-negative number, or text like "500ms", "30s", "1m30s", "2h", "1.5".

    Raise ValueError for anything else, and for negative, infinite or NaN values.
    """
    seconds: float
    if isinstance(value, str):
        text = value.strip()
        match = _DURATION_RE.fullmatch(text)
        if _NUMBER_RE.fullmatch(text):
            seconds = float(text)
        elif text and match:
            seconds = sum(float(n) * _DURATION_UNITS[unit] for unit, n in match.groupdict().items() if n)
        else:
            raise ValueError(f"invalid duration {show(value)}; allowed: {DURATION_ALLOWED}")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"invalid duration {value!r}; allowed: {DURATION_ALLOWED}")
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an int with hundreds of digits
            seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:  # 1e400 and "99...9h" are infinite
        got = show(value) if isinstance(value, str) else repr(value)
        raise ValueError(f"the duration must be a finite number of seconds >= 0, got {got}")
    return seconds


# --- times and failure budgets ----------------------------------------------------------------------------
_TIME_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
TIME_ALLOWED: Final = "an RFC 3339 time with an offset, such as 2026-12-03T01:00:00+01:00 or 2026-12-03T00:00:00Z"
_PERCENT_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")
_OFFSET_REQUIRED: Final = "the offset is required: add Z for UTC or +HH:MM (such as 2026-12-03T01:00:00+01:00)"
MAX_FAILURES_ALLOWED: Final = "an integer of 1 or more, or a percent of the targets above 0 and at most 100 ('5%')"


def parse_time(value: object) -> datetime:
    """Read an RFC 3339 date-time whose offset is given ("Z" or "+HH:MM"); return an aware datetime.

    `T`, `t` or a space separates date and time; fractions of a second beyond microseconds are cut. A
    datetime is accepted if it is aware. Raise ValueError for anything else: a time without an offset is
    ambiguous (whose 01:00?), so the offset is required.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"the time {value.isoformat()} has no offset; {_OFFSET_REQUIRED}")
        return value
    if not isinstance(value, str):
        got = f"the number {value!r}" if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
        raise ValueError(f"expected {TIME_ALLOWED}, got {got}")
    text = value.strip()
    match = _TIME_RE.fullmatch(text)
    if match is None:
        if _DATE_RE.fullmatch(text):
            raise ValueError(f"{show(value)} is a date without a time; allowed: {TIME_ALLOWED}")
        raise ValueError(f"invalid time {show(value)}; allowed: {TIME_ALLOWED}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if not zulu and not sign:
        raise ValueError(f"the time {show(value)} has no offset; {_OFFSET_REQUIRED}")
    try:
        if zulu:
            tz = UTC
        else:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError(f"offset {sign}{off_h}:{off_m} out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except ValueError as exc:  # month 13, hour 24, second 60 (no leap seconds), offset +24:00
        raise ValueError(f"invalid time {show(value)}: {exc}") from None


def parse_max_failures(value: object) -> int | Percent:
    """Read `stop.max_failures`: an integer >= 1, or text "P%" with 0 < P <= 100. Raise ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"max_failures must be at least 1, got {value}; allowed: {MAX_FAILURES_ALLOWED}")
        return value
    if isinstance(value, str):
        match = _PERCENT_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"invalid max_failures {show(value)}; allowed: {MAX_FAILURES_ALLOWED}")
        percent = float(match[1])
        if not 0 < percent <= 100:
            raise ValueError(f"the percent must be above 0 and at most 100, got {show(value)}")
        return Percent(percent)
    raise ValueError(f"invalid max_failures {value!r}; allowed: {MAX_FAILURES_ALLOWED}")


# --- the API ----------------------------------------------------------------------------------------------
def parse_plan(text_or_bytes: str | bytes, *, path: str) -> Plan:
    """Validate a plan held in memory; `path` names it in messages. Raise PlanError listing every issue."""
    # surrogatepass: a str with lone surrogates becomes bytes that fail to decode below, as a file would.
    data = text_or_bytes.encode("utf-8", "surrogatepass") if isinstance(text_or_bytes, str) else text_or_bytes
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise PlanError([PlanIssue(path, line, column, "", "the plan is not UTF-8 text")]) from None
    # Imported here because the checks import this module's value types (and pydantic, which only
    # validation needs).
    from orchestrator.plancheck import check_plan

    return check_plan(load_yaml(text, file=path), path=path, digest=hashlib.sha256(data).hexdigest())


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and validate the plan file at `path`; raise PlanError listing every issue, or the read error."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise PlanError([PlanIssue(name, 1, 1, "", f"cannot read the plan: {exc.strerror or exc}")]) from None
    return parse_plan(data, path=name)
