"""``tugboat app …`` against a real local cluster, with the tests playing the controller.

No controller runs here: where one would act (start and finish an operation, remove the refresh
annotation, report status), a test writes what the controller's contract says it writes, sometimes from a
background thread while the command waits.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from clusterproc import ClusterProcess
from tugboat.cli import appcmd
from tugboat.gitops import crds
from tugboat.kube.client import Client

APPNS = "cli-apps"
REPO = "https://github.com/argoproj/argocd-example-apps"
SHA = "0d521c6e049889134f3122eb32d7ed342f43ca0d"
OLD = "53e28ff20cc530b9ada2173fbbd64d48338583ba"
SOURCE = {"repoURL": REPO, "path": "guestbook", "targetRevision": "HEAD"}
runner = CliRunner()


@pytest.fixture(scope="module")
def kube(cluster: ClusterProcess) -> ClusterProcess:
    """The session's cluster with the Application CRDs and the ``cli-apps`` namespace."""

    async def install() -> None:
        async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
            await crds.install(client, namespace=APPNS)

    asyncio.run(install())
    return cluster


# ----------------------------------------------------------------------------------------- helpers


def cli(kube: ClusterProcess, *args: str, input: str | None = None) -> Any:
    return runner.invoke(
        appcmd.app_cli, [*args, "--kubeconfig", str(kube.kubeconfig), "-N", APPNS], input=input
    )


def _path(name: str = "") -> str:
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{APPNS}/applications"
    return f"{base}/{name}" if name else base


def get_app(kube: ClusterProcess, name: str) -> dict[str, Any] | None:
    with kube.client() as http:
        response = http.get(_path(name))
    if response.status_code == 404:
        return None
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def patch_app(kube: ClusterProcess, name: str, patch: dict[str, Any]) -> None:
    with kube.client() as http:
        response = http.patch(
            _path(name), content=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"}
        )
    assert response.status_code == 200, response.text


def make_app(
    kube: ClusterProcess,
    name: str,
    *,
    status: dict[str, Any] | None = None,
    automated: bool = False,
    labels: dict[str, str] | None = None,
    project: str = "default",
    dest_namespace: str = "guestbook",
) -> None:
    app: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": APPNS, "labels": labels or {}},
        "spec": {
            "project": project,
            "source": SOURCE,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_namespace},
        },
    }
    if automated:
        app["spec"]["syncPolicy"] = {"automated": {"prune": True}}
    with kube.client() as http:
        response = http.post(_path(), json=app)
    assert response.status_code == 201, response.text
    if status:
        patch_app(kube, name, {"status": status})


