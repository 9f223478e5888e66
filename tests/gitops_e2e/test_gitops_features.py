"""GitOps controller features end to end: the real ``tugboat app`` CLI, the real controller process and
the simulated cluster, driven from real git repositories.

Covers what ``test_gitops_sync`` does not: manual sync, history and rollback, selective sync, dry run,
sync failures (dry run, SyncError, no retry of the same revision), AppProject enforcement, the sync
options, waves that wait for health, SyncFail hooks, retries, terminating an operation, refresh and
deletion (research/argocd.md §1.2, §1.3, §1.7, §2, §3.2).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from gitops_support import (
    ControllerProcess,
    GitRepo,
    application,
    conditions_of,
    create_app,
    create_project,
    get,
    get_app,
    operation_phase,
    operation_state,
    patch_app,
    run_cli,
    start_controller,
    status_of,
    sync_results,
    synced_healthy,
    unique,
    wait_app,
    wait_for,
)

from clusterproc import ClusterProcess

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


# ------------------------------------------------------------------------------------------ manifests


def manifest(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False)


def configmap(
    name: str, data: Mapping[str, str], *, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def deployment(
    name: str,
    *,
    image: str | None = "nginx:1.25",
    annotations: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main"}
    if image is not None:
        container["image"] = image
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if pod_annotations:
        template_meta["annotations"] = dict(pod_annotations)
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template_meta, "spec": {"containers": [container]}},
        },
    }


def hook_job(name: str, hook: str, *, pod_annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A hook Job that runs one simulated pod (``backoffLimit: 0``: one failure fails the Job)."""
    template: dict[str, Any] = {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}
    }
    if pod_annotations:
        template["metadata"] = {"annotations": dict(pod_annotations)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/hook": hook}},
        "spec": {"backoffLimit": 0, "template": template},
    }


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("gitops-features"))
    yield proc
    proc.stop()


def configmap_of(cluster: ClusterProcess, namespace: str, name: str) -> dict[str, Any] | None:
    return get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/{name}")


def data_of(cluster: ClusterProcess, namespace: str, name: str) -> dict[str, str] | None:
    cm = configmap_of(cluster, namespace, name)
    return None if cm is None else cm.get("data")


def cli_ok(cluster: ClusterProcess, *args: str) -> str:
    result = run_cli(cluster, *args)
    assert result.exit_code == 0, f"tugboat app {' '.join(args)}: {result.exit_code}\n{result.output}"
    output: str = result.stdout
    return output


def timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def available_since(deployment: Mapping[str, Any]) -> datetime:
    """When the Deployment's ``Available`` condition last became True."""
    conditions = (deployment.get("status") or {}).get("conditions") or []
    available = [c for c in conditions if c["type"] == "Available" and c["status"] == "True"]
    assert available, f"the Deployment is not Available: {conditions}"
    return timestamp(available[0]["lastTransitionTime"])


def finished(app: Mapping[str, Any], phase: str = "Succeeded", revision: str | None = None) -> bool:
    state = operation_state(app)
    if "operation" in app or state.get("phase") != phase:
        return False
    return revision is None or (state.get("syncResult") or {}).get("revision") == revision


def result_for(app: Mapping[str, Any], name: str, phase: str = "Sync") -> dict[str, Any]:
    found = [r for r in sync_results(app) if r["name"] == name and r["syncPhase"] == phase]
    assert found, f"no sync result for {name} ({phase}): {sync_results(app)}"
    return found[0]


def app_with(name: str, repo: GitRepo, **options: Any) -> dict[str, Any]:
    return application(name, repo.url, "app", namespace=name, **options)


# ------------------------------------------------------------------------------ 1. manual sync, CLI


