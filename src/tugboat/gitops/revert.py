"""Rollback that reaches Git: revert the offending commit when a managed Rollout aborts (opt-in).

Upstream Argo leaves Git on N+1 after an aborted rollout (research/rollouts.md §5: the Application stays
Synced + Degraded until someone moves Git). An Application annotated
``tugboat.dev/git-revert-on-abort: "commit"`` (or ``"branch"``) asks the GitOps controller to write the
revert itself, with the repository credentials it already has:

- ``commit``: a revert commit on the tracked branch, pushed (fast-forward only). The next refresh sees it
  and the automated sync applies it: the Rollout's template equals its stable one again, so the Rollout
  goes back to its stable ReplicaSet and the Application returns to Synced + Healthy on N+1;
- ``branch``: the same commit pushed as ``tugboat/revert-<short sha>`` for review; the tracked branch is
  untouched and the Application stays Synced + Degraded.

**Which commit.** The Rollout's current (aborted) revision came from the Application's last synced
revision (``operationState.syncResult.revision``, else ``status.sync.revision``). If the previous synced
revision (the history entry before) is an ancestor of it, ``prev..sha`` is reverted as one commit, else
the synced commit alone (against its first parent). Because nothing is written unless the branch head is
still the synced commit, the revert's tree is exactly the tree of that base commit; the commit is made
with ``git commit-tree <base tree> -p <sha>``, which gives the same result as ``git revert --no-edit``
(or ``git revert --no-commit prev..sha`` + commit) on a clean head but needs no work tree and also
works for merge commits. The work happens in a throw-away bare repository under the repo cache.

**Manual or automatic abort.** The rollout controller writes the ``Progressing`` condition (reason
``RolloutAborted``) as ``Rollout aborted update to revision N: <reason>`` when it aborts by itself
(failed analysis, experiment, ``progressDeadlineAbort``) and without the ``: <reason>`` tail when a client
set ``status.abort`` (``tugboat.rollouts.conditions.aborted_message``). The one exception is a client
abort of a Rollout whose progress deadline had already passed: the controller then copies the deadline
message as the reason, and we count it as automatic, since the update had demonstrably failed.

**Nothing is written** when the Application is not automated, when every abort is manual, when the
abort is older than the sync of the synced revision (it is not this revision's), while an operation
runs, for multi-source Applications, or when the tracked branch moved meanwhile. Each of these is a
``RevertOnAbort`` condition on the Application (recomputed at every refresh while the abort lasts) and
one Kubernetes Event. A revert is written once per synced revision: it is remembered in memory and in
the annotations ``tugboat.dev/reverted-revision`` / ``tugboat.dev/revert-commit`` /
``tugboat.dev/revert-message``; the success condition is shown while the synced revision is the reverted
commit or the revert commit. A failed attempt (say a push rejected) is retried after ``retry_after``.
``tugboat app get`` shows the condition in its conditions table like any other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tugboat.gitops import comparison, crds, repos
from tugboat.gitops.errors import GitOpsError
from tugboat.kube import errors as kube_errors
from tugboat.kube import events
from tugboat.kube.client import Client, Obj

log = logging.getLogger(__name__)

MODE_ANNOTATION = "tugboat.dev/git-revert-on-abort"
REVERTED_ANNOTATION = "tugboat.dev/reverted-revision"
REVERT_COMMIT_ANNOTATION = "tugboat.dev/revert-commit"
REVERT_MESSAGE_ANNOTATION = "tugboat.dev/revert-message"
COMMIT = "commit"
BRANCH = "branch"
MODES = (COMMIT, BRANCH)
CONDITION = "RevertOnAbort"
BRANCH_PREFIX = "tugboat/revert-"
COMPONENT = "tugboat-gitops-controller"

EVENT_REVERTED = "RevertedOnAbort"
EVENT_SKIPPED = "RevertOnAbortSkipped"
EVENT_FAILED = "RevertOnAbortFailed"

_ABORTED = re.compile(r"Rollout aborted update to revision (?P<revision>\d+)(?::(?P<reason>.*))?", re.DOTALL)
_ROLLOUT_GROUP = "argoproj.io"
_ROLLOUT_ABORTED = "RolloutAborted"


class RevertError(GitOpsError):
    """The revert could not be written (its message becomes the condition)."""


class BranchMoved(RevertError):
    """The tracked branch no longer points at the synced commit."""


# ------------------------------------------------------------------------------------ the decision


@dataclasses.dataclass(frozen=True, kw_only=True)
class Abort:
    """One aborted Rollout, as read from its status."""

    rollout: str
    revision: str
    reason: str
    aborted_at: str

    @property
    def manual(self) -> bool:
        return not self.reason


def parse_abort(rollout: Mapping[str, Any]) -> Abort | None:
    """The abort of a live Rollout (``status.abort`` and a ``RolloutAborted`` Progressing condition), or
    ``None``. ``reason`` is the text after ``revision N:``: empty for an abort by hand."""
    status = rollout.get("status") or {}
    if not status.get("abort"):
        return None
    progressing = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Progressing"
        ),
        None,
    )
    if progressing is None or progressing.get("reason") != _ROLLOUT_ABORTED:
        return None
    meta = rollout.get("metadata") or {}
    name = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    found = _ABORTED.fullmatch(str(progressing.get("message") or "").strip())
    return Abort(
        rollout=name,
        revision=found.group("revision") if found else "",
        reason=((found.group("reason") or "") if found else "").strip(),
        aborted_at=str(status.get("abortedAt") or ""),
    )


def find_aborts(resources: Iterable[comparison.ResourceState]) -> list[Abort]:
    """The aborted Rollouts among an Application's managed resources."""
    found = []
    for state in resources:
        if state.key.group != _ROLLOUT_GROUP or state.key.kind != "Rollout" or state.live is None:
            continue
        abort = parse_abort(state.live)
        if abort is not None:
            found.append(abort)
    return found


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """A revert to write: ``sha`` (the synced commit), ``previous`` (the synced revision before it, or
    ``""``), the ``branch`` the Application tracks (``""``: the repository's default branch)."""

    mode: str
    url: str
    sha: str
    previous: str
    branch: str
    abort: Abort
    app: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Skip:
    """Nothing is written; ``message`` says why (the condition's message)."""

    message: str


