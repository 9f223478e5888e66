"""The analysis-condition evaluator: expr-lang forms, Argo's functions, error messages, limits and safety."""

from __future__ import annotations

import contextlib
import math
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tugboat.rollouts.analysis import expr

PROMETHEUS_VECTOR = [0.97, 0.5, 0.93]
WEB_JSON = {
    "status": "ok",
    "code": 200,
    "ratio": 0.99,
    "items": [{"name": "a", "ok": True, "n": 1}, {"name": "b", "ok": False, "n": 3}],
    "service_apdex": {"label": None, "values": {"values": [2.0, 2.0]}},
    "_id": "x1",
}


def run(text: str, result: Any = None, **names: Any) -> Any:
    return expr.compile(text).evaluate({"result": result, **names})


# Each row: expression, result, expected value. Together they cover every form of the language.
GOLDEN: list[tuple[str, Any, Any]] = [
    # Argo's own examples (evaluate_test.go, docs)
    ("result == true", True, True),
    ("result == false", True, False),
    ("result[0] >= 0.95", PROMETHEUS_VECTOR, True),
    ("2 in result", [2.0, 2.0], True),
    ("result > 1", 5.0, True),
    ("asFloat(result) >= 1.1", "1.1", True),
    ("asFloat(result) == 1.1", "1.1", True),
    ("asFloat(result) <= 1.1", "1.1", True),
    ("asFloat(result) == 1.1", 1.1, True),
    ("asFloat(result) == 1", 1, True),
    ("asInt(result) == 1", "1", True),
    ("asInt(result) == 1", 1, True),
    ("asInt(result) == 1", 1.123, True),
    ("all(result.service_apdex.values.values, {# > 1})", WEB_JSON, True),
    ("len(result) == 0 || result[0] < 5", [], True),
    ("len(result) == 0 || result[0] < 5", [7.0], False),
    ("result == 'It worked!'", "It worked!", True),
    ("isNil(result)", None, True),
    ("isNil(result)", [1.0], False),
    ("default(result, 0) == 0", None, True),
    ("default(result, 0) == 4", 4.0, True),
    ("isNaN(result)", math.nan, True),
    ("isNaN(result)", 1.0, False),
    ("isInf(result)", math.inf, True),
    ("isInf(result[0])", [-math.inf], True),
    ("isInf(result)", 3, False),
    # literals
    ("1e3 == 1000", None, True),
    (".5 + 1. == 1.5", None, True),
    ("0x1F + 0o7 + 0b11 + 1_000 == 1041", None, True),
    ("'single' + \"double\" == 'singledouble'", None, True),
    (r"'tab\there' == `tab` + '\u0009' + 'here'", None, True),
    (r"'\x41\101\u{1F600}' == 'AA😀'", None, True),
    ("`raw\\n` == 'raw\\\\n'", None, True),
    ("nil == nil", None, True),
    ("[1, 2, 3,] == [1, 2, 3]", None, True),
    ("{a: 1, 'b': 2, 3: 'c', (\"d\" + \"e\"): 4}", None, {"a": 1, "b": 2, "3": "c", "de": 4}),
    ("// a comment\n result /* inline */ > 1", 2.0, True),
    # numbers: Prometheus floats meet integer literals
    ("1.0 == 1", None, True),
    ("result == 1", 1.0, True),
    ("result != 1", 1.5, True),
    ("10 / 4", None, 2.5),
    ("4 / 2", None, 2.0),
    ("1 / 0", None, math.inf),
    ("-1 / 0", None, -math.inf),
    ("7 % 3", None, 1),
    ("-7 % 3", None, -1),
    ("2 ** 10", None, 1024.0),
    ("2 ^ 3 ^ 2", None, 512.0),
    ("-2 ** 2", None, -4.0),
    ("1 + 2 * 3 - 4", None, 3),
    ("(1 + 2) * 3", None, 9),
    ("-result", 2.5, -2.5),
    ("+result", 2.5, 2.5),
    ("3 - 1.5", None, 1.5),
    ("'a' < 'b'", None, True),
    # comparisons, chained like expr
    ("1 < 2 < 3", None, True),
    ("3 > 2 > 2", None, False),
    ("1 <= 1 >= 0", None, True),
    # logic: symbols and words
    ("true && !false", None, True),
    ("true and not false", None, True),
    ("false || true", None, True),
    ("false or false", None, False),
    ("false && result.missing.field", {}, False),
    ("true || result.missing.field", {}, True),
    ("!(1 > 2) && (2 > 1 or false)", None, True),
    # membership
    ("'x' in result", {"x": 1}, True),
    ("'y' in result", {"x": 1}, False),
    ("'y' not in result", {"x": 1}, True),
    ("3 in [1, 2]", None, False),
    ("3 not in [1, 2]", None, True),
    ("1 in [1.0]", None, True),
    ("nil in [1, nil]", None, True),
    ("1 in nil", None, False),
    ("'abc' contains 'b'", None, True),
    ("'abc' not contains 'z'", None, True),
    ("'abc' startsWith 'ab' && 'abc' endsWith 'bc'", None, True),
    ("'abc' not startsWith 'b'", None, True),
    ("'abc' not endsWith 'b'", None, True),
    ("'release-42' matches '^release-[0-9]+$'", None, True),
    ("'release-x' matches '^release-[0-9]+$'", None, False),
    ("'Release' matches '(?i)^release$'", None, True),
    ("'abc' not matches 'z'", None, True),
    # ternary, nil-coalescing, if/else, let, sequences
    ("result > 1 ? 'big' : 'small'", 2.0, "big"),
    ("result > 1 ? 'big' : 'small'", 0.5, "small"),
    ("true ? 1 : false ? 2 : 3", None, 1),
    ("result.missing ?? 5", {}, 5),
    ("result.code ?? 5", WEB_JSON, 200),
    ("nil ?? nil ?? 3", None, 3),
    ("if result > 1 { 'big' } else if result > 0 { 'small' } else { 'none' }", 0.5, "small"),
    ("let x = result * 2; x > 3", 2.0, True),
    ("let x = 1; let y = 2; x + y", None, 3),
    ("(1; 2)", None, 2),
    # member access, indexes, slices, optional chaining
    ("result.status", WEB_JSON, "ok"),
    ('result["status"]', WEB_JSON, "ok"),
    ('result["_id"]', WEB_JSON, "x1"),
    ("result.missing", WEB_JSON, None),
    ("result.items[1].name", WEB_JSON, "b"),
    ("result.items[-1].n", WEB_JSON, 3),
    ("result[-1]", [1, 2, 3], 3),
    ("result[1.0]", [1, 2, 3], 2),
    ("result[1:3]", [1, 2, 3, 4], [2, 3]),
    ("result[:2]", [1, 2, 3], [1, 2]),
    ("result[1:]", [1, 2, 3], [2, 3]),
    ("result[:]", [1, 2, 3], [1, 2, 3]),
    ("result[1:-1]", [1, 2, 3, 4, 5], [2, 3, 4]),
    ("result[-10:10]", [1, 2], [1, 2]),
    ("result[3:1]", [1, 2, 3, 4], []),
    ("'hello'[1:3]", None, "el"),
    ("'hello'[0]", None, "h"),
    ("result?.a.b", None, None),
    ("result?.a", {"a": 1}, 1),
    ("result?.a?.b ?? 'none'", {"a": None}, "none"),
    ("result?.[0]", None, None),
    ("result.in", {"in": 1}, 1),
    ("$env.result", 4, 4),
    ("'result' in $env", None, True),
    # predicates
    ("all(result, {# > 0.9})", [0.95, 0.99], True),
    ("all(result, {# > 0.9})", [0.95, 0.5], False),
    ("all(result, # > 0.9)", [], True),
    ("any(result, {# < 0.6})", PROMETHEUS_VECTOR, True),
    ("any([], {# < 0.6})", None, False),
    ("none(result, {# > 1})", PROMETHEUS_VECTOR, True),
    ("one(result, {# < 0.6})", PROMETHEUS_VECTOR, True),
    ("one(result, {# > 0.6})", PROMETHEUS_VECTOR, False),
    ("filter(result, {# > 0.9})", PROMETHEUS_VECTOR, [0.97, 0.93]),
    ("map(result, {# * 2})", [1, 2], [2, 4]),
    ("map(result, {#index})", ["a", "b"], [0, 1]),
    ("count(result, {# > 0.9})", PROMETHEUS_VECTOR, 2),
    ("count([true, false, true])", None, 2),
    ("sum(result)", [1, 2, 3], 6),
    ("sum(result, {# * 10})", [1, 2], 30),
    ("sum([])", None, 0),
    ("filter(result.items, .ok)[0].name", WEB_JSON, "a"),
    ("all(result.items, {#.n > 0 && len(.name) == 1})", WEB_JSON, True),
    ("map(result.items, .name)", WEB_JSON, ["a", "b"]),
    ("find([1, 2, 3], # > 1)", None, 2),
    ("findIndex([1, 2, 3], # > 1)", None, 1),
    ("findLast([1, 2, 3], # > 1)", None, 3),
    ("findLastIndex([1, 2, 3], # > 5)", None, -1),
    ("reduce(1..4, #acc + #)", None, 10),
    ("reduce([1, 2], #acc + #, 10)", None, 13),
    ("groupBy([1, 2, 3], # % 2)", None, {1: [1, 3], 0: [2]}),
    ("sortBy(['bb', 'a'], len(#))", None, ["a", "bb"]),
    ("sortBy([1, 3, 2], #, 'desc')", None, [3, 2, 1]),
    ("all(result, {any(#, {# > 1})})", [[0, 2], [3]], True),
    ("result | filter(# > 1) | len()", [1, 2, 3], 2),
    ("1..3", None, [1, 2, 3]),
    ("3..1", None, []),
    # builtins
    ("len(result)", PROMETHEUS_VECTOR, 3),
    ("len('héllo')", None, 5),
    ("len({a: 1})", None, 1),
    ("abs(-2) + abs(-1.5)", None, 3.5),
    ("max(result)", PROMETHEUS_VECTOR, 0.97),
    ("max(1, 5, 3)", None, 5),
    ("min(result, 0.1)", PROMETHEUS_VECTOR, 0.1),
    ("max([])", None, None),
    ("mean(result)", [1, 2, 3, 4], 2.5),
    ("mean([])", None, 0.0),
    ("median([3, 1, 2])", None, 2.0),
    ("median([4, 1, 3, 2])", None, 2.5),
    ("ceil(1.2) + floor(1.8) + round(2.5) + round(-2.5)", None, 2.0 + 1.0 + 3.0 - 3.0),
    ("int('42') + int(3.9) + int(-3.9)", None, 42),
    ("float('1.5') + float(1)", None, 2.5),
    ("string(1) + string(1.5) + string(true) + string(nil)", None, "11.5true<nil>"),
    ("string(1000000.0) + ' ' + string(123456.0) + ' ' + string(0.00001)", None, "1e+06 123456 1e-05"),
    ("string([1, 'a']) + string({b: 2, a: 1})", None, "[1 a]map[a:1 b:2]"),
    (
        "type(1) + type(1.0) + type('') + type(nil) + type([]) + type({}) + type(true)",
        None,
        "intfloatstringnilarraymapbool",
    ),
    ("upper('ab') + lower('CD') + trim('  e  ') + trim('__f__', '_')", None, "ABcdef"),
    ("trimPrefix('v1.2', 'v') + trimSuffix('x.yaml', '.yaml')", None, "1.2x"),
    ("split('a,b,c', ',')", None, ["a", "b", "c"]),
    ("split('a,b,c', ',', 2)", None, ["a", "b,c"]),
    ("replace('a-b-c', '-', '+')", None, "a+b+c"),
    ("repeat('ab', 3)", None, "ababab"),
    ("join(['a', 'b'], ',') + join(['c'])", None, "a,bc"),
    ("indexOf('hello', 'l') + lastIndexOf('hello', 'l')", None, 5),
    ("hasPrefix('hello', 'he') && hasSuffix('hello', 'lo')", None, True),
    ("first(result) + last(result)", [1, 2, 3], 4),
    ("first([]) ?? 'empty'", None, "empty"),
    ("get(result, 5) ?? get(result, 0)", [7], 7),
    ("get({a: 1}, 'a')", None, 1),
    ("take([1, 2, 3], 2)", None, [1, 2]),
    ("keys({a: 1})", None, ["a"]),
    ("values({a: 1})", None, [1]),
    ("reverse([1, 2, 3])", None, [3, 2, 1]),
    ("uniq([1, 2, 1, 1.0, 'a', 'a'])", None, [1, 2, 1.0, "a"]),
    ("concat([1], [2, 3])", None, [1, 2, 3]),
    ("flatten([1, [2, [3]]])", None, [1, 2, 3]),
    ("sort([3, 1, 2])", None, [1, 2, 3]),
    ("sort(['b', 'a'], 'desc')", None, ["b", "a"]),
    # equality is deep, numbers compare across int and float
    ("[1, [2]] == [1.0, [2.0]]", None, True),
    ("{a: [1]} == {a: [1.0]}", None, True),
    ("result == [1, 2]", [1.0, 2.0], True),
    ("result == nil", None, True),
    ("result != nil", 0.0, True),
    ("result.code == 'x'", WEB_JSON, False),
]


