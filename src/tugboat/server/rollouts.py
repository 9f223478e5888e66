"""The Rollouts part of the API, in the shapes of the Argo Rollouts dashboard's API.

Argo Rollouts has no write API of its own: its plugin and dashboard patch the Rollout and the controller
reacts. The actions here write the fields ``tugboat rollout …`` and ``kubectl argo rollouts …`` write
(research/rollouts.md §1.9): promote, abort and retry merge-patch ``status`` through ``/status`` (falling
back to one patch of the object where the CRD has no status subresource), pause and resume change
``spec.paused`` and the pause conditions. The CLI's helpers live in ``tugboat.cli``, which the server may
not import, so the few patches are written again here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, phase
from tugboat.server.problems import Problem

HASH_LABEL = "rollouts-pod-template-hash"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"


def _field(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def strategy(ro: Mapping[str, Any]) -> str:
    if isinstance(_field(ro, "spec", "strategy", "canary"), Mapping):
        return "Canary"
    if isinstance(_field(ro, "spec", "strategy", "blueGreen"), Mapping):
        return "BlueGreen"
    return "unknown"


def _steps(ro: Mapping[str, Any]) -> list[Any]:
    return _list(_field(ro, "spec", "strategy", "canary", "steps"))


def _step_index(ro: Mapping[str, Any]) -> int | None:
    """``status.currentStepIndex`` of a canary with steps (``None`` otherwise)."""
    if strategy(ro) != "Canary" or not _steps(ro):
        return None
    return _int(_field(ro, "status", "currentStepIndex"))


def _set_weight(ro: Mapping[str, Any]) -> str:
    if strategy(ro) != "Canary":
        return ""
    if _field(ro, "status", "abort") is True:
        return "0"
    index, steps = _step_index(ro), _steps(ro)
    weight = _int(_field(ro, "spec", "strategy", "canary", "trafficRouting", "maxTrafficWeight"), 100)
    if index is not None and index < len(steps):
        weight = 0
        for step in steps[: index + 1]:
            if isinstance(step, Mapping) and "setWeight" in step:
                weight = _int(step["setWeight"])
    return str(weight)


def _object_meta(obj: Mapping[str, Any]) -> Obj:
    meta = obj.get("metadata")
    keep = ("name", "namespace", "uid", "creationTimestamp", "labels", "annotations", "resourceVersion")
    return {key: meta[key] for key in keep if isinstance(meta, Mapping) and key in meta}


def _containers(template: Any) -> list[Obj]:
    containers = _list(_field(template, "spec", "containers")) if isinstance(template, Mapping) else []
    return [
        {"name": str(c.get("name") or ""), "image": str(c.get("image") or "")}
        for c in containers
        if isinstance(c, Mapping)
    ]


def _replicaset_info(rs: Mapping[str, Any], ro: Mapping[str, Any]) -> Obj:
    pod_hash = str(_field(rs, "metadata", "labels", HASH_LABEL) or "")
    status = ro.get("status") if isinstance(ro.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    stable = pod_hash == status.get("stableRS")
    current = pod_hash == status.get("currentPodHash")
    blue_green = _field(status, "blueGreen") or {}
    return {
        "objectMeta": _object_meta(rs),
        "revision": _int(_field(rs, "metadata", "annotations", REVISION_ANNOTATION)),
        "stable": stable,
        "canary": strategy(ro) == "Canary" and current and not stable,
        "active": pod_hash == _field(blue_green, "activeSelector"),
        "preview": pod_hash == _field(blue_green, "previewSelector"),
        "replicas": _int(_field(rs, "status", "replicas")),
        "available": _int(_field(rs, "status", "availableReplicas")),
        "template": pod_hash,
        "images": [c["image"] for c in _containers(_field(rs, "spec", "template"))],
    }


def rollout_info(ro: Mapping[str, Any], replicasets: list[Obj] | None = None) -> Obj:
    """The dashboard's ``RolloutInfo`` of ``ro``; ``replicasets`` (the namespace's, filtered here to the
    Rollout's own) fill ``replicaSets``, newest revision first."""
    status, message = phase.client_phase(ro)
    index, steps = _step_index(ro), _steps(ro)
    uid = _field(ro, "metadata", "uid")
    owned = [
        rs
        for rs in replicasets or []
        if any(
            isinstance(ref, Mapping) and ref.get("uid") == uid and ref.get("controller") is True
            for ref in _list(_field(rs, "metadata", "ownerReferences"))
        )
    ]
    infos = sorted((_replicaset_info(rs, ro) for rs in owned), key=lambda rs: -_int(rs["revision"]))
    weight = _set_weight(ro)
    return {
        "objectMeta": _object_meta(ro),
        "status": status,
        "message": message,
        "strategy": strategy(ro),
        "step": f"{index}/{len(steps)}" if index is not None else "",
        "setWeight": weight,
        "actualWeight": weight,
        "ready": _int(_field(ro, "status", "readyReplicas")),
        "current": _int(_field(ro, "status", "replicas")),
        "desired": _int(_field(ro, "spec", "replicas"), 1),
        "updated": _int(_field(ro, "status", "updatedReplicas")),
        "available": _int(_field(ro, "status", "availableReplicas")),
        "restartedAt": str(_field(ro, "status", "restartedAt") or ""),
        "generation": str(_field(ro, "status", "observedGeneration") or ""),
        "replicaSets": infos,
        "containers": _containers(_field(ro, "spec", "template")),
        "steps": steps,
    }


# ------------------------------------------------------------------------------------------ reading


