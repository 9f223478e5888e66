"""A small, safe evaluator for the expr-lang conditions of Argo Rollouts analysis metrics.

AnalysisTemplate metrics judge each measurement with ``successCondition``/``failureCondition`` strings
written in expr-lang (github.com/expr-lang/expr), for example ``result[0] >= 0.95`` or
``all(result, {# > 0.9})``. Users' templates must keep working unchanged, so this module accepts that
grammar as it is, with expr's precedence, builtins and runtime rules: ``1.0 == 1``, ``/`` and ``**``
always give floats, a missing map key reads as nil, negative indexes count from the end.

The text is untrusted (any AnalysisTemplate in the cluster supplies it), so the evaluator is safe by
construction. A hand-written lexer and Pratt parser build a small tree; a compiler turns the tree into
nested closures that know only the operations written here. Nothing reaches Python's ``eval`` or
``compile``; values are read only as maps (by key) and arrays (by index), never through attributes;
calls go only to a fixed function table; names starting with ``_`` are refused. Every source of growth
is capped: source length, nesting depth, integer range (int64, like Go), string and collection sizes,
a step budget per evaluation, and ``matches`` runs on a linear-time matcher rather than a backtracking
one.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = ["Expression", "ExpressionError", "compile", "evaluate_condition"]

MAX_SOURCE_CHARS: Final = 10_000
MAX_DEPTH: Final = 64
MAX_NODES: Final = 2_000
MAX_STRING_CHARS: Final = 1_000_000
MAX_ITEMS: Final = 100_000
MAX_STEPS: Final = 1_000_000
MAX_INT: Final = 2**63 - 1
MIN_INT: Final = -(2**63)
MAX_PATTERN_CHARS: Final = 1_000
MAX_PATTERN_PROGRAM: Final = 5_000
MAX_PATTERN_REPEAT: Final = 1_000


class ExpressionError(Exception):
    """A condition that cannot be compiled or evaluated; ``str()`` says what was wrong and where."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        if self.where:
            return f"{self.message} (in {self.where})"
        return self.message


def _locate(err: ExpressionError, where: str) -> None:
    """Record the innermost sub-expression that failed (outer handlers see it already set)."""
    if err.where is None:
        err.where = where


class _NilChain(Exception):
    """``?.`` met nil: the whole chain (up to its ``chain`` node) evaluates to nil."""


# --------------------------------------------------------------------------------------------------------
# Values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _type_name(value: Any) -> str:
    """expr's ``type()`` names: nil, bool, int, float, string, array, map."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if _is_array(value):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _check_int(value: int) -> int:
    if value > MAX_INT or value < MIN_INT:
        raise ExpressionError("integer overflow (results must fit in 64 bits)")
    return value


def _check_string(value: str) -> str:
    if len(value) > MAX_STRING_CHARS:
        raise ExpressionError(f"string too long (more than {MAX_STRING_CHARS} characters)")
    return value


def _check_items(count: int) -> None:
    if count > MAX_ITEMS:
        raise ExpressionError(f"collection too large (more than {MAX_ITEMS} items)")


def _hashable_key(key: Any) -> bool:
    return key is None or isinstance(key, str | int | float)


def _equal(a: Any, b: Any, budget: _Budget) -> bool:
    """expr's runtime equality: numbers by value across int/float, containers deeply, else same kind."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, str) or isinstance(b, str):
        if not (isinstance(a, str) and isinstance(b, str)):
            return False
        budget.spend(len(a) >> 6)
        return a == b
    if _is_array(a) and _is_array(b):
        if len(a) != len(b):
            return False
        budget.spend(len(a))
        for x, y in zip(a, b, strict=True):
            if type(x) is float and type(y) is float:  # Prometheus vectors: skip the general case
                if x != y:
                    return False
            elif not _equal(x, y, budget):
                return False
        return True
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if len(a) != len(b):
            return False
        budget.spend(len(a))
        return all(key in b and _equal(value, b[key], budget) for key, value in a.items())
    return a is b


def _compare(op: str, a: Any, b: Any, budget: _Budget) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        budget.spend(min(len(a), len(b)) >> 6)
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        if op == "<":
            return bool(a < b)
        if op == ">":
            return bool(a > b)
        if op == "<=":
            return bool(a <= b)
        return bool(a >= b)
    raise ExpressionError(f"cannot compare {_type_name(a)} and {_type_name(b)} with {op}")


def _go_float(value: float) -> str:
    """A float as Go's ``%v`` prints it (``1``, ``0.5``, ``123456``, ``1e+06``, ``NaN``, ``+Inf``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    stripped = digits.lstrip("0")
    point = len(whole) + (int(exp_text) if exp_text else 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0") or "0"
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_format(value: Any, budget: _Budget) -> str:
    """``fmt.Sprintf("%v", value)`` as expr's ``string()`` shows it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if _is_array(value):
        budget.spend(len(value))
        return _check_string("[" + " ".join(_go_format(item, budget) for item in value) + "]")
    if isinstance(value, Mapping):
        budget.spend(len(value))
        pairs = sorted((_go_format(k, budget), _go_format(v, budget)) for k, v in value.items())
        return _check_string("map[" + " ".join(f"{k}:{v}" for k, v in pairs) + "]")
    return _type_name(value)


# --------------------------------------------------------------------------------------------------------
# Evaluation state


class _Budget:
    """Steps left for one evaluation: loops and growth spend them, so no expression runs for long."""

    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            # where="": the whole evaluation ran out, not the sub-expression that happened to be running
            raise ExpressionError(f"expression too expensive (more than {MAX_STEPS} steps)", where="")


class _Scope:
    """What a closure can see: the names, the budget, and inside predicates ``#``, ``#index``, ``#acc``."""

    __slots__ = ("acc", "budget", "index", "item", "names")

    def __init__(self, names: Mapping[str, Any], budget: _Budget) -> None:
        self.names = names
        self.budget = budget
        self.item: Any = None
        self.index = 0
        self.acc: Any = None

    def child(self) -> _Scope:
        scope = _Scope(self.names, self.budget)
        scope.item, scope.index, scope.acc = self.item, self.index, self.acc
        return scope


_Fn = Callable[[_Scope], Any]


# --------------------------------------------------------------------------------------------------------
# Lexer


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # num, str, name, op, bracket, eof
    value: Any
    pos: int
    end: int


