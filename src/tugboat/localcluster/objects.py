"""The REST semantics of the local cluster: what create, read, update, patch and delete mean.

Everything that makes the server behave like kube-apiserver regardless of transport lives here, apart
from HTTP: system metadata, generation, status and scale subresources, optimistic concurrency,
defaulting and validation, field ownership and server-side apply, dry runs, finalizers and the start of
graceful and cascading deletion (the garbage collector finishes it), namespace lifecycle, CRDs.
Operations raise :class:`~tugboat.localcluster.errors.ApiError`; the HTTP layer renders them.

Writes are computed synchronously on the event loop from the store's latest state and queued in one
step, so concurrent requests never interleave inside a read-modify-write; only the commit is awaited.
"""

from __future__ import annotations

import base64
import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

import orjson
import yaml

from tugboat.kube import errors as kube_errors
from tugboat.kube import jsonpatch, mergepatch, selectors, strategicmerge
from tugboat.localcluster import (
    crdschema,
    defaults,
    errors,
    fieldmanager,
    metadata,
    validation,
)
from tugboat.localcluster.resources import Registry, ResourceType, ScalePaths
from tugboat.localcluster.storage import (
    Compacted,
    Entry,
    Event,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    Store,
)
from tugboat.util import jsondata

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

_SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_NODE_PORTS = range(30000, 32768)


@dataclass
class WriteOptions:
    """Query parameters shared by every write."""

    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Warn"
    force: bool = False
    user_agent: str = ""


@dataclass
class Result:
    """The outcome of a write: the object as stored (or as it would be, on a dry run)."""

    obj: dict[str, Any]
    created: bool = False
    warnings: list[str] = field(default_factory=list)
    accepted: bool = False  # a deletion that is still pending (finalizers, graceful deletion)
    raw: bytes | None = None  # the stored JSON of ``obj``, when ``obj`` is the store's (shared) object

    @classmethod
    def of(cls, entry: Entry, **kwargs: Any) -> Result:
        """A result carrying a stored entry as is: ``obj`` is shared and must not be mutated."""
        return cls(entry.obj, raw=entry.raw, **kwargs)


@dataclass
class ListResult:
    items: list[Entry]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


def _default_manager(options: WriteOptions) -> str:
    if options.field_manager:
        return options.field_manager
    agent = options.user_agent.split("/", 1)[0].strip()
    return agent or "unknown"


