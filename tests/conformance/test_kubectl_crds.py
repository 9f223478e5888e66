"""Conformance with kubectl and the Python client for CustomResourceDefinitions and custom resources.

Checks 14 and 30–32 of research/kubeapi.md §5.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml
from conformance_support import CRD_YAML, install_rollout_crd, kubectl_ns, rollout_yaml, wait_for
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

from clusterproc import ClusterProcess

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("kubectl_available")]


@pytest.fixture(scope="module")
def rollouts(cluster: ClusterProcess) -> ClusterProcess:
    install_rollout_crd(cluster)
    return cluster


@pytest.fixture
def custom_api(cluster: ClusterProcess) -> Iterator[k8s.CustomObjectsApi]:
    api_client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    with api_client:
        yield k8s.CustomObjectsApi(api_client)


def test_30_crd_printer_columns(cluster: ClusterProcess, namespace: str) -> None:
    """30. apply a CRD, wait for Established, apply a CR; get rollouts shows the printer columns."""
    out = cluster.kubectl("apply", "-f", "-", input=CRD_YAML)
    assert "customresourcedefinition.apiextensions.k8s.io/rollouts.example.com" in out.stdout
    out = cluster.kubectl("wait", "--for=condition=Established", "crd/rollouts.example.com", "--timeout=30s")
    assert "condition met" in out.stdout
    crd = json.loads(cluster.kubectl("get", "crd", "rollouts.example.com", "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"] == "True" and conditions["Established"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Rollout"
    assert crd["status"]["storedVersions"] == ["v1"]
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=rollout_yaml())
    assert "rollout.example.com/r1 created" in out.stdout
    for resource in ("rollouts", "ro", "rollout.example.com"):
        lines = kubectl_ns(cluster, namespace, "get", resource).stdout.splitlines()
        assert lines[0].split() == ["NAME", "REPLICAS", "IMAGE", "AGE"]
        assert lines[1].split()[:3] == ["r1", "2", "app:v1"]
        assert lines[1].split()[3].endswith("s")
    out = cluster.kubectl("api-resources", "--api-group=example.com", "--no-headers").stdout.split()
    assert out == ["rollouts", "ro", "example.com/v1", "true", "Rollout"]
    explained = cluster.kubectl("explain", "rollouts.spec", check=False)
    assert explained.returncode == 0, explained.stderr
    assert "replicas" in explained.stdout


def test_14_strategic_patch_on_custom_resource(rollouts: ClusterProcess, namespace: str) -> None:
    """14. A strategic merge patch on a CR → 415; a merge patch works."""
    cluster = rollouts
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=rollout_yaml())
    failed = kubectl_ns(
        cluster, namespace, "patch", "rollout", "r1", "--type", "strategic", "-p", "{}", check=False
    )
    assert failed.returncode != 0
    assert (
        "error: application/strategic-merge-patch+json is not supported by example.com/v1, Kind=Rollout: the "
        "body of the request was in an unknown format"
    ) in failed.stderr
    with cluster.client() as client:
        response = client.patch(
            f"/apis/example.com/v1/namespaces/{namespace}/rollouts/r1",
            content=b"{}",
            headers={"Content-Type": "application/strategic-merge-patch+json"},
        )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    kubectl_ns(
        cluster, namespace, "patch", "rollout", "r1", "--type", "merge", "-p", '{"spec":{"image":"app:v2"}}'
    )
    obj = json.loads(kubectl_ns(cluster, namespace, "get", "rollout", "r1", "-o", "json").stdout)
    assert obj["spec"]["image"] == "app:v2"
    assert obj["metadata"]["generation"] == 2
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "rollout",
        "r1",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":7}]',
    )
    # Client-side apply of a CR uses a merge patch.
    out = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=rollout_yaml(image="app:v3"))
    assert "rollout.example.com/r1 configured" in out.stdout


def test_31_strict_field_validation_pruning_and_defaults(rollouts: ClusterProcess, namespace: str) -> None:
    """31. Unknown fields → 400 strict decoding error; --validate=false prunes them; defaults appear."""
    cluster = rollouts
    bogus = rollout_yaml(extra="  bogus: 1\n")
    failed = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=bogus, check=False)
    assert failed.returncode != 0
    assert 'strict decoding error: unknown field "spec.bogus"' in failed.stderr
    failed = kubectl_ns(cluster, namespace, "create", "-f", "-", input=bogus, check=False)
    assert 'strict decoding error: unknown field "spec.bogus"' in failed.stderr
    out = kubectl_ns(cluster, namespace, "apply", "--validate=false", "-f", "-", input=bogus)
    assert "rollout.example.com/r1 created" in out.stdout
    obj = yaml.safe_load(kubectl_ns(cluster, namespace, "get", "rollout", "r1", "-o", "yaml").stdout)
    assert "bogus" not in obj["spec"]
    assert obj["spec"]["strategy"] == "Canary"
    assert obj["spec"]["replicas"] == 2
    kubectl_ns(
        cluster, namespace, "apply", "-f", "-", input=rollout_yaml("r2").replace("  replicas: 2\n", "")
    )
    obj = yaml.safe_load(kubectl_ns(cluster, namespace, "get", "rollout", "r2", "-o", "yaml").stdout)
    assert obj["spec"]["replicas"] == 1
    wrong_type = rollout_yaml("r3").replace("replicas: 2", "replicas: two")
    failed = kubectl_ns(cluster, namespace, "apply", "-f", "-", input=wrong_type, check=False)
    assert failed.returncode != 0
    assert (
        'The Rollout "r3" is invalid: spec.replicas: Invalid value: "string": spec.replicas in body must be '
        'of type integer: "string"' in failed.stderr
    )


def test_32_status_and_scale_subresources(
    rollouts: ClusterProcess, namespace: str, custom_api: k8s.CustomObjectsApi
) -> None:
    """32. /status changes only status (no generation bump); the main resource ignores status; scale works."""
    cluster = rollouts
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=rollout_yaml())
    before = custom_api.get_namespaced_custom_object("example.com", "v1", namespace, "rollouts", "r1")
    result = custom_api.patch_namespaced_custom_object_status(
        "example.com",
        "v1",
        namespace,
        "rollouts",
        "r1",
        {"spec": {"replicas": 9}, "status": {"replicas": 2, "phase": "Healthy"}},
    )
    assert result["status"] == {"replicas": 2, "phase": "Healthy"}
    assert result["spec"]["replicas"] == 2
    assert result["metadata"]["generation"] == before["metadata"]["generation"] == 1
    result = custom_api.patch_namespaced_custom_object(
        "example.com", "v1", namespace, "rollouts", "r1", {"status": {"phase": "Broken"}}
    )
    assert result["status"]["phase"] == "Healthy"
    assert result["metadata"]["generation"] == 1
    assert (
        result["metadata"]["resourceVersion"]
        == custom_api.get_namespaced_custom_object_status("example.com", "v1", namespace, "rollouts", "r1")[
            "metadata"
        ]["resourceVersion"]
    )
    out = kubectl_ns(cluster, namespace, "scale", "rollout", "r1", "--replicas=3")
    assert "rollout.example.com/r1 scaled" in out.stdout
    obj = custom_api.get_namespaced_custom_object("example.com", "v1", namespace, "rollouts", "r1")
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["generation"] == 2
    assert obj["status"]["phase"] == "Healthy"
    scale = custom_api.get_namespaced_custom_object_scale("example.com", "v1", namespace, "rollouts", "r1")
    assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 2
    with pytest.raises(ApiException) as caught:
        custom_api.get_namespaced_custom_object("example.com", "v1", namespace, "rollouts", "nope")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'rollouts.example.com "nope" not found'


WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.org}
spec:
  group: example.org
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def test_crd_deletion_removes_custom_resources(cluster: ClusterProcess, namespace: str) -> None:
    """Deleting a CRD deletes its custom resources first, then stops serving the resource."""
    cluster.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.example.org", "--timeout=30s")
    for name, finalizers in (("w1", []), ("w2", []), ("held", ["example.org/hold"])):
        widget = {
            "apiVersion": "example.org/v1",
            "kind": "Widget",
            "metadata": {"name": name, "finalizers": finalizers},
            "spec": {"x": 1},
        }
        kubectl_ns(cluster, namespace, "create", "-f", "-", input=json.dumps(widget))
    cluster.kubectl("delete", "crd", "widgets.example.org", "--wait=false")
    crd = json.loads(cluster.kubectl("get", "crd", "widgets.example.org", "-o", "json").stdout)
    assert crd["metadata"]["deletionTimestamp"]
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    wait_for(
        lambda: (
            kubectl_ns(cluster, namespace, "get", "widgets", "-o", "name").stdout.split()
            == ["widget.example.org/held"]
        ),
        what="the widgets without finalizers to go",
    )
    kubectl_ns(
        cluster,
        namespace,
        "patch",
        "widget",
        "held",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    # Well before the garbage collector's periodic sweep: the last deletion wakes the CRD up.
    wait_for(
        lambda: cluster.kubectl("get", "crd", "widgets.example.org", check=False).returncode != 0,
        timeout=5,
        what="the CRD to go",
    )
    with cluster.client() as client:
        assert client.get(f"/apis/example.org/v1/namespaces/{namespace}/widgets").status_code == 404
        groups = [
            g["name"] for g in client.get("/apis", headers={"Accept": "application/json"}).json()["groups"]
        ]
    assert "example.org" not in groups
