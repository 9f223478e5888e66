"""Kubernetes-flavoured JSONPath: compile an expression once, find every match in a JSON document.

The local cluster evaluates the ``jsonPath`` of each CRD ``additionalPrinterColumns`` entry to build the
server-side Table that ``kubectl get`` prints, and the rest of Tugboat reads conditions and fields out of
arbitrary objects the same way users write them for ``kubectl -o jsonpath``. Kubernetes' dialect differs
from Goessner's original and from RFC 9535 in small ways (the ``{...}`` wrapper, a leading ``.`` instead of
``$``, filters that only walk arrays, missing keys that simply match nothing), so this module implements
that dialect rather than pulling in a general-purpose library.

Supported: ``$``/``@`` roots, dotted fields (``\\.`` escapes a dot inside a name), ``.*``, ``['key']`` and
``["key"]``, ``[n]`` and negative indexes, ``[*]``, unions ``[0,2]``/``['a','b']``, slices ``[a:b:c]``,
recursive descent ``..``, and filters ``[?(@.type=="Ready")]`` with ``== != < > <= >=`` or bare existence
``[?(@.x)]``. Templates with literal text, several ``{}`` actions or ``range``/``end`` are rendered by
kubectl on the client and are rejected here.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from tugboat.kube.errors import JSONPathError

__all__ = ["Path", "compile", "find"]

# Characters that end an unquoted field name (a backslash escapes any of them).
_NAME_STOP = frozenset(".[](){}=<>!,*$@'\"&| \t\r\n")
_OPERATOR_CHARS = frozenset("=!<>")
_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_INDEX_OR_SLICE = re.compile(r"(-?\d+)?(?::(-?\d+)?)?(?::(-?\d+)?)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


class _Step(Protocol):
    """One segment of a path: maps a single value to the values it selects."""

    def select(self, value: Any, root: Any) -> Iterator[Any]: ...


@dataclass(frozen=True)
class _Field:
    name: str

    def select(self, value: Any, root: Any) -> Iterator[Any]:
        if isinstance(value, dict) and self.name in value:
            yield value[self.name]


@dataclass(frozen=True)
class _Wildcard:
    def select(self, value: Any, root: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            yield from value.values()
        elif isinstance(value, list):
            yield from value


@dataclass(frozen=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None

    def apply(self, items: list[Any]) -> list[Any]:
        return items[self.start : self.stop : self.step]


@dataclass(frozen=True)
class _Union:
    """``[0]``, ``[-1]``, ``['a.b']``, ``[1:3]`` and comma-separated mixes of them."""

    items: tuple[int | str | _Slice, ...]

    def select(self, value: Any, root: Any) -> Iterator[Any]:
        for item in self.items:
            if isinstance(item, str):
                if isinstance(value, dict) and item in value:
                    yield value[item]
            elif isinstance(value, list):
                if isinstance(item, _Slice):
                    yield from item.apply(value)
                elif -len(value) <= item < len(value):
                    yield value[item]


@dataclass(frozen=True)
class _Descend:
    """``..``: the value itself and everything nested in it, depth first, in document order."""

    def select(self, value: Any, root: Any) -> Iterator[Any]:
        yield value
        children: Any = (
            value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        )
        for child in children:
            yield from self.select(child, root)


@dataclass(frozen=True)
class _Literal:
    value: Any

    def values(self, current: Any, root: Any) -> list[Any]:
        return [self.value]


@dataclass(frozen=True)
class _SubPath:
    """A path inside a filter, starting at the array item (``@``) or at the document root (``$``)."""

    from_root: bool
    steps: tuple[_Step, ...]

    def values(self, current: Any, root: Any) -> list[Any]:
        return _evaluate(self.steps, root if self.from_root else current, root)


_Operand = _Literal | _SubPath


@dataclass(frozen=True)
class _Filter:
    """``[?(...)]``: the items of an array for which the comparison (or existence test) holds."""

    left: _Operand
    op: str | None = None
    right: _Operand | None = None

    def select(self, value: Any, root: Any) -> Iterator[Any]:
        if isinstance(value, list):
            yield from (item for item in value if self._matches(item, root))

    def _matches(self, item: Any, root: Any) -> bool:
        lefts = self.left.values(item, root)
        if self.op is None or self.right is None:
            return bool(lefts)
        rights = self.right.values(item, root)
        return any(_compare(self.op, a, b) for a in lefts for b in rights)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _compare(op: str, a: Any, b: Any) -> bool:
    """Compare two JSON values; values of different JSON types are unequal and unordered."""
    same = _kind(a) == _kind(b)
    if op in ("==", "!="):
        equal = same and a == b
        return equal if op == "==" else not equal
    if not same or _kind(a) not in ("number", "str"):
        return False
    return _COMPARATORS[op](a, b)


def _evaluate(steps: tuple[_Step, ...], start: Any, root: Any) -> list[Any]:
    current = [start]
    for step in steps:
        current = [selected for value in current for selected in step.select(value, root)]
        if not current:
            break
    return current


@dataclass(frozen=True)
class Path:
    """A compiled expression. ``find`` never raises: missing keys and type mismatches match nothing."""

    expr: str
    steps: tuple[_Step, ...]

    def find(self, obj: Any) -> list[Any]:
        """Every value the expression selects in ``obj``, in document order."""
        return _evaluate(self.steps, obj, obj)

    def first(self, obj: Any, default: Any = None) -> Any:
        """The first match, or ``default`` when nothing matches."""
        found = self.find(obj)
        return found[0] if found else default

    def __str__(self) -> str:
        return self.expr


class _Parser:
    """A cursor over the text of one path (no braces) that builds its steps."""

    def __init__(self, text: str, expr: str) -> None:
        self.text = text
        self.expr = expr
        self.pos = 0

    def error(self, message: str) -> JSONPathError:
        return JSONPathError(f"invalid JSONPath {self.expr!r}: {message}")

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_spaces(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.error(f"expected {char!r} at position {self.pos}, found {found}")
        self.pos += 1

    # --- paths -----------------------------------------------------------------------------------------

    def parse_path(self, *, bare_start: bool) -> tuple[str, tuple[_Step, ...]]:
        """Parse the whole text; returns the root marker (``$``, ``@`` or ``""``) and the steps."""
        steps: list[_Step] = []
        root = ""
        if self.peek() in ("$", "@"):
            root = self.peek()
            self.pos += 1
        elif bare_start and self.is_name_start():
            steps.append(_Field(self.read_name()))
        while not self.at_end():
            steps.extend(self.parse_step())
        return root, tuple(steps)

    def is_name_start(self) -> bool:
        char = self.peek()
        return bool(char) and (char not in _NAME_STOP or char == "\\")

    def parse_step(self) -> list[_Step]:
        char = self.peek()
        if self.text.startswith("..", self.pos):
            self.pos += 2
            return [_Descend(), *self.parse_after_dot(recursive=True)]
        if char == ".":
            self.pos += 1
            return self.parse_after_dot(recursive=False)
        if char == "[":
            return [self.parse_bracket()]
        raise self.error(f"unexpected {char!r} at position {self.pos}")

    def parse_after_dot(self, *, recursive: bool) -> list[_Step]:
        char = self.peek()
        if char == "*":
            self.pos += 1
            return [_Wildcard()]
        if char == "[" or (not char and not recursive):
            return []  # ``.[0]`` and a trailing ``.`` add nothing, as in kubectl
        if self.is_name_start():
            return [_Field(self.read_name())]
        after = "'..'" if recursive else "'.'"
        found = repr(char) if char else "the end"
        raise self.error(
            f"expected a field name, '*' or '[' after {after} at position {self.pos}, found {found}"
        )

    def read_name(self) -> str:
        chars: list[str] = []
        while self.is_name_start():
            if self.peek() == "\\":
                if self.pos + 1 >= len(self.text):
                    raise self.error("a trailing '\\' escapes nothing")
                self.pos += 1
            chars.append(self.peek())
            self.pos += 1
        return "".join(chars)

    # --- brackets --------------------------------------------------------------------------------------

    def parse_bracket(self) -> _Step:
        start = self.pos
        self.pos += 1
        self.skip_spaces()
        if self.peek() == "?":
            return self.parse_filter(start)
        if self.peek() == "*":
            self.pos += 1
            self.expect("]")
            return _Wildcard()
        items: list[int | str | _Slice] = [self.parse_bracket_item()]
        self.skip_spaces()
        while self.peek() == ",":
            self.pos += 1
            items.append(self.parse_bracket_item())
            self.skip_spaces()
        if self.at_end():
            raise self.error(f"unterminated '[' at position {start}")
        self.expect("]")
        return _Union(tuple(items))

    def parse_bracket_item(self) -> int | str | _Slice:
        self.skip_spaces()
        if self.peek() in ("'", '"'):
            return self.read_quoted()
        begin = self.pos
        while self.peek() and self.peek() not in ",]":
            self.pos += 1
        if self.at_end():
            raise self.error(f"unterminated '[' at position {begin - 1}")
        raw = self.text[begin : self.pos].strip()
        return self.index_or_slice(raw, begin)

    def index_or_slice(self, raw: str, at: int) -> int | _Slice:
        match = _INDEX_OR_SLICE.fullmatch(raw)
        if not raw or match is None or (":" not in raw and match.group(1) is None):
            hint = f" (quote keys: ['{raw}'])" if raw and raw.replace("-", "").isalnum() else ""
            raise self.error(f"invalid array index {raw!r} at position {at}{hint}")
        start, stop, step = (None if group is None else int(group) for group in match.groups())
        if ":" not in raw:
            return int(raw)
        if step == 0:
            raise self.error(f"slice step cannot be zero in {raw!r}")
        return _Slice(start, stop, step)

    def read_quoted(self) -> str:
        quote = self.peek()
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.peek() != quote:
            if self.at_end():
                raise self.error(f"unterminated string starting at position {start}")
            if self.peek() == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
                chars.append(_ESCAPES.get(self.peek(), self.peek()))
            else:
                chars.append(self.peek())
            self.pos += 1
        self.pos += 1
        return "".join(chars)

    # --- filters ---------------------------------------------------------------------------------------

    def parse_filter(self, start: int) -> _Filter:
        self.pos += 1  # the '?'
        self.expect("(")
        body_start = self.pos
        body_end = self.matching_paren(start)
        body = self.text[body_start:body_end]
        self.pos = body_end + 1
        self.expect("]")
        return self.build_filter(body)

    def matching_paren(self, start: int) -> int:
        depth = 1
        index = self.pos
        while index < len(self.text):
            char = self.text[index]
            if char in ("'", '"'):
                index = _skip_quoted(self.text, index)
                continue
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return index
            index += 1
        raise self.error(f"unterminated filter '[?(' at position {start}")

    def build_filter(self, body: str) -> _Filter:
        if not body.strip():
            raise self.error("empty filter expression '[?()]'")
        try:
            located = _find_operator(body)
        except JSONPathError as error:
            raise self.error(str(error)) from None
        if located is None:
            return _Filter(self.parse_operand(body))
        index, op = located
        if op not in _COMPARATORS:
            hint = " (use '==' for equality)" if op == "=" else ""
            raise self.error(f"unsupported filter operator {op!r}{hint}; use ==, !=, <, >, <= or >=")
        left = self.parse_operand(body[:index])
        right = self.parse_operand(body[index + len(op) :])
        return _Filter(left, op, right)

    def parse_operand(self, raw: str) -> _Operand:
        text = raw.strip()
        if not text:
            raise self.error("a filter comparison is missing an operand")
        if text[0] in ("@", "$"):
            root, steps = _Parser(text, self.expr).parse_path(bare_start=False)
            return _SubPath(root == "$", steps)
        if text[0] in ("'", '"'):
            if _skip_quoted(text, 0) != len(text):
                raise self.error(f"unexpected text after the string in filter operand {text!r}")
            return _Literal(_Parser(text, self.expr).read_quoted())
        if text in ("true", "false"):
            return _Literal(text == "true")
        if text == "null":
            return _Literal(None)
        if _NUMBER.fullmatch(text):
            return _Literal(float(text) if any(c in text for c in ".eE") else int(text))
        raise self.error(
            f"invalid filter operand {text!r}: expected an @ or $ path, a string, a number or a boolean"
        )


def _skip_quoted(text: str, index: int) -> int:
    """The index just past the string literal that starts at ``index`` (or ``len(text)`` if unterminated)."""
    quote = text[index]
    index += 1
    while index < len(text) and text[index] != quote:
        index += 2 if text[index] == "\\" else 1
    return min(index + 1, len(text))


def _top_level(body: str) -> Iterator[tuple[int, str]]:
    """The characters of a filter body outside string literals and nested brackets, with their indexes."""
    depth = 0
    index = 0
    while index < len(body):
        char = body[index]
        if char in ("'", '"'):
            index = _skip_quoted(body, index)
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0:
            yield index, char
        index += 1


def _find_operator(body: str) -> tuple[int, str] | None:
    """The position and text of the top-level comparison operator of a filter body, if any."""
    for index, _char in _top_level(body):
        if body.startswith(("&&", "||"), index):
            raise JSONPathError(f"logical operators && and || are not supported in filters: {body!r}")
    for index, char in _top_level(body):
        if char in _OPERATOR_CHARS:
            end = index
            while end < len(body) and body[end] in _OPERATOR_CHARS:
                end += 1
            return index, body[index:end]
    return None


def _unwrap(expr: str) -> str:
    """The path inside a single ``{...}`` action, or the expression itself when it has no braces."""
    text = expr.strip()
    if not text.startswith("{"):
        if "{" in text or "}" in text:
            raise JSONPathError(f"invalid JSONPath {expr!r}: unbalanced braces")
        return text
    close = _closing_brace(text)
    if close < 0:
        raise JSONPathError(f"invalid JSONPath {expr!r}: unterminated '{{'")
    if close != len(text) - 1:
        raise JSONPathError(
            f"invalid JSONPath {expr!r}: only a single {{...}} expression is supported; templates with "
            "text, several expressions or range/end are rendered by kubectl, not by the server"
        )
    inner = text[1:-1].strip()
    if re.match(r"(range|end)\b", inner):
        raise JSONPathError(f"invalid JSONPath {expr!r}: range/end templates are not supported")
    return inner


def _closing_brace(text: str) -> int:
    index = 1
    while index < len(text):
        char = text[index]
        if char in ("'", '"'):
            index = _skip_quoted(text, index)
            continue
        if char == "{":
            break
        if char == "}":
            return index
        index += 1
    return -1


@functools.lru_cache(maxsize=1024)
def _compile_cached(expr: str) -> Path:
    body = _unwrap(expr)
    if not body:
        raise JSONPathError(f"invalid JSONPath {expr!r}: the expression is empty")
    _root, steps = _Parser(body, expr).parse_path(bare_start=True)
    return Path(expr, steps)


def compile(expr: str) -> Path:
    """Compile ``expr`` (``.a.b``, ``{.a.b}``, ``$.a``, ``a.b``); raises ``JSONPathError`` if malformed."""
    if not isinstance(expr, str):
        raise JSONPathError(f"a JSONPath expression must be a string, not {type(expr).__name__}")
    return _compile_cached(expr)


def find(expr: str, obj: Any) -> list[Any]:
    """Shorthand for ``compile(expr).find(obj)``."""
    return compile(expr).find(obj)
