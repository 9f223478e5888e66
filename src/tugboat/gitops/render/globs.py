"""Glob patterns as Argo CD matches them in ``directory.include`` and ``directory.exclude``.

Argo CD compiles these with gobwas/glob and no separators, so ``*`` and ``?`` also match ``/`` (``*.yaml``
selects ``sub/a.yaml`` under ``recurse``), ``[abc]``/``[!a-z]`` are character classes, ``{a,b}`` lists
alternatives (each itself a pattern) and ``\\`` escapes the next character. The pattern must match the
whole path, relative to the application directory. Python's ``fnmatch`` has no brace lists, hence this
small translator to a regular expression; an invalid pattern is an error rather than a silent non-match.
"""

from __future__ import annotations

import functools
import re

from tugboat.gitops.errors import RenderError


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression equivalent to glob ``pattern``."""
    regex, end = _translate(pattern, 0, in_braces=False)
    if end != len(pattern):  # pragma: no cover - _translate consumes everything outside braces
        raise RenderError(f"invalid glob pattern {pattern!r}")
    return re.compile(regex, re.DOTALL)


def match(pattern: str, path: str) -> bool:
    """Whether ``path`` matches glob ``pattern`` as a whole."""
    return compile_pattern(pattern).fullmatch(path) is not None


def _translate(pattern: str, index: int, *, in_braces: bool) -> tuple[str, int]:
    """Translate from ``index`` up to the end, or (inside braces) up to an unnested ``,`` or ``}``."""
    out: list[str] = []
    while index < len(pattern):
        char = pattern[index]
        if in_braces and char in ",}":
            return "".join(out), index
        if char == "\\":
            if index + 1 >= len(pattern):
                raise RenderError(f"invalid glob pattern {pattern!r}: it ends with a lone backslash")
            out.append(re.escape(pattern[index + 1]))
            index += 2
        elif char == "*":
            while index < len(pattern) and pattern[index] == "*":
                index += 1
            out.append(".*")
        elif char == "?":
            out.append(".")
            index += 1
        elif char == "[":
            regex, index = _char_class(pattern, index)
            out.append(regex)
        elif char == "{":
            regex, index = _alternatives(pattern, index)
            out.append(regex)
        else:
            out.append(re.escape(char))
            index += 1
    if in_braces:
        raise RenderError(f"invalid glob pattern {pattern!r}: '{{' is never closed")
    return "".join(out), index


def _alternatives(pattern: str, index: int) -> tuple[str, int]:
    """``{a,b,...}`` starting at ``index`` (the brace) as ``(?:a|b|...)``."""
    options: list[str] = []
    index += 1
    while True:
        regex, index = _translate(pattern, index, in_braces=True)
        options.append(regex)
        if pattern[index] == "}":
            return "(?:" + "|".join(options) + ")", index + 1
        index += 1  # the comma


def _char_class(pattern: str, index: int) -> tuple[str, int]:
    """``[...]`` starting at ``index`` as a regular-expression class."""
    end = pattern.find("]", index + 1)
    if end < 0:
        raise RenderError(f"invalid glob pattern {pattern!r}: '[' is never closed")
    body = pattern[index + 1 : end]
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    if not body:
        raise RenderError(f"invalid glob pattern {pattern!r}: empty character class")
    parts: list[str] = []
    position = 0
    while position < len(body):
        if position + 2 < len(body) and body[position + 1] == "-":
            low, high = body[position], body[position + 2]
            if low > high:
                raise RenderError(f"invalid glob pattern {pattern!r}: bad range {low}-{high}")
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
            position += 3
        else:
            parts.append(re.escape(body[position]))
            position += 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]", end + 1
