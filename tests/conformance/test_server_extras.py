"""API-server behaviours of issue 2 that the other conformance tests leave open.

The state-directory lock (a second server is refused), the OpenAPI v3 documents kubectl's validation reads,
aggregated-discovery version negotiation, a create/get/delete round trip through the real kubectl for the
built-in types nothing else exercises, and the protobuf bodies of ``kubectl create secret|configmap``.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from conformance_support import kubectl_ns, wait_for

from clusterproc import ClusterProcess, start_cluster
from tugboat.localcluster import tables

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("kubectl_available")]

LEGACY = "application/json"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList"


# ------------------------------------------------------------------------------ state directory lock


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ClusterProcess]:
    proc = start_cluster(tmp_path / "state")
    yield proc
    proc.stop()


def _serve(state_dir: Path) -> subprocess.CompletedProcess[str]:
    """``tugboat cluster serve`` on ``state_dir`` (bare, any port), run to its end."""
    argv = [sys.executable, "-m", "tugboat.cli.main", "cluster", "serve", "--port", "0", "--nodes", "0"]
    return subprocess.run([*argv, "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=30)


def test_second_server_on_the_same_state_dir_is_refused(own_cluster: ClusterProcess) -> None:
    """A second server on a state directory in use exits ≠ 0 naming the holder; the first one serves on."""
    kubeconfig = own_cluster.kubeconfig.read_text()
    second = _serve(own_cluster.state_dir)
    assert second.returncode != 0
    message = " ".join((second.stdout + second.stderr).split())  # the console may wrap long lines
    assert (
        f"the state directory {own_cluster.state_dir} is in use by another Tugboat local cluster "
        f"(pid {own_cluster.proc.pid})"
    ) in message, message
    assert "Traceback" not in message
    # The refused server touched nothing: same kubeconfig, the first server answers and writes.
    assert own_cluster.kubeconfig.read_text() == kubeconfig
    with own_cluster.client() as client:
        assert client.get("/readyz").status_code == 200
    assert "configmap/after created" in own_cluster.kubectl("create", "configmap", "after").stdout
    # Once the first server is gone, the directory is free again and its state is still there.
    assert own_cluster.stop() == 0
    again = start_cluster(own_cluster.state_dir)
    try:
        assert again.kubectl("get", "configmap", "after", "-o", "name").stdout.strip() == "configmap/after"
    finally:
        again.stop()


# ------------------------------------------------------------------------------------------ OpenAPI


def _group_versions(client: httpx.Client) -> set[str]:
    """Every group version discovery serves, as OpenAPI index keys (``api/v1``, ``apis/apps/v1``...)."""
    found = {f"api/{v}" for v in client.get("/api", headers={"Accept": LEGACY}).json()["versions"]}
    for group in client.get("/apis", headers={"Accept": LEGACY}).json()["groups"]:
        found |= {f"apis/{v['groupVersion']}" for v in group["versions"]}
    return found


def _openapi_index(client: httpx.Client) -> dict[str, str]:
    response = client.get("/openapi/v3")
    assert response.status_code == 200, response.text
    return {path: entry["serverRelativeURL"] for path, entry in response.json()["paths"].items()}


def _patch_operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: item["patch"] for path, item in document["paths"].items() if "patch" in item}


def _widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
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


def test_openapi_v3_index_and_documents(cluster: ClusterProcess) -> None:
    """/openapi/v3 lists every group version; PATCH operations carry the GVK and fieldValidation."""
    with cluster.client() as client:
        index = _openapi_index(client)
        assert set(index) == _group_versions(client)
        for path, url in index.items():
            assert url.startswith(f"/openapi/v3/{path}?hash=")
            response = client.get(url)
            assert response.status_code == 200, (path, response.text)
            document = response.json()
            assert document["openapi"].startswith("3.")
            patches = _patch_operations(document)
            assert patches, path
            for operation_path, operation in patches.items():
                gvk = operation["x-kubernetes-group-version-kind"]
                assert set(gvk) == {"group", "version", "kind"}, operation_path
                assert f"/{gvk['version']}/" in operation_path
                parameters = {p["name"]: p for p in operation["parameters"]}
                assert parameters["fieldValidation"]["in"] == "query", operation_path
        deployments = client.get(index["apis/apps/v1"]).json()
        operation = _patch_operations(deployments)["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
        assert operation["x-kubernetes-group-version-kind"] == {
            "group": "apps",
            "version": "v1",
            "kind": "Deployment",
        }
        # kubectl asks for documents by the hash it read from the index; the path alone serves too.
        assert client.get("/openapi/v3/apis/apps/v1").json() == deployments
        missing = client.get("/openapi/v3/apis/nothing.example.com/v1")
        assert missing.status_code == 404
        v2 = client.get("/openapi/v2")
        assert v2.status_code == 404
        assert v2.json()["kind"] == "Status" and v2.json()["reason"] == "NotFound"


def test_openapi_v3_follows_crds_at_once(cluster: ClusterProcess, namespace: str) -> None:
    """A new CRD's group version is in the index as soon as the CRD is created, and gone once deleted."""
    group = f"{namespace}.extras.example.com"
    with cluster.client() as client:
        before = _openapi_index(client)
        assert f"apis/{group}/v1" not in before
        response = client.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=_widget_crd(group)
        )
        assert response.status_code == 201, response.text
        after = _openapi_index(client)  # no waiting
        assert set(after) - set(before) == {f"apis/{group}/v1"}
        assert after["apis/apps/v1"] == before["apis/apps/v1"]  # unchanged documents keep their hash
        document = client.get(after[f"apis/{group}/v1"]).json()
        operation = _patch_operations(document)[f"/apis/{group}/v1/namespaces/{{namespace}}/widgets/{{name}}"]
        assert operation["x-kubernetes-group-version-kind"] == {
            "group": group,
            "version": "v1",
            "kind": "Widget",
        }
        assert "fieldValidation" in {p["name"] for p in operation["parameters"]}
        schemas = document["components"]["schemas"]
        (schema,) = [s for s in schemas.values() if s.get("x-kubernetes-group-version-kind")]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": group, "version": "v1", "kind": "Widget"}
        ]
    # kubectl's default (strict) validation of a create reads that document.
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=json.dumps(widget))
    assert f"widget.{group}/w created" in out.stdout
    cluster.kubectl("delete", "crd", f"widgets.{group}")
    with cluster.client() as client:
        wait_for(lambda: f"apis/{group}/v1" not in _openapi_index(client), what="the CRD's document gone")


