"""The rollout CRDs: their structure, and their behaviour on the real local cluster with kubectl."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import crds


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    versions = crd["spec"]["versions"]
    assert len(versions) == 1
    assert versions[0]["name"] == "v1alpha1" and versions[0]["served"] and versions[0]["storage"]
    result: dict[str, Any] = versions[0]
    return result


def columns_of(crd: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["name"], c["type"], c["jsonPath"]) for c in version_of(crd)["additionalPrinterColumns"]]


def test_kinds() -> None:
    assert kinds.Kind("argoproj.io", "v1alpha1", "Rollout", "rollouts") == crds.ROLLOUT
    assert (
        crds.ROLLOUT.object_path("demo", "ns", "scale")
        == "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/demo/scale"
    )
    assert crds.ANALYSISTEMPLATE.plural == "analysistemplates" and crds.ANALYSISTEMPLATE.namespaced
    assert not crds.CLUSTERANALYSISTEMPLATE.namespaced
    assert (
        crds.CLUSTERANALYSISTEMPLATE.collection_path("ignored")
        == "/apis/argoproj.io/v1alpha1/clusteranalysistemplates"
    )
    assert (crds.ANALYSISRUN.kind, crds.EXPERIMENT.kind) == ("AnalysisRun", "Experiment")


@pytest.mark.parametrize(
    ("make", "kind", "short", "scope"),
    [
        (crds.rollout_crd, crds.ROLLOUT, "ro", "Namespaced"),
        (crds.analysistemplate_crd, crds.ANALYSISTEMPLATE, "at", "Namespaced"),
        (crds.clusteranalysistemplate_crd, crds.CLUSTERANALYSISTEMPLATE, "cat", "Cluster"),
        (crds.analysisrun_crd, crds.ANALYSISRUN, "ar", "Namespaced"),
        (crds.experiment_crd, crds.EXPERIMENT, "exp", "Namespaced"),
    ],
)
def test_names_and_scope(make: Any, kind: kinds.Kind, short: str, scope: str) -> None:
    crd = make()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1" and crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{kind.plural}.argoproj.io"
    assert crd["spec"]["group"] == "argoproj.io"
    assert crd["spec"]["scope"] == scope
    assert crd["spec"]["names"] == {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.kind.lower(),
        "shortNames": [short],
    }
    schema = version_of(crd)["schema"]["openAPIV3Schema"]
    assert schema["type"] == "object" and schema["required"] == ["spec"]


def test_rollout_subresources_and_columns() -> None:
    crd = crds.rollout_crd()
    assert version_of(crd)["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.HPAReplicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert columns_of(crd) == [
        ("Desired", "integer", ".spec.replicas"),
        ("Current", "integer", ".status.replicas"),
        ("Up-to-date", "integer", ".status.updatedReplicas"),
        ("Available", "integer", ".status.availableReplicas"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]


def test_other_columns_and_no_subresources() -> None:
    for crd in (crds.analysisrun_crd(), crds.experiment_crd()):
        assert version_of(crd)["subresources"] == {}
        assert columns_of(crd) == [
            ("Status", "string", ".status.phase"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
    for crd in (crds.analysistemplate_crd(), crds.clusteranalysistemplate_crd()):
        assert version_of(crd)["subresources"] == {}
        assert columns_of(crd) == [("Age", "date", ".metadata.creationTimestamp")]


def test_rollout_schema_is_typed_where_it_matters() -> None:
    schema = version_of(crds.rollout_crd())["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    assert spec["x-kubernetes-preserve-unknown-fields"] is True
    assert spec["properties"]["replicas"] == {"type": "integer", "format": "int32"}
    assert spec["properties"]["template"]["x-kubernetes-preserve-unknown-fields"] is True
    strategy = spec["properties"]["strategy"]["properties"]
    assert strategy["blueGreen"]["required"] == ["activeService"]
    for field in ("maxSurge", "maxUnavailable"):
        assert strategy["canary"]["properties"][field]["x-kubernetes-int-or-string"] is True
    status = schema["properties"]["status"]["properties"]
    expected = {
        "phase",
        "message",
        "observedGeneration",
        "currentPodHash",
        "stableRS",
        "currentStepIndex",
        "currentStepHash",
        "pauseConditions",
        "controllerPause",
        "abort",
        "abortedAt",
        "promoteFull",
        "restartedAt",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "HPAReplicas",
        "selector",
        "collisionCount",
        "conditions",
        "canary",
        "blueGreen",
        "workloadObservedGeneration",
    }
    assert expected <= set(status)
    assert status["observedGeneration"] == {"type": "string"}
    assert status["HPAReplicas"]["type"] == "integer"


# ------------------------------------------------------------------------------------ on a cluster


def rollout_manifest(namespace: str, name: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "argoproj/rollouts-demo:blue"}]},
            },
            "strategy": {
                "canary": {
                    "maxSurge": "25%",
                    "maxUnavailable": 0,
                    "steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}}, {"pause": {}}],
                }
            },
        },
    }


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
async def test_install_kubectl_columns_and_scale(cluster: ClusterProcess, namespace: str) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        await crds.install(client)
        await crds.install(client)  # an upgrade: nothing changes, nothing fails
        created = await client.create(crds.ROLLOUT, rollout_manifest(namespace))
        steps = created["spec"]["strategy"]["canary"]["steps"]
        assert steps[1] == {"pause": {"duration": "10s"}}  # int-or-string kept as written
        status = {
            "replicas": 3,
            "updatedReplicas": 1,
            "availableReplicas": 2,
            "HPAReplicas": 3,
            "selector": "app=demo",
            "observedGeneration": "1",
            "phase": "Progressing",
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-08-01T12:00:00Z"}],
            "canary": {"weights": {"canary": {"weight": 20}}},
        }
        patched = await client.patch_status(crds.ROLLOUT, "demo", status, namespace=namespace)
        assert {k: patched["status"][k] for k in status} == status  # every field survives pruning

    table = cluster.kubectl("get", "rollouts", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:5] == ["demo", "2", "3", "1", "2"]
    assert cluster.kubectl("get", "ro", "-n", namespace, "-o", "name").stdout.split() == [
        "rollout.argoproj.io/demo"
    ]

    scale = json.loads(
        cluster.kubectl(
            "get", "--raw", f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts/demo/scale"
        ).stdout
    )
    assert scale["spec"]["replicas"] == 2
    assert scale["status"] == {"replicas": 3, "selector": "app=demo"}

    cluster.kubectl("scale", "rollout", "demo", "-n", namespace, "--replicas=5")
    after = json.loads(cluster.kubectl("get", "rollout", "demo", "-n", namespace, "-o", "json").stdout)
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["generation"] == 2
    assert after["status"]["HPAReplicas"] == 3  # scaling writes the spec only


@pytest.mark.kubectl
@pytest.mark.usefixtures("kubectl_available")
async def test_schema_and_analysis_kinds_on_cluster(cluster: ClusterProcess, namespace: str) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        await crds.install(client)
    # blueGreen without activeService is refused by the schema, like upstream's CRD
    bad = rollout_manifest(namespace, "bad")
    bad["spec"]["strategy"] = {"blueGreen": {"previewService": "preview"}}
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "spec.strategy.blueGreen.activeService: Required value" in result.stderr

    run = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "demo-run", "namespace": namespace},
        "spec": {"metrics": [{"name": "m", "provider": {"job": {"spec": {}}}}]},
        "status": {"phase": "Running"},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(run))
    cluster.kubectl(
        "patch",
        "analysisrun",
        "demo-run",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"status":{"phase":"Successful"}}',
    )  # no status subresource: status is written through the object itself
    table = cluster.kubectl("get", "ar", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE"]
    assert table[1].split()[:2] == ["demo-run", "Successful"]

    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": f"always-pass-{namespace}"},
        "spec": {"metrics": [{"name": "pass", "provider": {"job": {"spec": {}}}}]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(template))
    names = cluster.kubectl("get", "cat", "-o", "name").stdout.split()
    assert f"clusteranalysistemplate.argoproj.io/always-pass-{namespace}" in names
    assert cluster.kubectl("get", "exp", "-n", namespace).returncode == 0