async def get_rollout(client: Client, namespace: str, name: str) -> Obj:
    try:
        ro = await client.get_or_none(crds.ROLLOUT, name, namespace)
    except errors.ApiError as exc:
        if exc.not_found:  # the type itself is not served
            raise Problem(404, f"the server has no Rollout API ({exc.message})") from exc
        raise
    if ro is None:
        raise Problem(404, f'rollouts.argoproj.io "{name}" not found')
    return ro


async def _replicasets(client: Client, namespace: str) -> list[Obj]:
    found, _ = await client.list(kinds.REPLICASET, namespace, labels=HASH_LABEL)
    return found


async def list_infos(client: Client, namespace: str) -> Obj:
    try:
        found, _ = await client.list(crds.ROLLOUT, namespace)
    except errors.ApiError as exc:
        if exc.not_found:
            raise Problem(404, f"the server has no Rollout API ({exc.message})") from exc
        raise
    replicasets = await _replicasets(client, namespace)
    found.sort(key=lambda ro: str(_field(ro, "metadata", "name")))
    return {"rollouts": [rollout_info(ro, replicasets) for ro in found]}


async def get_info(client: Client, namespace: str, name: str) -> Obj:
    ro = await get_rollout(client, namespace, name)
    return rollout_info(ro, await _replicasets(client, namespace))


# ------------------------------------------------------------------------------------------ actions


def promote_patches(ro: Mapping[str, Any], *, full: bool) -> tuple[Obj | None, Obj | None, Obj]:
    """``(spec patch, status patch, unified patch)`` that promote ``ro`` as ``promote [--full]`` does;
    ``None`` where nothing is to be written."""
    paused = _field(ro, "spec", "paused") is True
    spec_patch: Obj | None = {"spec": {"paused": False}} if paused else None
    if full:
        status_patch: Obj | None = None
        if _field(ro, "status", "currentPodHash") != _field(ro, "status", "stableRS"):
            status_patch = {"status": {"promoteFull": True}}
        return spec_patch, status_patch, {"spec": {"paused": False}, "status": {"promoteFull": True}}
    index = _step_index(ro)
    next_step = None if index is None else min(index + 1, len(_steps(ro)))
    has_pauses = bool(_list(_field(ro, "status", "pauseConditions")))
    inconclusive = (
        strategy(ro) == "Canary"
        and _field(ro, "status", "canary", "currentStepAnalysisRunStatus", "status") == "Inconclusive"
    )
    unified: Obj = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    status_patch = None
    if inconclusive and has_pauses and _field(ro, "status", "controllerPause") is True:
        if next_step is not None:
            status_patch = {
                "status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": next_step}
            }
    elif has_pauses:
        status_patch = {"status": {"pauseConditions": None}}
    elif next_step is not None:  # nothing pauses the canary: skip the running step
        status_patch = {"status": {"pauseConditions": None, "currentStepIndex": next_step}}
        unified = {
            "spec": {"paused": False},
            "status": {"pauseConditions": None, "currentStepIndex": next_step},
        }
    return spec_patch, status_patch, unified


def resume_patches(ro: Mapping[str, Any]) -> tuple[Obj | None, Obj | None, Obj]:
    """Patches that clear the pause conditions and ``spec.paused`` (where set)."""
    paused = _field(ro, "spec", "paused") is True
    spec_patch: Obj | None = {"spec": {"paused": False}} if paused else None
    pauses = bool(_list(_field(ro, "status", "pauseConditions")))
    status_patch: Obj | None = {"status": {"pauseConditions": None}} if pauses else None
    unified: Obj = {"status": {"pauseConditions": None}}
    if paused:
        unified["spec"] = {"paused": False}
    return spec_patch, status_patch, unified


async def write(
    client: Client,
    namespace: str,
    name: str,
    *,
    status_patch: Obj | None,
    spec_patch: Obj | None = None,
    unified_patch: Obj | None = None,
) -> Obj:
    """Patch ``status_patch`` through ``/status``, then ``spec_patch`` into the Rollout; without a status
    subresource, one patch of ``unified_patch`` (or ``status_patch``) instead. Returns the Rollout."""
    await get_rollout(client, namespace, name)
    if status_patch is not None:
        try:
            await client.patch(crds.ROLLOUT, name, status_patch, namespace=namespace, subresource="status")
        except errors.ApiError as exc:
            if not exc.not_found:
                raise
            spec_patch = unified_patch if unified_patch is not None else status_patch
    if spec_patch is not None:
        await client.patch(crds.ROLLOUT, name, spec_patch, namespace=namespace)
    return await get_rollout(client, namespace, name)


async def promote(client: Client, namespace: str, name: str, *, full: bool) -> Obj:
    spec_patch, status_patch, unified = promote_patches(await get_rollout(client, namespace, name), full=full)
    return await write(
        client, namespace, name, status_patch=status_patch, spec_patch=spec_patch, unified_patch=unified
    )


async def abort(client: Client, namespace: str, name: str) -> Obj:
    return await write(client, namespace, name, status_patch={"status": {"abort": True}})


async def retry(client: Client, namespace: str, name: str) -> Obj:
    return await write(client, namespace, name, status_patch={"status": {"abort": False}})


async def set_paused(client: Client, namespace: str, name: str, *, paused: bool) -> Obj:
    """Pause (``spec.paused``), or resume: clear ``spec.paused`` and the pause conditions."""
    if paused:
        return await write(client, namespace, name, status_patch=None, spec_patch={"spec": {"paused": True}})
    spec_patch, status_patch, unified = resume_patches(await get_rollout(client, namespace, name))
    return await write(
        client, namespace, name, status_patch=status_patch, spec_patch=spec_patch, unified_patch=unified
    )
