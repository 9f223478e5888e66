"""What every traffic router shares: its error type, the Rollout facts it reads, ownership of the objects
it creates, discovery of the custom resource types it edits, and read-modify-patch writes.

Routers edit objects other people own too (a VirtualService, an HTTPRoute), so a write is a minimal merge
patch computed against the object just read, guarded by its ``resourceVersion`` and retried on a
conflict; and a reconcile that changes nothing writes nothing (a write would wake every watcher and bump
the object's revision). Provider types (TrafficSplit, VirtualService, HTTPRoute, ...) are custom resources
that a cluster serves only once they are installed, at versions that vary; :class:`CustomType` finds the
version the cluster serves, or explains that it serves none.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from tugboat.kube import errors as kube_errors
from tugboat.kube import mergepatch
from tugboat.kube.client import Client, Obj
from tugboat.kube.kinds import Kind
from tugboat.rollouts import defaults, validation
from tugboat.util import jsondata

HASH_LABEL = "rollouts-pod-template-hash"
MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"

_WRITE_ATTEMPTS = 4


class RouterError(Exception):
    """A misconfiguration the Rollout should report (upstream words its ``InvalidSpec`` messages the same
    way): a referenced object or a route that does not exist, a provider type the cluster does not
    serve, an object owned by someone else. Retrying does not help until the user changes something.

    Transient API failures are not router errors: they surface as :class:`tugboat.kube.errors.KubeError`.
    """


def invalid(path: str, value: Any, detail: str) -> RouterError:
    """A :class:`RouterError` worded like Kubernetes' ``field.Error`` (``<path>: Invalid value: ...``)."""
    return RouterError(str(validation.FieldError(path, "Invalid value", value, detail)))


def not_found(kind: Kind, name: str) -> RouterError:
    """The API server's wording for a missing object: ``ingresses.networking.k8s.io "x" not found``."""
    return RouterError(f'{kind} "{name}" not found')


def text(value: Any) -> str:
    """A config scalar as an annotation or label value (YAML may give numbers and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def listing(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------------------- the Rollout


@dataclass(frozen=True)
class RolloutRef:
    """The facts about one Rollout that routers need."""

    name: str
    namespace: str
    uid: str
    canary_service: str
    stable_service: str
    routing: Mapping[str, Any]
    steps: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def of(cls, ro: Mapping[str, Any], *, default_namespace: str) -> RolloutRef:
        meta = mapping(ro.get("metadata"))
        canary = defaults.canary(ro) or {}
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or default_namespace),
            uid=str(meta.get("uid") or ""),
            canary_service=str(canary.get("canaryService") or ""),
            stable_service=str(canary.get("stableService") or ""),
            routing=defaults.traffic_routing(ro) or {},
            steps=tuple(mapping(step) for step in listing(canary.get("steps"))),
        )

    @property
    def max_weight(self) -> int | None:
        """``trafficRouting.maxTrafficWeight`` when set (only nginx and plugins honour it)."""
        value = self.routing.get("maxTrafficWeight")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def managed_routes(self) -> frozenset[str]:
        """Names of the routes the controller may create and delete (``trafficRouting.managedRoutes``)."""
        names = (mapping(route).get("name") for route in listing(self.routing.get("managedRoutes")))
        return frozenset(name for name in names if isinstance(name, str) and name)

    def owner_reference(self) -> Obj:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def controls(self, obj: Mapping[str, Any]) -> bool:
        """Whether this Rollout is the controller owner of ``obj``."""
        refs = listing(mapping(obj.get("metadata")).get("ownerReferences"))
        return any(mapping(ref).get("controller") and mapping(ref).get("uid") == self.uid for ref in refs)


# ---------------------------------------------------------------------------------------- discovery

_served: weakref.WeakKeyDictionary[Client, dict[tuple[str, str], str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class CustomType:
    """A provider's resource type, served at one of ``versions`` (in order of preference) once installed."""

    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    used_by: str  # the Rollout setting that needs it, for the error message

    async def resolve(self, client: Client) -> Kind:
        """The :class:`Kind` at the version the cluster serves; :class:`RouterError` when none is served."""
        cache = _served.setdefault(client, {})
        version = cache.get((self.group, self.plural))
        if version is None:
            version = await self._discover(client)
            cache[(self.group, self.plural)] = version
        return Kind(self.group, version, self.kind, self.plural)

    def forget(self, client: Client) -> None:
        """Drop the remembered version (the type may have been uninstalled)."""
        _served.get(client, {}).pop((self.group, self.plural), None)

    async def _discover(self, client: Client) -> str:
        for version in self.versions:
            try:
                doc = await client.request("GET", f"/apis/{self.group}/{version}")
            except kube_errors.ApiError as exc:
                if exc.not_found:
                    continue
                raise
            names = {mapping(res).get("name") for res in listing(mapping(doc).get("resources"))}
            if self.plural in names:
                return version
        raise RouterError(
            f"{self.kind} ({self.plural}.{self.group}, versions {', '.join(self.versions)}) is not served by "
            f"the cluster: install its CustomResourceDefinition to use {self.used_by}"
        )

    async def get(self, client: Client, name: str, namespace: str) -> tuple[Kind, Obj | None]:
        """The object (``None`` when missing), checking again that the type is still served when missing."""
        kind = await self.resolve(client)
        obj = await client.get_or_none(kind, name, namespace)
        if obj is None:
            self.forget(client)
            kind = await self.resolve(client)
        return kind, obj


