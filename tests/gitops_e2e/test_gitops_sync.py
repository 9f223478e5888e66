"""The GitOps loop end to end: a real git repository, the real controller process, the simulated cluster.

Commits reach the cluster, drift is healed, removed manifests are pruned only with prune, bad input
gives conditions and changes nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gitops_support import (
    ControllerProcess,
    GitRepo,
    application,
    configmap,
    create_app,
    deployment,
    get,
    patch_app,
    start_controller,
    status_of,
    synced_healthy,
    unique,
    wait_app,
)

from clusterproc import ClusterProcess


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("gitops-controller"))
    yield proc
    proc.stop()


def test_commit_reaches_cluster_and_reports_synced_healthy(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("basic")
    first = repo.commit(
        {"app/cm.yaml": configmap("settings", {"color": "blue"}), "app/deploy.yaml": deployment("web")}
    )
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
    app = wait_app(sim_cluster, name, synced_healthy, controller=controller, what="Synced+Healthy")
    status = app["status"]
    assert status["sync"]["revision"] == first
    assert status["sourceType"] == "Directory"
    assert status["summary"]["images"] == ["nginx:1.25"]
    kinds = sorted((r.get("group", ""), r["kind"], r["status"]) for r in status["resources"])
    assert kinds == [("", "ConfigMap", "Synced"), ("apps", "Deployment", "Synced")]
    op = status["operationState"]
    assert op["phase"] == "Succeeded" and op["message"] == "successfully synced (all tasks run)"
    assert op["operation"]["initiatedBy"] == {"automated": True}
    assert status["history"][0]["revision"] == first and status["history"][0]["id"] == 0
    cm = get(sim_cluster, f"/api/v1/namespaces/{name}/configmaps/settings")
    assert cm is not None
    assert (
        cm["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
        == f"{name}:/ConfigMap:{name}/settings"
    )

    second = repo.commit({"app/cm.yaml": configmap("settings", {"color": "green"})})
    app = wait_app(
        sim_cluster,
        name,
        lambda a: a["status"]["sync"].get("revision") == second and synced_healthy(a),
        controller=controller,
        what="second commit synced",
    )
    cm = get(sim_cluster, f"/api/v1/namespaces/{name}/configmaps/settings")
    assert cm is not None and cm["data"] == {"color": "green"}
    assert [h["revision"] for h in app["status"]["history"]] == [first, second]

    # Argo CD's Events on the Application (the UI's Events tab shows them).
    def app_events() -> list[tuple[str, str]]:
        selector = f"fieldSelector=involvedObject.name={name}"
        listed = get(sim_cluster, f"/api/v1/namespaces/argocd/events?{selector}")
        return [(e["reason"], e["message"]) for e in (listed or {}).get("items") or []]

    expected = {
        ("OperationStarted", f"Initiated automated sync to {second}"),
        ("OperationCompleted", f"Sync operation to {second} succeeded"),
        ("ResourceUpdated", "Updated sync status: OutOfSync -> Synced"),
    }
    deadline = time.monotonic() + 10
    while not expected <= set(app_events()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert expected <= set(app_events()), app_events()


def test_self_heal_reverts_manual_change(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("heal")
    repo.commit({"app/cm.yaml": configmap("settings", {"color": "blue"})})
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    with sim_cluster.client() as client:
        response = client.patch(
            f"/api/v1/namespaces/{name}/configmaps/settings",
            json={"data": {"color": "red"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200
    wait_app(
        sim_cluster,
        name,
        lambda a: (
            (get(sim_cluster, f"/api/v1/namespaces/{name}/configmaps/settings") or {}).get("data")
            == {"color": "blue"}
        ),
        controller=controller,
        what="the manual change reverted",
        timeout=30,
    )


def test_removed_manifest_is_pruned_only_with_prune(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    keep, prune = unique("noprune"), unique("prune")
    repo.commit({"app/a.yaml": configmap("a", {"x": "1"}), "app/b.yaml": configmap("b", {"x": "2"})})
    create_app(sim_cluster, application(keep, repo.url, "app", namespace=keep, automated={"prune": False}))
    create_app(sim_cluster, application(prune, repo.url, "app", namespace=prune, automated={"prune": True}))
    for name in (keep, prune):
        wait_app(sim_cluster, name, synced_healthy, controller=controller)
    removed = repo.commit({"app/b.yaml": None})
    wait_app(
        sim_cluster,
        prune,
        lambda a: a["status"]["sync"].get("revision") == removed and synced_healthy(a),
        controller=controller,
        what="pruned",
    )
    assert get(sim_cluster, f"/api/v1/namespaces/{prune}/configmaps/b") is None
    app = wait_app(
        sim_cluster,
        keep,
        lambda a: (
            (a["status"].get("operationState") or {}).get("syncResult", {}).get("revision") == removed
            and a["status"]["operationState"]["phase"] == "Succeeded"
        ),
        controller=controller,
        what="synced without prune",
    )
    assert status_of(app)[0] == "OutOfSync"
    extra = [r for r in app["status"]["resources"] if r["name"] == "b"]
    assert extra and extra[0]["requiresPruning"] is True and extra[0]["status"] == "OutOfSync"
    skipped = [r for r in app["status"]["operationState"]["syncResult"]["resources"] if r["name"] == "b"]
    assert skipped[0]["status"] == "PruneSkipped" and skipped[0]["message"] == "ignored (requires pruning)"
    assert get(sim_cluster, f"/api/v1/namespaces/{keep}/configmaps/b") is not None


def test_malformed_manifest_gives_comparison_error_and_applies_nothing(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("bad")
    repo.commit(
        {
            "app/a.yaml": configmap("a", {"x": "1"}),
            "app/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
        }
    )
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
    app = wait_app(
        sim_cluster, name, lambda a: status_of(a)[0] == "Unknown", controller=controller, what="sync Unknown"
    )
    conditions = app["status"]["conditions"]
    assert conditions[0]["type"] == "ComparisonError" and "b.yaml" in conditions[0]["message"]
    assert "operationState" not in app["status"]
    assert get(sim_cluster, f"/api/v1/namespaces/{name}") is None


def test_unreachable_repository_gives_unknown_and_deletes_nothing(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("gone")
    repo.commit({"app/a.yaml": configmap("a", {"x": "1"})})
    create_app(sim_cluster, application(name, repo.url, "app", namespace=name))
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    moved = tmp_path / "moved"
    repo.path.rename(moved)
    patch_app(sim_cluster, name, {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}})
    app = wait_app(
        sim_cluster, name, lambda a: status_of(a)[0] == "Unknown", controller=controller, what="sync Unknown"
    )
    assert app["status"]["conditions"][0]["type"] == "ComparisonError"
    assert [r["status"] for r in app["status"]["resources"]] == ["Unknown"]
    assert get(sim_cluster, f"/api/v1/namespaces/{name}/configmaps/a") is not None


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.ssd.example.com"},
    "spec": {
        "group": "ssd.example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                        },
                    }
                },
            }
        ],
    },
}

WIDGET = """apiVersion: ssd.example.com/v1
kind: Widget
metadata:
  name: w
