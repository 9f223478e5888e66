"""Role-based access control of the API server, configured the way Argo CD is.

Operators already keep Argo CD's policy in the ConfigMap ``argocd-rbac-cm``: casbin CSV lines
``p, <subject>, <resource>, <action>, <object>, allow|deny`` and ``g, <user or group>, <role>`` in
``policy.csv`` (plus ``policy.<name>.csv`` overlays), a role every authenticated user gets in
``policy.default`` and glob or regex matching in ``policy.matchMode``. Tugboat reads the same keys, so
an Argo CD policy works unchanged, and adds its own ``rollouts`` resource for the Rollouts dashboard.

How a call is decided (as Argo CD decides it): the default role, the user name and each of the user's
groups are tried one at a time; the call is allowed when one of them is allowed. For one subject an
``allow`` rule must match (through any chain of ``g`` role bindings) and no ``deny`` rule may match.
The ConfigMap is read on every call and the casbin enforcer rebuilt only when its ``resourceVersion``
changes, so an edited policy applies to the next request without a restart. A policy that cannot be
parsed locks the server down to the built-in ``admin`` user and is reported in the log; requests are
then refused, never failed.
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import casbin
from casbin.model import Model

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj

log = logging.getLogger(__name__)

RBAC_CONFIGMAP = "argocd-rbac-cm"
GLOB = "glob"
REGEX = "regex"

# Argo-CD-equivalent casbin model: one decision per subject, deny beats allow, roles through ``g``.
_MODEL = """
[request_definition]
r = sub, res, act, obj

[policy_definition]
p = sub, res, act, obj, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && fits(r.res, p.res) && fits(r.act, p.act) && fits(r.obj, p.obj)
"""

# Tugboat's built-in roles: readonly may look at everything, admin may do everything.
BUILTIN_POLICY = """\
p, role:readonly, applications, get, *, allow
p, role:readonly, applicationsets, get, *, allow
p, role:readonly, certificates, get, *, allow
p, role:readonly, clusters, get, *, allow
p, role:readonly, repositories, get, *, allow
p, role:readonly, projects, get, *, allow
p, role:readonly, accounts, get, *, allow
p, role:readonly, gpgkeys, get, *, allow
p, role:readonly, logs, get, *, allow
p, role:readonly, rollouts, get, *, allow

g, role:admin, role:readonly
p, role:admin, applications, *, *, allow
p, role:admin, applicationsets, *, *, allow
p, role:admin, certificates, *, *, allow
p, role:admin, clusters, *, *, allow
p, role:admin, repositories, *, *, allow
p, role:admin, projects, *, *, allow
p, role:admin, accounts, *, *, allow
p, role:admin, gpgkeys, *, *, allow
p, role:admin, logs, *, *, allow
p, role:admin, exec, *, *, allow
p, role:admin, extensions, *, *, allow
p, role:admin, rollouts, *, *, allow

g, admin, role:admin
"""

_EFFECTS = ("allow", "deny")
_DECISION_CACHE = 10_000  # decisions remembered per built policy (they never change for it)


class PolicyError(ValueError):
    """The policy CSV (or its match mode) cannot be used."""


# ------------------------------------------------------------------------------------------- matching


def _glob_regex(pattern: str) -> str:
    """A regular expression for a glob: ``*`` any run of characters (``/`` included, as in Argo CD),
    ``?`` one character, ``[...]`` a class, ``{a,b}`` alternatives, ``\\`` escapes the next character."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise PolicyError(f"unterminated character class in glob {pattern!r}")
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        raise PolicyError(f"unterminated alternatives in glob {pattern!r}")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, mode: str) -> re.Pattern[str]:
    try:
        if mode == REGEX:
            return re.compile(pattern)
        return re.compile(_glob_regex(pattern), re.DOTALL)
    except re.error as exc:
        raise PolicyError(f"invalid {mode} pattern {pattern!r}: {exc}") from exc


def matches(value: str, pattern: str, *, mode: str = GLOB) -> bool:
    """Whether ``value`` matches a policy field: a whole-string glob, or (``regex`` mode) a regular
    expression searched anywhere in ``value`` as casbin's regexMatch does."""
    if pattern == value:
        return True
    compiled = _compiled(pattern, mode)
    found = compiled.search(value) if mode == REGEX else compiled.fullmatch(value)
    return found is not None


# -------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Rules:
    """Parsed policy lines: ``p`` rules (sub, res, act, obj, eft) and ``g`` bindings (member, role)."""

    policies: tuple[tuple[str, str, str, str, str], ...] = ()
    bindings: tuple[tuple[str, str], ...] = ()

    def __add__(self, other: Rules) -> Rules:
        return Rules(self.policies + other.policies, self.bindings + other.bindings)


def parse_csv(text: str, *, source: str = "policy.csv") -> Rules:
    """The rules of a casbin policy CSV; :class:`PolicyError` (naming ``source`` and the line) when a
    line is not a ``p`` rule with 4 or 5 fields (the effect defaults to allow) or a ``g`` binding."""
    policies: list[tuple[str, str, str, str, str]] = []
    bindings: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            fields = [field.strip() for field in next(csv.reader([line], skipinitialspace=True))]
        except csv.Error as exc:
            raise PolicyError(f"{source} line {number}: {exc}") from exc
        kind, rest = fields[0], fields[1:]
        if kind == "p" and len(rest) in (4, 5) and all(rest[:4]):
            effect = rest[4].lower() if len(rest) == 5 else "allow"
            if effect not in _EFFECTS:
                raise PolicyError(f"{source} line {number}: effect must be allow or deny, got {rest[4]!r}")
            policies.append((rest[0], rest[1], rest[2], rest[3], effect))
        elif kind == "g" and len(rest) == 2 and all(rest):
            bindings.append((rest[0], rest[1]))
        else:
            raise PolicyError(
                f"{source} line {number}: expected 'p, sub, res, act, obj, eft' or 'g, sub, role'"
            )
    return Rules(tuple(policies), tuple(bindings))


