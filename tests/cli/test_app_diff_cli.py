"""``tugboat app diff`` and ``tugboat app manifests`` against a real cluster and real git repositories.

No controller runs: a test puts an app "in sync" the way the controller would (server-side apply of the
rendered manifests with the tracking annotation, as ``argocd-controller``, and ``status.resources``),
then changes Git, the working tree or the live objects and reads what the commands say.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent.parent / "gitops_e2e"))

from gitops_support import GitRepo, unique

from clusterproc import ClusterProcess
from tugboat.cli import appcmd
from tugboat.gitops import appdiff, crds, tracking
from tugboat.kube import kinds
from tugboat.kube.client import Client

APPNS = "diff-apps"
SECRET_VALUE = "hunter2-not-for-your-eyes"
runner = CliRunner()


@pytest.fixture(scope="module")
def kube(cluster: ClusterProcess) -> ClusterProcess:
    """The session's cluster with the Application CRDs, the ``diff-apps`` namespace and its project."""

    async def install() -> None:
        async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
            await crds.install(client, namespace=APPNS)

    asyncio.run(install())
    return cluster


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's repository cache goes under this test's TUGBOAT_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("TUGBOAT_HOME", str(home))
    return home


# ----------------------------------------------------------------------------------------- manifests


def configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": value}}


def deployment(name: str, image: str = "nginx:1.25") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def secret(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": {"password": value},
    }


def as_yaml(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


KIND_OF = {"ConfigMap": kinds.CONFIGMAP, "Deployment": kinds.DEPLOYMENT, "Secret": kinds.SECRET}


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A repository whose ``app/`` holds a ConfigMap, a Deployment and a Secret."""
    git_repo = GitRepo(tmp_path / "repo")
    git_repo.commit(
        {
            "app/cm.yaml": as_yaml(configmap("cfg", "1")),
            "app/deploy.yaml": as_yaml(deployment("web")),
            "app/secret.yaml": as_yaml(secret("creds", SECRET_VALUE)),
            "README.md": "not a manifest directory\n",
        },
        message="first",
    )
    return git_repo


# ------------------------------------------------------------------------------------------- helpers


def cli(kube: ClusterProcess, *args: str) -> Any:
    return runner.invoke(appcmd.app_cli, [*args, "--kubeconfig", str(kube.kubeconfig), "-N", APPNS])


async def _with_client(kube: ClusterProcess, manager: str, work: Any) -> Any:
    async with Client.from_kubeconfig(kube.kubeconfig, field_manager=manager) as client:
        return await work(client)


def make_app(kube: ClusterProcess, repo: GitRepo, namespace: str, **spec: Any) -> str:
    name = unique("diff")
    app = {
        "apiVersion": crds.APPLICATION.api_version,
        "kind": "Application",
        "metadata": {"name": name, "namespace": APPNS},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.url, "path": "app", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            **spec,
        },
    }
    asyncio.run(_with_client(kube, "test", lambda client: client.create(crds.APPLICATION, app)))
    return name


def deploy(kube: ClusterProcess, app: str, namespace: str, objs: list[dict[str, Any]]) -> None:
    """What a sync leaves behind: the objects applied with their tracking ids, and ``status.resources``."""

    async def work(client: Client) -> None:
        resources = []
        for obj in objs:
            obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
            tracking.set_tracking(obj, app)
            await client.apply(KIND_OF[obj["kind"]], obj, force=True)
            group, _, version = obj["apiVersion"].rpartition("/")
            resources.append(
                {"group": group, "version": version, "kind": obj["kind"], "namespace": namespace}
                | {"name": obj["metadata"]["name"], "status": "Synced"}
            )
        await client.patch(crds.APPLICATION, app, {"status": {"resources": resources}}, namespace=APPNS)

    asyncio.run(_with_client(kube, "argocd-controller", work))


def in_sync(kube: ClusterProcess, repo: GitRepo, namespace: str, **spec: Any) -> str:
    name = make_app(kube, repo, namespace, **spec)
    deploy(kube, name, namespace, [configmap("cfg", "1"), deployment("web"), secret("creds", SECRET_VALUE)])
    return name


def live_patch(kube: ClusterProcess, kind: kinds.Kind, name: str, namespace: str, patch: Any) -> None:
    asyncio.run(_with_client(kube, "kubectl-edit", lambda c: c.patch(kind, name, patch, namespace=namespace)))


def headers(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("=====")]


def blocks(output: str) -> dict[str, str]:
    """Each resource's diff by its banner."""
    found: dict[str, str] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("====="):
            current = line
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return found


def secret_leaks(text: str) -> bool:
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    return SECRET_VALUE in text or encoded in text or "changed-secret" in text


# --------------------------------------------------------------------------------------------- diff


def test_in_sync_app_has_no_diff_and_a_commit_shows_one(
    kube: ClusterProcess, repo: GitRepo, namespace: str, cli_home: Path
) -> None:
    app = in_sync(kube, repo, namespace)
    same = cli(kube, "diff", app)
    assert same.exit_code == 0, same.output
    assert same.stdout == ""
    assert list((cli_home / "cli-cache" / "repos" / "mirrors").iterdir())  # the mirror is kept

    repo.commit({"app/cm.yaml": as_yaml(configmap("cfg", "2"))})
    changed = cli(kube, "diff", app)
    assert changed.exit_code == 1, changed.output
    assert headers(changed.stdout) == [f"===== /ConfigMap {namespace}/cfg ======"]
    lines = changed.stdout.splitlines()
    assert "-  a: '1'" in lines and "+  a: '2'" in lines
    assert lines[1] == f"--- live/ConfigMap {namespace}/cfg"

    quiet = cli(kube, "diff", app, "--no-exit-code")
    assert quiet.exit_code == 0 and quiet.stdout == changed.stdout
    hard = cli(kube, "diff", app, "--hard-refresh")
    assert hard.exit_code == 1 and hard.stdout == changed.stdout


def test_ignore_differences_apply_as_in_the_controller(
    kube: ClusterProcess, repo: GitRepo, namespace: str
) -> None:
    ignore = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    app = in_sync(kube, repo, namespace, ignoreDifferences=ignore)
    live_patch(kube, kinds.DEPLOYMENT, "web", namespace, {"spec": {"replicas": 5}})
    result = cli(kube, "diff", app)
    assert result.exit_code == 0, result.output


def test_live_drift_missing_and_extra_resources(kube: ClusterProcess, repo: GitRepo, namespace: str) -> None:
    app = in_sync(kube, repo, namespace)
    live_patch(kube, kinds.DEPLOYMENT, "web", namespace, {"spec": {"replicas": 3}})
    drift = cli(kube, "diff", app)
    assert drift.exit_code == 1, drift.output
    assert headers(drift.stdout) == [f"===== apps/Deployment {namespace}/web ======"]
    assert "-  replicas: 3" in drift.stdout.splitlines() and "+  replicas: 1" in drift.stdout.splitlines()

    # The ConfigMap leaves Git (its kind is only known from status.resources now); a Service arrives.
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
    }
    repo.commit({"app/cm.yaml": None, "app/svc.yaml": as_yaml(service)})
    result = cli(kube, "diff", app)
    assert result.exit_code == 1, result.output
    assert headers(result.stdout) == [
        f"===== /ConfigMap {namespace}/cfg ======",
        f"===== /Service {namespace}/web ======",
        f"===== apps/Deployment {namespace}/web ======",
    ]
    by_resource = blocks(result.stdout)
    extra = by_resource[f"===== /ConfigMap {namespace}/cfg ======"].splitlines()
    assert "-  a: '1'" in extra and not [line for line in extra[2:] if line.startswith("+")]
    missing = by_resource[f"===== /Service {namespace}/web ======"].splitlines()
    assert "+  - port: 80" in missing and not [line for line in missing[2:] if line.startswith("-")]


