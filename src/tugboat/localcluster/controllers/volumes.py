"""Binds PersistentVolumeClaims: kube-controller-manager's PV controller plus a simulated provisioner.

Workloads with storage (StatefulSets' ``volumeClaimTemplates``, Helm charts with PVCs) wait for their
claims to be ``Bound``, and Argo CD reports a Pending claim as Progressing. So a claim is bound to a
matching pre-created volume if there is one (``Available``, same class, enough capacity, the access modes
and volume mode asked for, the claim's selector; the smallest that fits), and otherwise a volume
``pvc-<claim uid>`` is provisioned from its StorageClass, as an external provisioner would, and bound.
A ``standard`` StorageClass marked as the default is created at start if missing, and claims without a
class get the default one (upstream's retroactive default class assignment). When a claim goes, its
volume is deleted (reclaim policy ``Delete``) or marked ``Released`` (``Retain``). Nothing is stored on
disk: a provisioned volume's ``hostPath`` only names where a real one would live.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from decimal import Decimal

from tugboat.kube import errors
from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key
from tugboat.kube.kinds import PV, PVC, Kind
from tugboat.kube.selectors import from_label_selector
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster.controllers.base import Context, StaleCacheRetries
from tugboat.localcluster.defaults import parse_quantity

log = logging.getLogger(__name__)

STORAGECLASS = Kind("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False)

DEFAULT_CLASS = "standard"
PROVISIONER = "tugboat.dev/sim"
HOST_PATH_ROOT = "/tmp/tugboat-sim"
COMPONENT = "persistentvolume-controller"

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"

_CLAIM = "claim"
_VOLUME = "volume"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def _storage(resources: Obj | None) -> Decimal | None:
    return parse_quantity((resources or {}).get("storage"))


def default_class(classes: list[Obj]) -> Obj | None:
    """The default StorageClass: marked so, the newest when several are (upstream since 1.28)."""
    marked = [
        sc
        for sc in classes
        if "true"
        in (
            (sc["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION),
            (sc["metadata"].get("annotations") or {}).get(BETA_DEFAULT_CLASS_ANNOTATION),
        )
    ]
    if not marked:
        return None
    return max(
        marked, key=lambda sc: (str(sc["metadata"].get("creationTimestamp") or ""), sc["metadata"]["name"])
    )


def _claim_ref_matches(volume: Obj, claim: Obj) -> bool:
    """The volume is (pre-)bound to this claim."""
    ref = (volume.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    meta = claim["metadata"]
    if ref.get("name") != meta["name"] or ref.get("namespace") != meta["namespace"]:
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def volume_fits(volume: Obj, claim: Obj) -> bool:
    """Whether ``volume`` may be bound to ``claim`` (upstream's findMatchingVolume criteria)."""
    spec = volume.get("spec") or {}
    claim_spec = claim.get("spec") or {}
    if volume["metadata"].get("deletionTimestamp"):
        return False
    if spec.get("claimRef") and not _claim_ref_matches(volume, claim):
        return False
    if not spec.get("claimRef") and _phase(volume) not in ("", "Pending", "Available"):
        return False
    if (spec.get("storageClassName") or "") != (claim_spec.get("storageClassName") or ""):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (claim_spec.get("volumeMode") or "Filesystem"):
        return False
    if not set(claim_spec.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    requested = _storage((claim_spec.get("resources") or {}).get("requests")) or Decimal(0)
    capacity = _storage(spec.get("capacity"))
    if capacity is None or capacity < requested:
        return False
    selector = claim_spec.get("selector")
    return not selector or from_label_selector(selector).matches(volume["metadata"].get("labels") or {})


def best_volume(volumes: list[Obj], claim: Obj) -> Obj | None:
    """A volume pre-bound to the claim if one fits, else the smallest fitting one."""
    fitting = [v for v in volumes if volume_fits(v, claim)]
    for volume in fitting:
        if _claim_ref_matches(volume, claim):
            return volume
    if not fitting:
        return None
    return min(
        fitting, key=lambda v: (_storage(v["spec"].get("capacity")) or Decimal(0), v["metadata"]["name"])
    )


def _claim_ref(claim: Obj) -> Obj:
    meta = claim["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion"),
    }


def provisioned_volume(claim: Obj, storage_class: Obj) -> Obj:
    """The volume a provisioner creates for ``claim``."""
    meta = claim["metadata"]
    spec = claim.get("spec") or {}
    name = f"pvc-{meta['uid']}"
    volume_spec: Obj = {
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage")},
        "claimRef": _claim_ref(claim),
        "hostPath": {
            "path": f"{HOST_PATH_ROOT}/{name}_{meta['namespace']}_{meta['name']}",
            "type": "DirectoryOrCreate",
        },
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": storage_class["metadata"]["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
    }
    if storage_class.get("mountOptions"):
        volume_spec["mountOptions"] = list(storage_class["mountOptions"])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "annotations": {PROVISIONED_BY: storage_class.get("provisioner") or PROVISIONER},
        },
        "spec": volume_spec,
    }