_WORD_OPERATORS = frozenset(
    {"not", "in", "or", "and", "matches", "contains", "startsWith", "endsWith", "let", "if", "else"}
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _syntax_error(message: str, pos: int) -> ExpressionError:
    return ExpressionError(f"syntax error: {message} (column {pos + 1})")


def _is_name_start(char: str) -> bool:
    return char.isalpha() or char in "_$"


def _is_name_char(char: str) -> bool:
    return char.isalpha() or char in "_$" or char.isdecimal()


def _is_identifier(text: str) -> bool:
    return bool(text) and _is_name_start(text[0]) and all(_is_name_char(c) for c in text[1:])


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[_Token] = []

    def peek(self, offset: int = 1) -> str:
        at = self.pos + offset
        return self.text[at] if at < len(self.text) else ""

    def emit(self, kind: str, value: Any, end: int) -> None:
        self.tokens.append(_Token(kind, value, self.pos, end))
        self.pos = end

    def operator(self, length: int) -> None:
        self.emit("op", self.text[self.pos : self.pos + length], self.pos + length)

    def run(self) -> list[_Token]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            nxt = self.peek()
            if char.isspace():
                self.pos += 1
            elif char in "'\"":
                self.string(char)
            elif char == "`":
                self.raw_string()
            elif "0" <= char <= "9" or (char == "." and "0" <= nxt <= "9" and nxt):
                self.number()
            elif char == "/" and nxt in ("/", "*") and nxt:
                self.comment(nxt)
            elif char == "?":
                self.operator(2 if nxt in (".", "?") and nxt else 1)
            elif char in "|:.":
                self.operator(2 if nxt == char else 1)
            elif char in "&!=*<>":
                self.operator(2 if nxt in ("&", "=", "*") and nxt else 1)
            elif char in ",;%+-^#/":
                self.operator(1)
            elif char in "()[]{}":
                self.emit("bracket", char, self.pos + 1)
            elif _is_name_start(char):
                self.word()
            else:
                raise _syntax_error(f"unrecognized character {char!r}", self.pos)
        self.tokens.append(_Token("eof", None, len(text), len(text)))
        return self.tokens

    def comment(self, kind: str) -> None:
        if kind == "/":
            end = self.text.find("\n", self.pos)
            self.pos = len(self.text) if end < 0 else end
            return
        end = self.text.find("*/", self.pos + 2)
        if end < 0:
            raise _syntax_error("unclosed comment", self.pos)
        self.pos = end + 2

    def word(self) -> None:
        end = self.pos + 1
        while end < len(self.text) and _is_name_char(self.text[end]):
            end += 1
        word = self.text[self.pos : end]
        self.emit("op" if word in _WORD_OPERATORS else "name", word, end)

    def number(self) -> None:
        text, start = self.text, self.pos
        end = start
        digits = "0123456789_"
        if text[end] == "0" and end + 1 < len(text) and text[end + 1] in "xXoObB":
            digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[text[end + 1].lower()]
            end += 2
        while end < len(text) and text[end] in digits:
            end += 1
        if end < len(text) and text[end] == "." and text[end + 1 : end + 2] != ".":
            end += 1
            while end < len(text) and text[end] in digits:
                end += 1
        if end < len(text) and text[end] in "eE" and digits == "0123456789_":
            end += 1
            if end < len(text) and text[end] in "+-":
                end += 1
            while end < len(text) and text[end] in digits:
                end += 1
        if end < len(text) and _is_name_char(text[end]):
            raise _syntax_error(f"bad number syntax {text[start : end + 1]!r}", start)
        self.emit("num", _number_value(text[start:end], start), end)

    def string(self, quote: str) -> None:
        text, pos = self.text, self.pos + 1
        out: list[str] = []
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise _syntax_error("string literal not terminated", self.pos)
            char = text[pos]
            if char == quote:
                break
            if char == "\\":
                decoded, pos = self.escape(pos)
                out.append(decoded)
            else:
                out.append(char)
                pos += 1
        self.emit("str", "".join(out), pos + 1)

    def escape(self, pos: int) -> tuple[str, int]:
        text = self.text
        if pos + 1 >= len(text):
            raise _syntax_error("string literal not terminated", self.pos)
        kind = text[pos + 1]
        if kind in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[kind], pos + 2
        if kind == "u" and text[pos + 2 : pos + 3] == "{":
            close = text.find("}", pos + 3)
            hex_text = text[pos + 3 : close] if close > 0 else ""
            if not 1 <= len(hex_text) <= 6 or not set(hex_text) <= _HEX_DIGITS:
                raise _syntax_error("invalid \\u{...} escape", pos)
            return self.code_point(int(hex_text, 16), pos), close + 1
        width = {"x": 2, "X": 2, "u": 4, "U": 8}.get(kind)
        if width is not None:
            hex_text = text[pos + 2 : pos + 2 + width]
            if len(hex_text) != width or not set(hex_text) <= _HEX_DIGITS:
                raise _syntax_error(f"invalid \\{kind} escape", pos)
            return self.code_point(int(hex_text, 16), pos), pos + 2 + width
        octal = text[pos + 1 : pos + 4]
        if len(octal) == 3 and octal[0] in "0123" and all(c in "01234567" for c in octal):
            return chr(int(octal, 8)), pos + 4
        raise _syntax_error(f"invalid escape sequence \\{kind}", pos)

    @staticmethod
    def code_point(value: int, pos: int) -> str:
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise _syntax_error("invalid Unicode code point in escape", pos)
        return chr(value)

    def raw_string(self) -> None:
        text, pos = self.text, self.pos + 1
        out: list[str] = []
        while True:
            close = text.find("`", pos)
            if close < 0:
                raise _syntax_error("string literal not terminated", self.pos)
            out.append(text[pos:close])
            if text[close + 1 : close + 2] == "`":
                out.append("`")
                pos = close + 2
                continue
            break
        self.emit("str", "".join(out), close + 1)


def _number_value(raw: str, pos: int) -> int | float:
    clean = raw.replace("_", "")
    lower = clean.lower()
    try:
        if lower.startswith(("0x", "0o", "0b")):
            value: int | float = int(clean[2:], {"x": 16, "o": 8, "b": 2}[lower[1]])
        elif "." in lower or "e" in lower:
            value = float(clean)
            if math.isinf(value):
                raise _syntax_error(f"float literal {raw!r} is too large", pos)
        else:
            value = int(clean, 10)
    except ValueError:
        raise _syntax_error(f"invalid number literal {raw!r}", pos) from None
    if isinstance(value, int) and value > MAX_INT:
        raise _syntax_error(f"integer literal {raw!r} is too large", pos)
    return value


# --------------------------------------------------------------------------------------------------------
# Parser (expr's grammar: Pratt-style binary operators, postfix member/index/slice, predicates)


@dataclasses.dataclass(frozen=True, slots=True)
class _Node:
    kind: str
    start: int
    end: int
    value: Any = None
    args: tuple[_Node, ...] = ()
    depth: int = 1
    size: int = 1


_LEFT, _RIGHT = 0, 1
_BINARY: dict[str, tuple[int, int]] = {
    "|": (0, _LEFT),
    "or": (10, _LEFT),
    "||": (10, _LEFT),
    "and": (15, _LEFT),
    "&&": (15, _LEFT),
    "==": (20, _LEFT),
    "!=": (20, _LEFT),
    "<": (20, _LEFT),
    ">": (20, _LEFT),
    ">=": (20, _LEFT),
    "<=": (20, _LEFT),
    "in": (20, _LEFT),
    "matches": (20, _LEFT),
    "contains": (20, _LEFT),
    "startsWith": (20, _LEFT),
    "endsWith": (20, _LEFT),
    "..": (25, _LEFT),
    "+": (30, _LEFT),
    "-": (30, _LEFT),
    "*": (60, _LEFT),
    "/": (60, _LEFT),
    "%": (60, _LEFT),
    "**": (100, _RIGHT),
    "^": (100, _RIGHT),
    "??": (500, _LEFT),
}
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_CHAINED_COMPARISONS = frozenset({"<", ">", "<=", ">="})
_NEGATABLE = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})
# Builtins whose arguments include predicates (``{...}`` or a bare expression using ``#``).
_PREDICATE_ARGS: dict[str, tuple[str, ...]] = {
    "all": ("expr", "pred"),
    "none": ("expr", "pred"),
    "any": ("expr", "pred"),
    "one": ("expr", "pred"),
    "filter": ("expr", "pred"),
    "map": ("expr", "pred"),
    "count": ("expr", "pred?"),
    "sum": ("expr", "pred?"),
    "find": ("expr", "pred"),
    "findIndex": ("expr", "pred"),
    "findLast": ("expr", "pred"),
    "findLastIndex": ("expr", "pred"),
    "groupBy": ("expr", "pred"),
    "sortBy": ("expr", "pred", "expr?"),
    "reduce": ("expr", "pred", "expr?"),
}
_ABSENT = _Node("absent", 0, 0)


