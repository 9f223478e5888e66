"""What a client does to a Rollout when a user asks: promote, abort, retry, pause, resume, restart, set an
image, undo.

Argo Rollouts has no write API of its own: its kubectl plugin and its dashboard patch the Rollout and the
controller reacts (research/rollouts.md §1.9, §2.7). ``tugboat rollout …`` and the API server's Rollout
actions write exactly those fields, so both call these functions: promote, abort and retry merge-patch
``status`` through ``/status`` (falling back to one patch of the object where the CRD has no status
subresource), pause and resume change ``spec.paused`` and the pause conditions, restart sets
``spec.restartAt``, set-image and undo change the pod template of the Rollout, or of the workload its
``workloadRef`` names.

Failures a user can act on are raised as :class:`ActionError`: :class:`NotFound` (a missing Rollout,
workload, container or revision) and :class:`Invalid` (a request that cannot be carried out). The CLI
turns them into its one-line errors, the server into 404 and 400 answers; anything else the API server
says is left to the caller as :class:`tugboat.kube.errors.ApiError`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tugboat.kube import errors, kinds, selectors
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds
from tugboat.rollouts import replicasets as rsutil
from tugboat.util import jsondata

ROLLOUT = crds.ROLLOUT
PODTEMPLATE = kinds.Kind("", "v1", "PodTemplate", "podtemplates")
WORKLOAD_KINDS = {"Deployment": kinds.DEPLOYMENT, "ReplicaSet": kinds.REPLICASET, "PodTemplate": PODTEMPLATE}
WRITE_ATTEMPTS = 5  # a replace that meets a concurrent write is tried again on the new object

Patches = tuple[Obj | None, Obj | None, Obj]  # (spec patch, status patch, unified patch)


class ActionError(Exception):
    """An action cannot be done; ``message`` says why, in words a user reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ActionError):
    """Something the action needs is missing: a container, a revision, or an object. For an object,
    ``kind``, ``namespace`` and ``name`` say which, and ``served`` is False when the server has no such
    kind at all (``detail`` is then the server's message)."""

    def __init__(
        self,
        message: str,
        *,
        kind: kinds.Kind | None = None,
        namespace: str = "",
        name: str = "",
        served: bool = True,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.kind, self.namespace, self.name = kind, namespace, name
        self.served, self.detail = served, detail


class Invalid(ActionError):
    """The action cannot be carried out as asked (a bad argument, an unsupported workload)."""


# ------------------------------------------------------------------------------------------ fields


_get = jsondata.dig


def _text(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _controlled_by(obj: Mapping[str, Any], uid: Any) -> bool:
    refs = _list(_get(obj, "metadata", "ownerReferences"))
    return bool(uid) and any(
        isinstance(ref, Mapping) and ref.get("uid") == uid and ref.get("controller") is True for ref in refs
    )


# ------------------------------------------------------------------------------------------ objects


@contextlib.contextmanager
def not_found_as(kind: kinds.Kind, namespace: str, name: str) -> Iterator[None]:
    """Raise the API server's 404 for ``kind`` ``namespace/name`` as :class:`NotFound`."""
    try:
        yield
    except errors.ApiError as exc:
        if not exc.not_found:
            raise
        details = exc.status.get("details")
        raise NotFound(
            f'{kind.plural}.{kind.group or "core"} "{name}" not found',
            kind=kind,
            namespace=namespace,
            name=name,
            served=isinstance(details, Mapping) and bool(details.get("name")),
            detail=exc.message or exc.reason,
        ) from None


async def get_object(client: Client, kind: kinds.Kind, namespace: str, name: str) -> Obj:
    with not_found_as(kind, namespace, name):
        return await client.get(kind, name, namespace)


async def get_rollout(client: Client, namespace: str, name: str) -> Obj:
    return await get_object(client, ROLLOUT, namespace, name)


async def workload(client: Client, ro: Mapping[str, Any]) -> tuple[kinds.Kind, Obj]:
    """The object holding the Rollout's pod template: the Rollout, or the workload of its ``workloadRef``
    (a Deployment, ReplicaSet or PodTemplate)."""
    ref = _get(ro, "spec", "workloadRef")
    if not isinstance(ref, Mapping):
        return ROLLOUT, dict(ro)
    kind = WORKLOAD_KINDS.get(_text(ref, "kind"))
    if kind is None:
        raise Invalid(f"workload of type {_text(ref, 'kind') or '(none)'} is not supported")
    namespace, name = _text(ro, "metadata", "namespace"), _text(ref, "name")
    if not name:
        qualified = f"{namespace}/{_text(ro, 'metadata', 'name')}"
        raise Invalid(f"rollout '{qualified}': spec.workloadRef.name is not a string")
    return kind, await get_object(client, kind, namespace, name)


def template_path(kind: kinds.Kind) -> tuple[str, ...]:
    """Where an object of ``kind`` keeps its pod template."""
    return ("template",) if kind is PODTEMPLATE else ("spec", "template")


# ------------------------------------------------------------------------------------ status writes


async def write_status(
    client: Client,
    namespace: str,
    name: str,
    *,
    status_patch: Obj | None,
    spec_patch: Obj | None = None,
    unified_patch: Obj | None = None,
    kind: kinds.Kind = ROLLOUT,
) -> None:
    """Merge-patch ``status_patch`` through ``/status``, then ``spec_patch`` into the object, the way the
    upstream plugin does. Where the status subresource does not exist (404), the object is patched once
    with ``unified_patch`` (or ``status_patch``) instead, and ``spec_patch`` is not sent."""
    with not_found_as(kind, namespace, name):
        if status_patch is not None:
            try:
                await client.patch(kind, name, status_patch, namespace=namespace, subresource="status")
            except errors.ApiError as exc:
                if not exc.not_found:
                    raise
                spec_patch = unified_patch if unified_patch is not None else status_patch
        if spec_patch is not None:
            await client.patch(kind, name, spec_patch, namespace=namespace)


def _steps(ro: Mapping[str, Any]) -> list[Any]:
    return _list(_get(ro, "spec", "strategy", "canary", "steps"))


def _is_canary(ro: Mapping[str, Any]) -> bool:
    return isinstance(_get(ro, "spec", "strategy", "canary"), Mapping)


def _next_step(ro: Mapping[str, Any]) -> int | None:
    """The canary step index after the current one (capped at the number of steps); ``None`` without
    canary steps."""
    if not _is_canary(ro) or not _steps(ro):
        return None
    return min(_int(_get(ro, "status", "currentStepIndex")) + 1, len(_steps(ro)))


def promote_patches(ro: Mapping[str, Any], *, full: bool) -> Patches:
    """The patches that promote ``ro`` as ``kubectl argo rollouts promote [--full]`` does; ``None`` where
    nothing is to be written."""
    paused = _get(ro, "spec", "paused") is True
    spec_patch: Obj | None = {"spec": {"paused": False}} if paused else None
    status_patch: Obj | None = None
    if full:
        if _get(ro, "status", "currentPodHash") != _get(ro, "status", "stableRS"):
            status_patch = {"status": {"promoteFull": True}}
        return spec_patch, status_patch, {"spec": {"paused": False}, "status": {"promoteFull": True}}
    next_step = _next_step(ro)
    has_pauses = bool(_list(_get(ro, "status", "pauseConditions")))
    inconclusive = (
        _is_canary(ro)
        and _get(ro, "status", "canary", "currentStepAnalysisRunStatus", "status") == "Inconclusive"
    )
    unified: Obj = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
    if inconclusive and has_pauses and _get(ro, "status", "controllerPause") is True:
        if next_step is not None:
            status_patch = {
                "status": {"pauseConditions": None, "controllerPause": False, "currentStepIndex": next_step}
            }
    elif has_pauses:
        status_patch = {"status": {"pauseConditions": None}}
    elif next_step is not None:
        # Nothing pauses the rollout: skip the running step (an analysis or experiment), never both.
        status_patch = {"status": {"pauseConditions": None, "currentStepIndex": next_step}}
        unified = {"spec": {"paused": False}, **status_patch}
    return spec_patch, status_patch, unified


def resume_patches(ro: Mapping[str, Any]) -> Patches:
    """The patches that resume ``ro`` like Argo CD's ``resume`` action: clear the pause conditions, and
    ``spec.paused`` if it is set."""
    paused = _get(ro, "spec", "paused") is True
    spec_patch: Obj | None = {"spec": {"paused": False}} if paused else None
    pauses = bool(_list(_get(ro, "status", "pauseConditions")))
    status_patch: Obj | None = {"status": {"pauseConditions": None}} if pauses else None
    unified: Obj = {"status": {"pauseConditions": None}}
    if paused:
        unified["spec"] = {"paused": False}
    return spec_patch, status_patch, unified


async def promote(client: Client, namespace: str, name: str, *, full: bool) -> None:
    spec_patch, status_patch, unified = promote_patches(await get_rollout(client, namespace, name), full=full)
    await write_status(
        client, namespace, name, status_patch=status_patch, spec_patch=spec_patch, unified_patch=unified
    )


async def abort(client: Client, namespace: str, name: str) -> None:
    await write_status(client, namespace, name, status_patch={"status": {"abort": True}})


async def retry(client: Client, namespace: str, name: str) -> None:
    await write_status(client, namespace, name, status_patch={"status": {"abort": False}})


async def pause(client: Client, namespace: str, name: str) -> None:
    await write_status(client, namespace, name, status_patch=None, spec_patch={"spec": {"paused": True}})


async def resume(client: Client, namespace: str, name: str) -> bool:
    """Clear the pause conditions and ``spec.paused``; False (and nothing written) when neither is set."""
    spec_patch, status_patch, unified = resume_patches(await get_rollout(client, namespace, name))
    if spec_patch is None and status_patch is None:
        return False
    await write_status(
        client, namespace, name, status_patch=status_patch, spec_patch=spec_patch, unified_patch=unified
    )
    return True


def restart_time(moment: datetime.datetime) -> str:
    """``spec.restartAt`` for a restart at ``moment``: RFC 3339 in UTC, whole seconds (as the plugin
    writes it)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def restart(client: Client, namespace: str, name: str, *, at: datetime.datetime) -> None:
    """Ask the controller to restart the Rollout's Pods at ``at``: ``spec.restartAt``."""
    patch = {"spec": {"restartAt": restart_time(at)}}
    await write_status(client, namespace, name, status_patch=None, spec_patch=patch)


# ---------------------------------------------------------------------------------------- set image


def with_image(obj: Mapping[str, Any], container: str, image: str, *, kind: kinds.Kind = ROLLOUT) -> Obj:
    """A copy of ``obj`` (of ``kind``) whose container named ``container`` (``*``: every container) among
    the init, app and ephemeral containers of its pod template runs ``image``."""
    updated: Obj = copy.deepcopy(dict(obj))
    pod_spec = _get(updated, *template_path(kind), "spec")
    found = False
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for entry in _list(pod_spec.get(key) if isinstance(pod_spec, dict) else None):
            if isinstance(entry, dict) and (container == "*" or entry.get("name") == container):
                entry["image"] = image
                found = True
    if not found:
        raise NotFound(f'unable to find container named "{container}"')
    return updated


async def set_image(
    client: Client, namespace: str, name: str, *, container: str, image: str
) -> tuple[kinds.Kind, Obj]:
    """Set the image of ``container`` (``*``: all) in the pod template of the Rollout (or of its
    workload), replacing the object at the resourceVersion read; returns the kind and the object written."""
    if not image.strip():
        raise Invalid("image must not be empty")
    attempt = 1
    while True:
        kind, obj = await workload(client, await get_rollout(client, namespace, name))
        try:
            return kind, await client.replace(kind, with_image(obj, container, image, kind=kind))
        except errors.ApiError as exc:
            if not exc.conflict or attempt >= WRITE_ATTEMPTS:
                raise
        attempt += 1


# --------------------------------------------------------------------------------------------- undo


def derivative(wanted: Any, actual: Any) -> bool:
    """Whether ``actual`` has everything ``wanted`` sets (empty and missing values in ``wanted`` are not
    compared): the semantic comparison ``undo`` uses to skip a rollback to the current template."""
    if wanted is None:
        return True
    if isinstance(wanted, Mapping):
        if not wanted:
            return True
        if not isinstance(actual, Mapping) or len(wanted) > len(actual):
            return False
        return all(key in actual and derivative(value, actual[key]) for key, value in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return True
        if not isinstance(actual, list) or len(wanted) > len(actual):
            return False
        return all(derivative(w, a) for w, a in zip(wanted, actual, strict=False))
    if isinstance(wanted, str):
        return wanted == "" or wanted == actual
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    return bool(type(wanted) in (int, float) and type(actual) in (int, float) and wanted == actual)


def without_hash(template: Any) -> Obj:
    """A copy of a pod template without the ``rollouts-pod-template-hash`` label (nor an emptied
    ``labels``)."""
    copied: Obj = copy.deepcopy(dict(template)) if isinstance(template, Mapping) else {}
    labels = _get(copied, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop(rsutil.HASH_LABEL, None)
        if not labels:
            del copied["metadata"]["labels"]
    return copied


def revision_replicaset(replicasets: Sequence[Obj], revision: int, rollout_name: str) -> tuple[Obj, int]:
    """The ReplicaSet of ``revision`` (0: the one of the revision before the newest) and its revision."""
    ranked = sorted(replicasets, key=rsutil.revision_of, reverse=True)
    if revision > 0:
        for rs in ranked:
            if rsutil.revision_of(rs) == revision:
                return rs, revision
        raise NotFound(f"unable to find specified revision {revision} in history")
    if len(ranked) < 2:
        raise NotFound(f'no revision found for rollout "{rollout_name}"')
    return ranked[1], rsutil.revision_of(ranked[1])


async def owned_replicasets(client: Client, ro: Mapping[str, Any]) -> list[Obj]:
    """The ReplicaSets the Rollout controls (listed by its selector)."""
    selector = _get(ro, "spec", "selector")
    labels = selectors.selector_string(selector) if isinstance(selector, Mapping) else ""
    found, _ = await client.list(kinds.REPLICASET, _text(ro, "metadata", "namespace"), labels=labels)
    uid = _get(ro, "metadata", "uid")
    return [rs for rs in found if _controlled_by(rs, uid)]


async def undo(client: Client, namespace: str, name: str, *, revision: int) -> tuple[int, bool]:
    """Roll back like ``kubectl argo rollouts undo --to-revision``: copy the pod template of that
    revision's ReplicaSet (0: the previous revision) into the Rollout or its workload. Returns the revision
    and whether anything was written (nothing is when the template already is that one)."""
    if revision < 0:
        raise Invalid("revision must be 0 (the previous one) or a revision number")
    ro = await get_rollout(client, namespace, name)
    rs, found = revision_replicaset(await owned_replicasets(client, ro), revision, name)
    template = without_hash(_get(rs, "spec", "template"))
    kind, target = await workload(client, ro)
    path = template_path(kind)
    current = _get(target, *path)
    if isinstance(current, Mapping) and derivative(without_hash(current), template):
        return found, False
    patch = [{"op": "replace", "path": "/" + "/".join(path), "value": template}]
    target_name = _text(target, "metadata", "name")
    with not_found_as(kind, namespace, target_name):
        await client.patch(kind, target_name, patch, namespace=namespace, patch_type="json")
    return found, True
