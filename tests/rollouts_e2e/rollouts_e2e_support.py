"""Shared support for the rollout controller's end-to-end tests: the controller process, upstream example
manifests, and the reads, writes and polls that ``kubectl argo rollouts`` and upstream's e2e fixtures do.

Every helper talks to the simulated local cluster through its API (``ClusterProcess.client``) or through
real kubectl, never to our own code: the tests see only what a user of the cluster would see. Waits poll
with a timeout and report the last state they saw, so that a failure says what the controller did.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).parent.parent))

import clusterproc
from clusterproc import ClusterProcess
from examples_support import example_dir

EXAMPLES = example_dir("argo-rollouts")
HASH = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
SCALE_DOWN_DEADLINE = "scale-down-deadline"
EPHEMERAL_METADATA = "rollout.argoproj.io/ephemeral-metadata"
READINESS_GATE = "argoproj.io/e2e-readiness"  # the gate upstream's e2e manifests put on their pods
NGINX_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"

Obj = dict[str, Any]
T = TypeVar("T")


# ------------------------------------------------------------------------------------ controller


start_controller = clusterproc.start_rollouts_controller
stop_controller = clusterproc.stop_process


class JsonEndpoint:
    """A metrics system stood in for by the test: ``GET /<name>`` answers ``answer(name)`` as JSON (404
    when it is None), from a thread of its own."""

    def __init__(self, answer: Callable[[str], Any]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = answer(self.path.strip("/"))
                body = json.dumps(found).encode()
                self.send_response(200 if found is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------ manifests


def load_manifest(relative: str, *, replace: Mapping[str, str] | None = None) -> list[Obj]:
    """The documents of an upstream argo-rollouts file (path relative to its repository root), with
    ``replace``'s substitutions made in the text first (upstream's ``RolloutTemplate``)."""
    assert EXAMPLES is not None, "TUGBOAT_EXAMPLES is not set"
    text = (Path(EXAMPLES) / relative).read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    """The one document of ``kind`` (and ``name``) in ``docs``; edit it in place before applying."""
    for doc in docs:
        if doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name):
            return doc
    raise AssertionError(f"no {kind} {name or ''} in the manifest")


def rollout_doc(docs: Iterable[Obj]) -> Obj:
    return find(docs, "Rollout")


def canary_of(docs: Iterable[Obj]) -> Obj:
    canary: Obj = rollout_doc(docs)["spec"]["strategy"]["canary"]
    return canary


def route_with_nginx(docs: list[Obj]) -> str:
    """Replace the manifest's ALB traffic routing (which the rollout controller does not implement) by
    NGINX on the same Ingress, pointed at the stable Service. The behaviours upstream's tests check -
    scale-down delays, abort, setCanaryScale, dynamicStableScale - only depend on traffic routing being
    present, not on its provider. Returns the name of the canary Ingress the router will create."""
    canary = canary_of(docs)
    alb = canary["trafficRouting"].pop("alb")
    ingress = find(docs, "Ingress", alb["ingress"])
    ingress["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            path["path"] = "/"
            path["backend"]["service"] = {"name": canary["stableService"], "port": {"number": 80}}
    canary["trafficRouting"]["nginx"] = {"stableIngress": alb["ingress"]}
    return f"{rollout_doc(docs)['metadata']['name']}-{alb['ingress']}-canary"


def apply(cluster: ClusterProcess, namespace: str, docs: Iterable[Obj]) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump_all(list(docs)))


# ------------------------------------------------------------------------------------ API reads


def get(cluster: ClusterProcess, path: str) -> Obj | None:
    with cluster.client() as client:
        response = client.get(path)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: Obj = response.json()
    return found


def items(cluster: ClusterProcess, path: str, **params: str) -> list[Obj]:
    with cluster.client() as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    found: list[Obj] = response.json()["items"]
    return found


def rollout_path(namespace: str, name: str = "") -> str:
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/rollouts"
    return f"{base}/{name}" if name else base


def get_rollout(cluster: ClusterProcess, namespace: str, name: str) -> Obj:
    found = get(cluster, rollout_path(namespace, name))
    assert found is not None, f"rollout {namespace}/{name} not found"
    return found


def replicasets(cluster: ClusterProcess, namespace: str) -> list[Obj]:
    """The namespace's ReplicaSets that belong to a Rollout (they carry the pod-template-hash label)."""
    return items(cluster, f"/apis/apps/v1/namespaces/{namespace}/replicasets", labelSelector=HASH)


