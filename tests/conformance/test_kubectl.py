"""Conformance with the real kubectl 1.32: discovery, apply, patch, errors, selectors, lists and watches.

Each test is one check of research/kubeapi.md §5 (its number is in the docstring) that does not need
simulated pods or controllers; those come with the controllers.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml
from conformance_support import deployment_yaml, kubectl_ns, wait_for

from clusterproc import ClusterProcess

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("kubectl_available")]

LEGACY = "application/json"
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def get_json(cluster: ClusterProcess, namespace: str, *what: str) -> dict:
    return json.loads(kubectl_ns(cluster, namespace, "get", *what, "-o", "json").stdout)


# ------------------------------------------------------------------------------------- discovery


def test_01_version(cluster: ClusterProcess) -> None:
    """1. /version reports 1.32; kubectl shows it and identifies itself as kubectl/v1.32."""
    with cluster.client() as client:
        info = client.get("/version").json()
    assert (info["major"], info["minor"]) == ("1", "32")
    assert "Server Version: v1.32" in cluster.kubectl("version").stdout
    verbose = cluster.kubectl("get", "namespaces", "-v=8")
    assert "User-Agent: kubectl/v1.32." in verbose.stderr


def _legacy_resources(cluster: ClusterProcess) -> dict[tuple[str, str], tuple]:
    found: dict[tuple[str, str], tuple] = {}
    with cluster.client() as client:
        headers = {"Accept": LEGACY}
        versions = client.get("/api", headers=headers).json()["versions"]
        group_versions = [v for v in versions]
        for group in client.get("/apis", headers=headers).json()["groups"]:
            group_versions += [v["groupVersion"] for v in group["versions"]]
        for gv in group_versions:
            path = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
            for r in client.get(path, headers=headers).json()["resources"]:
                if "/" in r["name"]:
                    continue
                found[(gv, r["name"])] = (r["namespaced"], r["kind"], tuple(r.get("shortNames") or ()))
    return found


def _aggregated_resources(cluster: ClusterProcess) -> dict[tuple[str, str], tuple]:
    found: dict[tuple[str, str], tuple] = {}
    with cluster.client() as client:
        for path in ("/api", "/apis"):
            response = client.get(path, headers={"Accept": f"{AGGREGATED_V2},{LEGACY}"})
            assert response.headers["content-type"] == AGGREGATED_V2
            for item in response.json()["items"]:
                group = item["metadata"].get("name", "")
                for version in item["versions"]:
                    gv = f"{group}/{version['version']}" if group else version["version"]
                    for r in version["resources"]:
                        found[(gv, r["resource"])] = (
                            r["scope"] == "Namespaced",
                            r["responseKind"]["kind"],
                            tuple(r.get("shortNames") or ()),
                        )
    return found


def test_02_api_resources(cluster: ClusterProcess) -> None:
    """2. api-resources lists the core types with the right scope and kind; legacy discovery agrees."""
    out = cluster.kubectl("api-resources", "--no-headers").stdout
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        rows[(cells[0], cells[-3])] = (cells[1] if len(cells) == 5 else "", cells[-2], cells[-1])
    expected = {
        ("pods", "v1"): ("po", "true", "Pod"),
        ("deployments", "apps/v1"): ("deploy", "true", "Deployment"),
        ("replicasets", "apps/v1"): ("rs", "true", "ReplicaSet"),
        ("services", "v1"): ("svc", "true", "Service"),
        ("events", "v1"): ("ev", "true", "Event"),
        ("leases", "coordination.k8s.io/v1"): ("", "true", "Lease"),
        ("namespaces", "v1"): ("ns", "false", "Namespace"),
        ("nodes", "v1"): ("no", "false", "Node"),
        ("jobs", "batch/v1"): ("", "true", "Job"),
        ("customresourcedefinitions", "apiextensions.k8s.io/v1"): (
            "crd,crds",
            "false",
            "CustomResourceDefinition",
        ),
    }
    for key, value in expected.items():
        assert rows.get(key) == value, (key, rows.get(key))
    assert _legacy_resources(cluster) == _aggregated_resources(cluster)


def test_03_aggregated_discovery_never_v2_when_not_asked(cluster: ClusterProcess) -> None:
    """3. An Accept that lists v2beta1 (and JSON) never gets v2 back."""
    with cluster.client() as client:
        for path in ("/api", "/apis"):
            response = client.get(path, headers={"Accept": f"{AGGREGATED_V2BETA1},{LEGACY}"})
            assert response.status_code == 200
            content_type = response.headers["content-type"]
            assert content_type in (AGGREGATED_V2BETA1, LEGACY), content_type
            if content_type == AGGREGATED_V2BETA1:
                assert response.json()["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
            legacy = client.get(path, headers={"Accept": LEGACY})
            assert legacy.headers["content-type"] == LEGACY
            assert legacy.json()["kind"] in ("APIVersions", "APIGroupList")


# -------------------------------------------------------------------------------------- namespaces


def test_04_create_namespace_protobuf(cluster: ClusterProcess, namespace: str) -> None:
    """4. kubectl create namespace (a protobuf body) → Active with the kubernetes finalizer."""
    name = f"{namespace}-demo"
    assert f"namespace/{name} created" in cluster.kubectl("create", "namespace", name).stdout
    assert cluster.kubectl("get", "ns", name, "-o", "jsonpath={.status.phase}").stdout == "Active"
    ns = json.loads(cluster.kubectl("get", "ns", name, "-o", "json").stdout)
    assert ns["spec"]["finalizers"] == ["kubernetes"]


# ---------------------------------------------------------------------------------- apply and patch


def test_06_apply_sets_last_applied_generation_and_defaults(cluster: ClusterProcess, namespace: str) -> None:
    """6. apply records last-applied, starts at generation 1 and defaults the spec."""
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    assert "deployment.apps/web created" in out.stdout
    deploy = yaml.safe_load(kubectl_ns(cluster, namespace, "get", "deploy", "web", "-o", "yaml").stdout)
    annotations = deploy["metadata"]["annotations"]
    last = json.loads(annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 2
    assert deploy["metadata"]["generation"] == 1
    spec = deploy["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always"
    assert pod_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert pod_spec["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_08_reapply_is_unchanged(cluster: ClusterProcess, namespace: str) -> None:
    """8. Applying the same file again → unchanged, and the resourceVersion stays."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    before = get_json(cluster, namespace, "deploy", "web")["metadata"]["resourceVersion"]
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    assert "deployment.apps/web unchanged" in out.stdout
    after = get_json(cluster, namespace, "deploy", "web")["metadata"]
    assert after["resourceVersion"] == before
    assert after["generation"] == 1
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml(image="nginx:1.26"))
    assert "deployment.apps/web configured" in out.stdout
    changed = get_json(cluster, namespace, "deploy", "web")
    assert changed["metadata"]["generation"] == 2
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


