"""How ``tugboat rollout …`` shows Rollouts: the ``get`` summary and tree, the ``list`` table, status lines.

:mod:`tugboat.cli.rolloutcmd` reads objects from the cluster; everything it prints is built here, by pure
functions from plain dicts (a Rollout and the ReplicaSets, Pods, Experiments and AnalysisRuns of its
namespace, as the API returns them) to rich ``Text``. The layout, icons, tags, ordering and the
client-side phase are those of ``kubectl argo rollouts get rollout`` (research/rollouts.md §2.3, §3), so
a user of either tool reads the same screen, down to the column padding; keeping them pure lets the
screens be tested without a cluster, with a fixed clock.

How objects hang together is upstream's: ReplicaSets, Experiments and AnalysisRuns belong to a Rollout
through an owner reference to its uid and to a revision through their ``rollout.argoproj.io/revision``
annotation; an Experiment's ReplicaSets and AnalysisRuns are those it owns; Jobs are not read from the
cluster but named by the measurements of a Job metric (``metadata.job-name``), with the measurement's
phase and start time.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from tugboat.cli import appview
from tugboat.kube import podstatus
from tugboat.localcluster import tables
from tugboat.rollouts import phase as rollout_phase
from tugboat.rollouts import replicasets as rsutil

Obj = Mapping[str, Any]
Rows = list[list[Text]]  # cells of tab-aligned lines

HASH_LABEL = rsutil.HASH_LABEL
REVISION_ANNOTATION = rsutil.REVISION
SCALE_DOWN_DEADLINE_ANNOTATION = rsutil.SCALE_DOWN_DEADLINE

ICON_ROLLOUT = "⟳"
ICON_REVISION = "#"
ICON_REPLICASET = "⧉"
ICON_POD = "□"
ICON_JOB = "⊞"
ICON_EXPERIMENT = "Σ"
ICON_ANALYSIS = "α"
ICON_WAITING = "◷"
ICON_PROGRESSING = "◌"
ICON_WARNING = "⚠"
ICON_UNKNOWN = "?"
ICON_OK = "✔"
ICON_BAD = "✖"
ICON_PAUSED = "॥"
ICON_NEUTRAL = "•"

DONE_PHASES = frozenset({"Healthy", "Degraded"})
TEMPLATE_ANNOTATION = "experiment.argoproj.io/template-name"  # an Experiment ReplicaSet's template
JOB_NAME_KEY = "job-name"  # a Job metric's measurement metadata

_KEY_WIDTH = 17  # the header's "%-17s%v" lines
_PAD = 2  # spaces between tree/list columns (a tabwriter with padding 2)
# A ReplicaSet's roles in INFO column order; the last one it has colours its name.
_ROLE_ORDER = ("stable", "canary", "active", "preview", "ping", "pong")
_IMAGE_TAG_ORDER = ("canary", "stable", "active", "preview", "ping", "pong")  # Images line order
_STYLES = {
    ICON_WAITING: "yellow",
    ICON_PROGRESSING: "bright_blue",
    ICON_WARNING: "red",
    ICON_UNKNOWN: "yellow",
    ICON_OK: "green",
    ICON_BAD: "red",
    "canary": "yellow",
    "stable": "green",
    "active": "green",
    "preview": "bright_blue",
    "ping": "bright_blue",
    "pong": "bright_blue",
    # names of Experiments, AnalysisRuns and Jobs still at work
    "Pending": "bright_blue",
    "Running": "bright_blue",
}
_ROLLOUT_ICONS = {
    "Progressing": ICON_PROGRESSING,
    "Error": ICON_WARNING,
    "InvalidSpec": ICON_WARNING,
    "Paused": ICON_PAUSED,
    "Healthy": ICON_OK,
    "Degraded": ICON_BAD,
    "Unknown": ICON_UNKNOWN,
    "ScaledDown": ICON_NEUTRAL,
}
_REPLICASET_ICONS = {
    "Progressing": ICON_PROGRESSING,
    "Healthy": ICON_OK,
    "ReplicaFailure": ICON_BAD,
    "ScaledDown": ICON_NEUTRAL,
}
_POD_ICONS = {
    "Pending": ICON_PROGRESSING,
    "Terminating": ICON_PROGRESSING,
    "ContainerCreating": ICON_PROGRESSING,
    "Running": ICON_OK,
    "Completed": ICON_OK,
    "Failed": ICON_BAD,
    "InvalidImageName": ICON_BAD,
    "CrashLoopBackOff": ICON_BAD,
    "ImagePullBackOff": ICON_WARNING,
    "RegistryUnavailable": ICON_WARNING,
    "Unknown": ICON_UNKNOWN,
}
_ANALYSIS_ICONS = {
    "Successful": ICON_OK,
    "Inconclusive": ICON_UNKNOWN,
    "Failed": ICON_BAD,
    "Error": ICON_WARNING,
    "Running": ICON_PROGRESSING,
    "Pending": ICON_WAITING,
}
# The counted measurement outcomes: status.metricResults[] counter fields, their phases and INFO icons.
COUNTERS = ("successful", "failed", "inconclusive", "error")
COUNTED_PHASES = ("Successful", "Failed", "Inconclusive", "Error")
COUNTER_ICONS = (ICON_OK, ICON_BAD, ICON_UNKNOWN, ICON_WARNING)


# ------------------------------------------------------------------------------------------ fields


def _int(value: Any, default: int = 0) -> int:
    """An integer field (``default`` when missing or not a number; JSON may give floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)


