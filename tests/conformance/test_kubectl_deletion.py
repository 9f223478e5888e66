"""Conformance with kubectl: deletion, finalizers, garbage collection and namespace termination.

Checks 25–29 of research/kubeapi.md §5. There are no controllers yet, so Deployments, ReplicaSets and
pods are created directly, chained by ownerReferences, and the garbage collector does the rest.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
from conformance_support import deployment_yaml, kubectl_ns, wait_for

from clusterproc import ClusterProcess

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("kubectl_available")]


def _owner_ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _post(cluster: ClusterProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with cluster.client() as client:
        response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _deployment_tree(
    cluster: ClusterProcess, namespace: str, *, pods: int = 2, pod_finalizer: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A Deployment owning a ReplicaSet owning ``pods`` pods, as the controllers would make them."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    deploy = json.loads(kubectl_ns(cluster, namespace, "get", "deploy", "web", "-o", "json").stdout)
    template = deploy["spec"]["template"]
    rs = _post(
        cluster,
        f"/apis/apps/v1/namespaces/{namespace}/replicasets",
        {
            "metadata": {
                "name": "web-abc",
                "labels": {"app": "web", "pod-template-hash": "abc"},
                "ownerReferences": [_owner_ref(deploy)],
            },
            "spec": {
                "replicas": pods,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                    "spec": template["spec"],
                },
            },
        },
    )
    created = []
    for i in range(pods):
        meta: dict[str, Any] = {
            "name": f"web-abc-{i}",
            "labels": {"app": "web", "pod-template-hash": "abc"},
            "ownerReferences": [_owner_ref(rs)],
        }
        if pod_finalizer:
            meta["finalizers"] = [pod_finalizer]
        created.append(
            _post(
                cluster, f"/api/v1/namespaces/{namespace}/pods", {"metadata": meta, "spec": template["spec"]}
            )
        )
    return deploy, rs, created


def _names(cluster: ClusterProcess, namespace: str, kind: str) -> list[str]:
    out = kubectl_ns(cluster, namespace, "get", kind, "-o", "name")
    return out.stdout.split()


def _get(cluster: ClusterProcess, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = kubectl_ns(cluster, namespace, "get", kind, name, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def _remove_finalizers(cluster: ClusterProcess, namespace: str, kind: str, name: str) -> None:
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        kind,
        name,
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )


def test_25_background_cascade(cluster: ClusterProcess, namespace: str) -> None:
    """25. kubectl delete deploy returns once the deployment, its ReplicaSets and its pods are gone."""
    _deployment_tree(cluster, namespace)
    out = kubectl_ns(cluster, namespace, "delete", "deploy", "web")
    assert 'deployment.apps "web" deleted' in out.stdout
    assert _names(cluster, namespace, "deploy") == []
    wait_for(
        lambda: not _names(cluster, namespace, "rs") and not _names(cluster, namespace, "pods"), what="GC"
    )


def test_26_foreground_cascade(cluster: ClusterProcess, namespace: str) -> None:
    """26. --cascade=foreground: the owner waits with foregroundDeletion until its dependents are gone."""
    _deployment_tree(cluster, namespace, pod_finalizer="example.com/hold")
    out = kubectl_ns(cluster, namespace, "delete", "deploy", "web", "--cascade=foreground", "--wait=false")
    assert 'deployment.apps "web" deleted' in out.stdout
    deploy = _get(cluster, namespace, "deploy", "web")
    assert deploy is not None
    assert deploy["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in deploy["metadata"]["finalizers"]

    def pods_terminating() -> bool:
        pods = [_get(cluster, namespace, "pod", f"web-abc-{i}") for i in range(2)]
        return all(p is not None and p["metadata"].get("deletionTimestamp") for p in pods)

    wait_for(pods_terminating, what="the pods to be terminating")
    rs = _get(cluster, namespace, "rs", "web-abc")
    assert rs is not None and rs["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in rs["metadata"]["finalizers"]
    table = kubectl_ns(cluster, namespace, "get", "pods", "--no-headers").stdout
    assert [line.split()[2] for line in table.splitlines()] == ["Terminating", "Terminating"]
    assert _get(cluster, namespace, "deploy", "web") is not None
    for i in range(2):
        _remove_finalizers(cluster, namespace, "pod", f"web-abc-{i}")
    wait_for(lambda: _get(cluster, namespace, "deploy", "web") is None, what="the owner to go")
    assert _names(cluster, namespace, "rs") == []
    assert _names(cluster, namespace, "pods") == []


def test_27_orphan_cascade(cluster: ClusterProcess, namespace: str) -> None:
    """27. --cascade=orphan deletes the ReplicaSet and leaves its pods without ownerReferences."""
    _deployment_tree(cluster, namespace)
    out = kubectl_ns(cluster, namespace, "delete", "rs", "web-abc", "--cascade=orphan")
    assert 'replicaset.apps "web-abc" deleted' in out.stdout
    assert _get(cluster, namespace, "rs", "web-abc") is None
    for i in range(2):
        pod = _get(cluster, namespace, "pod", f"web-abc-{i}")
        assert pod is not None
        assert "ownerReferences" not in pod["metadata"]
    assert _names(cluster, namespace, "deploy") == ["deployment.apps/web"]


def test_28_finalizers(cluster: ClusterProcess, namespace: str) -> None:
    """28. A finalizer holds a deleted ConfigMap; removing it deletes it; watchers see MODIFIED, DELETED."""
    kubectl_ns(
        cluster,
        namespace,
        "create",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "f", "finalizers": ["example.com/x"]},
                "data": {"a": "b"},
            }
        ),
    )
    created = _get(cluster, namespace, "cm", "f")
    assert created is not None
    out = kubectl_ns(cluster, namespace, "delete", "cm", "f", "--wait=false")
    assert 'configmap "f" deleted' in out.stdout
    held = _get(cluster, namespace, "cm", "f")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["example.com/x"]
    added = kubectl_ns(
        cluster,
        namespace,
        "patch",
        "cm",
        "f",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"finalizers":["example.com/x","example.com/y"]}}',
        check=False,
    )
    assert added.returncode != 0 and "no new finalizers can be added" in added.stderr
    _remove_finalizers(cluster, namespace, "cm", "f")
    assert _get(cluster, namespace, "cm", "f") is None
    rv = created["metadata"]["resourceVersion"]
    with cluster.client() as client:
        response = client.get(
            f"/api/v1/namespaces/{namespace}/configmaps",
            params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"},
        )
    events = [json.loads(line) for line in response.text.splitlines()]
    # Removing the last finalizer deletes instead of updating, as kube-apiserver does.
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


def test_29_namespace_termination(cluster: ClusterProcess, namespace: str) -> None:
    """29. delete ns blocks until the content is gone; creates inside → 403; a missing namespace → 404."""
    kubectl_ns(cluster, namespace, "create", "configmap", "plain", "--from-literal=a=b")
    kubectl_ns(
        cluster,
        namespace,
        "create",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "held", "finalizers": ["example.com/x"]},
            }
        ),
    )
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    deleter = subprocess.Popen(
        ["kubectl", "delete", "ns", namespace, "--timeout=60s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.kubectl_env(),
    )
    try:
        wait_for(
            lambda: (
                cluster.kubectl("get", "ns", namespace, "-o", "jsonpath={.status.phase}").stdout
                == "Terminating"
            ),
            what="Terminating",
        )
        wait_for(lambda: _names(cluster, namespace, "cm") == ["configmap/held"], what="the content to go")
        assert _names(cluster, namespace, "deploy") == []
        ns = json.loads(cluster.kubectl("get", "ns", namespace, "-o", "json").stdout)
        assert ns["metadata"]["deletionTimestamp"]
        assert cluster.kubectl("get", "ns", namespace, "--no-headers").stdout.split()[1] == "Terminating"
        wait_for(
            lambda: any(
                c["type"] == "NamespaceFinalizersRemaining"
                and "example.com/x in 1 resource instances" in c["message"]
                for c in json.loads(cluster.kubectl("get", "ns", namespace, "-o", "json").stdout)[
                    "status"
                ].get("conditions", [])
            ),
            what="the namespace controller's conditions",
        )
        late = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}
        forbidden = kubectl_ns(cluster, namespace, "create", "-f", "-", input=json.dumps(late), check=False)
        assert forbidden.returncode != 0
        assert (
            f'Error from server (Forbidden): error when creating "STDIN": configmaps "late" is forbidden: '
            f"unable to create new content in namespace {namespace} because it is being terminated"
        ) in forbidden.stderr
        with cluster.client() as client:
            response = client.post(f"/api/v1/namespaces/{namespace}/configmaps", json=late)
        assert response.status_code == 403
        status = response.json()
        assert status["reason"] == "Forbidden"
        assert status["details"]["causes"][0]["reason"] == "NamespaceTerminating"
        time.sleep(0.3)
        assert deleter.poll() is None
        _remove_finalizers(cluster, namespace, "cm", "held")
        stdout, stderr = deleter.communicate(timeout=30)
    finally:
        if deleter.poll() is None:
            deleter.kill()
    assert deleter.returncode == 0, stderr
    assert f'namespace "{namespace}" deleted' in stdout
    gone = cluster.kubectl("get", "ns", namespace, check=False)
    assert f'namespaces "{namespace}" not found' in gone.stderr
    missing = kubectl_ns(cluster, "no-such-ns", "create", "-f", "-", input=json.dumps(late), check=False)
    assert 'Error from server (NotFound): error when creating "STDIN": namespaces "no-such-ns" not found' in (
        missing.stderr
    )
    for protected in ("default", "kube-system", "kube-public"):
        refused = cluster.kubectl("delete", "ns", protected, "--wait=false", check=False)
        assert refused.returncode != 0 and "Forbidden" in refused.stderr
