"""Argo CD AppProject enforcement: what an Application may deploy, from where, to where.

Every Application names an AppProject, and the project is the tenancy boundary of Argo CD: it lists the
repositories an Application may take manifests from (``sourceRepos``), the clusters and namespaces it may
deploy to (``destinations``), the kinds it may create (cluster- and namespace-scoped allow/deny lists)
and the namespaces Applications may live in (``sourceNamespaces``). The controller asks this module
before comparing and before syncing, and reports a refusal with Argo CD's own condition messages, so
users' existing projects keep meaning exactly what they meant under Argo CD.

Matching follows upstream (``AppProject.IsSourcePermitted``, ``IsDestinationPermitted``,
``IsGroupKindNamePermitted``, ``IsAppNamespacePermitted``), including its less obvious corners:

- repository and destination patterns are gobwas globs (``*``, ``**``, ``?``, ``[a-z]``, ``[!a]``,
  ``{a,b}``, ``\\`` escapes). For repositories ``/`` is a separator, so ``*`` stays inside one path
  segment and ``**`` crosses them; a lone ``*`` still matches every repository. Destination patterns
  have no separator;
- an entry starting with ``!`` rejects what it matches *and counts as a match for everything else*:
  upstream treats ``!x`` as "not x", so ``sourceRepos: ['!https://evil/*']`` alone permits every other
  repository. Any rejecting ``!`` entry wins over every allowing entry;
- resource lists use Go's ``filepath.Match`` (``*`` does not cross ``/``, ``[^a]`` negates); a missing
  cluster whitelist denies every cluster-scoped kind; a missing namespace whitelist allows every
  namespaced kind but an explicitly *empty* one (``[]``) denies them all (upstream #5540). Only the
  cluster lists have a ``name`` glob (the namespace lists are plain group/kinds upstream);
- repository URLs are compared normalized: whitespace trimmed, lower-cased (like upstream, the path
  too; local ``file://`` paths keep their case), ``git@host:path`` read as ``git@host/path``, the
  ``ssh://`` scheme and http(s) credentials dropped, trailing ``/`` and ``.git`` removed.

What we reject that upstream's controller silently accepts: ``!*`` (which upstream's API server refuses:
it denies everything), fields of the wrong type and globs that do not compile. These raise
:class:`ProjectError`, naming the field, instead of quietly matching nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tugboat.gitops import errors, git

Dialect = Literal["gobwas", "filepath"]


class ProjectError(errors.GitOpsError):
    """An AppProject is malformed: the message names the offending field (``spec.sourceRepos[2]``, …)."""


# --- globs -----------------------------------------------------------------------------------------------


class _GlobSyntaxError(ValueError):
    """A pattern that does not compile (unterminated or empty ``[...]``, reversed range, …)."""


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One character of a ``[...]`` class at ``i`` (honouring ``\\`` escapes) and the index after it."""
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            raise _GlobSyntaxError("unterminated character class")
        return pattern[i + 1], i + 2
    return pattern[i], i + 1


def _translate_class(pattern: str, start: int, negators: str) -> tuple[str, int]:
    """The regex for the class whose body starts at ``start`` (just after ``[``) and the index after ``]``."""
    i = start
    negate = i < len(pattern) and pattern[i] in negators
    if negate:
        i += 1
    items: list[str] = []
    while True:
        if i >= len(pattern):
            raise _GlobSyntaxError("unterminated character class")
        if pattern[i] == "]":
            break
        low, i = _class_char(pattern, i)
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            high, i = _class_char(pattern, i + 1)
            if high < low:
                raise _GlobSyntaxError(f"character range {low}-{high} is reversed")
            items.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            items.append(re.escape(low))
    if not items:
        raise _GlobSyntaxError("empty character class")
    return ("[^" if negate else "[") + "".join(items) + "]", i + 1