def test_manual_sync_history_rollback_wait_and_get_through_the_cli(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("manual")
    first = repo.commit({"app/cm.yaml": manifest(configmap("settings", {"color": "blue"}))})
    create_app(sim_cluster, app_with(name, repo, automated=False))
    app = wait_app(
        sim_cluster, name, lambda a: status_of(a)[0] == "OutOfSync", controller=controller, what="OutOfSync"
    )
    time.sleep(1.0)  # no automated sync: nothing starts on its own
    app = get_app(sim_cluster, name) or {}
    assert "operation" not in app and "operationState" not in app["status"]
    assert status_of(app)[0] == "OutOfSync" and app["status"]["sync"]["revision"] == first
    assert get(sim_cluster, f"/api/v1/namespaces/{name}") is None

    output = cli_ok(sim_cluster, "sync", name, "--timeout", "30")
    assert "Succeeded" in output
    app = wait_app(sim_cluster, name, synced_healthy, controller=controller, what="Synced after app sync")
    assert data_of(sim_cluster, name, "settings") == {"color": "blue"}
    state = operation_state(app)
    assert state["phase"] == "Succeeded" and "username" in state["operation"]["initiatedBy"]
    assert [h["revision"] for h in app["status"]["history"]] == [first]
    assert first[:7] in cli_ok(sim_cluster, "history", name)

    second = repo.commit({"app/cm.yaml": manifest(configmap("settings", {"color": "green"}))})
    wait_app(
        sim_cluster,
        name,
        lambda a: a["status"]["sync"].get("revision") == second and status_of(a)[0] == "OutOfSync",
        controller=controller,
        what="second commit seen, not synced",
    )
    cli_ok(sim_cluster, "sync", name, "--timeout", "30")
    app = wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and a["status"]["sync"].get("revision") == second,
        controller=controller,
        what="second commit synced",
    )
    assert data_of(sim_cluster, name, "settings") == {"color": "green"}
    assert [(h["id"], h["revision"]) for h in app["status"]["history"]] == [(0, first), (1, second)]
    history = cli_ok(sim_cluster, "history", name)
    assert first[:7] in history and second[:7] in history

    cli_ok(sim_cluster, "rollback", name, "0", "--timeout", "30")
    assert data_of(sim_cluster, name, "settings") == {"color": "blue"}
    app = wait_app(
        sim_cluster,
        name,
        lambda a: status_of(a)[0] == "OutOfSync" and finished(a, revision=first),
        controller=controller,
        what="rolled back, OutOfSync with HEAD",
    )
    assert app["status"]["sync"]["revision"] == second
    assert app["status"]["history"][-1]["revision"] == first

    cli_ok(sim_cluster, "sync", name, "--timeout", "30")
    waited = run_cli(sim_cluster, "wait", name, "--health", "--sync", "--timeout", "30")
    assert waited.exit_code == 0, waited.output
    assert data_of(sim_cluster, name, "settings") == {"color": "green"}

    shown = json.loads(cli_ok(sim_cluster, "get", name, "-o", "json"))
    live = get_app(sim_cluster, name) or {}
    assert shown["metadata"]["name"] == name and shown["spec"] == live["spec"]
    assert shown["status"]["sync"]["status"] == "Synced"
    saved = tmp_path / "app.json"
    saved.write_text(json.dumps(shown))
    assert "unchanged" in cli_ok(sim_cluster, "create", "-f", str(saved))


# ---------------------------------------------------------------------------- 2. selective sync


def test_selective_sync_applies_only_the_named_resource_and_records_no_history(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("selective")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/b.yaml": manifest(configmap("b", {"x": "2"})),
        }
    )
    create_app(sim_cluster, app_with(name, repo, automated=False))
    wait_app(sim_cluster, name, lambda a: status_of(a)[0] == "OutOfSync", controller=controller)

    cli_ok(sim_cluster, "sync", name, "--resource", ":ConfigMap:a", "--timeout", "30")
    assert data_of(sim_cluster, name, "a") == {"x": "1"}
    assert configmap_of(sim_cluster, name, "b") is None
    app = wait_app(
        sim_cluster,
        name,
        lambda a: (
            {r["name"]: r["status"] for r in a["status"].get("resources") or []}
            == {"a": "Synced", "b": "OutOfSync"}
        ),
        controller=controller,
        what="a Synced, b still OutOfSync",
    )
    assert status_of(app)[0] == "OutOfSync"
    assert [r["name"] for r in sync_results(app)] == ["a"]
    assert not app["status"].get("history")


# -------------------------------------------------------------------------------------- 3. dry run


