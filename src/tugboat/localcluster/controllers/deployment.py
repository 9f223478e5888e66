"""The Deployment controller: rollouts over ReplicaSets, revisions, progress and its deadline.

Everything the product's rollouts, health checks and rollbacks read about a Deployment is written here, so
it follows upstream's ``pkg/controller/deployment`` closely (``sync.go``, ``rolling.go``, ``recreate.go``,
``progress.go`` and ``util``):

* The ReplicaSet of the current pod template is found by template equality (ignoring the
  ``pod-template-hash`` label) or created as ``<deployment>-<hash>``; it carries the revision annotation
  (max of the old ones + 1, also for a template that comes back, e.g. after ``kubectl rollout undo``, whose
  previous revisions go to ``revision-history``) and ``desired-replicas`` / ``max-replicas``.
* RollingUpdate scales the new ReplicaSet up within ``replicas + maxSurge`` and old ones down while
  ``replicas - maxUnavailable`` pods stay available; Recreate scales old ones to zero, waits until their
  pods are gone, then scales the new one up. A change of ``replicas`` alone (or while paused) is spread
  over the active ReplicaSets in proportion.
* Status and the ``Available`` / ``Progressing`` conditions are computed as upstream does, including
  ``ProgressDeadlineExceeded`` once no progress was made for ``progressDeadlineSeconds`` (the key is looked
  at again exactly when the deadline passes), which is what makes ``kubectl rollout status`` fail.
* Old ReplicaSets scaled to zero beyond ``revisionHistoryLimit`` are deleted.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from tugboat.kube import errors, kinds
from tugboat.kube.informers import object_key
from tugboat.kube.selectors import LabelSelector
from tugboat.localcluster.controllers import podtemplates as pt
from tugboat.localcluster.controllers.base import Context
from tugboat.localcluster.controllers.owning import OwningController

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "deployment-controller"
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

# Condition reasons (upstream's deploymentutil constants)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# ------------------------------------------------------------------------------------ deployment math


def is_rolling(d: Obj) -> bool:
    return ((pt.spec(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods: surge rounds up, unavailability down, never both zero."""
    rolling = (pt.spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = pt.replicas(d)
    surge = pt.scaled_value(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = pt.scaled_value(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or pt.replicas(d) == 0:
        return 0
    return min(fenceposts(d)[1], pt.replicas(d))


def progress_deadline(d: Obj) -> int | None:
    value = pt.spec(d).get("progressDeadlineSeconds")
    if not isinstance(value, int) or value == NO_DEADLINE:
        return None
    return value


def rs_replicas(rs: Obj | None) -> int:
    return pt.replicas(rs) if rs is not None else 0


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and pt.replicas(rs) > 0]


def total_spec(rss: Iterable[Obj | None]) -> int:
    return sum(rs_replicas(rs) for rs in rss)


def total_status(rss: Iterable[Obj | None], field: str) -> int:
    return sum(pt.int_field(pt.status(rs), field) for rs in rss if rs is not None)


def desired_annotation(rs: Obj) -> int | None:
    try:
        return int(pt.annotations_of(rs)[pt.DESIRED_REPLICAS])
    except (KeyError, ValueError):
        return None


def replicas_annotations(d: Obj) -> dict[str, str]:
    desired = pt.replicas(d)
    return {pt.DESIRED_REPLICAS: str(desired), pt.MAX_REPLICAS: str(desired + max_surge(d))}


def new_rs_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> int:
    """How many replicas the new ReplicaSet may have now (upstream's ``NewRSNewReplicas``)."""
    if not is_rolling(d):
        return pt.replicas(d)
    current = total_spec(all_rss)
    max_total = pt.replicas(d) + max_surge(d)
    if current >= max_total:
        return rs_replicas(new_rs)
    scale_up = min(max_total - current, pt.replicas(d) - rs_replicas(new_rs))
    return rs_replicas(new_rs) + scale_up


def rs_fraction(rs: Obj, d: Obj) -> int:
    """How much ``rs`` grows or shrinks when the deployment is resized proportionally."""
    if pt.replicas(d) == 0:
        return -pt.replicas(rs)
    deployment_replicas = pt.replicas(d) + max_surge(d)
    try:
        annotated = int(pt.annotations_of(rs)[pt.MAX_REPLICAS])
    except (KeyError, ValueError):
        annotated = pt.int_field(pt.status(d), "replicas")
    if annotated == 0:
        return 0
    return pt.go_round(pt.replicas(rs) * deployment_replicas / annotated) - pt.replicas(rs)


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if pt.replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the deployment's (ignoring the hash label)."""
    template = pt.spec(d).get("template")
    for rs in sorted(rss, key=pt.creation_key):
        if pt.equal_ignore_hash(pt.spec(rs).get("template"), template):
            return rs
    return None


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = pt.replicas(d)
    return (
        pt.int_field(status, "updatedReplicas") == want
        and pt.int_field(status, "replicas") == want
        and pt.int_field(status, "availableReplicas") == want
        and pt.int_field(status, "observedGeneration") >= pt.int_field(pt.meta(d), "generation")
    )


def deployment_progressing(d: Obj, status: Obj) -> bool:
    old = pt.status(d)
    old_old = pt.int_field(old, "replicas") - pt.int_field(old, "updatedReplicas")
    new_old = pt.int_field(status, "replicas") - pt.int_field(status, "updatedReplicas")
    return (
        pt.int_field(status, "updatedReplicas") > pt.int_field(old, "updatedReplicas")
        or new_old < old_old
        or pt.int_field(status, "readyReplicas") > pt.int_field(old, "readyReplicas")
        or pt.int_field(status, "availableReplicas") > pt.int_field(old, "availableReplicas")
    )


def deadline_in(d: Obj, status: Obj) -> float | None:
    """Seconds until the Progressing condition's deadline passes (negative once it has)."""
    deadline = progress_deadline(d)
    cond = get_condition(status, PROGRESSING)
    if deadline is None or cond is None:
        return None
    since = pt.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return since.timestamp() + deadline - pt.now().timestamp()


def deployment_timed_out(d: Obj, status: Obj) -> bool:
    cond = get_condition(status, PROGRESSING)
    if progress_deadline(d) is None or cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    remaining = deadline_in(d, status)
    return remaining is not None and remaining < 0


# ------------------------------------------------------------------------------------------ conditions


def get_condition(status: Obj, kind: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def new_condition(kind: str, state: str, reason: str, message: str) -> Obj:
    stamp = pt.format_time(pt.now())
    return {
        "type": kind,
        "status": state,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream's ``SetDeploymentCondition``: same status and reason keeps the old condition as it is."""
    current = get_condition(status, cond["type"])
    if (
        current is not None
        and current.get("status") == cond["status"]
        and current.get("reason") == cond["reason"]
    ):
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


def compact_status(status: Obj) -> Obj:
    """The status as the API encodes it: zero counts and empty conditions left out."""
    out: Obj = {}
    for key, value in status.items():
        if key == "collisionCount":
            if value is not None:
                out[key] = value
        elif value:
            out[key] = value
    return out


def _quote(text: str) -> str:
    """Go's ``%q`` for the names that appear in condition messages."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------------------ controller


class DeploymentController(OwningController):
    """Reconciles every Deployment of the cluster."""

    name = "deployment"
    component = COMPONENT

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.deployments = ctx.informers.informer(kinds.DEPLOYMENT)
        self.replicasets = ctx.informers.informer(kinds.REPLICASET)
        self.pods = ctx.informers.informer(kinds.POD)
        pt.add_owner_indexes(self.replicasets, by_namespace=True)
        pt.add_owner_indexes(self.pods)
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    # ---------------------------------------------------------------------------------- event handlers

    def _on_deployment(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(object_key(new))

    def _owner_key(self, obj: Obj) -> str | None:
        return pt.cached_owner_key(self.deployments, obj, "Deployment")

    def _matching_keys(self, obj: Obj) -> list[str]:
        return pt.selecting_keys(self.deployments.objects(pt.namespace(obj)), obj)

    def _on_replicaset(self, old: Obj | None, new: Obj | None) -> None:
        current = new if new is not None else old
        assert current is not None
        if new is None or old is None or pt.deleting(new):
            key = self._owner_key(current)
            if key is not None:
                self.queue.add(key)
            elif new is not None and pt.controller_ref(new) is None:
                self._queue_adopters(new)
            return
        if pt.meta(old).get("resourceVersion") == pt.meta(new).get("resourceVersion"):
            return
        self._owned_changed(old, new, labels_changed=pt.labels_of(old) != pt.labels_of(new))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        """Recreate waits for the old pods to be gone: look again when one goes."""
        if new is not None or old is None:
            return
        ref = pt.controller_ref(old)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(str(ref.get("name")), pt.namespace(old))
        if rs is None:
            return
        key = self._owner_key(rs)
        d = self.deployments.cache.get(key) if key else None
        if key is not None and d is not None and not is_rolling(d):
            self.queue.add(key)

    # ------------------------------------------------------------------------------------------- sync

    async def sync(self, key: str) -> float | None:
        cached = self.deployments.cache.get(key)
        if cached is None:
            return None
        return await _Rollout(self, copy.deepcopy(cached)).run()


class _Rollout:
    """One reconciliation of one Deployment (upstream's ``syncDeployment`` and what it calls).

    ``self.d`` is the working copy: conditions and the revision annotation are set on it and written
    through ``/status``, after which it is replaced by what the server returned. ``self.rs_list`` holds
    the claimed ReplicaSets; one written during the sync replaces its stale copy there (``_fresh``).
    """

    def __init__(self, controller: DeploymentController, d: Obj) -> None:
        self.controller = controller
        self.client = controller.client
        self.recorder = controller.recorder
        self.d = d
        self.stored = copy.deepcopy(d)
        self.rs_list: list[Obj] = []

    @property
    def ns(self) -> str:
        return pt.namespace(self.d)

    # ------------------------------------------------------------------------------------- top level

    async def run(self) -> float | None:
        d = self.d
        selector = pt.selector_of(d)
        if selector is None:
            return None
        if selector.empty:
            message = "This deployment is selecting all pods. A non-empty selector is required."
            self.recorder.event(d, "Warning", "SelectingAll", message)
            status = dict(pt.status(d))
            if pt.int_field(status, "observedGeneration") < pt.int_field(pt.meta(d), "generation"):
                status["observedGeneration"] = pt.int_field(pt.meta(d), "generation")
                await self.write_status(status)
            return None
        self.rs_list = await self.claim_replica_sets(selector)
        if pt.deleting(d):
            await self.sync_status_only()
            return None
        await self.check_paused_conditions()
        if pt.spec(self.d).get("paused"):
            await self.sync()
            return None
        if await self.is_scaling_event():
            await self.sync()
            return None
        if is_rolling(self.d):
            return await self.rollout_rolling()
        return await self.rollout_recreate()

    # -------------------------------------------------------------------------------------- claiming

    async def claim_replica_sets(self, selector: LabelSelector) -> list[Obj]:
        """The ReplicaSets this deployment controls after adopting matching orphans and releasing others."""
        informer = self.controller.replicasets
        owned = informer.by_index(pt.CONTROLLER_INDEX, pt.uid(self.d))
        orphans = [
            rs
            for rs in informer.by_index(pt.ORPHAN_INDEX, self.ns)
            if selector.matches(pt.labels_of(rs)) and not pt.deleting(rs)
        ]
        claimed: list[Obj] = []
        can_adopt: bool | None = None
        for rs in owned:
            if selector.matches(pt.labels_of(rs)):
                claimed.append(copy.deepcopy(rs))
            elif not pt.deleting(self.d):
                await self._set_owner(rs, adopt=False)
        for rs in orphans:
            if pt.deleting(self.d):
                break
            if can_adopt is None:
                fresh = await self.client.get_or_none(kinds.DEPLOYMENT, pt.name(self.d), self.ns)
                can_adopt = fresh is not None and pt.uid(fresh) == pt.uid(self.d) and not pt.deleting(fresh)
            if not can_adopt:
                break
            adopted = await self._set_owner(rs, adopt=True)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def _set_owner(self, rs: Obj, *, adopt: bool) -> Obj | None:
        refs = [r for r in pt.meta(rs).get("ownerReferences") or [] if r.get("uid") != pt.uid(self.d)]
        if adopt:
            refs.append(pt.new_controller_ref(self.d))
        patch = {
            "metadata": {
                "resourceVersion": pt.meta(rs).get("resourceVersion"),
                "ownerReferences": refs or None,
            }
        }
        try:
            return await self.client.patch(kinds.REPLICASET, pt.name(rs), patch, namespace=self.ns)
        except errors.ApiError as exc:
            if exc.not_found or exc.code == 422:
                return None
            raise

    # ------------------------------------------------------------------------------------- revisions

    async def all_replica_sets(self, *, create: bool) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet or None, old ones), revisions synced (``getAllReplicaSetsAndSyncRevision``)."""
        existing = find_new_rs(self.d, self.rs_list)
        old = [rs for rs in self.rs_list if existing is None or pt.uid(rs) != pt.uid(existing)]
        new_revision = pt.max_revision(old) + 1
        if existing is not None:
            new_rs: Obj | None = await self._sync_existing_new_rs(existing, new_revision)
        elif create:
            new_rs = await self._create_new_rs(old, new_revision)
        else:
            new_rs = None
        if new_rs is not None:
            self._remember(new_rs)
        return new_rs, old

    def _rs_annotations(self, rs: Obj, new_revision: int, *, exists: bool) -> dict[str, str]:
        """The annotations ``rs`` should carry as the new ReplicaSet (``SetNewReplicaSetAnnotations``)."""
        result = dict(pt.annotations_of(rs))
        for key, value in pt.annotations_of(self.d).items():
            if key not in pt.ANNOTATIONS_NOT_COPIED:
                result[key] = value
        old_text = result.get(pt.REVISION, "")
        try:
            old_revision = int(old_text or "0")
        except ValueError:
            return result
        if old_revision < new_revision:
            result[pt.REVISION] = str(new_revision)
            if old_text:
                result[pt.REVISION_HISTORY] = _append_history(result.get(pt.REVISION_HISTORY, ""), old_text)
        if not exists:
            result.update(replicas_annotations(self.d))
        return result

    async def _sync_existing_new_rs(self, rs: Obj, new_revision: int) -> Obj:
        wanted = self._rs_annotations(rs, new_revision, exists=True)
        min_ready = pt.int_field(pt.spec(self.d), "minReadySeconds")
        if wanted != pt.annotations_of(rs) or pt.int_field(pt.spec(rs), "minReadySeconds") != min_ready:
            patch = {
                "metadata": {"resourceVersion": pt.meta(rs).get("resourceVersion"), "annotations": wanted},
                "spec": {"minReadySeconds": min_ready or None},  # zero is left out, as the API encodes it
            }
            # as upstream, the deployment's revision follows on the next sync (triggered by this update)
            return await self.client.patch(kinds.REPLICASET, pt.name(rs), patch, namespace=self.ns)
        needs_update = self._set_revision(pt.annotations_of(rs).get(pt.REVISION, ""))
        if progress_deadline(self.d) is not None and get_condition(pt.status(self.d), PROGRESSING) is None:
            message = f"Found new replica set {_quote(pt.name(rs))}"
            set_condition(self._status(), new_condition(PROGRESSING, "True", FOUND_NEW_RS, message))
            needs_update = True
        if needs_update:
            await self.write_status(self._status())
        return rs

    async def _create_new_rs(self, old: list[Obj], new_revision: int) -> Obj | None:
        d = self.d
        template = pt.spec(d).get("template") or {}
        collision_count = pt.status(d).get("collisionCount")
        hash_value = pt.template_hash(template, collision_count if isinstance(collision_count, int) else None)
        new_template = pt.with_hash_label(template, hash_value)
        rs_labels = dict(new_template["metadata"]["labels"])
        new_rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{pt.name(d)}-{hash_value}",
                "namespace": self.ns,
                "labels": rs_labels,
                "ownerReferences": [pt.new_controller_ref(d)],
            },
            "spec": {
                "replicas": 0,
                "selector": pt.selector_with_hash(pt.spec(d).get("selector"), hash_value),
                "template": new_template,
            },
        }
        if pt.int_field(pt.spec(d), "minReadySeconds"):
            new_rs["spec"]["minReadySeconds"] = pt.spec(d)["minReadySeconds"]
        count = new_rs_replicas(d, [*old, new_rs], new_rs)
        new_rs["spec"]["replicas"] = count
        new_rs["metadata"]["annotations"] = self._rs_annotations(new_rs, new_revision, exists=False)
        already_exists = False
        try:
            created = await self.client.create(kinds.REPLICASET, new_rs)
        except errors.ApiError as exc:
            if exc.already_exists:
                found = await self._existing_or_collision(new_rs)
                if found is None:
                    raise
                created, already_exists = found, True
            elif pt.namespace_terminating(exc):
                return None
            else:
                await self._report_create_failure(new_rs, exc)
                raise
        if not already_exists and count > 0:
            self.recorder.event(
                d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {pt.name(created)} to {count}"
            )
        needs_update = self._set_revision(str(new_revision))
        if not already_exists and progress_deadline(d) is not None:
            message = f"Created new replica set {_quote(pt.name(created))}"
            set_condition(self._status(), new_condition(PROGRESSING, "True", NEW_RS_CREATED, message))
            needs_update = True
        if needs_update:
            await self.write_status(self._status())
        return created

    async def _existing_or_collision(self, new_rs: Obj) -> Obj | None:
        """After AlreadyExists: our ReplicaSet (stale cache), or a hash collision (bump collisionCount)."""
        existing = await self.client.get_or_none(kinds.REPLICASET, pt.name(new_rs), self.ns)
        if existing is None:
            return None
        ref = pt.controller_ref(existing)
        same_template = pt.equal_ignore_hash(
            pt.spec(self.d).get("template"), pt.spec(existing).get("template")
        )
        if ref is not None and ref.get("uid") == pt.uid(self.d) and same_template:
            return existing
        status = self._status()
        status["collisionCount"] = pt.int_field(status, "collisionCount") + 1
        await self.write_status(status)
        return None

    async def _report_create_failure(self, new_rs: Obj, exc: errors.ApiError) -> None:
        message = f"Failed to create new replica set {_quote(pt.name(new_rs))}: {exc.message}"
        if progress_deadline(self.d) is not None:
            set_condition(self._status(), new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message))
            with contextlib.suppress(errors.ApiError):
                await self.write_status(self._status())
        self.recorder.event(self.d, "Warning", FAILED_RS_CREATE, message)

    def _set_revision(self, value: str) -> bool:
        annotations = pt.meta(self.d).setdefault("annotations", {})
        if annotations.get(pt.REVISION) == value:
            return False
        annotations[pt.REVISION] = value
        return True

    # ---------------------------------------------------------------------------------------- scaling

    async def scale_rs(self, rs: Obj, new_scale: int, operation: str) -> tuple[bool, Obj]:
        """Resize ``rs`` and refresh its replicas annotations; record the event when the size changed."""
        old_scale = pt.replicas(rs)
        wanted = replicas_annotations(self.d)
        current = pt.annotations_of(rs)
        size_changed = old_scale != new_scale
        if not size_changed and all(current.get(k) == v for k, v in wanted.items()):
            return False, rs
        patch = {
            "metadata": {"resourceVersion": pt.meta(rs).get("resourceVersion"), "annotations": wanted},
            "spec": {"replicas": new_scale},
        }
        updated = await self.client.patch(kinds.REPLICASET, pt.name(rs), patch, namespace=self.ns)
        self._remember(updated)
        if size_changed:
            message = f"Scaled {operation} replica set {pt.name(rs)} to {new_scale} from {old_scale}"
            self.recorder.event(self.d, "Normal", "ScalingReplicaSet", message)
        return size_changed, updated

    async def scale_rs_and_record(self, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        if pt.replicas(rs) == new_scale:
            return False, rs
        return await self.scale_rs(rs, new_scale, "up" if pt.replicas(rs) < new_scale else "down")

    async def scale(self, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        """Upstream's ``scale``: a resize while a rollout may be in flight, spread proportionally."""
        d = self.d
        target = _active_or_latest(new_rs, old_rss)
        if target is not None:
            if pt.replicas(target) != pt.replicas(d):
                await self.scale_rs_and_record(target, pt.replicas(d))
            return
        if _saturated(d, new_rs):
            for rs in active(old_rss):
                await self.scale_rs_and_record(rs, 0)
            return
        if not is_rolling(d):
            return
        all_rss = active([*old_rss, new_rs])
        allowed = pt.replicas(d) + max_surge(d) if pt.replicas(d) > 0 else 0
        to_add = allowed - total_spec(all_rss)
        if to_add > 0:
            all_rss.sort(key=lambda rs: _newer_first(rs))
            all_rss.sort(key=lambda rs: -pt.replicas(rs))
            operation = "up"
        else:
            all_rss.sort(key=pt.creation_key)
            all_rss.sort(key=lambda rs: -pt.replicas(rs))
            operation = "down"
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_rss:
            share = proportion(rs, d, to_add, added) if to_add != 0 else 0
            sizes[pt.name(rs)] = pt.replicas(rs) + share
            added += share
        if to_add != added and all_rss:
            first = pt.name(all_rss[0])
            sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in all_rss:
            await self.scale_rs(rs, sizes[pt.name(rs)], operation)

    async def is_scaling_event(self) -> bool:
        new_rs, old_rss = await self.all_replica_sets(create=False)
        for rs in active([*old_rss, new_rs]):
            desired = desired_annotation(rs)
            if desired is not None and desired != pt.replicas(self.d):
                return True
        return False

    async def sync(self) -> None:
        """Scaling and paused deployments: resize, clean up, report (no rollout)."""
        new_rs, old_rss = await self.all_replica_sets(create=False)
        await self.scale(new_rs, old_rss)
        new_rs, old_rss = self._fresh(new_rs), self._fresh_all(old_rss)
        if pt.spec(self.d).get("paused"):
            await self.cleanup(old_rss)
        await self.sync_status([*old_rss, new_rs], new_rs)

    async def sync_status_only(self) -> None:
        new_rs, old_rss = await self.all_replica_sets(create=False)
        await self.sync_status([*old_rss, new_rs], new_rs)

    async def check_paused_conditions(self) -> None:
        if progress_deadline(self.d) is None:
            return
        cond = get_condition(pt.status(self.d), PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused = bool(pt.spec(self.d).get("paused"))
        paused_cond = cond is not None and cond.get("reason") == PAUSED
        if paused and not paused_cond:
            condition = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused")
        elif not paused and paused_cond:
            condition = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed")
        else:
            return
        set_condition(self._status(), condition)
        await self.write_status(self._status())

    # ---------------------------------------------------------------------------------------- rolling

    async def rollout_rolling(self) -> float | None:
        new_rs, old_rss = await self.all_replica_sets(create=True)
        if new_rs is None:
            return None
        if await self.reconcile_new_rs([*old_rss, new_rs], new_rs):
            return await self.sync_rollout_status(self._fresh_all([*old_rss, new_rs]), self._fresh(new_rs))
        if await self.reconcile_old_rss([*old_rss, new_rs], active(old_rss), new_rs):
            return await self.sync_rollout_status(self._fresh_all([*old_rss, new_rs]), new_rs)
        if deployment_complete(self.d, pt.status(self.d)):
            await self.cleanup(old_rss)
        return await self.sync_rollout_status([*old_rss, new_rs], new_rs)

    async def reconcile_new_rs(self, all_rss: list[Obj], new_rs: Obj) -> bool:
        want = pt.replicas(self.d)
        if pt.replicas(new_rs) == want:
            return False
        if pt.replicas(new_rs) < want:
            want = new_rs_replicas(self.d, list(all_rss), new_rs)
        scaled, _ = await self.scale_rs_and_record(new_rs, want)
        return scaled

    async def reconcile_old_rss(self, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj) -> bool:
        if total_spec(old_rss) == 0:
            return False
        d = self.d
        min_available = pt.replicas(d) - max_unavailable(d)
        new_unavailable = pt.replicas(new_rs) - pt.int_field(pt.status(new_rs), "availableReplicas")
        max_scaled_down = total_spec(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old_rss, cleaned = await self._cleanup_unhealthy(old_rss, max_scaled_down)
        scaled_down = await self._scale_down_old_for_rolling([*old_rss, new_rs], old_rss)
        return cleaned + scaled_down > 0

    async def _cleanup_unhealthy(self, old_rss: list[Obj], max_cleanup: int) -> tuple[list[Obj], int]:
        """Scale down old ReplicaSets' unavailable pods first: they serve nothing anyway."""
        old_rss = sorted(old_rss, key=pt.creation_key)
        total = 0
        for i, rs in enumerate(old_rss):
            if total >= max_cleanup:
                break
            unavailable = pt.replicas(rs) - pt.int_field(pt.status(rs), "availableReplicas")
            if pt.replicas(rs) == 0 or unavailable <= 0:
                continue
            count = min(max_cleanup - total, unavailable)
            _, old_rss[i] = await self.scale_rs_and_record(rs, pt.replicas(rs) - count)
            total += count
        return old_rss, total

    async def _scale_down_old_for_rolling(self, all_rss: list[Obj], old_rss: list[Obj]) -> int:
        d = self.d
        min_available = pt.replicas(d) - max_unavailable(d)
        available = total_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        wanted = available - min_available
        total = 0
        for rs in sorted(old_rss, key=pt.creation_key):
            if total >= wanted:
                break
            if pt.replicas(rs) == 0:
                continue
            count = min(pt.replicas(rs), wanted - total)
            await self.scale_rs_and_record(rs, pt.replicas(rs) - count)
            total += count
        return total

    # --------------------------------------------------------------------------------------- recreate

    async def rollout_recreate(self) -> float | None:
        new_rs, old_rss = await self.all_replica_sets(create=False)
        scaled_down = False
        for i, rs in enumerate(old_rss):
            if pt.replicas(rs) == 0:
                continue
            scaled, old_rss[i] = await self.scale_rs_and_record(rs, 0)
            scaled_down |= scaled
        if scaled_down:
            return await self.sync_rollout_status([*old_rss, new_rs], new_rs)
        if self._old_pods_running(new_rs, old_rss):
            return await self.sync_rollout_status([*old_rss, new_rs], new_rs)
        if new_rs is None:
            new_rs, old_rss = await self.all_replica_sets(create=True)
        if new_rs is not None:
            _, new_rs = await self.scale_rs_and_record(new_rs, pt.replicas(self.d))
        if deployment_complete(self.d, pt.status(self.d)):
            await self.cleanup(old_rss)
        return await self.sync_rollout_status([*old_rss, new_rs], new_rs)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        if total_status(old_rss, "replicas") > 0:
            return True
        pods = self.controller.pods
        for rs in old_rss:
            for pod in pods.by_index(pt.CONTROLLER_INDEX, pt.uid(rs)):
                if pt.status(pod).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # ---------------------------------------------------------------------------------------- cleanup

    async def cleanup(self, old_rss: list[Obj]) -> None:
        """Delete the oldest zero-sized old ReplicaSets beyond ``revisionHistoryLimit``."""
        limit = pt.spec(self.d).get("revisionHistoryLimit")
        if not isinstance(limit, int):
            return
        alive = [rs for rs in old_rss if not pt.deleting(rs)]
        excess = len(alive) - limit
        if excess <= 0:
            return
        alive.sort(key=lambda rs: (pt.revision(rs), *pt.creation_key(rs)))
        for rs in alive[:excess]:
            st = pt.status(rs)
            if (
                pt.int_field(st, "replicas") != 0
                or pt.replicas(rs) != 0
                or pt.int_field(pt.meta(rs), "generation") > pt.int_field(st, "observedGeneration")
            ):
                continue
            await self.client.delete(kinds.REPLICASET, pt.name(rs), self.ns, propagation="Background")

    # ----------------------------------------------------------------------------------------- status

    def _status(self) -> Obj:
        status = self.d.get("status")
        if not isinstance(status, dict):
            status = self.d["status"] = {}
        return status

    def calculate_status(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj:
        d = self.d
        available = total_status(all_rss, "availableReplicas")
        status: Obj = {
            "observedGeneration": pt.int_field(pt.meta(d), "generation"),
            "replicas": total_status(all_rss, "replicas"),
            "updatedReplicas": total_status([new_rs], "replicas"),
            "readyReplicas": total_status(all_rss, "readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total_spec(all_rss) - available),
            "conditions": copy.deepcopy(pt.status(d).get("conditions") or []),
        }
        if isinstance(pt.status(d).get("collisionCount"), int):
            status["collisionCount"] = pt.status(d)["collisionCount"]
        if available >= pt.replicas(d) - max_unavailable(d):
            cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.")
        else:
            cond = new_condition(
                AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability."
            )
        set_condition(status, cond)
        return status

    async def sync_status(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> None:
        status = self.calculate_status(all_rss, new_rs)
        if compact_status(status) != compact_status(pt.status(self.d)):
            await self.write_status(status)

    async def sync_rollout_status(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> float | None:
        """Status plus the Progressing condition; returns when to look again for the progress deadline."""
        d = self.d
        status = self.calculate_status(all_rss, new_rs)
        deadline = progress_deadline(d)
        if deadline is None:
            remove_condition(status, PROGRESSING)
        current = get_condition(pt.status(d), PROGRESSING)
        complete_before = (
            pt.int_field(status, "replicas") == pt.int_field(status, "updatedReplicas")
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        if deadline is not None and not complete_before:
            self._update_progressing(status, new_rs, current)
        failure = self._replica_failure(all_rss, new_rs)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, REPLICA_FAILURE)
        if compact_status(status) != compact_status(pt.status(d)):
            await self.write_status(status)
        return self._requeue_stuck(status)

    def _update_progressing(self, status: Obj, new_rs: Obj | None, current: Obj | None) -> None:
        d = self.d
        subject = f"ReplicaSet {_quote(pt.name(new_rs))}" if new_rs else f"Deployment {_quote(pt.name(d))}"
        if deployment_complete(d, status):
            message = f"{subject} has successfully progressed."
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message))
        elif deployment_progressing(d, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.")
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status):
            message = f"{subject} has timed out progressing."
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, message))

    @staticmethod
    def _replica_failure(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj | None:
        ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
        for rs in ordered:
            if rs is None:
                continue
            for cond in pt.status(rs).get("conditions") or []:
                if cond.get("type") == REPLICA_FAILURE:
                    return {
                        "type": REPLICA_FAILURE,
                        "status": cond.get("status"),
                        "lastUpdateTime": cond.get("lastTransitionTime"),
                        "lastTransitionTime": cond.get("lastTransitionTime"),
                        "reason": cond.get("reason"),
                        "message": cond.get("message"),
                    }
        return None

    def _requeue_stuck(self, status: Obj) -> float | None:
        """When the progress deadline of a rollout in flight passes (``requeueStuckDeployment``)."""
        cond = get_condition(status, PROGRESSING)
        if progress_deadline(self.d) is None or cond is None:
            return None
        if deployment_complete(self.d, status) or cond.get("reason") in (TIMED_OUT, NEW_RS_AVAILABLE):
            # a complete rollout that loses a pod later never times out: nothing to check
            return None
        remaining = deadline_in(self.d, status)
        if remaining is None:
            return None
        return remaining + 0.5 if remaining > 0 else 1.0

    async def write_status(self, status: Obj) -> None:
        """Write ``status`` (and a changed revision annotation) through ``/status``, guarded by the RV."""
        stored = pt.status(self.stored)
        new = compact_status(status)
        patch: Obj = {
            "metadata": {"resourceVersion": pt.meta(self.stored).get("resourceVersion")},
            "status": {key: new.get(key) for key in {**stored, **new}},
        }
        revision = pt.annotations_of(self.d).get(pt.REVISION)
        if revision is not None and revision != pt.annotations_of(self.stored).get(pt.REVISION):
            patch["metadata"]["annotations"] = {pt.REVISION: revision}
        result = await self.client.patch(
            kinds.DEPLOYMENT, pt.name(self.d), patch, namespace=self.ns, subresource="status"
        )
        result.setdefault("apiVersion", "apps/v1")
        result.setdefault("kind", "Deployment")
        self.stored = result
        self.d = copy.deepcopy(result)

    # -------------------------------------------------------------------------------------- bookkeeping

    def _remember(self, updated: Obj) -> None:
        """Keep the latest copy of a ReplicaSet written during this sync (or add a created one)."""
        for i, rs in enumerate(self.rs_list):
            if pt.uid(rs) == pt.uid(updated):
                self.rs_list[i] = updated
                return
        self.rs_list.append(updated)

    def _fresh(self, rs: Obj | None) -> Obj | None:
        """The latest copy of ``rs`` (ReplicaSets written during the sync replace their stale copies)."""
        if rs is None:
            return None
        for candidate in self.rs_list:
            if pt.uid(candidate) == pt.uid(rs):
                return candidate
        return rs

    def _fresh_all(self, rss: Sequence[Obj | None]) -> list[Obj]:
        return [fresh for fresh in (self._fresh(rs) for rs in rss) if fresh is not None]


def _append_history(history: str, old_revision: str) -> str:
    """Append ``old_revision`` to a ``revision-history`` annotation, dropping the oldest past 2000 chars."""
    if not history:
        return old_revision
    revisions = history.split(",")
    total = len(history) + len(old_revision) + 1
    start = 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(revisions):
        total -= len(revisions[start]) + 1
        start += 1
    if total > MAX_REVISION_HISTORY_CHARS:
        return history
    return ",".join([*revisions[start:], old_revision])


def _newer_first(rs: Obj) -> tuple[float, str]:
    created = pt.parse_time(pt.meta(rs).get("creationTimestamp"))
    return (-(created.timestamp() if created else 0.0), pt.name(rs))


def _active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only active ReplicaSet, or the newest when none is active (upstream's ``FindActiveOrLatest``)."""
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=pt.creation_key, reverse=True)
    live = active([*olds, new_rs])
    if not live:
        return new_rs if new_rs is not None else olds[0]
    if len(live) == 1:
        return live[0]
    return None


def _saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    want = pt.replicas(d)
    return (
        pt.replicas(rs) == want
        and desired_annotation(rs) == want
        and pt.int_field(pt.status(rs), "availableReplicas") == want
    )
