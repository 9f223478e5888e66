"""Kustomize apps: detection, the Application's overrides, build variables, failures and timeouts."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pytest

import examples_support
from tugboat.gitops import render
from tugboat.gitops.render import buildenv, kustomize

EXAMPLES = examples_support.example_dir("argocd-example-apps")
needs_examples = pytest.mark.skipif(not EXAMPLES, reason="no argocd-example-apps in TUGBOAT_EXAMPLES")
needs_kustomize = pytest.mark.skipif(
    not (shutil.which("kustomize") or shutil.which("kubectl")),
    reason="neither kustomize nor kubectl is installed",
)

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def fingerprint(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


async def render_app(root: Path, source: dict[str, Any], *, timeout: float = 60) -> render.RenderResult:
    return await render.render(
        root,
        source,
        app_name="web-app",
        app_namespace="prod",
        revision="0123456789abcdef0123",
        repo_url="https://git.example.com/repo.git",
        project="team",
        timeout=timeout,
        api_versions=["apps/v1", "v1"],
    )


def fake_tool(directory: Path, name: str, script: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@needs_examples
@needs_kustomize
async def test_kustomize_guestbook_with_a_name_prefix_override() -> None:
    root = Path(EXAMPLES or "")
    before = fingerprint(root / "kustomize-guestbook")
    plain = await render_app(root, {"path": "kustomize-guestbook"})
    assert plain.source_type == "Kustomize"
    assert sorted((m["kind"], m["metadata"]["name"]) for m in plain.manifests) == [
        ("Deployment", "kustomize-guestbook-ui"),
        ("Service", "kustomize-guestbook-ui"),
    ]
    # Argo CD runs `kustomize edit set nameprefix`, which replaces the kustomization's own prefix.
    overridden = await render_app(
        root, {"path": "kustomize-guestbook", "kustomize": {"namePrefix": "staging-"}}
    )
    assert sorted(m["metadata"]["name"] for m in overridden.manifests) == ["staging-guestbook-ui"] * 2
    assert fingerprint(root / "kustomize-guestbook") == before


@needs_examples
@needs_kustomize
async def test_pre_post_sync_and_sock_shop_examples() -> None:
    root = Path(EXAMPLES or "")
    hooks = await render_app(root, {"path": "pre-post-sync"})
    assert sorted((m["kind"], m["metadata"]["name"]) for m in hooks.manifests) == [
        ("Deployment", "pre-post-sync-kustomize-guestbook-ui"),
        ("Job", "pre-post-sync-after"),
        ("Job", "pre-post-sync-before"),
        ("Service", "pre-post-sync-kustomize-guestbook-ui"),
    ]
    jobs = {
        m["metadata"]["name"]: m["metadata"]["annotations"] for m in hooks.manifests if m["kind"] == "Job"
    }
    assert jobs["pre-post-sync-before"]["argocd.argoproj.io/hook"] == "PreSync"
    # The relative base (../kustomize-guestbook) still resolves when overrides force a private copy.
    overridden = await render_app(root, {"path": "pre-post-sync", "kustomize": {"nameSuffix": "-x"}})
    assert "pre-post-sync-kustomize-guestbook-ui-x" in {m["metadata"]["name"] for m in overridden.manifests}
    shop = await render_app(root, {"path": "sock-shop"})
    kinds = [m["kind"] for m in shop.manifests]
    assert (kinds.count("Deployment"), kinds.count("Service"), kinds.count("Ingress")) == (14, 14, 1)


@needs_kustomize
async def test_overrides_edit_the_kustomization_like_kustomize_edit(tmp_path: Path) -> None:
    repo = write(
        tmp_path,
        {
            "base/deployment.yaml": DEPLOYMENT,
            "base/kustomization.yaml": "resources: [deployment.yaml]\n",
            "components/extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\n"
            "kind: Component\nresources: [cm.yaml]\n",
            "components/extra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
            "overlay/kustomization.yaml": "resources: [../base]\nnamePrefix: own-\ncommonLabels: {team: a}\n",
        },
    )
    before = fingerprint(repo)
    settings = {
        "namePrefix": "app-",
        "nameSuffix": "-v2",
        "images": ["nginx=registry.example.com/nginx:$ARGOCD_APP_REVISION_SHORT"],
        "replicas": [{"name": "web", "count": "3"}],
        "commonLabels": {"env": "$ARGOCD_APP_NAMESPACE"},
        "commonAnnotations": {"app": "$ARGOCD_APP_NAME", "literal": "$ARGOCD_APP_NAME"},
        "namespace": "target",
        "patches": [
            {
                "target": {"kind": "Deployment"},
                "patch": "- op: add\n  path: /metadata/annotations/patched\n  value: 'yes'\n",
            }
        ],
        "components": ["../components/extra"],
    }
    result = await render_app(repo, {"path": "overlay", "kustomize": settings})
    by_kind = {m["kind"]: m for m in result.manifests}
    deployment, configmap = by_kind["Deployment"], by_kind["ConfigMap"]
    assert deployment["metadata"]["name"] == "app-web-v2"
    assert configmap["metadata"]["name"] == "app-extra-v2"
    assert deployment["metadata"]["namespace"] == "target"
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/nginx:0123456"
    assert deployment["metadata"]["labels"] == {"team": "a", "env": "prod"}
    # commonAnnotations are substituted only with commonAnnotationsEnvsubst, as in Argo CD.
    assert deployment["metadata"]["annotations"]["app"] == "$ARGOCD_APP_NAME"
    assert deployment["metadata"]["annotations"]["patched"] == "yes"
    assert fingerprint(repo) == before

    settings["commonAnnotationsEnvsubst"] = True
    result = await render_app(repo, {"path": "overlay", "kustomize": settings})
    deployment = next(m for m in result.manifests if m["kind"] == "Deployment")
    assert deployment["metadata"]["annotations"]["app"] == "web-app"


@needs_kustomize
async def test_override_conflicts_and_bad_values_are_clear_errors(tmp_path: Path) -> None:
    repo = write(
        tmp_path,
        {
            "app/deployment.yaml": DEPLOYMENT,
            "app/kustomization.yaml": "resources: [deployment.yaml]\ncommonLabels: {team: a}\n",
        },
    )
    with pytest.raises(render.RenderError, match=r"label 'team' is already set in app/kustomization\.yaml"):
        await render_app(repo, {"path": "app", "kustomize": {"commonLabels": {"team": "b"}}})
    forced = await render_app(
        repo, {"path": "app", "kustomize": {"commonLabels": {"team": "b"}, "forceCommonLabels": True}}
    )
    assert forced.manifests[0]["metadata"]["labels"] == {"team": "b"}
    with pytest.raises(render.RenderError, match="components\\[0\\] 'missing' does not exist"):
        await render_app(repo, {"path": "app", "kustomize": {"components": ["missing"]}})
    ignored = await render_app(
        repo, {"path": "app", "kustomize": {"components": ["missing"], "ignoreMissingComponents": True}}
    )
    assert ignored.warnings == ["skipped component 'missing': it does not exist"]
    with pytest.raises(render.RenderError, match="resolves to outside the repository"):
        await render_app(repo, {"path": "app", "kustomize": {"components": ["../../elsewhere"]}})
    with pytest.raises(render.RenderError, match="namespace 'Not_Valid' is not a valid namespace name"):
        await render_app(repo, {"path": "app", "kustomize": {"namespace": "Not_Valid"}})
    with pytest.raises(render.RenderError, match="invalid image 'nginx'"):
        await render_app(repo, {"path": "app", "kustomize": {"images": ["nginx"]}})
    with pytest.raises(render.RenderError, match=r"replicas\[0\]\.count must be an integer"):
        await render_app(repo, {"path": "app", "kustomize": {"replicas": [{"name": "web", "count": "many"}]}})


def test_image_arguments_parse_like_kustomize_edit_set_image() -> None:
    assert kustomize.parse_image("nginx:1.2") == {"name": "nginx", "newTag": "1.2"}
    assert kustomize.parse_image("nginx=reg:5000/nginx:1.2") == {
        "name": "nginx",
        "newName": "reg:5000/nginx",
        "newTag": "1.2",
    }
    assert kustomize.parse_image("alpine@sha256:abc") == {"name": "alpine", "digest": "sha256:abc"}
    assert kustomize.parse_image("my=new:1@sha256:abc") == {
        "name": "my",
        "newName": "new",
        "newTag": "1",
        "digest": "sha256:abc",
    }
    kustomization: dict[str, Any] = {
        "images": [{"name": "a", "newName": "keep", "newTag": "old"}, {"name": "z"}]
    }
    env = buildenv.BuildEnv(
        app_name="x",
        app_namespace="",
        project="",
        revision="",
        repo_url="",
        source_path="",
        target_revision="",
        kube_version="1.32.0",
    )
    kustomize.apply_overrides(
        kustomization, {"images": ["a=*:new", "b:1"]}, env=env, shown="k", check_path=None
    )
    assert kustomization["images"] == [
        {"name": "a", "newName": "keep", "newTag": "new"},
        {"name": "b", "newTag": "1"},
        {"name": "z"},
    ]


def test_the_build_environment_matches_argo_cd() -> None:
    env = buildenv.BuildEnv(
        app_name="guestbook",
        app_namespace="prod",
        project="default",
        revision="f913b6cbf58aa5ae5ca1f8a2b149477aebcbd9d8",
        repo_url="https://git.example.com/r.git",
        source_path="apps/guestbook",
        target_revision="main",
        kube_version=buildenv.normalize_kube_version("v1.32.4+k3s1"),
        api_versions=("apps/v1", "v1"),
    )
    assert env.variables() == {
        "ARGOCD_APP_NAME": "guestbook",
        "ARGOCD_APP_NAMESPACE": "prod",
        "ARGOCD_APP_PROJECT_NAME": "default",
        "ARGOCD_APP_REVISION": "f913b6cbf58aa5ae5ca1f8a2b149477aebcbd9d8",
        "ARGOCD_APP_REVISION_SHORT": "f913b6c",
        "ARGOCD_APP_REVISION_SHORT_8": "f913b6cb",
        "ARGOCD_APP_SOURCE_REPO_URL": "https://git.example.com/r.git",
        "ARGOCD_APP_SOURCE_PATH": "apps/guestbook",
        "ARGOCD_APP_SOURCE_TARGET_REVISION": "main",
        "KUBE_VERSION": "1.32.4",
        "KUBE_API_VERSIONS": "apps/v1,v1",
    }
    assert env.substitute("$ARGOCD_APP_NAME-${ARGOCD_APP_REVISION_SHORT_8}") == "guestbook-f913b6cb"
    assert (
        env.substitute("$$ARGOCD_APP_NAME $UNKNOWN ${KUBE_VERSION} cost: $5 ${ x")
        == "$ARGOCD_APP_NAME   cost:   x"
    )
    assert buildenv.normalize_kube_version("1.32") == "1.32.0"
    with pytest.raises(render.RenderError, match="invalid Kubernetes version"):
        buildenv.normalize_kube_version("latest")


async def test_build_variables_reach_the_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(
        tmp_path / "bin",
        "kustomize",
        "cat <<EOF\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: env\ndata:\n"
        '  app: "$ARGOCD_APP_NAME"\n  ns: "$ARGOCD_APP_NAMESPACE"\n  project: "$ARGOCD_APP_PROJECT_NAME"\n'
        '  rev: "$ARGOCD_APP_REVISION_SHORT_8"\n  path: "$ARGOCD_APP_SOURCE_PATH"\n'
        '  target: "$ARGOCD_APP_SOURCE_TARGET_REVISION"\n'
        '  kube: "$KUBE_VERSION"\n  apis: "$KUBE_API_VERSIONS"\n'
        '  args: "$1 $(basename $2)"\nEOF\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    repo = write(tmp_path / "repo", {"app/kustomization.yaml": "resources: []\n"})
    result = await render_app(repo, {"path": "app", "targetRevision": "main"})
    assert result.manifests[0]["data"] == {
        "app": "web-app",
        "ns": "prod",
        "project": "team",
        "rev": "01234567",
        "path": "app",
        "target": "main",
        "kube": "1.32.0",
        "apis": "apps/v1,v1",
        "args": "build app",
    }


async def test_a_slow_tool_is_killed_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    fake_tool(tmp_path / "bin", "kustomize", f"sleep 60 &\necho $! > {pid_file}\nsleep 60\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    repo = write(tmp_path / "repo", {"app/kustomization.yaml": "resources: []\n"})
    started = time.monotonic()
    with pytest.raises(render.RenderError, match="kustomize build timed out after 1s"):
        await render_app(repo, {"path": "app"}, timeout=1)
    assert time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the tool's child process survived the timeout")


async def test_tool_failures_quote_the_error_output_without_local_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(
        tmp_path / "bin",
        "kustomize",
        'echo "Error: accumulating resources from $2/missing.yaml" >&2\nexit 1\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    repo = write(tmp_path / "repo", {"app/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(render.RenderError) as caught:
        await render_app(repo, {"path": "app"})
    assert (
        str(caught.value) == "kustomize build failed: Error: accumulating resources from ./app/missing.yaml"
    )


async def test_malformed_tool_output_fails_the_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path / "bin", "kustomize", "printf 'apiVersion: v1\\nkind: ConfigMap\\n---\\n- oops\\n'\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    repo = write(tmp_path / "repo", {"app/kustomization.yaml": "resources: []\n"})
    with pytest.raises(render.RenderError, match=r"kustomize build output \(document starting at line 4\)"):
        await render_app(repo, {"path": "app"})


async def test_without_kustomize_or_kubectl_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    repo = write(tmp_path / "repo", {"app/kustomization.yaml": "resources: []\n"})
    with pytest.raises(render.RenderError, match="Kustomize is not available"):
        await render_app(repo, {"path": "app"})
