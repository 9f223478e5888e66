"""Plausible container logs for simulated pods: what ``kubectl logs`` prints on the local cluster.

Simulated containers run no process, so their logs are made up, deterministically, from what the pod's
status says about each container instance (its ``containerID``, ``startedAt``, ``finishedAt``, exit code)
and from its behaviour (behaviour.py): startup lines, a steady trickle of request or probe lines while it
runs (errors for ``bad`` images, failed readiness checks for never-ready ones), and how it ended (a panic
for a crash loop, the exit code of a Job pod, a clean shutdown). The same request always gives the same
lines, so ``--tail``, ``--since``, ``--timestamps`` and ``--previous`` behave as on a real cluster, and
errors are the ones the API server and kubelet return (``... is waiting to start: ContainerCreating``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tugboat.localcluster.controllers.behaviour import Behaviour, behaviour_of, image_tag

Obj = dict[str, Any]

TICK_SECONDS = 10.0  # one periodic line per running container every 10 s
MAX_PERIODIC_LINES = 5000
FOLLOW_POLL_SECONDS = 0.5
CRASH_REASON = "simulated crash (sim.tugboat.dev)"
_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")


class LogError(Exception):
    """A request the API server or kubelet would refuse with 400 Bad Request."""


@dataclass(frozen=True)
class LogQuery:
    """The ``pods/log`` query parameters that matter here."""

    container: str = ""
    previous: bool = False
    follow: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: datetime | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> LogQuery:
        def flag(name: str) -> bool:
            return params.get(name, "").lower() in ("1", "t", "true")

        def number(name: str) -> int | None:
            text = params.get(name)
            if text in (None, ""):
                return None
            try:
                value = int(text)
            except ValueError:
                raise LogError(f'invalid value "{text}" for {name}') from None
            if value < 0 or (value == 0 and name != "tailLines"):
                raise LogError(f"{name}: Invalid value: {value}: must be greater than 0")
            return value

        since_time = None
        if params.get("sinceTime"):
            try:
                since_time = datetime.fromisoformat(params["sinceTime"].replace("Z", "+00:00"))
            except ValueError:
                raise LogError(f'invalid value "{params["sinceTime"]}" for sinceTime') from None
        return cls(
            container=params.get("container", ""),
            previous=flag("previous"),
            follow=flag("follow"),
            timestamps=flag("timestamps"),
            tail_lines=number("tailLines"),
            since_seconds=number("sinceSeconds"),
            since_time=since_time,
            limit_bytes=number("limitBytes"),
        )


@dataclass(frozen=True)
class Instance:
    """One run of a container, as the pod's status reports it."""

    container: Obj  # the container's spec
    container_id: str
    started_at: datetime
    finished_at: datetime | None
    exit_code: int | None
    reason: str
    attempt: int


@dataclass(frozen=True)
class Line:
    at: datetime
    text: str


# ----------------------------------------------------------------------------------------- locating