def revert_mode(app: Mapping[str, Any]) -> str | None:
    value = ((app.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION)
    return None if value is None else str(value).strip().lower()


def synced_revision(app: Mapping[str, Any]) -> str:
    """The revision the last sync applied (``operationState.syncResult.revision`` of a successful sync),
    else ``status.sync.revision``."""
    status = app.get("status") or {}
    state = status.get("operationState") or {}
    if state.get("phase") == "Succeeded":
        revision = (state.get("syncResult") or {}).get("revision")
        if revision:
            return str(revision)
    return str((status.get("sync") or {}).get("revision") or "")


def previous_revision(app: Mapping[str, Any], sha: str) -> str:
    """The synced revision before ``sha`` in ``status.history`` (``""`` if none)."""
    revisions = [str(e.get("revision") or "") for e in (app.get("status") or {}).get("history") or []]
    while revisions and revisions[-1] == sha:
        revisions.pop()
    return revisions[-1] if revisions else ""


def _automated(app: Mapping[str, Any]) -> bool:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    return isinstance(automated, Mapping) and automated.get("enabled") is not False


def _operation_running(app: Mapping[str, Any]) -> bool:
    phase = ((app.get("status") or {}).get("operationState") or {}).get("phase")
    return app.get("operation") is not None or phase in ("Running", "Terminating")


def _sync_started(app: Mapping[str, Any], sha: str) -> str:
    """When ``sha`` was first synced: the earliest history entry for it (a later self-heal of the same
    revision does not count), else the last operation's start."""
    status = app.get("status") or {}
    starts = [
        str(e.get("deployStartedAt"))
        for e in status.get("history") or []
        if e.get("revision") == sha and e.get("deployStartedAt")
    ]
    return min(starts) if starts else str((status.get("operationState") or {}).get("startedAt") or "")


def _branch_of(source: Mapping[str, Any]) -> str:
    revision = str(source.get("targetRevision") or "").strip()
    if revision in ("", "HEAD"):
        return ""
    return revision.removeprefix("refs/heads/")


def decide(
    app: Mapping[str, Any], aborts: Sequence[Abort], *, head: str, app_name: str = ""
) -> Plan | Skip | None:
    """The decision table for one refresh: a :class:`Plan` to write, a :class:`Skip` to explain, or
    ``None`` (nothing to do or say: not opted in, no abort, already reverted, an operation running).
    ``head`` is the commit the tracked revision resolves to now (the comparison's revision)."""
    mode = revert_mode(app)
    if mode is None or not aborts:
        return None
    if mode not in MODES:
        return Skip(message=f"{MODE_ANNOTATION} must be {' or '.join(repr(m) for m in MODES)}, not {mode!r}")
    sha = synced_revision(app)
    annotations = (app.get("metadata") or {}).get("annotations") or {}
    if sha and annotations.get(REVERTED_ANNOTATION) == sha:
        return None
    abort = next((a for a in aborts if not a.manual), None)
    if not _automated(app):
        return Skip(message="Git not reverted: the Application has no automated sync policy")
    if abort is None:
        names = ", ".join(a.rollout for a in aborts)
        return Skip(message=f"Git not reverted: Rollout {names} was aborted by hand")
    sources, multi = comparison.app_sources(app)
    if multi or len(sources) != 1:
        return Skip(message="Git not reverted: only single-source Applications are supported")
    if not sha:
        return Skip(message="Git not reverted: the Application has no synced revision")
    if _operation_running(app):
        return None
    started = _sync_started(app, sha)
    if abort.aborted_at and started and abort.aborted_at < started:
        return Skip(message=f"Git not reverted: Rollout {abort.rollout} aborted before {sha[:7]} was synced")
    if head and head != sha:
        return Skip(message=f"Git not reverted: the branch moved from {sha[:7]} to {head[:7]} meanwhile")
    return Plan(
        mode=mode,
        url=str(sources[0].get("repoURL") or ""),
        sha=sha,
        previous=previous_revision(app, sha),
        branch=_branch_of(sources[0]),
        abort=abort,
        app=app_name or str((app.get("metadata") or {}).get("name") or ""),
    )


def commit_message(plan: Plan, *, base: str, count: int) -> str:
    """The revert commit's message: the Rollout, the abort reason and the reverted commit(s)."""
    what = f"commit {plan.sha}" if count <= 1 else f"commits {base}..{plan.sha} ({count} commits)"
    return (
        f"Revert {plan.sha[:7]}: Rollout {plan.abort.rollout} aborted\n\n"
        f"Rollout {plan.abort.rollout} aborted update to revision {plan.abort.revision}: "
        f"{plan.abort.reason}\n\n"
        f"This reverts {what}.\n"
        f"Written by Tugboat for Application {plan.app} ({MODE_ANNOTATION}: {plan.mode}).\n"
    )


# ------------------------------------------------------------------------------------ writing Git


@dataclasses.dataclass(frozen=True, kw_only=True)
class Written:
    """A revert that was pushed: the new commit, the ref it went to, and what it reverted."""

    commit: str
    ref: str
    base: str
    count: int


async def write_revert(
    plan: Plan,
    *,
    cache: repos.RepoCache,
    creds: repos.Credentials | None,
    author: tuple[str, str] = ("Tugboat", "tugboat@localhost"),
) -> Written:
    """Make the revert commit of ``plan`` in a throw-away bare repository and push it. Raises
    :class:`BranchMoved` when the tracked branch is no longer at ``plan.sha``, :class:`RevertError`
    (or a :class:`~tugboat.gitops.git.GitError`) otherwise."""
    loc = cache.location(plan.url)
    git = cache.git
    scratch = cache.root / "reverts"
    scratch.mkdir(mode=0o700, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="revert-", dir=scratch))
    with repos.git_auth(creds or loc.url_credentials, protocol=loc.protocol, home=git.home) as auth:
        secrets = (*auth.secrets, *(loc.url_credentials.secret_values() if loc.url_credentials else []))

        async def run(*args: str, input: bytes | None = None, remote: bool = False) -> str:
            result = await git.run(
                list(args),
                git_dir=work,
                env={**auth.env, **_identity(author)} if remote else _identity(author),
                config=auth.config if remote else None,
                secrets=secrets,
                input=input,
            )
            return result.text.strip()

        try:
            await git.run(["init", "--bare", "--quiet", "--template=", "--", str(work)])
            refs = repos.RemoteRefs.parse(
                await run("ls-remote", "--symref", "--", loc.fetch_url, remote=True)
            )
            branch = plan.branch or (refs.head_ref or "").removeprefix("refs/heads/")
            head = refs.refs.get(f"refs/heads/{branch}") if branch else None
            if head is None:
                raise RevertError(f"Git not reverted: {plan.branch or 'HEAD'!r} is not a branch of {loc.url}")
            if head != plan.sha:
                raise BranchMoved(
                    f"Git not reverted: the branch {branch} moved from {plan.sha[:7]} to {head[:7]} meanwhile"
                )
            refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
            await run("fetch", "--quiet", "--no-tags", "--", loc.fetch_url, refspec, remote=True)
            base, count = await _base(run, plan)
            tree = await run("rev-parse", "--verify", "--end-of-options", f"{base}^{{tree}}")
            if tree == await run("rev-parse", "--verify", "--end-of-options", f"{plan.sha}^{{tree}}"):
                raise RevertError(f"Git not reverted: {plan.sha[:7]} changes nothing")
            message = commit_message(plan, base=base, count=count)
            commit = await run("commit-tree", tree, "-p", plan.sha, input=message.encode())
            target = branch if plan.mode == COMMIT else f"{BRANCH_PREFIX}{plan.sha[:7]}"
            await run("push", "--quiet", "--", loc.fetch_url, f"{commit}:refs/heads/{target}", remote=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return Written(commit=commit, ref=target, base=base, count=count)


def _identity(author: tuple[str, str]) -> dict[str, str]:
    name, email = author
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


async def _base(run: Any, plan: Plan) -> tuple[str, int]:
    """``(commit whose tree the revert restores, number of commits reverted)``."""
    previous = plan.previous if re.fullmatch(r"[0-9a-f]{40,64}", plan.previous or "") else ""
    if previous and previous != plan.sha:  # history is writable status: only a commit id is used
        with contextlib.suppress(GitOpsError):
            await run("merge-base", "--is-ancestor", "--end-of-options", previous, plan.sha)
            count = int(await run("rev-list", "--count", "--end-of-options", f"{previous}..{plan.sha}"))
            return previous, count
    parents = (await run("rev-list", "--parents", "-n", "1", plan.sha)).split()[1:]
    if not parents:
        raise RevertError(f"Git not reverted: {plan.sha[:7]} is the repository's first commit")
    return parents[0], 1


# ------------------------------------------------------------------------------------ the controller's part


@dataclasses.dataclass
class Outcome:
    """What one refresh gets back: conditions to show, and whether Git was written (refresh soon)."""

    conditions: list[Obj] = dataclasses.field(default_factory=list)
    wrote: bool = False


class Reverter:
    """The GitOps controller's revert-on-abort: call :meth:`on_refresh` once per refresh of an app."""

    def __init__(
        self,
        client: Client,
        cache: repos.RepoCache,
        *,
        retry_after: float = 60.0,
        author: tuple[str, str] = ("Tugboat", "tugboat@localhost"),
    ) -> None:
        self.client = client
        self.cache = cache
        self.retry_after = retry_after
        self.author = author
        self.recorder = events.EventRecorder(client, component=COMPONENT)
        self._done: dict[str, tuple[str, str, str]] = {}
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}
        self._announced: set[tuple[str, str]] = set()

    async def stop(self) -> None:
        await self.recorder.stop()

    async def on_refresh(
        self, app: Obj, compared: comparison.Comparison, *, secrets: Sequence[Obj] = ()
    ) -> Outcome:
        meta = app.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if revert_mode(app) is None:
            return Outcome()
        done = self._remembered(key, app)
        if done is not None and synced_revision(app) in done[:2]:
            return Outcome(conditions=self._success(app, compared, done))  # reverted, or syncing the revert
        decision = decide(app, find_aborts(compared.resources), head=compared.revision, app_name=key)
        if isinstance(decision, Skip):
            return Outcome(conditions=[self._condition(app, decision.message, events.WARNING, EVENT_SKIPPED)])
        if decision is None:
            return Outcome(conditions=self._success(app, compared, done))
        failed = self._failed.get((key, decision.sha))
        if failed is not None and time.monotonic() < failed[0]:
            return Outcome(conditions=[self._condition(app, failed[1], events.WARNING, EVENT_FAILED)])
        project = (app.get("spec") or {}).get("project") or "default"
        creds = repos.credentials_for(decision.url, secrets, project=project)
        try:
            written = await write_revert(decision, cache=self.cache, creds=creds, author=self.author)
        except BranchMoved as exc:
            return Outcome(conditions=[self._condition(app, str(exc), events.WARNING, EVENT_SKIPPED)])
        except GitOpsError as exc:
            message = str(exc) if str(exc).startswith("Git not reverted") else f"Git not reverted: {exc}"
            self._failed[(key, decision.sha)] = (time.monotonic() + self.retry_after, message)
            log.warning("revert on abort of %s: %s", key, message)
            return Outcome(conditions=[self._condition(app, message, events.WARNING, EVENT_FAILED)])
        self._failed.pop((key, decision.sha), None)
        message = _success_message(decision, written)
        self._done[key] = (decision.sha, written.commit, message)
        log.info("revert on abort of %s: %s", key, message)
        await self._annotate(app, decision.sha, written.commit, message)
        return Outcome(conditions=[self._condition(app, message, events.NORMAL, EVENT_REVERTED)], wrote=True)

    def forget(self, key: str) -> None:
        self._done.pop(key, None)
        for failed in [k for k in self._failed if k[0] == key]:
            del self._failed[failed]

    def _remembered(self, key: str, app: Mapping[str, Any]) -> tuple[str, str, str] | None:
        annotations = (app.get("metadata") or {}).get("annotations") or {}
        if annotations.get(REVERTED_ANNOTATION):
            return (
                str(annotations[REVERTED_ANNOTATION]),
                str(annotations.get(REVERT_COMMIT_ANNOTATION) or ""),
                str(annotations.get(REVERT_MESSAGE_ANNOTATION) or ""),
            )
        return self._done.get(key)

    def _success(
        self, app: Obj, compared: comparison.Comparison, done: tuple[str, str, str] | None
    ) -> list[Obj]:
        if done is None or not done[2]:
            return []
        current = {compared.revision, synced_revision(app)}
        if not current & {done[0], done[1]}:
            return []
        return [self._condition(app, done[2], events.NORMAL, EVENT_REVERTED)]

    def _condition(self, app: Obj, message: str, event_type: str, reason: str) -> Obj:
        """The condition, and its Event the first time this message is shown on this app."""
        uid = str((app.get("metadata") or {}).get("uid") or "")
        shown = any(
            c.get("type") == CONDITION and c.get("message") == message
            for c in (app.get("status") or {}).get("conditions") or []
        )
        if not shown and (uid, message) not in self._announced:
            if len(self._announced) > 10_000:
                self._announced.clear()
            self._announced.add((uid, message))
            self.recorder.start()
            self.recorder.event(app, event_type, reason, message)
        return {"type": CONDITION, "message": message}

    async def _annotate(self, app: Obj, sha: str, commit: str, message: str) -> None:
        meta = app["metadata"]
        patch = {
            "metadata": {
                "annotations": {
                    REVERTED_ANNOTATION: sha,
                    REVERT_COMMIT_ANNOTATION: commit,
                    REVERT_MESSAGE_ANNOTATION: message,
                }
            }
        }
        try:
            await self.client.patch(crds.APPLICATION, meta["name"], patch, namespace=meta["namespace"])
        except kube_errors.ApiError as exc:
            log.warning("revert on abort: cannot annotate %s/%s: %s", meta["namespace"], meta["name"], exc)


def _success_message(plan: Plan, written: Written) -> str:
    what = plan.sha[:7] if written.count <= 1 else f"{written.base[:7]}..{plan.sha[:7]}"
    where = f"on {written.ref}" if plan.mode == COMMIT else f"as branch {written.ref} for review"
    return (
        f"Reverted {what} in Git {where} (commit {written.commit[:7]}): Rollout {plan.abort.rollout} "
        f"aborted: {plan.abort.reason}"
    )


__all__ = [
    "BRANCH",
    "COMMIT",
    "CONDITION",
    "MODE_ANNOTATION",
    "REVERTED_ANNOTATION",
    "Abort",
    "Outcome",
    "Plan",
    "Reverter",
    "Skip",
    "decide",
    "find_aborts",
    "parse_abort",
    "write_revert",
]
