"""The Rollout's side of Experiments: creating the experiment step's Experiment, cancelling and deleting.

A canary ``experiment`` step starts an Experiment owned by the Rollout (built by
:func:`tugboat.rollouts.experiments.experiment_for_step`) and waits for it to succeed; the Rollout records
it as ``status.canary.currentExperiment``. Every other Experiment it owns is cancelled (``spec.terminate``),
and finished ones are kept only up to the analysis history limits, as Argo Rollouts does
(``rollout/experiment.go``). The Experiment itself is run by the Experiment controller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tugboat.kube import errors as kube_errors
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import templates

FINISHED = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
MAX_COLLISIONS = 20


def phase_of(experiment: Mapping[str, Any] | None) -> str:
    return str(((experiment or {}).get("status") or {}).get("phase") or "")


def finished(experiment: Mapping[str, Any] | None) -> bool:
    return phase_of(experiment) in FINISHED


async def create_with_collisions(client: Client, body: Obj, *, owner: Mapping[str, Any]) -> Obj:
    """Create ``body``; on a name taken by another Experiment try ``name-1``, ``name-2``... An unfinished
    one of the same owner and spec is ours from a reconcile on a stale cache, and is returned."""
    base = body["metadata"]["name"]
    namespace = body["metadata"]["namespace"]
    uid = (owner.get("metadata") or {}).get("uid")
    for attempt in range(MAX_COLLISIONS):
        body["metadata"]["name"] = base if attempt == 0 else f"{base}-{attempt}"
        try:
            return await client.create(crds.EXPERIMENT, body)
        except kube_errors.ApiError as exc:
            if not exc.already_exists:
                raise
        existing = await client.get(crds.EXPERIMENT, body["metadata"]["name"], namespace)
        ours = any(r.get("uid") == uid for r in existing["metadata"].get("ownerReferences") or [])
        spec = {k: v for k, v in (existing.get("spec") or {}).items() if k != "terminate"}
        same = templates.spec_fingerprint(spec) == templates.spec_fingerprint(body["spec"])
        if ours and same and not finished(existing) and not (existing.get("spec") or {}).get("terminate"):
            return existing
    raise templates.AnalysisSpecError(f"too many Experiments named {base}-N")


async def cancel(client: Client, experiment: Mapping[str, Any] | None) -> None:
    """Ask an Experiment still going to stop (``spec.terminate: true``)."""
    if experiment is None or finished(experiment) or (experiment.get("spec") or {}).get("terminate"):
        return
    try:
        await client.patch(
            crds.EXPERIMENT,
            experiment["metadata"]["name"],
            {"spec": {"terminate": True}},
            namespace=experiment["metadata"]["namespace"],
        )
    except kube_errors.ApiError as exc:
        if not exc.not_found:
            raise


def to_delete(
    experiments: Iterable[Obj],
    replicasets: Iterable[Mapping[str, Any]],
    *,
    keep_successful: int,
    keep_unsuccessful: int,
) -> list[Obj]:
    """Finished Experiments beyond the history limits (newest kept), and those whose ReplicaSet is gone."""
    hashes = {
        rsutil.hash_of(rs) for rs in replicasets if not (rs.get("metadata") or {}).get("deletionTimestamp")
    }
    doomed: list[Obj] = []
    kept_ok = kept_bad = 0
    ordered = sorted(
        experiments,
        key=lambda e: (e["metadata"].get("creationTimestamp") or "", e["metadata"]["name"]),
        reverse=True,
    )
    for experiment in ordered:
        if experiment["metadata"].get("deletionTimestamp") or not finished(experiment):
            continue
        pod_hash = (experiment["metadata"].get("labels") or {}).get(rsutil.HASH_LABEL)
        if pod_hash is None or pod_hash not in hashes:
            doomed.append(experiment)
        elif phase_of(experiment) == "Successful" and kept_ok < keep_successful:
            kept_ok += 1
        elif phase_of(experiment) != "Successful" and kept_bad < keep_unsuccessful:
            kept_bad += 1
        else:
            doomed.append(experiment)
    return doomed


async def delete(client: Client, experiment: Mapping[str, Any]) -> None:
    try:
        await client.delete(
            crds.EXPERIMENT, experiment["metadata"]["name"], experiment["metadata"]["namespace"]
        )
    except kube_errors.ApiError as exc:
        if not exc.not_found:
            raise