@pytest.mark.parametrize(("text", "result", "expected"), GOLDEN)
def test_golden(text: str, result: Any, expected: Any) -> None:
    value = run(text, result)
    assert value == expected
    assert type(value) is type(expected)


def test_nan_is_not_equal_to_itself() -> None:
    assert run("result == result", math.nan) is False
    assert math.isnan(run("0 / 0"))


def test_evaluate_condition_uses_argo_environment() -> None:
    assert expr.evaluate_condition("result[0] >= 0.95 && len(result) > 0", [0.99]) is True
    assert expr.evaluate_condition("asInt(result) == 3 && isNil(nil)", "3") is True
    assert expr.evaluate_condition("default(result, 1.0) > 0.5", None) is True


def test_compile_is_cached_and_reusable() -> None:
    compiled = expr.compile("result > 1")
    assert expr.compile("result > 1") is compiled
    assert compiled.source == "result > 1"
    assert compiled.names == frozenset({"result"})
    assert [compiled.evaluate({"result": value}) for value in (0.5, 2.0)] == [False, True]
    assert compiled.evaluate({"result": 3}) is True  # the compiled tree keeps no state between runs


def test_evaluate_with_other_names() -> None:
    assert expr.compile("a + b * 2").evaluate({"a": 1, "b": 2}) == 5
    assert expr.compile("let a = 5; a").evaluate({}) == 5


