"""Helpers for the workload-controller tests (StatefulSet, DaemonSet, Job, CronJob).

Some tests run a cluster with only the controller under test (no nodes, scheduler or kubelet) and play the
kubelet themselves, writing pod status through ``/status``; these helpers do that. Polling is
:func:`sim_support.wait_for`.
"""

from __future__ import annotations

from typing import Any

import yaml
from sim_support import stamp

from clusterproc import ClusterProcess

Obj = dict[str, Any]

PATHS = {
    "pods": "/api/v1/namespaces/{ns}/pods",
    "pvcs": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "events": "/api/v1/namespaces/{ns}/events",
    "nodes": "/api/v1/nodes",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
    "cronjobs": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "statefulsets": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "daemonsets": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "controllerrevisions": "/apis/apps/v1/namespaces/{ns}/controllerrevisions",
}


class Api:
    """A tiny synchronous REST client for one namespace of a test cluster."""

    def __init__(self, cluster: ClusterProcess, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.http = cluster.client()

    def path(self, resource: str, name: str = "", sub: str = "") -> str:
        base = PATHS[resource].format(ns=self.namespace)
        return base + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def create(self, resource: str, obj: Obj | str) -> Obj:
        body = yaml.safe_load(obj) if isinstance(obj, str) else obj
        response = self.http.post(self.path(resource), json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get(self, resource: str, name: str) -> Obj | None:
        response = self.http.get(self.path(resource, name))
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return dict(response.json())

    def list(self, resource: str, **params: str) -> list[Obj]:
        response = self.http.get(self.path(resource), params=params)
        assert response.status_code == 200, response.text
        return list(response.json().get("items") or [])

    def patch(self, resource: str, name: str, patch: Obj, *, sub: str = "") -> Obj:
        response = self.http.patch(
            self.path(resource, name, sub),
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def delete(self, resource: str, name: str, **options: Any) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options}
        response = self.http.request("DELETE", self.path(resource, name), json=body)
        assert response.status_code in (200, 202, 404), response.text

    def events(self, name: str) -> list[tuple[str, str]]:
        items = self.list("events", fieldSelector=f"involvedObject.name={name}")
        return [(str(e.get("reason")), str(e.get("message"))) for e in items]

    def pods(self, **labels: str) -> list[Obj]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return self.list("pods", **({"labelSelector": selector} if selector else {}))

    # ---------------------------------------------------------------------------- playing the kubelet

    def set_pod(self, name: str, phase: str, *, ready: bool = False, exit_code: int | None = None) -> Obj:
        """Write a pod's status as a kubelet would for ``phase`` (Running, Succeeded or Failed)."""
        now = stamp()
        ready_status = "True" if ready and phase == "Running" else "False"
        state: Obj = {"running": {"startedAt": now}}
        if phase in ("Succeeded", "Failed"):
            code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
        status = {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": ready_status, "lastTransitionTime": now},
                {"type": "Ready", "status": ready_status, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": "c",
                    "ready": ready_status == "True",
                    "restartCount": 0,
                    "image": "x",
                    "state": state,
                }
            ],
        }
        return self.patch("pods", name, {"status": status}, sub="status")

    def ready(self, name: str) -> Obj:
        return self.set_pod(name, "Running", ready=True)


def names(objs: list[Obj]) -> list[str]:
    return sorted(str(o["metadata"]["name"]) for o in objs)


def live(objs: list[Obj]) -> list[Obj]:
    """Objects not being deleted."""
    return [o for o in objs if not o["metadata"].get("deletionTimestamp")]


def condition(obj: Obj | None, kind: str) -> Obj | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None
