"""The CustomResourceDefinitions of the rollout controller: Rollout, (Cluster)AnalysisTemplate,
AnalysisRun and Experiment.

Users apply their Argo Rollouts manifests unchanged and use kubectl on them, so names, scope, short names,
printer columns and subresources are Argo Rollouts' (research/rollouts.md §0, §3): only ``rollouts`` has
the ``status`` subresource (the controller writes status through it) and the ``scale`` subresource
(``kubectl scale`` and HPAs read ``status.HPAReplicas`` and ``status.selector``); AnalysisRun and
Experiment status is written with the main resource. The schemas are our own: typed where the controller
or the scale subresource relies on a type (``spec.replicas``, the int-or-string fields, every status field
of research §2.1), and open (``x-kubernetes-preserve-unknown-fields``) below that, because upstream's
generated schema is thousands of lines and grows every release. Semantic checks are
:mod:`tugboat.rollouts.validation`'s job.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind

GROUP = "argoproj.io"
VERSION = "v1alpha1"

ROLLOUT = Kind(GROUP, VERSION, "Rollout", "rollouts")
ANALYSISTEMPLATE = Kind(GROUP, VERSION, "AnalysisTemplate", "analysistemplates")
CLUSTERANALYSISTEMPLATE = Kind(
    GROUP, VERSION, "ClusterAnalysisTemplate", "clusteranalysistemplates", namespaced=False
)
ANALYSISRUN = Kind(GROUP, VERSION, "AnalysisRun", "analysisruns")
EXPERIMENT = Kind(GROUP, VERSION, "Experiment", "experiments")

ALL_KINDS: tuple[Kind, ...] = (ROLLOUT, ANALYSISTEMPLATE, CLUSTERANALYSISTEMPLATE, ANALYSISRUN, EXPERIMENT)

# ------------------------------------------------------------------------------------ schema nodes


def _open(**extra: Any) -> Obj:
    """An object whose content is kept as written."""
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True, **extra}


def _obj(properties: Obj, *, required: list[str] | None = None, open_: bool = False) -> Obj:
    node: Obj = {"type": "object", "properties": properties}
    if required:
        node["required"] = required
    if open_:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def _string() -> Obj:
    return {"type": "string"}


def _time() -> Obj:
    return {"type": "string", "format": "date-time"}


def _int32() -> Obj:
    return {"type": "integer", "format": "int32"}


def _bool() -> Obj:
    return {"type": "boolean"}


def _int_or_string() -> Obj:
    return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}


def _array(items: Obj) -> Obj:
    return {"type": "array", "items": items}


def _string_map() -> Obj:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def _root(spec: Obj, status: Obj | None) -> Obj:
    properties: Obj = {
        "apiVersion": _string(),
        "kind": _string(),
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    return {"type": "object", "required": ["spec"], "properties": properties}


def _label_selector() -> Obj:
    return _obj(
        {
            "matchLabels": _string_map(),
            "matchExpressions": _array(
                _obj(
                    {"key": _string(), "operator": _string(), "values": _array(_string())},
                    required=["key", "operator"],
                )
            ),
        }
    )


# ---------------------------------------------------------------------------------- Rollout schema


def _canary_step() -> Obj:
    return _obj(
        {
            "setWeight": _int32(),
            "pause": _obj({"duration": _int_or_string()}),
            "analysis": _open(),
            "experiment": _open(),
            "setCanaryScale": _open(),
            "setHeaderRoute": _open(),
            "setMirrorRoute": _open(),
            "plugin": _open(),
        },
        open_=True,
    )


def _blue_green_strategy() -> Obj:
    return _obj(
        {
            "activeService": _string(),
            "previewService": _string(),
            "autoPromotionEnabled": _bool(),
            "autoPromotionSeconds": _int32(),
            "previewReplicaCount": _int32(),
            "scaleDownDelaySeconds": _int32(),
            "scaleDownDelayRevisionLimit": _int32(),
            "abortScaleDownDelaySeconds": _int32(),
            "maxUnavailable": _int_or_string(),
            "prePromotionAnalysis": _open(),
            "postPromotionAnalysis": _open(),
            "antiAffinity": _open(),
            "activeMetadata": _open(),
            "previewMetadata": _open(),
        },
        required=["activeService"],
        open_=True,
    )


def _canary_strategy() -> Obj:
    return _obj(
        {
            "canaryService": _string(),
            "stableService": _string(),
            "steps": _array(_canary_step()),
            "maxSurge": _int_or_string(),
            "maxUnavailable": _int_or_string(),
            "scaleDownDelaySeconds": _int32(),
            "scaleDownDelayRevisionLimit": _int32(),
            "abortScaleDownDelaySeconds": _int32(),
            "minPodsPerReplicaSet": _int32(),
            "dynamicStableScale": _bool(),
            "trafficRouting": _open(),
            "analysis": _open(),
            "antiAffinity": _open(),
            "canaryMetadata": _open(),
            "stableMetadata": _open(),
            "pingPong": _open(),
            "replicaProgressThreshold": _open(),
        },
        open_=True,
    )


def _rollout_spec() -> Obj:
    return _obj(
        {
            "replicas": _int32(),
            "selector": _label_selector(),
            "template": _open(),
            "workloadRef": _obj(
                {"apiVersion": _string(), "kind": _string(), "name": _string(), "scaleDown": _string()},
                open_=True,
            ),
            "minReadySeconds": _int32(),
            "revisionHistoryLimit": _int32(),
            "progressDeadlineSeconds": _int32(),
            "progressDeadlineAbort": _bool(),
            "paused": _bool(),
            "restartAt": _time(),
            "rollbackWindow": _obj({"revisions": _int32()}),
            "analysis": _obj(
                {"successfulRunHistoryLimit": _int32(), "unsuccessfulRunHistoryLimit": _int32()}
            ),
            "strategy": _obj({"blueGreen": _blue_green_strategy(), "canary": _canary_strategy()}, open_=True),
        },
        open_=True,
    )


def _rollout_status() -> Obj:
    """Every field of ``RolloutStatus`` (research §2.1); nested sub-statuses are kept as written."""
    condition = _obj(
        {
            "type": _string(),
            "status": _string(),
            "reason": _string(),
            "message": _string(),
            "lastUpdateTime": _time(),
            "lastTransitionTime": _time(),
        },
        required=["type", "status"],
    )
    pause_condition = _obj({"reason": _string(), "startTime": _time()}, required=["reason"])
    return _obj(
        {
            "phase": _string(),
            "message": _string(),
            "observedGeneration": _string(),
            "currentPodHash": _string(),
            "stableRS": _string(),
            "currentStepIndex": _int32(),
            "currentStepHash": _string(),
            "pauseConditions": _array(pause_condition),
            "controllerPause": _bool(),
            "abort": _bool(),
            "abortedAt": _time(),
            "promoteFull": _bool(),
            "restartedAt": _time(),
            "replicas": _int32(),
            "updatedReplicas": _int32(),
            "readyReplicas": _int32(),
            "availableReplicas": _int32(),
            "HPAReplicas": _int32(),
            "selector": _string(),
            "collisionCount": _int32(),
            "conditions": _array(condition),
            "canary": _open(),
            "blueGreen": _open(),
            "workloadObservedGeneration": _string(),
            "alb": _open(),
            "albs": _array(_open()),
            "duration": _open(),
        }
    )


# --------------------------------------------------------------------------------------- the CRDs


def _age() -> Obj:
    return {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "How long ago the object was created",
    }


def _phase_column() -> Obj:
    return {"name": "Status", "type": "string", "jsonPath": ".status.phase", "description": "The phase"}


def _crd(
    kind: Kind, *, short_names: list[str], schema: Obj, columns: list[Obj], subresources: Obj | None = None
) -> Obj:
    version: Obj = {
        "name": kind.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": subresources or {},
        "additionalPrinterColumns": columns,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{kind.group}",
            "labels": {
                "app.kubernetes.io/name": f"{kind.plural}.{kind.group}",
                "app.kubernetes.io/part-of": "tugboat",
            },
        },
        "spec": {
            "group": kind.group,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": short_names,
            },
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "versions": [version],
        },
    }


def rollout_crd() -> Obj:
    columns: list[Obj] = [
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas", "description": "Desired pods"},
        {
            "name": "Current",
            "type": "integer",
            "jsonPath": ".status.replicas",
            "description": "Existing pods",
        },
        {
            "name": "Up-to-date",
            "type": "integer",
            "jsonPath": ".status.updatedReplicas",
            "description": "Pods of the desired template",
        },
        {
            "name": "Available",
            "type": "integer",
            "jsonPath": ".status.availableReplicas",
            "description": "Pods ready for at least minReadySeconds",
        },
        _age(),
    ]
    subresources: Obj = {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.HPAReplicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    return _crd(
        ROLLOUT,
        short_names=["ro"],
        schema=_root(_rollout_spec(), _rollout_status()),
        columns=columns,
        subresources=subresources,
    )


def _template_schema() -> Obj:
    spec = _obj(
        {"metrics": _array(_open()), "args": _array(_open()), "dryRun": _array(_open())},
        open_=True,
    )
    return _root(spec, None)


def analysistemplate_crd() -> Obj:
    return _crd(ANALYSISTEMPLATE, short_names=["at"], schema=_template_schema(), columns=[_age()])


def clusteranalysistemplate_crd() -> Obj:
    return _crd(CLUSTERANALYSISTEMPLATE, short_names=["cat"], schema=_template_schema(), columns=[_age()])


def analysisrun_crd() -> Obj:
    spec = _obj({"metrics": _array(_open()), "args": _array(_open()), "terminate": _bool()}, open_=True)
    status = _open(properties={"phase": _string(), "message": _string(), "startedAt": _time()})
    return _crd(
        ANALYSISRUN, short_names=["ar"], schema=_root(spec, status), columns=[_phase_column(), _age()]
    )


def experiment_crd() -> Obj:
    spec = _obj({"templates": _array(_open()), "terminate": _bool(), "duration": _string()}, open_=True)
    status = _open(properties={"phase": _string(), "message": _string(), "availableAt": _time()})
    return _crd(
        EXPERIMENT, short_names=["exp"], schema=_root(spec, status), columns=[_phase_column(), _age()]
    )


def all_crds() -> list[Obj]:
    return [
        rollout_crd(),
        analysistemplate_crd(),
        clusteranalysistemplate_crd(),
        analysisrun_crd(),
        experiment_crd(),
    ]


async def install(client: Client, *, timeout: float = 10.0) -> None:
    """Install or upgrade the CRDs (server-side apply, taking over conflicting fields), then wait until
    the Rollout type is served so that callers can start watching it right away."""
    for crd in all_crds():
        await client.apply(kinds.CRD, crd, force=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.list(ROLLOUT, all_namespaces=True)
            return
        except errors.ApiError as exc:
            if not exc.not_found:
                raise
            if loop.time() >= deadline:
                raise errors.KubeError("the Rollout type was not served after installing its CRD") from exc
        await asyncio.sleep(0.1)
