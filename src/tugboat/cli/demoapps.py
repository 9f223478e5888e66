"""The demo's content: a Git repository with a blue-green and a canary Rollout app, and their Applications.

``tugboat up`` bootstraps it on first start against the local cluster, so a newcomer sees live, synced,
healthy applications at once and can change them (edit, commit, watch); ``tugboat demo`` commits new
image versions to it to run the seed's two processes (../shared/seed.md). Everything here is ordinary
Git and Kubernetes: a repository on disk served by ``file://`` URL, and Applications in ``argocd`` with
automated sync, so nothing about the demo is special to the controllers.

How the demo's versions behave comes from the simulated cluster (DESIGN.md §5): a tag ``vN`` is a good
version. The blue-green app's failing version has a tag containing ``crash``: it crash-loops, never
becomes Ready, and so runs into the Rollout's (short) progress deadline, which aborts the update
(``progressDeadlineAbort``). The canary app's failing version has a ``bad-`` tag: its pods are Ready but
fail about half their requests, and the canary's analysis step - a Web metric over the local cluster's
``/metrics/simulated/summary`` (the simulated traffic of the canary's pods, no Prometheus needed) - fails
and aborts the update.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tugboat.gitops import crds as gitops_crds
from tugboat.kube import client as kube_client
from tugboat.kube import errors as kube_errors
from tugboat.kube import kinds
from tugboat.rollouts import crds as rollouts_crds

BLUEGREEN = "bluegreen"
CANARY = "canary"
STRATEGIES = (BLUEGREEN, CANARY)
ROLLOUT_NAME = "web"
IMAGE_REPOSITORY = "tugboat.dev/demo-web"
FIRST_IMAGE = f"{IMAGE_REPOSITORY}:v1"
CONTROL_NAMESPACE = "argocd"
BRANCH = "main"
FIELD_MANAGER = "tugboat-demo"
ROLLOUT_FILE = "rollout.yaml"
DEMO_LABEL = "tugboat.dev/demo"
METRICS_SECRET = "tugboat-demo-metrics"  # in the canary's namespace: where its analysis finds the cluster
METRICS_URL_ARG = "metrics-url"

_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Tugboat demo",
    "GIT_AUTHOR_EMAIL": "demo@tugboat.invalid",
    "GIT_COMMITTER_NAME": "Tugboat demo",
    "GIT_COMMITTER_EMAIL": "demo@tugboat.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

Obj = dict[str, Any]


class DemoError(Exception):
    """The demo repository or its Applications could not be set up or changed."""


# ------------------------------------------------------------------------------------------ naming


def repo_path(state_dir: Path) -> Path:
    """Where the demo's Git repository lives."""
    return state_dir / "demo-repo"


def repo_url(state_dir: Path) -> str:
    return f"file://{repo_path(state_dir).resolve()}"


def app_name(strategy: str) -> str:
    """The Application (in ``argocd``) of the ``strategy`` app."""
    _check_strategy(strategy)
    return f"demo-{strategy}"


def namespace(strategy: str) -> str:
    """The destination namespace of the ``strategy`` app."""
    _check_strategy(strategy)
    return f"demo-{strategy}"


APP_NAMES = tuple(f"demo-{s}" for s in STRATEGIES)  # the Applications, as app_name() names them


def traffic_service(strategy: str) -> str:
    """The Service that carries production traffic: blue-green's active, canary's stable Service."""
    return f"{ROLLOUT_NAME}-active" if strategy == BLUEGREEN else f"{ROLLOUT_NAME}-stable"


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise DemoError(f"unknown demo app {strategy!r}; expected one of {', '.join(STRATEGIES)}")


# ---------------------------------------------------------------------------------------- manifests


def _container(image: str) -> Obj:
    return {"name": ROLLOUT_NAME, "image": image, "ports": [{"containerPort": 8080}]}


def _rollout(strategy: Obj, *, replicas: int, image: str) -> Obj:
    labels = {"app": ROLLOUT_NAME}
    return {
        "apiVersion": rollouts_crds.ROLLOUT.api_version,
        "kind": "Rollout",
        "metadata": {"name": ROLLOUT_NAME},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 6,
            "progressDeadlineAbort": True,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [_container(image)]}},
            "strategy": strategy,
        },
    }


