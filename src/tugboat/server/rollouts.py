"""The Rollouts part of the API, in the shapes of the Argo Rollouts dashboard's API.

Argo Rollouts has no write API of its own: its plugin and dashboard patch the Rollout and the controller
reacts. The actions here are those of ``tugboat rollout …`` (:mod:`tugboat.rollouts.actions`, which
writes the fields ``kubectl argo rollouts …`` writes); this module answers with the Rollout as it is
afterwards, and turns their failures into 404 and 400 answers. Pods are described with kubectl's
STATUS/READY/RESTARTS (:mod:`tugboat.kube.podstatus`).

``RolloutInfo`` is computed from plain lists of the namespace's objects (:class:`Related`), so the same
function serves one-off requests (one list per kind) and the live streams (the caches of
:mod:`tugboat.server.watchhub`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tugboat.gitops import crds as gitops_crds
from tugboat.gitops import revert, tracking
from tugboat.kube import errors, kinds, podstatus
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import actions, crds, phase
from tugboat.server.problems import Problem
from tugboat.util import jsondata

HASH_LABEL = "rollouts-pod-template-hash"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
MEASUREMENTS_SHOWN = 10  # the last measurements of each metric an AnalysisRun's info carries


_field = jsondata.dig


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _maps(obj: Any, *path: str) -> list[Mapping[str, Any]]:
    return [item for item in _list(_field(obj, *path)) if isinstance(item, Mapping)]


def _text(obj: Any, *path: str) -> str:
    value = _field(obj, *path)
    return value if isinstance(value, str) else ""


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
    return [
        {"name": str(c.get("name") or ""), "image": str(c.get("image") or "")}
        for c in _maps(template, "spec", "containers")
    ]


def _controlled_by(obj: Mapping[str, Any], uid: Any) -> bool:
    return bool(uid) and any(
        ref.get("uid") == uid and ref.get("controller") is True
        for ref in _maps(obj, "metadata", "ownerReferences")
    )


def _owned_by(obj: Mapping[str, Any], uid: Any) -> bool:
    return bool(uid) and any(ref.get("uid") == uid for ref in _maps(obj, "metadata", "ownerReferences"))


# -------------------------------------------------------------------------------------------- pods


def pod_info(pod: Mapping[str, Any]) -> Obj:
    """A Pod with the STATUS (``Pending`` before it has one), READY and RESTARTS ``kubectl get pods``
    shows."""
    status = podstatus.summarize(pod)
    return {
        "objectMeta": _object_meta(pod),
        "status": status.reason or "Pending",
        "ready": status.ready_text,
        "restarts": status.restarts,
    }


# ------------------------------------------------------------------------------ analysis, experiments


def _revision(obj: Mapping[str, Any], revisions_by_hash: Mapping[str, int]) -> int:
    """The revision annotation; else the revision of the ReplicaSet whose hash the object is labelled with."""
    if _text(obj, "metadata", "annotations", REVISION_ANNOTATION):
        return _int(_field(obj, "metadata", "annotations", REVISION_ANNOTATION))
    return revisions_by_hash.get(_text(obj, "metadata", "labels", HASH_LABEL), 0)


def _measurement(measurement: Mapping[str, Any]) -> Obj:
    keep = ("phase", "value", "startedAt", "finishedAt", "message")
    return {key: measurement[key] for key in keep if key in measurement}


def _metric(result: Mapping[str, Any]) -> Obj:
    measurements = _maps(result, "measurements")
    return {
        "name": _text(result, "name"),
        "phase": _text(result, "phase"),
        "message": _text(result, "message"),
        "count": _int(result.get("count")),
        "successful": _int(result.get("successful")),
        "failed": _int(result.get("failed")),
        "inconclusive": _int(result.get("inconclusive")),
        "error": _int(result.get("error")),
        "consecutiveError": _int(result.get("consecutiveError")),
        "measurements": [_measurement(m) for m in measurements[-MEASUREMENTS_SHOWN:]],
    }


def analysisrun_info(run: Mapping[str, Any], revisions_by_hash: Mapping[str, int]) -> Obj:
    return {
        "objectMeta": _object_meta(run),
        "status": _text(run, "status", "phase") or "Pending",
        "message": _text(run, "status", "message"),
        "revision": _revision(run, revisions_by_hash),
        "metrics": [_metric(result) for result in _maps(run, "status", "metricResults")],
    }


def experiment_info(exp: Mapping[str, Any], revisions_by_hash: Mapping[str, int]) -> Obj:
    status = _text(exp, "status", "phase") or "Pending"
    return {
        "objectMeta": _object_meta(exp),
        "name": _text(exp, "metadata", "name"),
        "phase": status,
        "status": status,
        "message": _text(exp, "status", "message"),
        "revision": _revision(exp, revisions_by_hash),
    }


def _newest_first(infos: Iterable[Obj]) -> list[Obj]:
    """By revision, then creation time, then name, newest first."""
    return sorted(
        infos,
        key=lambda i: (
            _int(i.get("revision")),
            str(_field(i, "objectMeta", "creationTimestamp") or ""),
            str(_field(i, "objectMeta", "name") or ""),
        ),
        reverse=True,
    )


# ------------------------------------------------------------------------------------- application


def managing_instance(obj: Mapping[str, Any], *, control_namespace: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of the Application whose tracking marks ``obj`` carries: the tracking-id
    annotation (when it describes ``obj``), else the ``app.kubernetes.io/instance`` label."""
    instance = tracking.instance_of(obj) or tracking.instance_of(obj, method=tracking.METHOD_LABEL)
    if not instance:
        return None
    return tracking.split_instance_name(instance, control_namespace=control_namespace)