def _translate(pattern: str, *, separators: str, dialect: Dialect) -> str:
    """A regex equivalent to ``pattern`` in gobwas/glob (Argo's ``glob.Match``) or Go's ``filepath.Match``.

    gobwas: ``**`` crosses separators, ``{a,b}`` alternatives (an unclosed ``{`` is closed at the end, as
    gobwas does), ``[!…]`` negation. filepath: ``/`` is the separator, ``[^…]`` negation, a trailing
    backslash is an error.
    """
    gobwas = dialect == "gobwas"
    one = f"[^{re.escape(separators)}]" if separators else "."
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                if not gobwas:
                    raise _GlobSyntaxError("pattern ends with a backslash")
                break
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            if gobwas and pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append(f"{one}*")
        elif ch == "?":
            out.append(one)
        elif ch == "[":
            cls, i = _translate_class(pattern, i + 1, "!" if gobwas else "^")
            out.append(cls)
            continue
        elif gobwas and ch == "{":
            depth += 1
            out.append("(?:")
        elif gobwas and ch == "," and depth:
            out.append("|")
        elif gobwas and ch == "}" and depth:
            depth -= 1
            out.append(")")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + ")" * depth


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str, separators: str, dialect: Dialect) -> re.Pattern[str]:
    return re.compile(_translate(pattern, separators=separators, dialect=dialect), re.DOTALL)


def _glob(pattern: str, value: str, *, separators: str = "", dialect: Dialect = "gobwas") -> bool:
    """Whether ``value`` matches ``pattern``; a pattern that does not compile matches nothing (upstream)."""
    try:
        compiled = _compile(pattern, separators, dialect)
    except _GlobSyntaxError:
        return False
    return compiled.fullmatch(value) is not None


def _is_deny(pattern: str) -> bool:
    return pattern.startswith("!")


def _argo_glob(pattern: str, value: str, *, separators: str = "") -> bool:
    """Argo's ``globMatch`` with negation: ``!p`` is true when ``p`` does *not* match; ``*`` matches all."""
    if _is_deny(pattern):
        return not _glob(pattern[1:], value, separators=separators)
    if pattern == "*":
        return True
    return _glob(pattern, value, separators=separators)


# --- repository URLs -------------------------------------------------------------------------------------

_SCP_LIKE = re.compile(r"^(?:ssh://)?[^/:]*?@[^@]+$")
_HTTP_USERINFO = re.compile(r"^(https?://)[^/@]*@")
_SSH_AUTHORITY_PATH = re.compile(r"^([^/\[]*?):(?![0-9]*(?:/|$))")


def _is_local(url: str) -> bool:
    return url.startswith("/") or url[:7].lower() == "file://"


@functools.lru_cache(maxsize=4096)
def normalize_repo_url(url: str) -> str:
    """The form in which repository URLs and ``sourceRepos`` patterns are compared (see the module doc).

    ``https://GitHub.com/Org/Repo.git/`` → ``https://github.com/org/repo``; ``git@github.com:org/repo`` and
    ``ssh://git@github.com/org/repo`` → ``git@github.com/org/repo``; ``/srv/Git/app`` → ``file:///srv/Git/app``.
    """
    url = url.strip()
    if _is_local(url):
        normalized = "file://" + (url if url.startswith("/") else url[7:])
    else:
        normalized = url.lower()
        scp_like = _SCP_LIKE.match(normalized) is not None
        if scp_like and not normalized.startswith("ssh://"):
            normalized = normalized.replace(":", "/", 1)
        normalized = normalized.removeprefix("ssh://")
        if scp_like:  # ``ssh://git@host:org/repo`` (a path after the colon, not a port) reads like scp
            normalized = _SSH_AUTHORITY_PATH.sub(r"\1/", normalized, count=1)
        normalized = _HTTP_USERINFO.sub(r"\1", normalized)
    return normalized.rstrip("/").removesuffix(".git").rstrip("/")


def _normalize_pattern(pattern: str) -> str:
    if _is_deny(pattern):
        return "!" + normalize_repo_url(pattern[1:])
    return normalize_repo_url(pattern)


