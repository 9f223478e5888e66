"""``POST /api/webhook`` in-process over a real bare cluster: each provider's push refreshes the
Applications it concerns and no others, secrets from ``argocd-secret`` are enforced (and rotate), bodies
are bounded, and the matching rules (URL spellings, branch/tag/HEAD, manifest-generate-paths) hold."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import server_support

from tugboat.gitops import crds as gitops_crds
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.server import auth, webhookpayloads, webhooks
from tugboat.server.webhookpayloads import Push, Ref

REFRESH = "argocd.argoproj.io/refresh"
REPO = "https://github.com/org/repo"
SHA = "0123456789abcdef0123456789abcdef01234567"


# --------------------------------------------------------------------------------------- fixtures


client = server_support.client_fixture("test-webhooks", gitops=True)
# A fresh control namespace holding ``argocd-secret`` and the Applications of one test.
ns = server_support.namespace_fixture("hook")


@pytest.fixture
async def api(client: Client, ns: str) -> AsyncIterator[httpx.AsyncClient]:
    async with server_support.logged_in_api(client, ns, login=False) as http:
        yield http


# ---------------------------------------------------------------------------------------- helpers


def _source(repo: str, revision: str = "HEAD", path: str = ".") -> dict[str, Any]:
    return {"repoURL": repo, "targetRevision": revision, "path": path}


async def _app(
    client: Client,
    ns: str,
    name: str,
    *sources: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> None:
    spec: dict[str, Any] = {
        "project": "default",
        "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
    }
    if len(sources) == 1:
        spec["source"] = sources[0]
    else:
        spec["sources"] = list(sources)
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": spec,
    }
    await client.create(gitops_crds.APPLICATION, app)


async def _refreshed(client: Client, ns: str) -> list[str]:
    """Names of the Applications carrying the refresh annotation; the annotation is then removed (as the
    controller would), so the next request starts clean."""
    apps, _ = await client.list(gitops_crds.APPLICATION, ns)
    marked = [a for a in apps if (a["metadata"].get("annotations") or {}).get(REFRESH)]
    names = sorted(a["metadata"]["name"] for a in marked)
    for name in names:
        patch = {"metadata": {"annotations": {REFRESH: None}}}
        await client.patch(gitops_crds.APPLICATION, name, patch, namespace=ns)
    return names


async def _set_secret(client: Client, ns: str, key: str, value: str | None) -> None:
    encoded = base64.b64encode(value.encode()).decode() if value is not None else None
    await client.patch(kinds.SECRET, auth.SETTINGS_SECRET, {"data": {key: encoded}}, namespace=ns)


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _github(ref: str, *, repo: str = REPO, files: list[str] | None = None, default: str = "main") -> bytes:
    owner_repo = repo.removeprefix("https://github.com/")
    payload: dict[str, Any] = {
        "ref": ref,
        "before": "0" * 40,
        "after": SHA,
        "repository": {
            "full_name": owner_repo,
            "html_url": repo,
            "clone_url": f"{repo}.git",
            "ssh_url": f"git@github.com:{owner_repo}.git",
            "git_url": f"git://github.com/{owner_repo}.git",
            "default_branch": default,
        },
        "commits": [{"id": SHA, "added": files or [], "modified": [], "removed": []}] if files else [],
    }
    return json.dumps(payload).encode()


def _gitlab(ref: str, *, files: list[str] | None = None) -> bytes:
    payload = {
        "object_kind": "tag_push" if ref.startswith("refs/tags/") else "push",
        "ref": ref,
        "project": {
            "web_url": "https://gitlab.example.com/group/sub/app",
            "git_ssh_url": "git@gitlab.example.com:group/sub/app.git",
            "git_http_url": "https://gitlab.example.com/group/sub/app.git",
            "default_branch": "main",
        },
        "repository": {"homepage": "https://gitlab.example.com/group/sub/app"},
        "commits": [{"id": SHA, "added": [], "modified": files or [], "removed": []}] if files else [],
    }
    return json.dumps(payload).encode()


def _gitea(ref: str) -> bytes:
    payload = {
        "ref": ref,
        "repository": {
            "html_url": "https://gitea.example.com/org/app",
            "clone_url": "https://gitea.example.com/org/app.git",
            "ssh_url": "git@gitea.example.com:org/app.git",
            "default_branch": "main",
        },
        "commits": [{"id": SHA, "added": ["a.yaml"], "modified": [], "removed": []}],
    }
    return json.dumps(payload).encode()


def _bitbucket_cloud(name: str, kind: str = "branch") -> bytes:
    payload = {
        "repository": {
            "full_name": "team/app",
            "links": {"html": {"href": "https://bitbucket.org/team/app"}},
        },
        "push": {"changes": [{"new": {"type": kind, "name": name, "target": {"hash": SHA}}, "old": None}]},
    }
    return json.dumps(payload).encode()


def _bitbucket_server(ref_id: str, kind: str = "BRANCH") -> bytes:
    payload = {
        "eventKey": "repo:refs_changed",
        "repository": {
            "slug": "app",
            "links": {
                "clone": [
                    {"href": "https://bitbucket.example.com/scm/proj/app.git", "name": "http"},
                    {"href": "ssh://git@bitbucket.example.com:7999/proj/app.git", "name": "ssh"},
                ]
            },
        },
        "changes": [
            {
                "ref": {"id": ref_id, "displayId": ref_id.rsplit("/", 1)[-1], "type": kind},
                "refId": ref_id,
                "toHash": SHA,
                "type": "UPDATE",
            }
        ],
    }
    return json.dumps(payload).encode()


async def _post(api: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    headers = {"Content-Type": "application/json", **headers}
    return await api.post("/api/webhook", content=body, headers=headers)


def _github_headers(body: bytes, secret: str | None = None, event: str = "push") -> dict[str, str]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "1"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + _hmac(secret, body)
    return headers


# --------------------------------------------------------------------------------- unit: matching


def test_repo_key_treats_spellings_of_one_repository_alike(tmp_path: Path) -> None:
    same = [
        "https://github.com/org/repo",
        "https://github.com/org/repo.git",
        "https://github.com/org/repo/",
        "https://GitHub.com/Org/Repo.git/",
        "http://github.com/org/repo",
        "https://user:token@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "ssh://git@github.com/org/repo.git",
        "ssh://git@github.com:22/org/repo",
        "git://github.com/org/repo.git",
    ]
    assert {webhooks.repo_key(url) for url in same} == {"github.com/org/repo"}
    assert webhooks.repo_key("https://github.com/org/repo2") != webhooks.repo_key(REPO)
    assert webhooks.repo_key("https://gitlab.com/org/repo") != webhooks.repo_key(REPO)
    assert webhooks.repo_key("https://github.com/other/repo") != webhooks.repo_key(REPO)
    assert webhooks.repo_key("") is None
    assert webhooks.repo_key("ext::sh -c evil") is None

    local = tmp_path / "Repo"
    local.mkdir()
    key = webhooks.repo_key(str(local))
    assert key == f"file://{local.resolve()}"
    assert webhooks.repo_key(local.as_uri()) == key
    assert webhooks.repo_key(local.as_uri() + "/") == key
    assert webhooks.repo_key(f"{local}/.git") == key
    assert webhooks.repo_key(str(tmp_path / "repo")) != key  # local paths keep their case


def _push(*refs: Ref, default: str | None = "main") -> Push:
    return Push("test", (REPO,), refs, default_branch=default)


def test_revision_matching_branch_tag_head_and_commit() -> None:
    main = webhookpayloads.parse_ref("refs/heads/main")
    dev = webhookpayloads.parse_ref("refs/heads/dev")
    tag = webhookpayloads.parse_ref("refs/tags/v1.0")
    assert (main, tag) == (Ref("branch", "main"), Ref("tag", "v1.0"))
    matches = webhooks.revision_matches

    for head in ("HEAD", "", None):
        assert matches(head, _push(main))
        assert not matches(head, _push(dev))  # not the default branch
        assert matches(head, _push(dev, default=None))  # default unknown: any branch
        assert not matches(head, _push(tag, default=None))  # a tag never moves HEAD
    assert matches("main", _push(main)) and matches("refs/heads/main", _push(main))
    assert not matches("main", _push(dev)) and not matches("refs/heads/main", _push(tag))
    assert matches("v1.0", _push(tag)) and matches("refs/tags/v1.0", _push(tag))
    assert not matches("refs/tags/main", _push(main)) and not matches("v1.0", _push(main))
    assert not matches(SHA, _push(main, dev, tag))
    assert matches(1.0, _push(Ref("tag", "1.0")))  # an unquoted YAML number
    assert matches("dev", _push(main, dev))  # Bitbucket pushes list several refs
    assert matches("main", _push(Ref("", "main")))  # a payload that does not say the kind


def test_manifest_generate_paths_relative_absolute_and_globs() -> None:
    paths = webhooks.refresh_paths(".; ../shared ;/base;;/charts/*/values.yaml", source_path="apps/web")
    assert paths == [
        ("apps", "web"),
        ("apps", "shared"),
        ("base",),
        ("charts", "*", "values.yaml"),
    ]
    touch = webhooks.files_touch
    assert touch(paths, ["apps/web/deploy.yaml"])
    assert touch(paths, ["apps/shared/x/y.yaml"])
    assert touch(paths, ["base/kustomization.yaml"])
    assert touch(paths, ["charts/web/values.yaml"])
    assert not touch(paths, ["apps/webby/deploy.yaml", "README.md", "charts/web/Chart.yaml", "basement/x"])
    assert not touch(paths, [])
    assert touch(webhooks.refresh_paths(".", source_path=""), ["anything/at/all"])  # repository root


def test_payload_parsing_and_provider_detection() -> None:
    gitlab = webhookpayloads.parse_gitlab(json.loads(_gitlab("refs/tags/v2", files=["x/y.yaml"])))
    assert gitlab.refs == (Ref("tag", "v2"),) and gitlab.default_branch == "main"
    assert gitlab.changed_files == frozenset({"x/y.yaml"})
    assert "git@gitlab.example.com:group/sub/app.git" in gitlab.urls
    cloud = webhookpayloads.parse_bitbucket(json.loads(_bitbucket_cloud("v3", "tag")))
    assert cloud.refs == (Ref("tag", "v3"),) and cloud.changed_files is None
    server = webhookpayloads.parse_bitbucket_server(json.loads(_bitbucket_server("refs/heads/release")))
    assert server.refs == (Ref("branch", "release"),) and len(server.urls) == 2
    github = webhookpayloads.parse_github(json.loads(_github("refs/tags/v1")))
    assert github.changed_files is None  # no commits listed: unknown, not "nothing changed"

    detect = webhookpayloads.detect
    # Gitea sends Gogs' and GitHub's headers too.
    assert detect({"X-Gitea-Event": "push", "X-Gogs-Event": "push", "X-GitHub-Event": "push"}) is (
        webhookpayloads.GITEA
    )
    assert detect({"X-Gogs-Event": "push"}) is webhookpayloads.GOGS
    assert detect({"X-Gitlab-Event": "Push Hook"}) is webhookpayloads.GITLAB
    assert detect({"X-Event-Key": "repo:push"}) is webhookpayloads.BITBUCKET
    assert detect({"X-Event-Key": "repo:refs_changed"}) is webhookpayloads.BITBUCKET_SERVER
    assert detect({"X-Event-Key": "pr:opened"}) is webhookpayloads.BITBUCKET_SERVER
    assert detect({"X-Event-Key": "issue:created", "X-Hook-UUID": "u"}) is webhookpayloads.BITBUCKET
    assert detect({"Content-Type": "application/json"}) is None


# ---------------------------------------------------------------------------------- integration


async def test_github_push_refreshes_only_matching_apps(
    client: Client, ns: str, api: httpx.AsyncClient
) -> None:
    await _app(client, ns, "head", _source("https://GitHub.com/Org/Repo.git"))
    await _app(client, ns, "ssh-main", _source("git@github.com:org/repo.git", "main"))
    await _app(client, ns, "full-ref", _source("ssh://git@github.com:22/org/repo.git/", "refs/heads/main"))
    await _app(client, ns, "dev", _source(REPO, "dev"))
    await _app(client, ns, "tagged", _source(REPO, "v1.0"))
    await _app(client, ns, "pinned", _source(REPO, SHA))
    await _app(client, ns, "elsewhere", _source("https://github.com/org/other"))
    await _app(client, ns, "multi", _source("https://github.com/org/other"), _source(f"{REPO}.git", "main"))

    body = _github("refs/heads/main")
    response = await _post(api, body, _github_headers(body))
    assert response.status_code == 200, response.text
    expected = ["full-ref", "head", "multi", "ssh-main"]
    assert response.json() == {}  # the public route does not say which apps use the repository
    assert await _refreshed(client, ns) == expected

    body = _github("refs/heads/dev")
    assert (await _post(api, body, _github_headers(body))).json() == {}
    assert await _refreshed(client, ns) == ["dev"]
    body = _github("refs/tags/v1.0")
    assert (await _post(api, body, _github_headers(body))).json() == {}
    assert await _refreshed(client, ns) == ["tagged"]


async def test_github_signature_enforced_and_secret_rotates(
    client: Client, ns: str, api: httpx.AsyncClient
) -> None:
    await _app(client, ns, "web", _source(REPO))
    body = _github("refs/heads/main")

    # No secret configured: unsigned events are accepted.
    assert (await _post(api, body, _github_headers(body))).json() == {}
    assert await _refreshed(client, ns) == ["web"]

    await _set_secret(client, ns, "webhook.github.secret", "s3cret")
    bad = await _post(api, body, _github_headers(body, "wrong"))
    assert bad.status_code == 401 and "X-Hub-Signature-256" in bad.json()["message"]
    missing = await _post(api, body, _github_headers(body))
    assert missing.status_code == 401 and "no X-Hub-Signature-256" in missing.json()["message"]
    tampered = await _post(api, body.replace(b"main", b"mainx"), _github_headers(body, "s3cret"))
    assert tampered.status_code == 401
    assert await _refreshed(client, ns) == []
    good = await _post(api, body, _github_headers(body, "s3cret"))
    assert good.json() == {}
    assert await _refreshed(client, ns) == ["web"]

    await _set_secret(client, ns, "webhook.github.secret", "rotated")  # no restart needed
    assert (await _post(api, body, _github_headers(body, "s3cret"))).status_code == 401
    assert (await _post(api, body, _github_headers(body, "rotated"))).status_code == 200
    # Even events that are ignored must be signed once a secret is set.
    ping = await _post(api, b"{}", _github_headers(b"{}", event="ping"))
    assert ping.status_code == 401
    assert await _refreshed(client, ns) == ["web"]


async def test_gitlab_token_push_and_tag_push(client: Client, ns: str, api: httpx.AsyncClient) -> None:
    await _app(client, ns, "head", _source("git@gitlab.example.com:group/sub/app.git"))
    await _app(client, ns, "release", _source("https://gitlab.example.com/group/sub/app", "v2"))
    await _app(client, ns, "unrelated", _source("https://gitlab.example.com/group/app"))
    await _set_secret(client, ns, "webhook.gitlab.secret", "tok")

    body = _gitlab("refs/heads/main")
    wrong = await _post(api, body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})
    assert wrong.status_code == 401 and "X-Gitlab-Token" in wrong.json()["message"]
    assert (await _post(api, body, {"X-Gitlab-Event": "Push Hook"})).status_code == 401
    assert await _refreshed(client, ns) == []

    ok = await _post(api, body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "tok"})
    assert ok.json() == {}
    assert await _refreshed(client, ns) == ["head"]
    tag_headers = {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": "tok"}
    tag = await _post(api, _gitlab("refs/tags/v2"), tag_headers)
    assert tag.json() == {}
    assert await _refreshed(client, ns) == ["release"]
    merge = await _post(api, b"{}", {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "tok"})
    assert merge.status_code == 200 and merge.json() == {}
    assert await _refreshed(client, ns) == []  # a merge request refreshes nothing


async def test_gitea_and_gogs_signatures(client: Client, ns: str, api: httpx.AsyncClient) -> None:
    await _app(client, ns, "web", _source("https://gitea.example.com/org/app.git"))
    body = _gitea("refs/heads/main")

    # Gitea falls back to Argo CD's webhook.gogs.secret ...
    await _set_secret(client, ns, "webhook.gogs.secret", "gogs")
    gitea = {"X-Gitea-Event": "push", "X-Gogs-Event": "push", "X-GitHub-Event": "push"}
    assert (await _post(api, body, gitea)).status_code == 401
    signed = {**gitea, "X-Gitea-Signature": _hmac("gogs", body)}
    assert (await _post(api, body, signed)).json() == {}
    assert await _refreshed(client, ns) == ["web"]
    # ... and webhook.gitea.secret wins when set.
    await _set_secret(client, ns, "webhook.gitea.secret", "gitea")
    assert (await _post(api, body, signed)).status_code == 401
    signed = {**gitea, "X-Gitea-Signature": _hmac("gitea", body)}
    assert (await _post(api, body, signed)).json() == {}
    assert await _refreshed(client, ns) == ["web"]

    gogs = {"X-Gogs-Event": "push", "X-Gogs-Signature": _hmac("gitea", body)}
    assert (await _post(api, body, gogs)).status_code == 401
    gogs["X-Gogs-Signature"] = _hmac("gogs", body)
    assert (await _post(api, body, gogs)).json() == {}
    assert await _refreshed(client, ns) == ["web"]


async def test_bitbucket_cloud_uuid_and_server_signature(
    client: Client, ns: str, api: httpx.AsyncClient
) -> None:
    await _app(client, ns, "cloud", _source("git@bitbucket.org:team/app.git", "main"))
    await _app(client, ns, "cloud-tag", _source("https://bitbucket.org/team/app", "v3"))
    await _app(client, ns, "server", _source("ssh://git@bitbucket.example.com:7999/proj/app.git"))
    await _app(client, ns, "server-http", _source("https://bitbucket.example.com/scm/proj/app", "main"))

    uuid = "{1B2C3D4E-0000-4000-8000-000000000001}"
    await _set_secret(client, ns, "webhook.bitbucket.uuid", uuid)
    body = _bitbucket_cloud("main")
    assert (await _post(api, body, {"X-Event-Key": "repo:push"})).status_code == 401
    other = {"X-Event-Key": "repo:push", "X-Hook-UUID": "{00000000-0000-4000-8000-000000000000}"}
    assert (await _post(api, body, other)).status_code == 401
    cloud = {"X-Event-Key": "repo:push", "X-Hook-UUID": uuid.lower()}
    assert (await _post(api, body, cloud)).json() == {}
    assert await _refreshed(client, ns) == ["cloud"]
    assert (await _post(api, _bitbucket_cloud("v3", "tag"), cloud)).json() == {}
    assert await _refreshed(client, ns) == ["cloud-tag"]

    await _set_secret(client, ns, "webhook.bitbucketserver.secret", "bbs")
    body = _bitbucket_server("refs/heads/main")
    server = {"X-Event-Key": "repo:refs_changed", "X-Request-Id": "1"}
    assert (await _post(api, body, server)).status_code == 401
    bad = {**server, "X-Hub-Signature": "sha256=" + _hmac("other", body)}
    assert (await _post(api, body, bad)).status_code == 401
    good = {**server, "X-Hub-Signature": "sha256=" + _hmac("bbs", body)}
    # The default branch is not in the payload, so HEAD follows any branch push.
    assert (await _post(api, body, good)).json() == {}
    assert await _refreshed(client, ns) == ["server", "server-http"]
    ping = {"X-Event-Key": "diagnostics:ping", "X-Hub-Signature": "sha256=" + _hmac("bbs", b"{}")}
    assert (await _post(api, b"{}", ping)).json() == {}
    assert await _refreshed(client, ns) == []  # a ping refreshes nothing


async def test_manifest_generate_paths_filter_refreshes(
    client: Client, ns: str, api: httpx.AsyncClient
) -> None:
    paths = {webhooks.MANIFEST_PATHS_ANNOTATION: ".;/shared"}
    await _app(client, ns, "a", _source(REPO, path="apps/a"), annotations=paths)
    await _app(client, ns, "b", _source(REPO, path="apps/b"), annotations=paths)
    await _app(client, ns, "plain", _source(REPO, path="apps/c"))

    async def push(files: list[str] | None) -> list[str]:
        body = _github("refs/heads/main", files=files)
        response = await _post(api, body, _github_headers(body))
        assert response.status_code == 200, response.text
        assert response.json() == {}
        return await _refreshed(client, ns)

    assert await push(["apps/a/deploy.yaml"]) == ["a", "plain"]
    assert await push(["apps/b/x/service.yaml", "README.md"]) == ["b", "plain"]
    assert await push(["shared/common.yaml"]) == ["a", "b", "plain"]
    assert await push(["docs/index.md"]) == ["plain"]
    assert await push(None) == ["a", "b", "plain"]  # no file list: refresh to be safe

    # A pending hard refresh is not downgraded to a normal one.
    await client.patch(
        gitops_crds.APPLICATION, "plain", {"metadata": {"annotations": {REFRESH: "hard"}}}, namespace=ns
    )
    body = _github("refs/heads/main", files=["docs/index.md"])
    assert (await _post(api, body, _github_headers(body))).json() == {}
    app = await client.get(gitops_crds.APPLICATION, "plain", ns)
    assert app["metadata"]["annotations"][REFRESH] == "hard"


async def test_oversized_payload_is_refused(client: Client, ns: str, api: httpx.AsyncClient) -> None:
    await _app(client, ns, "web", _source(REPO))
    await client.create(
        kinds.CONFIGMAP,
        {"metadata": {"name": "argocd-cm", "namespace": ns}, "data": {webhooks.MAX_PAYLOAD_KEY: "1"}},
    )
    payload = json.loads(_github("refs/heads/main"))
    payload["padding"] = "x" * (1024 * 1024)
    big = json.dumps(payload).encode()

    declared = await _post(api, big, _github_headers(big))
    assert declared.status_code == 413 and webhooks.MAX_PAYLOAD_KEY in declared.json()["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    headers = {"Content-Type": "application/json", **_github_headers(big)}
    streamed = await api.post("/api/webhook", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and "content-length" not in streamed.request.headers
    assert await _refreshed(client, ns) == []

    small = _github("refs/heads/main")
    assert (await _post(api, small, _github_headers(small))).json() == {}
    assert await _refreshed(client, ns) == ["web"]


async def test_unknown_events_and_malformed_payloads(client: Client, ns: str, api: httpx.AsyncClient) -> None:
    await _app(client, ns, "web", _source(REPO))
    ping = await _post(api, b'{"zen": "hi"}', {"X-GitHub-Event": "ping"})
    assert ping.status_code == 200 and ping.json() == {}
    anonymous = await _post(api, _github("refs/heads/main"), {})
    assert anonymous.status_code == 400 and "event header" in anonymous.json()["message"]
    broken = await _post(api, b"{not json", {"X-GitHub-Event": "push"})
    assert broken.status_code == 400 and "not JSON" in broken.json()["message"]
    array = await _post(api, b"[]", {"X-GitHub-Event": "push"})
    assert array.status_code == 400
    no_repo = await _post(api, b'{"ref": "refs/heads/main"}', {"X-GitHub-Event": "push"})
    assert no_repo.status_code == 400 and "repository" in no_repo.json()["message"]
    assert (await api.get("/api/webhook")).status_code == 405
    assert await _refreshed(client, ns) == []


async def test_local_repository_matches_file_url(
    client: Client, ns: str, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    await _app(client, ns, "local", _source(str(repo)))
    await _app(client, ns, "local-url", _source(repo.as_uri() + "/.git", "main"))
    await _app(client, ns, "other", _source(str(tmp_path / "elsewhere")))
    payload = {
        "ref": "refs/heads/main",
        "repository": {"clone_url": repo.as_uri(), "html_url": repo.as_uri(), "default_branch": "main"},
    }
    body = json.dumps(payload).encode()
    response = await _post(api, body, {"X-Gitea-Event": "push"})
    assert response.json() == {}
    assert await _refreshed(client, ns) == ["local", "local-url"]