def test_dry_run_creates_nothing_and_succeeds(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("dryrun")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/web.yaml": manifest(deployment("web")),
        }
    )
    # The destination namespace exists already: what a dry run must not create is the app's content.
    with sim_cluster.client() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    create_app(sim_cluster, app_with(name, repo, automated=False))
    wait_app(sim_cluster, name, lambda a: status_of(a)[0] == "OutOfSync", controller=controller)

    cli_ok(sim_cluster, "sync", name, "--dry-run", "--timeout", "30")
    app = get_app(sim_cluster, name) or {}
    state = operation_state(app)
    assert state["phase"] == "Succeeded" and state["operation"]["sync"]["dryRun"] is True
    messages = {r["name"]: r["message"] for r in sync_results(app)}
    assert sorted(messages) == ["a", "web"]
    assert messages["a"].startswith("configmap/a ") and messages["a"].endswith(" (dry run)")
    assert messages["web"].startswith("deployment.apps/web ") and messages["web"].endswith(" (dry run)")
    time.sleep(0.5)
    assert configmap_of(sim_cluster, name, "a") is None
    assert get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/web") is None
    app = get_app(sim_cluster, name) or {}
    assert status_of(app)[0] == "OutOfSync" and not app["status"].get("history")


def test_dry_run_does_not_create_the_destination_namespace(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("dryrun-ns")
    repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "1"}))})
    create_app(sim_cluster, app_with(name, repo, automated=False))
    wait_app(sim_cluster, name, lambda a: status_of(a)[0] == "OutOfSync", controller=controller)
    run_cli(sim_cluster, "sync", name, "--dry-run", "--timeout", "30")
    assert configmap_of(sim_cluster, name, "a") is None
    assert get(sim_cluster, f"/api/v1/namespaces/{name}") is None


# ---------------------------------------------------------------------------------- 4. sync failure


def test_rejected_manifest_fails_the_dry_run_and_applies_nothing(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("reject")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/web.yaml": manifest(deployment("web", image=None)),
        }
    )
    create_app(sim_cluster, app_with(name, repo, automated=False))
    wait_app(sim_cluster, name, lambda a: status_of(a)[0] == "OutOfSync", controller=controller)

    result = run_cli(sim_cluster, "sync", name, "--timeout", "30")
    assert result.exit_code == 1, result.output
    assert "operation Failed" in result.stderr
    app = get_app(sim_cluster, name) or {}
    state = operation_state(app)
    assert state["phase"] == "Failed"
    assert state["message"] == "one or more objects failed to apply (dry run)"
    web = result_for(app, "web")
    assert web["status"] == "SyncFailed" and "spec.template.spec.containers[0].image" in web["message"]
    assert configmap_of(sim_cluster, name, "a") is None
    assert get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/web") is None
    assert not app["status"].get("history")