# --- the project -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """One ``spec.destinations`` entry; an empty field is unset (it matches only an empty value)."""

    server: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class ResourceRule:
    """One entry of a resource allow/deny list: ``group`` and ``kind`` globs, an optional ``name`` glob
    (cluster-scoped lists only; empty means any name)."""

    group: str
    kind: str
    name: str = ""

    def matches(self, *, group: str, kind: str, name: str) -> bool:
        if not _glob(self.kind, kind, separators="/", dialect="filepath"):
            return False
        if not _glob(self.group, group, separators="/", dialect="filepath"):
            return False
        return not self.name or _glob(self.name, name, separators="/", dialect="filepath")


def _destination_verdict(
    entry: Destination, *, server: str, name: str, namespace: str
) -> Literal["match", "deny", "none"]:
    """What one destination entry says (upstream's ``isDestinationMatched`` loop body, operator precedence
    included): a ``!`` cluster pattern that rejects the cluster denies when the namespace matches (a
    ``!`` name pattern denies regardless), and a ``!`` namespace pattern that rejects the namespace
    denies on a matching server."""
    name_matched = bool(name) and _argo_glob(entry.name, name)
    server_matched = bool(server) and _argo_glob(entry.server, server)
    namespace_matched = _argo_glob(entry.namespace, namespace)
    if (server_matched or name_matched) and namespace_matched:
        return "match"
    denied_name = not name_matched and _is_deny(entry.name)
    denied_server = not server_matched and _is_deny(entry.server) and namespace_matched
    denied_namespace = not namespace_matched and _is_deny(entry.namespace) and server_matched
    return "deny" if denied_name or denied_server or denied_namespace else "none"


def _in_list(rules: Sequence[ResourceRule], *, group: str, kind: str, name: str) -> bool:
    return any(rule.matches(group=group, kind=kind, name=name) for rule in rules)


@dataclass(frozen=True)
class Project:
    """An AppProject's enforcement rules. Build it with :meth:`from_object`, which validates.

    ``namespace_resource_whitelist`` is ``None`` when the field is absent (every namespaced kind is
    allowed) and ``()`` when it is an empty list (none is).
    """

    name: str
    source_repos: tuple[str, ...] = ()
    destinations: tuple[Destination, ...] = ()
    cluster_resource_whitelist: tuple[ResourceRule, ...] = ()
    cluster_resource_blacklist: tuple[ResourceRule, ...] = ()
    namespace_resource_whitelist: tuple[ResourceRule, ...] | None = None
    namespace_resource_blacklist: tuple[ResourceRule, ...] = ()
    source_namespaces: tuple[str, ...] = ()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Project:
        """Read an AppProject object. Raises :class:`ProjectError` naming the field for a missing name,
        fields of the wrong type, ``!*`` patterns and globs that do not compile."""
        return _parse_project(obj)

    def source_permitted(self, repo_url: str) -> bool:
        """Whether an Application may take manifests from ``repo_url`` (``IsSourcePermitted``)."""
        source = normalize_repo_url(repo_url)
        any_matched = False
        for pattern in self.source_repos:
            normalized = _normalize_pattern(pattern)
            if _argo_glob(normalized, source, separators="/"):
                any_matched = True
            elif _is_deny(normalized):
                return False
        return any_matched

    def destination_permitted(self, *, server: str, name: str, namespace: str) -> bool:
        """Whether a cluster (by its ``server`` URL and its ``name``; pass both) and ``namespace`` are an
        allowed destination (``IsDestinationPermitted``). An entry matches when its server or its name
        matches and its namespace does; ``*`` matches the empty namespace of cluster-scoped Applications."""
        any_matched = False
        for entry in self.destinations:
            verdict = _destination_verdict(entry, server=server, name=name, namespace=namespace)
            if verdict == "deny":
                return False
            any_matched = any_matched or verdict == "match"
        return any_matched

    def resource_permitted(self, *, group: str, kind: str, namespaced: bool, name: str = "") -> bool:
        """Whether the project allows a resource of this group/kind (``IsGroupKindNamePermitted``)."""
        if namespaced:
            whitelist = self.namespace_resource_whitelist
            allowed = whitelist is None or _in_list(whitelist, group=group, kind=kind, name=name)
            denied = _in_list(self.namespace_resource_blacklist, group=group, kind=kind, name=name)
        else:
            allowed = _in_list(self.cluster_resource_whitelist, group=group, kind=kind, name=name)
            denied = _in_list(self.cluster_resource_blacklist, group=group, kind=kind, name=name)
        return allowed and not denied

    def source_namespace_permitted(self, namespace: str, *, control_namespace: str) -> bool:
        """Whether an Application living in ``namespace`` may use this project (``IsAppNamespacePermitted``):
        always in the control namespace, elsewhere only when a ``sourceNamespaces`` entry matches (a glob,
        or a regular expression written ``/…/``, searched unanchored)."""
        if namespace in ("", control_namespace):
            return True
        return any(_source_namespace_matches(entry, namespace) for entry in self.source_namespaces)