def replicaset_by_revision(cluster: ClusterProcess, namespace: str, revision: int) -> Obj:
    """The ReplicaSet whose ``rollout.argoproj.io/revision`` is ``revision`` (upstream's
    ``GetReplicaSetByRevision``)."""
    for rs in replicasets(cluster, namespace):
        if (rs["metadata"].get("annotations") or {}).get(REVISION) == str(revision):
            return rs
    raise AssertionError(f"no ReplicaSet of revision {revision} in {namespace}")


def hash_of(obj: Mapping[str, Any]) -> str:
    return str((obj["metadata"].get("labels") or {}).get(HASH, ""))


def spec_replicas(rs: Mapping[str, Any]) -> int:
    return int(rs["spec"].get("replicas", 1))


def deadline_of(rs: Mapping[str, Any]) -> str | None:
    found = (rs["metadata"].get("annotations") or {}).get(SCALE_DOWN_DEADLINE)
    return str(found) if found else None


def pods(cluster: ClusterProcess, namespace: str, pod_hash: str | None = None) -> list[Obj]:
    """Pods not being deleted (upstream's pod counts ignore terminating pods), of one hash if given."""
    selector = f"{HASH}={pod_hash}" if pod_hash else HASH
    found = items(cluster, f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)
    return [p for p in found if not p["metadata"].get("deletionTimestamp")]


def pod_count(cluster: ClusterProcess, namespace: str, pod_hash: str) -> int:
    return len(pods(cluster, namespace, pod_hash))


def is_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def service_hash(cluster: ClusterProcess, namespace: str, name: str) -> str | None:
    svc = get(cluster, f"/api/v1/namespaces/{namespace}/services/{name}")
    assert svc is not None, f"service {name} not found"
    return (svc["spec"].get("selector") or {}).get(HASH)


def ingress_weight(cluster: ClusterProcess, namespace: str, name: str) -> str | None:
    """The ``canary-weight`` annotation of an NGINX canary Ingress (None while it does not exist)."""
    ingress = get(cluster, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}")
    if ingress is None:
        return None
    return (ingress["metadata"].get("annotations") or {}).get(NGINX_WEIGHT)


def ephemeral_record(rs: Mapping[str, Any]) -> Obj | None:
    """The parsed ``rollout.argoproj.io/ephemeral-metadata`` annotation of a ReplicaSet."""
    text = (rs["metadata"].get("annotations") or {}).get(EPHEMERAL_METADATA)
    if text is None:
        return None
    found: Obj = json.loads(text)
    return found


def rollout_events(cluster: ClusterProcess, namespace: str, name: str) -> list[tuple[str, str, int]]:
    """``(reason, message, count)`` of the Events about one Rollout."""
    uid = get_rollout(cluster, namespace, name)["metadata"]["uid"]
    return [
        (e.get("reason", ""), e.get("message", ""), int(e.get("count") or 1))
        for e in items(cluster, f"/api/v1/namespaces/{namespace}/events")
        if (e.get("involvedObject") or {}).get("uid") == uid
    ]


# ------------------------------------------------------------------------------------ API writes


