"""Ephemeral metadata (canaryMetadata/stableMetadata, previewMetadata/activeMetadata): the pure rules of
``tugboat.rollouts.ephemeral`` and the reconciler putting them on ReplicaSets and their running pods as
the versions change roles (research/rollouts.md §1.7). The harness is ``test_reconciler.py``'s; the test
creates the pods itself, as the ReplicaSet controller would.
"""

from __future__ import annotations

import json

from test_reconciler import Harness, at, blue_green_spec, canary_spec, client, h

from tugboat.kube import kinds
from tugboat.kube.client import Obj
from tugboat.rollouts import ephemeral
from tugboat.rollouts import replicasets as rsutil

__all__ = ["client", "h"]  # fixtures shared with test_reconciler.py

CANARY = {"labels": {"role": "canary"}, "annotations": {"note": "new"}}
STABLE = {"labels": {"role": "stable"}}


def test_apply_injects_and_removes_only_what_was_injected() -> None:
    meta = {"labels": {"app": "demo", "role": "stable", "team": "a"}}
    out = ephemeral.apply(meta, STABLE, CANARY)
    assert out == {"labels": {"app": "demo", "role": "canary", "team": "a"}, "annotations": {"note": "new"}}
    assert ephemeral.apply(out, CANARY, None) == {"labels": {"app": "demo", "team": "a"}}


def test_metadata_patch_sets_and_deletes() -> None:
    before = {"labels": {"a": "1", "b": "2"}}
    after = {"labels": {"a": "1", "c": "3"}, "annotations": {"x": "y"}}
    assert ephemeral.metadata_patch(before, after) == {
        "labels": {"c": "3", "b": None},
        "annotations": {"x": "y"},
    }
    assert ephemeral.metadata_patch(before, before) is None


def test_replicaset_patch_records_what_it_injected() -> None:
    rs: Obj = {"metadata": {}, "spec": {"template": {"metadata": {"labels": {"app": "demo"}}}}}
    patch = ephemeral.replicaset_patch(rs, STABLE)
    assert patch is not None
    assert patch["spec"]["template"]["metadata"] == {"labels": {"role": "stable"}}
    assert json.loads(patch["metadata"]["annotations"][ephemeral.ANNOTATION]) == STABLE
    injected = ephemeral.inject(rs, STABLE)
    assert ephemeral.replicaset_patch(injected, STABLE) is None
    assert ephemeral.without_injected(injected) == rs["spec"]["template"]
    removal = ephemeral.replicaset_patch(injected, None)
    assert removal == {
        "spec": {"template": {"metadata": {"labels": {"role": None}}}},
        "metadata": {"annotations": {ephemeral.ANNOTATION: None}},
    }


async def make_pods(h: Harness, pod_hash: str, count: int) -> None:
    """Pods of a ReplicaSet, labelled from its template as the ReplicaSet controller labels them."""
    rs = await h.rs(pod_hash)
    labels = dict(rs["spec"]["template"]["metadata"]["labels"])
    annotations = dict(rs["spec"]["template"]["metadata"].get("annotations") or {})
    for i in range(count):
        body = {
            "metadata": {
                "name": f"{rs['metadata']['name']}-{i}",
                "namespace": h.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {"containers": [{"name": "app", "image": "demo"}]},
        }
        await h.client.create(kinds.POD, body)


async def pod_labels(h: Harness, pod_hash: str) -> list[dict[str, str]]:
    pods, _ = await h.client.list(kinds.POD, h.namespace, labels=f"{rsutil.HASH_LABEL}={pod_hash}")
    return [dict(p["metadata"].get("labels") or {}) for p in pods]


def template_labels(rs: Obj) -> dict[str, str]:
    return dict(rs["spec"]["template"]["metadata"].get("labels") or {})


async def test_canary_metadata_follows_the_roles(h: Harness) -> None:
    spec = canary_spec(
        replicas=2,
        steps=[{"setWeight": 50}, {"pause": {}}],
        canary={"canaryMetadata": CANARY, "stableMetadata": STABLE},
    )
    await h.create(spec)
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    assert template_labels(await h.rs(rev1))["role"] == "stable"
    await make_pods(h, rev1, 2)
    await h.set_image("demo:2")
    await h.step(at(10))
    rev2 = str((await h.status())["currentPodHash"])
    rs2 = await h.rs(rev2)
    assert template_labels(rs2)["role"] == "canary"
    assert rs2["spec"]["template"]["metadata"]["annotations"]["note"] == "new"
    assert rsutil.hash_of(rs2) == rev2 and rs2["metadata"]["name"] == f"demo-{rev2}"
    await h.converge(at(11))
    await make_pods(h, rev2, 1)
    assert [labels["role"] for labels in await pod_labels(h, rev1)] == ["stable", "stable"]
    # Promotion: the canary becomes stable, on its ReplicaSet and on its running pod.
    await h.request({"pauseConditions": None, "promoteFull": True})
    await h.converge(at(20))
    assert (await h.status())["stableRS"] == rev2
    assert template_labels(await h.rs(rev2))["role"] == "stable"
    assert [labels["role"] for labels in await pod_labels(h, rev2)] == ["stable"]
    pods, _ = await h.client.list(kinds.POD, h.namespace, labels=f"{rsutil.HASH_LABEL}={rev2}")
    assert "note" not in (pods[0]["metadata"].get("annotations") or {})
    # The old version is no longer stable: its metadata is taken away.
    rs1 = await h.rs(rev1)
    assert "role" not in template_labels(rs1)
    assert ephemeral.ANNOTATION not in rs1["metadata"].get("annotations", {})


async def test_injected_metadata_does_not_make_a_new_revision(h: Harness) -> None:
    spec = canary_spec(replicas=2, steps=[{"setWeight": 50}], canary={"stableMetadata": STABLE})
    await h.create(spec)
    await h.converge(at(0))
    await h.converge(at(5))
    assert len(await h.replicasets()) == 1
    assert (await h.status())["phase"] == "Healthy"


async def test_blue_green_preview_and_active_metadata(h: Harness) -> None:
    spec = blue_green_spec(
        autoPromotionEnabled=False,
        previewMetadata={"labels": {"role": "preview"}},
        activeMetadata={"labels": {"role": "active"}},
    )
    await h.create(spec, services=("active", "preview"))
    await h.converge(at(0))
    rev1 = str((await h.status())["stableRS"])
    await h.set_image("demo:2")
    await h.converge(at(10))
    rev2 = str((await h.status())["currentPodHash"])
    assert template_labels(await h.rs(rev1))["role"] == "active"
    assert template_labels(await h.rs(rev2))["role"] == "preview"
    await h.request({"pauseConditions": None})
    await h.converge(at(11))
    assert template_labels(await h.rs(rev2))["role"] == "active"
