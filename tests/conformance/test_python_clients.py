"""Conformance with the Python clients: the official ``kubernetes`` client and ``lightkube``.

CRUD and the three patch types, optimistic concurrency, paginated lists, watches resumed from a
resourceVersion and expired by compaction, server-side apply, and leader election on a Lease
(research/kubeapi.md §1.3 and §5 checks 18, 21, 23 and 35).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from conformance_support import deployment_yaml, kubectl_ns, wait_for
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock
from lightkube import ApiError, AsyncClient, Client, KubeConfig
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import PatchType

from clusterproc import ClusterProcess, start_cluster


@pytest.fixture
def api_client(cluster: ClusterProcess) -> Iterator[k8s.ApiClient]:
    client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
    with client:
        yield client


@pytest.fixture
def core(api_client: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api_client)


@pytest.fixture
def lk(cluster: ClusterProcess) -> Iterator[Client]:
    client = Client(config=KubeConfig.from_file(cluster.kubeconfig), field_manager="conformance")
    yield client
    client._client._client.close()


@pytest.fixture
async def alk(cluster: ClusterProcess) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(config=KubeConfig.from_file(cluster.kubeconfig), field_manager="conformance")
    yield client
    await client.close()


def _cm(
    name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name, labels=labels), data=data)


# ------------------------------------------------------------------------------------ kubernetes client


def test_kubernetes_client_crud_and_patches(
    api_client: k8s.ApiClient, core: k8s.CoreV1Api, namespace: str
) -> None:
    """create/get/list/patch (strategic, merge, json)/replace/delete with the official client."""
    created = core.create_namespaced_config_map(namespace, _cm("c", {"a": "1"}, {"app": "x"}))
    assert created.metadata.uid and created.metadata.resource_version
    assert core.read_namespaced_config_map("c", namespace).data == {"a": "1"}
    core.create_namespaced_config_map(namespace, _cm("d", {"a": "1"}, {"app": "y"}))
    listed = core.list_namespaced_config_map(namespace, label_selector="app=x")
    assert [i.metadata.name for i in listed.items] == ["c"]
    assert listed.kind is None or listed.kind == "ConfigMapList"
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    patched = core.patch_namespaced_config_map("c", namespace, {"data": {"b": "2"}})  # strategic
    assert patched.data == {"a": "1", "b": "2"}
    patched = core.patch_namespaced_config_map("c", namespace, [{"op": "remove", "path": "/data/a"}])  # json
    assert patched.data == {"b": "2"}

    apps = k8s.AppsV1Api(api_client)
    deploy = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="web"),
        spec=k8s.V1DeploymentSpec(
            selector=k8s.V1LabelSelector(match_labels={"app": "web"}),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels={"app": "web"}),
                spec=k8s.V1PodSpec(
                    containers=[
                        k8s.V1Container(name="nginx", image="nginx", env=[k8s.V1EnvVar(name="A", value="1")])
                    ]
                ),
            ),
        ),
    )
    created_deploy = apps.create_namespaced_deployment(namespace, deploy)
    assert created_deploy.spec.replicas == 1
    assert created_deploy.spec.template.spec.containers[0].image_pull_policy == "Always"
    body = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "B", "value": "2"}]}]}}
        }
    }
    patched_deploy = apps.patch_namespaced_deployment("web", namespace, body)
    assert sorted(e.name for e in patched_deploy.spec.template.spec.containers[0].env) == ["A", "B"]
    assert patched_deploy.metadata.generation == 2
    scale = apps.patch_namespaced_deployment_scale(
        "web", namespace, [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    )
    assert scale.spec.replicas == 3
    assert apps.read_namespaced_deployment_scale("web", namespace).spec.replicas == 3
    custom = k8s.CustomObjectsApi(api_client)
    merged = custom.patch_namespaced_custom_object(
        "apps", "v1", namespace, "deployments", "web", {"metadata": {"labels": {"team": "a"}}}
    )
    assert merged["metadata"]["labels"] == {"team": "a"}

    # 18. replace with a stale resourceVersion → 409; with the current one → 200.
    stale = core.read_namespaced_config_map("c", namespace)
    core.patch_namespaced_config_map("c", namespace, {"data": {"c": "3"}})
    stale.data = {"z": "9"}
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("c", namespace, stale)
    assert caught.value.status == 409
    status = json.loads(caught.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"] == {"name": "c", "kind": "configmaps"}
    fresh = core.read_namespaced_config_map("c", namespace)
    fresh.data = {"z": "9"}
    replaced = core.replace_namespaced_config_map("c", namespace, fresh)
    assert replaced.data == {"z": "9"}
    assert int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version)
    # An empty resourceVersion is an unconditional update.
    fresh.metadata.resource_version = None
    fresh.data = {"u": "1"}
    assert core.replace_namespaced_config_map("c", namespace, fresh).data == {"u": "1"}

    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(namespace, _cm("c"))
    assert caught.value.status == 409 and json.loads(caught.value.body)["reason"] == "AlreadyExists"
    core.delete_namespaced_config_map("c", namespace)
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("c", namespace)
    assert caught.value.status == 404
    # The Python client sends propagationPolicy as a query parameter.
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Foreground")
    wait_for(lambda: not apps.list_namespaced_deployment(namespace).items, what="the deployment to go")


def test_21_paginated_list(core: k8s.CoreV1Api, namespace: str) -> None:
    """21. limit=3 returns a continue token; following it yields each item exactly once."""
    for i in range(7):
        core.create_namespaced_config_map(namespace, _cm(f"cm{i}", {"i": str(i)}))
    first = core.list_namespaced_config_map(namespace, limit=3)
    assert len(first.items) == 3
    assert first.metadata._continue
    assert first.metadata.remaining_item_count == 4
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    # Changes after the first page do not show in later pages: they are served at the list's revision.
    core.create_namespaced_config_map(namespace, _cm("cm9"))
    core.delete_namespaced_config_map("cm5", namespace)
    while token:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"cm{i}" for i in range(7)]
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(namespace, limit=3, _continue="not-a-token")
    assert caught.value.status == 400


def test_23_watch_resumes_from_resource_version(core: k8s.CoreV1Api, namespace: str) -> None:
    """23. A watch from a list's resourceVersion yields exactly the later events, in order."""
    core.create_namespaced_config_map(namespace, _cm("before"))
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("w", {"a": "1"}))
    core.patch_namespaced_config_map("w", namespace, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", namespace)
    events = list(
        k8s_watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]
    assert events[1]["object"].data == {"a": "2"}
    revisions = [int(e["object"].metadata.resource_version) for e in events]
    assert revisions == sorted(revisions) and revisions[0] > int(rv)
    # Without a resourceVersion, the watch starts with the current objects.
    initial = list(k8s_watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in initial] == [("ADDED", "before")]


def test_watch_with_selectors(cluster: ClusterProcess, core: k8s.CoreV1Api, namespace: str) -> None:
    """A watch filters by label: an object leaving the selector is DELETED, one entering is ADDED."""
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, _cm("s", labels={"app": "x"}))
    core.patch_namespaced_config_map("s", namespace, {"metadata": {"labels": {"app": "y"}}})
    core.patch_namespaced_config_map("s", namespace, {"metadata": {"labels": {"app": "x"}}})
    core.create_namespaced_config_map(namespace, _cm("t", labels={"app": "y"}))
    events = list(
        k8s_watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=rv,
            label_selector="app=x",
            timeout_seconds=1,
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "s"),
        ("DELETED", "s"),
        ("ADDED", "s"),
    ]