def test_automated_sync_failure_sets_sync_error_and_does_not_retry_the_same_revision(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("syncerr")
    bad = repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/web.yaml": manifest(deployment("web", image=None)),
        }
    )
    create_app(sim_cluster, app_with(name, repo))
    app = wait_app(
        sim_cluster,
        name,
        lambda a: any(c["type"] == "SyncError" for c in conditions_of(a)),
        controller=controller,
        what="SyncError condition",
    )
    state = operation_state(app)
    assert state["phase"] == "Failed" and state["operation"]["initiatedBy"] == {"automated": True}
    errors = [c for c in conditions_of(app) if c["type"] == "SyncError"]
    assert errors[0]["message"] == (
        f"Failed last sync attempt to {bad}: one or more objects failed to apply (dry run)"
    )
    assert status_of(app)[0] == "OutOfSync"
    started = state["startedAt"]
    time.sleep(3)  # refreshes come and go; the same revision is not tried again
    patch_app(sim_cluster, name, {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
    wait_app(  # not even when asked to look again
        sim_cluster,
        name,
        lambda a: "argocd.argoproj.io/refresh" not in (a["metadata"].get("annotations") or {}),
        controller=controller,
        what="the refresh done",
    )
    time.sleep(0.5)
    app = get_app(sim_cluster, name) or {}
    assert operation_state(app)["startedAt"] == started and operation_phase(app) == "Failed"
    assert configmap_of(sim_cluster, name, "a") is None

    fixed = repo.commit({"app/web.yaml": manifest(deployment("web"))})
    app = wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and finished(a, revision=fixed),
        controller=controller,
        what="the fixing commit synced",
    )
    assert not [c for c in conditions_of(app) if c["type"] == "SyncError"]
    assert data_of(sim_cluster, name, "a") == {"x": "1"}


# ------------------------------------------------------------------------------ 5. AppProject


def test_project_refusing_the_repository_gives_invalid_spec_and_applies_nothing(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name, project = unique("norepo"), unique("proj-repo")
    repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "1"}))})
    create_project(
        sim_cluster,
        project,
        {
            "sourceRepos": ["https://git.example.com/*"],
            "destinations": [{"server": "*", "namespace": "*"}],
        },
    )
    spec = app_with(name, repo)
    spec["spec"]["project"] = project
    create_app(sim_cluster, spec)
    app = wait_app(
        sim_cluster,
        name,
        lambda a: bool(conditions_of(a)) and status_of(a)[0] == "Unknown",
        controller=controller,
        what="InvalidSpecError",
    )
    condition = conditions_of(app)[0]
    assert condition["type"] == "InvalidSpecError"
    assert repo.url in condition["message"] and project in condition["message"]
    time.sleep(1.0)
    app = get_app(sim_cluster, name) or {}
    assert not operation_state(app) and "operation" not in app
    assert get(sim_cluster, f"/api/v1/namespaces/{name}") is None


def test_project_without_cluster_resources_refuses_a_cluster_scoped_manifest(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name, project = unique("nocluster"), unique("proj-cluster")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"{name}-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "1"})), "app/role.yaml": manifest(role)})
    create_project(
        sim_cluster,
        project,
        {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [],
        },
    )
    spec = app_with(name, repo)
    spec["spec"]["project"] = project
    create_app(sim_cluster, spec)
    app = wait_app(
        sim_cluster,
        name,
        lambda a: operation_phase(a) == "Failed" and "operation" not in a,
        controller=controller,
        what="the sync refused",
    )
    invalid = [c for c in conditions_of(app) if c["type"] == "InvalidSpecError"]
    assert invalid and "rbac.authorization.k8s.io:ClusterRole" in invalid[0]["message"]
    assert project in invalid[0]["message"]
    states = {r["kind"]: r["status"] for r in app["status"]["resources"]}
    assert states["ClusterRole"] == "Unknown"
    refused = result_for(app, f"{name}-reader")
    assert refused["status"] == "SyncFailed" and "not permitted" in refused["message"]
    assert get(sim_cluster, f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}-reader") is None
    assert configmap_of(sim_cluster, name, "a") is None


def test_not_permitted_resource_fails_the_sync_as_invalid_tasks(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name, project = unique("invalidtask"), unique("proj-invalid")
    repo.commit(
        {"app/ns.yaml": manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})}
    )
    create_project(
        sim_cluster,
        project,
        {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]},
    )
    spec = app_with(name, repo, sync_options=[])
    spec["spec"]["project"] = project
    create_app(sim_cluster, spec)
    app = wait_app(
        sim_cluster, name, lambda a: operation_phase(a) == "Failed", controller=controller, what="Failed"
    )
    assert get(sim_cluster, f"/api/v1/namespaces/{name}") is None
    assert operation_state(app)["message"] == "one or more synchronization tasks are not valid"


def test_missing_project_gives_invalid_spec(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name, project = unique("noproject"), unique("proj-missing")
    repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "1"}))})
    spec = app_with(name, repo)
    spec["spec"]["project"] = project
    create_app(sim_cluster, spec)
    app = wait_app(
        sim_cluster,
        name,
        lambda a: bool(conditions_of(a)) and status_of(a)[0] == "Unknown",
        controller=controller,
        what="InvalidSpecError",
    )
    assert conditions_of(app)[0]["type"] == "InvalidSpecError"
    assert (
        conditions_of(app)[0]["message"] == f"Application referencing project {project} which does not exist"
    )
    assert get(sim_cluster, f"/api/v1/namespaces/{name}") is None
    # Creating the project lets the app through.
    create_project(
        sim_cluster, project, {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}
    )
    wait_app(sim_cluster, name, synced_healthy, controller=controller, what="synced once the project exists")
    assert data_of(sim_cluster, name, "a") == {"x": "1"}