class PersistentVolumeController:
    """Binds claims to volumes, provisions volumes, reclaims released ones."""

    name = "volumes"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        # One worker: two claims must never race for the same volume.
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue()
        self.claims = ctx.informers.informer(PVC)
        self.volumes = ctx.informers.informer(PV)
        self.classes = ctx.informers.informer(STORAGECLASS)
        self.volumes.add_index("volumes:claim", _volume_claim_key)
        self._stale: StaleCacheRetries[tuple[str, str]] = StaleCacheRetries()
        self._pending: set[str] = set()  # claims that found neither a volume nor a way to provision one
        self.claims.add_handler(self._on_claim)
        self.volumes.add_handler(self._on_volume)
        self.classes.add_handler(self._on_class)

    # -------------------------------------------------------------------------------------- events

    def _on_claim(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add((_CLAIM, object_key(new)))
            return
        assert old is not None
        self._pending.discard(object_key(old))
        for volume in self.volumes.by_index("volumes:claim", object_key(old)):
            self.queue.add((_VOLUME, volume["metadata"]["name"]))

    def _on_volume(self, old: Obj | None, new: Obj | None) -> None:
        volume = new or old
        assert volume is not None
        if new is not None:
            self.queue.add((_VOLUME, new["metadata"]["name"]))
        for key in _volume_claim_key(volume):
            self.queue.add((_CLAIM, key))
        if new is not None and not (new.get("spec") or {}).get("claimRef"):
            self._retry_pending()

    def _on_class(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self._retry_pending()

    def _retry_pending(self) -> None:
        for key in sorted(self._pending):
            self.queue.add((_CLAIM, key))

    # ------------------------------------------------------------------------------------- running

    async def run(self) -> None:
        await self._ensure_default_class()
        await run_workers(self.queue, self.sync, workers=1, name="volumes")

    async def _ensure_default_class(self) -> None:
        if self.classes.get(DEFAULT_CLASS) is not None:
            return
        body: Obj = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
        try:
            await self.client.create(STORAGECLASS, body)
        except errors.ApiError as exc:
            if not exc.already_exists:
                raise

    async def sync(self, item: tuple[str, str]) -> float | None:
        kind, key = item
        try:
            if kind == _CLAIM:
                await self._sync_claim(key)
            else:
                await self._sync_volume(key)
        except errors.ApiError as exc:
            if not exc.conflict:
                raise
            return self._stale.retry_after(item)
        self._stale.forget(item)
        return None

    # -------------------------------------------------------------------------------------- claims

    async def _sync_claim(self, key: str) -> None:
        claim = self.claims.cache.get(key)
        if claim is None or claim["metadata"].get("deletionTimestamp"):
            self._pending.discard(key)
            return
        spec = claim.get("spec") or {}
        if spec.get("volumeName"):
            self._pending.discard(key)
            await self._sync_bound_claim(claim, str(spec["volumeName"]))
            return
        if "storageClassName" not in spec or spec.get("storageClassName") is None:
            default = default_class(self.classes.objects())
            if default is not None:
                patch = {"spec": {"storageClassName": default["metadata"]["name"]}}
                await self.client.patch(
                    PVC, claim["metadata"]["name"], patch, namespace=claim["metadata"]["namespace"]
                )
                return
        volume = best_volume(self.volumes.objects(), claim)
        if volume is not None:
            self._pending.discard(key)
            await self._bind(claim, volume, by_controller=True)
            return
        await self._provision(key, claim)

    async def _provision(self, key: str, claim: Obj) -> None:
        class_name = (claim.get("spec") or {}).get("storageClassName") or ""
        recorder = self.ctx.recorder(COMPONENT)
        if not class_name:
            if key not in self._pending:
                message = "no persistent volumes available for this claim and no storage class is set"
                recorder.event(claim, "Normal", "FailedBinding", message)
            self._pending.add(key)
            return
        storage_class = self.classes.get(class_name)
        if storage_class is None:
            if key not in self._pending:
                message = f'storageclass.storage.k8s.io "{class_name}" not found'
                recorder.event(claim, "Warning", "ProvisioningFailed", message)
            self._pending.add(key)
            return
        if not (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"):
            if key not in self._pending:
                message = "failed to provision volume: claim has no storage request"
                recorder.event(claim, "Warning", "ProvisioningFailed", message)
            self._pending.add(key)
            return
        self._pending.discard(key)
        provisioner = str(storage_class.get("provisioner") or PROVISIONER)
        await self._announce_provisioner(claim, provisioner)
        name = f"pvc-{claim['metadata']['uid']}"
        volume = self.volumes.get(name)
        if volume is None:
            provisioner_events = self.ctx.recorder(provisioner)
            message = f'External provisioner is provisioning volume for claim "{key}"'
            provisioner_events.event(claim, "Normal", "Provisioning", message)
            try:
                volume = await self.client.create(PV, provisioned_volume(claim, storage_class))
            except errors.ApiError as exc:
                if not exc.already_exists:
                    raise
                volume = await self.client.get(PV, name)
            provisioner_events.event(
                claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {name}"
            )
        await self._bind(claim, volume, by_controller=False)

    async def _announce_provisioner(self, claim: Obj, provisioner: str) -> None:
        annotations = claim["metadata"].get("annotations") or {}
        if (
            annotations.get(STORAGE_PROVISIONER) == provisioner
            and annotations.get(BETA_STORAGE_PROVISIONER) == provisioner
        ):
            return
        patch = {
            "metadata": {
                "annotations": {STORAGE_PROVISIONER: provisioner, BETA_STORAGE_PROVISIONER: provisioner}
            }
        }
        await self.client.patch(
            PVC, claim["metadata"]["name"], patch, namespace=claim["metadata"]["namespace"]
        )

    async def _sync_bound_claim(self, claim: Obj, volume_name: str) -> None:
        volume = self.volumes.get(volume_name)
        meta = claim["metadata"]
        if volume is None:
            volume = await self.client.get_or_none(PV, volume_name)
        if volume is None:
            if _phase(claim) == "Bound":
                message = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
                self.ctx.recorder(COMPONENT).event(claim, "Warning", "ClaimLost", message)
                await self.client.patch_status(
                    PVC, meta["name"], {"phase": "Lost"}, namespace=meta["namespace"]
                )
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref and not _claim_ref_matches(volume, claim):
            if _phase(claim) != "Pending":
                return
            message = f'volume "{volume_name}" already bound to a different claim.'
            self.ctx.recorder(COMPONENT).event(claim, "Warning", "FailedBinding", message)
            return
        if not volume_fits(volume, claim) and not ref:
            return  # pre-bound by the user to a volume that does not fit: stays Pending, as upstream
        await self._bind(claim, volume, by_controller=False)

    async def _bind(self, claim: Obj, volume: Obj, *, by_controller: bool) -> None:
        """Bind both ways: the volume's claimRef and phase, then the claim's volumeName and status."""
        meta = claim["metadata"]
        name = volume["metadata"]["name"]
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != meta["uid"]:
            updated = copy.deepcopy(volume)
            updated["spec"]["claimRef"] = _claim_ref(claim)
            if not ref:
                updated["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            volume = await self.client.replace(PV, updated)
        if _phase(volume) != "Bound":
            await self.client.patch_status(PV, name, {"phase": "Bound", "lastPhaseTransitionTime": _now()})
        claim_spec = claim.get("spec") or {}
        annotations = meta.get("annotations") or {}
        wanted = {BIND_COMPLETED: "yes"}
        if by_controller or not claim_spec.get("volumeName"):
            wanted[BOUND_BY_CONTROLLER] = "yes"
        if claim_spec.get("volumeName") != name or any(annotations.get(k) != v for k, v in wanted.items()):
            patch = {"metadata": {"annotations": wanted}, "spec": {"volumeName": name}}
            await self.client.patch(PVC, meta["name"], patch, namespace=meta["namespace"])
        volume_spec = volume.get("spec") or {}
        status = {
            "phase": "Bound",
            "accessModes": list(volume_spec.get("accessModes") or []),
            "capacity": dict(volume_spec.get("capacity") or {}),
        }
        current = claim.get("status") or {}
        if any(current.get(k) != v for k, v in status.items()):
            await self.client.patch_status(PVC, meta["name"], status, namespace=meta["namespace"])

    # ------------------------------------------------------------------------------------- volumes

    async def _sync_volume(self, name: str) -> None:
        volume = self.volumes.get(name)
        if volume is None or volume["metadata"].get("deletionTimestamp"):
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref:
            if _phase(volume) in ("", "Pending"):
                await self.client.patch_status(
                    PV, name, {"phase": "Available", "lastPhaseTransitionTime": _now()}
                )
            return
        claim_key = f"{ref.get('namespace')}/{ref.get('name')}"
        claim = self.claims.cache.get(claim_key)
        if claim is None:
            # The cache may lag behind a claim created a moment ago: ask the server before reclaiming.
            claim = await self.client.get_or_none(PVC, str(ref.get("name")), str(ref.get("namespace")))
        if claim is not None and (not ref.get("uid") or ref.get("uid") == claim["metadata"].get("uid")):
            if not ref.get("uid") and _phase(volume) in ("", "Pending"):
                await self.client.patch_status(
                    PV, name, {"phase": "Available", "lastPhaseTransitionTime": _now()}
                )
            return
        if not ref.get("uid"):
            if _phase(volume) in ("", "Pending"):
                await self.client.patch_status(
                    PV, name, {"phase": "Available", "lastPhaseTransitionTime": _now()}
                )
            return
        await self._reclaim(volume)

    async def _reclaim(self, volume: Obj) -> None:
        """The volume's claim is gone: delete, release or recycle it according to its reclaim policy."""
        name = volume["metadata"]["name"]
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            await self.client.delete(PV, name)
        elif policy == "Recycle":
            updated = copy.deepcopy(volume)
            updated["spec"].pop("claimRef", None)
            (updated["metadata"].get("annotations") or {}).pop(BOUND_BY_CONTROLLER, None)
            await self.client.replace(PV, updated)
            await self.client.patch_status(
                PV, name, {"phase": "Available", "lastPhaseTransitionTime": _now()}
            )
        elif _phase(volume) != "Released":
            await self.client.patch_status(PV, name, {"phase": "Released", "lastPhaseTransitionTime": _now()})


def _volume_claim_key(volume: Obj) -> list[str]:
    """Index function: the claim a volume is (pre-)bound to."""
    ref = (volume.get("spec") or {}).get("claimRef")
    if not ref or not ref.get("name"):
        return []
    return [f"{ref.get('namespace')}/{ref.get('name')}"]