def test_23_watch_after_compaction_is_gone(tmp_path: Path) -> None:
    """23. After compaction, a watch from resourceVersion 1 gets an ERROR 410 → ApiException(410)."""
    cluster = start_cluster(
        tmp_path / "state", "--retain-revisions", "2", "--retain-seconds", "0", "--compact-interval", "0.1"
    )
    try:
        api_client = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
        with api_client:
            core = k8s.CoreV1Api(api_client)
            for i in range(5):
                core.create_namespaced_config_map("default", _cm(f"c{i}"))
            first = core.list_namespaced_config_map("default", limit=2)
            for i in range(5):
                core.patch_namespaced_config_map(f"c{i}", "default", {"data": {"x": "y"}})

            def compacted() -> bool:
                # Compaction runs on a timer: wait until it has passed the revision of the paginated list
                # (not only revision 1), or the expired-continue check below races the next compaction.
                with cluster.client() as client:
                    response = client.get(
                        "/api/v1/namespaces/default/configmaps",
                        params={
                            "watch": "1",
                            "resourceVersion": first.metadata.resource_version,
                            "timeoutSeconds": "1",
                        },
                    )
                return '"code":410' in response.text

            wait_for(compacted, what="compaction")
            with cluster.client() as client:
                response = client.get(
                    "/api/v1/namespaces/default/configmaps",
                    params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "5"},
                )
                assert response.status_code == 200
                (line,) = response.text.splitlines()
                event = json.loads(line)
                assert event["type"] == "ERROR"
                assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
                assert event["object"]["message"].startswith("too old resource version: 1 (")
            with pytest.raises(ApiException) as caught:
                list(
                    k8s_watch.Watch().stream(
                        core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=5
                    )
                )
            assert caught.value.status == 410
            # An expired continue token is 410 as well; a fresh list works.
            with pytest.raises(ApiException) as caught:
                core.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
            assert caught.value.status == 410
            assert json.loads(caught.value.body)["reason"] == "Expired"
            assert len(core.list_namespaced_config_map("default").items) == 5
            # lightkube re-lists from scratch on 410 when its error handler says so.
            lk = Client(config=KubeConfig.from_file(cluster.kubeconfig))
            with pytest.raises(ApiError) as lk_caught:
                next(iter(lk.watch(ConfigMap, namespace="default", resource_version="1")))
            assert lk_caught.value.status.code == 410
    finally:
        cluster.stop()


