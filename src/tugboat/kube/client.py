"""The one Kubernetes client every Tugboat component uses: dict objects over HTTP, async.

Configuration (kubeconfig, contexts, TLS, tokens, exec plugins) comes from lightkube, whose transport is
a configured ``httpx2`` client (research/deps.md §1.3). The requests themselves are built here: objects
are plain dicts, encoded and decoded with orjson, so any kind (custom resources included) works the same
and no time goes into typed models. Failures become :class:`tugboat.kube.errors.ApiError`. Against a
plain-http server without an auth flow (the local cluster) requests go through the lean keep-alive pool of
:mod:`tugboat.util.http1`, which costs a fraction of httpx's CPU per request; watches always use httpx.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig

from tugboat.kube import errors
from tugboat.kube.kinds import Kind
from tugboat.util import http1

Obj = dict[str, Any]

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


def _lean_pool(http: httpx.AsyncClient) -> http1.Pool | None:
    """A lean pool for plain-http servers without an auth flow (the local cluster), else None (httpx)."""
    url = http.base_url
    if url.scheme != "http" or http.auth is not None or not url.host:
        return None
    timeout = http.timeout.read or 30.0
    host = f"[{url.host}]" if ":" in url.host else url.host
    origin = f"http://{host}:{url.port or 80}"
    skip = {
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "host",
    }  # set per request, or unwanted
    defaults = {k: v for k, v in http.headers.items() if k.lower() not in skip}
    return http1.Pool(origin, timeout=float(timeout), default_headers=defaults)


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        status = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    raise errors.ApiError(
        response.status_code,
        str(status.get("reason") or response.reason_phrase),
        str(status.get("message") or response.text[:500]),
        status,
    )


class Client:
    """Async access to one cluster, as one field manager."""

    def __init__(self, http: httpx.AsyncClient, *, field_manager: str, namespace: str = "default") -> None:
        self.http = http
        self.field_manager = field_manager
        self.namespace = namespace
        self._lean: http1.Pool | None = _lean_pool(http)
        self._prefix = str(http.base_url.raw_path.decode("ascii")).rstrip("/")

    @classmethod
    def from_kubeconfig(
        cls,
        path: Path | str | None = None,
        *,
        field_manager: str,
        context: str | None = None,
        timeout: float = 30.0,
    ) -> Client:
        """A client for ``path`` (default: ``$KUBECONFIG`` or ``~/.kube/config``, then in-cluster)."""
        try:
            config = KubeConfig.from_file(path) if path else KubeConfig.from_env()
            single = config.get(context_name=context)
        except Exception as exc:  # lightkube raises several exception types for bad configs
            raise errors.ConfigError(f"cannot load kubeconfig {path or '(default)'}: {exc}") from exc
        if single is None:
            raise errors.ConfigError(f"kubeconfig {path or '(default)'} has no usable context")
        params = client_adapter.ConnectionParams(timeout=httpx.Timeout(timeout))
        http = client_adapter.AsyncClient(single, params)
        http.headers["User-Agent"] = f"{field_manager}/tugboat"
        return cls(http, field_manager=field_manager, namespace=single.namespace or "default")

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        field_manager: str,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> Client:
        """A client for an API server URL (used by components that run next to the local cluster)."""
        headers = {"User-Agent": f"{field_manager}/tugboat"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        http = httpx.AsyncClient(
            base_url=url, headers=headers, verify=ca_file or True, timeout=httpx.Timeout(timeout)
        )
        return cls(http, field_manager=field_manager)

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
        await self.http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------ plumbing

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        content = None
        headers = {"Accept": "application/json"}
        if body is not None:
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        if self._lean is not None:
            return await self._lean_request(method, path, params, content, headers)
        try:
            response = await self.http.request(method, path, params=params, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise errors.ConnectionFailed(f"{method} {path}: {exc}") from exc
        _raise_for(response)
        if not response.content:
            return None
        return orjson.loads(response.content)

    async def _lean_request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        headers: dict[str, str],
    ) -> Any:
        """The same request through the lean HTTP/1.1 pool (plain http, no auth flow)."""
        assert self._lean is not None
        target = self._prefix + path
        if params:
            target += "?" + urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        try:
            response = await self._lean.request(method, target, headers=headers, body=content)
        except http1.HTTPError as exc:
            raise errors.ConnectionFailed(f"{method} {path}: {exc}") from exc
        if response.status >= 400:
            _raise_for(httpx.Response(response.status, headers=response.headers, content=response.body))
        if not response.body:
            return None
        return orjson.loads(response.body)

    def _ns(self, kind: Kind, namespace: str | None) -> str | None:
        if not kind.namespaced:
            return None
        return namespace or self.namespace

    @staticmethod
    def _ns_of(kind: Kind, obj: Obj) -> str | None:
        return (obj.get("metadata") or {}).get("namespace") if kind.namespaced else None

    # --------------------------------------------------------------------------------------- reads

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj:
        result: Obj = await self.request("GET", kind.object_path(name, self._ns(kind, namespace)))
        return result

    async def get_or_none(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(kind, name, namespace)
        except errors.ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        labels: str = "",
        fields: str = "",
        all_namespaces: bool = False,
    ) -> tuple[list[Obj], str]:
        """Every matching object and the list's resourceVersion (pages are followed)."""
        ns = None if all_namespaces else self._ns(kind, namespace)
        params: dict[str, str | int] = {"limit": 500}
        if labels:
            params["labelSelector"] = labels
        if fields:
            params["fieldSelector"] = fields
        items: list[Obj] = []
        while True:
            page = await self.request("GET", kind.collection_path(ns), params=params)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion") or "")
            params["continue"] = meta["continue"]

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        resource_version: str = "",
        labels: str = "",
        fields: str = "",
        timeout_seconds: int = 300,
        all_namespaces: bool = False,
        bookmarks: bool = True,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """One watch request: ``(type, object)`` pairs until the server ends the stream.

        An ``ERROR`` event is raised as :class:`ApiError` (410 when the revision has expired).
        """
        ns = None if all_namespaces else self._ns(kind, namespace)
        params: dict[str, str | int] = {"watch": "true", "timeoutSeconds": timeout_seconds}
        if resource_version:
            params["resourceVersion"] = resource_version
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        if labels:
            params["labelSelector"] = labels
        if fields:
            params["fieldSelector"] = fields
        timeout = httpx.Timeout(10.0, read=timeout_seconds + 30.0)
        try:
            async with self.http.stream(
                "GET",
                kind.collection_path(ns),
                params=params,
                timeout=timeout,
                headers={"Accept": "application/json"},
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for(response)
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    event = orjson.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise errors.ApiError(
                            int(status.get("code") or 500),
                            str(status.get("reason") or "Unknown"),
                            str(status.get("message") or ""),
                            status,
                        )
                    yield event["type"], event["object"]
        except httpx.HTTPError as exc:
            raise errors.ConnectionFailed(f"watch {kind}: {exc}") from exc

    # -------------------------------------------------------------------------------------- writes

    def _write_params(self, dry_run: bool = False, **extra: str) -> dict[str, str | int]:
        params: dict[str, str | int] = {"fieldManager": self.field_manager, **extra}
        if dry_run:
            params["dryRun"] = "All"
        return params

    async def create(self, kind: Kind, obj: Obj, *, dry_run: bool = False) -> Obj:
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        path = kind.collection_path(self._ns(kind, self._ns_of(kind, obj)))
        result: Obj = await self.request("POST", path, params=self._write_params(dry_run), body=obj)
        return result

    async def replace(self, kind: Kind, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj.get("metadata") or {}
        path = kind.object_path(meta["name"], self._ns(kind, self._ns_of(kind, obj)), subresource)
        result: Obj = await self.request("PUT", path, params=self._write_params(), body=obj)
        return result

    async def replace_status(self, kind: Kind, obj: Obj) -> Obj:
        return await self.replace(kind, obj, subresource="status")

    async def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> Obj:
        params = self._write_params(dry_run)
        if force:
            params["force"] = "true"
        path = kind.object_path(name, self._ns(kind, namespace), subresource)
        result: Obj = await self.request(
            "PATCH", path, params=params, body=patch, content_type=PATCH_TYPES[patch_type]
        )
        return result

    async def patch_status(self, kind: Kind, name: str, status: Obj, *, namespace: str | None = None) -> Obj:
        """Merge-patch ``status`` through the ``/status`` subresource."""
        return await self.patch(kind, name, {"status": status}, namespace=namespace, subresource="status")

    async def apply(self, kind: Kind, obj: Obj, *, force: bool = False, dry_run: bool = False) -> Obj:
        """Server-side apply ``obj`` as this client's field manager."""
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        meta = obj.get("metadata") or {}
        return await self.patch(
            kind,
            meta["name"],
            obj,
            namespace=self._ns_of(kind, obj),
            patch_type="apply",
            force=force,
            dry_run=dry_run,
        )

    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        preconditions: Obj | None = None,
        missing_ok: bool = True,
    ) -> Obj | None:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if preconditions:
            options["preconditions"] = preconditions
        try:
            result: Obj | None = await self.request(
                "DELETE", kind.object_path(name, self._ns(kind, namespace)), body=options
            )
        except errors.ApiError as exc:
            if missing_ok and exc.not_found:
                return None
            raise
        return result