def test_11_scale_uses_the_scale_subresource(cluster: ClusterProcess, namespace: str) -> None:
    """11. kubectl scale PATCHes /scale and bumps generation (READY needs controllers)."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    out = kubectl_ns(cluster, namespace, "scale", "deploy/web", "--replicas=4", "-v=6")
    assert "deployment.apps/web scaled" in out.stdout
    assert f"PATCH {cluster.url}/apis/apps/v1/namespaces/{namespace}/deployments/web/scale" in out.stderr
    deploy = get_json(cluster, namespace, "deploy", "web")
    assert deploy["spec"]["replicas"] == 4
    assert deploy["metadata"]["generation"] == 2
    with cluster.client() as client:
        scale = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale").json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 4}
    assert scale["status"]["selector"] == "app=web"
    # A status write does not bump generation.
    with cluster.client() as client:
        response = client.patch(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/web/status",
            content=json.dumps({"status": {"replicas": 4, "observedGeneration": 2}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
    deploy = get_json(cluster, namespace, "deploy", "web")
    assert deploy["metadata"]["generation"] == 2
    assert deploy["status"]["replicas"] == 4
    scale = json.loads(
        kubectl_ns(
            cluster, namespace, "get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale"
        ).stdout
    )
    assert scale["status"]["replicas"] == 4


def test_12_patch_types(cluster: ClusterProcess, namespace: str) -> None:
    """12. merge, json and strategic patches each change one field; strategic merges env lists."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    kubectl_ns(
        cluster, namespace, "patch", "deploy", "web", "--type", "merge", "-p", '{"spec":{"replicas":4}}'
    )
    assert get_json(cluster, namespace, "deploy", "web")["spec"]["replicas"] == 4
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":5}]',
    )
    assert get_json(cluster, namespace, "deploy", "web")["spec"]["replicas"] == 5
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "B", "value": "2"}]}]}}
        }
    }
    kubectl_ns(cluster, namespace, "patch", "deploy", "web", "--type", "strategic", "-p", json.dumps(patch))
    deploy = get_json(cluster, namespace, "deploy", "web")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert sorted(e["name"] for e in container["env"]) == ["A", "B"]
    assert container["image"] == "nginx:1.25"
    assert deploy["spec"]["replicas"] == 5
    # A merge patch replaces the list instead.
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "deploy",
        "web",
        "--type",
        "merge",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}',
    )
    container = get_json(cluster, namespace, "deploy", "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27"
    assert "env" not in container
    # label and annotate are merge patches too.
    kubectl_ns(cluster, namespace, "label", "deploy", "web", "x=y")
    kubectl_ns(cluster, namespace, "annotate", "deploy", "web", "note=hello")
    meta = get_json(cluster, namespace, "deploy", "web")["metadata"]
    assert meta["labels"] == {"app": "web", "x": "y"}
    assert meta["annotations"]["note"] == "hello"
    failed = kubectl_ns(
        cluster,
        namespace,
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":99}]',
        check=False,
    )
    assert failed.returncode != 0


D_A = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  finalizers: [example.com/a, example.com/b]
spec:
  replicas: 1
  selector:
    matchLabels: {app: d}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: d}
    spec:
      containers:
      - name: a
        image: app:1
        env:
        - {name: X, value: "1"}
        - {name: KEEP, value: "2"}
        volumeMounts:
        - {name: v1, mountPath: /data}
      - name: b
        image: sidecar:1
      volumes:
      - name: v1
        emptyDir: {}
