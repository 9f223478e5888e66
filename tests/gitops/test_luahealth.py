"""Custom Lua health checks: Argo CD's argocd-cm configuration, the script interface, and the sandbox."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import pytest
from lupa import lua51

from tugboat.gitops import customizations, health, luahealth
from tugboat.gitops.errors import CustomizationError, LuaScriptError
from tugboat.gitops.health import HealthStatus

# The shape of a typical catalog script (resource_customizations/cert-manager.io/Certificate).
CERTIFICATE_LUA = """
hs = {}
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for i, condition in ipairs(obj.status.conditions) do
      if condition.type == "Ready" and condition.status == "False" then
        hs.status = "Degraded"
        hs.message = condition.message
        return hs
      end
      if condition.type == "Ready" and condition.status == "True" then
        hs.status = "Healthy"
        hs.message = condition.message
        return hs
      end
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for certificate"
return hs
"""


def certificate(ready: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web-tls", "namespace": "default"},
        "spec": {"secretName": "web-tls", "dnsNames": ["example.com"]},
    }
    if ready is not None:
        obj["status"] = {
            "conditions": [
                {"type": "Ready", "status": ready, "message": f"Certificate ready={ready}", "reason": "x"}
            ]
        }
    return obj


def test_custom_check_from_split_configmap_key() -> None:
    data = {"resource.customizations.health.cert-manager.io_Certificate": CERTIFICATE_LUA}
    overrides = luahealth.health_overrides_from_configmap(data)
    assert set(overrides) == {("cert-manager.io", "Certificate")}
    check = overrides[("cert-manager.io", "Certificate")]
    assert check(certificate(None)) == HealthStatus("Progressing", "Waiting for certificate")
    assert check(certificate("True")) == HealthStatus("Healthy", "Certificate ready=True")
    assert check(certificate("False")) == HealthStatus("Degraded", "Certificate ready=False")


def test_override_wins_over_builtin_through_the_registry() -> None:
    data = {
        "resource.customizations.health.apps_Deployment": 'return {status = "Degraded", message = "by Lua"}',
        "resource.customizations.health.ConfigMap": (
            'if obj.data.ok == "yes" then return {status = "Healthy"} end return {status = "Progressing"}'
        ),
    }
    checks = luahealth.health_checks_from_configmap(data)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}
    assert checks.health_of(deployment) == HealthStatus("Degraded", "by Lua")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"ok": "yes"}}
    assert checks.health_of(cm) == HealthStatus("Healthy")
    cm["data"]["ok"] = "no"
    assert checks.health_of(cm) == HealthStatus("Progressing")


def test_single_key_form_with_wildcards() -> None:
    data = {
        "resource.customizations": """
"*.aws.crossplane.io/*":
  health.lua: |
    if obj.status ~= nil and obj.status.atProvider ~= nil then
      return {status = "Healthy", message = obj.kind}
    end
    return {status = "Progressing", message = "creating"}
  health.lua.useOpenLibs: true
apps/Deployment:
  ignoreDifferences: |
    jsonPointers:
    - /spec/replicas