# ------------------------------------------------------------------------------------ 6. sync options


def test_replace_sync_option_replaces(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("replace")
    replace = {SYNC_OPTIONS: "Replace=true"}
    repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "1"}, annotations=replace))})
    create_app(sim_cluster, app_with(name, repo))
    app = wait_app(sim_cluster, name, synced_healthy, controller=controller)
    assert result_for(app, "a")["message"] == "configmap/a created"
    second = repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "2"}, annotations=replace))})
    app = wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and finished(a, revision=second),
        controller=controller,
        what="replaced",
    )
    assert result_for(app, "a")["message"] == "configmap/a replaced"
    cm = configmap_of(sim_cluster, name, "a") or {}
    assert cm["data"] == {"x": "2"}
    managers = {entry["manager"]: entry["operation"] for entry in cm["metadata"].get("managedFields") or []}
    assert managers.get("argocd-controller") == "Update"


def test_client_side_apply_keeps_last_applied_and_removes_dropped_fields(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("csa")
    repo.commit({"app/a.yaml": manifest(configmap("a", {"keep": "1", "drop": "2"}))})
    options = ["CreateNamespace=true", "ServerSideApply=false"]
    create_app(sim_cluster, app_with(name, repo, sync_options=options))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    cm = configmap_of(sim_cluster, name, "a") or {}
    applied = json.loads(cm["metadata"]["annotations"][LAST_APPLIED])
    assert applied["data"] == {"keep": "1", "drop": "2"} and applied["metadata"]["name"] == "a"
    # Someone else's key survives the three-way merge; the key Git drops goes.
    with sim_cluster.client() as client:
        response = client.patch(
            f"/api/v1/namespaces/{name}/configmaps/a",
            json={"metadata": {"labels": {"team": "ops"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200
    second = repo.commit({"app/a.yaml": manifest(configmap("a", {"keep": "1"}))})
    wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and finished(a, revision=second),
        controller=controller,
        what="second commit synced",
    )
    cm = configmap_of(sim_cluster, name, "a") or {}
    assert cm["data"] == {"keep": "1"}
    assert cm["metadata"]["labels"]["team"] == "ops"
    assert json.loads(cm["metadata"]["annotations"][LAST_APPLIED])["data"] == {"keep": "1"}


def test_prune_false_keeps_a_resource_removed_from_git(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("noprune")
    keep = {SYNC_OPTIONS: "Prune=false"}
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/b.yaml": manifest(configmap("b", {"x": "2"}, annotations=keep)),
            "app/c.yaml": manifest(configmap("c", {"x": "3"})),
        }
    )
    create_app(sim_cluster, app_with(name, repo))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    removed = repo.commit({"app/b.yaml": None, "app/c.yaml": None})
    app = wait_app(
        sim_cluster, name, lambda a: finished(a, revision=removed), controller=controller, what="pruned"
    )
    assert result_for(app, "b")["status"] == "PruneSkipped"
    assert result_for(app, "b")["message"] == "ignored (no prune)"
    assert configmap_of(sim_cluster, name, "c") is None
    app = wait_app(
        sim_cluster,
        name,
        lambda a: status_of(a)[0] == "OutOfSync" and a["status"]["sync"].get("revision") == removed,
        controller=controller,
    )
    extra = [r for r in app["status"]["resources"] if r["name"] == "b"]
    assert extra[0]["requiresPruning"] is True and extra[0]["status"] == "OutOfSync"
    started = operation_state(app)["startedAt"]
    time.sleep(1.5)  # OutOfSync only by the kept resource: automated sync does not start again
    app = get_app(sim_cluster, name) or {}
    assert operation_state(app)["startedAt"] == started
    assert data_of(sim_cluster, name, "b") == {"x": "2"}


def test_pruned_resources_stay_in_the_sync_result(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("pruneresult")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/c.yaml": manifest(configmap("c", {"x": "3"})),
        }
    )
    create_app(sim_cluster, app_with(name, repo))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    removed = repo.commit({"app/c.yaml": None})
    app = wait_app(
        sim_cluster, name, lambda a: finished(a, revision=removed), controller=controller, what="pruned"
    )
    assert configmap_of(sim_cluster, name, "c") is None
    pruned = [r for r in sync_results(app) if r["name"] == "c"]
    assert pruned and pruned[0]["status"] == "Pruned" and pruned[0]["message"] == "pruned"


def test_prune_last_prunes_after_the_other_waves_are_healthy(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("prunelast")
    last = configmap("last", {"x": "3"}, annotations={SYNC_OPTIONS: "PruneLast=true"})
    repo.commit(
        {
            "app/keep.yaml": manifest(configmap("keep", {"x": "1"})),
            "app/old.yaml": manifest(configmap("old", {"x": "2"})),
            "app/last.yaml": manifest(last),
        }
    )
    create_app(sim_cluster, app_with(name, repo))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    web = deployment(
        "web",
        annotations={"argocd.argoproj.io/sync-wave": "1"},
        pod_annotations={"sim.tugboat.dev/ready-after": "2s"},
    )
    removed = repo.commit({"app/old.yaml": None, "app/last.yaml": None, "app/web.yaml": manifest(web)})
    wait_for(
        lambda: get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/web"),
        what="the wave-1 Deployment",
        interval=0.05,
    )
    assert configmap_of(sim_cluster, name, "old") is None, "the plain prune did not run in wave 0"
    assert configmap_of(sim_cluster, name, "last") is not None, "PruneLast pruned before the last wave"
    wait_for(
        lambda: configmap_of(sim_cluster, name, "last") is None, what="last pruned", interval=0.05, timeout=30
    )
    gone_at = datetime.now(UTC)
    app = wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and finished(a, revision=removed),
        controller=controller,
        what="the sync finished",
    )
    live = get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/web") or {}
    assert gone_at >= available_since(live), "PruneLast pruned before the Deployment was healthy"
    assert [r["name"] for r in sync_results(app) if r["status"] == "Synced"] == ["keep", "web"]


def test_apply_out_of_sync_only_leaves_synced_resources_alone(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("oosonly")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/b.yaml": manifest(configmap("b", {"x": "2"})),
        }
    )
    options = ["CreateNamespace=true", "ApplyOutOfSyncOnly=true"]
    create_app(sim_cluster, app_with(name, repo, sync_options=options))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    before = (configmap_of(sim_cluster, name, "b") or {})["metadata"]["resourceVersion"]
    second = repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "10"}))})
    app = wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and finished(a, revision=second),
        controller=controller,
        what="second commit synced",
    )
    assert [r["name"] for r in sync_results(app)] == ["a"]
    assert data_of(sim_cluster, name, "a") == {"x": "10"}
    assert (configmap_of(sim_cluster, name, "b") or {})["metadata"]["resourceVersion"] == before
    assert [h["revision"] for h in app["status"]["history"]][-1] == second


