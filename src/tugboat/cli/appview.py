"""How ``tugboat app …`` shows Applications: tables, summaries, history, resource trees, sync progress.

The commands in :mod:`tugboat.cli.appcmd` talk to the cluster; everything they print is built here, by
pure functions from Application dicts (as read from the API, ``status`` as in research/argocd.md §2) to
rich renderables or strings. Keeping the two apart lets the layouts be tested without a cluster, and
keeps the columns and wording of ``argocd app …`` in one place.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tugboat.gitops import health, resourcekey

App = Mapping[str, Any]

NONE = "<none>"
COMPLETED_PHASES = frozenset({"Succeeded", "Failed", "Error"})
RUNNING_PHASES = frozenset({"Running", "Terminating"})
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_KEY_WIDTH = 20


# ------------------------------------------------------------------------------------------ fields


def field(obj: Any, *path: str | int) -> Any:
    """``obj[path[0]][path[1]]…``, or ``None`` as soon as a step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
            obj = obj[step]
        elif isinstance(obj, Mapping):
            obj = obj.get(step)
        else:
            return None
    return obj


def text(obj: Any, *path: str | int) -> str:
    """A field as a string (``""`` when missing)."""
    value = field(obj, *path)
    return "" if value is None else str(value)


def items(obj: Any, *path: str | int) -> list[Mapping[str, Any]]:
    """A list field's mapping items (missing or malformed entries are skipped)."""
    value = field(obj, *path)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def qualified_name(app: App) -> str:
    """``<app namespace>/<name>``, as Argo CD 2.5+ names Applications."""
    return f"{text(app, 'metadata', 'namespace')}/{text(app, 'metadata', 'name')}"


def sources(app: App) -> list[Mapping[str, Any]]:
    """The Application's sources: ``spec.sources`` for multi-source apps, else ``[spec.source]``."""
    many = items(app, "spec", "sources")
    if many:
        return many
    single = field(app, "spec", "source")
    return [single] if isinstance(single, Mapping) else []


def cluster(app: App) -> str:
    """The destination cluster: its server URL, or its name when only the name is given."""
    return text(app, "spec", "destination", "server") or text(app, "spec", "destination", "name")


def is_automated(app: App) -> bool:
    """Whether automated sync is on (``automated: {}`` counts; ``enabled: false`` turns it off)."""
    automated = field(app, "spec", "syncPolicy", "automated")
    return isinstance(automated, Mapping) and automated.get("enabled") is not False


def short_revision(revision: str) -> str:
    """A Git SHA shortened to 7 characters; other revisions (chart versions, tags) unchanged."""
    return revision[:7] if _SHA.match(revision) else revision