"""
    }
    overrides = luahealth.health_overrides_from_configmap(data)
    assert set(overrides) == {("*.aws.crossplane.io", "*")}
    checks = health.HealthChecks(dict(overrides))
    bucket = {"apiVersion": "s3.aws.crossplane.io/v1beta1", "kind": "Bucket", "metadata": {"name": "b"}}
    assert checks.health_of(bucket) == HealthStatus("Progressing", "creating")
    bucket["status"] = {"atProvider": {"arn": "arn:aws:s3:::b"}}
    assert checks.health_of(bucket) == HealthStatus("Healthy", "Bucket")
    other = {"apiVersion": "example.com/v1", "kind": "Bucket", "metadata": {"name": "b"}}
    assert checks.health_of(other) is None


def test_split_keys_win_over_the_single_key() -> None:
    data = {
        "resource.customizations": (
            'cert-manager.io/Certificate:\n  health.lua: return {status = "Degraded"}\n'
        ),
        "resource.customizations.health.cert-manager.io_Certificate": 'return {status = "Healthy"}',
    }
    check = luahealth.health_overrides_from_configmap(data)[("cert-manager.io", "Certificate")]
    assert check(certificate(None)) == HealthStatus("Healthy")


def test_runaway_script_is_stopped_within_about_a_second(caplog: pytest.LogCaptureFixture) -> None:
    check = luahealth.LuaCheck("while true do end")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tugboat.gitops.luahealth"):
        result = check(certificate(None))
    elapsed = time.monotonic() - started
    assert result.status == "Unknown"
    assert "did not finish within 1s" in result.message
    assert 0.9 < elapsed < 2.0
    assert "did not finish" in caplog.text


def test_runaway_cannot_hide_behind_pcall() -> None:
    script = "while true do pcall(function() while true do end end) end"
    started = time.monotonic()
    result = luahealth.LuaCheck(script, timeout=0.2)({})
    assert result.status == "Unknown" and "did not finish" in result.message
    assert time.monotonic() - started < 1.5
    # An error handler can't swallow it either, nor a __tostring metamethod that loops.
    script = "while true do xpcall(function() while true do end end, function(e) return e end) end"
    assert "did not finish" in luahealth.LuaCheck(script, timeout=0.2)({}).message
    script = "error(setmetatable({}, {__tostring = function() while true do end end}))"
    assert "did not finish" in luahealth.LuaCheck(script, timeout=0.2)({}).message


@pytest.mark.parametrize(
    "script",
    [
        'os.execute("touch /tmp/tugboat-lua-pwned")',
        'io.open("/etc/passwd")',
        'require("io")',
        'loadstring("return 1")()',
        "load(function() return nil end)",
        'dofile("/etc/passwd")',
        "getfenv(0)",
        "setfenv(1, {})",
        "python.eval('1')",
        "string.dump(print)",
        "coroutine.create(print)",
        "debug.sethook()",
        "collectgarbage('stop')",
    ],
)
def test_unsafe_functions_are_unavailable(script: str) -> None:
    result = luahealth.LuaCheck(script + "\nreturn {status = 'Healthy'}")({})
    assert result.status == "Unknown", script
    assert "failed" in result.message
    assert not os.path.exists("/tmp/tugboat-lua-pwned")


def test_safe_library_subset_works() -> None:
    script = """
local os = require("os")
local parts = {}
for word in string.gmatch("a,b,c", "[^,]+") do table.insert(parts, string.upper(word)) end
local n = table.getn(obj.spec.items) + #obj.spec.items
return {status = "Healthy", message = table.concat(parts, "-") .. " " .. n .. " " ..
        tostring(math.floor(2.7)) .. " " .. tostring(os.time() > 0) .. " " .. type(unpack)}
