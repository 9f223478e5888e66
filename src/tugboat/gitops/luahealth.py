"""Custom health checks written in Lua, configured the way Argo CD configures them.

Users extend Argo CD's health assessment with Lua scripts in ``argocd-cm``
(``resource.customizations.health.<group>_<kind>``), and Argo CD ships hundreds of such scripts for CRDs.
We run the same scripts unchanged: the script sees the live object as the global ``obj`` and returns a
table ``{status = ..., message = ...}``. Argo CD embeds gopher-lua (Lua 5.1 semantics, e.g.
``table.getn``), so we use lupa's Lua 5.1 runtime.

The scripts are configuration, not trusted code, so each evaluation runs in a fresh, sandboxed runtime:

* only safe functions are reachable: the base functions without ``load``/``loadstring``/``dofile``/
  ``loadfile``/``require``/``getfenv``/``setfenv``/``collectgarbage``/``module``, and the ``string``,
  ``table`` and ``math`` libraries; ``os`` is Argo CD's *safe* subset (``time``, ``date``, ``clock``),
  so ``os.execute`` and ``io`` do not exist; ``require`` only returns those same libraries;
  ``print`` does nothing; ``coroutine`` is absent (a coroutine would run outside the time limit);
* no Python object is reachable (``register_eval=False``, no ``python`` global, attribute access denied,
  the object is copied into plain Lua tables);
* memory is capped (lupa's ``max_memory``) and time is capped by a count hook that raises once the
  deadline passes (default 1 s, as Argo CD); ``pcall`` is wrapped so a script cannot swallow that error.

What the hook cannot interrupt is one long call into a C function (a pathological ``string.find``
pattern on a huge string); the memory cap bounds the string sizes such a call can work on.

A failing script yields ``Unknown`` with a message that says why, and a logged warning.
``useOpenLibs`` is accepted in the configuration but never opens ``io`` or the full ``os``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from lupa import lua51

from tugboat.gitops import customizations, health, resourcekey
from tugboat.gitops.errors import LuaScriptError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1.0
DEFAULT_MAX_MEMORY = 32 * 1024 * 1024
_HOOK_EVERY = 10_000  # VM instructions between deadline checks
_MAX_DEPTH = 100  # nesting levels copied between Python and Lua (CRD schemas nest deeply)
_MAX_MESSAGE = 1024

_TIMEOUT_MARK = "\x00tugboat-lua-timeout\x00"

INVALID_STATUS_MESSAGE = "Lua returned an invalid health status"

# Trusted bootstrap run in each fresh runtime: it builds the sandbox environment, installs the deadline
# hook and runs the user's script in that environment. Everything here is local to the chunk; the script
# only ever sees ``env``.
_BOOTSTRAP = r"""
local script, chunkname, obj, expired, every, timeout_mark = ...
local raw_pcall, select, unpack, error, tostring, type, rawget =
      pcall, select, unpack, error, tostring, type, rawget

local timed_out = false
local function hook()
  if timed_out or expired() then
    timed_out = true
    error(timeout_mark, 0)
  end
end

local function pack(...) return {n = select("#", ...), ...} end
local function check_time()
  if timed_out then error(timeout_mark, 0) end
end

local env = {}
for _, name in ipairs({
  "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawset", "select",
  "setmetatable", "getmetatable", "tonumber", "tostring", "type", "unpack", "_VERSION",
}) do env[name] = _G[name] end

local function copy(lib, skip)
  local out = {}
  for k, v in pairs(lib) do
    if not (skip and skip[k]) then out[k] = v end
  end
  return out
end
env.string = copy(string, {dump = true})
env.table = copy(table)
env.math = copy(math)
env.os = {time = os.time, date = os.date, clock = os.clock}
env.print = function() end
env.pcall = function(...)
  local results = pack(raw_pcall(...))
  check_time()
  return unpack(results, 1, results.n)
end
env.xpcall = function(fn, handler)
  local results = pack(xpcall(fn, handler))
  check_time()
  return unpack(results, 1, results.n)
end
local modules = {string = env.string, table = env.table, math = env.math, os = env.os}
env.require = function(name)
  local lib = modules[name]
  if lib == nil then error("module '" .. tostring(name) .. "' is not available", 2) end
  return lib
end
env._G = env
env.obj = obj

local fn, syntax_error = loadstring(script, "=" .. chunkname)
if fn == nil then
  return "syntax", tostring(syntax_error)
