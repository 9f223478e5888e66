"""Which Application manages a live object: Argo CD's resource tracking.

Argo CD marks every manifest it applies, so that it can later find "its" objects in the cluster (to
compare them, to prune them, to show orphans). The mark is either the annotation
``argocd.argoproj.io/tracking-id: <app>:<group>/<kind>:<namespace>/<name>`` (the default since Argo CD
3.0), or the label ``app.kubernetes.io/instance: <app>`` (the old way), or both (``annotation+label``,
where the label is only informational). We write and read the same marks, so objects that Argo CD
deployed are recognised by Tugboat and the other way round (``docs/user-guide/resource_tracking.md``).

The annotation names the object it was written on. Other tools copy annotations around (a Deployment's
annotations end up on its ReplicaSets, some operators copy a whole manifest): a tracking id that does
not describe the object carrying it is therefore ignored, so the copy is not mistaken for a resource
of the Application (Argo CD issue #8683).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tugboat.gitops import errors, resourcekey

Obj = dict[str, Any]

TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"

METHOD_ANNOTATION = "annotation"
METHOD_LABEL = "label"
METHOD_ANNOTATION_LABEL = "annotation+label"
METHODS = (METHOD_ANNOTATION, METHOD_LABEL, METHOD_ANNOTATION_LABEL)

LABEL_MAX_LENGTH = 63


class InvalidTrackingMethod(errors.GitOpsError):
    """A tracking method other than ``annotation``, ``label`` or ``annotation+label`` was asked for."""


def tracking_method(setting: str | None) -> str:
    """The method an ``application.resourceTrackingMethod`` setting selects.

    Like Argo CD, an empty or unknown setting means the default, ``annotation``.
    """
    value = (setting or "").strip()
    return value if value in METHODS else METHOD_ANNOTATION


def instance_name(app_name: str, app_namespace: str, *, control_namespace: str) -> str:
    """The instance value an Application writes on its resources.

    ``<app_name>`` for an Application in the control namespace (or with no namespace), else
    ``<app_namespace>_<app_name>`` ("apps in any namespace").
    """
    if not app_namespace or app_namespace == control_namespace:
        return app_name
    return f"{app_namespace}_{app_name}"


def split_instance_name(instance: str, *, control_namespace: str) -> tuple[str, str]:
    """``(app_namespace, app_name)`` of an instance value: the inverse of :func:`instance_name`.

    Kubernetes names cannot contain ``_``, so the first one separates namespace and name.
    """
    namespace, sep, name = instance.partition("_")
    if sep and namespace and name:
        return namespace, name
    return control_namespace, instance


def tracking_id(instance: str, key: resourcekey.ResourceKey) -> str:
    """``<instance>:<group>/<kind>:<namespace>/<name>``.

    E.g. ``guestbook:/Service:guestbook/guestbook-ui`` (core group) or ``app:/Namespace:/foo``.
    """
    return f"{instance}:{key.group}/{key.kind}:{key.namespace}/{key.name}"


def parse_tracking_id(value: str) -> tuple[str, resourcekey.ResourceKey] | None:
    """``(instance, key)`` from a tracking id, or None when the value is not of that form.

    The name may contain ``:`` (``system:controller:foo`` ClusterRoles); the instance, group, kind and
    namespace cannot.
    """
    parts = value.split(":", 2)
    if len(parts) != 3:
        return None
    instance, group_kind, namespace_name = parts
    group_parts = group_kind.split("/")
    ns_parts = namespace_name.split("/")
    if len(group_parts) != 2 or len(ns_parts) != 2:
        return None
    group, kind = group_parts
    namespace, name = ns_parts
    if not instance or not kind or not name:
        return None
    return instance, resourcekey.ResourceKey(group, kind, namespace, name)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidTrackingMethod(
            f"unknown resource tracking method {method!r}: expected one of {', '.join(METHODS)}"
        )


def _mutable_map(obj: dict[str, Any], field: str) -> dict[str, Any]:
    """``obj[field]`` as a dict we may write to, created (or replacing a null) when missing."""
    value = obj.get(field)
    if not isinstance(value, dict):
        value = {}
        obj[field] = value
    return value


def label_value(instance: str) -> str:
    """The instance as a label value: at most 63 characters, ending in a letter or digit.

    Argo CD truncates long instance names the same way (issue #18237 for the trailing character).
    """
    value = instance[:LABEL_MAX_LENGTH]
    while value and not (value[-1].isascii() and value[-1].isalnum()):
        value = value[:-1]
    if not value:
        raise InvalidTrackingMethod(f"instance name {instance!r} cannot be written as a label value")
    return value


def set_tracking(
    obj: Obj,
    instance: str,
    *,
    method: str = METHOD_ANNOTATION,
    label_key: str = INSTANCE_LABEL,
    default_namespace: str = "",
) -> None:
    """Mark a desired manifest as managed by ``instance``, in place.

    Annotation methods write the tracking id of the object itself; an object without a namespace gets
    ``default_namespace`` in its id (Argo CD passes the destination namespace; it does so for
    cluster-scoped objects too, which :func:`instance_of` accepts). Label methods write the instance,
    truncated to a valid label value, under ``label_key``.
    """
    _check_method(method)
    metadata = _mutable_map(obj, "metadata")
    if method in (METHOD_ANNOTATION, METHOD_ANNOTATION_LABEL):
        key = resourcekey.ResourceKey.of(obj)
        if not key.namespace and default_namespace:
            key = resourcekey.ResourceKey(key.group, key.kind, default_namespace, key.name)
        _mutable_map(metadata, "annotations")[TRACKING_ANNOTATION] = tracking_id(instance, key)
    if method in (METHOD_LABEL, METHOD_ANNOTATION_LABEL):
        _mutable_map(metadata, "labels")[label_key] = label_value(instance)


def _metadata_map(obj: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return {}
    value = metadata.get(field)
    return value if isinstance(value, Mapping) else {}


def refers_to(obj: Mapping[str, Any], key: resourcekey.ResourceKey) -> bool:
    """Whether a tracking id's key describes ``obj`` itself.

    Group, kind and name must match. The namespace must match for a namespaced object; a cluster-scoped
    object (no namespace) matches whatever namespace the id carries, because Argo CD writes the
    destination namespace into the ids of cluster-scoped objects.
    """
    own = resourcekey.ResourceKey.of(obj)
    return (
        own.group == key.group
        and own.kind == key.kind
        and own.name == key.name
        and (not own.namespace or own.namespace == key.namespace)
    )


def instance_of(
    obj: Mapping[str, Any], *, method: str = METHOD_ANNOTATION, label_key: str = INSTANCE_LABEL
) -> str | None:
    """The instance that manages a live object, or None if no Application does.

    Annotation methods: the instance from the tracking id, but only when the id describes the object
    (see :func:`refers_to`). Label method: the label value.
    """
    _check_method(method)
    if method == METHOD_LABEL:
        value = _metadata_map(obj, "labels").get(label_key)
        return value if isinstance(value, str) and value else None
    annotation = _metadata_map(obj, "annotations").get(TRACKING_ANNOTATION)
    if not isinstance(annotation, str):
        return None
    parsed = parse_tracking_id(annotation)
    if parsed is None:
        return None
    instance, key = parsed
    return instance if refers_to(obj, key) else None