class _Parser:
    def __init__(self, source: str, tokens: list[_Token]) -> None:
        self.source = source
        self.tokens = tokens
        self.index = 0
        self.last_end = 0
        self.predicates = 0
        self.nesting = 0
        self.nodes = 0

    # -- tokens

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
            self.last_end = token.end
        return token

    def is_op(self, value: str) -> bool:
        token = self.current
        return token.kind == "op" and token.value == value

    def is_bracket(self, value: str) -> bool:
        token = self.current
        return token.kind == "bracket" and token.value == value

    def unexpected(self, token: _Token | None = None) -> ExpressionError:
        token = token or self.current
        if token.kind == "eof":
            return _syntax_error("unexpected end of expression", token.pos)
        shown = token.value if token.kind in ("op", "bracket", "name") else repr(token.value)
        return _syntax_error(f"unexpected token {shown}", token.pos)

    def expect(self, kind: str, value: str) -> None:
        token = self.current
        if token.kind != kind or token.value != value:
            raise self.unexpected()
        self.advance()

    def make(self, kind: str, start: int, *, value: Any = None, args: tuple[_Node, ...] = ()) -> _Node:
        depth = 1 + max((arg.depth for arg in args), default=0)
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests too deeply (more than {MAX_DEPTH} levels)")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression too large (more than {MAX_NODES} nodes)")
        size = 1 + sum(arg.size for arg in args)
        return _Node(kind, start, max(self.last_end, start), value, args, depth, size)

    # -- grammar

    def parse(self) -> _Node:
        node = self.sequence()
        if self.current.kind != "eof":
            raise self.unexpected()
        return node

    def sequence(self) -> _Node:
        nodes = [self.expression(0)]
        while self.is_op(";"):
            self.advance()
            if self.current.kind == "eof":
                break
            nodes.append(self.expression(0))
        if len(nodes) == 1:
            return nodes[0]
        return self.make("seq", nodes[0].start, args=tuple(nodes))

    def expression(self, precedence: int) -> _Node:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionError(f"expression nests too deeply (more than {MAX_DEPTH} levels)")
        try:
            return self.binary(precedence)
        finally:
            self.nesting -= 1

    def binary(self, precedence: int) -> _Node:
        if precedence == 0 and self.is_op("let"):
            return self.let()
        if precedence == 0 and self.is_op("if"):
            return self.if_else()
        left = self.primary()
        previous = ""
        while self.current.kind == "op":
            token = self.current
            negate: _Token | None = None
            if token.value == "not":
                following = self.tokens[self.index + 1]
                if following.kind != "op" or following.value not in _NEGATABLE:
                    raise self.unexpected(following)
                if _BINARY[following.value][0] < precedence:
                    break
                negate = self.advance()
                token = self.current
            spec = _BINARY.get(token.value)
            if spec is None or spec[0] < precedence:
                break
            self.advance()
            if token.value == "|":
                name = self.current
                if name.kind != "name":
                    raise self.unexpected()
                self.advance()
                left = self.call(name, [left])
            elif previous == "??" and token.value != "??":
                raise _syntax_error(
                    f"operator {token.value} and coalesce expressions (??) cannot be mixed; "
                    "wrap either in parentheses",
                    token.pos,
                )
            elif token.value in _CHAINED_COMPARISONS:
                left = self.comparison(left, token, spec[0])
            else:
                right = self.expression(spec[0] + 1 if spec[1] == _LEFT else spec[0])
                left = self.make("binary", left.start, value=token.value, args=(left, right))
                if negate is not None:
                    left = self.make("unary", left.start, value="not", args=(left,))
            previous = token.value
        if precedence == 0:
            left = self.conditional(left)
        return left

    def comparison(self, left: _Node, token: _Token, precedence: int) -> _Node:
        """``a < b < c`` means ``a < b && b < c``, as in expr."""
        root: _Node | None = None
        while True:
            right = self.expression(precedence + 1)
            node = self.make("binary", left.start, value=token.value, args=(left, right))
            root = node if root is None else self.make("binary", root.start, value="&&", args=(root, node))
            left, token = right, self.current
            if token.kind != "op" or token.value not in _CHAINED_COMPARISONS:
                return root
            self.advance()

    def conditional(self, node: _Node) -> _Node:
        while self.is_op("?"):
            self.advance()
            if self.is_op(":"):
                self.advance()
                yes, no = node, self.expression(0)
            else:
                yes = self.expression(0)
                self.expect("op", ":")
                no = self.expression(0)
            node = self.make("cond", node.start, args=(node, yes, no))
        return node

    def let(self) -> _Node:
        start = self.advance().pos
        name = self.current
        if name.kind != "name":
            raise self.unexpected()
        self.advance()
        self.expect("op", "=")
        value = self.expression(0)
        self.expect("op", ";")
        body = self.sequence()
        return self.make("let", start, value=name.value, args=(value, body))

    def if_else(self) -> _Node:
        start = self.advance().pos
        condition = self.expression(0)
        self.expect("bracket", "{")
        yes = self.sequence()
        self.expect("bracket", "}")
        self.expect("op", "else")
        if self.is_op("if"):
            no = self.if_else()
        else:
            self.expect("bracket", "{")
            no = self.sequence()
            self.expect("bracket", "}")
        return self.make("cond", start, args=(condition, yes, no))

    def primary(self) -> _Node:
        token = self.current
        if token.kind == "op" and token.value in _UNARY:
            self.advance()
            operand = self.expression(_UNARY[token.value])
            op = "not" if token.value == "!" else token.value
            return self.postfix(self.make("unary", token.pos, value=op, args=(operand,)))
        if self.is_bracket("("):
            self.advance()
            inner = self.sequence()
            self.expect("bracket", ")")
            return self.postfix(inner)
        if self.predicates and token.kind == "op" and token.value in ("#", "."):
            name = ""
            if token.value == "#":
                self.advance()
                if self.current.kind == "name":
                    name = self.advance().value
            return self.postfix(self.make("pointer", token.pos, value=name))
        return self.secondary()

    def secondary(self) -> _Node:
        token = self.current
        if token.kind == "name":
            self.advance()
            if token.value in ("true", "false", "nil"):
                literal = {"true": True, "false": False, "nil": None}[token.value]
                return self.make("const", token.pos, value=literal)
            if self.is_bracket("("):
                node = self.call(token, [])
            else:
                node = self.make("name", token.pos, value=token.value)
        elif token.kind == "num":
            self.advance()
            return self.make("const", token.pos, value=token.value)
        elif token.kind == "str":
            self.advance()
            node = self.make("const", token.pos, value=token.value)
        elif self.is_bracket("["):
            node = self.array()
        elif self.is_bracket("{"):
            node = self.map()
        else:
            raise self.unexpected()
        return self.postfix(node)

    def call(self, name: _Token, args: list[_Node]) -> _Node:
        specs = _PREDICATE_ARGS.get(name.value)
        self.expect("bracket", "(")
        if specs is None:
            offset = len(args)
            while not self.is_bracket(")"):
                if len(args) > offset:
                    self.expect("op", ",")
                    if self.is_bracket(")"):
                        break
                args.append(self.expression(0))
        else:
            wanted = specs[len(args) :]
            for position, spec in enumerate(wanted):
                if self.is_bracket(")"):
                    if spec.endswith("?"):
                        break
                    raise _syntax_error(f"{name.value}() expects at least {len(specs)} arguments", name.pos)
                if position > 0:
                    self.expect("op", ",")
                args.append(self.predicate() if spec.startswith("pred") else self.expression(0))
            if self.is_op(","):
                self.advance()
        self.expect("bracket", ")")
        return self.make("call", name.pos, value=name.value, args=tuple(args))

    def predicate(self) -> _Node:
        start = self.current.pos
        braces = self.is_bracket("{")
        if braces:
            self.advance()
        self.predicates += 1
        body = self.sequence() if braces else self.expression(0)
        self.predicates -= 1
        if braces:
            self.expect("bracket", "}")
        elif self.is_op(";"):
            raise _syntax_error("wrap predicate with brackets { and }", self.current.pos)
        return self.make("predicate", start, args=(body,))

    def array(self) -> _Node:
        start = self.advance().pos
        items: list[_Node] = []
        while not self.is_bracket("]"):
            if items:
                self.expect("op", ",")
                if self.is_bracket("]"):
                    break
            items.append(self.expression(0))
        self.advance()
        return self.make("array", start, args=tuple(items))

    def map(self) -> _Node:
        start = self.advance().pos
        pairs: list[_Node] = []
        while not self.is_bracket("}"):
            if pairs:
                self.expect("op", ",")
                if self.is_bracket("}"):
                    break
            token = self.current
            if token.kind in ("num", "str", "name"):
                self.advance()
                key_text = token.value if token.kind != "num" else self.source[token.pos : token.end]
                key = self.make("const", token.pos, value=key_text)
            elif self.is_bracket("("):
                key = self.expression(0)
            else:
                raise _syntax_error(
                    "a map key must be a quoted string, a number, a name, or an expression in parentheses",
                    token.pos,
                )
            self.expect("op", ":")
            pairs.extend((key, self.expression(0)))
        self.advance()
        return self.make("map", start, args=tuple(pairs))

    def postfix(self, node: _Node) -> _Node:
        while True:
            token = self.current
            if token.kind == "op" and token.value in (".", "?."):
                optional = token.value == "?."
                self.advance()
                if optional and self.is_bracket("["):
                    node = self.index_or_slice(node, optional=True)
                    continue
                prop = self.current
                if prop.kind != "name" and not (prop.kind == "op" and _is_identifier(prop.value)):
                    raise _syntax_error("expected a name after .", prop.pos)
                self.advance()
                if prop.value.startswith("_"):
                    raise _syntax_error(
                        f"names beginning with '_' are not allowed: '{prop.value}' (use [\"{prop.value}\"])",
                        prop.pos,
                    )
                if self.is_bracket("("):
                    raise _syntax_error(f"method calls are not supported (.{prop.value}())", prop.pos)
                key = self.make("const", prop.pos, value=prop.value)
                node = self.member(node, key, optional=optional)
            elif token.kind == "bracket" and token.value == "[":
                node = self.index_or_slice(node, optional=False)
            else:
                return node

    def index_or_slice(self, node: _Node, *, optional: bool) -> _Node:
        self.advance()
        start: _Node = _ABSENT
        if not self.is_op(":"):
            start = self.expression(0)
            if not self.is_op(":"):
                self.expect("bracket", "]")
                return self.member(node, start, optional=optional)
        self.advance()
        stop = _ABSENT if self.is_bracket("]") else self.expression(0)
        self.expect("bracket", "]")
        inner, chained = self.unchain(node)
        sliced = self.make("slice", inner.start, args=(inner, start, stop))
        return self.make("chain", sliced.start, args=(sliced,)) if chained else sliced

    def member(self, node: _Node, key: _Node, *, optional: bool) -> _Node:
        """Member access; after a ``?.`` the rest of the postfix chain belongs to the same nil-safe chain."""
        inner, chained = self.unchain(node)
        member = self.make("member", inner.start, value=optional, args=(inner, key))
        return self.make("chain", member.start, args=(member,)) if chained or optional else member

    @staticmethod
    def unchain(node: _Node) -> tuple[_Node, bool]:
        return (node.args[0], True) if node.kind == "chain" else (node, False)


# --------------------------------------------------------------------------------------------------------
# Safe regular expressions for ``matches``: Python's own pattern parser, then a Pike VM (linear time,
# like Go's RE2), so that no pattern can backtrack for ever.

_re_parser: Any = importlib.import_module("re._parser")
_re_consts: Any = importlib.import_module("re._constants")

_R_CHAR, _R_SPLIT, _R_JMP, _R_ASSERT, _R_MATCH = range(5)
_AT_BEGIN, _AT_BEGIN_TEXT, _AT_END, _AT_END_TEXT, _AT_WORD, _AT_NOT_WORD = range(6)


def _ascii_word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    _re_consts.CATEGORY_DIGIT: lambda c: "0" <= c <= "9",
    _re_consts.CATEGORY_NOT_DIGIT: lambda c: not "0" <= c <= "9",
    _re_consts.CATEGORY_SPACE: lambda c: c in "\t\n\f\r ",
    _re_consts.CATEGORY_NOT_SPACE: lambda c: c not in "\t\n\f\r ",
    _re_consts.CATEGORY_WORD: _ascii_word,
    _re_consts.CATEGORY_NOT_WORD: lambda c: not _ascii_word(c),
}
_ASSERTIONS: dict[Any, int] = {
    _re_consts.AT_BEGINNING: _AT_BEGIN,
    _re_consts.AT_BEGINNING_STRING: _AT_BEGIN_TEXT,
    _re_consts.AT_END: _AT_END,
    _re_consts.AT_END_STRING: _AT_END_TEXT,
    _re_consts.AT_BOUNDARY: _AT_WORD,
    _re_consts.AT_NON_BOUNDARY: _AT_NOT_WORD,
}


def _fold(test: Callable[[str], bool], ignore_case: bool) -> Callable[[str], bool]:
    if not ignore_case:
        return test
    return lambda c: test(c) or test(c.lower()) or test(c.upper())


