"""Benchmark of the API server (``tugboat server``) and the web UI over 1,000 Applications; prints figures.

Starts a bare local cluster (``tugboat cluster serve``, no simulation), installs the Argo CRDs, and
creates 1,000 Applications in ``argocd`` with a realistic status (sync, health, five resources, images,
two history entries, a finished operation), written the way the GitOps controller writes it (the
Application CRD has no status subresource, as in Argo CD: a merge patch of ``status``). Then it runs
``tugboat server`` as a process on a free port, logs in as admin, and measures:

1. ``GET /api/v1/applications`` in full and with the ``fields=`` the UI's list asks for: 50 requests
   each, one keep-alive connection, p50/p95/max and the size of the answer;
2. the UI's first useful paint: headless Chromium (Debian's ``/usr/bin/chromium`` under Playwright) with
   the session cookie opens ``/applications``; the time until the first application tile is visible
   (``[data-testid=app-tile]``; when the UI has no such tile yet, until ``document.readyState`` is
   ``complete``), and until all 1,000 tiles are in the page; 10 runs, each in a fresh browser context.

Run: ``.venv/bin/python bench/server.py`` (``--help`` for smaller runs; ``--no-browser`` skips part 2).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx2 as httpx

import benchsupport
from clusterproc import ClusterProcess, start_cluster
from tugboat.gitops import crds as gitops_crds
from tugboat.kube.client import Client
from tugboat.rollouts import crds as rollout_crds
from tugboat.server import auth

Obj = dict[str, Any]

NAMESPACE = "argocd"
UI_FIELDS = (
    "items.metadata.name,items.metadata.namespace,items.spec,items.status.sync.status,"
    "items.status.health,items.status.summary,items.status.operationState.phase"
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TILE = "[data-testid=app-tile]"
HEALTH = ("Healthy", "Healthy", "Healthy", "Progressing", "Degraded", "Missing", "Suspended")
SYNC = ("Synced", "Synced", "Synced", "OutOfSync")


# ------------------------------------------------------------------------------------ the Applications


def sha(index: int, salt: int = 0) -> str:
    return f"{(index * 2654435761 + salt * 97) & 0xFFFFFFFF:08x}" * 5


def application(index: int) -> Obj:
    name = f"app-{index:04d}"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"team": f"team-{index % 7}"}},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/platform/deployments.git",
                "path": f"apps/{name}",
                "targetRevision": "HEAD",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": f"ns-{index % 20}"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}} if index % 3 else {},
        },
    }


def resources(index: int, health: str) -> list[Obj]:
    name, namespace = f"app-{index:04d}", f"ns-{index % 20}"
    base = [
        ("", "v1", "Service", name),
        ("", "v1", "ConfigMap", f"{name}-config"),
        ("", "v1", "ServiceAccount", name),
        ("argoproj.io", "v1alpha1", "Rollout", name),
        ("networking.k8s.io", "v1", "Ingress", name),
    ]
    found = []
    for group, version, kind, resource_name in base:
        entry: Obj = {
            "group": group,
            "version": version,
            "kind": kind,
            "namespace": namespace,
            "name": resource_name,
            "status": "Synced",
        }
        if kind in ("Service", "Rollout", "Ingress"):
            entry["health"] = {"status": health if kind == "Rollout" else "Healthy"}
        found.append(entry)
    return found


def status(index: int) -> Obj:
    health, sync_status = HEALTH[index % len(HEALTH)], SYNC[index % len(SYNC)]
    revision, previous = sha(index, 1), sha(index, 0)
    source = application(index)["spec"]["source"]
    return {
        "sync": {
            "status": sync_status,
            "revision": revision,
            "comparedTo": {"source": source, "destination": application(index)["spec"]["destination"]},
        },
        "health": {
            "status": health,
            "message": "" if health == "Healthy" else f"rollout app-{index} {health}",
        },
        "resources": resources(index, health),
        "summary": {
            "images": [f"registry.example.com/app-{index % 50}:v{index % 9}", "envoyproxy/envoy:v1.30"]
        },
        "history": [
            {"id": 1, "revision": previous, "deployedAt": "2026-01-01T10:00:00Z", "source": source},
            {"id": 2, "revision": revision, "deployedAt": "2026-01-02T10:00:00Z", "source": source},
        ],
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": "2026-01-02T09:59:58Z",
            "finishedAt": "2026-01-02T10:00:00Z",
            "operation": {"sync": {"revision": revision}, "initiatedBy": {"automated": True}},
            "syncResult": {"revision": revision, "source": source},
        },
        "reconciledAt": "2026-01-02T10:00:05Z",
        "sourceType": "Directory",
    }


async def populate(cluster: ClusterProcess, count: int) -> str:
    """Install the CRDs, create ``count`` Applications with their status; the initial admin password."""
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="bench") as client:
        await gitops_crds.install(client, namespace=NAMESPACE)
        await rollout_crds.install(client)
        started = time.perf_counter()
        creates = [
            functools.partial(client.create, gitops_crds.APPLICATION, application(i)) for i in range(count)
        ]
        await benchsupport.in_parallel(creates)
        statuses = [
            functools.partial(
                client.patch,
                gitops_crds.APPLICATION,
                f"app-{i:04d}",
                {"status": status(i)},
                namespace=NAMESPACE,
            )
            for i in range(count)
        ]
        await benchsupport.in_parallel(statuses)
        print(
            f"setup: {count} Applications created and given a status in {time.perf_counter() - started:.1f} s"
        )
        key_ready = await auth.bootstrap(client, namespace=NAMESPACE)  # as the server does at start
        assert key_ready
        password = await auth.initial_password(client, namespace=NAMESPACE)
        assert password is not None
        return password


# ------------------------------------------------------------------------------------ the server


def start_server(cluster: ClusterProcess, root: Path) -> tuple[benchsupport.ControllerProcess, str]:
    command = [
        sys.executable,
        *("-m", "tugboat.cli.main", "server", "--kubeconfig", str(cluster.kubeconfig), "--port", "0"),
    ]
    ready = "tugboat server: serving"
    server = benchsupport.start_controller(command, log_path=root / "server.log", ready_line=ready)
    found = re.search(r"serving the API and the UI at (http://\S+)", server.log_path.read_text())
    assert found, server.log_path.read_text()
    return server, found.group(1)


def login(url: str, password: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/session", json={"username": "admin", "password": password}, timeout=30
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def timing_text(seconds: list[float]) -> str:
    ms = [value * 1000 for value in seconds]
    p50, p95 = statistics.median(ms), benchsupport.percentile(ms, 95)
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(ms):.0f} ms"


def measure_lists(url: str, token: str, *, count: int, requests: int, pid: int) -> None:
    """Figure 1: the list in full and with the UI's fields."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        for label, params in (("full", {}), ("UI fields", {"fields": UI_FIELDS})):
            first = http.get("/api/v1/applications", params=params)  # warm-up, also checks the answer
            first.raise_for_status()
            items = first.json()["items"]
            assert len(items) == count, len(items)
            seconds = []
            cpu_before = benchsupport.cpu_seconds(pid)
            for _ in range(requests):
                started = time.perf_counter()
                response = http.get("/api/v1/applications", params=params)
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
            cpu = (benchsupport.cpu_seconds(pid) - cpu_before) / requests
            print(
                f"list {count} apps ({label}, {len(first.content) / 1e6:.2f} MB): {timing_text(seconds)} "
                f"over {requests} requests; server CPU {cpu * 1000:.0f} ms per request",
                flush=True,
            )


