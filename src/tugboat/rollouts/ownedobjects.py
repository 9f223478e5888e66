"""The life cycle a Rollout gives the AnalysisRuns and Experiments it owns.

Both kinds are created by a Rollout (a name collision from a stale cache reuses an identical unfinished
object of the same owner, else tries ``name<sep>1``, ``name<sep>2``...), stopped with ``spec.terminate``
when they are no longer current, and, once finished, kept only up to the Rollout's analysis history
limits (newest first) or deleted with the ReplicaSet they were made for (argo-rollouts'
``CreateWithCollisionCounter``, ``cancelAnalysisRuns``/``cancelExperiments``,
``FilterAnalysisRunsToDelete``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tugboat.kube import errors as kube_errors
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind
from tugboat.rollouts import defaults
from tugboat.rollouts import replicasets as rsutil
from tugboat.rollouts.analysis import templates

FINISHED = frozenset({"Successful", "Failed", "Error", "Inconclusive"})
MAX_COLLISIONS = 20


def phase_of(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def finished(obj: Mapping[str, Any] | None) -> bool:
    return phase_of(obj) in FINISHED


def _stopping(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("terminate"))


async def create_with_collisions(client: Client, kind: Kind, body: Obj, *, separator: str) -> Obj:
    """Create ``body`` (owned by its first ownerReference); see the module docstring for collisions."""
    base = body["metadata"]["name"]
    namespace = body["metadata"]["namespace"]
    owner = body["metadata"]["ownerReferences"][0]["uid"]
    for attempt in range(MAX_COLLISIONS):
        body["metadata"]["name"] = base if attempt == 0 else f"{base}{separator}{attempt}"
        try:
            return await client.create(kind, body)
        except kube_errors.ApiError as exc:
            if not exc.already_exists:
                raise
        existing = await client.get(kind, body["metadata"]["name"], namespace)
        ours = any(r.get("uid") == owner for r in existing["metadata"].get("ownerReferences") or [])
        spec = {k: v for k, v in (existing.get("spec") or {}).items() if k != "terminate"}
        same = templates.spec_fingerprint(spec) == templates.spec_fingerprint(body["spec"])
        if ours and same and not finished(existing) and not _stopping(existing):
            return existing
    raise templates.AnalysisSpecError(f"too many {kind.kind}s named {base}{separator}N")


async def cancel(client: Client, kind: Kind, obj: Mapping[str, Any] | None) -> None:
    """Ask one still going to stop (``spec.terminate: true``); a finished one is left alone."""
    if obj is None or finished(obj) or _stopping(obj):
        return
    try:
        await client.patch(
            kind,
            obj["metadata"]["name"],
            {"spec": {"terminate": True}},
            namespace=obj["metadata"]["namespace"],
        )
    except kube_errors.ApiError as exc:
        if not exc.not_found:
            raise


def to_delete(
    objs: Iterable[Obj],
    replicasets: Iterable[Mapping[str, Any]],
    *,
    keep_successful: int,
    keep_unsuccessful: int,
) -> list[Obj]:
    """Finished ones beyond the history limits (newest kept), and those whose ReplicaSet is gone."""
    live = {
        rsutil.hash_of(rs) for rs in replicasets if not (rs.get("metadata") or {}).get("deletionTimestamp")
    }
    doomed: list[Obj] = []
    kept_ok = kept_bad = 0
    ordered = sorted(
        objs,
        key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]),
        reverse=True,
    )
    for obj in ordered:
        if obj["metadata"].get("deletionTimestamp") or not finished(obj):
            continue
        pod_hash = (obj["metadata"].get("labels") or {}).get(rsutil.HASH_LABEL)
        if pod_hash is None or pod_hash not in live:
            doomed.append(obj)
        elif phase_of(obj) == "Successful" and kept_ok < keep_successful:
            kept_ok += 1
        elif phase_of(obj) != "Successful" and kept_bad < keep_unsuccessful:
            kept_bad += 1
        else:
            doomed.append(obj)
    return doomed


async def retire(
    client: Client,
    kind: Kind,
    objs: list[Obj],
    replicasets: Iterable[Mapping[str, Any]],
    ro: Mapping[str, Any],
) -> None:
    """The ones a Rollout no longer follows: stopped, and deleted beyond its history limits."""
    for obj in objs:
        await cancel(client, kind, obj)
    limits = {
        "keep_successful": defaults.successful_run_history_limit(ro),
        "keep_unsuccessful": defaults.unsuccessful_run_history_limit(ro),
    }
    for obj in to_delete(objs, replicasets, **limits):
        await delete(client, kind, obj)


async def delete(client: Client, kind: Kind, obj: Mapping[str, Any]) -> None:
    try:
        await client.delete(kind, obj["metadata"]["name"], obj["metadata"]["namespace"])
    except kube_errors.ApiError as exc:
        if not exc.not_found:
            raise