def name_of(obj: Obj) -> str:
    return appview.text(obj, "metadata", "name")


def pod_template_hash(obj: Obj) -> str:
    """The ``rollouts-pod-template-hash`` label of a ReplicaSet (or Pod)."""
    return appview.text(obj, "metadata", "labels", HASH_LABEL)


def revision_of(obj: Obj) -> int:
    """The ``rollout.argoproj.io/revision`` annotation as a number (0 when missing or malformed)."""
    try:
        return int(appview.text(obj, "metadata", "annotations", REVISION_ANNOTATION))
    except ValueError:
        return 0


def desired_replicas(ro: Obj) -> int:
    """``spec.replicas``, defaulting to 1 like the controller."""
    return _int(appview.field(ro, "spec", "replicas"), 1)


def strategy(ro: Obj) -> str:
    """``Canary``, ``BlueGreen`` or ``unknown`` (what ``list`` prints when there is no strategy)."""
    if isinstance(appview.field(ro, "spec", "strategy", "canary"), Mapping):
        return "Canary"
    if isinstance(appview.field(ro, "spec", "strategy", "blueGreen"), Mapping):
        return "BlueGreen"
    return "unknown"


def canary_steps(ro: Obj) -> list[Mapping[str, Any]]:
    return appview.items(ro, "spec", "strategy", "canary", "steps")


def current_step(ro: Obj) -> tuple[Mapping[str, Any] | None, int | None]:
    """The canary step being run and its index; ``(None, index)`` once all steps are done, and
    ``(None, None)`` without canary steps."""
    steps = canary_steps(ro)
    if strategy(ro) != "Canary" or not steps:
        return None, None
    index = _int(appview.field(ro, "status", "currentStepIndex"))
    if index >= len(steps):
        return None, index
    return steps[index], index


def max_weight(ro: Obj) -> int:
    """The weight that means "all traffic": 100 unless traffic routing sets ``maxTrafficWeight``."""
    value = appview.field(ro, "spec", "strategy", "canary", "trafficRouting", "maxTrafficWeight")
    return _int(value, 100)


def set_weight(ro: Obj) -> int:
    """The canary weight the current step asks for (0 once aborted): the last ``setWeight`` up to and
    including the current step, or the full weight when no step is running."""
    if appview.field(ro, "status", "abort") is True:
        return 0
    step, index = current_step(ro)
    if step is None or index is None:
        return max_weight(ro)
    steps = canary_steps(ro)
    for i in range(index, -1, -1):
        if steps[i].get("setWeight") is not None:
            return _int(steps[i]["setWeight"])
    return 0


def step_text(ro: Obj) -> str:
    """``index/len(steps)`` for a canary with steps whose index is known, else ``""``."""
    index = appview.field(ro, "status", "currentStepIndex")
    steps = canary_steps(ro)
    if strategy(ro) != "Canary" or index is None or not steps:
        return ""
    return f"{_int(index)}/{len(steps)}"


# ------------------------------------------------------------------------------------------- phase


def phase(ro: Obj) -> tuple[str, str]:
    """The phase and message a client shows (the rollout controller's own rules: research/rollouts.md
    §2.3, client side)."""
    return rollout_phase.client_phase(ro)


def rollout_icon(status: str) -> str:
    return _ROLLOUT_ICONS.get(status, " ")


def status_line(status: str, message: str) -> str:
    """``Status - Message``, or the bare status when there is no message (what ``status`` prints)."""
    return f"{status} - {message}" if message else status


# -------------------------------------------------------------------------------------------- info


@dataclass(frozen=True)
class PodInfo:
    """One Pod row of the tree."""

    name: str
    status: str
    icon: str
    ready: str
    restarts: int
    created: str


