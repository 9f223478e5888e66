"""Revert-on-abort: telling automatic from manual aborts, the decision table, and the Git writes.

The abort messages come from the rollout controller's own :func:`aborted_message`, so a change on that
side breaks these tests rather than the feature. Git is real: a bare ``origin`` in a temp dir, reached
by ``file://`` URL, written to through the controller's repository cache; the Application side runs
against the session's bare API server.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.gitops import comparison, crds, health, repos, revert
from tugboat.gitops.resourcekey import ResourceKey
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.rollouts.conditions import aborted_message

DEADLINE = 'ReplicaSet "web-5d8f" has timed out progressing.'


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Origin:
    """A bare repository (the remote) and a clone to commit from."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.work = root / "work"
        root.mkdir(parents=True)
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, content in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    def show(self, rev: str, path: str) -> str:
        return git(self.bare, "show", f"{rev}:{path}")


def rollout(*, message: str | None, abort: bool = True, aborted_at: str = "2026-01-01T00:00:10Z") -> Any:
    status: dict[str, Any] = {"abort": abort, "abortedAt": aborted_at} if abort else {}
    if message is not None:
        status["conditions"] = [
            {"type": "Available", "status": "True", "reason": "AvailableReason", "message": "ok"},
            {"type": "Progressing", "status": "False", "reason": "RolloutAborted", "message": message},
        ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop"},
        "status": status,
    }


def application(
    *,
    sha: str,
    previous: str = "",
    mode: str | None = "commit",
    automated: bool = True,
    revision: str = "main",
    url: str = "file:///nowhere",
    annotations: dict[str, str] | None = None,
    started: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    notes = dict(annotations or {})
    if mode is not None:
        notes[revert.MODE_ANNOTATION] = mode
    policy: dict[str, Any] = {"automated": {"prune": True}} if automated else {}
    history = [{"id": i, "revision": r} for i, r in enumerate([previous, sha]) if r]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd", "annotations": notes},
        "spec": {
            "project": "default",
            "source": {"repoURL": url, "path": "app", "targetRevision": revision},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": policy,
        },
        "status": {
            "sync": {"status": "Synced", "revision": sha},
            "history": history,
            "operationState": {
                "phase": "Succeeded",
                "startedAt": started,
                "syncResult": {"revision": sha},
            },
        },
    }


AUTOMATIC = revert.Abort(rollout="shop/web", revision="3", reason=DEADLINE, aborted_at="2026-01-01T00:00:10Z")
MANUAL = revert.Abort(rollout="shop/web", revision="3", reason="", aborted_at="2026-01-01T00:00:10Z")
SHA = "a" * 40
PREV = "b" * 40


# ------------------------------------------------------------------------------------ manual or automatic


def test_an_abort_with_a_reason_is_automatic_and_one_without_is_manual() -> None:
    automatic = revert.parse_abort(rollout(message=aborted_message(3, DEADLINE)))
    assert automatic == AUTOMATIC and not automatic.manual
    analysis = revert.parse_abort(rollout(message=aborted_message(2, "Step-based analysis phase failed: x")))
    assert analysis is not None and analysis.reason == "Step-based analysis phase failed: x"
    manual = revert.parse_abort(rollout(message=aborted_message(3)))
    assert manual == MANUAL and manual.manual


def test_only_an_aborted_rollout_with_the_aborted_condition_counts() -> None:
    assert revert.parse_abort(rollout(message=aborted_message(3, DEADLINE), abort=False)) is None
    assert revert.parse_abort(rollout(message=None)) is None
    retried = rollout(message="Retrying Rollout after abort")
    retried["status"]["conditions"][1]["reason"] = "RolloutRetry"
    assert revert.parse_abort(retried) is None


def test_find_aborts_reads_live_rollouts_only() -> None:
    def state(group: str, kind: str, live: Any) -> comparison.ResourceState:
        return comparison.ResourceState(
            key=ResourceKey(group, kind, "shop", "web"),
            version="v1alpha1",
            target=None,
            live=live,
            status="Synced",
        )

    aborted = rollout(message=aborted_message(3, DEADLINE))
    states = [
        state("argoproj.io", "Rollout", aborted),
        state("argoproj.io", "Rollout", None),
        state("apps", "Deployment", aborted),
    ]
    assert revert.find_aborts(states) == [AUTOMATIC]


# ------------------------------------------------------------------------------------ the decision table


def test_a_plan_names_the_synced_commit_the_previous_one_and_the_branch() -> None:
    plan = revert.decide(application(sha=SHA, previous=PREV), [AUTOMATIC], head=SHA, app_name="argocd/shop")
    assert plan == revert.Plan(
        mode="commit",
        url="file:///nowhere",
        sha=SHA,
        previous=PREV,
        branch="main",
        abort=AUTOMATIC,
        app="argocd/shop",
    )
    head = revert.decide(application(sha=SHA, revision="HEAD", mode="branch"), [MANUAL, AUTOMATIC], head=SHA)
    assert isinstance(head, revert.Plan) and (head.branch, head.mode, head.previous) == ("", "branch", "")