# ------------------------------------------------------------------------------ 7. waves and health


def test_next_wave_waits_for_a_healthy_deployment(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("waves")
    web = deployment(
        "web",
        annotations={"argocd.argoproj.io/sync-wave": "0"},
        pod_annotations={"sim.tugboat.dev/ready-after": "3s"},
    )
    after = configmap("after", {"x": "1"}, annotations={"argocd.argoproj.io/sync-wave": "1"})
    repo.commit({"app/web.yaml": manifest(web), "app/after.yaml": manifest(after)})
    create_app(sim_cluster, app_with(name, repo))
    app = wait_app(
        sim_cluster,
        name,
        lambda a: synced_healthy(a) and finished(a),
        controller=controller,
        what="Synced+Healthy",
        timeout=40,
    )
    live = get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/web") or {}
    cm = configmap_of(sim_cluster, name, "after") or {}
    created = timestamp(live["metadata"]["creationTimestamp"])
    became_available = available_since(live)
    assert (became_available - created).total_seconds() >= 2, "the Deployment was not slow to be ready"
    assert timestamp(cm["metadata"]["creationTimestamp"]) >= became_available
    assert [r["name"] for r in sync_results(app)] == ["web", "after"]


# ------------------------------------------------------------------------------------ 8. SyncFail


def test_failing_sync_hook_fails_the_operation_and_runs_the_sync_fail_hook(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("syncfail")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/migrate.yaml": manifest(
                hook_job("migrate", "Sync", pod_annotations={"sim.tugboat.dev/exit-code": "1"})
            ),
            "app/cleanup.yaml": manifest(hook_job("cleanup", "SyncFail")),
        }
    )
    create_app(sim_cluster, app_with(name, repo))
    app = wait_app(
        sim_cluster,
        name,
        lambda a: finished(a, phase="Failed"),
        controller=controller,
        what="operation Failed",
        timeout=40,
    )
    state = operation_state(app)
    assert state["message"].startswith("one or more synchronization tasks completed unsuccessfully")
    migrate = result_for(app, "migrate")
    assert migrate["hookType"] == "Sync" and migrate["hookPhase"] == "Failed"
    cleanup = result_for(app, "cleanup", phase="SyncFail")
    assert cleanup["hookType"] == "SyncFail" and cleanup["hookPhase"] == "Succeeded"
    job = get(sim_cluster, f"/apis/batch/v1/namespaces/{name}/jobs/cleanup") or {}
    assert job["status"].get("succeeded") == 1
    failed_job = get(sim_cluster, f"/apis/batch/v1/namespaces/{name}/jobs/migrate") or {}
    assert failed_job["status"].get("failed") == 1