# ------------------------------------------------------------------------------------------- lightkube


def _deployment(name: str, image: str, replicas: int | None = None) -> Deployment:
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels={"app": name}),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels={"app": name}),
                spec=PodSpec(containers=[Container(name="main", image=image)]),
            ),
        ),
    )


def test_lightkube_sync_client(lk: Client, namespace: str) -> None:
    """lightkube: create/get/list/patch/replace/delete, conflicts and watch resume."""
    created = lk.create(
        ConfigMap(metadata=ObjectMeta(name="c", labels={"app": "x"}), data={"a": "1"}), namespace=namespace
    )
    assert created.metadata.uid
    assert lk.get(ConfigMap, "c", namespace=namespace).data == {"a": "1"}
    for i in range(4):
        lk.create(ConfigMap(metadata=ObjectMeta(name=f"p{i}")), namespace=namespace)
    assert [c.metadata.name for c in lk.list(ConfigMap, namespace=namespace, chunk_size=2)] == [
        "c",
        "p0",
        "p1",
        "p2",
        "p3",
    ]
    assert [c.metadata.name for c in lk.list(ConfigMap, namespace=namespace, labels={"app": "x"})] == ["c"]
    rv = created.metadata.resourceVersion
    lk.patch(ConfigMap, "c", {"data": {"b": "2"}}, namespace=namespace)
    lk.patch(ConfigMap, "c", {"data": {"a": None}}, namespace=namespace, patch_type=PatchType.MERGE)
    patched = lk.patch(
        ConfigMap,
        "c",
        [{"op": "add", "path": "/data/c", "value": "3"}],
        namespace=namespace,
        patch_type=PatchType.JSON,
    )
    assert patched.data == {"b": "2", "c": "3"}
    stale = lk.get(ConfigMap, "c", namespace=namespace)
    stale.metadata.resourceVersion = rv
    with pytest.raises(ApiError) as caught:
        lk.replace(stale)
    assert caught.value.status.code == 409 and caught.value.status.reason == "Conflict"
    fresh = lk.get(ConfigMap, "c", namespace=namespace)
    fresh.data = {"only": "this"}
    assert lk.replace(fresh).data == {"only": "this"}
    lk.delete(ConfigMap, "c", namespace=namespace)
    with pytest.raises(ApiError) as caught:
        lk.get(ConfigMap, "c", namespace=namespace)
    assert caught.value.status.code == 404
    seen = []
    for event_type, obj in lk.watch(ConfigMap, namespace=namespace, resource_version=rv):
        if obj.metadata.name == "c":
            seen.append(event_type)
        if event_type == "DELETED":
            break
    assert seen == ["MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


def test_lightkube_server_side_apply(lk: Client, cluster: ClusterProcess, namespace: str) -> None:
    """lightkube apply: create, no-op re-apply, conflicts with another manager, force."""
    applied = lk.apply(_deployment("app", "app:1", replicas=2), namespace=namespace, field_manager="alice")
    assert applied.spec.replicas == 2 and applied.metadata.generation == 1
    again = lk.apply(_deployment("app", "app:1", replicas=2), namespace=namespace, field_manager="alice")
    assert again.metadata.resourceVersion == applied.metadata.resourceVersion
    with pytest.raises(ApiError) as caught:
        lk.apply(_deployment("app", "app:1", replicas=5), namespace=namespace, field_manager="bob")
    status = caught.value.status
    assert status.code == 409
    assert status.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert status.details.causes[0].field == ".spec.replicas"
    assert status.details.causes[0].reason == "FieldManagerConflict"
    forced = lk.apply(
        _deployment("app", "app:1", replicas=5), namespace=namespace, field_manager="bob", force=True
    )
    assert forced.spec.replicas == 5
    managed = {m.manager: m for m in forced.metadata.managedFields}
    assert "f:replicas" in managed["bob"].fieldsV1["f:spec"]
    assert "f:replicas" not in managed["alice"].fieldsV1["f:spec"]
    # bob applied the same image, so he co-owns it now: alice may not change it alone any more.
    with pytest.raises(ApiError) as caught:
        lk.apply(_deployment("app", "app:2"), namespace=namespace, field_manager="alice")
    assert caught.value.status.message == (
        'Apply failed with 1 conflict: conflict with "bob": .spec.template.spec.containers[name="main"].image'
    )
    updated = lk.apply(_deployment("app", "app:2"), namespace=namespace, field_manager="alice", force=True)
    assert updated.spec.template.spec.containers[0].image == "app:2"
    assert updated.spec.replicas == 5
    assert updated.metadata.generation == 3
    table = kubectl_ns(cluster, namespace, "get", "deploy", "app", "--no-headers").stdout.split()
    assert table[:2] == ["app", "0/5"]
    dry = lk.apply(_deployment("dry", "app:1"), namespace=namespace, field_manager="alice", dry_run=True)
    assert dry.metadata.name == "dry"
    with pytest.raises(ApiError):
        lk.get(Deployment, "dry", namespace=namespace)


async def test_lightkube_async_client(alk: AsyncClient, cluster: ClusterProcess, namespace: str) -> None:
    """lightkube's AsyncClient: the same operations, plus an async watch from a resourceVersion."""
    kubectl_ns(cluster, namespace, "apply", "-f", "-", input=deployment_yaml())
    deploy = await alk.get(Deployment, "web", namespace=namespace)
    rv = deploy.metadata.resourceVersion
    await alk.patch(
        Deployment, "web", {"spec": {"replicas": 3}}, namespace=namespace, patch_type=PatchType.MERGE
    )
    patched = await alk.patch(
        Deployment,
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}},
        namespace=namespace,
    )
    assert patched.spec.template.spec.containers[0].env[0].name == "A"  # strategic: merged by name
    assert patched.metadata.generation == 3
    deploy.spec.replicas = 9
    with pytest.raises(ApiError) as caught:
        await alk.replace(deploy)
    assert caught.value.status.code == 409
    created = await alk.create(ConfigMap(metadata=ObjectMeta(name="x"), data={"k": "v"}), namespace=namespace)
    assert [c.metadata.name async for c in alk.list(ConfigMap, namespace=namespace)] == ["x"]
    applied = await alk.apply(
        ConfigMap(metadata=ObjectMeta(name="x"), data={"k": "w"}),
        namespace=namespace,
        field_manager="me",
        force=True,
    )
    assert applied.data == {"k": "w"}
    await alk.delete(ConfigMap, "x", namespace=namespace)
    events = []
    async for event_type, obj in alk.watch(Deployment, namespace=namespace, resource_version=rv):
        events.append((event_type, obj.spec.replicas))
        if len(events) == 2:
            break
    assert events == [("MODIFIED", 3), ("MODIFIED", 3)]
    seen = []
    async for event_type, _obj in alk.watch(
        ConfigMap, namespace=namespace, resource_version=created.metadata.resourceVersion
    ):
        seen.append(event_type)
        if event_type == "DELETED":
            break
    assert seen == ["MODIFIED", "DELETED"]


