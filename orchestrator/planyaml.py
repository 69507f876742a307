"""YAML with marks: turn plan text into plain data plus the line/column of every value and key. Pure.

`yaml.safe_load` loses what a good error message needs: where each value was written, whether a scalar was
quoted (unquoted `on` is a boolean in YAML 1.1), and duplicate keys (it silently keeps the last). So we
`compose()` the node tree and build the data ourselves, recording for every path such as
`("targets", 3, "mode")` the mark of its value node and, for mapping entries, of its key node.

Guards, because a plan may come from anywhere:
* nesting deeper than MAX_DEPTH is refused *before* composing, by streaming parse events: libyaml's composer
  recurses in C and segfaults on ~100k nested brackets;
* more than MAX_ALIAS_EXPANSIONS nodes reached again through aliases is refused (billion laughs), and so is
  an alias used inside its own anchor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import yaml
from yaml.constructor import SafeConstructor

from orchestrator.errors import PlanError, PlanIssue

MAX_DEPTH: Final = 50
MAX_ALIAS_EXPANSIONS: Final = 10_000

Path = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP = (_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
# Plain `<<` and `=` in a value position resolve to these tags; SafeLoader would then fail with an obscure
# error. As values we read them as the text they are (and let validation judge it).
TIMESTAMP_TAG: Final = _TIMESTAMP
_TEXT_TAGS: Final = frozenset({_STR, _TAG + "merge", _TAG + "value"})
_SCALAR_TAGS: Final = frozenset({_INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})

#: Words some YAML reader takes for a boolean: PyYAML (YAML 1.1) for yes/no/on/off/true/false in three
#: casings, other YAML 1.1 tools also for y/n and mixed case.
BOOL_WORDS: Final = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false"})

# A YAML 1.1 number written in a way that surprises: octal 010, hex 0x1F, binary 0b1, sexagesimal 1:30,
# or with underscores 1_000. YAML 1.2 tools read most of these differently (or as text).
_ODD_NUMBER_RE: Final = re.compile(r"[-+]?(?:0[0-9_]+|0[xXbBoO].*|.*[_:].*)")


@dataclass(frozen=True, slots=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, slots=True)
class Scalar:
    """How a scalar value was written: its source text and whether it was plain (unquoted)."""

    text: str
    plain: bool
    tag: str  # the resolved YAML tag, e.g. "tag:yaml.org,2002:bool"


@dataclass(slots=True)
class YamlDoc:
    """The data of a YAML document and where each part of it was written."""

    file: str
    data: object
    marks: dict[Path, Mark] = field(default_factory=dict)  # value node of each path
    key_marks: dict[Path, Mark] = field(default_factory=dict)  # key node of each mapping entry
    scalars: dict[Path, Scalar] = field(default_factory=dict)  # scalar values that were not quoted strings
    issues: list[tuple[Path, PlanIssue]] = field(default_factory=list)  # duplicate keys, odd tags, ...
    replaced: set[Path] = field(default_factory=set)  # paths whose value was unreadable and replaced by None

    def mark(self, path: Path) -> Mark:
        """The mark of `path`'s value, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            mark = self.marks.get(path[:end])
            if mark is not None:
                return mark
        return Mark(1, 1)

    def key_mark(self, path: Path) -> Mark:
        return self.key_marks.get(path) or self.mark(path)