# --------------------------------------------------------------------------------------- 9. retry


def test_retry_runs_the_failing_sync_again_up_to_the_limit(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("retry")
    create_app(sim_cluster, failing_hook_app(name, repo, retry={"limit": 2, "backoff": {"duration": "1s"}}))
    seen: set[int] = set()

    def failed_for_good() -> bool:
        app = get_app(sim_cluster, name)
        state = operation_state(app)
        seen.add(int(state.get("retryCount") or 0))
        return finished(app or {}, phase="Failed")

    wait_for(failed_for_good, timeout=45, what="the retries to run out")
    app = get_app(sim_cluster, name) or {}
    state = operation_state(app)
    assert state["retryCount"] == 2 and seen >= {1, 2}
    assert state["operation"]["retry"]["limit"] == 2
    assert result_for(app, "migrate")["hookPhase"] == "Failed"
    started = state["startedAt"]
    time.sleep(1.5)  # retries exhausted: the automated sync does not try this revision again
    app = get_app(sim_cluster, name) or {}
    assert operation_state(app)["startedAt"] == started and "operation" not in app


def failing_hook_app(name: str, repo: GitRepo, *, retry: Mapping[str, Any]) -> dict[str, Any]:
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/migrate.yaml": manifest(
                hook_job("migrate", "Sync", pod_annotations={"sim.tugboat.dev/exit-code": "1"})
            ),
        }
    )
    spec = app_with(name, repo)
    spec["spec"]["syncPolicy"]["retry"] = dict(retry)
    return spec


