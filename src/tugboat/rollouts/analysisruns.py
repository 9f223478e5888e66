"""The Rollout's side of analysis: which AnalysisRuns it has, creating, cancelling and deleting them.

A Rollout starts AnalysisRuns from its templates at four places (research/rollouts.md §1.3, §1.5): a
canary ``analysis`` step, background analysis (``canary.analysis`` from ``startingStep`` on), and blue-green
``prePromotionAnalysis`` / ``postPromotionAnalysis``. Each run is owned by the Rollout, labelled with the
new ReplicaSet's pod-template hash and its type (``rollout-type``, ``step-index``), named
``<rollout>-<hash>-<revision>[-<step>|-pre|-post]`` (``.N`` on a name collision), and recorded in the
Rollout's status (``canary.currentStepAnalysisRunStatus`` ...) as the *current* run of its kind; every
other run of the Rollout is cancelled (``spec.terminate``) and, once finished, kept only up to the
history limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tugboat.kube.client import Client, Obj
from tugboat.rollouts import conditions, crds, ownedobjects
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import templates

TYPE_LABEL = "rollout-type"
STEP_INDEX_LABEL = "step-index"
INCONCLUSIVE_PAUSE = conditions.PAUSE_INCONCLUSIVE_ANALYSIS  # "InconclusiveAnalysisRun"

STEP, BACKGROUND, PRE, POST = "Step", "Background", "PrePromotion", "PostPromotion"
# Kind of run -> (status section, status field)
STATUS_FIELDS = {
    STEP: ("canary", "currentStepAnalysisRunStatus"),
    BACKGROUND: ("canary", "currentBackgroundAnalysisRunStatus"),
    PRE: ("blueGreen", "prePromotionAnalysisRunStatus"),
    POST: ("blueGreen", "postPromotionAnalysisRunStatus"),
}
COMPLETED = ownedobjects.FINISHED


phase_of = ownedobjects.phase_of
completed = ownedobjects.finished


def recorded(status: Mapping[str, Any], kind: str) -> Obj | None:
    """The ``{name, status, message}`` the Rollout's status holds for its current run of ``kind``."""
    section, field = STATUS_FIELDS[kind]
    found = (status.get(section) or {}).get(field)
    return found if isinstance(found, dict) else None


def current(status: Mapping[str, Any], runs: Iterable[Obj]) -> dict[str, Obj | None]:
    """The current run of each kind, found by the names recorded in the Rollout's status."""
    by_name = {r["metadata"]["name"]: r for r in runs}
    out: dict[str, Obj | None] = {}
    for kind in STATUS_FIELDS:
        entry = recorded(status, kind)
        out[kind] = by_name.get(str(entry.get("name"))) if entry else None
    return out


def status_entry(run: Mapping[str, Any]) -> Obj:
    entry: Obj = {"name": run["metadata"]["name"], "status": phase_of(run) or "Pending"}
    message = (run.get("status") or {}).get("message")
    if message:
        entry["message"] = message
    return entry


# ------------------------------------------------------------------------------------ args


def build_args(
    args: Iterable[Mapping[str, Any]],
    ro: Mapping[str, Any],
    new_rs: Mapping[str, Any],
    stable_rs: Mapping[str, Any] | None,
) -> list[Obj]:
    """The Rollout's analysis args with values: ``podTemplateHashValue: Latest|Stable`` and ``fieldRef``
    (metadata through downward-API paths, anything else read from the Rollout) resolved now."""
    out: list[Obj] = []
    for arg in args:
        value = arg.get("value")
        source = arg.get("valueFrom") or {}
        if source.get("podTemplateHashValue") == "Latest":
            value = rsutil.hash_of(new_rs)
        elif source.get("podTemplateHashValue") == "Stable":
            value = rsutil.hash_of(stable_rs or {})
        elif isinstance(source.get("fieldRef"), dict):
            value = field_value(ro, str(source["fieldRef"].get("fieldPath") or ""))
        out.append({"name": arg.get("name"), "value": "" if value is None else str(value)})
    return out