spec:
  size: 2
  colour: blue   # not in the schema: the API server prunes it
"""


def test_server_side_diff_sees_what_the_server_would_store(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    with sim_cluster.client() as client:
        response = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WIDGET_CRD)
        assert response.status_code in (201, 409), response.text
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app/widget.yaml": WIDGET})
    local, server = unique("localdiff"), unique("ssd")
    create_app(sim_cluster, application(local, repo.url, "app", namespace=local, automated={"prune": True}))
    app = application(server, repo.url, "app", namespace=server, automated={"prune": True})
    app["metadata"]["annotations"] = {"argocd.argoproj.io/compare-options": "ServerSideDiff=true"}
    create_app(sim_cluster, app)
    wait_app(sim_cluster, server, synced_healthy, controller=controller, what="Synced with server-side diff")
    # The local diff cannot know the server prunes `colour`: after its one sync the app stays OutOfSync.
    found = wait_app(
        sim_cluster,
        local,
        lambda a: (a["status"].get("operationState") or {}).get("phase") == "Succeeded",
        controller=controller,
    )
    assert status_of(found)[0] == "OutOfSync"
    # Drift is still seen through the server-side diff.
    with sim_cluster.client() as client:
        response = client.patch(
            f"/apis/ssd.example.com/v1/namespaces/{server}/widgets/w",
            json={"spec": {"size": 5}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
    drifted = wait_app(
        sim_cluster,
        server,
        lambda a: status_of(a)[0] == "OutOfSync",
        controller=controller,
        what="drift seen",
    )
    assert drifted["status"]["resources"][0]["status"] == "OutOfSync"


def test_respect_ignore_differences_keeps_ignored_live_values(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    name = unique("respect")
    repo.commit({"app/cm.yaml": configmap("settings", {"color": "blue", "size": "1"})})
    app = application(
        name,
        repo.url,
        "app",
        namespace=name,
        sync_options=["CreateNamespace=true", "RespectIgnoreDifferences=true"],
    )
    app["spec"]["ignoreDifferences"] = [{"kind": "ConfigMap", "jsonPointers": ["/data/color"]}]
    create_app(sim_cluster, app)
    wait_app(sim_cluster, name, synced_healthy, controller=controller)
    path = f"/api/v1/namespaces/{name}/configmaps/settings"
    with sim_cluster.client() as client:
        response = client.patch(
            path, json={"data": {"color": "red"}}, headers={"Content-Type": "application/merge-patch+json"}
        )
        assert response.status_code == 200
    second = repo.commit({"app/cm.yaml": configmap("settings", {"color": "blue", "size": "2"})})
    wait_app(
        sim_cluster,
        name,
        lambda a: a["status"]["sync"].get("revision") == second and synced_healthy(a),
        controller=controller,
        what="second commit synced",
    )
    live = get(sim_cluster, path)
    assert live is not None and live["data"] == {"color": "red", "size": "2"}


def test_automated_prune_refuses_to_empty_an_app_unless_allow_empty(
    sim_cluster: ClusterProcess, controller: ControllerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    guarded, allowed = unique("guarded"), unique("allowempty")
    repo.commit({"app/a.yaml": configmap("a", {"x": "1"}), "app/README.md": "manifests\n"})
    create_app(
        sim_cluster, application(guarded, repo.url, "app", namespace=guarded, automated={"prune": True})
    )
    create_app(
        sim_cluster,
        application(
            allowed, repo.url, "app", namespace=allowed, automated={"prune": True, "allowEmpty": True}
        ),
    )
    for name in (guarded, allowed):
        wait_app(sim_cluster, name, synced_healthy, controller=controller)
    empty = repo.commit({"app/a.yaml": None})
    app = wait_app(
        sim_cluster,
        guarded,
        lambda a: any(c["type"] == "SyncError" for c in a["status"].get("conditions", [])),
        controller=controller,
        what="SyncError condition",
    )
    assert app["status"]["conditions"][0]["message"] == "auto-sync will wipe out all resources"
    assert status_of(app)[0] == "OutOfSync"
    assert get(sim_cluster, f"/api/v1/namespaces/{guarded}/configmaps/a") is not None
    wait_app(
        sim_cluster,
        allowed,
        lambda a: (
            a["status"]["sync"].get("revision") == empty
            and synced_healthy(a)
            and not a["status"]["resources"]
        ),
        controller=controller,
        what="emptied",
    )
    assert get(sim_cluster, f"/api/v1/namespaces/{allowed}/configmaps/a") is None
