"""Core ``v1`` Events and ``events.k8s.io/v1`` Events are one storage seen two ways (as in kube)."""

from __future__ import annotations

from clusterproc import ClusterProcess


def test_an_event_written_through_one_api_is_read_through_the_other(
    cluster: ClusterProcess, namespace: str
) -> None:
    core_path = f"/api/v1/namespaces/{namespace}/events"
    new_path = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    with cluster.client() as client:
        created = client.post(
            core_path,
            json={
                "metadata": {"name": "e1"},
                "involvedObject": {"kind": "Pod", "name": "p1", "namespace": namespace},
                "reason": "Started",
                "message": "Started container app",
                "type": "Normal",
                "count": 1,
                "source": {"component": "kubelet", "host": "node-1"},
            },
        )
        assert created.status_code == 201, created.text
        seen = client.get(f"{new_path}/e1").json()
        assert seen["apiVersion"] == "events.k8s.io/v1"
        assert seen["regarding"]["name"] == "p1" and seen["note"] == "Started container app"
        assert seen["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
        assert seen["deprecatedCount"] == 1

        second = client.post(
            new_path,
            json={
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": "e2"},
                "regarding": {"kind": "Pod", "name": "p2", "namespace": namespace},
                "reason": "Pulled",
                "note": "Pulled image",
                "type": "Normal",
                "eventTime": "2026-11-29T10:00:00.000000Z",
                "reportingController": "tugboat",
                "reportingInstance": "tugboat-1",
                "action": "Pull",
            },
        )
        assert second.status_code == 201, second.text
        core = client.get(f"{core_path}/e2").json()
        assert core["involvedObject"]["name"] == "p2" and core["message"] == "Pulled image"
        assert core["reportingComponent"] == "tugboat"

        listed = client.get(new_path, params={"fieldSelector": "regarding.name=p2"}).json()
        assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
        assert [e["metadata"]["name"] for e in listed["items"]] == ["e2"]

        patched = client.patch(
            f"{new_path}/e1",
            content=b'{"note":"changed"}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["note"] == "changed"
        assert client.get(f"{core_path}/e1").json()["message"] == "changed"
    out = cluster.kubectl("get", "events.events.k8s.io", "-n", namespace, "-o", "name")
    assert sorted(out.stdout.split()) == ["event.events.k8s.io/e1", "event.events.k8s.io/e2"]
