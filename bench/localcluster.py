"""Benchmark of the local cluster's simulation (nodes, kubelets, controllers); prints its figures.

Starts ``tugboat cluster serve`` with the full simulation on a free port in a fresh state directory, then:

1. the time until one 100-replica Deployment is Available (all replicas available);
2. the time until 100 Deployments × 10 replicas are all Available;
3. the server process's CPU use over 30 s of idleness with those 1,000 pods.

Run: ``.venv/bin/python bench/localcluster.py`` (``--help`` for smaller runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from clusterproc import start_cluster
from tugboat.kube import kinds
from tugboat.kube.client import Client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def deployment(name: str, replicas: int) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example/app:v1"}]},
            },
        },
    }


async def wait_available(client: Client, namespace: str, expected: dict[str, int], deadline: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        items, _ = await client.list(kinds.DEPLOYMENT, namespace)
        ready = {
            d["metadata"]["name"]
            for d in items
            if (d.get("status") or {}).get("availableReplicas") == expected.get(d["metadata"]["name"])
            and (d.get("status") or {}).get("updatedReplicas") == expected.get(d["metadata"]["name"])
        }
        if ready >= set(expected):
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise TimeoutError(f"not all of {len(expected)} Deployments were available within {deadline} s")


async def settle(client: Client, *, window: float = 5.0, limit: float = 180.0) -> None:
    """Wait until the cluster has (nearly) stopped writing: at most a few revisions in ``window`` seconds.

    A 1,000-pod rollout leaves thousands of Events and status updates to write; "idle" starts after them
    (node Lease renewals, a few every 10 s, go on for ever).
    """
    started = time.perf_counter()
    _, last = await client.list(kinds.NAMESPACE)
    while time.perf_counter() - started < limit:
        await asyncio.sleep(window)
        _, revision = await client.list(kinds.NAMESPACE)
        if int(revision) - int(last) <= 5:
            print(f"settled {time.perf_counter() - started:.1f} s after the last Deployment was Available")
            return
        last = revision


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of its child processes (the simulated controllers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return total + sum(cpu_seconds(int(child)) for child in children)


async def run(kubeconfig: Path, pid: int, args: argparse.Namespace) -> None:
    async with Client.from_kubeconfig(kubeconfig, field_manager="bench") as client:
        await client.create(kinds.NAMESPACE, {"metadata": {"name": "bench-one"}})
        await client.create(kinds.NAMESPACE, {"metadata": {"name": "bench-many"}})

        big = deployment("big", args.replicas)
        big["metadata"]["namespace"] = "bench-one"
        started = time.perf_counter()
        await client.create(kinds.DEPLOYMENT, big)
        await wait_available(client, "bench-one", {"big": args.replicas}, 120)
        elapsed = time.perf_counter() - started
        print(
            f"one Deployment of {args.replicas} replicas Available in {elapsed:.2f} s "
            f"(readiness delay about 1 s)"
        )

        expected = {f"d{i:03}": args.per_deployment for i in range(args.deployments)}
        started = time.perf_counter()
        for name, replicas in expected.items():
            body = deployment(name, replicas)
            body["metadata"]["namespace"] = "bench-many"
            await client.create(kinds.DEPLOYMENT, body)
        created = time.perf_counter() - started
        elapsed = await wait_available(client, "bench-many", expected, 300)
        total = args.deployments * args.per_deployment
        print(
            f"{args.deployments} Deployments x {args.per_deployment} replicas ({total} pods) all Available "
            f"{created + elapsed:.1f} s after the first create (creates took {created:.1f} s)"
        )

        await settle(client)
    before, wall = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(args.idle_seconds)
    used = cpu_seconds(pid) - before
    span = time.perf_counter() - wall
    print(
        f"idle: CPU of the server and its controllers {100 * used / span:.2f} % of one core "
        f"over {span:.0f} s "
        f"with {total + args.replicas} pods"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--per-deployment", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(Path(tmp) / "state", simulate=True)
        try:
            asyncio.run(run(cluster.kubeconfig, cluster.proc.pid, args))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
