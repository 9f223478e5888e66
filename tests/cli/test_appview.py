"""What ``tugboat app …`` prints, from Application dicts shaped like research/argocd.md §2 (no cluster)."""

from __future__ import annotations

import copy
import io
from typing import Any

from rich.console import Console, RenderableType

from tugboat.cli import appview

SHA = "0d521c6e049889134f3122eb32d7ed342f43ca0d"
OLD = "53e28ff20cc530b9ada2173fbbd64d48338583ba"
SOURCE = {
    "repoURL": "https://github.com/argoproj/argocd-example-apps",
    "path": "guestbook",
    "targetRevision": "HEAD",
}
DEST = {"server": "https://kubernetes.default.svc", "namespace": "guestbook"}


def _result(group: str, kind: str, name: str, message: str, **extra: str) -> dict[str, Any]:
    return {
        "group": group,
        "version": "v1",
        "kind": kind,
        "namespace": "guestbook",
        "name": name,
        "status": "Synced",
        "message": message,
        "hookPhase": "Running",
        "syncPhase": "Sync",
        **extra,
    }


def guestbook() -> dict[str, Any]:
    """The guestbook after an automated sync, plus a PreSync hook and a pruned ConfigMap."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": copy.deepcopy(SOURCE),
            "destination": copy.deepcopy(DEST),
            "syncPolicy": {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"]},
        },
        "status": {
            "controllerNamespace": "argocd",
            "health": {"status": "Healthy", "lastTransitionTime": "2026-08-01T10:00:12Z"},
            "history": [
                {
                    "id": 0,
                    "revision": OLD,
                    "deployStartedAt": "2026-07-31T09:00:00Z",
                    "deployedAt": "2026-07-31T09:00:01Z",
                    "initiatedBy": {"username": "alice"},
                    "source": SOURCE,
                },
                {
                    "id": 1,
                    "revision": SHA,
                    "deployStartedAt": "2026-08-01T10:00:05Z",
                    "deployedAt": "2026-08-01T10:00:06Z",
                    "initiatedBy": {"automated": True},
                    "source": SOURCE,
                },
            ],
            "operationState": {
                "operation": {
                    "initiatedBy": {"automated": True},
                    "retry": {"limit": 5},
                    "sync": {"prune": True, "revision": SHA, "syncOptions": ["CreateNamespace=true"]},
                },
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "startedAt": "2026-08-01T10:00:05Z",
                "finishedAt": "2026-08-01T10:02:07Z",
                "syncResult": {
                    "revision": SHA,
                    "source": SOURCE,
                    "resources": [
                        _result("", "Service", "guestbook-ui", "service/guestbook-ui created"),
                        _result("apps", "Deployment", "guestbook-ui", "deployment.apps/guestbook-ui created"),
                        _result(
                            "batch",
                            "Job",
                            "db-migrate",
                            "job.batch/db-migrate created",
                            hookType="PreSync",
                            hookPhase="Succeeded",
                            syncPhase="PreSync",
                        ),
                        {**_result("", "ConfigMap", "old-config", "pruned"), "status": "Pruned"},
                    ],
                },
            },
            "reconciledAt": "2026-08-01T10:03:01Z",
            "resourceHealthSource": "appTree",
            "resources": [
                {
                    "version": "v1",
                    "kind": "Service",
                    "namespace": "guestbook",
                    "name": "guestbook-ui",
                    "status": "Synced",
                    "health": {"status": "Healthy"},
                },
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "namespace": "guestbook",
                    "name": "guestbook-ui",
                    "status": "Synced",
                    "health": {"status": "Progressing"},
                },
                {
                    "version": "v1",
                    "kind": "Secret",
                    "namespace": "guestbook",
                    "name": "stale",
                    "status": "OutOfSync",
                    "requiresPruning": True,
                },
            ],
            "sourceType": "Directory",
            "sync": {
                "status": "Synced",
                "revision": SHA,
                "comparedTo": {"destination": DEST, "source": SOURCE},
            },
        },
    }


def render(renderable: RenderableType) -> str:
    console = Console(file=io.StringIO(), width=1000, color_system=None)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def test_summary_reads_like_argocd_app_get() -> None:
    lines = render(appview.summary(guestbook())).splitlines()
    assert lines == [
        "Name:               argocd/guestbook",
        "Project:            default",
        "Server:             https://kubernetes.default.svc",
        "Namespace:          guestbook",
        "Repo:               https://github.com/argoproj/argocd-example-apps",
        "Target:             HEAD",
        "Path:               guestbook",
        "Sync Policy:        Automated (Prune)",
        "Sync Status:        Synced to HEAD (0d521c6)",
        "Health Status:      Healthy",
    ]


def test_sync_status_and_policy_variants() -> None:
    app = guestbook()
    app["status"]["sync"] = {"status": "OutOfSync", "revision": "1.2.3"}  # a chart version stays whole
    app["spec"]["source"]["targetRevision"] = "main"
    assert appview.sync_status(app) == "OutOfSync from main (1.2.3)"
    app["status"]["sync"] = {"status": "Unknown"}
    assert appview.sync_status(app) == "Unknown"
    del app["status"]["sync"]
    assert appview.sync_status(app) == "Unknown"
    app["status"]["health"] = {"status": "Degraded", "message": "apps/Deployment:guestbook/guestbook-ui"}
    assert appview.health_status(app) == "Degraded (apps/Deployment:guestbook/guestbook-ui)"
    assert (appview.sync_policy(app), appview.sync_policy_detail(app)) == ("Auto-Prune", "Automated (Prune)")
    app["spec"]["syncPolicy"]["automated"] = {"selfHeal": True}
    assert (appview.sync_policy(app), appview.sync_policy_detail(app)) == ("Auto", "Automated (Self Heal)")
    app["spec"]["syncPolicy"]["automated"]["enabled"] = False
    assert (appview.sync_policy(app), appview.sync_policy_detail(app)) == ("Manual", "Manual")
    assert not appview.is_automated(app)


def test_operation_and_resources_in_detail() -> None:
    text = render(appview.detail(guestbook()))
    assert "Operation:          Sync" in text
    assert f"Sync Revision:      {SHA}" in text
    assert "Phase:              Succeeded" in text
    assert "Start:              2026-08-01 10:00:05 +0000 UTC" in text
    assert "Finished:           2026-08-01 10:02:07 +0000 UTC" in text
    assert "Duration:           2m2s" in text
    assert "Message:            successfully synced (all tasks run)" in text
    table = text[text.index("GROUP") :].splitlines()
    assert table[0].split() == ["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "HOOK", "MESSAGE"]
    assert table[1].split() == [
        "Service",
        "guestbook",
        "guestbook-ui",
        "Synced",
        "Healthy",
        "service/guestbook-ui",
        "created",
    ]
    assert table[2].split()[:6] == [
        "apps",
        "Deployment",
        "guestbook",
        "guestbook-ui",
        "Synced",
        "Progressing",
    ]
    assert table[3].split() == ["Secret", "guestbook", "stale", "OutOfSync", "requires", "pruning"]
    # The hook (not a managed resource) shows its hook phase and type; the pruned ConfigMap its result.
    assert table[4].split() == [
        "batch",
        "Job",
        "guestbook",
        "db-migrate",
        "Succeeded",
        "PreSync",
        "job.batch/db-migrate",
        "created",
    ]
    assert table[5].split() == ["ConfigMap", "guestbook", "old-config", "Pruned", "pruned"]
    assert "Requested Operation" not in text  # only with --show-operation


def test_detail_without_status_and_with_a_pending_operation() -> None:
    app = guestbook()
    del app["status"]
    app["operation"] = {
        "sync": {
            "revision": "main",
            "prune": True,
            "resources": [{"group": "apps", "kind": "Deployment", "name": "x"}],
        },
        "initiatedBy": {"username": "bob"},
    }
    text = render(appview.detail(app, show_operation=True))
    assert "Sync Status:        Unknown" in text and "Health Status:      Unknown" in text
    assert "Requested Operation:  Sync" in text
    assert "Initiated By:         bob" in text
    assert "Resource:             apps:Deployment:x" in text
    assert "Operation:          Sync" not in text
    assert render(appview.resource_table(app)).split() == [
        "GROUP",
        "KIND",
        "NAMESPACE",
        "NAME",
        "STATUS",
        "HEALTH",
        "HOOK",
        "MESSAGE",
    ]


def test_conditions_table_and_summary() -> None:
    app = guestbook()
    app["status"]["conditions"] = [
        {
            "type": "SyncError",
            "message": "Failed last sync attempt",
            "lastTransitionTime": "2026-08-01T10:00:00Z",
        },
        {"type": "SharedResourceWarning", "message": "a", "lastTransitionTime": "2026-08-01T10:00:00Z"},
        {"type": "SharedResourceWarning", "message": "b", "lastTransitionTime": "2026-08-01T10:00:00Z"},
    ]
    assert appview.conditions_summary(app) == "SyncError,SharedResourceWarning(2)"
    text = render(appview.detail(app))
    assert "CONDITION" in text and "LAST TRANSITION" in text
    assert "SyncError              Failed last sync attempt  2026-08-01 10:00:00 +0000 UTC" in text
    assert appview.conditions_summary(guestbook()) == "<none>"


def test_list_table_normal_and_wide() -> None:
    other = guestbook()
    other["metadata"] = {"name": "helm-guestbook", "namespace": "apps"}
    other["spec"] = {
        "project": "team",
        "source": {"repoURL": "https://charts.example.com", "chart": "guestbook", "targetRevision": "1.2.3"},
        "destination": {"name": "in-cluster", "namespace": "web"},
    }
    other["status"] = {"sync": {"status": "OutOfSync"}, "health": {"status": "Missing"}}
    lines = render(appview.list_table([guestbook(), other])).splitlines()
    assert lines[0].split() == [
        "NAME",
        "CLUSTER",
        "NAMESPACE",
        "PROJECT",
        "STATUS",
        "HEALTH",
        "SYNCPOLICY",
        "CONDITIONS",
    ]
    assert lines[1].split() == [
        "argocd/guestbook",
        "https://kubernetes.default.svc",
        "guestbook",
        "default",
        "Synced",
        "Healthy",
        "Auto-Prune",
        "<none>",
    ]
    assert lines[2].split() == [
        "apps/helm-guestbook",
        "in-cluster",
        "web",
        "team",
        "OutOfSync",
        "Missing",
        "Manual",
        "<none>",
    ]
    wide = render(appview.list_table([guestbook(), other], wide=True)).splitlines()
    assert wide[0].split()[-3:] == ["REPO", "PATH", "TARGET"]
    assert wide[1].split()[-3:] == ["https://github.com/argoproj/argocd-example-apps", "guestbook", "HEAD"]
    assert wide[2].split()[-3:] == ["https://charts.example.com", "guestbook", "1.2.3"]


def test_history_groups_by_source() -> None:
    lines = render(appview.history(guestbook())).splitlines()
    assert lines == [
        "SOURCE  https://github.com/argoproj/argocd-example-apps",
        "ID  DATE                           REVISION",
        "0   2026-07-31 09:00:01 +0000 UTC  HEAD (53e28ff)",
        "1   2026-08-01 10:00:06 +0000 UTC  HEAD (0d521c6)",
    ]
    app = guestbook()
    app["status"]["history"].append(
        {
            "id": 2,
            "revisions": [SHA, "1.0.0"],
            "sources": [
                SOURCE,
                {"repoURL": "https://charts.example.com", "chart": "redis", "targetRevision": "1.0.0"},
            ],
            "deployedAt": "2026-08-02T00:00:00Z",
        }
    )
    text = render(appview.history(app))
    assert "SOURCE  https://charts.example.com" in text
    assert "2   2026-08-02 00:00:00 +0000 UTC  1.0.0" in text
    assert "2   2026-08-02 00:00:00 +0000 UTC  HEAD (0d521c6)" in text
    del app["status"]["history"]
    assert render(appview.history(app)) == "No history."


def test_history_entry_for_rollback() -> None:
    app = guestbook()
    assert appview.history_entry(app, None)["revision"] == OLD  # type: ignore[index]
    assert appview.history_entry(app, 1)["revision"] == SHA  # type: ignore[index]
    assert appview.history_entry(app, 7) is None
    app["status"]["history"] = app["status"]["history"][:1]
    assert appview.history_entry(app, None) is None


def _owned(
    kind: str, api_version: str, name: str, owner_kind: str, owner_version: str, owner: str
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "guestbook",
            "ownerReferences": [{"apiVersion": owner_version, "kind": owner_kind, "name": owner, "uid": "u"}],
        },
    }


def test_resource_tree_nests_live_children() -> None:
    replicaset = _owned("ReplicaSet", "apps/v1", "guestbook-ui-5d9b", "Deployment", "apps/v1", "guestbook-ui")
    replicaset["spec"] = {"replicas": 1}
    replicaset["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}
    pod = _owned("Pod", "v1", "guestbook-ui-5d9b-x7k2p", "ReplicaSet", "apps/v1", "guestbook-ui-5d9b")
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    unrelated = _owned("Pod", "v1", "other", "ReplicaSet", "apps/v1", "someone-else")
    lines = render(appview.resource_tree(guestbook(), [pod, unrelated, replicaset])).splitlines()
    assert lines[0] == "argocd/guestbook  Synced to HEAD (0d521c6)  Healthy"
    assert lines[1] == "├── Service guestbook/guestbook-ui  Synced  Healthy"
    assert lines[2] == "├── apps/Deployment guestbook/guestbook-ui  Synced  Progressing"
    assert lines[3] == "│   └── apps/ReplicaSet guestbook/guestbook-ui-5d9b  Healthy"
    assert lines[4] == "│       └── Pod guestbook/guestbook-ui-5d9b-x7k2p  Healthy"
    assert lines[-1] == "└── ConfigMap guestbook/old-config  Pruned"
    assert "other" not in "\n".join(lines)


def test_progress_lines_and_views() -> None:
    app = guestbook()
    app["status"]["operationState"]["phase"] = "Running"
    app["status"]["operationState"]["message"] = "waiting for healthy state of apps/Deployment/guestbook-ui"
    lines = appview.progress_lines(app)
    assert lines[0] == "argocd/guestbook: Running: waiting for healthy state of apps/Deployment/guestbook-ui"
    assert "  apps/Deployment guestbook/guestbook-ui: Synced deployment.apps/guestbook-ui created" in lines
    assert "  batch/Job guestbook/db-migrate (PreSync): Succeeded job.batch/db-migrate created" in lines
    view = render(appview.operation_view(app))
    assert view.splitlines()[0].startswith("argocd/guestbook  Running  waiting for healthy state")
    assert view.splitlines()[1].split() == ["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HOOK", "MESSAGE"]
    assert render(appview.waiting_view(app)) == "argocd/guestbook  waiting for the controller"
    del app["status"]["operationState"]
    assert appview.progress_lines(app) == []


def test_helpers_tolerate_malformed_input() -> None:
    assert appview.field({"a": [1, {"b": 2}]}, "a", 1, "b") == 2
    assert appview.field({"a": [1]}, "a", 5) is None
    assert appview.field({"a": "x"}, "a", "b") is None
    assert appview.items({"a": [1, {"b": 2}, None]}, "a") == [{"b": 2}]
    assert appview.format_time("not a time") == "not a time"
    assert appview.short_revision(SHA) == "0d521c6" and appview.short_revision("v1.2") == "v1.2"
    assert appview.dump({"a": [1]}, "json") == '{\n  "a": [\n    1\n  ]\n}'
    assert appview.dump({"a": [1]}, "yaml") == "a:\n- 1"