def _patch(cluster: ClusterProcess, path: str, body: Obj | list[Obj], content_type: str) -> Obj:
    with cluster.client() as client:
        response = client.patch(path, content=json.dumps(body), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    found: Obj = response.json()
    return found


def patch_rollout(cluster: ClusterProcess, namespace: str, name: str, patch: Obj) -> Obj:
    """A JSON merge patch of the Rollout (upstream's ``UpdateSpec``/``PatchSpec``)."""
    return _patch(cluster, rollout_path(namespace, name), patch, "application/merge-patch+json")


def patch_status(cluster: ClusterProcess, namespace: str, name: str, status: Obj) -> None:
    """A merge patch of ``/status``: how ``kubectl argo rollouts`` promotes, aborts and retries."""
    _patch(
        cluster, rollout_path(namespace, name) + "/status", {"status": status}, "application/merge-patch+json"
    )


def promote(cluster: ClusterProcess, namespace: str, name: str) -> None:
    patch_status(cluster, namespace, name, {"pauseConditions": None})


def abort(cluster: ClusterProcess, namespace: str, name: str) -> None:
    patch_status(cluster, namespace, name, {"abort": True})


def touch_template(cluster: ClusterProcess, namespace: str, name: str, value: str) -> None:
    """A new pod template through an annotation, as upstream's ``UpdateSpec()`` without arguments."""
    patch = {"spec": {"template": {"metadata": {"annotations": {"update": value}}}}}
    patch_rollout(cluster, namespace, name, patch)


def scale(cluster: ClusterProcess, namespace: str, name: str, replicas: int) -> None:
    """``kubectl scale rollout`` (the scale subresource)."""
    cluster.kubectl("-n", namespace, "scale", "rollout", name, f"--replicas={replicas}")


def mark_pods_ready(
    cluster: ClusterProcess, namespace: str, pod_hash: str, count: int, *, timeout: float = 20
) -> None:
    """Add the ``argoproj.io/e2e-readiness`` condition to ``count`` pods of ``pod_hash`` that do not have
    it yet, waiting for such pods to exist (upstream's ``MarkPodsReady``)."""
    deadline = time.monotonic() + timeout
    marked: set[str] = set()
    while len(marked) < count:
        for pod in pods(cluster, namespace, pod_hash):
            name = pod["metadata"]["name"]
            gated = any(
                c.get("type") == READINESS_GATE for c in pod.get("status", {}).get("conditions") or []
            )
            if gated or name in marked or len(marked) >= count:
                continue
            condition = {"type": READINESS_GATE, "status": "True"}
            path = f"/api/v1/namespaces/{namespace}/pods/{name}/status"
            body = {"status": {"conditions": [condition]}}
            _patch(cluster, path, body, "application/strategic-merge-patch+json")
            marked.add(name)
        if len(marked) < count:
            assert time.monotonic() < deadline, f"only {len(marked)} of {count} pods of {pod_hash} to mark"
            time.sleep(0.1)


# ------------------------------------------------------------------------------------ waiting


def wait_for(check: Callable[[], T | None], *, what: str, timeout: float = 30, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy, which is returned; fail after ``timeout``
    seconds with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {found!r}")
        time.sleep(interval)


def wait_equal(check: Callable[[], object], expected: object, *, what: str, timeout: float = 30) -> None:
    """Poll ``check`` until it returns ``expected``; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}: expected {expected!r}, saw {found!r}"
            )
        time.sleep(0.1)


def wait_rollout(
    cluster: ClusterProcess,
    namespace: str,
    name: str,
    check: Callable[[Obj], bool],
    *,
    what: str,
    timeout: float = 30,
) -> Obj:
    """Poll the Rollout until ``check`` accepts it; fail with its last status."""
    deadline = time.monotonic() + timeout
    while True:
        ro = get_rollout(cluster, namespace, name)
        if check(ro):
            return ro
        if time.monotonic() > deadline:
            status = yaml.safe_dump(ro.get("status"), sort_keys=False)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{status}")
        time.sleep(0.1)


def observed(ro: Mapping[str, Any]) -> bool:
    """Whether the controller has written status for the Rollout's current generation."""
    return (ro.get("status") or {}).get("observedGeneration") == str(ro["metadata"].get("generation"))


def phase_is(
    expected: str, message: str | None = None, *, pod_hash: str | None = None
) -> Callable[[Obj], bool]:
    """A check for :func:`wait_rollout`: the observed phase is ``expected``, the message starts with
    ``message`` and (if given) the desired pod hash is ``pod_hash``."""

    def check(ro: Obj) -> bool:
        status = ro.get("status") or {}
        return (
            observed(ro)
            and status.get("phase") == expected
            and (message is None or str(status.get("message", "")).startswith(message))
            and (pod_hash is None or status.get("currentPodHash") == pod_hash)
        )

    return check


def updated_to_new_template(
    previous_hash: str, expected: str, message: str | None = None
) -> Callable[[Obj], bool]:
    """A check: the controller saw a new template (the hash moved on from ``previous_hash``) and the
    phase is ``expected``."""

    def check(ro: Obj) -> bool:
        current = (ro.get("status") or {}).get("currentPodHash")
        return current not in (None, previous_hash) and phase_is(expected, message)(ro)

    return check


# ------------------------------------------------------------------------------------ one Rollout


@dataclass(frozen=True)
class RolloutHandle:
    """One Rollout under test: the reads, writes and waits above, bound to its cluster, namespace and
    name."""

    cluster: ClusterProcess
    namespace: str
    name: str

    def get(self) -> Obj:
        return get_rollout(self.cluster, self.namespace, self.name)

    def status(self) -> Obj:
        found: Obj = self.get().get("status") or {}
        return found

    def wait(self, check: Callable[[Obj], bool], *, what: str, timeout: float = 30) -> Obj:
        return wait_rollout(self.cluster, self.namespace, self.name, check, what=what, timeout=timeout)

    def wait_phase(
        self, phase: str, message: str | None = None, *, pod_hash: str | None = None, timeout: float = 30
    ) -> Obj:
        what = f"{self.name} {phase} {message or ''} {pod_hash or ''}".strip()
        return self.wait(phase_is(phase, message, pod_hash=pod_hash), what=what, timeout=timeout)

    def wait_update(
        self, previous_hash: str, phase: str, message: str | None = None, *, timeout: float = 30
    ) -> Obj:
        """Wait until the controller has seen a template other than ``previous_hash``'s and reports
        ``phase``."""
        check = updated_to_new_template(previous_hash, phase, message)
        return self.wait(check, what=f"{self.name} updated from {previous_hash}, {phase}", timeout=timeout)

    def patch(self, patch: Obj) -> Obj:
        return patch_rollout(self.cluster, self.namespace, self.name, patch)

    def patch_status(self, status: Obj) -> None:
        patch_status(self.cluster, self.namespace, self.name, status)

    def touch(self, value: str) -> None:
        touch_template(self.cluster, self.namespace, self.name, value)

    def set_image(self, image: str) -> None:
        """A new image for the first container (a JSON patch, like ``kubectl argo rollouts set image``)."""
        path = rollout_path(self.namespace, self.name)
        op = {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}
        _patch(self.cluster, path, [op], "application/json-patch+json")

    def promote(self) -> None:
        promote(self.cluster, self.namespace, self.name)

    def abort(self) -> None:
        abort(self.cluster, self.namespace, self.name)

    def scale(self, replicas: int) -> None:
        scale(self.cluster, self.namespace, self.name, replicas)

    def rs(self, revision: int) -> Obj:
        return replicaset_by_revision(self.cluster, self.namespace, revision)

    def rs_of(self, pod_hash: str) -> Obj:
        found = get(
            self.cluster, f"/apis/apps/v1/namespaces/{self.namespace}/replicasets/{self.name}-{pod_hash}"
        )
        assert found is not None, f"no ReplicaSet {self.name}-{pod_hash}"
        return found

    def pods(self, pod_hash: str | None = None) -> list[Obj]:
        return pods(self.cluster, self.namespace, pod_hash)

    def pod_count(self, pod_hash: str) -> int:
        return pod_count(self.cluster, self.namespace, pod_hash)

    def service_hash(self, service: str) -> str | None:
        return service_hash(self.cluster, self.namespace, service)

    def ingress_weight(self, ingress: str) -> str | None:
        return ingress_weight(self.cluster, self.namespace, ingress)

    def mark_pods_ready(self, pod_hash: str, count: int) -> None:
        mark_pods_ready(self.cluster, self.namespace, pod_hash, count)

    def events(self) -> list[tuple[str, str, int]]:
        return rollout_events(self.cluster, self.namespace, self.name)
