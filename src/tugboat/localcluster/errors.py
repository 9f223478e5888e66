"""The local cluster API server's errors, each one a Kubernetes ``Status`` object on the wire.

Clients (kubectl, client-go style libraries, our own controllers) dispatch on ``reason`` and ``code``, and
kubectl prints ``message`` verbatim, so both follow kube-apiserver's wording (research/kubeapi.md §2.7).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class ApiError(Exception):
    """An API failure with its HTTP code, Kubernetes reason and message."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The ``meta/v1 Status`` body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": kind}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details.update(extra)
    return details


def qualified(resource: str, group: str) -> str:
    """``deployments.apps``, or ``pods`` for the core group: how kube names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        details=_details(name, group, resource),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        details=_details(name, group, resource),
    )


def conflict(resource: str, group: str, name: str, message: str | None = None) -> ApiError:
    text = message or (
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", text, details=_details(name, group, resource))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


class FieldCause(Protocol):
    """A field error as the validation modules report it."""

    @property
    def type(self) -> str: ...

    @property
    def field(self) -> str: ...

    @property
    def message(self) -> str: ...


def field_causes(causes: Iterable[FieldCause]) -> list[dict[str, str]]:
    """``Status.details.causes`` entries; a cause's type travels under the JSON key ``reason``."""
    return [{"reason": c.type, "message": c.message, "field": c.field} for c in causes]


def invalid(kind: str, group: str, name: str, message: str, causes: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "Invalid", message, details=_details(name, group, kind, causes=causes))


def forbidden(message: str, *, resource: str = "", group: str = "", name: str = "") -> ApiError:
    return ApiError(403, "Forbidden", message, details=_details(name, group, resource) if resource else None)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})",
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