def _source_namespace_matches(entry: str, namespace: str) -> bool:
    if len(entry) >= 2 and entry.startswith("/") and entry.endswith("/"):
        try:
            if re.search(entry[1:-1], namespace):
                return True
        except re.error:  # upstream's regexp2 accepts some syntax Python does not: no match, like its errors
            pass
    return _glob(entry, namespace)


# --- parsing ---------------------------------------------------------------------------------------------


def _string(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProjectError(f"{field} must be a string, not {type(value).__name__}")
    return value


def _list(spec: Mapping[str, Any], key: str) -> list[Any] | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ProjectError(f"spec.{key} must be a list, not {type(value).__name__}")
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProjectError(f"{field} must be an object, not {type(value).__name__}")
    return value


def _check_glob(pattern: str, field: str, *, separators: str = "", dialect: Dialect = "gobwas") -> None:
    try:
        _compile(pattern, separators, dialect)
    except _GlobSyntaxError as exc:
        raise ProjectError(f"{field}: invalid pattern {pattern!r}: {exc}") from exc


def _check_not_deny_all(pattern: str, field: str) -> None:
    if pattern == "!*":
        raise ProjectError(f"{field} has an invalid format, '!*' (it would deny everything)")


def _source_repos(spec: Mapping[str, Any]) -> tuple[str, ...]:
    repos: list[str] = []
    for i, item in enumerate(_list(spec, "sourceRepos") or []):
        field = f"spec.sourceRepos[{i}]"
        pattern = _string(item, field)
        _check_not_deny_all(pattern, field)
        normalized = _normalize_pattern(pattern)
        _check_glob(normalized.removeprefix("!"), field, separators="/")
        repos.append(pattern)
    return tuple(repos)


def _destinations(spec: Mapping[str, Any]) -> tuple[Destination, ...]:
    destinations: list[Destination] = []
    for i, item in enumerate(_list(spec, "destinations") or []):
        entry = _mapping(item, f"spec.destinations[{i}]")
        values: dict[str, str] = {}
        for key in ("server", "name", "namespace"):
            field = f"spec.destinations[{i}].{key}"
            pattern = _string(entry.get(key), field)
            _check_not_deny_all(pattern, field)
            _check_glob(pattern.removeprefix("!"), field)
            values[key] = pattern
        destinations.append(Destination(**values))
    return tuple(destinations)


def _resource_rules(spec: Mapping[str, Any], key: str, *, named: bool) -> tuple[ResourceRule, ...] | None:
    items = _list(spec, key)
    if items is None:
        return None
    rules: list[ResourceRule] = []
    for i, item in enumerate(items):
        entry = _mapping(item, f"spec.{key}[{i}]")
        values: dict[str, str] = {}
        for field_name in ("group", "kind", "name") if named else ("group", "kind"):
            field = f"spec.{key}[{i}].{field_name}"
            pattern = _string(entry.get(field_name), field)
            _check_glob(pattern, field, separators="/", dialect="filepath")
            values[field_name] = pattern
        rules.append(ResourceRule(**values))
    return tuple(rules)


def _source_namespaces(spec: Mapping[str, Any]) -> tuple[str, ...]:
    entries = [
        _string(item, f"spec.sourceNamespaces[{i}]")
        for i, item in enumerate(_list(spec, "sourceNamespaces") or [])
    ]
    for i, entry in enumerate(entries):
        if not (len(entry) >= 2 and entry.startswith("/") and entry.endswith("/")):
            _check_glob(entry, f"spec.sourceNamespaces[{i}]")
    return tuple(entries)


def _parse_project(obj: Mapping[str, Any]) -> Project:
    metadata = _mapping(obj.get("metadata"), "metadata")
    name = _string(metadata.get("name"), "metadata.name")
    if not name:
        raise ProjectError("metadata.name is missing")
    spec_value = obj.get("spec")
    spec = {} if spec_value is None else _mapping(spec_value, "spec")
    return Project(
        name=name,
        source_repos=_source_repos(spec),
        destinations=_destinations(spec),
        cluster_resource_whitelist=_resource_rules(spec, "clusterResourceWhitelist", named=True) or (),
        cluster_resource_blacklist=_resource_rules(spec, "clusterResourceBlacklist", named=True) or (),
        namespace_resource_whitelist=_resource_rules(spec, "namespaceResourceWhitelist", named=False),
        namespace_resource_blacklist=_resource_rules(spec, "namespaceResourceBlacklist", named=False) or (),
        source_namespaces=_source_namespaces(spec),
    )


# --- Argo CD's messages ----------------------------------------------------------------------------------


def violations(
    project: Project,
    *,
    repo_url: str,
    destination_server: str,
    destination_name: str,
    destination_namespace: str,
    destination_by_name: bool = False,
) -> list[str]:
    """The ``InvalidSpecError`` messages Argo CD gives an Application that breaks its project's rules
    (empty when it does not). ``destination_by_name`` says the Application's ``spec.destination`` names the
    cluster by ``name``: upstream then shows the name where the message says "server". Credentials in the
    repository URL are redacted."""
    messages: list[str] = []
    if not project.source_permitted(repo_url):
        messages.append(
            f"application repo {git.redact(repo_url)} is not permitted in project '{project.name}'"
        )
    if not project.destination_permitted(
        server=destination_server, name=destination_name, namespace=destination_namespace
    ):
        shown = destination_name if destination_by_name else destination_server
        messages.append(
            f"application destination server '{shown}' and namespace '{destination_namespace}' do not match"
            f" any of the allowed destinations in project '{project.name}'"
        )
    return messages


def resource_violation(
    project: Project,
    *,
    group: str,
    kind: str,
    namespace: str,
    name: str,
    namespaced: bool,
    destination_server: str = "",
    destination_name: str = "",
) -> str | None:
    """Why a sync may not apply this resource (Argo CD's sync-time message), or ``None`` when it may.

    The group/kind (and, for cluster-scoped kinds, name) is checked against the resource lists; when the
    destination cluster is given, a namespaced resource's own namespace must also be an allowed
    destination, as upstream checks before applying.
    """
    if not project.resource_permitted(group=group, kind=kind, namespaced=namespaced, name=name):
        return f"resource {group}:{kind} is not permitted in project {project.name}"
    if (
        namespaced
        and (destination_server or destination_name)
        and not project.destination_permitted(
            server=destination_server, name=destination_name, namespace=namespace
        )
    ):
        return f"namespace {namespace} is not permitted in project '{project.name}'"
    return None


def missing_project_message(name: str) -> str:
    """Argo CD's ``InvalidSpecError`` message when ``spec.project`` names a missing AppProject."""
    return f"Application referencing project {name} which does not exist"


def source_namespace_message(*, app_name: str, app_namespace: str, project: str) -> str:
    """Argo CD's message when an Application outside the control namespace uses a project whose
    ``sourceNamespaces`` does not allow its namespace."""
    return (
        f"application '{app_name}' in namespace '{app_namespace}' is not permitted to use project '{project}'"
    )