"""
    result = luahealth.LuaCheck(script)({"spec": {"items": [1, 2, 3]}})
    assert result == HealthStatus("Healthy", "A-B-C 6 2 true function")


def test_memory_is_capped() -> None:
    result = luahealth.LuaCheck('local s = string.rep("x", 1e8) return {status = "Healthy"}')({})
    assert result.status == "Unknown" and "memory limit" in result.message
    result = luahealth.LuaCheck("local t = {} for i = 1, 1e8 do t[i] = i end")({})
    assert result.status == "Unknown" and "memory limit" in result.message


def test_bad_results() -> None:
    assert luahealth.LuaCheck('return {status = "Great"}')({}) == HealthStatus(
        "Unknown", "Lua returned an invalid health status"
    )
    assert luahealth.LuaCheck("return {}")({}) == HealthStatus(
        "Unknown", "Lua returned an invalid health status"
    )
    result = luahealth.LuaCheck("return 42")({})
    assert result == HealthStatus("Unknown", "health.lua: expect table output from Lua script, not number")
    result = luahealth.LuaCheck("local x = nil")({})
    assert result.message == "health.lua: expect table output from Lua script, not nil"
    result = luahealth.LuaCheck("return {status = 'Healthy', message = 7}")({})
    assert result == HealthStatus("Healthy", "7")
    result = luahealth.LuaCheck('error("custom failure")', name="my.lua")({})
    assert result == HealthStatus("Unknown", "my.lua failed: my.lua:1: custom failure")


def test_script_errors_name_the_line() -> None:
    result = luahealth.LuaCheck("local hs = {}\nhs.status = obj.status.phase\nreturn hs", name="x.lua")({})
    assert result.status == "Unknown"
    assert result.message.startswith("x.lua failed: x.lua:2: attempt to index field 'status'")


def test_syntax_errors_are_rejected_up_front() -> None:
    with pytest.raises(LuaScriptError, match=r"x\.lua does not compile: x\.lua:1:"):
        luahealth.LuaCheck("if then", name="x.lua")
    with pytest.raises(LuaScriptError, match="empty"):
        luahealth.LuaCheck("   ")
    with pytest.raises(LuaScriptError, match=r"resource\.customizations\.health\.apps_Deployment"):
        luahealth.health_overrides_from_configmap(
            {"resource.customizations.health.apps_Deployment": "return {"}
        )


def test_malformed_configmap_keys() -> None:
    with pytest.raises(CustomizationError, match="unsupported customization type"):
        luahealth.health_overrides_from_configmap({"resource.customizations.healthz.apps_Deployment": "x"})
    with pytest.raises(CustomizationError, match="expected"):
        luahealth.health_overrides_from_configmap({"resource.customizations.health.a_b_c": "x"})
    with pytest.raises(CustomizationError, match="not valid YAML"):
        luahealth.health_overrides_from_configmap({"resource.customizations": "a: [b"})
    with pytest.raises(CustomizationError, match="unsupported customization"):
        customizations.resource_overrides({"resource.customizations": "apps/Deployment:\n  bogus: 1\n"})
    # Unrelated keys are ignored.
    assert luahealth.health_overrides_from_configmap({"url": "https://argocd.example.com"}) == {}


def test_secret_values_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"password": "aHVudGVyMg=="},
    }
    with caplog.at_level(logging.WARNING, logger="tugboat.gitops.luahealth"):
        result = luahealth.LuaCheck("error(obj.data.password)")(secret)
    assert result.status == "Unknown"
    assert "aHVudGVyMg==" not in caplog.text
    assert "withheld" in caplog.text


def test_python_lua_conversion_round_trip() -> None:
    runtime = lua51.LuaRuntime()
    value = {"a": [1, 2.5, "x", True, {"b": {}}], "c": {"d": "e"}, "n": None}
    table = luahealth.to_lua(runtime, value)
    assert luahealth.from_lua(table) == {"a": [1, 2.5, "x", True, {"b": {}}], "c": {"d": "e"}}
    with pytest.raises(luahealth.LuaConversionError, match="nested deeper"):
        deep: dict[str, Any] = {}
        node = deep
        for _ in range(150):
            node["x"] = {}
            node = node["x"]
        luahealth.to_lua(runtime, deep)
    result = luahealth.LuaCheck("return {status = 'Healthy'}")({"deep": deep})
    assert result.status == "Unknown" and "nested deeper" in result.message


def test_checks_are_independent_and_thread_safe() -> None:
    # A script that leaks globals and changes shared libraries does not affect the next evaluation.
    check = luahealth.LuaCheck(
        "counter = (counter or 0) + 1\nstring.upper = nil\n"
        "return {status = 'Healthy', message = tostring(counter)}"
    )
    assert check({}) == HealthStatus("Healthy", "1")
    assert check({}) == HealthStatus("Healthy", "1")

    results: list[HealthStatus] = []
    cert = luahealth.LuaCheck(CERTIFICATE_LUA)

    def work() -> None:
        for _ in range(20):
            results.append(cert(certificate("True")))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [HealthStatus("Healthy", "Certificate ready=True")] * 80


def test_use_open_libs_is_accepted_but_stays_sandboxed() -> None:
    data = {
        "resource.customizations.health.ConfigMap": 'os.execute("true") return {status = "Healthy"}',
        "resource.customizations.useOpenLibs.ConfigMap": "true",
    }
    check = luahealth.health_overrides_from_configmap(data)[("", "ConfigMap")]
    assert check.use_open_libs
    assert check({}).status == "Unknown"