def synced(**extra: Any) -> dict[str, Any]:
    return {
        "sync": {"status": "Synced", "revision": SHA},
        "health": {"status": "Healthy"},
        "resources": [
            {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": "guestbook",
                "name": "guestbook-ui",
                "status": "Synced",
                "health": {"status": "Healthy"},
            },
        ],
        "history": [
            {"id": 0, "revision": OLD, "source": SOURCE, "deployedAt": "2026-07-31T09:00:01Z"},
            {"id": 1, "revision": SHA, "source": SOURCE, "deployedAt": "2026-08-01T10:00:06Z"},
        ],
        **extra,
    }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[], None]], None]]:
    """Run a function in a thread (the stand-in controller); its failures fail the test."""
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []

    def start(fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    for thread in threads:
        thread.join(timeout=15)
    if failures:
        raise failures[0]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def play_sync(kube: ClusterProcess, name: str, seen: dict[str, Any], *, phase: str, message: str) -> None:
    """What the controller does with a requested operation: Running, then done and ``operation`` removed."""
    operation = wait_for(lambda: (get_app(kube, name) or {}).get("operation"))
    seen["operation"] = operation
    started = now()
    patch_app(
        kube,
        name,
        {
            "status": {
                "operationState": {
                    "operation": operation,
                    "phase": "Running",
                    "message": "",
                    "startedAt": started,
                }
            }
        },
    )
    time.sleep(0.3)
    result = {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "namespace": "guestbook",
        "name": "guestbook-ui",
        "status": "Synced" if phase == "Succeeded" else "SyncFailed",
        "message": "deployment.apps/guestbook-ui configured",
        "hookPhase": "Running",
        "syncPhase": "Sync",
    }
    state = {"phase": phase, "message": message, "finishedAt": now(), "syncResult": {"resources": [result]}}
    patch_app(kube, name, {"operation": None, "status": {"operationState": state}})


# -------------------------------------------------------------------------------------------- tests


def test_default_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("TUGBOAT_HOME", str(tmp_path))
    assert appcmd.default_kubeconfig() is None  # no local cluster: lightkube's ~/.kube/config
    (tmp_path / "kubeconfig").write_text("{}")
    assert appcmd.default_kubeconfig() == tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", "/somewhere/config")
    assert appcmd.default_kubeconfig() is None  # $KUBECONFIG wins (lightkube reads it)


def test_create_with_flags_upsert_and_manifest(kube: ClusterProcess, tmp_path: Path) -> None:
    flags = [
        "--repo",
        REPO,
        "--path",
        "helm-guestbook",
        "--dest-namespace",
        "web",
        "--sync-policy",
        "automated",
        "--auto-prune",
        "--self-heal",
        "--sync-option",
        "CreateNamespace=true",
        "--helm-set",
        "replicas=2",
        "--helm-set-string",
        "tag=01",
        "--values",
        "values-prod.yaml",
        "--release-name",
        "gb",
        "--label",
        "team=web",
        "--revision-history-limit",
        "3",
        "--set-finalizer",
    ]
    result = cli(kube, "create", "c1", *flags)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"application '{APPNS}/c1' created"
    app = get_app(kube, "c1")
    assert app is not None
    assert app["metadata"]["labels"] == {"team": "web"}
    assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    assert app["spec"] == {
        "project": "default",
        "source": {
            "repoURL": REPO,
            "path": "helm-guestbook",
            "targetRevision": "HEAD",
            "helm": {
                "releaseName": "gb",
                "valueFiles": ["values-prod.yaml"],
                "parameters": [
                    {"name": "replicas", "value": "2"},
                    {"name": "tag", "value": "01", "forceString": True},
                ],
            },
        },
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["CreateNamespace=true"],
        },
        "revisionHistoryLimit": 3,
    }
    # The same again is fine; a different spec needs --upsert.
    assert cli(kube, "create", "c1", *flags).stdout.strip() == f"application '{APPNS}/c1' unchanged"
    changed = [*flags[:3], "other-path", *flags[4:]]
    refused = cli(kube, "create", "c1", *changed)
    assert refused.exit_code == 1
    assert "use --upsert" in refused.stderr and "Traceback" not in refused.output
    upserted = cli(kube, "create", "c1", *changed, "--upsert")
    assert upserted.exit_code == 0 and "updated" in upserted.stdout
    assert get_app(kube, "c1")["spec"]["source"]["path"] == "other-path"  # type: ignore[index]

    # A manifest, with flags over it.
    manifest = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "c2"},
        "spec": {
            "project": "default",
            "source": {"repoURL": REPO, "path": "kustomize-guestbook", "targetRevision": "main"},
            "destination": {"name": "in-cluster", "namespace": "kg"},
        },
    }
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(manifest))
    extra = [
        "--revision",
        "v2",
        "--kustomize-image",
        "gb=gb:v2",
        "--nameprefix",
        "p-",
        "--dest-namespace",
        "kg2",
    ]
    result = cli(kube, "create", "-f", str(path), *extra)
    assert result.exit_code == 0, result.output
    app = get_app(kube, "c2")
    assert app is not None
    assert app["spec"]["source"] == {
        "repoURL": REPO,
        "path": "kustomize-guestbook",
        "targetRevision": "v2",
        "kustomize": {"namePrefix": "p-", "images": ["gb=gb:v2"]},
    }
    assert app["spec"]["destination"] == {"name": "in-cluster", "namespace": "kg2"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", REPO, "--auto-prune"], "--auto-prune needs automated sync"),
        (["--repo", REPO, "--dest-server", "https://x", "--dest-name", "x"], "only one of --dest-server"),
        (["--path", "guestbook"], "--repo is required"),
        (["--repo", REPO, "--helm-set", "novalue"], "--helm-set expects KEY=VALUE"),
        (["--repo", REPO, "--sync-policy", "sometimes"], "Invalid value for '--sync-policy'"),
    ],
)
def test_create_refuses_bad_flags(kube: ClusterProcess, args: list[str], message: str) -> None:
    result = cli(kube, "create", "bad", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert get_app(kube, "bad") is None


def test_list_filters_and_formats(kube: ClusterProcess) -> None:
    make_app(kube, "l1", status=synced(), labels={"tier": "front"}, automated=True)
    conditions = [{"type": "SyncError", "message": "boom"}]
    status = {"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"}, "conditions": conditions}
    make_app(kube, "l2", status=status, project="team", labels={"tier": "back"})
    table = cli(kube, "list", "-l", "tier")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "CLUSTER",
        "NAMESPACE",
        "PROJECT",
        "STATUS",
        "HEALTH",
        "SYNCPOLICY",
        "CONDITIONS",
    ]
    assert lines[1].split() == [
        f"{APPNS}/l1",
        "https://kubernetes.default.svc",
        "guestbook",
        "default",
        "Synced",
        "Healthy",
        "Auto-Prune",
        "<none>",
    ]
    assert lines[2].split() == [
        f"{APPNS}/l2",
        "https://kubernetes.default.svc",
        "guestbook",
        "team",
        "OutOfSync",
        "Degraded",
        "Manual",
        "SyncError",
    ]
    assert cli(kube, "list", "-l", "tier=back", "-o", "name").stdout.split() == [f"{APPNS}/l2"]
    assert cli(kube, "list", "-l", "tier", "-p", "team", "-o", "name").stdout.split() == [f"{APPNS}/l2"]
    as_json = json.loads(cli(kube, "list", "-l", "tier", "-o", "json").stdout)
    assert [app["metadata"]["name"] for app in as_json] == ["l1", "l2"]
    assert (
        yaml.safe_load(cli(kube, "list", "-l", "tier=front", "-o", "yaml").stdout)[0]["status"]["sync"][
            "revision"
        ]
        == SHA
    )
    waited = cli(kube, "wait", "-l", "tier=front", "--health", "--timeout", "5")
    assert waited.exit_code == 0 and f"Name:               {APPNS}/l1" in waited.stdout
    wide = cli(kube, "list", "-l", "tier=front", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["REPO", "PATH", "TARGET"] and wide[1].split()[-3:] == [
        REPO,
        "guestbook",
        "HEAD",
    ]


def test_get_summary_formats_and_tree(kube: ClusterProcess, namespace: str) -> None:
    make_app(kube, "g1", status=synced(), dest_namespace=namespace)
    result = cli(kube, "get", "g1")
    assert result.exit_code == 0, result.output
    assert f"Name:               {APPNS}/g1" in result.stdout
    assert "Sync Status:        Synced to HEAD (0d521c6)" in result.stdout
    assert "Health Status:      Healthy" in result.stdout
    assert "GROUP  KIND        NAMESPACE  NAME          STATUS  HEALTH   HOOK  MESSAGE" in result.stdout
    assert yaml.safe_load(cli(kube, "get", "g1", "-o", "yaml").stdout)["metadata"]["name"] == "g1"
    # NAMESPACE/NAME (what `list` prints) needs no -N.
    qualified = runner.invoke(appcmd.app_cli, ["get", f"{APPNS}/g1", "--kubeconfig", str(kube.kubeconfig)])
    assert qualified.exit_code == 0 and f"Name:               {APPNS}/g1" in qualified.stdout
    malformed = cli(kube, "get", "a/b/c")
    assert malformed.exit_code == 1 and "not an application name" in malformed.stderr
    assert json.loads(cli(kube, "get", "g1", "-o", "json").stdout)["status"]["health"]["status"] == "Healthy"

    # Tree: the managed Deployment, its ReplicaSet and Pod found by ownerReferences.
    resources = [
        {
            "group": "apps",
            "version": "v1",
            "kind": "Deployment",
            "namespace": namespace,
            "name": "web",
            "status": "Synced",
            "health": {"status": "Healthy"},
        }
    ]
    patch_app(kube, "g1", {"status": {"resources": resources}})
    labels = {"app": "web"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    with kube.client() as http:
        base = f"/apis/apps/v1/namespaces/{namespace}"
        deployment = http.post(
            f"{base}/deployments",
            json={
                "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": labels}, "template": template},
            },
        ).json()
        owner = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": deployment["metadata"]["uid"],
        }
        replicaset = http.post(
            f"{base}/replicasets",
            json={
                "metadata": {"name": "web-7f9c", "ownerReferences": [owner]},
                "spec": {"selector": {"matchLabels": labels}, "template": template},
            },
        ).json()
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-7f9c",
            "uid": replicaset["metadata"]["uid"],
        }
        pod = {"metadata": {"name": "web-7f9c-abcde", "labels": labels, "ownerReferences": [owner]}}
        pod["spec"] = template["spec"]
        assert http.post(f"/api/v1/namespaces/{namespace}/pods", json=pod).status_code == 201
    tree = cli(kube, "get", "g1", "-o", "tree")
    assert tree.exit_code == 0, tree.output
    lines = tree.stdout.splitlines()
    assert lines[0].startswith(f"{APPNS}/g1  Synced to HEAD (0d521c6)  Healthy")
    assert lines[1] == f"└── apps/Deployment {namespace}/web  Synced  Healthy"
    assert lines[2].startswith(f"    └── apps/ReplicaSet {namespace}/web-7f9c")
    assert lines[3].startswith(f"        └── Pod {namespace}/web-7f9c-abcde")