# -- errors: compile time


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "syntax error: unexpected end of expression"),
        ("1 +", "unexpected end of expression (column 4)"),
        ("(1 + 2", "unexpected end of expression"),
        ("1 + 2)", "unexpected token )"),
        ("'abc", "string literal not terminated"),
        ("'a\nb'", "string literal not terminated"),
        (r"'\q'", r"invalid escape sequence \q"),
        ("1 & 2", "unexpected token &"),
        ("x = 1", "unexpected token ="),
        ("1.foo", "bad number syntax"),
        ("0b102", "bad number syntax"),
        ("99999999999999999999", "integer literal '99999999999999999999' is too large"),
        ("1e999", "float literal '1e999' is too large"),
        ("@", "unrecognized character '@'"),
        ("/* open", "unclosed comment"),
        ("#", "unexpected token #"),
        ("a not b", "unexpected token b"),
        ("1 ?? 2 + 3", "coalesce expressions (??) cannot be mixed"),
        ("all(result)", "all() expects at least 2 arguments"),
        ("all(result, # > 1; true)", "wrap predicate with brackets { and }"),
        ("result.Name() == 'hi'", "method calls are not supported (.Name())"),
        ("result.__class__", "names beginning with '_' are not allowed: '__class__'"),
        ("result._id", "names beginning with '_' are not allowed: '_id'"),
        ("_secret", "names beginning with '_' are not allowed: '_secret'"),
        ("let _x = 1; _x", "cannot declare a variable named '_x'"),
        ("().__class__", "unexpected token )"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("now()", "function now() is not supported"),
        ("len(1, 2)", "len() takes 1 argument(s), got 2"),
        ("default(1)", "default() takes 2 argument(s), got 1"),
        ("#acc", "unexpected token #"),
        ("map(result, #acc)", "unknown pointer #acc"),
        ("{a 1}", "unexpected token 1"),
        ("{[1]: 2}", "a map key must be a quoted string"),
        ('asFloat(result) == "1.1"', "invalid operation: == (mismatched types float and string)"),
        ("1 == 'a'", "invalid operation: == (mismatched types int and string)"),
        ("len(result) < 'a'", "cannot compare int and string with <"),
        ("'a' in 'abc'", 'operator "in" not defined on string (use contains for substrings)'),
        ("1 contains 'a'", "contains needs strings, got int and string"),
        ("true && 1", "operator && needs bools, got int"),
        ("!1", "operator ! needs a bool, got int"),
        ("-'a'", "unary - needs a number, got string"),
        ("1 ? 2 : 3", "a condition must be a bool, got int"),
        ("'a' * 10**9", "invalid operation: * on string and float"),
        ("'a' + 1", "cannot add string and int"),
    ],
)
def test_compile_errors(text: str, message: str) -> None:
    with pytest.raises(expr.ExpressionError) as caught:
        expr.compile(text)
    assert message in str(caught.value)