# ------------------------------------------------------------------------------------------- writes


async def patch_to(client: Client, kind: Kind, live: Obj, desired: Obj) -> Obj:
    """Write what differs between ``live`` and ``desired`` as one merge patch guarded by ``live``'s
    resourceVersion (a conflict raises); nothing when they are equal. Returns the object as stored."""
    patch = mergepatch.create(live, desired)
    if not patch:
        return live
    meta = mapping(live.get("metadata"))
    patch.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
    try:
        return await client.patch(kind, str(meta.get("name")), patch, namespace=meta.get("namespace"))
    except kube_errors.ApiError as exc:
        _raise_if_rejected(exc, kind, str(meta.get("name")))
        raise


async def update(
    client: Client,
    ctype: CustomType | Kind,
    name: str,
    namespace: str,
    change: Callable[[Obj], Obj],
    *,
    live: Obj | None = None,
) -> Obj:
    """Read ``name`` (or start from ``live``, just read), let ``change`` edit a copy (it may raise
    :class:`RouterError`) and write the difference; re-read and retry when someone else wrote in between.
    A missing object is a RouterError."""
    for attempt in range(_WRITE_ATTEMPTS):
        if live is not None and attempt == 0:
            kind = ctype if isinstance(ctype, Kind) else await ctype.resolve(client)
        elif isinstance(ctype, CustomType):
            kind, live = await ctype.get(client, name, namespace)
        else:
            kind, live = ctype, await client.get_or_none(ctype, name, namespace)
        if live is None:
            raise not_found(kind, name)
        try:
            return await patch_to(client, kind, live, change(jsondata.clone(live)))
        except kube_errors.ApiError as exc:
            if not exc.conflict or attempt == _WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def create(client: Client, kind: Kind, obj: Obj) -> Obj | None:
    """Create ``obj``; ``None`` when it already exists (someone was quicker: the caller updates it)."""
    try:
        return await client.create(kind, obj)
    except kube_errors.ApiError as exc:
        if exc.already_exists:
            return None
        _raise_if_rejected(exc, kind, str(mapping(obj.get("metadata")).get("name")))
        raise


def _raise_if_rejected(exc: kube_errors.ApiError, kind: Kind, name: str) -> None:
    """An object the API server refuses as invalid is a configuration problem, not a transient one."""
    if exc.code in (400, 422):
        raise RouterError(f'{kind} "{name}" was rejected: {exc.message}') from exc


# ------------------------------------------------------------------------------------------ helpers


class Failing:
    """A router that cannot work (an unsupported provider, a broken configuration): every call raises
    its :class:`RouterError`, so the controller reports it where it reports the other router errors."""

    def __init__(self, type_: str, message: str) -> None:
        self.type = type_
        self.message = message

    def _fail(self) -> NoReturn:
        raise RouterError(self.message)

    async def update_hash(self, canary_hash: str, stable_hash: str) -> None:
        self._fail()

    async def set_weight(self, weight: int) -> None:
        self._fail()

    async def verify_weight(self, weight: int) -> bool | None:
        self._fail()

    async def remove_managed_routes(self) -> None:
        self._fail()
