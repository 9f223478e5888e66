"""Nothing acknowledged is lost: ``kill -9`` of the server mid-stream, then a restart on the same state."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx2 as httpx
import orjson

from clusterproc import ClusterProcess, start_cluster


async def _writer(client: httpx.AsyncClient, worker: int, acked: dict[str, tuple[int, int]]) -> None:
    """Create a ConfigMap, then update it again and again; record every acknowledged version."""
    name = f"w{worker}"
    path = "/api/v1/namespaces/default/configmaps"
    try:
        response = await client.post(path, json={"metadata": {"name": name}, "data": {"n": "0"}})
        if response.status_code != 201:
            return
        acked[name] = (0, int(response.json()["metadata"]["resourceVersion"]))
        n = 0
        while True:
            n += 1
            body = {"data": {"n": str(n)}}
            response = await client.patch(
                f"{path}/{name}",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            if response.status_code != 200:
                return
            acked[name] = (n, int(response.json()["metadata"]["resourceVersion"]))
    except httpx.HTTPError:
        return


async def _load_then_kill(cluster: ClusterProcess, acked: dict[str, tuple[int, int]]) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=10) as client:
        writers = [asyncio.create_task(_writer(client, i, acked)) for i in range(8)]
        await asyncio.sleep(1.5)
        cluster.proc.send_signal(signal.SIGKILL)
        await asyncio.wait(writers, timeout=15)


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cluster = start_cluster(state)
    with cluster.client() as client:
        start_rv = client.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
    acked: dict[str, tuple[int, int]] = {}
    asyncio.run(_load_then_kill(cluster, acked))
    cluster.proc.wait(timeout=10)
    assert len(acked) == 8 and sum(n for n, _ in acked.values()) > 50, acked

    restarted = start_cluster(state)
    try:
        with restarted.client() as client:
            for name, (n, rv) in acked.items():
                live = client.get(f"/api/v1/namespaces/default/configmaps/{name}").json()
                # The acknowledged version, or a later one whose ack was lost with the process.
                assert int(live["data"]["n"]) >= n, (name, live, n)
                assert int(live["metadata"]["resourceVersion"]) >= rv
            highest = max(rv for _, rv in acked.values())
            created = client.post(
                "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "after-restart"}}
            )
            assert created.status_code == 201
            assert int(created.json()["metadata"]["resourceVersion"]) > highest

            # A watch resumes from the revision seen before the crash and replays every later change.
            with client.stream(
                "GET",
                "/api/v1/namespaces/default/configmaps",
                params={"watch": "true", "resourceVersion": start_rv, "timeoutSeconds": "2"},
            ) as stream:
                events = [orjson.loads(line) for line in stream.iter_lines() if line]
            assert events and all(e["type"] in ("ADDED", "MODIFIED") for e in events)
            revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
            assert revisions == sorted(revisions)
            last_seen = {
                e["object"]["metadata"]["name"]: int(e["object"]["data"]["n"])
                for e in events
                if e["object"]["metadata"]["name"].startswith("w")
            }
            for name, (n, _) in acked.items():
                assert last_seen[name] >= n
    finally:
        restarted.stop()