def test_compile_rejects_non_strings() -> None:
    with pytest.raises(expr.ExpressionError, match="must be a string, got list"):
        expr.compile(["result"])  # type: ignore[arg-type]


# -- errors: evaluation time


@pytest.mark.parametrize(
    ("text", "result", "message"),
    [
        ("reslt > 1", 1.0, "unknown name 'reslt'"),
        ("invalidVariable", True, "unknown name 'invalidVariable'"),
        ("true || reslt", 1.0, "unknown name 'reslt'"),  # like expr's strict env: checked up front
        ("result < 'a'", 1.0, "cannot compare float and string with < (in result < 'a')"),
        ("result[3] > 1", [1.0], "index 3 out of range (len 1) (in result[3])"),
        ("result[-2]", [1.0], "index -2 out of range (len 1)"),
        ("result['a']", [1.0], "cannot index array with string"),
        ("result[0]", 1.0, "cannot fetch int from float"),
        ("result.x", 1.0, "cannot fetch x from float"),
        ("result.x.y", {}, "cannot fetch y from nil (in result.x.y)"),
        ("result.x", object(), "cannot fetch x from object"),
        ("result[1:2]", 5.0, "cannot slice float"),
        ("result && true", 1.0, "operator && needs bools, got float"),
        ("true && result", 1.0, "operator && needs bools, got float"),
        ("!result", "yes", "operator ! needs a bool, got string"),
        ("result ? 1 : 2", 1.0, "a condition must be a bool, got float (in result)"),
        ("result + 1", "a", "cannot add string and int"),
        ("result - 1", None, "cannot subtract nil and int"),
        ("result % 2", 1.5, "% needs integers, got float and int"),
        ("result % 0", 1, "integer divide by zero"),
        ("-result", "a", "cannot negate string"),
        ("result in 'abc'", "a", 'operator "in" not defined on string'),
        ("1 in result", 1.0, 'operator "in" not defined on float'),
        ("result contains 'a'", 1.0, "contains needs strings, got float and string"),
        ("result matches '('", "a", "invalid regular expression '('"),
        ("result matches '(a)\\\\1'", "a", "uses an unsupported feature (groupref)"),
        ("result matches '(?=a)'", "a", "uses an unsupported feature (assert)"),
        ("all(result, {# > 0.9})", None, "all() expects an array, got nil"),
        ("all(result, {#})", [1], "the predicate of all() must be a bool, got int"),
        ("filter(result, {'x'})", [1], "the predicate of filter() must be a bool, got string"),
        ("count(result)", [1], "an element counted by count() must be a bool, got int"),
        ("sum(result)", ["a"], "sum() expects a number, got string"),
        ("reduce(result, #acc)", [], "reduce() of an empty array needs an initial value"),
        ("len(result)", 1.0, "invalid argument for len (type float)"),
        ("max(result)", ["a"], "invalid argument for max (type string)"),
        ("asInt(result)", "1.1", "asInt() cannot parse '1.1' as an integer"),
        ("asInt(result)", "notint", "asInt() cannot parse 'notint' as an integer"),
        ("asInt(result)", " 1", "asInt() cannot parse ' 1' as an integer"),
        ("asInt(result)", None, "asInt() cannot convert nil to an integer"),
        ("asInt(result)", True, "asInt() cannot convert bool to an integer"),
        ("asInt(result)", math.nan, "asInt() cannot convert NaN to an integer"),
        ("asInt(result)", 1e30, "integer overflow"),
        ("asFloat(result)", "NotANum", "asFloat() cannot parse 'NotANum' as a number"),
        ("asFloat(result)", "1_0", "asFloat() cannot parse '1_0' as a number"),
        ("asFloat(result)", [1.0], "asFloat() cannot convert array to a float"),
        ("isNaN(result)", "x", "isNaN() expects a number, got string"),
        ("int(result)", "x", "int() cannot parse 'x' as an integer"),
        ("sort(result)", [1, "a"], "sort() can only sort numbers or strings"),
        ("groupBy(result, #)", [[1]], "groupBy() cannot group by array"),
        ("{(result): 1}", [1], "a map key cannot be array"),
        ("result[result]", {"a": 1}, "a map key cannot be map"),
        ("result + 1", 2**63 - 1, "integer overflow (results must fit in 64 bits)"),
        ("result * result", 2**40, "integer overflow"),
        ("-result", -(2**63), "integer overflow"),
    ],
)
def test_evaluation_errors(text: str, result: Any, message: str) -> None:
    with pytest.raises(expr.ExpressionError) as caught:
        run(text, result)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "result", "message"),
    [
        ("1", True, "condition must return a bool, got int"),
        ("result", 1.5, "condition must return a bool, got float"),
        ("result", "yes", "condition must return a bool, got string"),
        ("result", None, "condition must return a bool, got nil"),
        ("result.items", {"items": []}, "condition must return a bool, got array"),
    ],
)
def test_condition_must_be_bool(text: str, result: Any, message: str) -> None:
    with pytest.raises(expr.ExpressionError, match=re.escape(message)):
        expr.evaluate_condition(text, result)