def field_name(path: Path) -> str:
    """`("targets", 3, "mode")` -> `targets[3].mode`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_yaml(text: str, *, file: str) -> YamlDoc:
    """Compose `text` and build its data with marks; raise PlanError when it is not one sane YAML document."""
    root = _compose(text, file)
    # No document, only comments, `---` alone or a lone null: all say nothing.
    doc = _Builder(file).build(root) if root is not None else None
    if doc is None or (doc.data is None and not doc.issues):
        message = "the plan is empty; expected a mapping with version and targets"
        raise PlanError([PlanIssue(file, 1, 1, "", message)])
    return doc


def _compose(text: str, file: str) -> yaml.Node | None:
    try:
        _check_depth(text, file)
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise PlanError([PlanIssue(file, line, column, "", f"invalid YAML: {what}")]) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position, exc.character)
        raise PlanError([PlanIssue(file, line, column, "", f"invalid YAML: {exc.reason}")]) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every YAMLError PyYAML raises is one of the above
        raise PlanError([PlanIssue(file, 1, 1, "", f"invalid YAML: {exc}")]) from None


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting from the event stream, which (unlike composing) never recurses."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line, column = (event.start_mark.line, event.start_mark.column) if event.start_mark else (0, 0)
                raise PlanError([_too_deep(file, Mark(line + 1, column + 1))])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _too_deep(file: str, mark: Mark) -> PlanIssue:
    return PlanIssue(file, mark.line, mark.column, "", f"the YAML is nested deeper than {MAX_DEPTH} levels")


def _position(text: str, position: int, character: object) -> tuple[int, int]:
    """Line and column of a reader error. libyaml reports a byte offset into UTF-8, PyYAML a str index."""
    if _Loader is not yaml.SafeLoader:
        data = text.encode("utf-8")[:position]
        before = data.decode("utf-8", "replace")
    else:  # pragma: no cover - only without libyaml
        before = text[:position]
    line_start = before.rfind("\n") + 1
    return before.count("\n") + 1, len(before) - line_start + 1


class _Builder:
    """Walks a composed node tree once, depth first, building data and marks."""

    def __init__(self, file: str) -> None:
        self.doc = YamlDoc(file=file, data=None)
        self._constructor = SafeConstructor()
        self._seen: set[int] = set()
        self._open: set[int] = set()  # collection nodes being built: meeting one again is a recursive alias
        self._expansions = 0

    def build(self, root: yaml.Node) -> YamlDoc:
        self.doc.data = self._node(root, (), 0)
        return self.doc

    def _node(self, node: yaml.Node, path: Path, depth: int) -> object:
        mark = Mark(node.start_mark.line + 1, node.start_mark.column + 1)
        self._count_alias(node, mark)
        self.doc.marks[path] = mark
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path, mark)
        if depth >= MAX_DEPTH:  # only reachable through aliases: the event scan bounds plain nesting
            raise PlanError([_too_deep(self.doc.file, mark)])
        if id(node) in self._open:
            raise PlanError([self._issue(mark, (), "an alias is used inside its own anchor (recursive YAML)")])
        if node.tag not in (_TAG + "seq", _TAG + "map"):
            self._unsupported(node, path, mark)
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            return [self._node(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))

    def _count_alias(self, node: yaml.Node, mark: Mark) -> None:
        if id(node) not in self._seen:
            self._seen.add(id(node))
            return
        self._expansions += 1
        if self._expansions > MAX_ALIAS_EXPANSIONS:
            message = f"aliases expand to more than {MAX_ALIAS_EXPANSIONS} nodes; refusing (billion laughs?)"
            raise PlanError([self._issue(mark, (), message)])

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_mark = Mark(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                self._report(key_mark, path, "a key must be plain text, not a list or mapping")
                continue
            key = str(key_node.value)
            if key_node.tag == _TAG + "merge":
                self._report(key_mark, (*path, key), "merge keys (<<) are not supported; write the keys out")
                continue
            if key in first_line:
                message = f"duplicate key {key!r} (lines {first_line[key]} and {key_mark.line}); keep only one"
                self._report(key_mark, (*path, key), message)
                continue
            first_line[key] = key_mark.line
            self.doc.key_marks[(*path, key)] = key_mark
            out[key] = self._node(value_node, (*path, key), depth + 1)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: Path, mark: Mark) -> object:
        tag, plain = node.tag, not node.style  # plain style is None from PyYAML, "" from libyaml
        if tag in _TEXT_TAGS:
            if plain:
                self.doc.scalars[path] = Scalar(node.value, True, _STR)
            return node.value
        if tag not in _SCALAR_TAGS:
            self._unsupported(node, path, mark)
            return None
        construct: Callable[[SafeConstructor, yaml.Node], object] = SafeConstructor.yaml_constructors[tag]
        try:
            value = construct(self._constructor, node)
        except (ValueError, OverflowError):  # the timestamp 2024-02-30, an int of more than 4300 digits
            kind = "date" if tag == _TIMESTAMP else "number"
            text = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            message = f"unquoted `{text}` looks like a {kind} to YAML but is not a valid one; quote it"
            self._report(mark, path, message)
            self.doc.replaced.add(path)
            self.doc.scalars[path] = Scalar(node.value, plain, tag)  # a checker may judge the text itself
            return None
        self.doc.scalars[path] = Scalar(node.value, plain, tag)
        return value

    def _unsupported(self, node: yaml.Node, path: Path, mark: Mark) -> None:
        tag = node.tag.replace(_TAG, "!!")
        self._report(mark, path, f"unsupported YAML tag {tag!r}; remove it")
        self.doc.replaced.add(path)

    def _report(self, mark: Mark, path: Path, message: str) -> None:
        self.doc.issues.append((path, self._issue(mark, path, message)))

    def _issue(self, mark: Mark, path: Path, message: str) -> PlanIssue:
        return PlanIssue(self.doc.file, mark.line, mark.column, field_name(path), message)


def odd_number(scalar: Scalar) -> bool:
    """True for a plain YAML 1.1 number written as octal, hex, binary, sexagesimal or with underscores."""
    return scalar.plain and scalar.tag in (_INT, _FLOAT) and _ODD_NUMBER_RE.fullmatch(scalar.text) is not None
