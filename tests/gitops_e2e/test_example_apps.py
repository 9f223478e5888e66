"""Acceptance: Argo CD's argocd-example-apps, served from a real git repository, reach the sync and
health status research/argocd.md §4 expects; hook and wave order is read from ``syncResult``.

The examples are read from ``$TUGBOAT_EXAMPLES`` (skipped when unset) and committed, unchanged, into a
repository in a temp dir (the whole tree, as ``pre-post-sync`` refers to ``../kustomize-guestbook``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gitops_support import (
    ControllerProcess,
    GitRepo,
    application,
    create_app,
    get,
    get_app,
    start_controller,
    status_of,
    synced_healthy,
    unique,
    wait_app,
)

from clusterproc import ClusterProcess
from examples_support import example_dir

EXAMPLES = example_dir("argocd-example-apps")
pytestmark = pytest.mark.skipif(EXAMPLES is None, reason="TUGBOAT_EXAMPLES is not set")


@pytest.fixture(scope="module")
def examples_repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    assert EXAMPLES is not None
    repo = GitRepo(tmp_path_factory.mktemp("examples") / "argocd-example-apps")
    repo.copy_tree(Path(EXAMPLES), ".")
    repo.commit(message="argocd-example-apps")
    return repo


@pytest.fixture(scope="module")
def controller(
    sim_cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    proc = start_controller(sim_cluster, tmp_path_factory.mktemp("gitops-examples"))
    yield proc
    proc.stop()


def sync_example(
    cluster: ClusterProcess, controller: ControllerProcess, repo: GitRepo, path: str, **source: Any
) -> tuple[str, dict[str, Any]]:
    name = unique(path.replace("/", "-"))
    create_app(cluster, application(name, repo.url, path, namespace=name, **source))
    app = wait_app(
        cluster,
        name,
        lambda a: synced_healthy(a) and (a["status"].get("operationState") or {}).get("phase") == "Succeeded",
        controller=controller,
        timeout=90,
        what=f"{path} Synced+Healthy",
    )
    return name, app


def results(app: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(syncPhase, kind, name, status) of each task, in the order the sync ran them."""
    return [
        (r["syncPhase"], r["kind"], r["name"], r.get("status", ""))
        for r in app["status"]["operationState"]["syncResult"]["resources"]
    ]