def test_error_names_the_failing_sub_expression() -> None:
    with pytest.raises(expr.ExpressionError) as caught:
        expr.evaluate_condition("len(result) > 0 && result.values[5] > 0.9", {"values": [1.0]})
    assert caught.value.message == "index 5 out of range (len 1)"
    assert caught.value.where == "result.values[5]"
    assert str(caught.value) == "index 5 out of range (len 1) (in result.values[5])"


def test_evaluate_needs_a_mapping() -> None:
    with pytest.raises(expr.ExpressionError, match="env must be a mapping"):
        expr.compile("1").evaluate([("result", 1)])  # type: ignore[arg-type]


# -- bounded work


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(" * 80 + "1" + ")" * 80, "nests too deeply"),
        ("1" + " + 1" * 100, "nests too deeply"),
        ("!" * 100 + "true", "nests too deeply"),
        ("[" * 80 + "]" * 80, "nests too deeply"),
        ("x" * (expr.MAX_SOURCE_CHARS + 1), "expression too long"),
        ("[" + "1," * (expr.MAX_NODES + 1) + "]", "expression too large"),
    ],
)
def test_refuses_oversized_expressions(text: str, message: str) -> None:
    with pytest.raises(expr.ExpressionError, match=message):
        expr.compile(text)


def test_deepest_allowed_expression_still_evaluates() -> None:
    text = "(" * 60 + "1" + ")" * 60
    assert run(text) == 1
    chain = "1" + " + 1" * (expr.MAX_DEPTH - 2)
    assert run(chain) == expr.MAX_DEPTH - 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9**9**9 > 0", None),  # always a float: inf, not a huge integer
        ("repeat('a', 1000000000)", "string too long"),
        ("repeat(repeat('a', 1000), 1001)", "string too long"),
        ("replace(repeat('a', 1000), '', repeat('b', 1000))", "string too long"),
        ("join(map(1..2000, {repeat('ab', 300)}))", "string too long"),
        ("1..100000000", "collection too large"),
        ("concat(1..90000, 1..90000)", "collection too large"),
        ("all(1..1000, {all(1..1000, {all(1..1000, {true})})})", "too expensive"),
        ("len(filter(1..100000, {# in 1..100000}))", "too expensive"),
        ("all(1..100000, {" + " + ".join(["#"] * 60) + " > 0})", "too expensive"),
        ("len(filter(1..3000, {1..3000 == 1..3000}))", "too expensive"),
        ("reduce(1..100000, #acc + 'x', '')", "too expensive"),
        ("len(map(1..100000, {repeat('ab', 100)}))", "too expensive"),
        ("repeat('ab', 50000) matches '(a|b|c)*[a-z]{50}z'", "too expensive"),
        ("9223372036854775807 * 9223372036854775807", "integer overflow"),
    ],
)
def test_refuses_unbounded_work(text: str, message: str | None) -> None:
    started = time.monotonic()
    if message is None:
        assert run(text) is True
    else:
        with pytest.raises(expr.ExpressionError, match=message) as caught:
            run(text)
        if message == "too expensive":
            assert str(caught.value) == f"expression too expensive (more than {expr.MAX_STEPS} steps)"
    assert time.monotonic() - started < 5