def test_unknown_app_and_usage_errors(kube: ClusterProcess, tmp_path: Path) -> None:
    for args in (["get", "nope"], ["history", "nope"], ["sync", "nope"], ["terminate-op", "nope"]):
        result = cli(kube, *args)
        assert result.exit_code == 1, args
        assert result.stderr.strip() == f"error: application '{APPNS}/nope' not found"
        assert "Traceback" not in result.output
    usage = cli(kube, "list", "--bogus")
    assert usage.exit_code == 1 and usage.stderr.startswith("error: No such option")
    assert len(usage.stderr.strip().splitlines()) == 1
    nothing = cli(kube, "sync")
    assert nothing.exit_code == 1 and "NAME or a --selector" in nothing.stderr
    no_config = runner.invoke(appcmd.app_cli, ["list", "--kubeconfig", "/does/not/exist"])
    assert no_config.exit_code == 1 and no_config.stderr.startswith("error: cannot load kubeconfig")
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # nothing listens on discard
    closed = tmp_path / "closed.yaml"
    closed.write_text(yaml.safe_dump(config))
    down = runner.invoke(appcmd.app_cli, ["list", "--kubeconfig", str(closed)])
    assert down.exit_code == 1 and down.stderr.startswith("error: cannot reach the Kubernetes API server")
    assert len(down.stderr.strip().splitlines()) == 1