# --------------------------------------------------------------------------- discovery negotiation


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{AGGREGATED.format('v2beta1')},{AGGREGATED.format('v2')},{LEGACY}", "v2beta1"),
        (f"{AGGREGATED.format('v2')},{AGGREGATED.format('v2beta1')},{LEGACY}", "v2"),
        (f"{AGGREGATED.format('v2')},{LEGACY}", "v2"),
        (f"{AGGREGATED.format('v2beta1')},{LEGACY}", "v2beta1"),
        (LEGACY, None),
        ("*/*", None),
        (f"{AGGREGATED.format('v3')},{LEGACY}", None),  # a version we do not serve is skipped
        (f"{LEGACY},{AGGREGATED.format('v2')}", None),  # the client prefers plain JSON
    ],
)
@pytest.mark.parametrize("path", ["/api", "/apis"])
def test_aggregated_discovery_negotiation(
    cluster: ClusterProcess, path: str, accept: str, expected: str
) -> None:
    """The answer is the first aggregated version the Accept header lists, else legacy discovery."""
    with cluster.client() as client:
        response = client.get(path, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    body = response.json()
    if expected is None:
        assert response.headers["content-type"] == LEGACY
        assert body["kind"] == ("APIVersions" if path == "/api" else "APIGroupList")
        return
    assert response.headers["content-type"] == AGGREGATED.format(expected)
    assert body["kind"] == "APIGroupDiscoveryList"
    assert body["apiVersion"] == f"apidiscovery.k8s.io/{expected}"
    names = [item["metadata"].get("name", "") for item in body["items"]]
    if path == "/api":
        assert names == [""]
    else:
        assert "apps" in names and "" not in names


def test_aggregated_discovery_versions_agree(cluster: ClusterProcess) -> None:
    """v2 and v2beta1 carry the same groups and resources; a plain request gets legacy JSON."""
    with cluster.client() as client:
        for path in ("/api", "/apis"):
            v2 = client.get(path, headers={"Accept": AGGREGATED.format("v2")}).json()
            v2beta1 = client.get(path, headers={"Accept": AGGREGATED.format("v2beta1")}).json()
            assert v2["items"] == v2beta1["items"]
            plain = client.get(path)
            assert plain.headers["content-type"] == LEGACY


# -------------------------------------------------------------------------- built-in type round trip


def _columns(header: str, line: str) -> dict[str, str]:
    """A kubectl table row as ``{HEADER: cell}``, cut at the header's column starts (cells may be empty)."""
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    cells = {}
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else None
        cells[name] = line[start:end].strip()
    return cells


# resource, api-resources row (short names, APIVERSION, NAMESPACED, KIND), manifest (metadata.name is set
# by the test), the table printed by ``kubectl get`` (age columns left out), a field that must round-trip.
BUILTINS: list[tuple[str, tuple[str, str, str, str], dict[str, Any], dict[str, str], tuple[str, Any]]] = [
    (
        "horizontalpodautoscalers",
        ("hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"),
        {
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            }
        },
        {"REFERENCE": "Deployment/web", "TARGETS": "cpu: <unknown>/80%", "MINPODS": "1", "MAXPODS": "5"},
        ("spec.maxReplicas", 5),
    ),
    (
        "poddisruptionbudgets",
        ("pdb", "policy/v1", "true", "PodDisruptionBudget"),
        {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
        {"MIN AVAILABLE": "1", "MAX UNAVAILABLE": "N/A", "ALLOWED DISRUPTIONS": "0"},
        ("spec.selector", {"matchLabels": {"app": "web"}}),
    ),
    (
        "roles",
        ("", "rbac.authorization.k8s.io/v1", "true", "Role"),
        {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
        {"CREATED AT": "<now>"},
        ("rules", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
    ),
    (
        "rolebindings",
        ("", "rbac.authorization.k8s.io/v1", "true", "RoleBinding"),
        {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
                {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
            ],
        },
        {"ROLE": "Role/reader"},
        ("roleRef.name", "reader"),
    ),
    (
        "clusterroles",
        ("", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"),
        {"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]},
        {"CREATED AT": "<now>"},
        ("rules", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]),
    ),
    (
        "clusterrolebindings",
        ("", "rbac.authorization.k8s.io/v1", "false", "ClusterRoleBinding"),
        {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}],
        },
        {"ROLE": "ClusterRole/view"},
        ("subjects", [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}]),
    ),
    (
        "ingressclasses",
        ("", "networking.k8s.io/v1", "false", "IngressClass"),
        {"spec": {"controller": "example.com/ingress"}},
        {"CONTROLLER": "example.com/ingress", "PARAMETERS": "<none>"},
        ("spec.controller", "example.com/ingress"),
    ),
    (
        "leases",
        ("", "coordination.k8s.io/v1", "true", "Lease"),
        {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
        {"HOLDER": "me"},
        ("spec.leaseDurationSeconds", 15),
    ),
    (
        "persistentvolumes",
        ("pv", "v1", "false", "PersistentVolume"),
        {
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/pv"},
            }
        },
        {
            "CAPACITY": "1Gi",
            "ACCESS MODES": "RWO",
            "RECLAIM POLICY": "Retain",
            "STATUS": "Pending",
            "CLAIM": "",
        },
        ("spec.capacity", {"storage": "1Gi"}),
    ),
    (
        "controllerrevisions",
        ("", "apps/v1", "true", "ControllerRevision"),
        {"revision": 3, "data": {"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}}},
        {"CONTROLLER": "<none>", "REVISION": "3"},
        ("data", {"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}}),
    ),
    (
        "endpointslices",
        ("", "discovery.k8s.io/v1", "true", "EndpointSlice"),
        {
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}}],
        },
        {"ADDRESSTYPE": "IPv4", "PORTS": "80", "ENDPOINTS": "10.0.0.5"},
        ("endpoints", [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}}]),
    ),
    (
        "serviceaccounts",
        ("sa", "v1", "true", "ServiceAccount"),
        {},
        {"SECRETS": "0"},
        ("kind", "ServiceAccount"),
    ),
]