def _service(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": ROLLOUT_NAME}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def bluegreen_rollout(image: str) -> Obj:
    strategy = {
        "blueGreen": {
            "activeService": f"{ROLLOUT_NAME}-active",
            "previewService": f"{ROLLOUT_NAME}-preview",
            "autoPromotionEnabled": True,
            "scaleDownDelaySeconds": 3,
        }
    }
    return _rollout(strategy, replicas=2, image=image)


def canary_rollout(image: str) -> Obj:
    strategy = {
        "canary": {
            "canaryService": f"{ROLLOUT_NAME}-canary",
            "stableService": f"{ROLLOUT_NAME}-stable",
            "abortScaleDownDelaySeconds": 2,
            "steps": [
                {"setWeight": 25},
                {"pause": {"duration": "2s"}},
                {
                    "analysis": {
                        "templates": [{"templateName": "success-rate"}],
                        "args": [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
                    }
                },
                {"setWeight": 75},
                {"pause": {"duration": "1s"}},
            ],
        }
    }
    return _rollout(strategy, replicas=4, image=image)


def success_rate_template() -> Obj:
    """An AnalysisTemplate whose Web metric reads the success rate of the canary's pods from the local
    cluster's simulated traffic (``/metrics/simulated/summary``): at least 90 % passes. The cluster's
    address is not in Git (it changes with ``up --port``): the run reads it from the Secret
    :data:`METRICS_SECRET`, which ``up`` writes at every start."""
    query = f"namespace={namespace('canary')}&rollouts_pod_template_hash={{{{args.canary-hash}}}}"
    url = f"{{{{args.{METRICS_URL_ARG}}}}}/metrics/simulated/summary?{query}"
    secret_ref = {"secretKeyRef": {"name": METRICS_SECRET, "key": METRICS_URL_ARG}}
    return {
        "apiVersion": rollouts_crds.ANALYSISTEMPLATE.api_version,
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {
            "args": [{"name": "canary-hash"}, {"name": METRICS_URL_ARG, "valueFrom": secret_ref}],
            "metrics": [
                {
                    "name": "success-rate",
                    "initialDelay": "3s",  # let the canary's pods serve some requests first
                    "count": 2,
                    "interval": "2s",
                    "successCondition": "result >= 0.9",
                    "failureCondition": "result < 0.9",
                    "failureLimit": 0,
                    "provider": {"web": {"url": url, "jsonPath": "{$.successRate}"}},
                }
            ],
        },
    }


def _dump(*objs: Obj) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objs)


def files(*, image: str = FIRST_IMAGE) -> dict[str, str]:
    """The demo repository's files (relative path → content), both apps at ``image``."""
    return {
        "README.md": _README,
        f"{BLUEGREEN}/{ROLLOUT_FILE}": _dump(bluegreen_rollout(image)),
        f"{BLUEGREEN}/services.yaml": _dump(
            _service(f"{ROLLOUT_NAME}-active"), _service(f"{ROLLOUT_NAME}-preview")
        ),
        f"{CANARY}/{ROLLOUT_FILE}": _dump(canary_rollout(image)),
        f"{CANARY}/services.yaml": _dump(
            _service(f"{ROLLOUT_NAME}-stable"), _service(f"{ROLLOUT_NAME}-canary")
        ),
        f"{CANARY}/analysis.yaml": _dump(success_rate_template()),
    }


def application(strategy: str, url: str) -> Obj:
    """The Application deploying the ``strategy`` app from the demo repository, automated."""
    return {
        "apiVersion": gitops_crds.APPLICATION.api_version,
        "kind": "Application",
        "metadata": {
            "name": app_name(strategy),
            "namespace": CONTROL_NAMESPACE,
            "labels": {DEMO_LABEL: "true"},
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": url, "path": strategy, "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace(strategy)},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    }


_README = """# Tugboat demo applications

Two apps, each deployed by an Application in the `argocd` namespace with automated sync:

- `bluegreen/`: a blue-green Rollout with an active and a preview Service.
- `canary/`: a canary Rollout (25 % → pause → success-rate analysis → 75 %) with stable and canary Services.

Change an image in `*/rollout.yaml`, commit, and watch the rollout:
`tugboat app get demo-bluegreen`, `tugboat rollout get web -n demo-bluegreen`.
An image tag containing `crash` never becomes Ready: the rollout aborts at its progress deadline. A tag
starting with `bad-` is Ready but fails half its requests: the canary's analysis fails and aborts it.
Either way traffic stays on the previous version. `tugboat demo` runs both processes for you.
"""


# ---------------------------------------------------------------------------------------------- git


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with the demo's fixed identity and no user configuration; its stdout."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=repo,
            env={**os.environ, **_GIT_IDENTITY},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except subprocess.CalledProcessError as exc:
        raise DemoError(f"git {' '.join(args)} failed: {exc.stderr.strip()}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DemoError(f"git {' '.join(args)} failed: {exc}") from exc
    return result.stdout.strip()


def head(state_dir: Path) -> str:
    """The SHA of the demo repository's HEAD."""
    return git(repo_path(state_dir), "rev-parse", "HEAD")


def _commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def create_repo(state_dir: Path) -> bool:
    """Create the demo repository with its first commit; False when it already has one."""
    repo = repo_path(state_dir)
    if (repo / ".git").is_dir():
        try:
            git(repo, "rev-parse", "--verify", "-q", "HEAD")
            return False
        except DemoError:
            pass  # an empty repository (an interrupted bootstrap): finish it
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", BRANCH)
    for name, content in files().items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    _commit_all(repo, f"Demo apps at {FIRST_IMAGE}")
    return True


def _rollout_file(state_dir: Path, strategy: str) -> Path:
    _check_strategy(strategy)
    return repo_path(state_dir) / strategy / ROLLOUT_FILE


def image_of(state_dir: Path, strategy: str) -> str:
    """The image the ``strategy`` app's Rollout names in the working tree of the repository."""
    for doc in yaml.safe_load_all(_rollout_file(state_dir, strategy).read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "Rollout":
            return str(doc["spec"]["template"]["spec"]["containers"][0]["image"])
    raise DemoError(f"{strategy}/{ROLLOUT_FILE} holds no Rollout")


def commit_image(state_dir: Path, app: str, image: str, message: str) -> str:
    """Set the first container's image of the Rollout of ``app`` (a strategy name or its Application's
    name) to ``image``, commit it with ``message``, and return the new commit's SHA."""
    strategy = app.removeprefix("demo-")
    path = _rollout_file(state_dir, strategy)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    rollouts = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Rollout"]
    if not rollouts:
        raise DemoError(f"{strategy}/{ROLLOUT_FILE} holds no Rollout")
    rollouts[0]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    path.write_text(_dump(*docs))
    return _commit_all(repo_path(state_dir), message)


def version_of(image: str) -> int:
    """The demo version number in an image tag (``…:v3``, ``…:crash-v4`` → 3, 4); 0 when there is none."""
    found = re.search(r"v(\d+)$", image.rsplit(":", 1)[-1])
    return int(found.group(1)) if found else 0


def good_image(version: int) -> str:
    return f"{IMAGE_REPOSITORY}:v{version}"


def failing_image(version: int, strategy: str = BLUEGREEN) -> str:
    """A version that fails on the simulated cluster: for blue-green its pods crash-loop (the rollout
    aborts at its progress deadline); for the canary they fail half their requests (its analysis fails)."""
    if strategy in (CANARY, app_name(CANARY)):
        return f"{IMAGE_REPOSITORY}:bad-v{version}"
    return f"{IMAGE_REPOSITORY}:crash-v{version}"


# ---------------------------------------------------------------------------------------- bootstrap


def api_url(kubeconfig: Path) -> str:
    """The API server URL of the kubeconfig's current context."""
    try:
        config = yaml.safe_load(kubeconfig.read_text()) or {}
        current = config.get("current-context")
        contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
        cluster_name = contexts[current]["cluster"] if current in contexts else None
        clusters = config.get("clusters") or []
        chosen = next((c for c in clusters if c["name"] == cluster_name), clusters[0])
        return str(chosen["cluster"]["server"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise DemoError(f"cannot read the API server URL from {kubeconfig}: {exc}") from exc


async def write_metrics_secret(client: kube_client.Client, url: str) -> None:
    """Tell the canary's analysis where the cluster answers now (its namespace is made when missing)."""
    name = namespace(CANARY)
    try:
        await client.create(kinds.NAMESPACE, {"metadata": {"name": name}})
    except kube_errors.ApiError as exc:
        if not exc.already_exists:
            raise
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": METRICS_SECRET, "namespace": name, "labels": {DEMO_LABEL: "true"}},
        "stringData": {METRICS_URL_ARG: url.rstrip("/")},
    }
    await client.apply(kinds.SECRET, secret, force=True)


async def create_applications(client: kube_client.Client, url: str) -> list[str]:
    """Install the CRDs the demo needs (idempotent) and create the missing demo Applications."""
    await gitops_crds.install(client, namespace=CONTROL_NAMESPACE)
    await rollouts_crds.install(client)
    created: list[str] = []
    for strategy in STRATEGIES:
        try:
            await client.create(gitops_crds.APPLICATION, application(strategy, url))
        except kube_errors.ApiError as exc:
            if exc.already_exists:
                continue
            raise
        created.append(f"Application {CONTROL_NAMESPACE}/{app_name(strategy)}")
    return created


async def bootstrap_async(state_dir: Path, kubeconfig: Path) -> list[str]:
    """:func:`bootstrap` for callers already inside an event loop."""
    created: list[str] = []
    if await asyncio.to_thread(create_repo, state_dir):
        created.append(f"Git repository {repo_path(state_dir)}")
    client = kube_client.Client.from_kubeconfig(kubeconfig, field_manager=FIELD_MANAGER)
    try:
        await write_metrics_secret(client, api_url(kubeconfig))
        created += await create_applications(client, repo_url(state_dir))
    except kube_errors.KubeError as exc:
        raise DemoError(f"cannot create the demo Applications: {exc}") from exc
    finally:
        await client.close()
    return created


def bootstrap(state_dir: Path, kubeconfig: Path) -> list[str]:
    """Make sure the demo repository and its Applications exist; what was created (empty: nothing).

    Idempotent: an existing repository and existing Applications are left as they are (they may hold
    the user's changes). Raises :class:`DemoError` when the repository or the cluster refuses."""
    return asyncio.run(bootstrap_async(state_dir, kubeconfig))