# ------------------------------------------------------------------------------------ leader election


class Candidate:
    """One leader-election candidate in a thread; :meth:`kill` makes it vanish as a dead process would."""

    def __init__(self, api_client: k8s.ApiClient, identity: str, leaders: list[str], lease: str) -> None:
        self.identity = identity
        self.killed = threading.Event()
        self.lock = LeaseLock(lease, "kube-system", identity)
        self.lock.api_instance = k8s.CoordinationV1Api(api_client)
        candidate = self

        original_get = self.lock.get

        def get(name: str, namespace: str) -> tuple[bool, Any]:
            if candidate.killed.is_set():
                return False, ApiException(status=0, reason="killed")
            return original_get(name, namespace)

        original_update = self.lock.update

        def update(name: str, namespace: str, record: Any) -> bool:
            return False if candidate.killed.is_set() else bool(original_update(name, namespace, record))

        self.lock.get = get  # type: ignore[method-assign]
        self.lock.update = update  # type: ignore[method-assign]
        config = electionconfig.Config(
            self.lock,
            lease_duration=2,
            renew_deadline=1.5,
            retry_period=1,
            onstarted_leading=lambda: leaders.append(identity),
            onstopped_leading=lambda: None,
        )
        self.election = leaderelection.LeaderElection(config)
        self.thread = threading.Thread(target=self._run, name=f"candidate-{identity}", daemon=True)

    def _run(self) -> None:
        while not self.killed.is_set():
            self.election.run()

    def kill(self) -> None:
        self.killed.set()