def test_sync_writes_the_operation_and_follows_it(
    kube: ClusterProcess, background: Callable[[Callable[[], None]], None]
) -> None:
    # An earlier, finished operation must not be mistaken for the new one.
    old_state = {"phase": "Succeeded", "message": "old operation", "startedAt": "2020-01-01T00:00:00Z"}
    make_app(kube, "s1", status=synced(operationState=old_state))
    seen: dict[str, Any] = {}
    background(
        lambda: play_sync(kube, "s1", seen, phase="Succeeded", message="successfully synced (all tasks run)")
    )
    result = cli(kube, "sync", "s1", "--prune", "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert seen["operation"] == {
        "sync": {"prune": True, "syncStrategy": {"hook": {}}},
        "initiatedBy": {"username": os.environ.get("USER") or "tugboat"},
    }
    assert f"{APPNS}/s1: Succeeded: successfully synced (all tasks run)" in result.stdout  # progress line
    assert "Phase:              Succeeded" in result.stdout  # the final summary
    assert "deployment.apps/guestbook-ui configured" in result.stdout
    assert "old operation" not in result.stdout

    # A failing operation: exit 1 and the controller's message.
    seen.clear()
    message = "one or more objects failed to apply"
    background(lambda: play_sync(kube, "s1", seen, phase="Failed", message=message))
    failed = cli(kube, "sync", "s1", "--timeout", "20")
    assert failed.exit_code == 1
    assert f"operation Failed: {message}" in failed.stderr
    assert "Phase:              Failed" in failed.stdout