def _field(obj: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        obj = obj[key]
    return obj


def test_builtin_types_in_api_resources(cluster: ClusterProcess) -> None:
    """Each round-tripped type is in ``kubectl api-resources`` with its group version, scope and kind."""
    rows = {}
    for line in cluster.kubectl("api-resources", "--no-headers").stdout.splitlines():
        cells = line.split()
        rows[(cells[0], cells[-3])] = (cells[1] if len(cells) == 5 else "", *cells[-3:])
    for resource, expected, *_ in BUILTINS:
        assert rows.get((resource, expected[1])) == expected, resource


@pytest.mark.parametrize(
    ("resource", "api", "body", "table", "field"), BUILTINS, ids=[b[0] for b in BUILTINS]
)
def test_builtin_type_round_trip(
    cluster: ClusterProcess,
    namespace: str,
    resource: str,
    api: tuple[str, str, str, str],
    body: dict[str, Any],
    table: dict[str, str],
    field: tuple[str, Any],
) -> None:
    """kubectl create (from a manifest) / get (a table and JSON) / delete of one built-in type."""
    short, api_version, namespaced, kind = api
    name = f"{namespace}-x" if namespaced == "false" else "x"  # cluster-scoped names are session-wide
    manifest = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **body}
    group = api_version.rpartition("/")[0]
    qualified = f"{kind.lower()}.{group}" if group else kind.lower()
    created = kubectl_ns(cluster, namespace, "create", "-f", "-", input=json.dumps(manifest))
    assert created.stdout.strip() == f"{qualified}/{name} created"

    shown = kubectl_ns(cluster, namespace, "get", short or resource, name).stdout.splitlines()
    assert len(shown) == 2, shown
    cells = _columns(shown[0], shown[1])
    assert cells.pop("NAME") == name
    age = cells.pop("AGE", None)
    assert age is None or re.fullmatch(r"\d+s", age), age
    expected = dict(table)
    if expected.get("CREATED AT") == "<now>":
        stamp = datetime.fromisoformat(cells["CREATED AT"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
        expected["CREATED AT"] = cells["CREATED AT"]
    assert {k: cells[k] for k in expected} == expected, shown

    obj = json.loads(kubectl_ns(cluster, namespace, "get", resource, name, "-o", "json").stdout)
    assert (obj["apiVersion"], obj["kind"]) == (api_version, kind)
    assert _field(obj, field[0]) == field[1]
    assert ("namespace" in obj["metadata"]) == (namespaced == "true")
    listed = kubectl_ns(cluster, namespace, "get", resource, "-o", "name").stdout.split()
    assert f"{qualified}/{name}" in listed

    deleted = kubectl_ns(cluster, namespace, "delete", resource, name)
    assert deleted.stdout.strip() == f'{qualified} "{name}" deleted'
    missing = kubectl_ns(cluster, namespace, "get", resource, name, check=False)
    assert missing.returncode == 1
    assert f'"{name}" not found' in missing.stderr


def test_rolebinding_wide_columns(cluster: ClusterProcess, namespace: str) -> None:
    """``get rolebindings -o wide`` adds USERS, GROUPS and SERVICEACCOUNTS (namespace/name)."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "mixed"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [
            {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": namespace},
        ],
    }
    kubectl_ns(cluster, namespace, "create", "-f", "-", input=json.dumps(binding))
    header, line = kubectl_ns(cluster, namespace, "get", "rolebindings", "-o", "wide").stdout.splitlines()
    cells = _columns(header, line)
    assert list(cells) == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert cells["ROLE"] == "ClusterRole/edit"
    assert (cells["USERS"], cells["GROUPS"], cells["SERVICEACCOUNTS"]) == (
        "alice, bob",
        "devs",
        f"{namespace}/ci",
    )


@pytest.mark.parametrize("resource", ["rolebindings", "clusterrolebindings"])
def test_rolebinding_printer_tolerates_sparse_objects(resource: str) -> None:
    now = datetime.now(UTC)
    columns = tables.columns_for("rbac.authorization.k8s.io", resource)
    for obj in (
        {},
        {"metadata": {"name": "x"}},
        {"roleRef": [], "subjects": "weird"},
        {"subjects": [None, 3]},
    ):
        cells = tables.row_for("rbac.authorization.k8s.io", resource, obj, now)
        assert len(cells) == len(columns)
        assert all(isinstance(cell, str) for cell in cells)


# ------------------------------------------------------------------- protobuf create secret/configmap


def test_create_secret_generic_from_literal(cluster: ClusterProcess, namespace: str) -> None:
    """``kubectl create secret generic`` sends protobuf; the Secret stores base64 data and type Opaque."""
    out = kubectl_ns(
        cluster,
        namespace,
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=a=b",
        "--from-literal=token=x=y z",
        "-v=8",
    )
    assert "secret/creds created" in out.stdout
    assert "Content-Type: application/vnd.kubernetes.protobuf" in out.stderr
    with cluster.client() as client:
        secret = client.get(f"/api/v1/namespaces/{namespace}/secrets/creds").json()
    assert secret["kind"] == "Secret" and secret["apiVersion"] == "v1"
    assert secret["type"] == "Opaque"
    assert secret["data"] == {
        "a": base64.b64encode(b"b").decode(),
        "token": base64.b64encode(b"x=y z").decode(),
    }
    assert secret["data"]["a"] == "Yg=="
    header, line = kubectl_ns(cluster, namespace, "get", "secret", "creds").stdout.splitlines()
    cells = _columns(header, line)
    assert (cells["TYPE"], cells["DATA"]) == ("Opaque", "2")


def test_create_configmap_from_literal(cluster: ClusterProcess, namespace: str) -> None:
    """``kubectl create configmap --from-literal`` sends protobuf; the ConfigMap stores the plain values."""
    out = kubectl_ns(
        cluster,
        namespace,
        "create",
        "configmap",
        "settings",
        "--from-literal=a=b",
        "--from-literal=empty=",
        "-v=8",
    )
    assert "configmap/settings created" in out.stdout
    assert "Content-Type: application/vnd.kubernetes.protobuf" in out.stderr
    with cluster.client() as client:
        configmap = client.get(f"/api/v1/namespaces/{namespace}/configmaps/settings").json()
    assert configmap["kind"] == "ConfigMap"
    assert configmap["data"] == {"a": "b", "empty": ""}
    assert "binaryData" not in configmap
    header, line = kubectl_ns(cluster, namespace, "get", "configmap", "settings").stdout.splitlines()
    assert _columns(header, line)["DATA"] == "2"