_SUBSCRIPT = re.compile(r"^(\w+)\[['\"]?([^'\"\]]+)['\"]?\]$")


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """``metadata.labels['rev']``, ``metadata.name``, ``spec.template.spec.containers[0].image``, ..."""
    current: Any = obj
    for part in _split(path):
        match = _SUBSCRIPT.match(part)
        keys: list[str] = [match.group(1), match.group(2)] if match else [part]
        for key in keys:
            if isinstance(current, list) and key.isdigit() and int(key) < len(current):
                current = current[int(key)]
            elif isinstance(current, Mapping):
                current = current.get(key)
            else:
                current = None
    if current is None:
        raise templates.AnalysisSpecError(f"fieldPath {path!r} not found in the Rollout")
    return current if isinstance(current, str) else str(current)


def _split(path: str) -> list[str]:
    """Split on dots outside brackets (label keys contain dots: ``labels['app.kubernetes.io/name']``)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(path):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(path[start:i])
            start = i + 1
    parts.append(path[start:])
    return [p for p in parts if p]


# ------------------------------------------------------------------------------------ lifecycle


async def create(
    client: Client,
    ro: Mapping[str, Any],
    analysis: Mapping[str, Any],
    *,
    kind: str,
    new_rs: Mapping[str, Any],
    stable_rs: Mapping[str, Any] | None,
    step_index: int | None = None,
) -> Obj:
    """Create the AnalysisRun ``analysis`` (a RolloutAnalysis: templates, args, dryRun,
    measurementRetention, analysisRunMetadata) asks for; raises AnalysisSpecError on bad specs."""
    meta = ro["metadata"]
    namespace = str(meta["namespace"])
    found = await templates.fetch(client, namespace, analysis.get("templates") or [])
    args = build_args(analysis.get("args") or [], ro, new_rs, stable_rs)
    spec = templates.run_spec(
        found,
        args=args,
        dry_run=analysis.get("dryRun") or [],
        measurement_retention=analysis.get("measurementRetention") or [],
    )
    pod_hash = rsutil.hash_of(new_rs)
    revision = str((meta.get("annotations") or {}).get(rsutil.REVISION, ""))
    infix = {STEP: str(step_index), BACKGROUND: "", PRE: "pre", POST: "post"}[kind]
    name = "-".join(p for p in (str(meta["name"]), pod_hash, revision, infix) if p)
    run_metadata = analysis.get("analysisRunMetadata") or {}
    labels: dict[str, str] = {rsutil.HASH_LABEL: pod_hash, TYPE_LABEL: kind}
    if kind == STEP:
        labels[STEP_INDEX_LABEL] = str(step_index)
    labels.update({str(k): str(v) for k, v in (run_metadata.get("labels") or {}).items()})
    labels.update(((ro.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    annotations = {rsutil.REVISION: revision}
    annotations.update({str(k): str(v) for k, v in (run_metadata.get("annotations") or {}).items()})
    body: Obj = {
        "apiVersion": f"{crds.GROUP}/{crds.VERSION}",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": f"{crds.GROUP}/{crds.VERSION}",
                    "kind": "Rollout",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
    return await create_owned(client, body)


async def create_owned(client: Client, body: Obj) -> Obj:
    """Create a complete AnalysisRun ``body`` (named, with its controller owner first in
    ``ownerReferences``) under the ``.N`` name-collision rule; also used by Experiments, which name their
    runs ``<experiment>-<analysis>``."""
    return await ownedobjects.create_with_collisions(client, crds.ANALYSISRUN, body, separator=".")


async def cancel(client: Client, run: Mapping[str, Any] | None) -> None:
    """Ask a run still going to stop (``spec.terminate: true``); a finished one is left alone."""
    await ownedobjects.cancel(client, crds.ANALYSISRUN, run)


def inconclusive_pause(now: datetime) -> Obj:
    return {"reason": INCONCLUSIVE_PAUSE, "startTime": rsutil.stamp(now)}
