"""Every rule a plan must follow: the schema's field checks, checks across fields, our messages. Pure.

pydantic (strict, unknown keys forbidden; the models are in `planschema.py`) finds type, range and format errors
in one pass; we map each error's location back to the YAML mark of the offending value (or of the unknown key, or
of the mapping that lacks a required key) and write our own short message: "<what is wrong>; allowed: <what is
allowed>" or "expected <what is allowed>, got <what YAML read>". Then come the checks pydantic cannot do: YAML 1.1
spellings, region vs endpoint, delays, defaults for mode and project_id, duplicate and ambiguous targets.
"""

from __future__ import annotations

import difflib
from datetime import date, datetime
from typing import Any, Final

from pydantic import ValidationError

from orchestrator.endpoints import KNOWN_REGIONS
from orchestrator.errors import PlanError, PlanIssue
from orchestrator.plan import (
    ALL_PROXIES,
    ID_ALLOWED,
    MODES,
    Percent,
    Plan,
    parse_duration,
    parse_max_failures,
    parse_time,
    show,
)
from orchestrator.planschema import DEFAULT_RETRY, HOMES, KEYS, SPECS, TEXT_FIELDS, TIME_PATHS, PlanModel, build_plan
from orchestrator.planyaml import BOOL_WORDS, TIMESTAMP_TAG, Path, Scalar, YamlDoc, field_name, odd_number

_KEYS: Final = KEYS  # the keys allowed in each mapping, by section (tests/test_planwrite.py reads them from here)


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
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return "an empty mapping" if not value else "a mapping"


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

    def check(self) -> PlanModel | None:
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
        for path in TIME_PATHS:
            scalar = doc.scalars.get(path)
            if not isinstance(window, dict) or scalar is None or scalar.tag != TIMESTAMP_TAG:
                continue
            window[path[-1]] = scalar.text
            if path in doc.replaced:  # not a valid date: drop the builder's issue, parse_time says why
                doc.replaced.discard(path)
                doc.issues[:] = [(where, issue) for where, issue in doc.issues if where != path]

    def check_fields(self) -> PlanModel | None:
        try:
            return PlanModel.model_validate(self.doc.data, strict=True)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.add_pydantic_error(error["type"], tuple(error["loc"]), error["input"], error.get("ctx"))
            return None

    def add_pydantic_error(self, kind: str, path: Path, value: object, ctx: dict[str, Any] | None) -> None:
        if not self.is_ok(path):  # already reported while reading the YAML (odd tag, bad date)
            return
        spec_key = _spec_key(path)
        if kind == "missing":
            self.add(path, path[:-1], f"missing required key {path[-1]!r}; expected {SPECS[spec_key]}")
        elif kind == "extra_forbidden":
            self.add(path, path, self.unknown_key(path), key=True)
        else:
            scalar = self.doc.scalars.get(path)
            surprise = _not_text(value, scalar.text) if scalar and spec_key in TEXT_FIELDS else None
            if surprise:
                self.add(path, path, surprise)
            elif kind == "value_error" and ctx and _is_text_or_number(value):
                self.add(path, path, str(ctx["error"]))  # our validators' own messages
            else:
                expected = SPECS.get(spec_key, "something else")
                self.add(path, path, f"expected {expected}, got {_describe(value, scalar)}")

    def unknown_key(self, path: Path) -> str:
        key = str(path[-1])
        allowed = KEYS.get(_spec_key(path[:-1]), ())
        homes = HOMES.get(key) if len(path) == 1 else None
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
            elif scalar.text.lower() in BOOL_WORDS and _spec_key(path) in TEXT_FIELDS and self.is_ok(path):
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
        base = parse_duration(retry["base_delay"]) if "base_delay" in retry else DEFAULT_RETRY.base_delay
        ceiling = parse_duration(retry["max_delay"]) if "max_delay" in retry else DEFAULT_RETRY.max_delay
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


def _show_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def check_plan(doc: YamlDoc, *, path: str, digest: str) -> Plan:
    """Validate a composed plan and build it; raise PlanError listing every issue, in file order."""
    checker = _Checker(doc)
    model = checker.check()
    if model is None:
        raise PlanError(sorted(checker.issues, key=lambda i: (i.line, i.column, i.field)))
    return build_plan(model, path=path, digest=digest, doc=doc)
