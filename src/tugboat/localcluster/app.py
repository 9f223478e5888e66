"""The HTTP face of the local cluster: kube-apiserver's URL space as a Starlette application.

This module only translates: it parses paths, query parameters, content types and Accept headers,
calls :mod:`~tugboat.localcluster.objects` (the semantics) or :mod:`~tugboat.localcluster.watch`, and
renders objects, lists, Tables, watch streams and ``Status`` errors the way kubectl and client
libraries expect them (research/kubeapi.md §1).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tugboat.localcluster import (
    discovery,
    errors,
    eventsconv,
    metadata,
    metricsummary,
    podlogs,
    protobuf,
    tables,
)
from tugboat.localcluster.auth import Authenticator
from tugboat.localcluster.objects import APPLY_PATCH, ObjectAPI, Result, WriteOptions
from tugboat.localcluster.openapi import OpenAPI
from tugboat.localcluster.resources import ResourceType
from tugboat.localcluster.storage import Entry
from tugboat.localcluster.watch import Watch, WatchEvent, WatchRequest

log = logging.getLogger(__name__)

JSON = "application/json"
TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MAX_BODY = 3 * 1024 * 1024

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+tugboat",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-29T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}


def _bool(value: str | None) -> bool:
    return value in _TRUE


def json_response(body: Any, status: int = 200, *, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def raw_response(raw: bytes, status: int = 200, *, media_type: str = JSON) -> Response:
    return Response(raw, status_code=status, media_type=media_type)


def error_response(exc: errors.ApiError) -> Response:
    return json_response(exc.status(), exc.code)


@dataclass
class Target:
    """What a resource URL names."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    # The representation clients asked for when it differs from the stored one (events.k8s.io/v1 Event).
    view: ResourceType | None = None

    def out(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An object as the client sees it."""
        return eventsconv.to_events_v1(obj) if self.view is not None else obj

    def out_raw(self, raw: bytes, obj: dict[str, Any]) -> bytes:
        return orjson.dumps(eventsconv.to_events_v1(obj)) if self.view is not None else raw

    def fields(self, selector: str) -> str:
        return eventsconv.field_selector_to_core(selector) if self.view is not None and selector else selector


def _wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _include_object(request: Request) -> str:
    return request.query_params.get("includeObject") or "Metadata"


class APIServerApp:
    """Builds the Starlette application around an :class:`ObjectAPI`."""

    def __init__(
        self,
        api: ObjectAPI,
        *,
        authenticator: Authenticator,
        bookmark_interval: float = 60.0,
    ) -> None:
        self.api = api
        self.registry = api.registry
        self.openapi = OpenAPI(api.registry)
        self.auth = authenticator
        self.bookmark_interval = bookmark_interval
        # Prometheus text exporters by name, served at /metrics/<name> (e.g. the simulated traffic).
        self.metric_providers: dict[str, Callable[[], Awaitable[str | None]]] = {}

    def build(self) -> Starlette:
        # The resource routes first: they serve almost every request.
        routes = [
            Route("/api/{rest:path}", self.resource, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/apis/{rest:path}", self.resource, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/version", self.version),
            Route("/version/", self.version),
            Route("/healthz", self.health),
            Route("/livez", self.health),
            Route("/readyz", self.health),
            Route("/openapi/v3", self.openapi_index),
            Route("/openapi/v3/{path:path}", self.openapi_document),
            Route("/openapi/v2", self.not_found),
            Route("/metrics/{name}", self.metrics),
            Route("/metrics/{name}/summary", self.metrics_summary),
            Route("/api", self.core_discovery),
            Route("/apis", self.group_discovery),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(_Front, authenticator=self.auth, resources=self.resource)
        return app

    # --------------------------------------------------------------------------------------- public

    async def version(self, request: Request) -> Response:
        return json_response(VERSION_INFO)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics(self, request: Request) -> Response:
        provider = self.metric_providers.get(request.path_params["name"])
        text = await provider() if provider is not None else None
        if text is None:
            return await self.not_found(request)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def metrics_summary(self, request: Request) -> Response:
        """Request totals of an exporter's series matching the query's labels, as JSON: what an analysis
        with the Web provider can judge without a Prometheus (``successRate`` of a canary's pods)."""
        provider = self.metric_providers.get(request.path_params["name"])
        text = await provider() if provider is not None else None
        if text is None:
            return await self.not_found(request)
        return json_response(metricsummary.summarize(text, dict(request.query_params)))

    async def not_found(self, request: Request) -> Response:
        return error_response(
            errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        )

    # ------------------------------------------------------------------------------------ discovery

    async def openapi_index(self, request: Request) -> Response:
        return json_response(self.openapi.index())

    async def openapi_document(self, request: Request) -> Response:
        body = self.openapi.document(request.path_params["path"])
        if body is None:
            return await self.not_found(request)
        return raw_response(body)

    async def core_discovery(self, request: Request) -> Response:
        version = discovery.negotiate_aggregated(request.headers.get("accept", ""))
        if version:
            return Response(
                orjson.dumps(discovery.aggregated(self.registry, core=True, version=version)),
                media_type=discovery.aggregated_content_type(version),
            )
        return json_response(discovery.api_versions())

    async def group_discovery(self, request: Request) -> Response:
        version = discovery.negotiate_aggregated(request.headers.get("accept", ""))
        if version:
            return Response(
                orjson.dumps(discovery.aggregated(self.registry, core=False, version=version)),
                media_type=discovery.aggregated_content_type(version),
            )
        return json_response(discovery.api_group_list(self.registry))

    # ------------------------------------------------------------------------------------ resources

    async def resource(self, request: Request) -> Response:
        try:
            return await self._resource(request)
        except errors.ApiError as exc:
            return error_response(exc)
        except Exception as exc:  # a bug must still answer as the API would
            log.exception("internal error serving %s %s", request.method, request.url.path)
            return error_response(errors.internal(str(exc)))

    async def _resource(self, request: Request) -> Response:
        parts = [p for p in request.scope["path"].split("/") if p]
        if parts[0] == "api":
            if len(parts) < 2:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 2:
                return self._group_document(parts[1])
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            doc = discovery.api_resource_list(self.registry, group, version)
            if doc is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(doc)
        target = self._storage_view(self._target(group, version, rest))
        handler = self._handler(request.method, target)
        return await handler(request, target)

    def _group_document(self, group: str) -> Response:
        for name, versions in self.registry.groups():
            if name == group:
                return json_response(discovery.api_group(group, versions))
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")

    def _lookup(self, group: str, version: str, resource: str) -> ResourceType:
        rt = self.registry.get(group, version, resource)
        if rt is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns_rt = self._lookup(group, version, "namespaces") if group == "" else None
            if ns_rt is not None and len(rest) == 3 and rest[2] in ns_rt.subresources:
                return Target(ns_rt, None, rest[1], rest[2])
            rt = self._lookup(group, version, rest[2])
            if not rt.namespaced:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
            if len(rest) > 5:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return Target(rt, rest[1], name, sub)
        rt = self._lookup(group, version, rest[0])
        if len(rest) > 3:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if rt.namespaced and name is not None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(rt, None, name, sub)

    def _storage_view(self, target: Target) -> Target:
        """Serve ``events.k8s.io/v1`` Events from the core Events' storage, converting at the boundary."""
        if target.rt.group == "events.k8s.io" and target.rt.resource == "events":
            core = self._lookup("", "v1", "events")
            return Target(core, target.namespace, target.name, target.subresource, view=target.rt)
        return target

    def _handler(self, method: str, target: Target) -> Callable[[Request, Target], Awaitable[Response]]:
        if target.subresource is not None and target.subresource not in target.rt.subresources:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        if target.name is None:
            table: dict[str, Callable[[Request, Target], Awaitable[Response]]] = {
                "get": self.list_or_watch,
                "create": self.create,
                "delete": self.delete_collection,
            }
            needed = {"get": "list", "create": "create", "delete": "deletecollection"}.get(verb, verb)
        elif target.subresource is None:
            table = {"get": self.get, "update": self.update, "patch": self.patch, "delete": self.delete}
            needed = verb
        else:
            table = self._subresource_handlers(target.subresource)
            needed = verb
            if verb not in table:
                raise errors.method_not_allowed()
            return table[verb]
        if verb not in table or needed not in target.rt.verbs:
            raise errors.method_not_allowed()
        return table[verb]

    def _subresource_handlers(self, sub: str) -> dict[str, Callable[[Request, Target], Awaitable[Response]]]:
        if sub == "status":
            return {"get": self.get, "update": self.update, "patch": self.patch}
        if sub == "scale":
            return {"get": self.get_scale, "update": self.update_scale, "patch": self.patch_scale}
        if sub == "log":
            return {"get": self.pod_log}
        if sub == "binding":
            return {"create": self.bind_pod}
        if sub == "finalize":
            return {"update": self.finalize_namespace}
        if sub == "token":
            return {"create": self.create_token}
        return {}

    # ------------------------------------------------------------------------------- body decoding

    async def _body(self, request: Request) -> bytes:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise errors.ApiError(413, "RequestEntityTooLarge", "the request body is too large")
        return raw

    async def _decode_object(self, request: Request) -> dict[str, Any]:
        raw = await self._body(request)
        content_type = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        try:
            if content_type == PROTOBUF:
                return protobuf.decode(raw)
            if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
                value = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            elif content_type in (JSON, "", "*/*", "text/plain", "application/octet-stream"):
                value = orjson.loads(raw) if raw.strip() else None
            else:
                raise errors.unsupported_media_type(content_type)
        except protobuf.ProtobufError as exc:
            raise errors.ApiError(
                415,
                "UnsupportedMediaType",
                f"{exc}; create this object from a manifest instead (kubectl create -f / kubectl apply -f)",
            ) from exc
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"the request body could not be decoded: {exc}") from exc
        if not isinstance(value, dict):
            raise errors.bad_request("the request body must be an object")
        return value

    def _write_options(self, request: Request) -> WriteOptions:
        query = request.query_params
        dry_run = query.getlist("dryRun")
        for value in dry_run:
            if value != "All":
                raise errors.bad_request(f'unsupported dry run value "{value}": only "All" is supported')
        validation = query.get("fieldValidation") or "Warn"
        if validation not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(
                f'invalid fieldValidation "{validation}": must be Ignore, Warn or Strict'
            )
        return WriteOptions(
            dry_run=bool(dry_run),
            field_manager=query.get("fieldManager") or None,
            field_validation=validation,
            force=_bool(query.get("force")),
            user_agent=request.headers.get("user-agent", ""),
        )

    # -------------------------------------------------------------------------------- rendering

    def _render_one(self, request: Request, target: Target, entry: Entry) -> Response:
        if _wants_table(request.headers.get("accept", "")):
            table = self._table(
                target.rt, [entry.obj], include=_include_object(request), resource_version=str(entry.rev)
            )
            return Response(orjson.dumps(table), media_type=TABLE_CONTENT_TYPE)
        return raw_response(target.out_raw(entry.raw, entry.obj))

    def _render_result(self, request: Request, target: Target, result: Result) -> Response:
        rt = target.rt
        status = 201 if result.created else (202 if result.accepted else 200)
        headers = {"Warning": ", ".join(f'299 - "{w}"' for w in result.warnings)} if result.warnings else None
        if _wants_table(request.headers.get("accept", "")):
            table = self._table(rt, [result.obj], include=_include_object(request))
            return Response(
                orjson.dumps(table), status_code=status, media_type=TABLE_CONTENT_TYPE, headers=headers
            )
        if result.raw is not None:
            body = target.out_raw(result.raw, result.obj)
            return Response(body, status_code=status, media_type=JSON, headers=headers)
        return json_response(target.out(result.obj), status, headers=headers)

    def _columns(self, rt: ResourceType) -> list[tables.Column]:
        if rt.builtin:
            return tables.columns_for(rt.group, rt.resource)
        return tables.crd_columns(rt.printer_columns)

    def _row(self, rt: ResourceType, obj: dict[str, Any], now: datetime) -> list[Any]:
        if rt.builtin:
            return tables.row_for(rt.group, rt.resource, obj, now)
        return tables.crd_row(rt.printer_columns, obj, now)

    def _table(
        self,
        rt: ResourceType,
        objects: list[dict[str, Any]],
        *,
        include: str,
        resource_version: str = "",
        continue_token: str = "",
    ) -> dict[str, Any]:
        now = metadata.now()
        rows = [(self._row(rt, obj, now), obj) for obj in objects]
        return tables.build_table(
            self._columns(rt),
            rows,
            include_object=include,
            resource_version=resource_version,
            continue_token=continue_token,
        )

    # ----------------------------------------------------------------------------------- handlers

    async def get(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        entry = self.api.get(target.rt, target.namespace or "", target.name)
        return self._render_one(request, target, entry)

    async def list_or_watch(self, request: Request, target: Target) -> Response:
        query = request.query_params
        if _bool(query.get("watch")):
            return self._watch(request, target)
        limit_text = query.get("limit") or "0"
        try:
            limit = int(limit_text)
        except ValueError as exc:
            raise errors.bad_request(f'invalid limit "{limit_text}"') from exc
        result = self.api.list_objects(
            target.rt,
            target.namespace,
            label_selector=query.get("labelSelector", ""),
            field_selector=target.fields(query.get("fieldSelector", "")),
            limit=limit,
            continue_token=query.get("continue", ""),
            resource_version=query.get("resourceVersion", ""),
            resource_version_match=query.get("resourceVersionMatch", ""),
        )
        rt = target.rt
        if _wants_table(request.headers.get("accept", "")):
            table = self._table(
                rt,
                [e.obj for e in result.items],
                include=_include_object(request),
                resource_version=str(result.resource_version),
                continue_token=result.continue_token,
            )
            if result.remaining is not None:
                table["metadata"]["remainingItemCount"] = result.remaining
            return Response(orjson.dumps(table), media_type=TABLE_CONTENT_TYPE)
        list_meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
            list_meta["remainingItemCount"] = result.remaining
        shown = target.view or rt
        head = orjson.dumps({"kind": shown.list_kind, "apiVersion": shown.api_version, "metadata": list_meta})
        items = b",".join(target.out_raw(e.raw, e.obj) for e in result.items)
        body = head[:-1] + b',"items":[' + items + b"]}"
        return raw_response(body)

    def _watch(self, request: Request, target: Target) -> Response:
        query = request.query_params
        timeout_text = query.get("timeoutSeconds")
        try:
            timeout = float(timeout_text) if timeout_text else None
        except ValueError as exc:
            raise errors.bad_request(f'invalid timeoutSeconds "{timeout_text}"') from exc
        watch = Watch(
            self.api,
            target.rt,
            WatchRequest(
                namespace=target.namespace,
                label_selector=query.get("labelSelector", ""),
                field_selector=target.fields(query.get("fieldSelector", "")),
                resource_version=query.get("resourceVersion", ""),
                allow_bookmarks=_bool(query.get("allowWatchBookmarks")),
                timeout_seconds=timeout,
                send_initial_events=_bool(query.get("sendInitialEvents")),
            ),
            bookmark_interval=self.bookmark_interval,
        )
        as_table = _wants_table(request.headers.get("accept", ""))
        include = _include_object(request)
        media = TABLE_CONTENT_TYPE if as_table else JSON
        return StreamingResponse(self._frames(watch, target, as_table, include), media_type=media)

    async def _frames(
        self, watch: Watch, target: Target, as_table: bool, include: str
    ) -> AsyncIterator[bytes]:
        try:
            async for batch in watch.events():
                yield b"".join(self._frame(event, target, as_table, include) for event in batch)
        finally:
            watch.close()

    def _frame(self, event: WatchEvent, target: Target, as_table: bool, include: str) -> bytes:
        rt = target.rt
        shown = target.view or rt
        if event.entry is None:
            if event.type == "ERROR":
                obj: Any = event.status
            else:
                bookmark_meta: dict[str, Any] = {"resourceVersion": str(event.resource_version)}
                if event.initial_events_end:
                    bookmark_meta["annotations"] = {"k8s.io/initial-events-end": "true"}
                obj = {"kind": shown.kind, "apiVersion": shown.api_version, "metadata": bookmark_meta}
            return orjson.dumps({"type": event.type, "object": obj}) + b"\n"
        if as_table:
            table = self._table(rt, [event.entry.obj], include=include, resource_version=str(event.entry.rev))
            return orjson.dumps({"type": event.type, "object": table}) + b"\n"
        raw = target.out_raw(event.entry.raw, event.entry.obj)
        return b'{"type":"' + event.type.encode() + b'","object":' + raw + b"}\n"

    async def create(self, request: Request, target: Target) -> Response:
        body = await self._decode_object(request)
        options = self._write_options(request)
        if target.rt.resource in ("selfsubjectaccessreviews", "selfsubjectreviews"):
            return self._review(request, target.rt, body)
        if target.view is not None:
            body = eventsconv.to_core(body)
        result = await self.api.create(target.rt, target.namespace or "", body, options)
        return self._render_result(request, target, result)

    async def update(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        body = await self._decode_object(request)
        if target.view is not None:
            body = eventsconv.to_core(body)
        options = self._write_options(request)
        result = await self.api.update(
            target.rt, target.namespace or "", target.name, body, options, subresource=target.subresource
        )
        return self._render_result(request, target, result)

    async def patch(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        raw = await self._body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        options = self._write_options(request)
        if content_type == APPLY_PATCH and options.field_manager is None:
            raise errors.bad_request("fieldManager is required for apply patch")
        if target.view is not None:
            # Patch the representation the client sees, then store it in the core form.
            current = self.api.get(target.rt, target.namespace or "", target.name)
            patched = self.api.patched(target.view, target.out(current.copy()), content_type, raw)
            body = eventsconv.to_core(patched)
            body.setdefault("metadata", {}).setdefault("resourceVersion", str(current.rev))
            result = await self.api.update(target.rt, target.namespace or "", target.name, body, options)
            return self._render_result(request, target, result)
        result = await self.api.patch(
            target.rt,
            target.namespace or "",
            target.name,
            content_type,
            raw,
            options,
            subresource=target.subresource,
        )
        return self._render_result(request, target, result)

    async def _delete_options(self, request: Request) -> dict[str, Any]:
        raw = await self._body(request)
        options: dict[str, Any] = {}
        if raw.strip():
            try:
                decoded = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise errors.bad_request(f"invalid DeleteOptions: {exc}") from exc
            if isinstance(decoded, dict):
                options = decoded
        query = request.query_params
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "orphanDependents" in query:
            options["orphanDependents"] = _bool(query["orphanDependents"])
        if query.getlist("dryRun"):
            options["dryRun"] = query.getlist("dryRun")
        for value in options.get("dryRun") or []:
            if value != "All":
                raise errors.bad_request(f'unsupported dry run value "{value}": only "All" is supported')
        if options.get("orphanDependents") is True and "propagationPolicy" not in options:
            options["propagationPolicy"] = "Orphan"
        return options

    async def delete(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        options = await self._delete_options(request)
        result = await self.api.delete(
            target.rt,
            target.namespace or "",
            target.name,
            propagation=options.get("propagationPolicy"),
            grace_period=options.get("gracePeriodSeconds"),
            preconditions=options.get("preconditions"),
            dry_run=bool(options.get("dryRun")),
        )
        # kube-apiserver answers 202 for a pending deletion only when orphanDependents=false was asked for;
        # anything else, finalizers and graceful deletion included, is a 200.
        accepted = result.accepted and options.get("orphanDependents") is False
        return json_response(target.out(result.obj), 202 if accepted else 200)

    async def delete_collection(self, request: Request, target: Target) -> Response:
        options = await self._delete_options(request)
        query = request.query_params
        listed = self.api.list_objects(
            target.rt,
            target.namespace,
            label_selector=query.get("labelSelector", ""),
            field_selector=query.get("fieldSelector", ""),
        )
        deleted = []
        for entry in listed.items:
            try:
                result = await self.api.delete(
                    target.rt,
                    metadata.namespace_of(entry.obj),
                    metadata.name_of(entry.obj),
                    propagation=options.get("propagationPolicy"),
                    grace_period=options.get("gracePeriodSeconds"),
                    dry_run=bool(options.get("dryRun")),
                )
            except errors.ApiError as exc:
                if exc.code == 404:
                    continue
                raise
            deleted.append(result.obj)
        rt = target.rt
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {}, "items": deleted}
        )

    # ------------------------------------------------------------------------------- subresources

    async def get_scale(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        entry = self.api.get(target.rt, target.namespace or "", target.name)
        return json_response(self.api.scale_of(target.rt, entry))

    async def update_scale(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        body = await self._decode_object(request)
        scale = await self.api.write_scale(
            target.rt, target.namespace or "", target.name, self._write_options(request), body=body
        )
        return json_response(scale)

    async def patch_scale(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        raw = await self._body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        scale = await self.api.write_scale(
            target.rt,
            target.namespace or "",
            target.name,
            self._write_options(request),
            patch=(content_type, raw),
        )
        return json_response(scale)

    async def pod_log(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        namespace, name = target.namespace or "", target.name
        pod = self.api.get(target.rt, namespace, name).obj
        try:
            query = podlogs.LogQuery.from_params(request.query_params)
            if not query.follow:
                return PlainTextResponse(podlogs.logs(pod, query))
            podlogs.locate(pod, query)  # refuse before the stream starts
        except podlogs.LogError as exc:
            raise errors.bad_request(str(exc)) from exc

        async def fetch() -> dict[str, Any] | None:
            try:
                return self.api.get(target.rt, namespace, name).obj
            except errors.ApiError:
                return None

        return StreamingResponse(podlogs.follow(pod, query, fetch), media_type="text/plain")

    async def bind_pod(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        body = await self._decode_object(request)
        node = ((body.get("target") or {}).get("name")) or ""
        if not node:
            raise errors.bad_request("binding target name is required")
        entry = self.api.get(target.rt, target.namespace or "", target.name)
        if (entry.obj.get("spec") or {}).get("nodeName"):
            raise errors.conflict(
                "pods",
                "",
                target.name,
                f'Operation cannot be fulfilled on pods/binding "{target.name}": pod {target.name} is '
                f'already assigned to node "{entry.obj["spec"]["nodeName"]}"',
            )
        obj = entry.copy()
        obj.setdefault("spec", {})["nodeName"] = node
        await self.api.update(
            target.rt,
            target.namespace or "",
            target.name,
            obj,
            WriteOptions(field_manager="kube-scheduler", user_agent=request.headers.get("user-agent", "")),
        )
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )

    async def finalize_namespace(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        body = await self._decode_object(request)
        result = await self.api.finalize_namespace(target.name, body)
        return json_response(result.obj)

    async def create_token(self, request: Request, target: Target) -> Response:
        assert target.name is not None
        body = await self._decode_object(request)
        sa = self.api.get(target.rt, target.namespace or "", target.name)
        spec = body.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        token, expires = self.auth.issue(
            target.namespace or "", target.name, expiration_seconds=seconds, uid=metadata.uid_of(sa.obj)
        )
        expiry = datetime.fromtimestamp(expires, tz=metadata.now().tzinfo)
        response = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": target.name, "namespace": target.namespace, "creationTimestamp": None},
            "spec": {
                "audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
                "expirationSeconds": seconds,
            },
            "status": {"token": token, "expirationTimestamp": metadata.rfc3339(expiry)},
        }
        return json_response(response, 201)

    def _review(self, request: Request, rt: ResourceType, body: dict[str, Any]) -> Response:
        user = request.scope.get("tugboat.user")
        result = dict(body)
        result["apiVersion"], result["kind"] = rt.api_version, rt.kind
        result.setdefault("metadata", {})["creationTimestamp"] = None
        if rt.resource == "selfsubjectaccessreviews":
            result["status"] = {"allowed": True, "reason": "the local cluster does not enforce RBAC"}
        else:
            name = getattr(user, "name", "system:admin")
            groups = list(getattr(user, "groups", ()))
            result["status"] = {"userInfo": {"username": name, "groups": groups}}
        return json_response(result, 201)


class _Front:
    """The outermost ASGI layer: authentication, and a short path for resource requests.

    Almost every request is a resource request (``/api/...``, ``/apis/...``); they go straight to the
    resource handler instead of through Starlette's router and exception middleware, which cost about as
    much CPU as the request's own work. Everything else (discovery, OpenAPI, health) takes the normal route.
    """

    _PUBLIC = ("/healthz", "/livez", "/readyz", "/version", "/version/")

    def __init__(
        self, app: Any, authenticator: Authenticator, resources: Callable[[Request], Awaitable[Response]]
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.resources = resources

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        user = self.authenticator.authenticate(header)
        path = scope.get("path", "")
        if user is None and path not in self._PUBLIC:
            response = error_response(errors.unauthorized())
            await response(scope, receive, send)
            return
        scope["tugboat.user"] = user
        if path.startswith(("/api/", "/apis/")) and scope.get("method") in _RESOURCE_METHODS:
            response = await self.resources(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


_RESOURCE_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