"""

D_B = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  finalizers: [example.com/a]
spec:
  replicas: 1
  selector:
    matchLabels: {app: d}
  strategy:
    type: Recreate
  template:
    metadata:
      labels: {app: d}
    spec:
      containers:
      - name: a
        image: app:1
        env:
        - {name: KEEP, value: "2"}
      volumes:
      - name: v1
        configMap: {name: cm}
"""


def test_13_client_side_apply_directives(cluster: ClusterProcess, namespace: str) -> None:
    """13. d_a.yaml then d_b.yaml: kubectl's strategic merge directives delete, retain and reorder."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=D_A)
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=D_B)
    assert "deployment.apps/d configured" in out.stdout
    deploy = get_json(cluster, namespace, "deploy", "d")
    pod_spec = deploy["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["a"]
    container = pod_spec["containers"][0]
    assert container["env"] == [{"name": "KEEP", "value": "2"}]
    assert "volumeMounts" not in container
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec["volumes"] == [{"name": "v1", "configMap": {"name": "cm", "defaultMode": 420}}]
    assert deploy["metadata"]["finalizers"] == ["example.com/a"]
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "deploy",
        "d",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )


# ------------------------------------------------------------------------- server-side apply, dry run


CM_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
data:
  key: one
  other: x
"""