def test_sync_async_with_every_option(kube: ClusterProcess) -> None:
    make_app(kube, "s2", status=synced())
    result = cli(
        kube,
        "sync",
        "s2",
        "--async",
        "--revision",
        "main",
        "--dry-run",
        "--force",
        "--strategy",
        "apply",
        "--server-side",
        "--replace",
        "--apply-out-of-sync-only",
        "--sync-option",
        "Validate=false",
        "--resource",
        "apps:Deployment:guestbook-ui",
        "--resource",
        ":Service:guestbook/guestbook-ui",
        "--retry-limit",
        "3",
        "--retry-backoff-duration",
        "10s",
        "--retry-backoff-max-duration",
        "5m",
        "--retry-backoff-factor",
        "3",
        "--assumeYes",
    )
    assert result.exit_code == 0, result.output
    assert "operation requested" in result.stdout
    operation = get_app(kube, "s2")["operation"]  # type: ignore[index]
    assert operation["sync"] == {
        "revision": "main",
        "dryRun": True,
        "syncStrategy": {"apply": {"force": True}},
        "resources": [
            {"group": "apps", "kind": "Deployment", "name": "guestbook-ui"},
            {"group": "", "kind": "Service", "name": "guestbook-ui", "namespace": "guestbook"},
        ],
        "syncOptions": ["Validate=false", "Replace=true", "ServerSideApply=true", "ApplyOutOfSyncOnly=true"],
    }
    assert operation["retry"] == {
        "limit": 3,
        "backoff": {"duration": "10s", "factor": 3, "maxDuration": "5m"},
    }

    # The operation is pending now: another sync is refused, as is one while the controller runs one.
    busy = cli(kube, "sync", "s2")
    assert busy.exit_code == 1 and "another operation is already in progress" in busy.stderr
    patch_app(kube, "s2", {"operation": None, "status": {"operationState": {"phase": "Running"}}})
    assert "another operation is already in progress" in cli(kube, "sync", "s2").stderr
    bad = cli(kube, "sync", "s2", "--resource", "Deployment/guestbook-ui")
    assert bad.exit_code == 1 and "--resource expects GROUP:KIND:NAME" in bad.stderr
    bad = cli(kube, "sync", "s2", "--retry-limit", "2", "--retry-backoff-duration", "soon")
    assert bad.exit_code == 1 and "--retry-backoff-duration expects a duration" in bad.stderr


def test_sync_times_out_without_a_controller(kube: ClusterProcess) -> None:
    make_app(kube, "s3", status=synced())
    started = time.monotonic()
    result = cli(kube, "sync", "s3", "--timeout", "1")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: timed out after 1s waiting for the operation on '{APPNS}/s3'"
    assert time.monotonic() - started < 5
    assert get_app(kube, "s3")["operation"]["sync"] == {"syncStrategy": {"hook": {}}}  # type: ignore[index]