def configured_rules(data: Mapping[str, str]) -> Rules:
    """The rules of ``policy.csv`` followed by every ``policy.<name>.csv`` overlay in key order."""
    overlays = sorted(key for key in data if key.startswith("policy.") and key.endswith(".csv"))
    keys = [key for key in ("policy.csv",) if key in data] + [k for k in overlays if k != "policy.csv"]
    rules = Rules()
    for key in keys:
        rules = rules + parse_csv(str(data[key] or ""), source=key)
    return rules


# ------------------------------------------------------------------------------------------- enforcer


def _unique(items: Iterable[tuple[str, ...]]) -> list[list[str]]:
    return [list(item) for item in dict.fromkeys(items)]


def _validate(rules: Rules, mode: str) -> None:
    for _sub, res, act, obj, _eft in rules.policies:
        for pattern in (res, act, obj):
            _compiled(pattern, mode)


@dataclass(frozen=True)
class Decider:
    """One built policy: the casbin enforcer and the role every authenticated user gets."""

    enforcer: casbin.Enforcer
    default_role: str = ""
    _decisions: dict[tuple[str, str, str, str], bool] = field(default_factory=dict)

    def _decide(self, subject: str, resource: str, action: str, obj: str) -> bool:
        key = (subject, resource, action, obj)
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= _DECISION_CACHE:
                self._decisions.clear()
            decision = self._decisions[key] = bool(self.enforcer.enforce(*key))
        return decision

    def enforce(self, subject: str, groups: Sequence[str], resource: str, action: str, obj: str) -> bool:
        subjects = [s for s in (self.default_role, subject, *groups) if s]
        return any(self._decide(s, resource, action, obj) for s in dict.fromkeys(subjects))


def build(rules: Rules, *, default_role: str = "", mode: str = GLOB) -> Decider:
    """A :class:`Decider` for the built-in policy plus ``rules``."""
    if mode not in (GLOB, REGEX):
        raise PolicyError(f"policy.matchMode must be glob or regex, got {mode!r}")
    every = parse_csv(BUILTIN_POLICY, source="built-in policy") + rules
    _validate(rules, mode)
    model = Model()
    model.load_model_from_text(_MODEL)
    enforcer = casbin.Enforcer(model)
    fits: Callable[[str, str], bool] = functools.partial(_fits, mode=mode)
    enforcer.add_function("fits", fits)
    enforcer.add_named_policies("p", _unique(every.policies))
    enforcer.add_named_grouping_policies("g", _unique(every.bindings))
    return Decider(enforcer, default_role)


def _fits(value: str, pattern: str, *, mode: str) -> bool:
    # Built-in patterns are plain globs even in regex mode (``*`` is not a valid regular expression).
    return matches(value, pattern, mode=GLOB if pattern == "*" else mode)


def from_configmap(data: Mapping[str, str] | None) -> Decider:
    """The decider for ``argocd-rbac-cm`` data (``None``: no ConfigMap, built-in policy only);
    :class:`PolicyError` when the data cannot be used."""
    if data is None:
        return build(Rules())
    mode = (data.get("policy.matchMode") or GLOB).strip() or GLOB
    return build(configured_rules(data), default_role=(data.get("policy.default") or "").strip(), mode=mode)


@functools.lru_cache(maxsize=1)
def locked_down() -> Decider:
    """The decider used while the configured policy is unusable: only the built-in ``admin`` user."""
    return build(Rules())


def _string_data(configmap: Obj) -> dict[str, str]:
    data = configmap.get("data")
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


class Policy:
    """Decides each API call from the RBAC ConfigMap in ``namespace``."""

    def __init__(self, client: Client, *, namespace: str, configmap: str = RBAC_CONFIGMAP) -> None:
        self.client = client
        self.namespace = namespace
        self.configmap = configmap
        self._version: str | None = None
        self._decider: Decider | None = None

    def _decider_for(self, configmap: Obj | None) -> Decider:
        version = str((configmap or {}).get("metadata", {}).get("resourceVersion", "missing"))
        if self._decider is not None and version == self._version:
            return self._decider
        try:
            decider = from_configmap(None if configmap is None else _string_data(configmap))
        except PolicyError as exc:
            log.error(
                "RBAC policy in configmap %s/%s is invalid, only 'admin' is allowed until it is fixed: %s",
                self.namespace,
                self.configmap,
                exc,
            )
            decider = locked_down()
        self._version, self._decider = version, decider
        return decider

    async def current(self) -> Decider:
        """The decider for the ConfigMap as it is now (rebuilt only when it changed)."""
        try:
            configmap = await self.client.get_or_none(kinds.CONFIGMAP, self.configmap, self.namespace)
        except errors.KubeError as exc:
            log.error("cannot read RBAC configmap %s/%s: %s", self.namespace, self.configmap, exc)
            return self._decider or locked_down()
        return self._decider_for(configmap)

    async def enforce(
        self, subject: str, groups: Sequence[str], resource: str, action: str, obj: str
    ) -> bool:
        """Whether ``subject`` (a user, with its ``groups``) may do ``action`` on ``obj`` of ``resource``."""
        decider = await self.current()
        return decider.enforce(subject, groups, resource, action, obj)