def _revert_on_abort(app: Mapping[str, Any]) -> Obj | None:
    for condition in _maps(app, "status", "conditions"):
        if condition.get("type") == revert.CONDITION:
            message = _text(condition, "message")
            reverted = message.startswith("Reverted ")
            return {"status": "Reverted" if reverted else "NotReverted", "message": message}
    return None


def application_link(app: Mapping[str, Any]) -> Obj:
    return {
        "name": _text(app, "metadata", "name"),
        "namespace": _text(app, "metadata", "namespace"),
        "project": _text(app, "spec", "project") or "default",
        "syncStatus": _text(app, "status", "sync", "status") or "Unknown",
        "healthStatus": _text(app, "status", "health", "status") or "Unknown",
        "revertOnAbort": _revert_on_abort(app),
    }


# ------------------------------------------------------------------------------------------ info


@dataclass(frozen=True)
class Related:
    """What a ``RolloutInfo`` is computed from besides the Rollout: the objects of its namespace (each
    function keeps the Rollout's own) and the Applications of ``app_namespace``, the control namespace."""

    replicasets: Sequence[Obj] = ()
    pods: Sequence[Obj] = ()
    analysisruns: Sequence[Obj] = ()
    experiments: Sequence[Obj] = ()
    applications: Sequence[Obj] = ()
    app_namespace: str = ""


def _replicaset_info(rs: Mapping[str, Any], ro: Mapping[str, Any], pods: Sequence[Obj]) -> Obj:
    pod_hash = _text(rs, "metadata", "labels", HASH_LABEL)
    status = ro.get("status") if isinstance(ro.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    stable = pod_hash == status.get("stableRS")
    current = pod_hash == status.get("currentPodHash")
    blue_green = _field(status, "blueGreen") or {}
    uid = _field(rs, "metadata", "uid")
    owned = sorted((p for p in pods if _controlled_by(p, uid)), key=lambda p: _text(p, "metadata", "name"))
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
        "pods": [pod_info(p) for p in owned],
    }


def _application(ro: Mapping[str, Any], related: Related) -> Obj | None:
    if not related.app_namespace:
        return None
    found = managing_instance(ro, control_namespace=related.app_namespace)
    if found is None:
        return None
    namespace, name = found
    for app in related.applications:
        if _text(app, "metadata", "name") == name and _text(app, "metadata", "namespace") == namespace:
            return application_link(app)
    return None


def rollout_info(
    ro: Mapping[str, Any], replicasets: Sequence[Obj] | None = None, *, related: Related | None = None
) -> Obj:
    """The dashboard's ``RolloutInfo`` of ``ro`` from the objects of its namespace (``replicasets`` or
    ``related.replicasets``, filtered here to the Rollout's own): ReplicaSets newest revision first with
    their Pods, AnalysisRuns and Experiments newest first, and the Application that manages it."""
    related = related or Related(replicasets=replicasets or ())
    status, message = phase.client_phase(ro)
    index, steps = _step_index(ro), _steps(ro)
    uid = _field(ro, "metadata", "uid")
    owned = [rs for rs in related.replicasets if _controlled_by(rs, uid)]
    by_hash = {_text(rs, "metadata", "labels", HASH_LABEL): _revision(rs, {}) for rs in owned}
    infos = sorted(
        (_replicaset_info(rs, ro, related.pods) for rs in owned), key=lambda rs: -_int(rs["revision"])
    )
    weight = _set_weight(ro)
    return {
        "objectMeta": _object_meta(ro),
        "status": status,
        "message": message,
        "strategy": strategy(ro),
        "step": f"{index}/{len(steps)}" if index is not None else "",
        "currentStepIndex": index,
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
        "analysisRuns": _newest_first(
            analysisrun_info(run, by_hash) for run in related.analysisruns if _owned_by(run, uid)
        ),
        "experiments": _newest_first(
            experiment_info(exp, by_hash) for exp in related.experiments if _owned_by(exp, uid)
        ),
        "application": _application(ro, related),
    }


def deleted_info(ro: Mapping[str, Any]) -> Obj:
    """What the live streams send for a Rollout that was deleted: its metadata and ``deleted: true``."""
    return {"objectMeta": _object_meta(ro), "deleted": True}


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