class _RegexCompiler:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.program: list[list[Any]] = []

    def emit(self, op: int, a: Any = None, b: Any = None) -> int:
        if len(self.program) >= MAX_PATTERN_PROGRAM:
            raise ExpressionError(f"regular expression {self.pattern!r} is too large")
        self.program.append([op, a, b])
        return len(self.program) - 1

    def sequence(self, items: Sequence[tuple[Any, Any]], flags: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"regular expression {self.pattern!r} nests too deeply")
        for op, arg in items:
            self.item(op, arg, flags, depth)

    def item(self, op: Any, arg: Any, flags: int, depth: int) -> None:
        c = _re_consts
        ignore_case = bool(flags & re.IGNORECASE)
        if op == c.LITERAL:
            literal = chr(arg)
            self.emit(_R_CHAR, _fold(lambda ch: ch == literal, ignore_case))
        elif op == c.NOT_LITERAL:
            literal = chr(arg)
            positive = _fold(lambda ch: ch == literal, ignore_case)
            self.emit(_R_CHAR, lambda ch: not positive(ch))
        elif op == c.ANY:
            self.emit(_R_CHAR, (lambda ch: True) if flags & re.DOTALL else (lambda ch: ch != "\n"))
        elif op == c.IN:
            self.emit(_R_CHAR, self.char_class(arg, ignore_case))
        elif op == c.BRANCH:
            self.branch(arg[1], flags, depth)
        elif op == c.SUBPATTERN:
            _group, add_flags, del_flags, items = arg
            self.sequence(items, (flags | add_flags) & ~del_flags, depth + 1)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, items = arg
            self.repeat(low, None if high == c.MAXREPEAT else high, items, flags, depth)
        elif op == c.AT and arg in _ASSERTIONS:
            self.emit(_R_ASSERT, _ASSERTIONS[arg], bool(flags & re.MULTILINE))
        else:
            name = str(op).lower().replace("_", " ")
            raise ExpressionError(f"regular expression {self.pattern!r} uses an unsupported feature ({name})")

    def char_class(self, items: Sequence[tuple[Any, Any]], ignore_case: bool) -> Callable[[str], bool]:
        c = _re_consts
        negate = False
        chars: set[str] = set()
        ranges: list[tuple[int, int]] = []
        categories: list[Callable[[str], bool]] = []
        for op, arg in items:
            if op == c.NEGATE:
                negate = True
            elif op == c.LITERAL:
                chars.add(chr(arg))
            elif op == c.RANGE:
                ranges.append(arg)
            elif op == c.CATEGORY and arg in _CATEGORIES:
                categories.append(_CATEGORIES[arg])
            else:
                raise ExpressionError(f"regular expression {self.pattern!r} uses an unsupported class")

        def member(ch: str) -> bool:
            code = ord(ch)
            return ch in chars or any(lo <= code <= hi for lo, hi in ranges) or any(f(ch) for f in categories)

        folded = _fold(member, ignore_case)
        return (lambda ch: not folded(ch)) if negate else folded

    def branch(self, alternatives: Sequence[Sequence[tuple[Any, Any]]], flags: int, depth: int) -> None:
        jumps: list[int] = []
        for number, alternative in enumerate(alternatives):
            if number == len(alternatives) - 1:
                self.sequence(alternative, flags, depth + 1)
                break
            split = self.emit(_R_SPLIT, len(self.program) + 1)
            self.sequence(alternative, flags, depth + 1)
            jumps.append(self.emit(_R_JMP))
            self.program[split][2] = len(self.program)
        for jump in jumps:
            self.program[jump][1] = len(self.program)

    def repeat(self, low: int, high: int | None, items: Any, flags: int, depth: int) -> None:
        if low > MAX_PATTERN_REPEAT or (high is not None and high > MAX_PATTERN_REPEAT):
            raise ExpressionError(
                f"regular expression {self.pattern!r}: repeat count above {MAX_PATTERN_REPEAT}"
            )
        for _ in range(low):
            self.sequence(items, flags, depth + 1)
        if high is None:
            split = self.emit(_R_SPLIT, len(self.program) + 1)
            self.sequence(items, flags, depth + 1)
            self.emit(_R_JMP, split)
            self.program[split][2] = len(self.program)
            return
        splits = []
        for _ in range(high - low):
            splits.append(self.emit(_R_SPLIT, len(self.program) + 1))
            self.sequence(items, flags, depth + 1)
        for split in splits:
            self.program[split][2] = len(self.program)