end
setfenv(fn, env)

debug.sethook(hook, "", every)
local results = pack(raw_pcall(fn))
local described = nil
if not results[1] and not timed_out then
  local ok, text = raw_pcall(tostring, results[2])
  described = ok and text or "error object could not be converted to a string"
end
debug.sethook()

if timed_out then return "timeout" end
if not results[1] then return "error", described end
local value = results[2]
if type(value) ~= "table" then return "type", type(value) end
return "ok", rawget(value, "status"), rawget(value, "message")
"""

_SYNTAX_CHECK = r"""
local script, chunkname = ...
local fn, err = loadstring(script, "=" .. chunkname)
if fn == nil then return tostring(err) end
return nil
"""


def _deny_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python objects are not accessible from health scripts")


def _runtime(max_memory: int) -> Any:
    runtime = lua51.LuaRuntime(
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=True,
        attribute_filter=_deny_attributes,
        max_memory=max_memory,
    )
    runtime.globals().python = None
    return runtime


class LuaConversionError(ValueError):
    """A value cannot be carried between Python and Lua (too deep, not JSON-like)."""


def to_lua(runtime: Any, value: Any, *, depth: int = 0) -> Any:
    """A JSON-like Python value as Lua values: dicts and lists become tables (lists 1-based), ``None``
    becomes ``nil`` (a missing key or a hole), numbers, strings and booleans stay themselves."""
    if depth > _MAX_DEPTH:
        raise LuaConversionError(f"object nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value) if isinstance(value, int) and abs(value) > 2**53 else value
    if isinstance(value, Mapping):
        table = runtime.table()
        for key, item in value.items():
            if not isinstance(key, str):
                raise LuaConversionError("object keys must be strings")
            if item is not None:
                table[key] = to_lua(runtime, item, depth=depth + 1)
        return table
    if isinstance(value, list | tuple):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            if item is not None:
                table[index] = to_lua(runtime, item, depth=depth + 1)
        return table
    raise LuaConversionError(f"values of type {type(value).__name__} cannot be passed to Lua")


def from_lua(value: Any, *, depth: int = 0) -> Any:
    """A Lua value as JSON-like Python: a table with keys ``1..n`` becomes a list, any other table a dict
    (keys as strings); an empty table becomes ``{}`` (Lua cannot tell an empty list from an empty map)."""
    if depth > _MAX_DEPTH:
        raise LuaConversionError(f"table nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if lua51.lua_type(value) == "table":
        items = list(value.items())
        keys = [key for key, _ in items]
        if (
            items
            and all(isinstance(k, int | float) and not isinstance(k, bool) for k in keys)
            and sorted(keys) == list(range(1, len(items) + 1))
        ):
            return [from_lua(item, depth=depth + 1) for _, item in sorted(items, key=lambda pair: pair[0])]
        return {_key(key): from_lua(item, depth=depth + 1) for key, item in items}
    raise LuaConversionError(f"Lua {lua51.lua_type(value)} values cannot be returned")


def _key(key: Any) -> str:
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class LuaCheck:
    """A health check written in Lua, usable wherever :data:`tugboat.gitops.health.Check` is.

    The script is compiled once here to reject syntax errors early (:class:`LuaScriptError`); each call
    then runs it in a fresh sandbox (see the module docstring) and always returns a
    :class:`~tugboat.gitops.health.HealthStatus`, ``Unknown`` when the script fails.
    """

    def __init__(
        self,
        script: str,
        *,
        name: str = "health.lua",
        timeout: float = DEFAULT_TIMEOUT,
        max_memory: int = DEFAULT_MAX_MEMORY,
        use_open_libs: bool = False,
    ) -> None:
        if not isinstance(script, str) or not script.strip():
            raise LuaScriptError(f"{name}: the health script is empty")
        if timeout <= 0:
            raise LuaScriptError(f"{name}: the timeout must be positive")
        self.script = script
        self.name = name
        self.timeout = timeout
        self.max_memory = max_memory
        self.use_open_libs = use_open_libs  # accepted for compatibility; the sandbox stays closed
        error = _runtime(max_memory).execute(_SYNTAX_CHECK, script, name)
        if error is not None:
            raise LuaScriptError(f"{name} does not compile: {error}")

    def __repr__(self) -> str:
        return f"LuaCheck(name={self.name!r})"

    def __call__(self, obj: Mapping[str, Any]) -> health.HealthStatus:
        status = self._evaluate(obj)
        if status.status == health.UNKNOWN and status.message != INVALID_STATUS_MESSAGE:
            key = resourcekey.ResourceKey.of(obj)
            # The message may quote the object (``error(obj.x)``); never log what a Secret holds.
            detail = "details withheld for a Secret" if key.kind == "Secret" else status.message
            log.warning("Lua health check %s on %s: %s", self.name, key, detail)
        return status

    def _evaluate(self, obj: Mapping[str, Any]) -> health.HealthStatus:
        deadline = time.monotonic() + self.timeout
        expired: Callable[[], bool] = lambda: time.monotonic() > deadline  # noqa: E731
        try:
            runtime = _runtime(self.max_memory)
            lua_obj = to_lua(runtime, obj)
            result = runtime.execute(
                _BOOTSTRAP, self.script, self.name, lua_obj, expired, _HOOK_EVERY, _TIMEOUT_MARK
            )
        except LuaConversionError as exc:
            return health.HealthStatus(health.UNKNOWN, f"{self.name}: cannot pass the object to Lua: {exc}")
        except lua51.LuaMemoryError:
            return health.HealthStatus(
                health.UNKNOWN, f"{self.name} exceeded its memory limit of {self.max_memory // 1024} KiB"
            )
        except lua51.LuaError as exc:
            return health.HealthStatus(health.UNKNOWN, _clip(f"{self.name} failed: {exc}"))
        if not isinstance(result, tuple):
            result = (result,)
        outcome = result[0]
        if outcome == "timeout":
            return health.HealthStatus(
                health.UNKNOWN, f"{self.name} did not finish within {self.timeout:g}s and was stopped"
            )
        if outcome == "syntax":
            return health.HealthStatus(health.UNKNOWN, _clip(f"{self.name} does not compile: {result[1]}"))
        if outcome == "error":
            text = str(result[1])
            if "not enough memory" in text:
                text = f"exceeded its memory limit of {self.max_memory // 1024} KiB"
            return health.HealthStatus(health.UNKNOWN, _clip(f"{self.name} failed: {text}"))
        if outcome == "type":
            return health.HealthStatus(
                health.UNKNOWN, f"{self.name}: expect table output from Lua script, not {result[1]}"
            )
        status = result[1] if len(result) > 1 else None
        message: Any = result[2] if len(result) > 2 else None
        if not isinstance(status, str) or status not in health.STATUSES:
            return health.HealthStatus(health.UNKNOWN, INVALID_STATUS_MESSAGE)
        if isinstance(message, int | float) and not isinstance(message, bool):
            message = _key(message)
        if message is not None and not isinstance(message, str):
            return health.HealthStatus(health.UNKNOWN, f"{self.name}: the message must be a string")
        return health.HealthStatus(status, message or "")


def health_overrides_from_configmap(
    data: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT, max_memory: int = DEFAULT_MAX_MEMORY
) -> dict[tuple[str, str], LuaCheck]:
    """Lua health checks configured in ``argocd-cm`` data, by ``(group, kind)`` (wildcards kept as given).

    Reads ``resource.customizations.health.<group>_<kind>`` keys and the ``health.lua`` entries of the
    single ``resource.customizations`` key. A malformed key or a script that does not compile raises
    :class:`~tugboat.gitops.errors.CustomizationError` / :class:`LuaScriptError` naming it.
    """
    checks: dict[tuple[str, str], LuaCheck] = {}
    for (group, kind), override in customizations.resource_overrides(data).items():
        if not override.health_lua:
            continue
        if override.use_open_libs:
            log.warning(
                "health check for %s/%s asks for useOpenLibs; custom checks always run sandboxed", group, kind
            )
        name = (
            f"{customizations.PREFIX}.health.{group}_{kind}"
            if group
            else f"{customizations.PREFIX}.health.{kind}"
        )
        checks[(group, kind)] = LuaCheck(
            override.health_lua,
            name=name,
            timeout=timeout,
            max_memory=max_memory,
            use_open_libs=override.use_open_libs,
        )
    return checks


def health_checks_from_configmap(data: Mapping[str, str], **options: Any) -> health.HealthChecks:
    """A :class:`~tugboat.gitops.health.HealthChecks` with the built-ins plus ``argocd-cm``'s Lua checks."""
    return health.HealthChecks(dict(health_overrides_from_configmap(data)), **options)