def resources(app: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((r["kind"], r["name"], r["status"]) for r in app["status"]["resources"])


def test_guestbook(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    name, app = sync_example(sim_cluster, controller, examples_repo, "guestbook")
    assert app["status"]["sourceType"] == "Directory"
    assert resources(app) == [("Deployment", "guestbook-ui", "Synced"), ("Service", "guestbook-ui", "Synced")]
    assert app["status"]["summary"]["images"] == ["gcr.io/google-samples/gb-frontend:v5"]
    messages = sorted(r["message"] for r in app["status"]["operationState"]["syncResult"]["resources"])
    assert messages == ["deployment.apps/guestbook-ui created", "service/guestbook-ui created"]
    deployment = get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/guestbook-ui")
    assert deployment is not None and deployment["status"]["availableReplicas"] == 1


def test_kustomize_guestbook(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    _, app = sync_example(sim_cluster, controller, examples_repo, "kustomize-guestbook")
    assert app["status"]["sourceType"] == "Kustomize"
    assert resources(app) == [
        ("Deployment", "kustomize-guestbook-ui", "Synced"),
        ("Service", "kustomize-guestbook-ui", "Synced"),
    ]


def test_helm_guestbook_with_production_values(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    name, app = sync_example(
        sim_cluster,
        controller,
        examples_repo,
        "helm-guestbook",
        helm={
            "valueFiles": ["values-production.yaml"],
            "parameters": [{"name": "replicaCount", "value": "2"}],
        },
    )
    assert app["status"]["sourceType"] == "Helm"
    release = name  # the chart's fullname helper uses the release name when it contains the chart's name
    assert resources(app) == [("Deployment", release, "Synced"), ("Service", release, "Synced")]
    service = get(sim_cluster, f"/api/v1/namespaces/{name}/services/{release}")
    assert service is not None and service["spec"]["type"] == "LoadBalancer"
    assert service["status"]["loadBalancer"]["ingress"]  # the simulation assigns an address: Healthy
    deployment = get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/deployments/{release}")
    assert deployment is not None and deployment["spec"]["replicas"] == 2


def test_pre_post_sync_hooks_run_around_a_healthy_sync_phase(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    name, app = sync_example(sim_cluster, controller, examples_repo, "pre-post-sync")
    order = results(app)
    assert [(phase, kind, res) for phase, kind, res, _ in order] == [
        ("PreSync", "Job", "pre-post-sync-before"),
        ("Sync", "Service", "pre-post-sync-kustomize-guestbook-ui"),
        ("Sync", "Deployment", "pre-post-sync-kustomize-guestbook-ui"),
        ("PostSync", "Job", "pre-post-sync-after"),
    ]
    by_name = {r["name"]: r for r in app["status"]["operationState"]["syncResult"]["resources"]}
    before, after = by_name["pre-post-sync-before"], by_name["pre-post-sync-after"]
    assert before["hookType"] == "PreSync" and before["hookPhase"] == "Succeeded"
    assert after["hookType"] == "PostSync" and after["hookPhase"] == "Succeeded"
    # PostSync ran only after the Sync phase was healthy.
    assert by_name["pre-post-sync-kustomize-guestbook-ui"]["hookPhase"] == "Succeeded"
    # Hooks are not managed resources, and HookSucceeded deleted both Jobs.
    assert [kind for kind, _, _ in resources(app)] == ["Deployment", "Service"]
    for job in ("pre-post-sync-before", "pre-post-sync-after"):
        assert get(sim_cluster, f"/apis/batch/v1/namespaces/{name}/jobs/{job}") is None


def test_sync_waves_order(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    name, app = sync_example(sim_cluster, controller, examples_repo, "sync-waves")
    order = [(phase, kind, res) for phase, kind, res, _ in results(app)]
    assert order[0][0:2] == ("PreSync", "Job") and order[0][2].startswith("upgrade-sql-schema")
    assert order[1:] == [
        ("Sync", "Service", "backend"),
        ("Sync", "ReplicaSet", "backend"),
        ("Sync", "Job", "maint-page-up"),
        ("Sync", "Service", "frontend"),
        ("Sync", "ReplicaSet", "frontend"),
        ("Sync", "Job", "maint-page-down"),
    ]
    # generateName hooks get Argo CD's deterministic name: <generateName><rev[:7]>-presync-<unix time>
    revision = app["status"]["operationState"]["syncResult"]["revision"]
    assert order[0][2].startswith(f"upgrade-sql-schema{revision[:7]}-presync-")
    # No delete policy means BeforeHookCreation: the hooks are kept until the next sync.
    assert get(sim_cluster, f"/apis/batch/v1/namespaces/{name}/jobs/maint-page-up") is not None


def test_helm_hooks(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    name, app = sync_example(sim_cluster, controller, examples_repo, "helm-hooks")
    order = [(phase, kind, res) for phase, kind, res, _ in results(app)]
    assert [phase for phase, _, _ in order] == ["PreSync", "PreSync", "Sync", "Sync", "PostSync"]
    assert order[0][2].startswith("upgrade-sql-schema")  # weight -2 before -1
    assert order[1][2] == "maint-page-up"
    assert {(kind, res) for _, kind, res in order[2:4]} == {
        ("ReplicaSet", "frontend"),
        ("Service", "frontend"),
    }
    assert order[4][2] == "maint-page-down"
    assert resources(app) == [("ReplicaSet", "frontend", "Synced"), ("Service", "frontend", "Synced")]
    assert get(sim_cluster, f"/apis/apps/v1/namespaces/{name}/replicasets/frontend") is not None


def test_sock_shop(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    name = unique("sock-shop")
    create_app(sim_cluster, application(name, examples_repo.url, "sock-shop", namespace=name))
    app = wait_app(
        sim_cluster,
        name,
        lambda a: (
            status_of(a)[0] == "Synced"
            and (a["status"].get("operationState") or {}).get("phase") == "Succeeded"
        ),
        controller=controller,
        timeout=90,
        what="sock-shop Synced",
    )
    kinds = [r["kind"] for r in app["status"]["resources"]]
    assert kinds.count("Deployment") == 14 and kinds.count("Service") == 14 and kinds.count("Ingress") == 1
    assert all(r["status"] == "Synced" for r in app["status"]["resources"])
    # Helm's install order: Services before Deployments before the Ingress.
    order = [kind for _, kind, _, _ in results(app)]
    assert order.index("Ingress") > max(i for i, k in enumerate(order) if k == "Deployment")
    assert max(i for i, k in enumerate(order) if k == "Service") < order.index("Deployment")
    # Seven services have a readiness probe with initialDelaySeconds: 180, which the simulated kubelet
    # honours: for three minutes the app is Progressing, and the message names those Deployments.
    app = wait_app(
        sim_cluster,
        name,
        lambda a: (
            status_of(a) == ("Synced", "Progressing") and "carts" in a["status"]["health"].get("message", "")
        ),
        controller=controller,
        what="sock-shop Progressing",
    )
    assert app["status"]["health"]["message"].startswith("apps/Deployment:")


def test_app_of_apps_and_cascade_delete(
    sim_cluster: ClusterProcess, controller: ControllerProcess, examples_repo: GitRepo
) -> None:
    parent = unique("apps")
    app = application(
        parent,
        examples_repo.url,
        "apps",
        namespace="argocd",
        helm={
            "parameters": [
                {"name": "config.spec.source.repoURL", "value": examples_repo.url},
                {"name": "config.spec.source.targetRevision", "value": "main"},
            ]
        },
    )
    create_app(sim_cluster, app)
    parent_app = wait_app(
        sim_cluster,
        parent,
        lambda a: (
            status_of(a)[0] == "Synced"
            and (a["status"].get("operationState") or {}).get("phase") == "Succeeded"
        ),
        controller=controller,
        timeout=90,
        what="parent Synced",
    )
    children = [r["name"] for r in parent_app["status"]["resources"] if r["kind"] == "Application"]
    assert len(children) == 14 and "example.guestbook" in children
    child = wait_app(sim_cluster, "example.guestbook", synced_healthy, controller=controller, timeout=90)
    assert child["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    assert get(sim_cluster, "/apis/apps/v1/namespaces/guestbook/deployments/guestbook-ui") is not None

    with sim_cluster.client() as client:
        response = client.delete(f"/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{parent}")
        assert response.status_code in (200, 202)

    def gone() -> bool:
        return get_app(sim_cluster, parent) is None and get_app(sim_cluster, "example.guestbook") is None

    end = time.monotonic() + 90
    while time.monotonic() < end and not gone():
        time.sleep(0.2)
    assert gone(), controller.log()[-4000:]
    assert get(sim_cluster, "/apis/apps/v1/namespaces/guestbook/deployments/guestbook-ui") is None