def test_objects_of_other_apps_are_not_shown(kube: ClusterProcess, repo: GitRepo, namespace: str) -> None:
    app = in_sync(kube, repo, namespace)
    other = configmap("other", "x")
    other["metadata"]["namespace"] = namespace
    tracking.set_tracking(other, "some-other-app")
    asyncio.run(_with_client(kube, "argocd-controller", lambda c: c.apply(kinds.CONFIGMAP, other)))
    result = cli(kube, "diff", app)
    assert result.exit_code == 0, result.output
    live = cli(kube, "manifests", app, "--source", "live")
    assert "name: other" not in live.stdout


def test_secret_values_never_appear(kube: ClusterProcess, repo: GitRepo, namespace: str) -> None:
    app = in_sync(kube, repo, namespace)
    repo.commit({"app/secret.yaml": as_yaml(secret("creds", "changed-secret"))})
    result = cli(kube, "diff", app)
    assert result.exit_code == 1, result.output
    assert headers(result.stdout) == [f"===== /Secret {namespace}/creds ======"]
    assert "password: '++++++++'" in result.stdout or "password: ++++++++" in result.stdout
    assert not secret_leaks(result.output)
    for source in ("git", "live"):
        shown = cli(kube, "manifests", app, "--source", source)
        assert shown.exit_code == 0, shown.output
        assert "Secret" in shown.stdout and not secret_leaks(shown.output)


def test_revision_compares_with_another_commit(kube: ClusterProcess, repo: GitRepo, namespace: str) -> None:
    first = repo.commit(message="same content")
    app = in_sync(kube, repo, namespace)
    repo.commit({"app/cm.yaml": as_yaml(configmap("cfg", "2"))})
    assert cli(kube, "diff", app).exit_code == 1
    pinned = cli(kube, "diff", app, "--revision", first)
    assert pinned.exit_code == 0, pinned.output