@dataclass(frozen=True)
class ReplicaSetInfo:
    """One ReplicaSet of a Rollout, with the roles it plays (``stable``, ``canary``, ``active``, …)."""

    name: str
    uid: str
    revision: int
    status: str
    icon: str
    replicas: int
    available: int
    images: tuple[str, ...]
    roles: frozenset[str]
    scale_down_deadline: str
    created: str
    pods: tuple[PodInfo, ...] = ()
    template: str = ""  # the Experiment template it runs (``experiment.argoproj.io/template-name``)


@dataclass(frozen=True)
class Counts:
    """Measurement outcomes of an AnalysisRun: what the ``✔ n,✖ n,? n,⚠ n`` INFO cell shows."""

    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0

    def values(self) -> tuple[int, int, int, int]:
        """In :data:`COUNTERS` order."""
        return (self.successful, self.failed, self.inconclusive, self.error)


@dataclass(frozen=True)
class JobInfo:
    """A Job an AnalysisRun's Job metric started, as its measurement tells it."""

    name: str
    status: str
    icon: str
    started: str


@dataclass(frozen=True)
class AnalysisRunInfo:
    """One AnalysisRun row of the tree, with the Jobs of its measurements."""

    name: str
    uid: str
    revision: int
    status: str
    icon: str
    created: str
    counts: Counts
    jobs: tuple[JobInfo, ...] = ()


@dataclass(frozen=True)
class ExperimentInfo:
    """One Experiment of a Rollout, with its ReplicaSets (and their Pods) and AnalysisRuns."""

    name: str
    uid: str
    revision: int
    status: str
    icon: str
    message: str
    created: str
    replicasets: tuple[ReplicaSetInfo, ...] = ()
    analysisruns: tuple[AnalysisRunInfo, ...] = ()


@dataclass(frozen=True)
class RolloutInfo:
    """Everything ``get`` shows about a Rollout."""

    name: str
    namespace: str
    status: str
    message: str
    icon: str
    strategy: str
    step: str
    set_weight: str
    actual_weight: str
    desired: int
    current: int
    updated: int
    ready: int
    available: int
    created: str
    replicasets: tuple[ReplicaSetInfo, ...]
    experiments: tuple[ExperimentInfo, ...] = ()
    analysisruns: tuple[AnalysisRunInfo, ...] = ()

    def revisions(self) -> list[int]:
        """Every revision something of the Rollout belongs to, newest first."""
        found = {rs.revision for rs in self.replicasets}
        found |= {exp.revision for exp in self.experiments}
        found |= {run.revision for run in self.analysisruns}
        return sorted(found, reverse=True)


def replicaset_status(rs: Obj) -> str:
    """``Progressing`` (spec not observed, or fewer available than wanted), ``ReplicaFailure``,
    ``ScaledDown`` (0 wanted) or ``Healthy``."""
    spec_replicas = appview.field(rs, "spec", "replicas")
    wanted = _int(spec_replicas) if spec_replicas is not None else None
    generation = _int(appview.field(rs, "metadata", "generation"))
    if generation > _int(appview.field(rs, "status", "observedGeneration")):
        return "Progressing"
    for condition in appview.items(rs, "status", "conditions"):
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return "ReplicaFailure"
    if wanted is not None and _int(appview.field(rs, "status", "availableReplicas")) < wanted:
        return "Progressing"
    if wanted == 0:
        return "ScaledDown"
    return "Healthy"


def replicaset_roles(ro: Obj, rs: Obj) -> frozenset[str]:
    """What a ReplicaSet is to its Rollout: stable/canary (and ping/pong), or stable/active/preview."""
    rs_hash = pod_template_hash(rs)
    stable = appview.text(ro, "status", "stableRS")
    roles: set[str] = set()
    kind = strategy(ro)
    if kind == "Canary":
        ping_pong = isinstance(appview.field(ro, "spec", "strategy", "canary", "pingPong"), Mapping)
        stable_is_ping = appview.text(ro, "status", "canary", "stablePingPong") == "ping"
        if stable == rs_hash:
            roles.add("stable")
            if ping_pong:
                roles.add("ping" if stable_is_ping else "pong")
        elif appview.text(ro, "status", "currentPodHash") == rs_hash:
            roles.add("canary")
            if ping_pong:
                roles.add("pong" if stable_is_ping else "ping")
    elif kind == "BlueGreen":
        if stable == rs_hash:
            roles.add("stable")
        if appview.text(ro, "status", "blueGreen", "activeSelector") == rs_hash:
            roles.add("active")
        elif appview.text(ro, "status", "blueGreen", "previewSelector") == rs_hash:
            roles.add("preview")
    return frozenset(roles)