def _parse(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _names(containers: list[Obj]) -> str:
    return "[" + " ".join(str(c.get("name")) for c in containers) + "]"


def _container_spec(pod: Obj, name: str) -> Obj:
    spec = pod.get("spec") or {}
    pod_name = (pod.get("metadata") or {}).get("name")
    containers = list(spec.get("containers") or [])
    init = list(spec.get("initContainers") or [])
    if not name:
        if len(containers) == 1:
            return dict(containers[0])
        message = (
            f"a container name must be specified for pod {pod_name}, choose one of: {_names(containers)}"
        )
        if init:
            message += f" or one of the init containers: {_names(init)}"
        raise LogError(message)
    for container in containers + init + list(spec.get("ephemeralContainers") or []):
        if container.get("name") == name:
            return dict(container)
    raise LogError(f"container {name} is not valid for pod {pod_name}")


def _container_status(pod: Obj, name: str) -> Obj | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for item in status.get(key) or []:
            if item.get("name") == name:
                return dict(item)
    return None


def locate(pod: Obj, query: LogQuery) -> Instance:
    """The container instance whose logs the query asks for (or the error kubelet would return)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    pod_name = str(meta.get("name"))
    container = _container_spec(pod, query.container)
    name = str(container.get("name"))
    if not spec.get("nodeName"):
        raise LogError(f"pod {pod_name} does not have a host assigned")
    status = _container_status(pod, name)
    if status is None:
        raise LogError(f'container "{name}" in pod "{pod_name}" is waiting to start: ContainerCreating')
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated")
    restarts = int(status.get("restartCount") or 0)
    if query.previous:
        if not last:
            raise LogError(f'previous terminated container "{name}" in pod "{pod_name}" not found')
        return _instance(container, last, str(last.get("containerID") or ""), max(0, restarts - 1))
    if "running" in state:
        return _instance(container, state["running"], str(status.get("containerID") or ""), restarts)
    if "terminated" in state:
        terminated = state["terminated"]
        return _instance(container, terminated, str(terminated.get("containerID") or ""), restarts)
    if last:  # waiting to restart (CrashLoopBackOff): the logs of the instance that just died
        return _instance(container, last, str(last.get("containerID") or ""), max(0, restarts - 1))
    reason = str((state.get("waiting") or {}).get("reason") or "ContainerCreating")
    if reason in _PULL_REASONS:
        reason = "trying and failing to pull image"
    raise LogError(f'container "{name}" in pod "{pod_name}" is waiting to start: {reason}')


def _instance(container: Obj, state: Obj, container_id: str, attempt: int) -> Instance:
    started = _parse(state.get("startedAt")) or datetime.now(UTC)
    exit_code = state.get("exitCode")
    return Instance(
        container=container,
        container_id=container_id,
        started_at=started,
        finished_at=_parse(state.get("finishedAt")),
        exit_code=int(exit_code) if exit_code is not None else None,
        reason=str(state.get("reason") or ""),
        attempt=attempt,
    )


# ----------------------------------------------------------------------------------------- content


def _seed(instance: Instance, index: int) -> int:
    digest = hashlib.sha256(f"{instance.container_id}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _is_nginx(image: str) -> bool:
    return "nginx" in image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def _job_like(pod: Obj, container: Obj, behaviour: Behaviour) -> bool:
    """Whether the container runs to completion (Job pods, init containers, run-for/exit-code)."""
    spec = pod.get("spec") or {}
    if any(c.get("name") == container.get("name") for c in spec.get("initContainers") or []):
        return container.get("restartPolicy") != "Always"
    if spec.get("restartPolicy") in ("Never", "OnFailure"):
        return True
    return behaviour.exit_code is not None or behaviour.run_for is not None


def _startup(pod: Obj, instance: Instance, behaviour: Behaviour) -> list[str]:
    image = str(instance.container.get("image") or "")
    name = str(instance.container.get("name"))
    if _is_nginx(image):
        version = image_tag(image) or "1.27.3"
        return [
            "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, "
            "will attempt to perform configuration",
            "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
            "/docker-entrypoint.sh: Configuration complete; ready for start up",
            '{nginx}[notice] 1#1: using the "epoll" event method',
            f"{{nginx}}[notice] 1#1: nginx/{version}",
            "{nginx}[notice] 1#1: start worker processes",
            "{nginx}[notice] 1#1: start worker process 29",
        ]
    tag = image_tag(image) or "latest"
    meta = pod.get("metadata") or {}
    lines = [
        f'level=info msg="starting {name}" version={tag} pod={meta.get("name")} '
        f"namespace={meta.get('namespace')}" + (f" attempt={instance.attempt}" if instance.attempt else ""),
        'level=info msg="configuration loaded" source=env',
    ]
    if _job_like(pod, instance.container, behaviour):
        lines.append('level=info msg="job started"')
    else:
        lines.append('level=info msg="listening" addr=:8080')
    return lines


def _periodic(pod: Obj, instance: Instance, behaviour: Behaviour, index: int) -> str:
    nginx = _is_nginx(str(instance.container.get("image") or ""))
    seed = _seed(instance, index)
    if _job_like(pod, instance.container, behaviour):
        return f'level=info msg="working" progress={min(99, 10 + index * 7)}%'
    if behaviour.never_ready:
        code = 503
    elif behaviour.error_rate > 0 and (seed % 10_000) / 10_000 < behaviour.error_rate:
        code = 500
    else:
        code = 200
    latency = behaviour.latency_ms * (0.5 + (seed % 1000) / 1000)
    client = f"10.244.0.{1 + seed % 250}"
    if nginx:
        size = 615 if code == 200 else 157
        return f'{client} - - [{{clf}}] "GET / HTTP/1.1" {code} {size} "-" "curl/8.5.0" "-"'
    level = "info" if code == 200 else "error"
    return (
        f'level={level} msg="request served" method=GET path=/ status={code} '
        f"duration={latency:.1f}ms remote={client}"
    )


def _ending(pod: Obj, instance: Instance, behaviour: Behaviour) -> list[str]:
    code = instance.exit_code or 0
    nginx = _is_nginx(str(instance.container.get("image") or ""))
    if behaviour.crash_loop and code != 0:
        return [
            f"panic: {CRASH_REASON}",
            "",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/src/cmd/app/main.go:42 +0x1d4",
            f'level=fatal msg="exiting" exitCode={code} reason="{CRASH_REASON}"',
        ]
    if _job_like(pod, instance.container, behaviour):
        if code == 0:
            return ['level=info msg="job complete" exitCode=0']
        return [f'level=error msg="job failed" exitCode={code} reason="{CRASH_REASON}"']
    if nginx:
        return [
            "{nginx}[notice] 1#1: signal 3 (SIGQUIT) received, shutting down",
            "{nginx}[notice] 1#1: exit",
        ]
    return [
        'level=info msg="received terminated, shutting down"',
        f'level=info msg="stopped" exitCode={code}',
    ]


def _format(text: str, at: datetime) -> str:
    text = text.replace("{nginx}", at.strftime("%Y/%m/%d %H:%M:%S "))
    return text.replace("{clf}", at.strftime("%d/%b/%Y:%H:%M:%S +0000"))


def instance_lines(pod: Obj, instance: Instance, *, now: datetime) -> list[Line]:
    """Every line the instance has written by ``now``."""
    single = {"metadata": pod.get("metadata") or {}, "spec": {"containers": [instance.container]}}
    behaviour = behaviour_of(single)
    end = instance.finished_at or now
    start = instance.started_at
    lines: list[Line] = []
    for offset, text in enumerate(_startup(pod, instance, behaviour)):
        at = start + timedelta(milliseconds=offset)
        if at <= end:
            lines.append(Line(at, _format(text, at)))
    first_tick = start + timedelta(seconds=2)
    if end > first_tick:
        ticks = int((end - first_tick).total_seconds() // TICK_SECONDS) + 1
        for index in range(max(0, ticks - MAX_PERIODIC_LINES), ticks):
            at = first_tick + timedelta(seconds=index * TICK_SECONDS)
            lines.append(Line(at, _format(_periodic(pod, instance, behaviour, index), at)))
    if instance.finished_at is not None:
        for offset, text in enumerate(_ending(pod, instance, behaviour)):
            at = instance.finished_at + timedelta(microseconds=offset)
            lines.append(Line(at, _format(text, at)))
    return lines


def select(lines: list[Line], query: LogQuery, *, now: datetime) -> list[Line]:
    cutoff = query.since_time
    if query.since_seconds is not None:
        cutoff = now - timedelta(seconds=query.since_seconds)
    if cutoff is not None:
        lines = [line for line in lines if line.at >= cutoff]
    if query.tail_lines is not None:
        lines = lines[-query.tail_lines :] if query.tail_lines else []
    return lines


def _nano(at: datetime) -> str:
    """Go's RFC3339Nano (trailing zeros of the fraction dropped), as CRI log lines carry."""
    fraction = f"{at.microsecond:06d}000".rstrip("0")
    return at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def render(lines: list[Line], query: LogQuery) -> bytes:
    parts = []
    for line in lines:
        stamp = _nano(line.at) + " " if query.timestamps else ""
        parts.append(f"{stamp}{line.text}\n")
    data = "".join(parts).encode()
    return data[: query.limit_bytes] if query.limit_bytes is not None else data


def logs(pod: Obj, query: LogQuery, *, now: datetime | None = None) -> bytes:
    """The body of a non-following ``pods/log`` request (raises :class:`LogError`)."""
    moment = now or datetime.now(UTC)
    instance = locate(pod, query)
    return render(select(instance_lines(pod, instance, now=moment), query, now=moment), query)


async def follow(
    pod: Obj, query: LogQuery, fetch: Callable[[], Awaitable[Obj | None]]
) -> AsyncIterator[bytes]:
    """``follow=true``: the lines so far, then new ones as they are written, until the instance ends."""
    instance = locate(pod, query)
    now = datetime.now(UTC)
    every = instance_lines(pod, instance, now=now)
    last = every[-1].at if every else instance.started_at
    budget = query.limit_bytes
    chunk = render(select(every, query, now=now), query)
    yield chunk
    if budget is not None:
        budget -= len(chunk)
    uid = (pod.get("metadata") or {}).get("uid")
    while instance.finished_at is None and (budget is None or budget > 0):
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
        current = await fetch()
        if current is None or (current.get("metadata") or {}).get("uid") != uid:
            return
        instance = _same_instance(current, instance)
        fresh = [line for line in instance_lines(current, instance, now=datetime.now(UTC)) if line.at > last]
        if fresh:
            last = fresh[-1].at
            chunk = render(fresh, LogQuery(timestamps=query.timestamps, limit_bytes=budget))
            if budget is not None:
                budget -= len(chunk)
            yield chunk


def _same_instance(pod: Obj, instance: Instance) -> Instance:
    """The followed instance as the pod reports it now; marked finished once it is no longer running."""
    status = _container_status(pod, str(instance.container.get("name"))) or {}
    state = status.get("state") or {}
    for candidate in (state.get("terminated"), (status.get("lastState") or {}).get("terminated")):
        if candidate and candidate.get("containerID") == instance.container_id:
            return _instance(instance.container, candidate, instance.container_id, instance.attempt)
    if "running" in state and status.get("containerID") == instance.container_id:
        return instance
    # The instance is gone (replaced or the pod is going away): end it now.
    return Instance(
        instance.container,
        instance.container_id,
        instance.started_at,
        datetime.now(UTC),
        0,
        "Completed",
        instance.attempt,
    )