# ------------------------------------------------------------------------------------ the browser


# When the browser painted the first tile's name (the UI marks the names with ``elementtiming``), in ms
# from navigation start: the real first useful paint, without the polling delay of ``wait_for_selector``.
PAINTED_SCRIPT = """() => new Promise((resolve) => {
  new PerformanceObserver((list, observer) => {
    const entries = list.getEntries().filter((e) => e.identifier === 'app-tile');
    observer.disconnect();
    resolve(entries.length ? Math.min(...entries.map((e) => e.renderTime || e.loadTime)) : 0);
  }).observe({ type: 'element', buffered: true });
  setTimeout(() => resolve(0), 2000);
})"""


def measure_paint(url: str, token: str, *, count: int, runs: int) -> None:
    """Figure 2: first tile visible (or readyState complete), and all tiles present, from navigation."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    first: list[float] = []
    painted: list[float] = []
    complete: list[float] = []
    tile_missing = False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context()
                context.add_cookies([{"name": auth.TOKEN_COOKIE, "value": token, "url": url}])
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"{url}/applications", wait_until="commit")
                try:
                    page.wait_for_selector(TILE, state="visible", timeout=30_000)
                    first.append(time.perf_counter() - started)
                    painted_ms = page.evaluate(PAINTED_SCRIPT)
                    if painted_ms:
                        painted.append(painted_ms / 1000)
                    page.wait_for_function(
                        f"document.querySelectorAll('{TILE}').length >= {count}", timeout=60_000
                    )
                    complete.append(time.perf_counter() - started)
                except PlaywrightError:
                    tile_missing = True
                    page.wait_for_function("document.readyState === 'complete'", timeout=30_000)
                    first.append(time.perf_counter() - started)
                context.close()
        finally:
            browser.close()
    what = (
        "document.readyState complete (the tile selector was absent)"
        if tile_missing
        else "first tile visible"
    )
    print(f"UI /applications, {what}: {timing_text(first)} over {runs} runs", flush=True)
    if painted:
        print(
            f"UI /applications, first tile painted (Element Timing, from navigation start): "
            f"{timing_text(painted)} over {len(painted)} runs",
            flush=True,
        )
    if complete:
        print(
            f"UI /applications, all {count} tiles in the page: {timing_text(complete)} "
            f"over {len(complete)} runs"
        )


# ------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10, help="browser runs")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-server-") as tmp:
        root = Path(tmp)
        cluster = start_cluster(root / "cluster")
        server: benchsupport.ControllerProcess | None = None
        try:
            password = asyncio.run(populate(cluster, args.apps))
            server, url = start_server(cluster, root)
            token = login(url, password)
            measure_lists(url, token, count=args.apps, requests=args.requests, pid=server.proc.pid)
            if not args.no_browser:
                measure_paint(url, token, count=args.apps, runs=args.runs)
            print(f"server RSS at the end: {benchsupport.memory_mb(server.proc.pid):.0f} MB")
            problems = server.problems()
            if problems:
                print(f"server log: {len(problems)} warning/error lines, first ones:")
                for line in problems[:8]:
                    print(f"    {line[:300]}")
        finally:
            if server is not None:
                server.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