def pod_icon(status: str) -> str:
    if status.startswith("Init:"):
        return ICON_PROGRESSING
    if status.startswith(("Signal:", "ExitCode:")):
        return ICON_BAD
    if status.endswith("Error") or status.startswith("Err"):
        return ICON_WARNING
    return _POD_ICONS.get(status, " ")


def pod_info(pod: Obj) -> PodInfo:
    """A Pod row, with kubectl's STATUS, READY and RESTARTS (:mod:`tugboat.kube.podstatus`)."""
    status = podstatus.summarize(pod)
    return PodInfo(
        name=name_of(pod),
        status=status.reason,
        icon=pod_icon(status.reason),
        ready=status.ready_text,
        restarts=status.restarts,
        created=appview.text(pod, "metadata", "creationTimestamp"),
    )


def _owner_uids(obj: Obj) -> set[str]:
    return {appview.text(ref, "uid") for ref in appview.items(obj, "metadata", "ownerReferences")}


def _owned_by(obj: Obj, uid: str) -> bool:
    return bool(uid) and uid in _owner_uids(obj)


def _created(obj: Obj) -> str:
    return appview.text(obj, "metadata", "creationTimestamp")


def replicaset_infos(ro: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj]) -> tuple[ReplicaSetInfo, ...]:
    """The Rollout's ReplicaSets (those it owns), newest revision first, each with its Pods (oldest first)."""
    return _replicaset_infos(appview.text(ro, "metadata", "uid"), ro, replicasets, pods)


def _replicaset_infos(
    owner_uid: str, ro: Obj | None, replicasets: Iterable[Obj], pods: Iterable[Obj]
) -> tuple[ReplicaSetInfo, ...]:
    """The ReplicaSets ``owner_uid`` owns, newest revision first then by name, with their Pods; their
    roles (stable, canary, …) when the owner is the Rollout ``ro``."""
    owned = [rs for rs in replicasets if _owned_by(rs, owner_uid)]
    pods_by_owner: dict[str, list[Obj]] = {}
    for pod in pods:
        for owner in _owner_uids(pod):
            pods_by_owner.setdefault(owner, []).append(pod)
    infos = []
    for rs in owned:
        rs_uid = appview.text(rs, "metadata", "uid")
        children = sorted(pods_by_owner.get(rs_uid, []), key=lambda p: (_created(p), name_of(p)))
        status = replicaset_status(rs)
        infos.append(
            ReplicaSetInfo(
                name=name_of(rs),
                uid=rs_uid,
                revision=revision_of(rs),
                status=status,
                icon=_REPLICASET_ICONS.get(status, " "),
                replicas=_int(appview.field(rs, "status", "replicas")),
                available=_int(appview.field(rs, "status", "availableReplicas")),
                images=tuple(appview.text(c, "image") for c in _containers(rs)),
                roles=replicaset_roles(ro, rs) if ro is not None else frozenset(),
                scale_down_deadline=appview.text(
                    rs, "metadata", "annotations", SCALE_DOWN_DEADLINE_ANNOTATION
                ),
                created=_created(rs),
                pods=tuple(pod_info(p) for p in children),
                template=appview.text(rs, "metadata", "annotations", TEMPLATE_ANNOTATION),
            )
        )
    return tuple(sorted(infos, key=lambda i: (-i.revision, i.name)))


def analysis_icon(phase: str) -> str:
    """The icon of an AnalysisRun, Experiment or measurement phase (a blank for an unknown one)."""
    return _ANALYSIS_ICONS.get(phase, " ")


def metric_counts(result: Mapping[str, Any]) -> Counts:
    """The outcomes of one ``status.metricResults[]`` entry: its counters; when it has none at all (a
    controller that keeps only measurements), its measurements counted by phase."""
    if any(result.get(key) is not None for key in COUNTERS):
        return Counts(*(_int(result.get(key)) for key in COUNTERS))
    phases = [appview.text(m, "phase") for m in appview.items(result, "measurements")]
    return Counts(*(phases.count(phase) for phase in COUNTED_PHASES))


def analysisrun_counts(run: Obj) -> Counts:
    """What the tree's INFO cell counts for a run: the measurement outcomes of all its metrics (like
    upstream, the sum of the per-metric counters, not ``status.runSummary``, which counts metrics)."""
    totals = [0, 0, 0, 0]
    for result in appview.items(run, "status", "metricResults"):
        for i, value in enumerate(metric_counts(result).values()):
            totals[i] += value
    return Counts(*totals)