class _Regex:
    """A compiled pattern: ``search`` answers "does it match anywhere?" in O(len(text) * program)."""

    __slots__ = ("literal", "program")

    def __init__(self, program: tuple[tuple[Any, Any, Any], ...], literal: str | None) -> None:
        self.program = program
        self.literal = literal

    def search(self, text: str, budget: _Budget) -> bool:
        if self.literal is not None:
            budget.spend(len(text) // 64 + 1)
            return self.literal in text
        program = self.program
        marks = [-1] * len(program)
        threads: list[int] = []
        if _regex_add(program, threads, 0, 0, text, marks):
            return True
        for pos, char in enumerate(text):
            budget.spend(4 * len(threads) + 1)  # a thread step costs about four closure calls
            following: list[int] = []
            for pc in threads:
                if program[pc][1](char) and _regex_add(program, following, pc + 1, pos + 1, text, marks):
                    return True
            if _regex_add(program, following, 0, pos + 1, text, marks):
                return True
            threads = following
        return False


def _regex_add(
    program: tuple[tuple[Any, Any, Any], ...], out: list[int], pc: int, pos: int, text: str, marks: list[int]
) -> bool:
    """Follow the empty transitions from ``pc`` at ``pos``; True once the match state is reached."""
    stack = [pc]
    while stack:
        pc = stack.pop()
        if marks[pc] == pos:
            continue
        marks[pc] = pos
        op, a, b = program[pc]
        if op == _R_CHAR:
            out.append(pc)
        elif op == _R_SPLIT:
            stack.append(b)
            stack.append(a)
        elif op == _R_JMP:
            stack.append(a)
        elif op == _R_ASSERT:
            if _regex_assert(a, b, text, pos):
                stack.append(pc + 1)
        else:
            return True
    return False


def _regex_assert(kind: int, multiline: bool, text: str, pos: int) -> bool:
    if kind == _AT_BEGIN:
        return pos == 0 or (multiline and text[pos - 1] == "\n")
    if kind == _AT_BEGIN_TEXT:
        return pos == 0
    if kind == _AT_END:
        return pos == len(text) or (multiline and text[pos] == "\n")
    if kind == _AT_END_TEXT:
        return pos == len(text)
    before = pos > 0 and _ascii_word(text[pos - 1])
    after = pos < len(text) and _ascii_word(text[pos])
    return (before != after) == (kind == _AT_WORD)


@functools.lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> _Regex:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ExpressionError(f"regular expression too long (more than {MAX_PATTERN_CHARS} characters)")
    try:
        parsed = _re_parser.parse(pattern, 0)
    except (re.error, RecursionError, OverflowError, ValueError, TypeError) as err:
        raise ExpressionError(f"invalid regular expression {pattern!r}: {err}") from None
    flags = parsed.state.flags
    items = list(parsed)
    if not flags & re.IGNORECASE and all(op == _re_consts.LITERAL for op, _arg in items):
        return _Regex((), "".join(chr(arg) for _op, arg in items))
    compiler = _RegexCompiler(pattern)
    compiler.sequence(items, flags, 0)
    compiler.emit(_R_MATCH)
    return _Regex(tuple((op, a, b) for op, a, b in compiler.program), None)


# --------------------------------------------------------------------------------------------------------
# Operators


def _negate(value: Any) -> Any:
    if _is_int(value):
        return _check_int(-value)
    if isinstance(value, float):
        return -value
    raise ExpressionError(f"cannot negate {_type_name(value)}")


def _plus(value: Any) -> Any:
    if _is_number(value):
        return value
    raise ExpressionError(f"unary + needs a number, got {_type_name(value)}")


def _add(a: Any, b: Any) -> Any:
    if _is_number(a) and _is_number(b):
        result = a + b
        return _check_int(result) if isinstance(result, int) else result
    if isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_STRING_CHARS:
            raise ExpressionError(f"string too long (more than {MAX_STRING_CHARS} characters)")
        return a + b
    raise ExpressionError(f"cannot add {_type_name(a)} and {_type_name(b)}")


def _arith(verb: str, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if _is_number(a) and _is_number(b):
            result = op(a, b)
            return _check_int(result) if isinstance(result, int) else result
        raise ExpressionError(f"cannot {verb} {_type_name(a)} and {_type_name(b)}")

    return run


def _divide(a: Any, b: Any) -> float:
    """Always a float, with IEEE results for a zero divisor, like Go's float64 division."""
    if not (_is_number(a) and _is_number(b)):
        raise ExpressionError(f"cannot divide {_type_name(a)} by {_type_name(b)}")
    x, y = float(a), float(b)
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _modulo(a: Any, b: Any) -> int:
    if not (_is_int(a) and _is_int(b)):
        raise ExpressionError(f"% needs integers, got {_type_name(a)} and {_type_name(b)}")
    if b == 0:
        raise ExpressionError("integer divide by zero")
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


def _power(a: Any, b: Any) -> float:
    """Always a float (Go's ``math.Pow``): overflow gives ±Inf, never a huge integer."""
    if not (_is_number(a) and _is_number(b)):
        raise ExpressionError(f"cannot raise {_type_name(a)} to {_type_name(b)}")
    x, y = float(a), float(b)
    odd = y.is_integer() and abs(y) < 2**53 and int(y) % 2 == 1
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and odd else math.inf
    except ValueError:
        if x == 0:
            return math.copysign(math.inf, x) if odd else math.inf
        return math.nan


def _range(a: Any, b: Any, budget: _Budget) -> list[int]:
    if not (_is_int(a) and _is_int(b)):
        raise ExpressionError(f".. needs integers, got {_type_name(a)} and {_type_name(b)}")
    size = b - a + 1
    if size <= 0:
        return []
    _check_items(size)
    budget.spend(size)
    return list(range(a, b + 1))


def _contains_item(collection: Any, needle: Any, budget: _Budget) -> bool:
    """expr's ``in``: an element of an array, a key of a map; nil contains nothing."""
    if collection is None:
        return False
    if _is_array(collection):
        budget.spend(len(collection))
        return any(_equal(item, needle, budget) for item in collection)
    if isinstance(collection, Mapping):
        if not _hashable_key(needle):
            raise ExpressionError(f"a map key cannot be {_type_name(needle)}")
        return needle in collection
    if isinstance(collection, str):
        raise ExpressionError('operator "in" not defined on string (use contains for substrings)')
    raise ExpressionError(f'operator "in" not defined on {_type_name(collection)}')


def _string_operator(name: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any, _Budget], bool]:
    def run(a: Any, b: Any, budget: _Budget) -> bool:
        if not (isinstance(a, str) and isinstance(b, str)):
            raise ExpressionError(f"{name} needs strings, got {_type_name(a)} and {_type_name(b)}")
        budget.spend(len(a) // 64 + 1)
        return test(a, b)

    return run


def _matches(text: Any, pattern: Any, budget: _Budget) -> bool:
    if not (isinstance(text, str) and isinstance(pattern, str)):
        raise ExpressionError(f"matches needs strings, got {_type_name(text)} and {_type_name(pattern)}")
    return _compile_regex(pattern).search(text, budget)


def _to_index(key: Any, length: int) -> int:
    if _is_int(key):
        index = key
    elif isinstance(key, float) and math.isfinite(key):
        index = int(key)
    else:
        raise ExpressionError(f"cannot index array with {_type_name(key)}")
    if not -length <= index < length:
        raise ExpressionError(f"index {index} out of range (len {length})")
    return index if index >= 0 else index + length


def _fetch(container: Any, key: Any) -> Any:
    """``a.b`` and ``a[b]``: a map key (missing: nil), an array or string element (negative: from the end)."""
    if isinstance(container, Mapping):
        if not _hashable_key(key):
            raise ExpressionError(f"a map key cannot be {_type_name(key)}")
        return container.get(key)
    if _is_array(container) or isinstance(container, str):
        return container[_to_index(key, len(container))]
    shown = key if isinstance(key, str) else _type_name(key)
    raise ExpressionError(f"cannot fetch {shown} from {_type_name(container)}")


def _slice_bound(value: Any, default: int, length: int) -> int:
    if value is None:
        return default
    if _is_int(value):
        bound = value
    elif isinstance(value, float) and math.isfinite(value):
        bound = int(value)
    else:
        raise ExpressionError(f"slice bounds must be integers, got {_type_name(value)}")
    if bound < 0:
        bound += length
    return min(max(bound, 0), length)


def _slice(container: Any, start: Any, stop: Any, budget: _Budget) -> Any:
    if not (_is_array(container) or isinstance(container, str)):
        raise ExpressionError(f"cannot slice {_type_name(container)}")
    length = len(container)
    low = _slice_bound(start, 0, length)
    high = max(low, _slice_bound(stop, length, length))
    if isinstance(container, str):
        budget.spend((high - low) >> 6)
        return container[low:high]
    budget.spend(high - low)
    return list(container[low:high])


def _truth(value: Any, what: str) -> bool:
    if value is True or value is False:
        return value
    raise ExpressionError(f"{what} must be a bool, got {_type_name(value)}")


# --------------------------------------------------------------------------------------------------------
# Functions: Argo's environment and expr's builtins (each checks its arguments; none can grow unbounded)


def _number_arg(name: str, value: Any) -> int | float:
    if not _is_number(value):
        raise ExpressionError(f"{name}() expects a number, got {_type_name(value)}")
    return value


def _string_arg(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{name}() expects a string, got {_type_name(value)}")
    return value


def _text_arg(name: str, value: Any, budget: _Budget) -> str:
    """A string argument, charged to the budget by its length (every string function reads it whole)."""
    text = _string_arg(name, value)
    budget.spend(len(text) >> 6)
    return text


def _array_arg(name: str, value: Any) -> Sequence[Any]:
    if not _is_array(value):
        raise ExpressionError(f"{name}() expects an array, got {_type_name(value)}")
    return value


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)


def _int_from(name: str, value: Any) -> int:
    if _is_int(value):
        return _check_int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError(f"{name}() cannot convert {_go_float(value)} to an integer")
        return _check_int(int(value))
    if isinstance(value, str):
        if len(value) > 30 or not _INT_TEXT.fullmatch(value):
            raise ExpressionError(f"{name}() cannot parse {value[:40]!r} as an integer")
        return _check_int(int(value))
    raise ExpressionError(f"{name}() cannot convert {_type_name(value)} to an integer")


def _float_from(name: str, value: Any) -> float:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        if len(value) > 400 or not _FLOAT_TEXT.fullmatch(value):
            raise ExpressionError(f"{name}() cannot parse {value[:40]!r} as a number")
        return float(value)
    raise ExpressionError(f"{name}() cannot convert {_type_name(value)} to a float")


def _fn_as_int(budget: _Budget, value: Any) -> int:
    return _int_from("asInt", value)


def _fn_as_float(budget: _Budget, value: Any) -> float:
    return _float_from("asFloat", value)


def _fn_is_nan(budget: _Budget, value: Any) -> bool:
    return isinstance(_number_arg("isNaN", value), float) and math.isnan(value)


def _fn_is_inf(budget: _Budget, value: Any) -> bool:
    return isinstance(_number_arg("isInf", value), float) and math.isinf(value)


def _fn_is_nil(budget: _Budget, value: Any) -> bool:
    return value is None


def _fn_default(budget: _Budget, value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def _fn_len(budget: _Budget, value: Any) -> int:
    if isinstance(value, str | Mapping) or _is_array(value):
        return len(value)
    raise ExpressionError(f"invalid argument for len (type {_type_name(value)})")


def _fn_type(budget: _Budget, value: Any) -> str:
    return _type_name(value)


def _fn_abs(budget: _Budget, value: Any) -> int | float:
    number = _number_arg("abs", value)
    return _check_int(abs(number)) if isinstance(number, int) else abs(number)


def _rounding(name: str, op: Callable[[float], float]) -> Callable[[_Budget, Any], float]:
    def run(budget: _Budget, value: Any) -> float:
        number = float(_number_arg(name, value))
        return number if not math.isfinite(number) else float(op(number))

    return run


def _round_half_away(value: float) -> float:
    whole = float(math.trunc(value))
    if abs(value - whole) >= 0.5:
        whole += math.copysign(1.0, value)
    return whole


def _fn_int(budget: _Budget, value: Any) -> int:
    return _int_from("int", value)


def _fn_float(budget: _Budget, value: Any) -> float:
    return _float_from("float", value)


def _fn_string(budget: _Budget, value: Any) -> str:
    return _go_format(value, budget)


def _fn_trim(budget: _Budget, value: Any, chars: Any = None) -> str:
    text = _text_arg("trim", value, budget)
    return text.strip() if chars is None else text.strip(_string_arg("trim", chars))


def _fn_trim_prefix(budget: _Budget, value: Any, prefix: Any = " ") -> str:
    return _text_arg("trimPrefix", value, budget).removeprefix(_string_arg("trimPrefix", prefix))


def _fn_trim_suffix(budget: _Budget, value: Any, suffix: Any = " ") -> str:
    return _text_arg("trimSuffix", value, budget).removesuffix(_string_arg("trimSuffix", suffix))


def _fn_upper(budget: _Budget, value: Any) -> str:
    return _check_string(_text_arg("upper", value, budget).upper())


def _fn_lower(budget: _Budget, value: Any) -> str:
    return _check_string(_text_arg("lower", value, budget).lower())


def _fn_split(budget: _Budget, value: Any, separator: Any, limit: Any = -1) -> list[str]:
    text, sep = _string_arg("split", value), _string_arg("split", separator)
    if not _is_int(limit):
        raise ExpressionError(f"split() expects an integer limit, got {_type_name(limit)}")
    budget.spend(len(text) // 16 + 1)
    if limit == 0:
        return []
    if sep == "":
        parts = list(text) if limit < 0 or limit > len(text) else [*text[: limit - 1], text[limit - 1 :]]
    else:
        parts = text.split(sep) if limit < 0 else text.split(sep, limit - 1)
    _check_items(len(parts))
    return parts


def _fn_replace(budget: _Budget, value: Any, old: Any, new: Any) -> str:
    text = _string_arg("replace", value)
    old_text, new_text = _string_arg("replace", old), _string_arg("replace", new)
    count = len(text) + 1 if old_text == "" else text.count(old_text)
    if len(text) + count * (len(new_text) - len(old_text)) > MAX_STRING_CHARS:
        raise ExpressionError(f"string too long (more than {MAX_STRING_CHARS} characters)")
    budget.spend(len(text) // 16 + 1)
    if old_text == "":
        return new_text + new_text.join(text) + new_text if text else new_text
    return text.replace(old_text, new_text)


def _fn_repeat(budget: _Budget, value: Any, times: Any) -> str:
    text = _string_arg("repeat", value)
    if not _is_int(times) or times < 0:
        raise ExpressionError("repeat() expects a non-negative integer count")
    if len(text) * times > MAX_STRING_CHARS:
        raise ExpressionError(f"string too long (more than {MAX_STRING_CHARS} characters)")
    budget.spend(len(text) * times // 16 + 1)
    return text * times


def _fn_join(budget: _Budget, value: Any, separator: Any = "") -> str:
    items = _array_arg("join", value)
    sep = _string_arg("join", separator)
    budget.spend(len(items))
    if not all(isinstance(item, str) for item in items):
        raise ExpressionError("join() expects an array of strings")
    if sum(len(item) for item in items) + len(sep) * len(items) > MAX_STRING_CHARS:
        raise ExpressionError(f"string too long (more than {MAX_STRING_CHARS} characters)")
    return sep.join(items)


def _fn_index_of(budget: _Budget, value: Any, sub: Any) -> int:
    return _text_arg("indexOf", value, budget).find(_string_arg("indexOf", sub))


def _fn_last_index_of(budget: _Budget, value: Any, sub: Any) -> int:
    return _text_arg("lastIndexOf", value, budget).rfind(_string_arg("lastIndexOf", sub))


def _fn_has_prefix(budget: _Budget, value: Any, prefix: Any) -> bool:
    return _string_arg("hasPrefix", value).startswith(_string_arg("hasPrefix", prefix))


def _fn_has_suffix(budget: _Budget, value: Any, suffix: Any) -> bool:
    return _string_arg("hasSuffix", value).endswith(_string_arg("hasSuffix", suffix))


def _numbers(name: str, args: Sequence[Any], budget: _Budget) -> list[int | float]:
    """The numbers in ``args``, arrays flattened (expr's max/min/mean/median accept both)."""
    out: list[int | float] = []
    stack = [iter(args)]
    while stack:
        for value in stack[-1]:
            if _is_array(value):
                if len(stack) > MAX_DEPTH:
                    raise ExpressionError(f"{name}() argument nests too deeply")
                budget.spend(len(value))
                stack.append(iter(value))
                break
            if not _is_number(value):
                raise ExpressionError(f"invalid argument for {name} (type {_type_name(value)})")
            out.append(value)
        else:
            stack.pop()
    return out


def _extreme(name: str, pick: Callable[[Any, Any], bool]) -> Callable[..., Any]:
    def run(budget: _Budget, *args: Any) -> Any:
        best: Any = None
        for value in _numbers(name, args, budget):
            if best is None or pick(value, best):
                best = value
        return best

    return run


def _fn_mean(budget: _Budget, *args: Any) -> float:
    values = _numbers("mean", args, budget)
    return math.fsum(values) / len(values) if values else 0.0


def _fn_median(budget: _Budget, *args: Any) -> float:
    values = sorted(_numbers("median", args, budget))
    if not values:
        return 0.0
    middle = len(values) // 2
    if len(values) % 2:
        return float(values[middle])
    return (values[middle - 1] + values[middle]) / 2


def _fn_first(budget: _Budget, value: Any) -> Any:
    return value[0] if (_is_array(value) or isinstance(value, str)) and value else None


def _fn_last(budget: _Budget, value: Any) -> Any:
    return value[-1] if (_is_array(value) or isinstance(value, str)) and value else None


def _fn_get(budget: _Budget, value: Any, key: Any) -> Any:
    try:
        return _fetch(value, key)
    except ExpressionError:
        return None


def _fn_take(budget: _Budget, value: Any, count: Any) -> list[Any]:
    items = _array_arg("take", value)
    if not _is_int(count):
        raise ExpressionError(f"take() expects an integer count, got {_type_name(count)}")
    budget.spend(min(max(count, 0), len(items)))
    return list(items[: max(count, 0)])


def _fn_keys(budget: _Budget, value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        raise ExpressionError(f"keys() expects a map, got {_type_name(value)}")
    budget.spend(len(value))
    return list(value.keys())


def _fn_values(budget: _Budget, value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        raise ExpressionError(f"values() expects a map, got {_type_name(value)}")
    budget.spend(len(value))
    return list(value.values())


def _fn_reverse(budget: _Budget, value: Any) -> list[Any]:
    items = _array_arg("reverse", value)
    budget.spend(len(items))
    return list(reversed(items))


def _fn_uniq(budget: _Budget, value: Any) -> list[Any]:
    items = _array_arg("uniq", value)
    budget.spend(len(items))
    seen: set[tuple[str, Any]] = set()
    out = []
    for item in items:
        if not _hashable_key(item) and not isinstance(item, bool):
            raise ExpressionError(f"uniq() cannot compare {_type_name(item)} items")
        key = (_type_name(item), item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _fn_concat(budget: _Budget, *args: Any) -> list[Any]:
    out: list[Any] = []
    for value in args:
        items = _array_arg("concat", value)
        _check_items(len(out) + len(items))
        budget.spend(len(items))
        out.extend(items)
    return out


def _fn_flatten(budget: _Budget, value: Any) -> list[Any]:
    out: list[Any] = []
    stack = [iter(_array_arg("flatten", value))]
    while stack:
        for item in stack[-1]:
            budget.spend(1)
            if _is_array(item):
                if len(stack) > MAX_DEPTH:
                    raise ExpressionError("flatten() argument nests too deeply")
                stack.append(iter(item))
                break
            out.append(item)
            _check_items(len(out))
        else:
            stack.pop()
    return out


def _sortable(name: str, keys: Sequence[Any]) -> None:
    if all(_is_number(key) for key in keys) or all(isinstance(key, str) for key in keys):
        return
    raise ExpressionError(f"{name}() can only sort numbers or strings")


def _order(name: str, order: Any) -> bool:
    if order not in ("asc", "desc"):
        raise ExpressionError(f'{name}() order must be "asc" or "desc"')
    return bool(order == "desc")


def _fn_sort(budget: _Budget, value: Any, order: Any = "asc") -> list[Any]:
    items = _array_arg("sort", value)
    budget.spend(len(items))
    _sortable("sort", items)
    return sorted(items, reverse=_order("sort", order))


@dataclasses.dataclass(frozen=True, slots=True)
class _Function:
    impl: Callable[..., Any]
    min_args: int
    max_args: int  # -1: any number
    kind: str | None  # static result kind, when known


_FUNCTIONS: dict[str, _Function] = {
    # Argo Rollouts' environment (utils/evaluate/evaluate.go)
    "asInt": _Function(_fn_as_int, 1, 1, "int"),
    "asFloat": _Function(_fn_as_float, 1, 1, "float"),
    "isNaN": _Function(_fn_is_nan, 1, 1, "bool"),
    "isInf": _Function(_fn_is_inf, 1, 1, "bool"),
    "isNil": _Function(_fn_is_nil, 1, 1, "bool"),
    "default": _Function(_fn_default, 2, 2, None),
    # expr builtins
    "len": _Function(_fn_len, 1, 1, "int"),
    "type": _Function(_fn_type, 1, 1, "string"),
    "abs": _Function(_fn_abs, 1, 1, None),
    "ceil": _Function(_rounding("ceil", math.ceil), 1, 1, "float"),
    "floor": _Function(_rounding("floor", math.floor), 1, 1, "float"),
    "round": _Function(_rounding("round", _round_half_away), 1, 1, "float"),
    "int": _Function(_fn_int, 1, 1, "int"),
    "float": _Function(_fn_float, 1, 1, "float"),
    "string": _Function(_fn_string, 1, 1, "string"),
    "trim": _Function(_fn_trim, 1, 2, "string"),
    "trimPrefix": _Function(_fn_trim_prefix, 1, 2, "string"),
    "trimSuffix": _Function(_fn_trim_suffix, 1, 2, "string"),
    "upper": _Function(_fn_upper, 1, 1, "string"),
    "lower": _Function(_fn_lower, 1, 1, "string"),
    "split": _Function(_fn_split, 2, 3, "array"),
    "replace": _Function(_fn_replace, 3, 3, "string"),
    "repeat": _Function(_fn_repeat, 2, 2, "string"),
    "join": _Function(_fn_join, 1, 2, "string"),
    "indexOf": _Function(_fn_index_of, 2, 2, "int"),
    "lastIndexOf": _Function(_fn_last_index_of, 2, 2, "int"),
    "hasPrefix": _Function(_fn_has_prefix, 2, 2, "bool"),
    "hasSuffix": _Function(_fn_has_suffix, 2, 2, "bool"),
    "max": _Function(_extreme("max", lambda a, b: a > b), 1, -1, None),
    "min": _Function(_extreme("min", lambda a, b: a < b), 1, -1, None),
    "mean": _Function(_fn_mean, 1, -1, "float"),
    "median": _Function(_fn_median, 1, -1, "float"),
    "first": _Function(_fn_first, 1, 1, None),
    "last": _Function(_fn_last, 1, 1, None),
    "get": _Function(_fn_get, 2, 2, None),
    "take": _Function(_fn_take, 2, 2, "array"),
    "keys": _Function(_fn_keys, 1, 1, "array"),
    "values": _Function(_fn_values, 1, 1, "array"),
    "reverse": _Function(_fn_reverse, 1, 1, "array"),
    "uniq": _Function(_fn_uniq, 1, 1, "array"),
    "concat": _Function(_fn_concat, 1, -1, "array"),
    "flatten": _Function(_fn_flatten, 1, 1, "array"),
    "sort": _Function(_fn_sort, 1, 2, "array"),
}
# expr builtins deliberately left out: time (now, date, duration, timezone), JSON/base64, bit operations.
_UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "now",
        "date",
        "duration",
        "timezone",
        "toJSON",
        "fromJSON",
        "toBase64",
        "fromBase64",
        "toPairs",
        "fromPairs",
        "splitAfter",
        "bitand",
        "bitor",
        "bitxor",
        "bitnand",
        "bitnot",
        "bitshl",
        "bitshr",
        "bitushr",
    }
)


# Predicate builtins: each builder gets the array closure, the predicate closure (or None when the
# optional predicate is absent), the optional third argument's closure, and the predicate's weight (its
# number of nodes: what one iteration costs from the step budget).

_Builder = Callable[[_Fn, _Fn | None, _Fn | None, int], _Fn]


def _predicate_loop(name: str, array_fn: _Fn, scope: _Scope, weight: int) -> tuple[Sequence[Any], _Scope]:
    """The array to iterate, charged up front: each item costs the size of the predicate's tree."""
    items = _array_arg(name, array_fn(scope))
    scope.budget.spend(len(items) * weight)
    return items, scope.child()


def _quantifier(name: str, *, want: bool, stop: bool) -> _Builder:
    """all/any/none: stop at the first item whose predicate is ``want``, answering ``stop``."""

    def build(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
        assert pred is not None

        def run(scope: _Scope) -> bool:
            items, sub = _predicate_loop(name, array_fn, scope, weight)
            for index, item in enumerate(items):
                sub.item, sub.index = item, index
                result = pred(sub)
                if result is want:
                    return stop
                if result is not (not want):
                    _truth(result, f"the predicate of {name}()")
            return not stop

        return run

    return build


def _build_one(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
    assert pred is not None

    def run(scope: _Scope) -> bool:
        items, sub = _predicate_loop("one", array_fn, scope, weight)
        found = 0
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            if _truth(pred(sub), "the predicate of one()"):
                found += 1
                if found > 1:
                    return False
        return found == 1

    return run


def _build_filter(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
    assert pred is not None

    def run(scope: _Scope) -> list[Any]:
        items, sub = _predicate_loop("filter", array_fn, scope, weight)
        out = []
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            if _truth(pred(sub), "the predicate of filter()"):
                out.append(item)
        return out

    return run


def _build_map(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
    assert pred is not None

    def run(scope: _Scope) -> list[Any]:
        items, sub = _predicate_loop("map", array_fn, scope, weight)
        out = []
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            out.append(pred(sub))
        return out

    return run


def _build_count(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
    def run(scope: _Scope) -> int:
        items, sub = _predicate_loop("count", array_fn, scope, weight)
        total = 0
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            value = item if pred is None else pred(sub)
            if _truth(value, "an element counted by count()" if pred is None else "the predicate of count()"):
                total += 1
        return total

    return run


def _build_sum(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
    def run(scope: _Scope) -> int | float:
        items, sub = _predicate_loop("sum", array_fn, scope, weight)
        total: int | float = 0
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            total = _add(total, _number_arg("sum", item if pred is None else pred(sub)))
        return total

    return run


def _finder(name: str, *, last: bool, want_index: bool) -> _Builder:
    def build(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
        assert pred is not None

        def run(scope: _Scope) -> Any:
            items, sub = _predicate_loop(name, array_fn, scope, weight)
            order = range(len(items) - 1, -1, -1) if last else range(len(items))
            for index in order:
                sub.item, sub.index = items[index], index
                if _truth(pred(sub), f"the predicate of {name}()"):
                    return index if want_index else items[index]
            return -1 if want_index else None

        return run

    return build


def _build_group_by(array_fn: _Fn, pred: _Fn | None, _extra: _Fn | None, weight: int) -> _Fn:
    assert pred is not None

    def run(scope: _Scope) -> dict[Any, list[Any]]:
        items, sub = _predicate_loop("groupBy", array_fn, scope, weight)
        groups: dict[Any, list[Any]] = {}
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            key = pred(sub)
            if not _hashable_key(key):
                raise ExpressionError(f"groupBy() cannot group by {_type_name(key)}")
            groups.setdefault(key, []).append(item)
        return groups

    return run


def _build_sort_by(array_fn: _Fn, pred: _Fn | None, extra: _Fn | None, weight: int) -> _Fn:
    assert pred is not None

    def run(scope: _Scope) -> list[Any]:
        items, sub = _predicate_loop("sortBy", array_fn, scope, weight)
        keys = []
        for index, item in enumerate(items):
            sub.item, sub.index = item, index
            keys.append(pred(sub))
        _sortable("sortBy", keys)
        descending = _order("sortBy", "asc" if extra is None else extra(scope))
        order = sorted(range(len(items)), key=keys.__getitem__, reverse=descending)
        return [items[index] for index in order]

    return run


def _build_reduce(array_fn: _Fn, pred: _Fn | None, extra: _Fn | None, weight: int) -> _Fn:
    assert pred is not None

    def run(scope: _Scope) -> Any:
        items, sub = _predicate_loop("reduce", array_fn, scope, weight)
        if extra is not None:
            acc, start = extra(scope), 0
        elif items:
            acc, start = items[0], 1
        else:
            raise ExpressionError("reduce() of an empty array needs an initial value")
        for index in range(start, len(items)):
            sub.item, sub.index, sub.acc = items[index], index, acc
            acc = pred(sub)
        return acc

    return run


_PREDICATE_BUILDERS: dict[str, tuple[_Builder, str | None]] = {
    "all": (_quantifier("all", want=False, stop=False), "bool"),
    "any": (_quantifier("any", want=True, stop=True), "bool"),
    "none": (_quantifier("none", want=True, stop=False), "bool"),
    "one": (_build_one, "bool"),
    "filter": (_build_filter, "array"),
    "map": (_build_map, "array"),
    "count": (_build_count, "int"),
    "sum": (_build_sum, None),
    "find": (_finder("find", last=False, want_index=False), None),
    "findIndex": (_finder("findIndex", last=False, want_index=True), "int"),
    "findLast": (_finder("findLast", last=True, want_index=False), None),
    "findLastIndex": (_finder("findLastIndex", last=True, want_index=True), "int"),
    "groupBy": (_build_group_by, "map"),
    "sortBy": (_build_sort_by, "array"),
    "reduce": (_build_reduce, None),
}


# --------------------------------------------------------------------------------------------------------
# Compiler: tree -> closures, with expr's compile-time type checks where both operand kinds are known

_NUMERIC = frozenset({"int", "float"})
_Compiled = tuple[_Fn, str | None]


def _const_kind(value: Any) -> str | None:
    name = _type_name(value)
    return name if name in ("nil", "bool", "int", "float", "string") else None


def _located(fn: _Fn, where: str) -> _Fn:
    def run(scope: _Scope) -> Any:
        try:
            return fn(scope)
        except ExpressionError as err:
            _locate(err, where)
            raise

    return run


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source
        self.free: set[str] = set()
        self.bound: list[str] = []
        self.reduce_depth = 0

    def span(self, node: _Node) -> str:
        return self.source[node.start : node.end].strip() or self.source.strip()

    def error(self, message: str, node: _Node) -> ExpressionError:
        return ExpressionError(message, where=self.span(node))

    def compile(self, node: _Node) -> _Compiled:
        method: Callable[[_Node], _Compiled] = getattr(self, "c_" + node.kind)
        return method(node)

    # -- leaves

    def c_const(self, node: _Node) -> _Compiled:
        value = node.value
        return (lambda scope: value), _const_kind(value)

    def c_name(self, node: _Node) -> _Compiled:
        name: str = node.value
        if name.startswith("_"):
            raise self.error(f"names beginning with '_' are not allowed: '{name}'", node)
        if name == "$env":
            return (lambda scope: scope.names), "map"
        if name not in self.bound:
            self.free.add(name)

        def lookup(scope: _Scope) -> Any:
            try:
                return scope.names[name]
            except KeyError:
                raise ExpressionError(f"unknown name '{name}'") from None

        return lookup, None

    def c_pointer(self, node: _Node) -> _Compiled:
        if node.value == "":
            return (lambda scope: scope.item), None
        if node.value == "index":
            return (lambda scope: scope.index), "int"
        if node.value == "acc" and self.reduce_depth:
            return (lambda scope: scope.acc), None
        raise self.error(f"unknown pointer #{node.value}", node)

    def c_absent(self, node: _Node) -> _Compiled:
        return (lambda scope: None), "nil"

    # -- containers

    def c_array(self, node: _Node) -> _Compiled:
        fns = [self.compile(arg)[0] for arg in node.args]
        return (lambda scope: [fn(scope) for fn in fns]), "array"

    def c_map(self, node: _Node) -> _Compiled:
        pairs = [
            (self.compile(k)[0], self.compile(v)[0])
            for k, v in zip(node.args[::2], node.args[1::2], strict=True)
        ]
        where = self.span(node)

        def build(scope: _Scope) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for key_fn, value_fn in pairs:
                key = key_fn(scope)
                if not _hashable_key(key):
                    raise ExpressionError(f"a map key cannot be {_type_name(key)}", where=where)
                out[key] = value_fn(scope)
            return out

        return build, "map"

    # -- operators

    def c_unary(self, node: _Node) -> _Compiled:
        operand, kind = self.compile(node.args[0])
        where = self.span(node)
        if node.value == "not":
            if kind not in (None, "bool"):
                raise self.error(f"operator ! needs a bool, got {kind}", node)

            def negate(scope: _Scope) -> bool:
                value = operand(scope)
                if value is True:
                    return False
                if value is False:
                    return True
                raise ExpressionError(f"operator ! needs a bool, got {_type_name(value)}", where=where)

            return negate, "bool"
        if kind is not None and kind not in _NUMERIC:
            raise self.error(f"unary {node.value} needs a number, got {kind}", node)
        op = _negate if node.value == "-" else _plus

        def arithmetic(scope: _Scope) -> Any:
            try:
                return op(operand(scope))
            except ExpressionError as err:
                _locate(err, where)
                raise

        return arithmetic, kind

    def c_binary(self, node: _Node) -> _Compiled:
        op: str = node.value
        left, lkind = self.compile(node.args[0])
        right, rkind = self.compile(node.args[1])
        if op in ("&&", "and", "||", "or"):
            return self.logical(node, left, lkind, right, rkind)
        self.check_kinds(node, op, lkind, rkind)
        where = self.span(node)
        if op in ("==", "!="):
            return self.equality(op, left, right), "bool"
        if op in _CHAINED_COMPARISONS:
            return self.comparison(op, left, right, where), "bool"
        if op == "??":

            def coalesce(scope: _Scope) -> Any:
                value = left(scope)
                return right(scope) if value is None else value

            return coalesce, lkind if lkind == rkind else None
        with_budget = self.budgeted_operator(op)
        if with_budget is not None:

            def run_budgeted(scope: _Scope) -> Any:
                try:
                    return with_budget(left(scope), right(scope), scope.budget)
                except ExpressionError as err:
                    _locate(err, where)
                    raise

            return run_budgeted, "array" if op == ".." else "bool"
        impl = _ARITHMETIC[op]
        if op == "+":
            return self.plus(left, right, where), self.arithmetic_kind(op, lkind, rkind)

        def arithmetic(scope: _Scope) -> Any:
            try:
                return impl(left(scope), right(scope))
            except ExpressionError as err:
                _locate(err, where)
                raise

        return arithmetic, self.arithmetic_kind(op, lkind, rkind)

    @staticmethod
    def plus(left: _Fn, right: _Fn, where: str) -> _Fn:
        """``+`` adds numbers or joins strings; a joined string is charged by its length."""

        def run(scope: _Scope) -> Any:
            try:
                value = _add(left(scope), right(scope))
            except ExpressionError as err:
                _locate(err, where)
                raise
            if type(value) is str:
                scope.budget.spend(len(value) >> 6)
            return value

        return run

    def budgeted_operator(self, op: str) -> Callable[[Any, Any, _Budget], Any] | None:
        if op == "in":
            return lambda needle, collection, budget: _contains_item(collection, needle, budget)
        if op == "..":
            return _range
        return _STRING_OPERATORS.get(op)

    def check_kinds(self, node: _Node, op: str, lkind: str | None, rkind: str | None) -> None:
        """expr refuses, at compile time, operators whose operand types are both known and incompatible."""
        if lkind is None or rkind is None:
            return
        if op in ("==", "!="):
            if "nil" in (lkind, rkind) or lkind == rkind or {lkind, rkind} <= _NUMERIC:
                return
            raise self.error(f"invalid operation: {op} (mismatched types {lkind} and {rkind})", node)
        if op in _CHAINED_COMPARISONS:
            if {lkind, rkind} <= _NUMERIC or lkind == rkind == "string":
                return
            raise self.error(f"cannot compare {lkind} and {rkind} with {op}", node)
        if op == "in" and rkind == "string":
            raise self.error('operator "in" not defined on string (use contains for substrings)', node)
        if op in _STRING_OPERATORS and (lkind != "string" or rkind != "string"):
            raise self.error(f"{op} needs strings, got {lkind} and {rkind}", node)
        if op in ("-", "*", "/", "%", "**", "^") and not {lkind, rkind} <= _NUMERIC:
            raise self.error(f"invalid operation: {op} on {lkind} and {rkind}", node)
        if op == "+" and not ({lkind, rkind} <= _NUMERIC or lkind == rkind == "string"):
            raise self.error(f"cannot add {lkind} and {rkind}", node)

    @staticmethod
    def arithmetic_kind(op: str, lkind: str | None, rkind: str | None) -> str | None:
        if op in ("/", "**", "^"):
            return "float"
        if op == "%":
            return "int"
        if lkind == rkind and lkind in ("int", "float", "string"):
            return lkind
        if {lkind, rkind} == _NUMERIC:
            return "float"
        return None

    def logical(self, node: _Node, left: _Fn, lkind: str | None, right: _Fn, rkind: str | None) -> _Compiled:
        op = "&&" if node.value in ("&&", "and") else "||"
        for kind in (lkind, rkind):
            if kind not in (None, "bool"):
                raise self.error(f"operator {op} needs bools, got {kind}", node)
        where = self.span(node)
        short = op == "||"

        def run(scope: _Scope) -> bool:
            value = left(scope)
            if value is short:
                return short
            if value is not (not short):
                raise ExpressionError(f"operator {op} needs bools, got {_type_name(value)}", where=where)
            value = right(scope)
            if value is True or value is False:
                return value
            raise ExpressionError(f"operator {op} needs bools, got {_type_name(value)}", where=where)

        return run, "bool"

    @staticmethod
    def equality(op: str, left: _Fn, right: _Fn) -> _Fn:
        if op == "==":
            return lambda scope: _equal(left(scope), right(scope), scope.budget)
        return lambda scope: not _equal(left(scope), right(scope), scope.budget)

    @staticmethod
    def comparison(op: str, left: _Fn, right: _Fn, where: str) -> _Fn:
        compare = _FAST_COMPARE[op]

        def run(scope: _Scope) -> bool:
            a = left(scope)
            b = right(scope)
            ta, tb = type(a), type(b)
            if (ta is float or ta is int) and (tb is float or tb is int):
                return compare(a, b)
            try:
                return _compare(op, a, b, scope.budget)
            except ExpressionError as err:
                _locate(err, where)
                raise

        return run

    def c_cond(self, node: _Node) -> _Compiled:
        test, kind = self.compile(node.args[0])
        if kind not in (None, "bool"):
            raise self.error(f"a condition must be a bool, got {kind}", node.args[0])
        yes, ykind = self.compile(node.args[1])
        no, nkind = self.compile(node.args[2])
        where = self.span(node.args[0])

        def run(scope: _Scope) -> Any:
            value = test(scope)
            if value is True:
                return yes(scope)
            if value is False:
                return no(scope)
            raise ExpressionError(f"a condition must be a bool, got {_type_name(value)}", where=where)

        return run, ykind if ykind == nkind else None

    # -- access

    def c_member(self, node: _Node) -> _Compiled:
        target, _kind = self.compile(node.args[0])
        key_fn, _key_kind = self.compile(node.args[1])
        optional: bool = node.value
        where = self.span(node)

        def fetch(scope: _Scope) -> Any:
            container = target(scope)
            key = key_fn(scope)
            if type(container) is dict and type(key) is str:
                return container.get(key)
            if type(container) is list and type(key) is int and -len(container) <= key < len(container):
                return container[key]
            if container is None and optional:
                raise _NilChain
            try:
                return _fetch(container, key)
            except ExpressionError as err:
                _locate(err, where)
                raise

        return fetch, None

    def c_slice(self, node: _Node) -> _Compiled:
        target, kind = self.compile(node.args[0])
        start, _ = self.compile(node.args[1])
        stop, _ = self.compile(node.args[2])
        where = self.span(node)

        def run(scope: _Scope) -> Any:
            try:
                return _slice(target(scope), start(scope), stop(scope), scope.budget)
            except ExpressionError as err:
                _locate(err, where)
                raise

        return run, kind if kind in ("array", "string") else None

    def c_chain(self, node: _Node) -> _Compiled:
        inner, kind = self.compile(node.args[0])

        def run(scope: _Scope) -> Any:
            try:
                return inner(scope)
            except _NilChain:
                return None

        return run, kind

    # -- structure

    def c_let(self, node: _Node) -> _Compiled:
        name: str = node.value
        if name.startswith("_") or name == "$env":
            raise self.error(f"cannot declare a variable named '{name}'", node)
        value_fn, _kind = self.compile(node.args[0])
        self.bound.append(name)
        try:
            body, kind = self.compile(node.args[1])
        finally:
            self.bound.pop()

        def run(scope: _Scope) -> Any:
            value = value_fn(scope)
            inner = scope.child()
            inner.names = {**scope.names, name: value}
            return body(inner)

        return run, kind

    def c_seq(self, node: _Node) -> _Compiled:
        compiled = [self.compile(arg) for arg in node.args]
        fns = [fn for fn, _kind in compiled]

        def run(scope: _Scope) -> Any:
            value = None
            for fn in fns:
                value = fn(scope)
            return value

        return run, compiled[-1][1]

    def c_predicate(self, node: _Node) -> _Compiled:
        return self.compile(node.args[0])

    def c_call(self, node: _Node) -> _Compiled:
        name: str = node.value
        where = self.span(node)
        if name in _PREDICATE_BUILDERS:
            builder, kind = _PREDICATE_BUILDERS[name]
            array_fn = self.compile(node.args[0])[0]
            self.reduce_depth += name == "reduce"
            try:
                pred = self.compile(node.args[1])[0] if len(node.args) > 1 else None
            finally:
                self.reduce_depth -= name == "reduce"
            extra = self.compile(node.args[2])[0] if len(node.args) > 2 else None
            weight = node.args[1].size if len(node.args) > 1 else 1
            return _located(builder(array_fn, pred, extra, weight), where), kind
        function = _FUNCTIONS.get(name)
        if function is None:
            if name in _UNSUPPORTED_FUNCTIONS:
                raise self.error(f"function {name}() is not supported", node)
            raise self.error(f"unknown function '{name}'", node)
        count = len(node.args)
        if count < function.min_args or (function.max_args >= 0 and count > function.max_args):
            expected = (
                str(function.min_args)
                if function.min_args == function.max_args
                else f"at least {function.min_args}"
                if function.max_args < 0
                else f"{function.min_args} to {function.max_args}"
            )
            raise self.error(f"{name}() takes {expected} argument(s), got {count}", node)
        return self.plain_call(function, [self.compile(arg)[0] for arg in node.args], where), function.kind

    @staticmethod
    def plain_call(function: _Function, args: list[_Fn], where: str) -> _Fn:
        impl = function.impl
        if len(args) == 1:
            (only,) = args

            def call_one(scope: _Scope) -> Any:
                try:
                    return impl(scope.budget, only(scope))
                except ExpressionError as err:
                    _locate(err, where)
                    raise

            return call_one

        def call(scope: _Scope) -> Any:
            try:
                return impl(scope.budget, *[arg(scope) for arg in args])
            except ExpressionError as err:
                _locate(err, where)
                raise

        return call


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _arith("subtract", lambda a, b: a - b),
    "*": _arith("multiply", lambda a, b: a * b),
    "/": _divide,
    "%": _modulo,
    "**": _power,
    "^": _power,
}
_STRING_OPERATORS: dict[str, Callable[[Any, Any, _Budget], bool]] = {
    "contains": _string_operator("contains", lambda a, b: b in a),
    "startsWith": _string_operator("startsWith", str.startswith),
    "endsWith": _string_operator("endsWith", str.endswith),
    "matches": _matches,
}
_FAST_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


# --------------------------------------------------------------------------------------------------------
# Public API


class Expression:
    """A compiled condition: evaluate it many times against different ``result`` values."""

    __slots__ = ("_fn", "names", "source")

    def __init__(self, source: str, fn: _Fn, names: frozenset[str]) -> None:
        self.source = source
        self.names = names  # the free names the expression reads from ``env``
        self._fn = fn

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        """The expression's value with ``env`` as its names; raises :class:`ExpressionError`."""
        if not isinstance(env, Mapping):
            raise ExpressionError(f"env must be a mapping, got {type(env).__name__}")
        for name in self.names:
            if name not in env:
                raise ExpressionError(f"unknown name '{name}'")
        try:
            return self._fn(_Scope(env, _Budget(MAX_STEPS)))
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionError("expression or data nests too deeply") from None
        except OverflowError:
            raise ExpressionError("number out of range") from None
        except Exception as err:  # a bug here must still surface as a condition error, never a crash
            raise ExpressionError(f"internal error: {type(err).__name__}: {err}") from err


def compile(text: str) -> Expression:
    """Parse and compile ``text`` once (cached); raises :class:`ExpressionError` on any syntax error."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    return _compile(text)


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> Expression:
    if len(text) > MAX_SOURCE_CHARS:
        raise ExpressionError(f"expression too long (more than {MAX_SOURCE_CHARS} characters)")
    try:
        tree = _Parser(text, _Lexer(text).run()).parse()
        compiler = _Compiler(text)
        fn, _kind = compiler.compile(tree)
    except RecursionError:
        raise ExpressionError("expression nests too deeply") from None
    return Expression(text, fn, frozenset(compiler.free))


def evaluate_condition(text: str, result: Any) -> bool:
    """Argo's ``EvalCondition``: ``text`` over ``{"result": result}`` and Argo's functions; must be a bool."""
    value = compile(text).evaluate({"result": result})
    if value is True or value is False:
        return value
    raise ExpressionError(f"condition must return a bool, got {_type_name(value)}")