def _strip_for_compare(obj: dict[str, Any]) -> dict[str, Any]:
    clone = dict(obj)
    meta = dict(clone.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    clone["metadata"] = meta
    return clone


def _spec_part(obj: dict[str, Any], *, keep_annotations: bool, exclude_status: bool) -> dict[str, Any]:
    part = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    if exclude_status:
        part.pop("status", None)
    if keep_annotations:
        part["__annotations"] = (obj.get("metadata") or {}).get("annotations") or {}
    return part


def _namespace_finalizers(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """A Namespace's ``spec.finalizers``, which keep it (like metadata finalizers) until finalized."""
    if rt.builtin and rt.resource == "namespaces":
        return list((obj.get("spec") or {}).get("finalizers") or [])
    return []


def _walk(obj: Any, path: str) -> Any:
    current = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    current = obj
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[parts[-1]] = value


class ObjectAPI:
    """Kubernetes object semantics over a :class:`Store`, for every type in a :class:`Registry`."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.on_crd_change: Callable[[dict[str, Any] | None, str], None] | None = None

    # ------------------------------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, namespace: str, name: str) -> Entry:
        entry = self.store.get(rt.key(namespace, name))
        if entry is None:
            raise errors.not_found(rt.resource, rt.group, name)
        return entry

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListResult:
        labels, fields = self.parse_selectors(rt, label_selector, field_selector)
        prefix = rt.list_prefix(namespace)
        start = ""
        if continue_token:
            rev, start = self._decode_continue(continue_token)
        elif resource_version and resource_version_match == "Exact":
            rev = self._parse_rv(resource_version)
        else:
            rev = self.store.current_rev
        try:
            snapshot = self.store.list_at(prefix, rev)
        except Compacted as exc:
            if continue_token:
                raise errors.gone(
                    "The provided continue parameter is too old to display a consistent list result. You "
                    "can start a new list without the continue parameter, or use the continue token in "
                    "this response to retrieve the remainder of the results."
                ) from exc
            raise errors.gone(str(exc)) from exc
        matched = [
            entry for key, entry in snapshot if key > start and self.matches(rt, entry.obj, labels, fields)
        ]
        if limit > 0 and len(matched) > limit:
            page = matched[:limit]
            last_key = rt.key(metadata.namespace_of(page[-1].obj), metadata.name_of(page[-1].obj))
            token = self._encode_continue(rev, last_key)
            return ListResult(page, rev, token, len(matched) - limit)
        return ListResult(matched, rev)

    def parse_selectors(
        self, rt: ResourceType, label_selector: str, field_selector: str
    ) -> tuple[selectors.LabelSelector | None, selectors.FieldSelector | None]:
        try:
            labels = selectors.parse_labels(label_selector) if label_selector else None
            fields = selectors.parse_fields(field_selector) if field_selector else None
            if fields is not None:
                selectors.check_fields(rt.group, rt.resource, fields)
        except kube_errors.SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc
        return labels, fields

    @staticmethod
    def matches(
        rt: ResourceType,
        obj: dict[str, Any],
        labels: selectors.LabelSelector | None,
        fields: selectors.FieldSelector | None,
    ) -> bool:
        if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels") or {}):
            return False
        return fields is None or fields.matches(selectors.object_fields(rt.group, rt.resource, obj))

    @staticmethod
    def _encode_continue(rev: int, key: str) -> str:
        return base64.urlsafe_b64encode(orjson.dumps({"rv": rev, "start": key})).decode()

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, str]:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
            return int(data["rv"]), str(data["start"])
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.bad_request(f"invalid continue token: {exc}") from exc

    @staticmethod
    def _parse_rv(text: str) -> int:
        try:
            return int(text)
        except ValueError as exc:
            raise errors.bad_request(f'invalid resource version "{text}"') from exc

    # -------------------------------------------------------------------------------------- create

    async def create(
        self, rt: ResourceType, namespace: str, body: dict[str, Any], options: WriteOptions
    ) -> Result:
        obj = self._check_body(rt, namespace, body)
        meta = metadata.meta(obj)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                self._raise_invalid(
                    rt, "", [validation.required("metadata.name", "name or generateName is required")]
                )
            meta["name"] = f"{prefix}{metadata.random_suffix()}"
        name = meta["name"]
        self._check_namespace_writable(rt, namespace, name)
        self._reset_system_fields(rt, obj)
        warnings = self._prepare(rt, obj, None, options)
        self._set_managed_fields(rt, None, obj, options, subresource=None)
        if options.dry_run:
            if self.store.latest(rt.key(namespace, name)) is not None:
                raise errors.already_exists(rt.resource, rt.group, name)
            return Result(obj, created=True, warnings=warnings)
        try:
            future = self.store.create(rt.key(namespace, name), obj)
        except KeyExists as exc:
            raise errors.already_exists(rt.resource, rt.group, name) from exc
        event = await future
        self._after_write(rt, event)
        return Result.of(event.entry, created=True, warnings=warnings)

    def _check_body(self, rt: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON or YAML object")
        obj = body
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rt.api_version:
            alt = self.registry.get(rt.group, api_version.split("/")[-1], rt.resource)
            if alt is None or (api_version.split("/")[0] if "/" in api_version else "") != rt.group:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API version "
                    f"({rt.api_version})"
                )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _check_namespace_writable(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns_type = self.registry.get("", "v1", "namespaces")
        assert ns_type is not None
        ns = self.store.latest(ns_type.key("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if metadata.deleting(ns.obj):
            raise errors.ApiError(
                403,
                "Forbidden",
                f'{errors.qualified(rt.resource, rt.group)} "{name}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
                details={
                    "name": name,
                    "group": rt.group,
                    "kind": rt.resource,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def _reset_system_fields(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = metadata.meta(obj)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = metadata.rfc3339()
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        if rt.generation or not rt.builtin:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.has_status and rt.resource not in ("nodes", "namespaces", "customresourcedefinitions"):
            obj.pop("status", None)

    # ----------------------------------------------------------------------------- shared preparation

    def _prepare(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, options: WriteOptions
    ) -> list[str]:
        """Default, prune and validate ``obj`` in place; returns warnings."""
        warnings: list[str] = []
        name = metadata.name_of(obj)
        for label_key, label_value in ((obj.get("metadata") or {}).get("labels") or {}).items():
            if not isinstance(label_value, str):
                raise errors.bad_request(f"metadata.labels[{label_key}]: label values must be strings")
        meta_causes = validation.validate_object_meta(rt.group, rt.kind, obj)
        if meta_causes:
            self._raise_invalid(rt, name, meta_causes)
        meta = metadata.meta(obj)
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if key in meta and not meta[key]:
                del meta[key]  # Go's omitempty: removing the last label leaves no "labels": {} behind
        if rt.builtin:
            defaults.apply_defaults(
                rt.group,
                rt.kind,
                obj,
                allocate_cluster_ip=self._allocate_cluster_ip,
                allocate_node_port=self._allocate_node_port,
            )
            if rt.resource == "customresourcedefinitions":
                self._prepare_crd(obj)
            causes = validation.validate(rt.group, rt.kind, obj, old=old)
            if causes:
                self._raise_invalid(rt, name, causes)
            return warnings
        schema = rt.schema
        if schema is not None:
            unknown = schema.unknown_fields(obj)
            if unknown and options.field_validation == "Strict":
                detail = ", ".join(f'unknown field "{f}"' for f in unknown)
                raise errors.bad_request(f"strict decoding error: {detail}")
            if unknown and options.field_validation == "Warn":
                warnings.extend(f'unknown field "{f}"' for f in unknown)
            schema.prune(obj)
            schema.apply_defaults(obj)
            causes = schema.validate(obj)
            if causes:
                text = (
                    "; ".join(f"{c.field}: {c.message}" for c in causes)
                    if len(causes) > 1
                    else (f"{causes[0].field}: {causes[0].message}")
                )
                full = f'{rt.kind}.{rt.group} "{name}" is invalid: ' + (
                    f"[{text}]" if len(causes) > 1 else text
                )
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    name,
                    full,
                    errors.field_causes(causes),
                )
        return warnings

    @staticmethod
    def _raise_invalid(rt: ResourceType, name: str, causes: list[validation.Cause]) -> NoReturn:
        """Refuse a write with a 422 whose message and causes read as kube-apiserver's."""
        raise errors.invalid(
            rt.kind,
            rt.group,
            name,
            validation.invalid_message(rt.kind, rt.group, name, causes),
            errors.field_causes(causes),
        )

    def _prepare_crd(self, obj: dict[str, Any]) -> None:
        causes = crdschema.validate_crd(obj)
        if causes:
            name = metadata.name_of(obj)
            text = ", ".join(f"{c.field}: {c.message}" for c in causes)
            raise errors.invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                name,
                f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: '
                + (f"[{text}]" if len(causes) > 1 else text),
                errors.field_causes(causes),
            )
        self._check_crd_names_unique(obj)
        status = obj.get("status")
        defaulted = crdschema.crd_defaults(obj, now=metadata.rfc3339())
        obj.clear()
        obj.update(defaulted)
        if status and status.get("conditions"):
            # Keep the original transition times of conditions already reported.
            old_times = {c.get("type"): c.get("lastTransitionTime") for c in status["conditions"]}
            for cond in obj.get("status", {}).get("conditions", []):
                if old_times.get(cond.get("type")):
                    cond["lastTransitionTime"] = old_times[cond["type"]]

    def _check_crd_names_unique(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        group, names = spec.get("group"), spec.get("names") or {}
        wanted = {names.get("plural")} | set(names.get("shortNames") or [])
        for rt in self.registry.all():
            if rt.group != group or rt.crd_name == metadata.name_of(crd):
                continue
            taken = {rt.resource, *rt.short_names}
            clash = wanted & taken
            if clash:
                raise errors.invalid(
                    "CustomResourceDefinition",
                    "apiextensions.k8s.io",
                    metadata.name_of(crd),
                    f"names {sorted(str(c) for c in clash)} are already in use in group {group}",
                    [],
                )

    def _allocate_cluster_ip(self) -> str:
        svc = self.registry.get("", "v1", "services")
        assert svc is not None
        used = {
            str((e.obj.get("spec") or {}).get("clusterIP")) for _, e in self.store.scan(svc.storage_prefix)
        }
        for offset in range(10, _SERVICE_CIDR.num_addresses - 1):
            candidate = str(_SERVICE_CIDR.network_address + offset)
            if candidate not in used:
                return candidate
        raise errors.internal("the service IP range is exhausted")

    def _allocate_node_port(self) -> int:
        svc = self.registry.get("", "v1", "services")
        assert svc is not None
        used = {
            p.get("nodePort")
            for _, e in self.store.scan(svc.storage_prefix)
            for p in (e.obj.get("spec") or {}).get("ports") or []
        }
        for port in _NODE_PORTS:
            if port not in used:
                return port
        raise errors.internal("the node port range is exhausted")

    def _list_info(self, rt: ResourceType) -> fieldmanager.ListInfo:
        if rt.builtin:
            return fieldmanager.builtin_list_info(rt.group, rt.kind)
        schema = rt.schema
        if schema is None:
            return lambda path: None
        return schema.list_info

    def _set_managed_fields(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        options: WriteOptions,
        *,
        subresource: str | None,
    ) -> None:
        updated = fieldmanager.update(
            old,
            new,
            manager=_default_manager(options),
            api_version=rt.api_version,
            list_info=self._list_info(rt),
            now=metadata.rfc3339(),
            subresource=subresource,
            ignore_status=rt.has_status and subresource is None,
        )
        if updated is not new:
            new.clear()
            new.update(updated)

    # ---------------------------------------------------------------------------------- update, patch

    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: dict[str, Any],
        options: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> Result:
        key = rt.key(namespace, name)
        current = self.store.latest(key)
        if current is None:
            raise errors.not_found(rt.resource, rt.group, name)
        obj = self._check_body(rt, namespace, body)
        body_name = metadata.name_of(obj)
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        metadata.meta(obj)["name"] = name
        wanted_rv = str(metadata.meta(obj).get("resourceVersion") or "")
        if wanted_rv and wanted_rv != str(current.rev):
            raise errors.conflict(rt.resource, rt.group, name)
        return await self._write_update(rt, key, current, obj, options, subresource=subresource)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        options: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> Result:
        key = rt.key(namespace, name)
        current = self.store.latest(key)
        if content_type == APPLY_PATCH:
            return await self._apply(rt, namespace, name, key, current, raw, options, subresource)
        if current is None:
            raise errors.not_found(rt.resource, rt.group, name)
        patched = self.patched(rt, current.copy(), content_type, raw)
        patched_rv = str((patched.get("metadata") or {}).get("resourceVersion") or "")
        if patched_rv and patched_rv != str(current.rev):
            raise errors.conflict(rt.resource, rt.group, name)
        if metadata.name_of(patched) != name:
            raise errors.bad_request("metadata.name: the name of a patched object cannot change")
        obj = self._check_body(rt, namespace, patched)
        return await self._write_update(rt, key, current, obj, options, subresource=subresource)

    def patched(
        self, rt: ResourceType, base: dict[str, Any], content_type: str, raw: bytes
    ) -> dict[str, Any]:
        """``base`` with a JSON, merge or strategic merge patch applied (no write)."""
        try:
            document = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"the patch is not valid JSON: {exc}") from exc
        try:
            if content_type == JSON_PATCH:
                if not isinstance(document, list):
                    raise errors.bad_request("a JSON patch must be a list of operations")
                result = jsonpatch.apply(base, document)
            elif content_type == MERGE_PATCH:
                result = mergepatch.apply(base, document)
            elif content_type == STRATEGIC_PATCH:
                if not rt.builtin:
                    raise errors.ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: "
                        "application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml",
                    )
                if not isinstance(document, dict):
                    raise errors.bad_request("a strategic merge patch must be an object")
                result = strategicmerge.apply(base, document, group=rt.group, kind=rt.kind)
            else:
                raise errors.ApiError(
                    415, "UnsupportedMediaType", f"the patch type {content_type!r} is not supported"
                )
        except kube_errors.PatchError as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from exc
        if not isinstance(result, dict):
            raise errors.bad_request("the patched object is not an object")
        return result

    async def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        key: str,
        current: Entry | None,
        raw: bytes,
        options: WriteOptions,
        subresource: str | None,
    ) -> Result:
        if not options.field_manager:
            raise errors.bad_request(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
                "apply patch"
            )
        try:
            applied = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from exc
        if not isinstance(applied, dict):
            raise errors.bad_request("the apply patch must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply patch")
        applied_name = metadata.name_of(applied)
        if applied_name and applied_name != name:
            raise errors.bad_request(
                f"the name of the object ({applied_name}) does not match the name on the URL ({name})"
            )
        applied = self._check_body(rt, namespace, applied)
        metadata.meta(applied)["name"] = name
        live = current.copy() if current is not None else None
        try:
            merged = fieldmanager.apply(
                live,
                applied,
                manager=options.field_manager,
                force=options.force,
                api_version=rt.api_version,
                list_info=self._list_info(rt),
                now=metadata.rfc3339(),
                subresource=subresource,
                ignore_status=rt.has_status and subresource is None,
            )
        except fieldmanager.ApplyConflict as exc:
            raise errors.ApiError(
                409,
                "Conflict",
                exc.message,
                details={
                    "name": name,
                    "group": rt.group,
                    "kind": rt.resource,
                    "causes": [
                        {
                            "reason": "FieldManagerConflict",
                            "message": f'conflict with "{c.manager}"',
                            "field": c.field,
                        }
                        for c in exc.conflicts
                    ],
                },
            ) from exc
        if current is None:
            if subresource is not None:
                raise errors.not_found(rt.resource, rt.group, name)
            managed = (merged.get("metadata") or {}).get("managedFields")
            obj = self._check_body(rt, namespace, merged)
            self._check_namespace_writable(rt, namespace, name)
            self._reset_system_fields(rt, obj)
            warnings = self._prepare(rt, obj, None, options)
            if managed is not None:
                metadata.meta(obj)["managedFields"] = managed
            if options.dry_run:
                return Result(obj, created=True, warnings=warnings)
            try:
                event = await self.store.create(key, obj)
            except KeyExists as exc:
                raise errors.already_exists(rt.resource, rt.group, name) from exc
            self._after_write(rt, event)
            return Result.of(event.entry, created=True, warnings=warnings)
        obj = self._check_body(rt, namespace, merged)
        return await self._write_update(rt, key, current, obj, options, subresource=subresource, managed=True)

    async def _write_update(
        self,
        rt: ResourceType,
        key: str,
        current: Entry,
        obj: dict[str, Any],
        options: WriteOptions,
        *,
        subresource: str | None,
        managed: bool = False,
    ) -> Result:
        old = current.obj
        new = self._merge_system_fields(rt, old, obj, subresource)
        warnings = self._prepare(rt, new, old, options) if subresource is None else []
        self._check_deletion_rules(rt, old, new)
        if subresource != "status":
            self._bump_generation(rt, old, new)
        if not managed:
            self._set_managed_fields(rt, old, new, options, subresource=subresource)
        # A no-op write stores nothing; one that only changes managedFields (as kubectl's migration from
        # client-side to server-side apply does with a JSON patch) is a change.
        new_managed = (new.get("metadata") or {}).get("managedFields")
        if _strip_for_compare(new) == _strip_for_compare(old) and new_managed == old.get("metadata", {}).get(
            "managedFields"
        ):
            return Result(current.copy(), warnings=warnings)
        if options.dry_run:
            new["metadata"]["resourceVersion"] = str(current.rev)
            return Result(new, warnings=warnings)
        if metadata.deleting(new) and not metadata.finalizers(new) and not _namespace_finalizers(rt, new):
            event = await self._commit_delete(rt, key, new, current.rev)
            return Result.of(event.entry, warnings=warnings)
        try:
            event = await self.store.update(key, new, expect_rev=current.rev)
        except (KeyNotFound, RevisionMismatch) as exc:
            raise errors.conflict(rt.resource, rt.group, metadata.name_of(new)) from exc
        self._after_write(rt, event)
        return Result.of(event.entry, warnings=warnings)

    def _merge_system_fields(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        if subresource == "status":
            merged = jsondata.clone(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            if rt.builtin and rt.resource == "deployments":
                # As upstream's deployment status strategy (which resets only spec and labels): the
                # deployment controller records the revision annotation with its status writes, which
                # must not bump the generation.
                annotations = metadata.meta(new).get("annotations")
                if annotations:
                    metadata.meta(merged)["annotations"] = annotations
                else:
                    metadata.meta(merged).pop("annotations", None)
            return merged
        old_meta, new_meta = old.get("metadata") or {}, metadata.meta(new)
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        if "managedFields" not in new_meta and "managedFields" in old_meta:
            new_meta["managedFields"] = jsondata.clone(old_meta["managedFields"])
        new_meta.pop("selfLink", None)
        if rt.has_status and rt.resource != "customresourcedefinitions":
            if "status" in old:
                new["status"] = jsondata.clone(old["status"])
            else:
                new.pop("status", None)
        elif rt.resource == "customresourcedefinitions" and "status" in old:
            new["status"] = jsondata.clone(old["status"])
        return new

    def _check_deletion_rules(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        if not metadata.deleting(old):
            return
        added = set(metadata.finalizers(new)) - set(metadata.finalizers(old))
        if added:
            cause = validation.forbidden(
                "metadata.finalizers", "no new finalizers can be added if the object is being deleted"
            )
            self._raise_invalid(rt, metadata.name_of(new), [cause])

    @staticmethod
    def _bump_generation(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        if not (rt.generation or not rt.builtin):
            return
        exclude_status = rt.has_status or rt.builtin
        keep_annotations = rt.builtin and rt.resource == "deployments"
        before = _spec_part(old, keep_annotations=keep_annotations, exclude_status=exclude_status)
        after = _spec_part(new, keep_annotations=keep_annotations, exclude_status=exclude_status)
        generation = int((old.get("metadata") or {}).get("generation") or 1)
        metadata.meta(new)["generation"] = generation + 1 if before != after else generation

    # ------------------------------------------------------------------------------------------ scale

    def scale_of(self, rt: ResourceType, entry: Entry) -> dict[str, Any]:
        paths = rt.scale or ScalePaths()
        obj = entry.obj
        meta = obj.get("metadata") or {}
        if rt.builtin:
            sel = (obj.get("spec") or {}).get("selector")
            selector = selectors.selector_string(sel) if isinstance(sel, dict) else ""
        else:
            value = _walk(obj, paths.label_selector) if paths.label_selector else None
            selector = str(value) if value else ""
        status: dict[str, Any] = {"replicas": int(_walk(obj, paths.status_replicas) or 0)}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": int(_walk(obj, paths.spec_replicas) or 0)},
            "status": status,
        }

    async def write_scale(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: WriteOptions,
        *,
        body: dict[str, Any] | None = None,
        patch: tuple[str, bytes] | None = None,
    ) -> dict[str, Any]:
        key = rt.key(namespace, name)
        current = self.store.latest(key)
        if current is None:
            raise errors.not_found(rt.resource, rt.group, name)
        scale = self.scale_of(rt, current)
        if patch is not None:
            content_type, raw = patch
            if content_type == APPLY_PATCH:
                raise errors.ApiError(
                    415, "UnsupportedMediaType", "apply is not supported on the scale subresource"
                )
            scale_rt = ResourceType("autoscaling", "v1", "scale", "Scale", namespaced=True)
            new_scale = self.patched(
                scale_rt, scale, content_type if content_type != STRATEGIC_PATCH else MERGE_PATCH, raw
            )
        else:
            new_scale = body or {}
            wanted_rv = str((new_scale.get("metadata") or {}).get("resourceVersion") or "")
            if wanted_rv and wanted_rv != str(current.rev):
                raise errors.conflict(rt.resource, rt.group, name)
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            cause = validation.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
            raise errors.invalid(
                "Scale",
                "autoscaling",
                name,
                validation.invalid_message("Scale", "autoscaling", name, [cause]),
                errors.field_causes([cause]),
            )
        obj = current.copy()
        _set_path(obj, (rt.scale or ScalePaths()).spec_replicas, replicas)
        result = await self._write_update(rt, key, current, obj, options, subresource="scale")
        if options.dry_run:
            return self.scale_of(rt, Entry(current.rev, result.obj, b""))
        stored = self.store.latest(key) or current
        return self.scale_of(rt, stored)

    # ----------------------------------------------------------------------------------------- delete

    async def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Result:
        key = rt.key(namespace, name)
        current = self.store.latest(key)
        if current is None:
            raise errors.not_found(rt.resource, rt.group, name)
        self._check_preconditions(rt, name, current, preconditions or {})
        if rt.builtin and rt.resource == "namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                resource="namespaces",
                name=name,
            )
        policy = propagation or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f'unsupported propagationPolicy "{policy}"')
        obj = current.copy()
        meta = metadata.meta(obj)
        finalizers = metadata.finalizers(obj)
        if rt.builtin and rt.resource == "namespaces":
            obj.setdefault("status", {})["phase"] = "Terminating"
        if (
            rt.builtin
            and rt.resource == "customresourcedefinitions"
            and CRD_CLEANUP_FINALIZER not in finalizers
        ):
            finalizers.append(CRD_CLEANUP_FINALIZER)
        if policy == "Foreground" and metadata.FOREGROUND not in finalizers:
            finalizers.append(metadata.FOREGROUND)
        if policy == "Orphan" and metadata.ORPHAN not in finalizers:
            finalizers.append(metadata.ORPHAN)
        graceful = (
            rt.builtin
            and rt.resource == "pods"
            and bool((obj.get("spec") or {}).get("nodeName"))
            and grace_period != 0
            and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )
        pending = bool(finalizers) or graceful or (rt.builtin and rt.resource == "namespaces")
        if not pending:
            if dry_run:
                return Result(obj)
            event = await self._commit_delete(rt, key, obj, current.rev)
            return Result.of(event.entry)
        if metadata.deleting(current.obj):
            # Already being deleted: a later delete may only shorten a pod's grace period.
            if graceful and grace_period == 0:
                meta["deletionGracePeriodSeconds"] = 0
            else:
                return Result(current.copy(), accepted=True)
        else:
            grace = 0
            if graceful:
                default_grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                grace = int(default_grace if grace_period is None else grace_period)
            meta["deletionTimestamp"] = metadata.rfc3339(metadata.now() + timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        if dry_run:
            return Result(obj, accepted=True)
        try:
            event = await self.store.update(key, obj, expect_rev=current.rev)
        except (KeyNotFound, RevisionMismatch) as exc:
            raise errors.conflict(rt.resource, rt.group, name) from exc
        self._after_write(rt, event)
        return Result.of(event.entry, accepted=True)

    def _check_preconditions(
        self, rt: ResourceType, name: str, current: Entry, preconditions: dict[str, Any]
    ) -> None:
        uid = preconditions.get("uid")
        if uid and uid != metadata.uid_of(current.obj):
            raise errors.conflict(
                rt.resource,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                f"{metadata.uid_of(current.obj)}",
            )
        rv = preconditions.get("resourceVersion")
        if rv and str(rv) != str(current.rev):
            raise errors.conflict(
                rt.resource,
                rt.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object "
                f"meta: {current.rev}",
            )

    async def _commit_delete(self, rt: ResourceType, key: str, obj: dict[str, Any], expect_rev: int) -> Event:
        try:
            event = await self.store.delete(key, obj, expect_rev=expect_rev)
        except (KeyNotFound, RevisionMismatch) as exc:
            raise errors.conflict(rt.resource, rt.group, metadata.name_of(obj)) from exc
        self._after_write(rt, event)
        return event

    async def finalize_namespace(self, name: str, body: dict[str, Any]) -> Result:
        """``PUT /api/v1/namespaces/{name}/finalize``: set ``spec.finalizers``; the last one removes it."""
        ns_type = self.registry.get("", "v1", "namespaces")
        assert ns_type is not None
        key = ns_type.key("", name)
        current = self.store.latest(key)
        if current is None:
            raise errors.not_found("namespaces", "", name)
        obj = current.copy()
        wanted = ((body.get("spec") or {}).get("finalizers")) or []
        obj.setdefault("spec", {})["finalizers"] = list(wanted)
        if not wanted:
            obj["spec"].pop("finalizers")
        if metadata.deleting(obj) and not wanted and not metadata.finalizers(obj):
            event = await self._commit_delete(ns_type, key, obj, current.rev)
            return Result.of(event.entry)
        event = await self.store.update(key, obj, expect_rev=current.rev)
        return Result.of(event.entry)

    # -------------------------------------------------------------------------------------------- CRDs

    def _after_write(self, rt: ResourceType, event: Event) -> None:
        if rt.builtin and rt.resource == "customresourcedefinitions" and self.on_crd_change is not None:
            self.on_crd_change(None if event.type == "DELETED" else event.entry.obj, event.key)