def test_35_leader_election_with_lease_lock(api_client: k8s.ApiClient, cluster: ClusterProcess) -> None:
    """35. Two candidates → exactly one leader; killing it hands over after the lease duration."""
    lease = f"my-ctrl-{time.monotonic_ns()}"
    leaders: list[str] = []
    candidates = {name: Candidate(api_client, name, leaders, lease) for name in ("alpha", "beta")}
    for candidate in candidates.values():
        candidate.thread.start()
    try:
        wait_for(lambda: leaders, timeout=10, what="a leader")
        time.sleep(1.5)
        assert len(leaders) == 1, leaders
        leader = leaders[0]
        out = cluster.kubectl("get", "lease", "-n", "kube-system", lease).stdout.splitlines()
        assert out[0].split() == ["NAME", "HOLDER", "AGE"]
        assert out[1].split()[:2] == [lease, leader]
        record = k8s.CoordinationV1Api(api_client).read_namespaced_lease(lease, "kube-system")
        assert record.spec.holder_identity == leader
        assert record.spec.lease_duration_seconds == 2
        assert record.spec.renew_time is not None

        killed_at = time.monotonic()
        candidates[leader].kill()
        wait_for(lambda: len(leaders) == 2, timeout=15, what="the hand-over")
        handover = time.monotonic() - killed_at
        follower = leaders[1]
        assert follower != leader
        assert handover >= 1.0  # not before the lease ran out
        out = cluster.kubectl("get", "lease", "-n", "kube-system", lease, "--no-headers").stdout.split()
        assert out[:2] == [lease, follower]
    finally:
        for candidate in candidates.values():
            candidate.kill()


def test_raw_http_semantics(cluster: ClusterProcess, namespace: str) -> None:
    """What the Python client relies on: POST without Content-Type is JSON; DELETE options from the query."""
    with httpx.Client(base_url=cluster.url, timeout=10) as client:
        response = client.post(
            f"/api/v1/namespaces/{namespace}/configmaps",
            content=json.dumps({"metadata": {"name": "raw"}}).encode(),
            headers={"Content-Type": ""},
        )
        assert response.status_code == 201, response.text
        response = client.delete(
            f"/api/v1/namespaces/{namespace}/configmaps/raw",
            params={"dryRun": "All", "propagationPolicy": "Orphan"},
        )
        assert response.status_code == 200
        assert client.get(f"/api/v1/namespaces/{namespace}/configmaps/raw").status_code == 200
        response = client.delete(f"/api/v1/namespaces/{namespace}/configmaps/raw", params={"dryRun": "Bogus"})
        assert response.status_code == 400
