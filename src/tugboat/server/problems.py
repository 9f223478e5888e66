"""Errors the API answers with, in the shape Argo CD's gateway uses: ``{"error", "code", "message"}``
with a gRPC status code, so clients written against Argo CD read them unchanged."""

from __future__ import annotations

from tugboat.kube import errors

# gRPC status codes (what Argo CD puts in "code") for the HTTP statuses we answer with.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


class Problem(Exception):
    """A request that fails with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, object]:
        return {"error": self.message, "code": _GRPC_CODES.get(self.status, 2), "message": self.message}


def from_api_error(exc: errors.ApiError) -> Problem:
    """The Kubernetes API's answer passed on with its status; other client errors (422 Invalid, 410, 415)
    are the caller's too, so they become 400, and only server-side failures 500."""
    if exc.code in _GRPC_CODES:
        status = exc.code
    else:
        status = 400 if 400 <= exc.code < 500 else 500
    return Problem(status, exc.message or exc.reason)