def test_matches_runs_in_linear_time() -> None:
    """Patterns that make a backtracking engine run for ever finish at once (Go's RE2 behaves so too)."""
    started = time.monotonic()
    text = "a" * 5_000 + "!"
    assert run("result matches '(a+)+$'", text) is False
    assert run("result matches '(a|aa)*b'", text) is False
    assert run("result matches '(.*a){20}!'", "a" * 30 + "!") is True
    assert time.monotonic() - started < 5


def test_matches_refuses_oversized_patterns() -> None:
    with pytest.raises(expr.ExpressionError, match="repeat count above 1000"):
        run("'a' matches 'a{1001}'")
    with pytest.raises(expr.ExpressionError, match="is too large"):
        run("'a' matches '((a{1000}){1000}){1000}'")
    with pytest.raises(expr.ExpressionError, match="regular expression too long"):
        run("'a' matches result", "a" * 2_000)


PATTERNS = [
    "",
    "a",
    "ab",
    "a+b",
    "^ab*$",
    "(a|b)*c",
    "[^a]b?",
    r"\d{2,3}",
    r"^\w+\s\S$",
    "a.c",
    r"\bab\b",
    r"\Bb",
    "x*",
    "(?:ab)+",
    "a{2}",
    "a{1,}c",
    "[a-c]+$",
    "(a|ab)(c|bcd)",
    "a*?b",
    "^$",
    "(?i)AB",
    "(?i:a)B",
    "[A-Z]",
    "(?m)^b",
    r"\D\W",
    r"[\d\s]",
    "c|",
]