def analysisrun_jobs(run: Obj) -> tuple[JobInfo, ...]:
    """The Jobs the run's measurements name, metric by metric, in measurement order."""
    jobs = []
    for result in appview.items(run, "status", "metricResults"):
        for measurement in appview.items(result, "measurements"):
            metadata = measurement.get("metadata")
            if not isinstance(metadata, Mapping) or JOB_NAME_KEY not in metadata:
                continue
            status = appview.text(measurement, "phase")
            jobs.append(
                JobInfo(
                    name=str(metadata[JOB_NAME_KEY]),
                    status=status,
                    icon=analysis_icon(status),
                    started=appview.text(measurement, "startedAt"),
                )
            )
    return tuple(jobs)


def _revision(obj: Obj, revisions_by_hash: Mapping[str, int]) -> int:
    """The revision annotation; without one, the revision of the ReplicaSet whose pod template hash the
    object is labelled with (0 when neither is known)."""
    if appview.text(obj, "metadata", "annotations", REVISION_ANNOTATION):
        return revision_of(obj)
    return revisions_by_hash.get(pod_template_hash(obj), 0)


def analysisrun_infos(
    owner_uid: str, runs: Iterable[Obj], revisions_by_hash: Mapping[str, int] | None = None
) -> tuple[AnalysisRunInfo, ...]:
    """The AnalysisRuns ``owner_uid`` owns: newest revision first, then oldest first, then by name
    descending (upstream's order)."""
    infos = []
    for run in runs:
        if not _owned_by(run, owner_uid):
            continue
        status = appview.text(run, "status", "phase")
        infos.append(
            AnalysisRunInfo(
                name=name_of(run),
                uid=appview.text(run, "metadata", "uid"),
                revision=_revision(run, revisions_by_hash or {}),
                status=status,
                icon=analysis_icon(status),
                created=_created(run),
                counts=analysisrun_counts(run),
                jobs=analysisrun_jobs(run),
            )
        )
    infos.sort(key=lambda i: i.name, reverse=True)
    return tuple(sorted(infos, key=lambda i: (-i.revision, i.created)))


def experiment_infos(
    ro: Obj,
    experiments: Iterable[Obj],
    replicasets: Sequence[Obj],
    runs: Sequence[Obj],
    pods: Sequence[Obj],
    revisions_by_hash: Mapping[str, int] | None = None,
) -> tuple[ExperimentInfo, ...]:
    """The Experiments the Rollout owns, newest revision first then oldest first, each with the
    ReplicaSets (and Pods) and AnalysisRuns it owns."""
    uid = appview.text(ro, "metadata", "uid")
    infos = []
    for exp in experiments:
        if not _owned_by(exp, uid):
            continue
        exp_uid = appview.text(exp, "metadata", "uid")
        status = appview.text(exp, "status", "phase")
        infos.append(
            ExperimentInfo(
                name=name_of(exp),
                uid=exp_uid,
                revision=_revision(exp, revisions_by_hash or {}),
                status=status,
                icon=analysis_icon(status),
                message=appview.text(exp, "status", "message"),
                created=_created(exp),
                replicasets=_replicaset_infos(exp_uid, None, replicasets, pods),
                analysisruns=analysisrun_infos(exp_uid, runs),
            )
        )
    return tuple(sorted(infos, key=lambda i: (-i.revision, i.created, i.name)))


def _containers(rs: Obj) -> list[Mapping[str, Any]]:
    return appview.items(rs, "spec", "template", "spec", "containers")