async def list_if_served(client: Client, kind: kinds.Kind, namespace: str, *, labels: str = "") -> list[Obj]:
    """The objects of ``kind`` in ``namespace`` (none when the server does not serve the kind)."""
    try:
        found, _ = await client.list(kind, namespace, labels=labels)
    except errors.ApiError as exc:
        if exc.not_found:
            return []
        raise
    return found


async def related_objects(
    client: Client,
    namespace: str,
    *,
    app_namespace: str = "",
    applications: Sequence[Obj] | None = None,
) -> Related:
    """One list per kind, made together: the ReplicaSets and Pods of Rollouts, AnalysisRuns and Experiments
    of ``namespace``, and the Applications of ``app_namespace`` (when given; ``applications`` when the
    caller has them already, e.g. from the server's watch of them)."""

    async def apps() -> list[Obj]:
        if applications is not None:
            return list(applications)
        return await list_if_served(client, gitops_crds.APPLICATION, app_namespace) if app_namespace else []

    replicasets, pods, analysisruns, experiments, found_apps = await asyncio.gather(
        list_if_served(client, kinds.REPLICASET, namespace, labels=HASH_LABEL),
        list_if_served(client, kinds.POD, namespace, labels=HASH_LABEL),
        list_if_served(client, crds.ANALYSISRUN, namespace),
        list_if_served(client, crds.EXPERIMENT, namespace),
        apps(),
    )
    return Related(
        replicasets=replicasets,
        pods=pods,
        analysisruns=analysisruns,
        experiments=experiments,
        applications=found_apps,
        app_namespace=app_namespace,
    )


async def list_infos(
    client: Client, namespace: str, *, app_namespace: str = "", applications: Sequence[Obj] | None = None
) -> Obj:
    try:
        found, _ = await client.list(crds.ROLLOUT, namespace)
    except errors.ApiError as exc:
        if exc.not_found:
            raise Problem(404, f"the server has no Rollout API ({exc.message})") from exc
        raise
    related = (
        await related_objects(client, namespace, app_namespace=app_namespace, applications=applications)
        if found
        else Related()
    )
    found.sort(key=lambda ro: str(_field(ro, "metadata", "name")))
    return {"rollouts": [rollout_info(ro, related=related) for ro in found]}


async def get_info(
    client: Client,
    namespace: str,
    name: str,
    *,
    app_namespace: str = "",
    applications: Sequence[Obj] | None = None,
) -> Obj:
    ro = await get_rollout(client, namespace, name)
    related = await related_objects(client, namespace, app_namespace=app_namespace, applications=applications)
    return rollout_info(ro, related=related)


# ------------------------------------------------------------------------------------------ actions


@contextlib.contextmanager
def _answered() -> Iterator[None]:
    """An action's failure as the API's answer: 404 for what is missing, 400 for the rest."""
    try:
        yield
    except actions.NotFound as exc:
        raise Problem(404, exc.message) from None
    except actions.ActionError as exc:
        raise Problem(400, exc.message) from None


async def promote(client: Client, namespace: str, name: str, *, full: bool) -> Obj:
    with _answered():
        await actions.promote(client, namespace, name, full=full)
    return await get_rollout(client, namespace, name)


async def abort(client: Client, namespace: str, name: str) -> Obj:
    with _answered():
        await actions.abort(client, namespace, name)
    return await get_rollout(client, namespace, name)


async def retry(client: Client, namespace: str, name: str) -> Obj:
    with _answered():
        await actions.retry(client, namespace, name)
    return await get_rollout(client, namespace, name)


async def set_paused(client: Client, namespace: str, name: str, *, paused: bool) -> Obj:
    """Pause (``spec.paused``), or resume: clear ``spec.paused`` and the pause conditions."""
    with _answered():
        if paused:
            await actions.pause(client, namespace, name)
        else:
            await actions.resume(client, namespace, name)
    return await get_rollout(client, namespace, name)


async def restart(client: Client, namespace: str, name: str, *, now: datetime.datetime | None = None) -> Obj:
    """Ask the controller to restart the Rollout's Pods: ``spec.restartAt`` = now."""
    with _answered():
        await actions.restart(client, namespace, name, at=now or datetime.datetime.now(datetime.UTC))
    return await get_rollout(client, namespace, name)


async def set_image(client: Client, namespace: str, name: str, *, container: str, image: str) -> Obj:
    """Set the image of ``container`` (``*``: all) in the Rollout's pod template (or its workload's)."""
    with _answered():
        await actions.set_image(client, namespace, name, container=container, image=image)
    return await get_rollout(client, namespace, name)


async def undo(client: Client, namespace: str, name: str, *, revision: int) -> Obj:
    """Roll back to ``revision``'s pod template (0: the previous revision's)."""
    with _answered():
        await actions.undo(client, namespace, name, revision=revision)
    return await get_rollout(client, namespace, name)