@settings(max_examples=300, deadline=None)
@given(pattern=st.sampled_from(PATTERNS), text=st.text(alphabet="abcdAB 1_2\t!", max_size=12))
def test_matches_agrees_with_python_re_on_plain_patterns(pattern: str, text: str) -> None:
    assert run("result[0] matches result[1]", [text, pattern]) == (re.search(pattern, text) is not None)


# -- safety: no attributes, no builtins, whatever the input


class Tripwire:
    """A value that records every attribute read (``__class__`` aside: ``isinstance`` reads it)."""

    touched: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name != "__class__":
            Tripwire.touched.append(name)
        return object.__getattribute__(self, name)

    x = 1
    status = "ok"


@pytest.mark.parametrize(
    "text",
    [
        "result.x == 1",
        "result.status",
        "result['x']",
        "result.__class__",
        "result?.x",
        "result.x ?? 1",
        "len(result)",
        "string(result)",
        "result == result",
        "result in [result]",
        "'x' in result",
        "all([result], {#.x == 1})",
        "asFloat(result)",
        "default(result, 1).x",
        "type(result)",
    ],
)
def test_values_are_never_read_through_attributes(text: str) -> None:
    Tripwire.touched = []
    with contextlib.suppress(expr.ExpressionError):
        run(text, Tripwire())
    assert Tripwire.touched == []


def test_no_python_escape_hatches() -> None:
    for text in (
        "result.__class__.__bases__",
        "[].__class__",
        "''.join",
        "__builtins__",
        "globals()",
        "getattr(result, 'x')",
        "result.__dict__",
        "exec('1')",
        "lambda: 1",
        "import os",
        "{}.__class__",
    ):
        with pytest.raises(expr.ExpressionError):
            run(text, {"__class__": "data"})