def format_time(value: str) -> str:
    """An RFC 3339 timestamp as ``2026-08-01 10:00:05 +0000 UTC`` (the form ``argocd`` prints)."""
    parsed = parse_time(value)
    if parsed is None:
        return value
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def parse_time(value: str) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or ``None`` when it is missing or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _duration(start: str, end: str) -> str:
    begin, finish = parse_time(start), parse_time(end)
    if begin is None or finish is None:
        return ""
    seconds = int((finish - begin).total_seconds())
    minutes, seconds = divmod(max(seconds, 0), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


# --------------------------------------------------------------------------------------- summaries


def sync_policy(app: App) -> str:
    """The SYNCPOLICY column of ``app list``: ``Manual``, ``Auto`` or ``Auto-Prune``."""
    if not is_automated(app):
        return "Manual"
    return "Auto-Prune" if field(app, "spec", "syncPolicy", "automated", "prune") else "Auto"


def sync_policy_detail(app: App) -> str:
    """The Sync Policy line of ``app get``: ``Manual`` or ``Automated`` with its options."""
    if not is_automated(app):
        return "Manual"
    automated = field(app, "spec", "syncPolicy", "automated")
    options = [label for key, label in (("prune", "Prune"), ("selfHeal", "Self Heal")) if automated.get(key)]
    return f"Automated ({', '.join(options)})" if options else "Automated"


def conditions_summary(app: App) -> str:
    """The CONDITIONS column: condition types in order, with a count when one repeats."""
    counts: dict[str, int] = {}
    for condition in items(app, "status", "conditions"):
        kind = text(condition, "type") or "Unknown"
        counts[kind] = counts.get(kind, 0) + 1
    if not counts:
        return NONE
    return ",".join(kind if n == 1 else f"{kind}({n})" for kind, n in counts.items())


def sync_status(app: App) -> str:
    """``Synced to HEAD (0d521c6)``, ``OutOfSync from main (…)``, or the bare status."""
    status = text(app, "status", "sync", "status") or "Unknown"
    revisions = [text(app, "status", "sync", "revision")] if field(app, "status", "sync", "revision") else []
    revisions = revisions or [str(r) for r in field(app, "status", "sync", "revisions") or []]
    srcs = sources(app)
    out = status
    if len(srcs) == 1 and status in ("Synced", "OutOfSync"):
        target = text(srcs[0], "targetRevision") or "HEAD"
        out += f" {'to' if status == 'Synced' else 'from'} {target}"
    if revisions:
        out += f" ({', '.join(short_revision(r) for r in revisions)})"
    return out


def health_status(app: App) -> str:
    """The Application's health, with the controller's message when there is one."""
    status = text(app, "status", "health", "status") or "Unknown"
    message = text(app, "status", "health", "message")
    return f"{status} ({message})" if message else status


def _key_values(pairs: Iterable[tuple[str, str]]) -> Text:
    pairs = list(pairs)
    width = max([_KEY_WIDTH, *(len(key) + 3 for key, _ in pairs)])  # "key:" and two spaces
    lines = [f"{key + ':':<{width}}{value}" for key, value in pairs]
    return Text("\n".join(lines))


def summary(app: App) -> Text:
    """The head of ``app get``: name, project, destination, source(s), sync policy, sync and health."""
    pairs = [
        ("Name", qualified_name(app)),
        ("Project", text(app, "spec", "project")),
        ("Server", cluster(app)),
        ("Namespace", text(app, "spec", "destination", "namespace")),
    ]
    srcs = sources(app)
    if len(srcs) == 1:
        pairs += _source_pairs(srcs[0])
    else:
        for index, source in enumerate(srcs):
            pairs += [(f"Source {index + 1} {key}", value) for key, value in _source_pairs(source)]
    pairs += [
        ("Sync Policy", sync_policy_detail(app)),
        ("Sync Status", sync_status(app)),
        ("Health Status", health_status(app)),
    ]
    return _key_values(pairs)


def _source_pairs(source: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = [("Repo", text(source, "repoURL")), ("Target", text(source, "targetRevision"))]
    if source.get("chart"):
        pairs.append(("Chart", text(source, "chart")))
    else:
        pairs.append(("Path", text(source, "path")))
    return pairs


def operation_summary(app: App) -> Text | None:
    """The last (or current) operation's result, as ``app get`` and ``app sync`` print it."""
    state = field(app, "status", "operationState")
    if not isinstance(state, Mapping):
        return None
    revision = text(state, "syncResult", "revision") or text(state, "operation", "sync", "revision")
    pairs = [("Operation", "Sync")]
    if revision:
        pairs.append(("Sync Revision", revision))
    pairs += [("Phase", text(state, "phase")), ("Start", format_time(text(state, "startedAt")))]
    if state.get("finishedAt"):
        pairs += [
            ("Finished", format_time(text(state, "finishedAt"))),
            ("Duration", _duration(text(state, "startedAt"), text(state, "finishedAt"))),
        ]
    if state.get("retryCount"):
        pairs.append(("Retry Count", text(state, "retryCount")))
    pairs.append(("Message", text(state, "message")))
    return _key_values(pairs)


def requested_operation(app: App) -> Text | None:
    """The pending top-level ``operation`` (what was asked for, not yet finished), or ``None``."""
    operation = field(app, "operation")
    if not isinstance(operation, Mapping):
        return None
    sync = field(operation, "sync") or {}
    pairs = [("Requested Operation", "Sync" if "sync" in operation else ", ".join(operation))]
    pairs.append(("Initiated By", _initiator(field(operation, "initiatedBy"))))
    if isinstance(sync, Mapping):
        if sync.get("revision"):
            pairs.append(("Revision", text(sync, "revision")))
        flags = [name for name in ("prune", "dryRun") if sync.get(name)]
        if flags:
            pairs.append(("Options", ", ".join(flags)))
        if sync.get("syncOptions"):
            pairs.append(("Sync Options", ", ".join(str(o) for o in sync["syncOptions"])))
        for resource in items(sync, "resources"):
            pairs.append(("Resource", _resource_ref(resource)))
    return _key_values(pairs)


def _initiator(initiated_by: Any) -> str:
    if not isinstance(initiated_by, Mapping):
        return ""
    if initiated_by.get("automated"):
        return "automated sync policy"
    return text(initiated_by, "username")


def _resource_ref(resource: Mapping[str, Any]) -> str:
    where = text(resource, "name")
    if resource.get("namespace"):
        where = f"{text(resource, 'namespace')}/{where}"
    return f"{text(resource, 'group')}:{text(resource, 'kind')}:{where}"


def conditions_table(app: App) -> Table | None:
    """``CONDITION MESSAGE LAST TRANSITION`` for the Application's conditions, or ``None``."""
    conditions = items(app, "status", "conditions")
    if not conditions:
        return None
    table = plain_table("CONDITION", "MESSAGE", "LAST TRANSITION")
    for condition in conditions:
        table.add_row(
            text(condition, "type"),
            text(condition, "message"),
            format_time(text(condition, "lastTransitionTime")),
        )
    return table


# -------------------------------------------------------------------------------------- resources


def plain_table(*headers: str) -> Table:
    """A borderless table with two spaces between columns, like ``argocd``'s tab-aligned output."""
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, header_style="bold", pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _key(resource: Mapping[str, Any]) -> resourcekey.ResourceKey:
    return resourcekey.ResourceKey(
        text(resource, "group"), text(resource, "kind"), text(resource, "namespace"), text(resource, "name")
    )


def resource_rows(app: App) -> list[tuple[str, str, str, str, str, str, str, str]]:
    """Rows ``GROUP KIND NAMESPACE NAME STATUS HEALTH HOOK MESSAGE`` of ``app get``.

    Managed resources come from ``status.resources``; messages, hooks and pruned resources from the last
    operation's ``syncResult`` (hooks show their hook phase as status and their hook type).
    """
    results = {_key(r): r for r in items(app, "status", "operationState", "syncResult", "resources")}
    rows = []
    seen = set()
    for resource in items(app, "status", "resources"):
        key = _key(resource)
        seen.add(key)
        result = results.get(key, {})
        message = text(result, "message") or ("requires pruning" if resource.get("requiresPruning") else "")
        rows.append(
            (
                key.group,
                key.kind,
                key.namespace,
                key.name,
                text(resource, "status"),
                text(resource, "health", "status"),
                text(result, "hookType") if resource.get("hook") else "",
                message,
            )
        )
    for key, result in results.items():
        if key in seen or not (result.get("hookType") or result.get("status") == "Pruned"):
            continue
        status = text(result, "hookPhase") if result.get("hookType") else text(result, "status")
        rows.append(
            (
                key.group,
                key.kind,
                key.namespace,
                key.name,
                status,
                "",
                text(result, "hookType"),
                text(result, "message"),
            )
        )
    return rows


def resource_table(app: App) -> Table:
    """The resource table of ``app get``."""
    table = plain_table("GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "HOOK", "MESSAGE")
    for row in resource_rows(app):
        table.add_row(*row)
    return table


def detail(app: App, *, show_operation: bool = False) -> Group:
    """Everything ``app get`` prints: summary, operation, conditions, resources."""
    parts: list[RenderableType] = [summary(app)]
    if show_operation:
        requested = requested_operation(app)
        if requested is not None:
            parts += [Text(""), requested]
    operation = operation_summary(app)
    if operation is not None:
        parts += [Text(""), operation]
    conditions = conditions_table(app)
    if conditions is not None:
        parts += [Text(""), conditions]
    parts += [Text(""), resource_table(app)]
    return Group(*parts)


# ------------------------------------------------------------------------------------------- lists


def list_row(app: App, *, wide: bool = False) -> list[str]:
    """One ``app list`` row."""
    row = [
        qualified_name(app),
        cluster(app),
        text(app, "spec", "destination", "namespace"),
        text(app, "spec", "project"),
        text(app, "status", "sync", "status"),
        text(app, "status", "health", "status"),
        sync_policy(app),
        conditions_summary(app),
    ]
    if wide:
        srcs = sources(app)
        first = srcs[0] if srcs else {}
        row += [
            text(first, "repoURL"),
            text(first, "path") or text(first, "chart"),
            text(first, "targetRevision"),
        ]
    return row


def list_table(apps: Iterable[App], *, wide: bool = False) -> Table:
    """``NAME CLUSTER NAMESPACE PROJECT STATUS HEALTH SYNCPOLICY CONDITIONS`` (+ ``REPO PATH TARGET``)."""
    headers = ["NAME", "CLUSTER", "NAMESPACE", "PROJECT", "STATUS", "HEALTH", "SYNCPOLICY", "CONDITIONS"]
    if wide:
        headers += ["REPO", "PATH", "TARGET"]
    table = plain_table(*headers)
    for app in apps:
        table.add_row(*list_row(app, wide=wide))
    return table


def dump(obj: Any, output: str) -> str:
    """``obj`` as JSON (indented) or YAML, as ``-o json|yaml`` prints it."""
    if output == "json":
        return json.dumps(obj, indent=2)
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).rstrip("\n")


# ----------------------------------------------------------------------------------------- history


def _history_revisions(entry: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(repoURL, targetRevision, revision)`` per source of one history entry."""
    many = items(entry, "sources")
    if many:
        revisions = field(entry, "revisions") or []
        return [
            (
                text(src, "repoURL"),
                text(src, "targetRevision"),
                str(revisions[i]) if i < len(revisions) else "",
            )
            for i, src in enumerate(many)
        ]
    return [
        (text(entry, "source", "repoURL"), text(entry, "source", "targetRevision"), text(entry, "revision"))
    ]


def history_revision(target: str, revision: str) -> str:
    """``HEAD (0d521c6)``: the requested revision and the commit it resolved to."""
    short = short_revision(revision)
    if target and short and target != revision:
        return f"{target} ({short})"
    return short or target


def history(app: App) -> Group:
    """``app history``: per source repository a ``SOURCE`` line, then ``ID DATE REVISION`` rows."""
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for entry in items(app, "status", "history"):
        date = format_time(text(entry, "deployedAt") or text(entry, "deployStartedAt"))
        for repo, target, revision in _history_revisions(entry):
            groups.setdefault(repo, []).append((text(entry, "id"), date, history_revision(target, revision)))
    parts: list[RenderableType] = []
    for repo, rows in groups.items():
        if parts:
            parts.append(Text(""))
        parts.append(Text(f"SOURCE  {repo}"))
        table = plain_table("ID", "DATE", "REVISION")
        for row in rows:
            table.add_row(*row)
        parts.append(table)
    if not parts:
        parts.append(Text("No history."))
    return Group(*parts)


def history_entry(app: App, entry_id: int | None) -> Mapping[str, Any] | None:
    """The history entry with ``entry_id``, or the one before the last when ``entry_id`` is ``None``
    (what ``app rollback`` goes back to)."""
    entries = items(app, "status", "history")
    if entry_id is None:
        return entries[-2] if len(entries) >= 2 else None
    for entry in entries:
        if field(entry, "id") == entry_id:
            return entry
    return None


# -------------------------------------------------------------------------------------------- tree


def _label(key: resourcekey.ResourceKey, *states: str) -> Text:
    label = Text(key.group_kind, style="bold")
    label.append(f" {key.namespace}/{key.name}" if key.namespace else f" {key.name}")
    for state in states:
        if state:
            label.append(f"  {state}", style=_STATE_STYLES.get(state, ""))
    return label


_STATE_STYLES = {
    "Synced": "green",
    "Healthy": "green",
    "Succeeded": "green",
    "OutOfSync": "yellow",
    "Progressing": "cyan",
    "Running": "cyan",
    "Suspended": "magenta",
    "Degraded": "red",
    "Missing": "yellow",
    "Failed": "red",
    "Error": "red",
    "SyncFailed": "red",
}


def _owner_keys(obj: Mapping[str, Any]) -> list[resourcekey.ResourceKey]:
    namespace = text(obj, "metadata", "namespace")
    return [
        resourcekey.ResourceKey(
            resourcekey.group_of(text(ref, "apiVersion")), text(ref, "kind"), namespace, text(ref, "name")
        )
        for ref in items(obj, "metadata", "ownerReferences")
    ]


def resource_tree(app: App, live: Iterable[Mapping[str, Any]] = ()) -> Tree:
    """The managed resources of ``app`` as a tree, each with its live descendants among ``live``
    (matched by ``ownerReferences``: ReplicaSets under Deployments, Pods under ReplicaSets, …)."""
    children: dict[resourcekey.ResourceKey, list[Mapping[str, Any]]] = {}
    for obj in live:
        for owner in _owner_keys(obj):
            children.setdefault(owner, []).append(obj)
    root = Tree(Text(qualified_name(app), style="bold").append(f"  {sync_status(app)}  {health_status(app)}"))
    for row in resource_rows(app):
        group, kind, namespace, name, status, health_text, hook, _ = row
        key = resourcekey.ResourceKey(group, kind, namespace, name)
        node = root.add(_label(key, status, health_text, hook))
        _add_children(node, key, children, seen=set())
    return root


def _add_children(
    node: Tree,
    key: resourcekey.ResourceKey,
    children: Mapping[resourcekey.ResourceKey, Sequence[Mapping[str, Any]]],
    *,
    seen: set[resourcekey.ResourceKey],
) -> None:
    seen.add(key)
    for child in sorted(children.get(key, ()), key=lambda o: (text(o, "kind"), text(o, "metadata", "name"))):
        child_key = resourcekey.ResourceKey.of(child)
        if child_key in seen:  # ownerReferences cannot loop in a sane cluster; do not trust it
            continue
        status = health.health_of(child)
        sub = node.add(_label(child_key, status.status if status else ""))
        _add_children(sub, child_key, children, seen=seen)


# ---------------------------------------------------------------------------------------- progress


def operation_phase(app: App) -> str:
    return text(app, "status", "operationState", "phase")


def _result_status(result: Mapping[str, Any]) -> str:
    return text(result, "hookPhase") if result.get("hookType") else text(result, "status")


def progress_lines(app: App) -> list[str]:
    """The operation's state as plain lines (phase, then one line per resource result), for following
    an operation when stdout is not a terminal; callers print the lines they have not printed yet."""
    state = field(app, "status", "operationState")
    if not isinstance(state, Mapping):
        return []
    lines = [f"{qualified_name(app)}: {text(state, 'phase')}: {text(state, 'message')}".rstrip(": ")]
    for result in items(state, "syncResult", "resources"):
        key = _key(result)
        hook = f" ({text(result, 'hookType')})" if result.get("hookType") else ""
        lines.append(f"  {key}{hook}: {_result_status(result)} {text(result, 'message')}".rstrip())
    return lines


def operation_view(app: App) -> Group:
    """The live view of a running operation: its phase and message, then a row per resource result."""
    state = field(app, "status", "operationState") or {}
    phase = text(state, "phase") or "Pending"
    head = Text(f"{qualified_name(app)}  ", style="bold").append(
        phase, style=_STATE_STYLES.get(phase, "cyan")
    )
    if text(state, "message"):
        head.append(f"  {text(state, 'message')}")
    table = plain_table("GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HOOK", "MESSAGE")
    for result in items(state, "syncResult", "resources"):
        key = _key(result)
        table.add_row(
            key.group,
            key.kind,
            key.namespace,
            key.name,
            _result_status(result),
            text(result, "hookType"),
            text(result, "message"),
        )
    return Group(head, table)


def waiting_view(app: App) -> Text:
    """The line shown while an operation waits for the controller to start it."""
    return Text(f"{qualified_name(app)}  ", style="bold").append("waiting for the controller", style="dim")
