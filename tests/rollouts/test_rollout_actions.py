"""The client-side Rollout actions (tugboat.rollouts.actions): the patches they compute, and what they
write to a real API server, including workloadRef targets and the errors they raise."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts import actions, crds

HASH = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
LABELS = {"app": "web"}


# ------------------------------------------------------------------------------------------ patches


def canary(status: dict[str, Any], *, paused: bool = False) -> dict[str, Any]:
    steps = [{"setWeight": 20}, {"analysis": {}}, {"pause": {}}]
    return {"spec": {"paused": paused, "strategy": {"canary": {"steps": steps}}}, "status": status}


def test_promote_patches() -> None:
    paused_at_step = canary({"currentStepIndex": 2, "pauseConditions": [{"reason": "CanaryPauseStep"}]})
    assert actions.promote_patches(paused_at_step, full=False) == (
        None,
        {"status": {"pauseConditions": None}},
        {"spec": {"paused": False}, "status": {"pauseConditions": None}},
    )
    # nothing pauses it: the running step is skipped (in the status and in the unified patch)
    spec, status, unified = actions.promote_patches(canary({"currentStepIndex": 1}, paused=True), full=False)
    assert spec == {"spec": {"paused": False}}
    assert status == {"status": {"pauseConditions": None, "currentStepIndex": 2}}
    assert unified == {"spec": {"paused": False}, "status": {"pauseConditions": None, "currentStepIndex": 2}}
    inconclusive = canary(
        {
            "currentStepIndex": 3,
            "pauseConditions": [{"reason": "InconclusiveAnalysisRun"}],
            "controllerPause": True,
            "canary": {"currentStepAnalysisRunStatus": {"status": "Inconclusive"}},
        }
    )
    _, status, _ = actions.promote_patches(inconclusive, full=False)
    assert status == {"status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": 3}}
    blue_green = {"spec": {"strategy": {"blueGreen": {}}}, "status": {}}
    assert actions.promote_patches(blue_green, full=False)[:2] == (None, None)
    full = canary({"currentPodHash": "b", "stableRS": "a"})
    assert actions.promote_patches(full, full=True)[1] == {"status": {"promoteFull": True}}
    assert actions.promote_patches(canary({"currentPodHash": "a", "stableRS": "a"}), full=True)[1] is None


def test_resume_patches() -> None:
    assert actions.resume_patches(canary({})) == (None, None, {"status": {"pauseConditions": None}})
    spec, status, unified = actions.resume_patches(canary({"pauseConditions": [{}]}, paused=True))
    assert spec == {"spec": {"paused": False}} and status == {"status": {"pauseConditions": None}}
    assert unified == {"status": {"pauseConditions": None}, "spec": {"paused": False}}


def test_restart_time_is_utc_whole_seconds() -> None:
    moment = datetime.datetime(
        2024, 5, 1, 12, 30, 15, 999, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert actions.restart_time(moment) == "2024-05-01T10:30:15Z"


def test_with_image() -> None:
    ro = {
        "spec": {
            "template": {"spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "web"}]}}
        }
    }
    updated = actions.with_image(ro, "*", "x:2")
    assert [c["image"] for c in updated["spec"]["template"]["spec"]["initContainers"]] == ["x:2"]
    assert "image" not in ro["spec"]["template"]["spec"]["containers"][0]  # a copy
    template = {"template": {"spec": {"containers": [{"name": "web"}]}}}
    assert actions.with_image(template, "web", "y:1", kind=actions.PODTEMPLATE)["template"]["spec"][
        "containers"
    ] == [{"name": "web", "image": "y:1"}]
    with pytest.raises(actions.NotFound, match='unable to find container named "nope"'):
        actions.with_image(ro, "nope", "x:2")


def test_revision_replicaset_and_templates() -> None:
    sets = [
        {"metadata": {"name": f"rs{n}", "annotations": {REVISION: str(n)}}, "spec": {"template": {}}}
        for n in (1, 3, 2)
    ]
    assert actions.revision_replicaset(sets, 0, "web")[1] == 2
    assert actions.revision_replicaset(sets, 1, "web")[0]["metadata"]["name"] == "rs1"
    with pytest.raises(actions.NotFound, match="unable to find specified revision 9 in history"):
        actions.revision_replicaset(sets, 9, "web")
    with pytest.raises(actions.NotFound, match='no revision found for rollout "web"'):
        actions.revision_replicaset(sets[:1], 0, "web")
    assert actions.without_hash({"metadata": {"labels": {HASH: "h"}}, "spec": {}}) == {
        "metadata": {},
        "spec": {},
    }
    # defaulted fields in the ReplicaSet's template do not make a different template
    current = {"spec": {"containers": [{"name": "web", "image": "a"}]}}
    defaulted = {"spec": {"containers": [{"name": "web", "image": "a", "imagePullPolicy": "IfNotPresent"}]}}
    assert actions.derivative(current, defaulted) and not actions.derivative(defaulted, current)


# ------------------------------------------------------------------------------------------- live


@pytest.fixture
async def client(cluster: ClusterProcess) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test-rollout-actions") as c:
        await crds.install(c)
        yield c


def pod_template(image: str, pod_hash: str = "") -> dict[str, Any]:
    labels = {**LABELS, HASH: pod_hash} if pod_hash else dict(LABELS)
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}}


def rollout(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": crds.ROLLOUT.api_version,
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": 0, "selector": {"matchLabels": LABELS}, "strategy": {"canary": {}}, **spec},
    }


async def revision(client: Client, ro: dict[str, Any], number: int, image: str) -> None:
    """A ReplicaSet of ``ro`` for revision ``number`` (nothing runs it: the API server is bare)."""
    owner = {
        "apiVersion": crds.ROLLOUT.api_version,
        "kind": "Rollout",
        "name": "web",
        "uid": ro["metadata"]["uid"],
        "controller": True,
    }
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"web-h{number}",
            "namespace": ro["metadata"]["namespace"],
            "labels": {**LABELS, HASH: f"h{number}"},
            "annotations": {REVISION: str(number)},
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {**LABELS, HASH: f"h{number}"}},
            "template": pod_template(image, f"h{number}"),
        },
    }
    await client.create(kinds.REPLICASET, rs)


async def test_status_and_spec_writes(client: Client, namespace: str) -> None:
    await client.create(crds.ROLLOUT, rollout(namespace, template=pod_template("nginx:1")))
    await actions.pause(client, namespace, "web")
    assert (await actions.get_rollout(client, namespace, "web"))["spec"]["paused"] is True
    assert await actions.resume(client, namespace, "web") is True
    assert await actions.resume(client, namespace, "web") is False  # nothing to resume: nothing written
    await actions.abort(client, namespace, "web")
    at = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    await actions.restart(client, namespace, "web", at=at)
    live = await actions.get_rollout(client, namespace, "web")
    assert live["spec"]["paused"] is False and live["spec"]["restartAt"] == "2030-01-02T03:04:05Z"
    assert live["status"]["abort"] is True


async def test_set_image_and_undo_through_a_workload_ref(client: Client, namespace: str) -> None:
    """With ``workloadRef`` the pod template lives in the workload (a PodTemplate here, whose template is
    at ``/template``): set-image and undo write there, and undo skips a template that already matches."""
    workload = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "tmpl", "namespace": namespace},
    }
    await client.create(actions.PODTEMPLATE, {**workload, "template": pod_template("nginx:2")})
    ref = {"apiVersion": "v1", "kind": "PodTemplate", "name": "tmpl"}
    ro = await client.create(crds.ROLLOUT, rollout(namespace, workloadRef=ref))
    await revision(client, ro, 1, "nginx:1")
    await revision(client, ro, 2, "nginx:2")

    kind, written = await actions.set_image(client, namespace, "web", container="web", image="nginx:3")
    assert kind is actions.PODTEMPLATE and written["template"]["spec"]["containers"][0]["image"] == "nginx:3"

    assert await actions.undo(client, namespace, "web", revision=0) == (1, True)
    live = await client.get(actions.PODTEMPLATE, "tmpl", namespace)
    assert live["template"]["metadata"]["labels"] == LABELS  # without the hash label
    assert live["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert await actions.undo(client, namespace, "web", revision=1) == (1, False)
    assert "template" not in (await actions.get_rollout(client, namespace, "web"))["spec"]


async def test_errors(client: Client, namespace: str) -> None:
    with pytest.raises(actions.NotFound) as missing:
        await actions.abort(client, namespace, "nope")
    assert missing.value.message == 'rollouts.argoproj.io "nope" not found'
    assert (missing.value.kind, missing.value.namespace, missing.value.name) == (
        crds.ROLLOUT,
        namespace,
        "nope",
    )
    assert missing.value.served
    unserved = kinds.Kind("unserved.tugboat.test", "v1", "Thing", "things")
    with pytest.raises(actions.NotFound) as no_api:
        await actions.get_object(client, unserved, namespace, "x")
    assert not no_api.value.served

    ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}
    await client.create(crds.ROLLOUT, rollout(namespace, workloadRef=ref))
    with pytest.raises(actions.Invalid, match="workload of type StatefulSet is not supported"):
        await actions.set_image(client, namespace, "web", container="web", image="x:1")
    with pytest.raises(actions.Invalid, match="image must not be empty"):
        await actions.set_image(client, namespace, "web", container="web", image=" ")
    with pytest.raises(actions.Invalid, match="revision must be 0"):
        await actions.undo(client, namespace, "web", revision=-1)
    await client.patch(
        crds.ROLLOUT,
        "web",
        {"spec": {"workloadRef": {"kind": "Deployment", "name": "gone"}}},
        namespace=namespace,
    )
    with pytest.raises(actions.NotFound) as gone:
        await actions.set_image(client, namespace, "web", container="web", image="x:1")
    assert gone.value.message == 'deployments.apps "gone" not found' and gone.value.kind is kinds.DEPLOYMENT