TOKENS = [
    'result', 'result.x', 'result[0]', 'result.values', '#', '#index', '#acc', '.', '?.', '??', '(', ')',
    '[', ']', '{', '}', ',', ':', ';', '?', '&&', '||', '!', 'and', 'or', 'not', 'in', '==', '!=', '<',
    '>', '<=', '>=', '+', '-', '*', '/', '%', '**', '^', '..', '|', 'contains', 'startsWith', 'endsWith',
    'matches', '0', '1', '2', '-1', '0.5', '1e3', '100', "'a'", '"b"', "'[a-c]+'", "'(a+)+$'", '`r`',
    'true', 'false', 'nil', 'len', 'all', 'any', 'none', 'one', 'filter', 'map', 'count', 'sum', 'mean',
    'median', 'max', 'min', 'abs', 'asInt', 'asFloat', 'isNaN', 'isInf', 'isNil', 'default', 'first',
    'last', 'int', 'float', 'string', 'upper', 'lower', 'trim', 'let', 'x', '=', 'if', 'else',
    '__class__', '_x', '$env', 'reduce', 'sortBy', 'groupBy', 'repeat', 'split', 'join', 'replace',
    'flatten', 'uniq', 'concat', 'get', 'keys', 'type', 'open', '__import__', '//', '/*', '*/', '\\',
    "'\\u{41}'", '0x1F', '@',
]  # fmt: skip

JSON_RESULTS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["x", "y", "values", "a", "_id"]), children, max_size=4)
    ),
    max_leaves=12,
)


def check_total(text: str, result: Any) -> None:
    """Any text and result: a value or an ExpressionError, never another exception or a slip."""
    try:
        compiled = expr.compile(text)
    except expr.ExpressionError as err:
        assert str(err)
        return
    try:
        compiled.evaluate({"result": result})
    except expr.ExpressionError as err:
        assert str(err)
        assert not err.message.startswith("internal error"), err
    try:
        expr.evaluate_condition(text, result)
    except expr.ExpressionError as err:
        assert not err.message.startswith("internal error"), err


FUZZ = settings(
    max_examples=400, deadline=1_000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@FUZZ
@given(text=st.text(max_size=60), result=JSON_RESULTS)
def test_fuzz_random_text(text: str, result: Any) -> None:
    check_total(text, result)


@FUZZ
@given(
    tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14),
    separator=st.sampled_from([" ", ""]),
    result=JSON_RESULTS,
)
def test_fuzz_token_soup(tokens: list[str], separator: str, result: Any) -> None:
    check_total(separator.join(tokens), result)


@FUZZ
@given(
    op=st.sampled_from(["<", ">", "<=", ">=", "==", "!=", "+", "-", "*"]),
    a=st.integers(min_value=-(2**31), max_value=2**31) | st.floats(allow_nan=False, width=32),
    b=st.integers(min_value=-(2**31), max_value=2**31) | st.floats(allow_nan=False, width=32),
)
def test_fuzz_arithmetic_agrees_with_python(op: str, a: int | float, b: int | float) -> None:
    python = {
        "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b, "==": a == b, "!=": a != b,
        "+": a + b, "-": a - b, "*": a * b,
    }[op]  # fmt: skip
    value = expr.compile(f"a {op} b").evaluate({"a": a, "b": b})
    assert value == python or (isinstance(value, float) and math.isnan(value) and math.isnan(python))


@FUZZ
@given(items=st.lists(st.floats(allow_nan=False), max_size=6), index=st.integers(min_value=-8, max_value=8))
def test_fuzz_indexing_agrees_with_python(items: list[float], index: int) -> None:
    if -len(items) <= index < len(items):
        assert run(f"result[{index}]", items) == items[index]
    else:
        with pytest.raises(expr.ExpressionError, match="out of range"):
            run(f"result[{index}]", items)
    assert run(f"result[{index}:]", items) == items[max(index + len(items), 0) if index < 0 else index :]
    assert run("all(result, {# > 0.9})", items) == all(x > 0.9 for x in items)