@pytest.mark.parametrize(
    ("app", "aborts", "head", "expected"),
    [
        (application(sha=SHA, mode=None), [AUTOMATIC], SHA, None),
        (application(sha=SHA), [], SHA, None),
        (application(sha=SHA, annotations={revert.REVERTED_ANNOTATION: SHA}), [AUTOMATIC], SHA, None),
        (application(sha=SHA, mode="yes"), [AUTOMATIC], SHA, "must be 'commit' or 'branch'"),
        (application(sha=SHA, automated=False), [AUTOMATIC], SHA, "no automated sync policy"),
        (application(sha=SHA), [MANUAL], SHA, "Rollout shop/web was aborted by hand"),
        (application(sha=SHA), [AUTOMATIC], PREV, f"the branch moved from {SHA[:7]} to {PREV[:7]}"),
        (
            application(sha=SHA, started="2026-01-01T00:00:20Z"),
            [AUTOMATIC],
            SHA,
            f"aborted before {SHA[:7]} was synced",
        ),
    ],
    ids=[
        "not-opted-in",
        "no-abort",
        "already-reverted",
        "bad-mode",
        "manual-sync",
        "manual-abort",
        "moved",
        "old",
    ],
)
def test_nothing_is_written(app: Any, aborts: list[revert.Abort], head: str, expected: str | None) -> None:
    decision = revert.decide(app, aborts, head=head)
    if expected is None:
        assert decision is None
    else:
        assert isinstance(decision, revert.Skip) and expected in decision.message


def test_the_abort_is_compared_with_the_first_sync_of_the_revision() -> None:
    app = application(sha=SHA, previous=PREV, started="2026-01-01T00:00:30Z")  # a later self-heal
    app["status"]["history"][-1]["deployStartedAt"] = "2026-01-01T00:00:00Z"
    assert isinstance(revert.decide(app, [AUTOMATIC], head=SHA), revert.Plan)


def test_a_running_operation_is_waited_for_and_multi_source_apps_are_refused() -> None:
    running = application(sha=SHA)
    running["operation"] = {"sync": {"revision": SHA}}
    assert revert.decide(running, [AUTOMATIC], head=SHA) is None
    multi = application(sha=SHA)
    multi["spec"]["sources"] = [multi["spec"].pop("source"), {"repoURL": "file:///other", "path": "x"}]
    decision = revert.decide(multi, [AUTOMATIC], head=SHA)
    assert isinstance(decision, revert.Skip) and "single-source" in decision.message


# ------------------------------------------------------------------------------------ writing Git


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin(tmp_path / "git")


@pytest.fixture
def cache(tmp_path: Path) -> repos.RepoCache:
    return repos.RepoCache(tmp_path / "cache")


def plan_for(
    origin: Origin, sha: str, *, previous: str = "", mode: str = "commit", branch: str = "main"
) -> Any:
    return revert.Plan(
        mode=mode,
        url=origin.url,
        sha=sha,
        previous=previous,
        branch=branch,
        abort=AUTOMATIC,
        app="argocd/shop",
    )


async def test_commit_mode_reverts_the_synced_commit_on_the_branch(
    origin: Origin, cache: repos.RepoCache
) -> None:
    origin.commit({"app/rollout.yaml": "image: v1\n", "README": "hi\n"}, "N")
    n1 = origin.commit({"app/rollout.yaml": "image: v2\n"}, "N+1")
    n2 = origin.commit({"app/rollout.yaml": "image: crash\n", "app/extra.yaml": "x: 1\n"}, "N+2")
    written = await revert.write_revert(plan_for(origin, n2, previous=n1), cache=cache, creds=None)
    head = git(origin.bare, "rev-parse", "main")
    assert written.commit == head and written.ref == "main" and (written.base, written.count) == (n1, 1)
    assert git(origin.bare, "rev-parse", f"{head}^") == n2
    assert origin.show(head, "app/rollout.yaml") == "image: v2"
    assert git(origin.bare, "ls-tree", "--name-only", head, "app/") == "app/rollout.yaml"
    message = git(origin.bare, "log", "-1", "--format=%B", head)
    assert f"Revert {n2[:7]}: Rollout shop/web aborted" in message
    assert DEADLINE in message and f"This reverts commit {n2}." in message
    assert git(origin.bare, "log", "-1", "--format=%an <%ae>", head) == "Tugboat <tugboat@localhost>"


async def test_several_commits_since_the_previous_sync_are_reverted_as_one(
    origin: Origin, cache: repos.RepoCache
) -> None:
    n1 = origin.commit({"app/rollout.yaml": "image: v2\n"}, "N+1")
    origin.commit({"app/rollout.yaml": "image: v3\n"}, "N+2a")
    n2 = origin.commit({"app/config.yaml": "flag: on\n"}, "N+2b")
    written = await revert.write_revert(plan_for(origin, n2, previous=n1), cache=cache, creds=None)
    assert (written.base, written.count) == (n1, 2)
    assert git(origin.bare, "rev-parse", "main^{tree}") == git(origin.bare, "rev-parse", f"{n1}^{{tree}}")
    assert f"This reverts commits {n1}..{n2} (2 commits)." in git(
        origin.bare, "log", "-1", "--format=%B", "main"
    )


