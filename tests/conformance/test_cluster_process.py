"""Conformance checks that need a cluster process of their own: bookmarks, TLS and tokens, restarts.

Checks 24, 39 and 40 of research/kubeapi.md §5.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import urllib3
import yaml
from conformance_support import install_rollout_crd, rollout_yaml, wait_for
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from clusterproc import ClusterProcess, start_cluster


@pytest.fixture
def own_cluster() -> Iterator[list[ClusterProcess]]:
    """Cluster processes a test starts itself; all are stopped at the end."""
    started: list[ClusterProcess] = []
    yield started
    for proc in started:
        proc.stop()


def test_24_watch_bookmarks(tmp_path: Path, own_cluster: list[ClusterProcess]) -> None:
    """24. allowWatchBookmarks=true → BOOKMARK events that carry only metadata.resourceVersion."""
    cluster = start_cluster(tmp_path / "state", "--bookmark-interval", "0.3")
    own_cluster.append(cluster)
    with cluster.client() as client:
        client.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "a"}})
        rv = client.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
        started = time.monotonic()
        response = client.get(
            "/api/v1/namespaces/default/configmaps",
            params={
                "watch": "true",
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "1",
                "resourceVersion": rv,
            },
        )
        assert time.monotonic() - started < 5
        events = [json.loads(line) for line in response.text.splitlines()]
        assert events, "no bookmark within the watch's timeout"
        assert {e["type"] for e in events} == {"BOOKMARK"}
        assert events[0]["object"] == {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": rv},
        }
        # Without allowWatchBookmarks there are none.
        response = client.get(
            "/api/v1/namespaces/default/configmaps",
            params={"watch": "true", "timeoutSeconds": "1", "resourceVersion": rv},
        )
        assert response.text == ""
        # sendInitialEvents: the current objects, then a bookmark marking the end of them.
        response = client.get(
            "/api/v1/namespaces/default/configmaps",
            params={
                "watch": "true",
                "sendInitialEvents": "true",
                "resourceVersionMatch": "NotOlderThan",
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "1",
            },
        )
        events = [json.loads(line) for line in response.text.splitlines()]
        assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
        assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    # kubectl's informers (here: wait) ask for bookmarks and must cope with them.
    out = cluster.kubectl("wait", "--for=jsonpath={.data.x}=y", "cm/a", "--timeout=2s", check=False)
    assert out.returncode != 0 and "timed out" in out.stderr


def _kubeconfig_with_token(cluster: ClusterProcess, token: str, path: Path) -> Path:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def test_39_tls_and_tokens(tmp_path: Path, own_cluster: list[ClusterProcess]) -> None:
    """39. HTTPS with the admin token works; a bad token is Unauthorized; service-account tokens work."""
    cluster = start_cluster(tmp_path / "state", "--tls")
    own_cluster.append(cluster)
    assert cluster.url.startswith("https://")
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    out = cluster.kubectl("get", "ns", "default", "--no-headers")
    assert out.stdout.split()[:2] == ["default", "Active"]
    assert "Server Version: v1.32" in cluster.kubectl("version").stdout

    bad = _kubeconfig_with_token(cluster, "not-a-token", tmp_path / "bad.kubeconfig")
    refused = cluster.kubectl("--kubeconfig", str(bad), "get", "ns", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("error: You must be logged in to the server (Unauthorized)")
    with cluster.client() as client:
        response = client.get("/api/v1/namespaces")
        assert response.status_code == 401
        assert response.json()["reason"] == "Unauthorized"
        assert client.get("/version").status_code == 200

    assert "serviceaccount/default created" in cluster.kubectl("create", "serviceaccount", "default").stdout
    token = cluster.kubectl("create", "token", "default").stdout.strip()
    assert token
    sa = _kubeconfig_with_token(cluster, token, tmp_path / "sa.kubeconfig")
    out = cluster.kubectl("--kubeconfig", str(sa), "get", "ns", "default", "--no-headers")
    assert out.stdout.split()[0] == "default"
    whoami = cluster.kubectl("--kubeconfig", str(sa), "auth", "whoami", "-o", "json")
    assert (
        json.loads(whoami.stdout)["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
    )
    assert cluster.kubectl("--kubeconfig", str(sa), "auth", "can-i", "create", "pods").stdout.strip() == "yes"
    missing = cluster.kubectl("create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr

    # The Python client sends the token over TLS as well.
    api_client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    with api_client:
        names = [ns.metadata.name for ns in k8s.CoreV1Api(api_client).list_namespace().items]
    assert "kube-system" in names


class RolloutController:
    """A tiny controller: list, watch, write status.observedGeneration through /status; re-list on error."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig))
        self.api = k8s.CustomObjectsApi(self.api_client)
        self.stopped = threading.Event()
        self.lists = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="rollout-controller", daemon=True)

    def _reconcile(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if (obj.get("status") or {}).get("observedGeneration") == meta["generation"]:
            return
        self.api.patch_namespaced_custom_object_status(
            "example.com",
            "v1",
            meta["namespace"],
            "rollouts",
            meta["name"],
            {"status": {"observedGeneration": meta["generation"], "phase": "Ready"}},
        )

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                listed = self.api.list_cluster_custom_object(
                    "example.com", "v1", "rollouts", _request_timeout=2
                )
                self.lists += 1
                for obj in listed["items"]:
                    self._reconcile(obj)
                rv = listed["metadata"]["resourceVersion"]
                stream = k8s_watch.Watch().stream(
                    self.api.list_cluster_custom_object,
                    "example.com",
                    "v1",
                    "rollouts",
                    resource_version=rv,
                    timeout_seconds=2,
                    _request_timeout=5,
                )
                for event in stream:
                    if self.stopped.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._reconcile(event["object"])
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                self.errors.append(type(exc).__name__)
                time.sleep(0.1)

    def __enter__(self) -> RolloutController:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        self.api_client.close()


def _observed(cluster: ClusterProcess, name: str, generation: int) -> bool:
    try:
        with httpx.Client(base_url=cluster.url, timeout=2) as client:
            response = client.get(f"/apis/example.com/v1/namespaces/default/rollouts/{name}")
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    obj = response.json()
    return bool(
        obj["metadata"]["generation"] == generation
        and (obj.get("status") or {}).get("observedGeneration") == generation
    )


def test_40_controller_survives_restart(tmp_path: Path, own_cluster: list[ClusterProcess]) -> None:
    """40. A Python controller reconciles CRs through /status and re-lists after a server restart."""
    state = tmp_path / "state"
    cluster = start_cluster(state)
    own_cluster.append(cluster)
    port = cluster.url.rsplit(":", 1)[1]
    install_rollout_crd(cluster)
    with RolloutController(cluster.kubeconfig) as controller:
        cluster.kubectl("apply", "-f", "-", input=rollout_yaml())
        wait_for(lambda: _observed(cluster, "r1", 1), what="r1 observed")
        cluster.kubectl("patch", "rollout", "r1", "--type", "merge", "-p", '{"spec":{"replicas":3}}')
        wait_for(lambda: _observed(cluster, "r1", 2), what="r1 generation 2 observed")
        lists_before = controller.lists

        assert cluster.stop() == 0
        cluster = start_cluster(state, "--port", port)
        own_cluster.append(cluster)
        assert cluster.url.endswith(f":{port}")
        assert _observed(cluster, "r1", 2)  # the state survived
        cluster.kubectl("patch", "rollout", "r1", "--type", "merge", "-p", '{"spec":{"replicas":4}}')
        cluster.kubectl("apply", "-f", "-", input=rollout_yaml("r2"))
        wait_for(lambda: _observed(cluster, "r1", 3), what="r1 generation 3 observed after the restart")
        wait_for(lambda: _observed(cluster, "r2", 1), what="r2 observed after the restart")
        assert controller.lists > lists_before
    table = cluster.kubectl("get", "rollouts", "--no-headers").stdout.splitlines()
    assert [line.split()[:2] for line in table] == [["r1", "4"], ["r2", "2"]]