def test_local_directory_with_uncommitted_changes(
    kube: ClusterProcess, repo: GitRepo, namespace: str, tmp_path: Path
) -> None:
    app = in_sync(kube, repo, namespace)
    assert cli(kube, "diff", app, "--local", str(repo.path / "app")).exit_code == 0
    repo.write({"app/deploy.yaml": as_yaml(deployment("web", image="nginx:1.27"))})  # not committed
    local = cli(kube, "diff", app, "--local", str(repo.path / "app"))
    assert local.exit_code == 1, local.output
    assert headers(local.stdout) == [f"===== apps/Deployment {namespace}/web ======"]
    assert "+      - image: nginx:1.27" in local.stdout.splitlines()
    assert cli(kube, "diff", app).exit_code == 0  # Git still has the old image

    # A directory outside any repository, under another name: the source path does not matter.
    elsewhere = tmp_path / "plain" / "manifests"
    elsewhere.mkdir(parents=True)
    (elsewhere / "all.yaml").write_text(
        "---\n".join(
            as_yaml(o) for o in (configmap("cfg", "1"), deployment("web"), secret("creds", SECRET_VALUE))
        )
    )
    assert cli(kube, "diff", app, "--local", str(elsewhere)).exit_code == 0
    (elsewhere / "all.yaml").write_text(as_yaml(configmap("cfg", "1")))
    pruned = cli(kube, "diff", app, "--local", str(elsewhere))
    assert pruned.exit_code == 1
    assert headers(pruned.stdout) == [
        f"===== /Secret {namespace}/creds ======",
        f"===== apps/Deployment {namespace}/web ======",
    ]
    assert not secret_leaks(pruned.output)


def test_manifests_from_git_and_live(kube: ClusterProcess, repo: GitRepo, namespace: str) -> None:
    app = in_sync(kube, repo, namespace)
    desired = cli(kube, "manifests", app)
    assert desired.exit_code == 0, desired.output
    docs = list(yaml.safe_load_all(desired.stdout))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Secret"]
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        key = f"{app}:{group}/{doc['kind']}:{namespace}/{doc['metadata']['name']}"
        assert doc["metadata"]["namespace"] == namespace
        assert doc["metadata"]["annotations"][tracking.TRACKING_ANNOTATION] == key
        assert "uid" not in doc["metadata"]

    live = cli(kube, "manifests", app, "--source", "live")
    assert live.exit_code == 0, live.output
    objs = list(yaml.safe_load_all(live.stdout))
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("ConfigMap", "cfg"),
        ("Secret", "creds"),
        ("Deployment", "web"),
    ]
    assert all(o["metadata"].get("uid") for o in objs)


def test_failures_exit_2(kube: ClusterProcess, repo: GitRepo, namespace: str) -> None:
    both = cli(kube, "diff", "any", "--local", str(repo.path), "--revision", "main")
    assert both.exit_code == 2 and "only one of --local and --revision" in both.stderr
    assert cli(kube, "diff", "a/b/c").exit_code == 2
    missing = cli(kube, "diff", "no-such-app")
    assert missing.exit_code == 2 and f"application '{APPNS}/no-such-app' not found" in missing.stderr
    assert cli(kube, "diff", "no-such-app", "--no-exit-code").exit_code == 2

    no_project = make_app(kube, repo, namespace, project="nope")
    result = cli(kube, "diff", no_project)
    assert result.exit_code == 2
    assert "Application referencing project nope which does not exist" in result.stderr

    bad_repo = make_app(kube, repo, namespace)
    patch = {"spec": {"source": {"repoURL": f"file://{repo.path}-missing"}}}
    asyncio.run(
        _with_client(kube, "test", lambda c: c.patch(crds.APPLICATION, bad_repo, patch, namespace=APPNS))
    )
    unreachable = cli(kube, "diff", bad_repo)
    assert unreachable.exit_code == 2 and unreachable.stderr.startswith("error: ")
    assert cli(kube, "manifests", bad_repo).exit_code == 1
    unknown = cli(kube, "diff", in_sync(kube, repo, namespace), "--revision", "no-such-branch")
    assert unknown.exit_code == 2 and "no-such-branch" in unknown.stderr


# ---------------------------------------------------------------------------------------- appdiff


def test_yaml_documents_mask_secrets_only() -> None:
    text = appdiff.yaml_documents([configmap("a", "plain"), secret("s", SECRET_VALUE)])
    docs = list(yaml.safe_load_all(text))
    assert docs[0]["data"] == {"a": "plain"}
    assert docs[1]["stringData"]["password"].startswith("++++") and SECRET_VALUE not in text


def test_work_tree_root(tmp_path: Path, repo: GitRepo) -> None:
    assert appdiff.work_tree_root(repo.path / "app") == repo.path.resolve()
    assert appdiff.work_tree_root(tmp_path) == tmp_path.resolve()