async def test_branch_mode_pushes_a_review_branch_and_leaves_the_tracked_one(
    origin: Origin, cache: repos.RepoCache
) -> None:
    origin.commit({"app/rollout.yaml": "image: v2\n"}, "N+1")
    n2 = origin.commit({"app/rollout.yaml": "image: crash\n"}, "N+2")
    written = await revert.write_revert(
        plan_for(origin, n2, mode="branch", branch=""), cache=cache, creds=None
    )
    assert written.ref == f"tugboat/revert-{n2[:7]}"
    assert git(origin.bare, "rev-parse", "main") == n2
    assert origin.show(f"tugboat/revert-{n2[:7]}", "app/rollout.yaml") == "image: v2"


async def test_a_moved_branch_or_a_tag_is_not_written(origin: Origin, cache: repos.RepoCache) -> None:
    n1 = origin.commit({"app/rollout.yaml": "image: v2\n"}, "N+1")
    n2 = origin.commit({"app/rollout.yaml": "image: crash\n"}, "N+2")
    with pytest.raises(revert.BranchMoved, match="moved"):
        await revert.write_revert(plan_for(origin, n1), cache=cache, creds=None)
    git(origin.work, "tag", "v2")
    git(origin.work, "push", "-q", "origin", "v2")
    with pytest.raises(revert.RevertError, match="is not a branch"):
        await revert.write_revert(plan_for(origin, n2, branch="v2"), cache=cache, creds=None)
    assert git(origin.bare, "rev-parse", "main") == n2


# ------------------------------------------------------------------------------------ the controller's part


def comparison_of(app: dict[str, Any], live: Any) -> comparison.Comparison:
    state = comparison.ResourceState(
        key=ResourceKey("argoproj.io", "Rollout", "shop", "web"),
        version="v1alpha1",
        target=None,
        live=live,
        status="Synced",
    )
    return comparison.Comparison(
        revision=app["status"]["sync"]["revision"],
        revisions=[],
        sources=[app["spec"]["source"]],
        multi_source=False,
        source_types=["Directory"],
        destination=app["spec"]["destination"],
        resources=[state],
        hooks=[],
        sync_status="Synced",
        health=health.HealthStatus("Degraded"),
        conditions=[],
        images=[],
    )


async def test_the_reverter_writes_once_annotates_and_records_events(
    cluster: ClusterProcess, origin: Origin, cache: repos.RepoCache
) -> None:
    n1 = origin.commit({"app/rollout.yaml": "image: v2\n"}, "N+1")
    n2 = origin.commit({"app/rollout.yaml": "image: crash\n"}, "N+2")
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="tugboat-test") as client:
        await crds.install(client)
        body = application(sha=n2, previous=n1, url=origin.url)
        status = body.pop("status")
        body["metadata"]["name"] = name = f"revert-{os.getpid()}"
        created = await client.create(crds.APPLICATION, body)
        app = await client.patch(crds.APPLICATION, name, {"status": status}, namespace="argocd")
        reverter = revert.Reverter(client, cache)
        try:
            live = rollout(message=aborted_message(3, DEADLINE), aborted_at="2026-01-01T00:00:10Z")
            outcome = await reverter.on_refresh(app, comparison_of(app, live))
            assert outcome.wrote and len(outcome.conditions) == 1
            assert outcome.conditions[0]["type"] == "RevertOnAbort"
            assert outcome.conditions[0]["message"].startswith(f"Reverted {n2[:7]} in Git on main (commit ")
            head = git(origin.bare, "rev-parse", "main")
            # The informer may still show the app without the annotation: the revert is not written twice.
            again = await reverter.on_refresh(app, comparison_of(app, live))
            assert not again.wrote and again.conditions == outcome.conditions
            assert git(origin.bare, "rev-parse", "main") == head
            annotated = await client.get(crds.APPLICATION, name, "argocd")
            notes = annotated["metadata"]["annotations"]
            assert notes[revert.REVERTED_ANNOTATION] == n2 and notes[revert.REVERT_COMMIT_ANNOTATION] == head
            # A fresh process (a restart) reads the annotations: still once.
            fresh = revert.Reverter(client, cache)
            assert not (await fresh.on_refresh(annotated, comparison_of(annotated, live))).wrote
            await fresh.stop()
            await reverter.recorder.flush()
            listed, _ = await client.list(kinds.EVENT, namespace="argocd")
            found = [e for e in listed if e["involvedObject"].get("uid") == created["metadata"]["uid"]]
            assert [(e["type"], e["reason"]) for e in found] == [("Normal", "RevertedOnAbort")]
            # A manual abort elsewhere: a warning condition and an event, no write.
            manual = rollout(message=aborted_message(4))
            other = application(sha=head, previous=n2, url=origin.url)
            other["metadata"]["uid"] = created["metadata"]["uid"]
            skipped = await reverter.on_refresh(other, comparison_of(other, manual))
            assert not skipped.wrote and "aborted by hand" in skipped.conditions[0]["message"]
            assert git(origin.bare, "rev-parse", "main") == head
        finally:
            await reverter.stop()