def test_retry_status_reads_like_argo_cd(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("retrymsg")
    create_app(sim_cluster, failing_hook_app(name, repo, retry={"limit": 1, "backoff": {"duration": "1s"}}))
    states: list[dict[str, Any]] = []

    def failed_for_good() -> bool:
        app = get_app(sim_cluster, name) or {}
        if operation_state(app):
            states.append(operation_state(app))
        return finished(app, phase="Failed")

    wait_for(failed_for_good, timeout=30, what="the retries to run out", interval=0.05)
    waiting = [s["message"] for s in states if s.get("retryCount") == 1 and "Retrying" in s["message"]]
    assert waiting, [s["message"] for s in states]
    assert re.fullmatch(r".+\. Retrying attempt #1 at [1-9][0-9]?:[0-5][0-9][AP]M\.", waiting[0]), waiting[0]
    assert len({s["startedAt"] for s in states}) == 1, sorted({s["startedAt"] for s in states})
    assert states[-1]["message"].endswith(" (retried 1 times).")


# ----------------------------------------------------------------------------------- 10. terminate


def test_terminate_op_stops_a_running_hook(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("terminate")
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/slow.yaml": manifest(
                hook_job("slow", "Sync", pod_annotations={"sim.tugboat.dev/run-for": "60s"})
            ),
        }
    )
    create_app(sim_cluster, app_with(name, repo))
    wait_app(
        sim_cluster,
        name,
        lambda a: any(r["name"] == "slow" and r.get("hookPhase") == "Running" for r in sync_results(a)),
        controller=controller,
        what="the hook running",
    )
    assert get(sim_cluster, f"/apis/batch/v1/namespaces/{name}/jobs/slow") is not None
    output = cli_ok(sim_cluster, "terminate-op", name)
    assert "terminating" in output
    app = wait_app(
        sim_cluster,
        name,
        lambda a: finished(a, phase="Failed"),
        controller=controller,
        what="the operation terminated",
    )
    assert operation_state(app)["message"] == "Operation terminated"
    assert result_for(app, "slow")["hookPhase"] == "Failed"
    wait_for(
        lambda: get(sim_cluster, f"/apis/batch/v1/namespaces/{name}/jobs/slow") is None,
        what="the hook Job deleted",
        timeout=15,
    )
    again = run_cli(sim_cluster, "terminate-op", name)
    assert again.exit_code == 1 and "No operation is in progress" in again.stderr
    started = operation_state(app)["startedAt"]
    time.sleep(1.5)  # the automated sync does not start the terminated revision again
    app = get_app(sim_cluster, name) or {}
    assert operation_state(app)["startedAt"] == started and "operation" not in app


# ------------------------------------------------------------------------------------- 11. refresh


def test_refresh_returns_once_the_controller_removed_the_annotation(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("refresh")
    repo.commit({"app/a.yaml": manifest(configmap("a", {"x": "1"}))})
    create_app(sim_cluster, app_with(name, repo))
    app = wait_app(sim_cluster, name, synced_healthy, controller=controller)
    reconciled = app["status"]["reconciledAt"]
    time.sleep(1.1)  # reconciledAt has second precision
    for hard in ((), ("--hard",)):
        output = cli_ok(sim_cluster, "refresh", name, *hard, "--timeout", "20")
        assert name in output
        app = get_app(sim_cluster, name) or {}
        assert "argocd.argoproj.io/refresh" not in (app["metadata"].get("annotations") or {})
    assert app["status"]["reconciledAt"] > reconciled


# ------------------------------------------------------------------------------------ 12. deletion


def test_cascading_delete_removes_resources_and_no_cascade_keeps_them(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    cascade, orphan = unique("cascade"), unique("orphan")
    kept = configmap("kept", {"x": "2"}, annotations={SYNC_OPTIONS: "Delete=false"})
    repo.commit(
        {
            "app/a.yaml": manifest(configmap("a", {"x": "1"})),
            "app/kept.yaml": manifest(kept),
            "app/web.yaml": manifest(deployment("web")),
        }
    )
    for name in (cascade, orphan):
        create_app(sim_cluster, app_with(name, repo))
    for name in (cascade, orphan):
        wait_app(sim_cluster, name, synced_healthy, controller=controller)

    output = cli_ok(sim_cluster, "delete", cascade, "-y", "--wait", "--timeout", "30")
    assert "deleted" in output
    assert get_app(sim_cluster, cascade) is None
    assert configmap_of(sim_cluster, cascade, "a") is None
    assert data_of(sim_cluster, cascade, "kept") == {"x": "2"}, "Delete=false: kept on a cascading delete"
    wait_for(
        lambda: get(sim_cluster, f"/apis/apps/v1/namespaces/{cascade}/deployments/web") is None,
        what="the Deployment deleted",
    )

    cli_ok(sim_cluster, "delete", orphan, "-y", "--no-cascade", "--wait", "--timeout", "30")
    assert get_app(sim_cluster, orphan) is None
    time.sleep(0.5)
    assert data_of(sim_cluster, orphan, "a") == {"x": "1"}
    assert get(sim_cluster, f"/apis/apps/v1/namespaces/{orphan}/deployments/web") is not None
