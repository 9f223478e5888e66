"""Pod logs and Kubernetes events as Argo CD's API serves them for an Application.

Logs come from the cluster's ``pods/log`` subresource with timestamps on, and go out as Argo CD's
gateway streams them: one JSON object per line, ``{"result": {"content", "timeStamp", "timeStampStr",
"podName", "last"}}``, ended by a line with ``last: true``. With ``follow`` the lines are passed on as
the kubelet writes them, until the container stops or the client goes away.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.server.problems import Problem


@dataclass(frozen=True)
class LogRequest:
    """What a client asked for: the pod, and the ``pods/log`` options passed on."""

    namespace: str
    pod: str
    container: str = ""
    tail_lines: int | None = None
    since_seconds: int | None = None
    previous: bool = False
    follow: bool = False
    filter: str = ""

    def params(self) -> dict[str, str]:
        out = {"timestamps": "true"}
        if self.container:
            out["container"] = self.container
        if self.tail_lines is not None:
            out["tailLines"] = str(self.tail_lines)
        if self.since_seconds:
            out["sinceSeconds"] = str(self.since_seconds)
        if self.previous:
            out["previous"] = "true"
        if self.follow:
            out["follow"] = "true"
        return out


def optional_int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise Problem(400, f"invalid {name} '{value}': must be a number") from exc
    if number < 0:
        raise Problem(400, f"invalid {name} '{value}': must not be negative")
    return number


def entry(line: str, pod: str) -> bytes:
    """One log line (``<RFC3339 time> <content>``) as a line of Argo CD's log stream."""
    stamp, _, content = line.partition(" ")
    try:
        datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        stamp, content = "", line
    result = {"content": content, "timeStamp": stamp, "timeStampStr": stamp, "podName": pod, "last": False}
    return orjson.dumps({"result": result}) + b"\n"


def last_entry(pod: str) -> bytes:
    result = {"content": "", "timeStampStr": "", "podName": pod, "last": True}
    return orjson.dumps({"result": result}) + b"\n"


def _problem(status: int, body: bytes) -> Problem:
    try:
        message = str(orjson.loads(body).get("message") or "")
    except (orjson.JSONDecodeError, AttributeError):
        message = body.decode("utf-8", "replace")[:500]
    return Problem(status if status in (400, 403, 404) else 500, message or f"pod logs failed ({status})")


async def read(client: Client, request: LogRequest) -> list[bytes]:
    """The log lines (not following) as stream lines, the closing ``last`` line included."""
    path = kinds.POD.object_path(request.pod, request.namespace, "log")
    try:
        response = await client.http.get(path, params=request.params())
    except httpx.HTTPError as exc:
        raise Problem(503, f"cannot read the logs of pod {request.pod}: {exc}") from exc
    if response.status_code >= 400:
        raise _problem(response.status_code, response.content)
    lines = _filtered(response.text.splitlines(), request.filter)
    return [*(entry(line, request.pod) for line in lines), last_entry(request.pod)]


def _filtered(lines: Iterable[str], wanted: str) -> list[str]:
    return [line for line in lines if line and (not wanted or wanted in line)]


async def start_follow(client: Client, request: LogRequest) -> AsyncGenerator[bytes, None]:
    """Open the followed log stream (errors raise here, before any byte is sent) and return the
    iterator of stream lines."""
    path = kinds.POD.object_path(request.pod, request.namespace, "log")
    http_request = client.http.build_request("GET", path, params=request.params(), timeout=None)
    try:
        response = await client.http.send(http_request, stream=True)
    except httpx.HTTPError as exc:
        raise Problem(503, f"cannot read the logs of pod {request.pod}: {exc}") from exc
    if response.status_code >= 400:
        body = await response.aread()
        await response.aclose()
        raise _problem(response.status_code, body)
    return _follow(response, request)


async def _follow(response: httpx.Response, request: LogRequest) -> AsyncGenerator[bytes, None]:
    try:
        async for line in response.aiter_lines():
            if _filtered([line], request.filter):
                yield entry(line, request.pod)
        yield last_entry(request.pod)
    except httpx.HTTPError:
        return
    finally:
        await response.aclose()


# ------------------------------------------------------------------------------------------- events


def _event_time(event: Mapping[str, Any]) -> str:
    meta = event.get("metadata") or {}
    for value in (event.get("lastTimestamp"), event.get("eventTime"), meta.get("creationTimestamp")):
        if value:
            return str(value)
    return ""


def _involves(event: Mapping[str, Any], *, name: str, namespace: str, uid: str, kind: str) -> bool:
    involved = event.get("involvedObject") or {}
    if involved.get("name") != name:
        return False
    if namespace and (involved.get("namespace") or "") != namespace:
        return False
    if uid and involved.get("uid") and involved.get("uid") != uid:
        return False
    return not kind or involved.get("kind") == kind


async def events(
    client: Client, namespace: str, *, name: str, uid: str = "", kind: str = ""
) -> dict[str, Any]:
    """``{"metadata", "items"}``: the Events of ``namespace`` about the object ``name`` (and ``uid``,
    ``kind`` when given), oldest first by last occurrence."""
    try:
        found, version = await client.list(kinds.EVENT, namespace)
    except errors.ApiError as exc:
        if exc.code == 403:
            raise Problem(403, f"cannot list events in namespace {namespace}") from exc
        raise
    items: list[Obj] = [
        event for event in found if _involves(event, name=name, namespace=namespace, uid=uid, kind=kind)
    ]
    items.sort(key=_event_time)
    return {"metadata": {"resourceVersion": version}, "items": items}