def _actual_weight(ro: Obj, replicasets: Sequence[ReplicaSetInfo]) -> str:
    step, _ = current_step(ro)
    if step is None:
        return str(max_weight(ro))
    available = _int(appview.field(ro, "status", "availableReplicas"))
    if available <= 0:
        return "0"
    if not isinstance(appview.field(ro, "spec", "strategy", "canary", "trafficRouting"), Mapping):
        weight = "0"
        for rs in replicasets:
            if "canary" in rs.roles:
                weight = str(rs.available * max_weight(ro) // available)
        return weight
    weights = appview.field(ro, "status", "canary", "weights")
    if isinstance(weights, Mapping):
        return str(_int(appview.field(weights, "canary", "weight")))
    return str(set_weight(ro))


def rollout_info(
    ro: Obj,
    replicasets: Iterable[Obj] = (),
    pods: Iterable[Obj] = (),
    *,
    experiments: Iterable[Obj] = (),
    analysisruns: Iterable[Obj] = (),
) -> RolloutInfo:
    """What ``get`` shows, from the Rollout and the ReplicaSets, Pods, Experiments and AnalysisRuns of its
    namespace (objects that are not the Rollout's are left out)."""
    status, message = phase(ro)
    all_replicasets, all_pods, all_runs = list(replicasets), list(pods), list(analysisruns)
    infos = replicaset_infos(ro, all_replicasets, all_pods)
    uid = appview.text(ro, "metadata", "uid")
    by_hash = {pod_template_hash(rs): revision_of(rs) for rs in all_replicasets if _owned_by(rs, uid)}
    kind = strategy(ro)
    canary = kind == "Canary"
    return RolloutInfo(
        name=name_of(ro),
        namespace=appview.text(ro, "metadata", "namespace"),
        status=status,
        message=message,
        icon=rollout_icon(status),
        strategy=kind,
        step=step_text(ro),
        set_weight=str(set_weight(ro)) if canary else "",
        actual_weight=_actual_weight(ro, infos) if canary else "",
        desired=desired_replicas(ro),
        current=_int(appview.field(ro, "status", "replicas")),
        updated=_int(appview.field(ro, "status", "updatedReplicas")),
        ready=_int(appview.field(ro, "status", "readyReplicas")),
        available=_int(appview.field(ro, "status", "availableReplicas")),
        created=appview.text(ro, "metadata", "creationTimestamp"),
        replicasets=infos,
        experiments=experiment_infos(ro, experiments, all_replicasets, all_runs, all_pods, by_hash),
        analysisruns=analysisrun_infos(uid, all_runs, by_hash),
    )


def images(info: RolloutInfo) -> list[tuple[str, tuple[str, ...]]]:
    """``(image, tags)`` of the ReplicaSets that run Pods (the Rollout's, tagged with their roles, then
    its Experiments', tagged ``Σ:<template>``), sorted by image; an image run by several ReplicaSets gets
    the (sorted) union of their tags."""
    found: dict[str, tuple[str, ...]] = {}

    def add(rs: ReplicaSetInfo, tags: tuple[str, ...]) -> None:
        if rs.replicas <= 0:
            return
        for image in rs.images:
            found[image] = tuple(sorted(set(found[image]) | set(tags))) if image in found else tags

    for rs in info.replicasets:
        add(rs, tuple(tag for tag in _IMAGE_TAG_ORDER if tag in rs.roles))
    for exp in info.experiments:
        for rs in exp.replicasets:
            add(rs, (f"{ICON_EXPERIMENT}:{rs.template}",) if rs.template else ())
    return sorted(found.items())


# ------------------------------------------------------------------------------------------ output


def age(created: str, now: datetime.datetime) -> str:
    moment = appview.parse_time(created)
    if moment is None:
        return ""
    return tables.human_duration((now - moment).total_seconds())


def scale_down_delay(deadline: str, now: datetime.datetime) -> str:
    """Time left before a ReplicaSet in its scale-down delay is scaled down, or ``passed``."""
    moment = appview.parse_time(deadline)
    if moment is None:
        return ""
    if moment < now:
        return "passed"
    return tables.human_duration((moment - now).total_seconds())


def _styled(value: str, style_key: str | None = None) -> Text:
    """``value`` in the colour upstream gives to ``style_key`` (default: to ``value`` itself)."""
    style = _STYLES.get(style_key if style_key is not None else value)
    return Text().append(value, style=style)


def joined(parts: Sequence[Text], separator: str) -> Text:
    """``separator.join(parts)`` for styled text."""
    out = Text()
    for i, part in enumerate(parts):
        if i:
            out.append(separator)
        out.append_text(part)
    return out


def status_cell(icon: str, status: str) -> Text:
    """``icon status``, the icon coloured like upstream's, the word not."""
    return _styled(icon).append(f" {status}")


def tabulate(rows: Sequence[Sequence[Text | str]]) -> Text:
    """Rows of cells as aligned columns two spaces apart (the last column unpadded), like Go's
    ``tabwriter`` with padding 2, keeping each cell's styles."""
    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    columns = max((len(row) for row in cells), default=0)
    widths = [
        max((len(row[i].plain) for row in cells if i < len(row) - 1), default=0) for i in range(columns)
    ]
    out = Text()
    for n, row in enumerate(cells):
        if n:
            out.append("\n")
        for i, cell in enumerate(row):
            out.append_text(cell)
            if i < len(row) - 1:
                out.append(" " * (widths[i] - len(cell.plain) + _PAD))
    return out


def _prefixes(is_last: bool, sub_prefix: str) -> tuple[str, str]:
    if is_last:
        return sub_prefix + "└──", sub_prefix + "   "
    return sub_prefix + "├──", sub_prefix + "│  "


def key_line(key: str, value: Text | str) -> Text:
    """A header line: the key padded to 17 columns (upstream's ``%-17s%v``), then the value."""
    line = Text(f"{key:<{_KEY_WIDTH}}")
    line.append_text(value if isinstance(value, Text) else Text(value))
    return line


def _image_text(image: str, tags: Sequence[str]) -> Text:
    out = Text(image)
    if tags:
        out.append(" (").append_text(joined([_styled(tag) for tag in tags], ", ")).append(")")
    return out


def summary(info: RolloutInfo) -> Text:
    """The header of ``get``: name, status, strategy (with canary step and weights), images, replicas."""
    lines = [
        key_line("Name:", info.name),
        key_line("Namespace:", info.namespace),
        key_line("Status:", status_cell(info.icon, info.status)),
    ]
    if info.message:
        lines.append(key_line("Message:", info.message))
    lines.append(key_line("Strategy:", info.strategy))
    if info.strategy == "Canary":
        lines += [
            key_line("  Step:", info.step),
            key_line("  SetWeight:", info.set_weight),
            key_line("  ActualWeight:", info.actual_weight),
        ]
    for i, (image, tags) in enumerate(images(info)):
        lines.append(key_line("Images:" if i == 0 else "", _image_text(image, tags)))
    lines.append(Text("Replicas:"))
    for key, value in (
        ("Desired", info.desired),
        ("Current", info.current),
        ("Updated", info.updated),
        ("Ready", info.ready),
        ("Available", info.available),
    ):
        lines.append(key_line(f"  {key}:", str(value)))
    return joined(lines, "\n")


def _row(
    name: Text, kind: str, icon: str, status: str, created: str, now: datetime.datetime, info: Text
) -> list[Text]:
    return [name, Text(kind), status_cell(icon, status), Text(age(created, now)), info]


def _named(prefix: str, icon: str, name: str, style_key: str) -> Text:
    """A NAME cell: tree prefix, icon, and the name in the colour upstream gives to ``style_key``."""
    return Text(f"{prefix}{icon} ").append_text(_styled(name, style_key))


def _replicaset_rows(rs: ReplicaSetInfo, prefix: str, sub_prefix: str, now: datetime.datetime) -> Rows:
    roles = [role for role in _ROLE_ORDER if role in rs.roles]
    info_cells = [_styled(role) for role in roles]
    if rs.scale_down_deadline:
        info_cells.append(Text(f"delay:{scale_down_delay(rs.scale_down_deadline, now)}"))
    name = _named(prefix, ICON_REPLICASET, rs.name, roles[-1] if roles else "")
    rows = [_row(name, "ReplicaSet", rs.icon, rs.status, rs.created, now, joined(info_cells, ","))]
    for i, pod in enumerate(rs.pods):
        pod_prefix, _ = _prefixes(i == len(rs.pods) - 1, sub_prefix)
        pod_info_text = f"ready:{pod.ready}" + (f",restarts:{pod.restarts}" if pod.restarts > 0 else "")
        pod_name = Text(f"{pod_prefix}{ICON_POD} {pod.name}")
        rows.append(_row(pod_name, "Pod", pod.icon, pod.status, pod.created, now, Text(pod_info_text)))
    return rows


def counts_text(counts: Counts) -> Text:
    """``✔ 4,✖ 4,? 1,⚠ 1``, leaving out the outcomes that did not happen."""
    cells = [
        _styled(icon).append(f" {value}")
        for icon, value in zip(COUNTER_ICONS, counts.values(), strict=True)
        if value > 0
    ]
    return joined(cells, ",")


def _analysisrun_rows(run: AnalysisRunInfo, prefix: str, sub_prefix: str, now: datetime.datetime) -> Rows:
    name = _named(prefix, ICON_ANALYSIS, run.name, run.status)
    rows = [_row(name, "AnalysisRun", run.icon, run.status, run.created, now, counts_text(run.counts))]
    for i, job in enumerate(run.jobs):
        job_prefix, _ = _prefixes(i == len(run.jobs) - 1, sub_prefix)
        job_name = _named(job_prefix, ICON_JOB, job.name, job.status)
        rows.append(_row(job_name, "Job", job.icon, job.status, job.started, now, Text("")))
    return rows


def _experiment_rows(exp: ExperimentInfo, prefix: str, sub_prefix: str, now: datetime.datetime) -> Rows:
    name = _named(prefix, ICON_EXPERIMENT, exp.name, exp.status)
    rows = [_row(name, "Experiment", exp.icon, exp.status, exp.created, now, Text(""))]
    children: list[tuple[Callable[..., Rows], Any]] = [(_replicaset_rows, rs) for rs in exp.replicasets]
    children += [(_analysisrun_rows, run) for run in exp.analysisruns]
    return rows + _children_rows(children, sub_prefix, now)


def _children_rows(
    children: Sequence[tuple[Callable[..., Rows], Any]], sub_prefix: str, now: datetime.datetime
) -> Rows:
    """The rows of a node's children, each drawn by its own function, the last with the closing branch."""
    rows: Rows = []
    for i, (render, child) in enumerate(children):
        child_prefix, child_sub = _prefixes(i == len(children) - 1, sub_prefix)
        rows += render(child, child_prefix, child_sub, now)
    return rows


def _revision_rows(
    info: RolloutInfo, revision: int, prefix: str, sub_prefix: str, now: datetime.datetime
) -> Rows:
    """A revision line, then what belongs to it: ReplicaSets, Experiments, AnalysisRuns (in that order)."""
    rows = [[Text(f"{prefix}{ICON_REVISION} revision:{revision}"), Text(""), Text(" "), Text(""), Text("")]]
    children: list[tuple[Callable[..., Rows], Any]] = []
    children += [(_replicaset_rows, rs) for rs in info.replicasets if rs.revision == revision]
    children += [(_experiment_rows, exp) for exp in info.experiments if exp.revision == revision]
    children += [(_analysisrun_rows, run) for run in info.analysisruns if run.revision == revision]
    return rows + _children_rows(children, sub_prefix, now)


def tree(info: RolloutInfo, now: datetime.datetime) -> Text:
    """``NAME KIND STATUS AGE INFO``: the Rollout, its revisions (newest first), and under each its
    ReplicaSets (with their Pods), Experiments (with their ReplicaSets and AnalysisRuns) and AnalysisRuns
    (with their Jobs)."""
    rows: Rows = [[Text(h) for h in ("NAME", "KIND", "STATUS", "AGE", "INFO")]]
    name = Text(f"{ICON_ROLLOUT} {info.name}")
    rows.append(_row(name, "Rollout", info.icon, info.status, info.created, now, Text("")))
    revisions = info.revisions()
    for n, revision in enumerate(revisions):
        prefix, sub_prefix = _prefixes(n == len(revisions) - 1, "")
        rows += _revision_rows(info, revision, prefix, sub_prefix, now)
    return tabulate(rows)


def detail(info: RolloutInfo, now: datetime.datetime) -> Text:
    """Everything ``get`` prints: the summary, a blank line, the tree."""
    return summary(info).append("\n\n").append_text(tree(info, now))


# ------------------------------------------------------------------------------------------- lists

LIST_HEADERS = (
    "NAME",
    "STRATEGY",
    "STATUS",
    "STEP",
    "SET-WEIGHT",
    "READY",
    "DESIRED",
    "UP-TO-DATE",
    "AVAILABLE",
)
# Values are padded to about their header's width, as upstream does, so that lines printed one by one
# (by a watch) still line up.
_LIST_WIDTHS = (10, 9, 12, 4, 10, 5, 7, 10, 9)


def list_row(ro: Obj) -> list[str]:
    """One ``list`` row: name, strategy, client-side status, step, desired canary weight, ready/current,
    desired, up-to-date and available replicas."""
    kind = strategy(ro)
    status, _ = phase(ro)
    ready = _int(appview.field(ro, "status", "readyReplicas"))
    current = _int(appview.field(ro, "status", "replicas"))
    values = [
        name_of(ro),
        kind,
        status,
        step_text(ro) or "-",
        str(set_weight(ro)) if kind == "Canary" else "-",
        f"{ready}/{current}",
        str(desired_replicas(ro)),
        str(_int(appview.field(ro, "status", "updatedReplicas"))),
        str(_int(appview.field(ro, "status", "availableReplicas"))),
    ]
    return [f"{value:<{width}}" for value, width in zip(values, _LIST_WIDTHS, strict=True)]


def list_table(rollouts: Iterable[Obj], *, all_namespaces: bool = False) -> Text:
    """The ``list`` table (with a NAMESPACE column first for ``-A``)."""
    headers = list(LIST_HEADERS)
    rows: list[list[str]] = []
    for ro in rollouts:
        row = list_row(ro)
        if all_namespaces:
            row.insert(0, f"{appview.text(ro, 'metadata', 'namespace'):<9}")
        rows.append(row)
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    return tabulate([headers, *rows])