def test_15_server_side_apply(cluster: ClusterProcess, namespace: str) -> None:
    """15. apply --server-side creates then is a no-op; another manager's change conflicts unless forced."""
    out = kubectl_ns(cluster, namespace, "apply", "--server-side", "-f", "-", input=CM_YAML)
    assert "configmap/ssa serverside-applied" in out.stdout
    first = get_json(cluster, namespace, "cm", "ssa")
    out = kubectl_ns(cluster, namespace, "apply", "--server-side", "-f", "-", input=CM_YAML)
    assert "configmap/ssa serverside-applied" in out.stdout
    again = get_json(cluster, namespace, "cm", "ssa", "--show-managed-fields")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    managers = {m["manager"]: m for m in again["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:key" in managers["kubectl"]["fieldsV1"]["f:data"]

    theirs = CM_YAML.replace("key: one", "key: two").replace("  other: x\n", "")
    failed = kubectl_ns(
        cluster,
        namespace,
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        "-",
        input=theirs,
        check=False,
    )
    assert failed.returncode != 0
    assert "Apply failed with 1 conflict" in failed.stderr
    assert 'conflict with "kubectl"' in failed.stderr
    assert ".data.key" in failed.stderr
    kubectl_ns(
        cluster,
        namespace,
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "-",
        input=theirs,
    )
    forced = get_json(cluster, namespace, "cm", "ssa")
    assert forced["data"] == {"key": "two", "other": "x"}
    # A manager dropping a field it alone owns removes it; co-owning a value is no conflict.
    kubectl_ns(cluster, namespace, "apply", "--server-side", "-f", "-", input=theirs)
    assert get_json(cluster, namespace, "cm", "ssa")["data"] == {"key": "two"}


def test_15_server_side_apply_after_client_side_apply(cluster: ClusterProcess, namespace: str) -> None:
    """15. Switching a Deployment from apply to apply --server-side: no change, then no conflict."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    out = kubectl_ns(cluster, namespace, "apply", "--server-side", "-f", "-", input=deployment_yaml())
    assert "deployment.apps/web serverside-applied" in out.stdout
    deploy = get_json(cluster, namespace, "deploy", "web", "--show-managed-fields")
    # The applied port has no protocol: it is keyed with the default (TCP), so it is the live port.
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    assert deploy["metadata"]["generation"] == 1
    # kubectl moved the client-side apply's fields to its server-side manager (a managedFields-only patch).
    managers = [(m["manager"], m["operation"]) for m in deploy["metadata"]["managedFields"]]
    assert managers == [("kubectl", "Apply"), ("kubectl-last-applied", "Apply")]
    out = kubectl_ns(
        cluster, namespace, "apply", "--server-side", "-f", "-", input=deployment_yaml(replicas=3)
    )
    assert "deployment.apps/web serverside-applied" in out.stdout
    deploy = get_json(cluster, namespace, "deploy", "web")
    assert (deploy["spec"]["replicas"], deploy["metadata"]["generation"]) == (3, 2)


def test_16_server_dry_run(cluster: ClusterProcess, namespace: str) -> None:
    """16. apply --dry-run=server reports, but stores nothing."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    before = get_json(cluster, namespace, "deploy", "web")
    out = kubectl_ns(
        cluster, namespace, "apply", "--dry-run=server", "-f", "-", input=deployment_yaml(image="nginx:9")
    )
    assert "deployment.apps/web configured (server dry run)" in out.stdout
    after = get_json(cluster, namespace, "deploy", "web")
    assert after == before
    out = kubectl_ns(cluster, namespace, "apply", "--dry-run=server", "-f", "-", input=deployment_yaml("new"))
    assert "deployment.apps/new created (server dry run)" in out.stdout
    missing = kubectl_ns(cluster, namespace, "get", "deploy", "new", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    out = kubectl_ns(
        cluster,
        namespace,
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        "-",
        input=deployment_yaml("ssa"),
    )
    assert "(server dry run)" in out.stdout
    assert kubectl_ns(cluster, namespace, "get", "deploy", "ssa", check=False).returncode != 0
    kubectl_ns(cluster, namespace, "delete", "deploy", "web", "--dry-run=server")
    assert get_json(cluster, namespace, "deploy", "web") == before


def test_17_diff(cluster: ClusterProcess, namespace: str) -> None:
    """17. kubectl diff exits 1 with a diff when the live object differs, 0 when it does not."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    same = kubectl_ns(cluster, namespace, "diff", "-f", "-", input=deployment_yaml(), check=False)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""
    changed = kubectl_ns(
        cluster, namespace, "diff", "-f", "-", input=deployment_yaml(image="nginx:1.26"), check=False
    )
    assert changed.returncode == 1, changed.stderr
    assert "-        image: nginx:1.25" in changed.stdout
    assert "+        image: nginx:1.26" in changed.stdout
    assert "generation" in changed.stdout  # the would-be generation bump shows
    new = kubectl_ns(cluster, namespace, "diff", "-f", "-", input=deployment_yaml("other"), check=False)
    assert new.returncode == 1 and "+  name: other" in new.stdout


# --------------------------------------------------------------------------------- errors, conflicts


def test_18_replace_with_stale_resource_version(cluster: ClusterProcess, namespace: str) -> None:
    """18. kubectl replace with an old resourceVersion → 409 Conflict."""
    kubectl_ns(cluster, namespace, "create", "configmap", "c", "--from-literal=k=1")
    stale = get_json(cluster, namespace, "cm", "c")
    kubectl_ns(cluster, namespace, "patch", "cm", "c", "--type", "merge", "-p", '{"data":{"k":"2"}}')
    stale["data"]["k"] = "3"
    failed = kubectl_ns(cluster, namespace, "replace", "-f", "-", input=json.dumps(stale), check=False)
    assert failed.returncode != 0
    assert (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on '
        'configmaps "c": the object has been modified; please apply your changes to the latest version and '
        "try again"
    ) in failed.stderr
    fresh = get_json(cluster, namespace, "cm", "c")
    fresh["data"]["k"] = "4"
    out = kubectl_ns(cluster, namespace, "replace", "-f", "-", input=json.dumps(fresh))
    assert "configmap/c replaced" in out.stdout
    assert get_json(cluster, namespace, "cm", "c")["data"] == {"k": "4"}


def test_19_already_exists_and_not_found(cluster: ClusterProcess, namespace: str) -> None:
    """19. A second create → AlreadyExists; a missing pod → NotFound with kube's wording."""
    kubectl_ns(cluster, namespace, "create", "-f", "-", input=deployment_yaml())
    again = kubectl_ns(cluster, namespace, "create", "-f", "-", input=deployment_yaml(), check=False)
    assert again.returncode != 0
    assert (
        'Error from server (AlreadyExists): error when creating "STDIN": deployments.apps "web" already '
        "exists" in again.stderr
    )
    missing = kubectl_ns(cluster, namespace, "get", "pod", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    missing = kubectl_ns(cluster, namespace, "delete", "deploy", "nope", check=False)
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in missing.stderr
    bad_name = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    invalid = kubectl_ns(cluster, namespace, "create", "-f", "-", input=json.dumps(bad_name), check=False)
    assert (
        'The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters"
    ) in invalid.stderr
    with cluster.client() as client:
        response = client.post(f"/api/v1/namespaces/{namespace}/configmaps", json=bad_name)
        assert response.status_code == 422
        assert response.json()["details"]["causes"][0]["reason"] == "FieldValueInvalid"
        response = client.post(f"/api/v1/namespaces/{namespace}/configmaps", json={"metadata": {}})
        assert response.status_code == 422
        assert response.json()["message"] == (
            'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
        )


# ---------------------------------------------------------------------------------------- selectors


def _create_pod(
    cluster: ClusterProcess, namespace: str, name: str, labels: dict[str, str], phase: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "app:1"}]},
    }
    with cluster.client() as client:
        response = client.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
        assert response.status_code == 201, response.text
        response = client.patch(
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            content=json.dumps({"status": {"phase": phase}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"]["phase"] == phase


def test_20_label_and_field_selectors(cluster: ClusterProcess, namespace: str) -> None:
    """20. Label and field selectors filter lists; an unknown field label → 400."""
    _create_pod(cluster, namespace, "web-1", {"app": "web", "tier": "front"}, "Running")
    _create_pod(cluster, namespace, "web-2", {"app": "web"}, "Running")
    _create_pod(cluster, namespace, "web-3", {"app": "web", "tier": "front"}, "Pending")
    _create_pod(cluster, namespace, "db-1", {"app": "web", "tier": "db"}, "Running")
    _create_pod(cluster, namespace, "other", {"app": "other"}, "Running")
    out = kubectl_ns(
        cluster,
        namespace,
        "get",
        "pods",
        "-l",
        "app=web,tier notin (db)",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    )
    assert out.stdout.split() == ["pod/web-1", "pod/web-2"]
    out = kubectl_ns(
        cluster, namespace, "get", "pods", "--field-selector", "status.phase!=Running,metadata.name!=x"
    )
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["web-3"]
    assert out.stdout.splitlines()[1].split()[2] == "Pending"
    out = kubectl_ns(cluster, namespace, "get", "pods", "-l", "!tier", "-o", "name")
    assert out.stdout.split() == ["pod/other", "pod/web-2"]
    bad = kubectl_ns(cluster, namespace, "get", "pods", "--field-selector", "spec.foo=x", check=False)
    assert bad.returncode != 0
    assert "Error from server (BadRequest)" in bad.stderr
    assert "field label not supported: spec.foo" in bad.stderr
    bad = kubectl_ns(cluster, namespace, "get", "pods", "-l", "app in (", check=False)
    assert bad.returncode != 0
    out = cluster.kubectl("get", "pods", "-A", "-l", "app=other", "--no-headers")
    assert out.stdout.split()[:2] == [namespace, "other"]


# -------------------------------------------------------------------------------------- lists, watch


def test_21_chunked_lists(cluster: ClusterProcess, namespace: str) -> None:
    """21. --chunk-size=3 follows continue tokens and lists all seven ConfigMaps."""
    for i in range(7):
        kubectl_ns(cluster, namespace, "create", "configmap", f"cm{i}", f"--from-literal=i={i}")
    out = kubectl_ns(cluster, namespace, "get", "cm", "--chunk-size=3", "-v=6")
    names = [line.split()[0] for line in out.stdout.splitlines()[1:]]
    assert names == [f"cm{i}" for i in range(7)]
    assert out.stderr.count("limit=3") == 3
    out = kubectl_ns(cluster, namespace, "get", "cm", "--chunk-size=3", "-o", "name")
    assert out.stdout.split() == [f"configmap/cm{i}" for i in range(7)]


def test_22_get_watch(cluster: ClusterProcess, namespace: str) -> None:
    """22. kubectl get -w prints a row for each create, change and delete, and keeps watching."""
    kubectl_ns(cluster, namespace, "create", "configmap", "first", "--from-literal=a=b")
    proc = subprocess.Popen(
        ["kubectl", "-n", namespace, "get", "cm", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.kubectl_env(),
    )
    try:
        time.sleep(1.0)
        kubectl_ns(cluster, namespace, "create", "configmap", "w", "--from-literal=a=b")
        kubectl_ns(cluster, namespace, "patch", "cm", "w", "--type", "merge", "-p", '{"data":{"c":"d"}}')
        kubectl_ns(cluster, namespace, "delete", "cm", "w")
        time.sleep(1.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=10)
    lines = stdout.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert lines[1].split()[:2] == ["first", "1"]
    rows = [line.split()[:2] for line in lines[2:]]
    assert rows == [["w", "1"], ["w", "2"], ["w", "2"]], stdout + stderr


def test_watch_output_events(cluster: ClusterProcess, namespace: str) -> None:
    """22 (variant). -o json --output-watch-events prints plain objects with their event types."""
    proc = subprocess.Popen(
        ["kubectl", "-n", namespace, "get", "cm", "-w", "-o", "json", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.kubectl_env(),
    )
    try:
        time.sleep(1.0)
        kubectl_ns(cluster, namespace, "create", "configmap", "w", "--from-literal=a=b")
        kubectl_ns(cluster, namespace, "delete", "cm", "w")
        time.sleep(1.0)
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=10)
    decoder = json.JSONDecoder()
    events, text = [], stdout.strip()
    while text:
        event, end = decoder.raw_decode(text)
        events.append((event["type"], event["object"]["kind"], event["object"]["metadata"]["name"]))
        text = text[end:].strip()
    assert events == [("ADDED", "ConfigMap", "w"), ("DELETED", "ConfigMap", "w")]


def test_wait_for_delete(cluster: ClusterProcess, namespace: str) -> None:
    """kubectl wait --for=delete uses the list-then-watch informer pattern."""
    kubectl_ns(cluster, namespace, "create", "configmap", "gone", "--from-literal=a=b")
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "cm",
        "gone",
        "--type",
        "merge",
        "-p",
        '{"metadata":{"finalizers":["example.com/x"]}}',
    )
    kubectl_ns(cluster, namespace, "delete", "cm", "gone", "--wait=false")
    waiter = subprocess.Popen(
        ["kubectl", "-n", namespace, "wait", "--for=delete", "cm/gone", "--timeout=20s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.kubectl_env(),
    )
    time.sleep(0.5)
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "cm",
        "gone",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    stdout, stderr = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, stderr
    assert "configmap/gone condition met" in stdout
    wait_for(lambda: kubectl_ns(cluster, namespace, "get", "cm", "gone", check=False).returncode != 0)