def test_wait_for_states_and_deletion(
    kube: ClusterProcess, background: Callable[[Callable[[], None]], None]
) -> None:
    make_app(kube, "w1", status={"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing"}})

    def becomes_healthy() -> None:
        time.sleep(0.5)
        patch_app(kube, "w1", {"status": synced()})

    background(becomes_healthy)
    result = cli(kube, "wait", "w1", "--sync", "--health", "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert "Health Status:      Healthy" in result.stdout

    patch_app(kube, "w1", {"status": {"health": {"status": "Degraded"}}})
    assert cli(kube, "wait", "w1", "--degraded", "--timeout", "5").exit_code == 0
    timed_out = cli(kube, "wait", "w1", "--health", "--timeout", "1")
    assert timed_out.exit_code == 1 and "timed out after 1s" in timed_out.stderr
    # The default waits for sync, health and no operation at once.
    patch_app(
        kube, "w1", {"status": {"health": {"status": "Healthy"}, "operationState": {"phase": "Running"}}}
    )
    assert cli(kube, "wait", "w1", "--timeout", "1").exit_code == 1
    patch_app(kube, "w1", {"status": {"operationState": {"phase": "Succeeded"}}})
    assert cli(kube, "wait", "w1", "--timeout", "5").exit_code == 0

    def delete() -> None:
        time.sleep(0.5)
        with kube.client() as http:
            assert http.delete(_path("w1")).status_code == 200

    background(delete)
    deleted = cli(kube, "wait", "w1", "--delete", "--timeout", "10")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == f"application '{APPNS}/w1' deleted"


def test_history_and_rollback(kube: ClusterProcess) -> None:
    make_app(kube, "h1", status=synced())
    result = cli(kube, "history", "h1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"SOURCE  {REPO}",
        "ID  DATE                           REVISION",
        "0   2026-07-31 09:00:01 +0000 UTC  HEAD (53e28ff)",
        "1   2026-08-01 10:00:06 +0000 UTC  HEAD (0d521c6)",
    ]
    assert [e["id"] for e in json.loads(cli(kube, "history", "h1", "-o", "json").stdout)] == [0, 1]

    missing = cli(kube, "rollback", "h1", "9")
    assert missing.exit_code == 1 and "does not have deployment id 9 in history" in missing.stderr
    rolled = cli(kube, "rollback", "h1", "--async")
    assert rolled.exit_code == 0, rolled.output
    operation = get_app(kube, "h1")["operation"]  # type: ignore[index]
    assert operation == {
        "sync": {"revision": OLD, "source": SOURCE},
        "initiatedBy": {"username": os.environ.get("USER") or "tugboat"},
    }

    make_app(kube, "h2", status=synced(), automated=True)
    refused = cli(kube, "rollback", "h2", "0")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "error: rollback cannot be initiated when auto-sync is enabled"
    assert "operation" not in get_app(kube, "h2")  # type: ignore[operator]


def test_refresh_sets_the_annotation_and_waits(
    kube: ClusterProcess, background: Callable[[Callable[[], None]], None]
) -> None:
    make_app(kube, "r1", status=synced())
    annotation = "argocd.argoproj.io/refresh"
    seen: list[str] = []

    def controller() -> None:
        app = wait_for(
            lambda: ((get_app(kube, "r1") or {})["metadata"].get("annotations") or {}).get(annotation)
        )
        seen.append(app)
        time.sleep(0.2)
        patch_app(
            kube, "r1", {"metadata": {"annotations": {annotation: None}}, "status": {"reconciledAt": now()}}
        )

    background(controller)
    result = cli(kube, "refresh", "r1", "--hard", "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert seen == ["hard"]
    assert "Sync Status:        Synced to HEAD (0d521c6)" in result.stdout

    background(controller)
    as_yaml = cli(kube, "get", "r1", "--refresh", "-o", "yaml")
    assert as_yaml.exit_code == 0, as_yaml.output
    assert seen == ["hard", "normal"]
    assert "reconciledAt" in yaml.safe_load(as_yaml.stdout)["status"]

    nobody = cli(kube, "refresh", "r1", "--timeout", "1")
    assert nobody.exit_code == 1 and "is the controller running?" in nobody.stderr


def test_delete_finalizers_and_confirmation(kube: ClusterProcess) -> None:
    make_app(kube, "d1")
    refused = cli(kube, "delete", "d1")  # CliRunner's stdin is not a terminal
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert get_app(kube, "d1") is not None

    result = cli(kube, "delete", "d1", "-y")
    assert result.exit_code == 0, result.output
    app = get_app(kube, "d1")
    assert app is not None and app["metadata"].get("deletionTimestamp")  # the controller's turn now
    assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    patch_app(kube, "d1", {"metadata": {"finalizers": None}})  # what the controller does when it is done
    wait_for(lambda: get_app(kube, "d1") is None)

    make_app(kube, "d2")
    patch_app(
        kube,
        "d2",
        {"metadata": {"finalizers": ["example.com/keep", "resources-finalizer.argocd.argoproj.io"]}},
    )
    result = cli(kube, "delete", "d2", "-y", "--propagation-policy", "background")
    assert result.exit_code == 0, result.output
    app = get_app(kube, "d2")
    assert app is not None
    assert app["metadata"]["finalizers"] == [
        "example.com/keep",
        "resources-finalizer.argocd.argoproj.io/background",
    ]
    patch_app(kube, "d2", {"metadata": {"finalizers": None}})

    make_app(kube, "d3")
    patch_app(kube, "d3", {"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io"]}})
    result = cli(kube, "delete", "d3", "--no-cascade", "--yes", "--wait", "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"application '{APPNS}/d3' deleted"
    assert get_app(kube, "d3") is None


def test_terminate_op(kube: ClusterProcess) -> None:
    make_app(kube, "t1", status=synced(operationState={"phase": "Succeeded", "startedAt": now()}))
    idle = cli(kube, "terminate-op", "t1")
    assert idle.exit_code == 1
    assert idle.stderr.strip() == "error: Unable to terminate operation. No operation is in progress"
    patch_app(kube, "t1", {"status": {"operationState": {"phase": "Running"}}})
    result = cli(kube, "terminate-op", "t1")
    assert result.exit_code == 0, result.output
    assert get_app(kube, "t1")["status"]["operationState"]["phase"] == "Terminating"  # type: ignore[index]


def test_console_script_lists_apps(kube: ClusterProcess) -> None:
    make_app(kube, "p1", status=synced(), labels={"script": "yes"})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tugboat.cli.main",
            "app",
            "list",
            "--kubeconfig",
            str(kube.kubeconfig),
            "-N",
            APPNS,
            "-l",
            "script=yes",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["NAME", "CLUSTER", "NAMESPACE"]
    assert result.stdout.splitlines()[1].split()[0] == f"{APPNS}/p1"
