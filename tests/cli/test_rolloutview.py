"""``tugboat rollout`` screens from realistic Rollout, ReplicaSet, Pod, Experiment and AnalysisRun dicts,
with a fixed clock.

The expected texts are golden screens of ``kubectl argo rollouts get rollout --no-color`` for the same
situations (research/rollouts.md §3): a ``%-17s`` header, then a tab-aligned tree with two spaces between
columns; revisions newest first, and under each its ReplicaSets, Experiments, then AnalysisRuns. The
objects are built here by hand, in the shapes the API returns.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tugboat.cli import rolloutview

CREATED = "2026-08-01T10:00:00Z"
NOW = datetime.datetime(2026, 8, 8, 10, 0, 0, tzinfo=datetime.UTC)  # everything is 7 days old
CANARY_STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 40},
    {"pause": {"duration": "10s"}},
    {"setWeight": 60},
    {"pause": {"duration": "10s"}},
    {"setWeight": 80},
    {"pause": {"duration": "10s"}},
]


def template(image: str, pod_hash: str = "") -> dict[str, Any]:
    labels = {"app": "demo", **({rolloutview.HASH_LABEL: pod_hash} if pod_hash else {})}
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "demo", "image": image, "ports": [{"containerPort": 8080}]}]},
    }


def rollout(
    name: str, *, strategy: dict[str, Any], status: dict[str, Any], replicas: int = 3, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "generation": 4,
            "creationTimestamp": CREATED,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": template("argoproj/rollouts-demo:blue"),
            "strategy": strategy,
            **spec,
        },
        "status": {"observedGeneration": "4", **status},
    }


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner.get("apiVersion", "argoproj.io/v1alpha1"),
        "kind": owner.get("kind", "Rollout"),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replicaset(
    owner: dict[str, Any],
    pod_hash: str,
    *,
    revision: int,
    image: str,
    replicas: int,
    available: int | None = None,
    annotations: dict[str, str] | None = None,
    name: str = "",
) -> dict[str, Any]:
    name = name or f"{owner['metadata']['name']}-{pod_hash}"
    available = replicas if available is None else available
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "generation": 2,
            "creationTimestamp": CREATED,
            "labels": {"app": "demo", rolloutview.HASH_LABEL: pod_hash},
            "annotations": {rolloutview.REVISION_ANNOTATION: str(revision), **(annotations or {})},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {"replicas": replicas, "template": template(image, pod_hash)},
        "status": {
            "replicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "observedGeneration": 2,
        },
    }


def running(ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": "demo",
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": CREATED}},
    }


def pod(
    rs: dict[str, Any], suffix: str, *, statuses: list[dict[str, Any]] | None = None, **meta: Any
) -> dict[str, Any]:
    name = f"{rs['metadata']['name']}-{suffix}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "creationTimestamp": CREATED,
            "labels": dict(rs["metadata"]["labels"]),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs["metadata"]["name"],
                    "uid": rs["metadata"]["uid"],
                    "controller": True,
                }
            ],
            **meta,
        },
        "spec": {
            "containers": [
                {"name": "demo", "image": rs["spec"]["template"]["spec"]["containers"][0]["image"]}
            ]
        },
        "status": {
            "phase": "Running",
            "containerStatuses": statuses if statuses is not None else [running()],
        },
    }


def measurement(phase: str, *, job: str = "", value: str = "", started: str = CREATED) -> dict[str, Any]:
    found: dict[str, Any] = {"phase": phase, "startedAt": started}
    if phase not in ("Running", "Pending"):
        found["finishedAt"] = started
    if job:
        found["metadata"] = {rolloutview.JOB_NAME_KEY: job}
    if value:
        found["value"] = value
    return found


def metric_result(
    name: str, phase: str, measurements: list[dict[str, Any]], **counters: int
) -> dict[str, Any]:
    return {"name": name, "phase": phase, "measurements": measurements, **counters}


def analysisrun(
    owner: dict[str, Any],
    name: str,
    *,
    phase: str,
    results: list[dict[str, Any]],
    revision: int | None = None,
    created: str = CREATED,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    annotations = {rolloutview.REVISION_ANNOTATION: str(revision)} if revision is not None else {}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "labels": labels or {},
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {"metrics": [{"name": r["name"], "provider": {"job": {}}} for r in results]},
        "status": {"phase": phase, "metricResults": results},
    }


def experiment(owner: dict[str, Any], name: str, *, revision: int, phase: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "creationTimestamp": CREATED,
            "annotations": {rolloutview.REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {"templates": []},
        "status": {"phase": phase},
    }


def render(
    ro: dict[str, Any],
    replicasets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    *,
    experiments: list[dict[str, Any]] | None = None,
    analysisruns: list[dict[str, Any]] | None = None,
    now: datetime.datetime = NOW,
) -> str:
    info = rolloutview.rollout_info(
        ro, replicasets, pods, experiments=experiments or [], analysisruns=analysisruns or []
    )
    view = rolloutview.detail(info, now)
    return "\n".join(line.rstrip() for line in view.plain.splitlines())


# -------------------------------------------------------------------------------------- get screens


def test_canary_paused_mid_step() -> None:
    ro = rollout(
        "canary-demo",
        strategy={"canary": {"steps": CANARY_STEPS}},
        status={
            "phase": "Paused",
            "message": "CanaryPauseStep",
            "currentStepIndex": 1,
            "currentPodHash": "6bd9b5c75d",
            "stableRS": "7d5bb9b6d4",
            "controllerPause": True,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": CREATED}],
            "replicas": 3,
            "updatedReplicas": 1,
            "readyReplicas": 3,
            "availableReplicas": 3,
        },
    )
    canary = replicaset(ro, "6bd9b5c75d", revision=2, image="argoproj/rollouts-demo:yellow", replicas=1)
    stable = replicaset(ro, "7d5bb9b6d4", revision=1, image="argoproj/rollouts-demo:blue", replicas=2)
    pods = [pod(stable, "m2c8w"), pod(canary, "x7k2p"), pod(stable, "4hq9z")]
    other = replicaset(rollout("other", strategy={}, status={}), "5f4d", revision=9, image="x", replicas=1)
    assert render(ro, [stable, other, canary], pods) == (
        """\
Name:            canary-demo
Namespace:       demo
Status:          ॥ Paused
Message:         CanaryPauseStep
Strategy:        Canary
  Step:          1/8
  SetWeight:     20
  ActualWeight:  33
Images:          argoproj/rollouts-demo:blue (stable)
                 argoproj/rollouts-demo:yellow (canary)
Replicas:
  Desired:       3
  Current:       3
  Updated:       1
  Ready:         3
  Available:     3

NAME                                     KIND        STATUS     AGE  INFO
⟳ canary-demo                            Rollout     ॥ Paused   7d
├──# revision:2
│  └──⧉ canary-demo-6bd9b5c75d           ReplicaSet  ✔ Healthy  7d   canary
│     └──□ canary-demo-6bd9b5c75d-x7k2p  Pod         ✔ Running  7d   ready:1/1
└──# revision:1
   └──⧉ canary-demo-7d5bb9b6d4           ReplicaSet  ✔ Healthy  7d   stable
      ├──□ canary-demo-7d5bb9b6d4-4hq9z  Pod         ✔ Running  7d   ready:1/1
      └──□ canary-demo-7d5bb9b6d4-m2c8w  Pod         ✔ Running  7d   ready:1/1"""
    )


def test_blue_green_with_active_and_preview() -> None:
    ro = rollout(
        "bluegreen-demo",
        replicas=2,
        strategy={"blueGreen": {"activeService": "demo-active", "previewService": "demo-preview"}},
        status={
            "phase": "Paused",
            "message": "BlueGreenPause",
            "currentPodHash": "74b948fccb",
            "stableRS": "6cbccd9f99",
            "controllerPause": True,
            "pauseConditions": [{"reason": "BlueGreenPause", "startTime": CREATED}],
            "blueGreen": {"activeSelector": "6cbccd9f99", "previewSelector": "74b948fccb"},
            "replicas": 4,
            "updatedReplicas": 2,
            "readyReplicas": 4,
            "availableReplicas": 2,
        },
    )
    preview = replicaset(ro, "74b948fccb", revision=3, image="argoproj/rollouts-demo:green", replicas=2)
    active = replicaset(ro, "6cbccd9f99", revision=2, image="argoproj/rollouts-demo:blue", replicas=2)
    old = replicaset(ro, "746d5fddf6", revision=1, image="argoproj/rollouts-demo:blue", replicas=0)
    pods = [pod(preview, "5jz59"), pod(preview, "mkhrl"), pod(active, "gk78v"), pod(active, "kxj8g")]
    assert render(ro, [old, active, preview], pods) == (
        """\
Name:            bluegreen-demo
Namespace:       demo
Status:          ॥ Paused
Message:         BlueGreenPause
Strategy:        BlueGreen
Images:          argoproj/rollouts-demo:blue (stable, active)
                 argoproj/rollouts-demo:green (preview)
Replicas:
  Desired:       2
  Current:       4
  Updated:       2
  Ready:         4
  Available:     2

NAME                                        KIND        STATUS        AGE  INFO
⟳ bluegreen-demo                            Rollout     ॥ Paused      7d
├──# revision:3
│  └──⧉ bluegreen-demo-74b948fccb           ReplicaSet  ✔ Healthy     7d   preview
│     ├──□ bluegreen-demo-74b948fccb-5jz59  Pod         ✔ Running     7d   ready:1/1
│     └──□ bluegreen-demo-74b948fccb-mkhrl  Pod         ✔ Running     7d   ready:1/1
├──# revision:2
│  └──⧉ bluegreen-demo-6cbccd9f99           ReplicaSet  ✔ Healthy     7d   stable,active
│     ├──□ bluegreen-demo-6cbccd9f99-gk78v  Pod         ✔ Running     7d   ready:1/1
│     └──□ bluegreen-demo-6cbccd9f99-kxj8g  Pod         ✔ Running     7d   ready:1/1
└──# revision:1
   └──⧉ bluegreen-demo-746d5fddf6           ReplicaSet  • ScaledDown  7d"""
    )


def test_aborted_canary_is_degraded() -> None:
    message = "RolloutAborted: Rollout aborted update to revision 2: Step-based analysis phase failed"
    ro = rollout(
        "canary-demo",
        strategy={"canary": {"steps": CANARY_STEPS}},
        status={
            "phase": "Degraded",
            "message": message,
            "abort": True,
            "abortedAt": CREATED,
            "currentStepIndex": 0,
            "currentPodHash": "65fb5ffc84",
            "stableRS": "877894d5b",
            "replicas": 3,
            "updatedReplicas": 0,
            "readyReplicas": 2,
            "availableReplicas": 2,
        },
    )
    canary = replicaset(
        ro,
        "65fb5ffc84",
        revision=2,
        image="argoproj/rollouts-demo:does-not-exist",
        replicas=1,
        available=0,
        annotations={rolloutview.SCALE_DOWN_DEADLINE_ANNOTATION: "2026-08-08T10:00:25Z"},
    )
    stable = replicaset(ro, "877894d5b", revision=1, image="argoproj/rollouts-demo:green", replicas=2)
    pull = {
        "name": "demo",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff"}},
    }
    pods = [
        pod(canary, "9wf5r", statuses=[pull]),
        pod(stable, "6jfpt", statuses=[running(restarts=2)]),
        pod(stable, "kh7x4"),
    ]
    assert render(ro, [canary, stable], pods) == (
        f"""\
Name:            canary-demo
Namespace:       demo
Status:          ✖ Degraded
Message:         {message}
Strategy:        Canary
  Step:          0/8
  SetWeight:     0
  ActualWeight:  0
Images:          argoproj/rollouts-demo:does-not-exist (canary)
                 argoproj/rollouts-demo:green (stable)
Replicas:
  Desired:       3
  Current:       3
  Updated:       0
  Ready:         2
  Available:     2

NAME                                     KIND        STATUS              AGE  INFO
⟳ canary-demo                            Rollout     ✖ Degraded          7d
├──# revision:2
│  └──⧉ canary-demo-65fb5ffc84           ReplicaSet  ◌ Progressing       7d   canary,delay:25s
│     └──□ canary-demo-65fb5ffc84-9wf5r  Pod         ⚠ ImagePullBackOff  7d   ready:0/1
└──# revision:1
   └──⧉ canary-demo-877894d5b            ReplicaSet  ✔ Healthy           7d   stable
      ├──□ canary-demo-877894d5b-6jfpt   Pod         ✔ Running           7d   ready:1/1,restarts:2
      └──□ canary-demo-877894d5b-kh7x4   Pod         ✔ Running           7d   ready:1/1"""
    )


def test_blue_green_scale_down_delay_of_an_unlabelled_set() -> None:
    """A ReplicaSet that lost its hash label has no role (its image is untagged); the delay left is
    counted down from a clock that is not on a whole second."""
    ro = rollout(
        "bluegreen-demo",
        replicas=2,
        strategy={"blueGreen": {"activeService": "demo-active", "previewService": "demo-preview"}},
        status={
            "phase": "Paused",
            "message": "BlueGreenPause",
            "currentPodHash": "74b948fccb",
            "stableRS": "6cbccd9f99",
            "controllerPause": True,
            "pauseConditions": [{"reason": "BlueGreenPause", "startTime": CREATED}],
            "blueGreen": {"activeSelector": "6cbccd9f99", "previewSelector": "74b948fccb"},
            "replicas": 4,
            "updatedReplicas": 2,
            "readyReplicas": 4,
            "availableReplicas": 2,
        },
    )
    deadline = {rolloutview.SCALE_DOWN_DEADLINE_ANNOTATION: "2026-08-08T14:00:00Z"}  # NOW + 4h
    preview = replicaset(
        ro, "74b948fccb", revision=3, image="argoproj/rollouts-demo:green", replicas=2, annotations=deadline
    )
    del preview["metadata"]["labels"][rolloutview.HASH_LABEL]
    active = replicaset(ro, "6cbccd9f99", revision=2, image="argoproj/rollouts-demo:blue", replicas=2)
    old = replicaset(ro, "746d5fddf6", revision=1, image="argoproj/rollouts-demo:blue", replicas=0)
    pods = [pod(preview, "5jz59"), pod(active, "gk78v")]
    later = NOW + datetime.timedelta(milliseconds=250)
    assert render(ro, [old, active, preview], pods, now=later) == (
        """\
Name:            bluegreen-demo
Namespace:       demo
Status:          ॥ Paused
Message:         BlueGreenPause
Strategy:        BlueGreen
Images:          argoproj/rollouts-demo:blue (stable, active)
                 argoproj/rollouts-demo:green
Replicas:
  Desired:       2
  Current:       4
  Updated:       2
  Ready:         4
  Available:     2

NAME                                        KIND        STATUS        AGE  INFO
⟳ bluegreen-demo                            Rollout     ॥ Paused      7d
├──# revision:3
│  └──⧉ bluegreen-demo-74b948fccb           ReplicaSet  ✔ Healthy     7d   delay:3h59m
│     └──□ bluegreen-demo-74b948fccb-5jz59  Pod         ✔ Running     7d   ready:1/1
├──# revision:2
│  └──⧉ bluegreen-demo-6cbccd9f99           ReplicaSet  ✔ Healthy     7d   stable,active
│     └──□ bluegreen-demo-6cbccd9f99-gk78v  Pod         ✔ Running     7d   ready:1/1
└──# revision:1
   └──⧉ bluegreen-demo-746d5fddf6           ReplicaSet  • ScaledDown  7d"""
    )


def test_canary_ping_pong() -> None:
    ro = rollout(
        "pingpong-demo",
        replicas=2,
        strategy={
            "canary": {
                "steps": CANARY_STEPS,
                "pingPong": {"pingService": "ping", "pongService": "pong"},
                "trafficRouting": {"alb": {"ingress": "web", "rootService": "root", "servicePort": 80}},
            }
        },
        status={
            "phase": "Degraded",
            "message": (
                'ProgressDeadlineExceeded: ReplicaSet "pingpong-demo-65fb5ffc84" has timed out progressing.'
            ),
            "currentStepIndex": 0,
            "currentPodHash": "65fb5ffc84",
            "stableRS": "877894d5b",
            "canary": {
                "stablePingPong": "pong",
                "weights": {"canary": {"weight": 0}, "stable": {"weight": 100}},
            },
            "replicas": 3,
            "updatedReplicas": 1,
            "readyReplicas": 2,
            "availableReplicas": 2,
        },
    )
    canary = replicaset(
        ro, "65fb5ffc84", revision=2, image="argoproj/rollouts-demo:does-not-exist", replicas=1, available=0
    )
    stable = replicaset(ro, "877894d5b", revision=1, image="argoproj/rollouts-demo:green", replicas=2)
    pull = {
        "name": "demo",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff"}},
    }
    pods = [pod(canary, "9wf5r", statuses=[pull]), pod(stable, "7jmqw"), pod(stable, "6jfpt")]
    assert render(ro, [canary, stable], pods) == (
        """\
Name:            pingpong-demo
Namespace:       demo
Status:          ✖ Degraded
Message:         ProgressDeadlineExceeded: ReplicaSet "pingpong-demo-65fb5ffc84" has timed out progressing.
Strategy:        Canary
  Step:          0/8
  SetWeight:     20
  ActualWeight:  0
Images:          argoproj/rollouts-demo:does-not-exist (canary, ping)
                 argoproj/rollouts-demo:green (stable, pong)
Replicas:
  Desired:       2
  Current:       3
  Updated:       1
  Ready:         2
  Available:     2

NAME                                       KIND        STATUS              AGE  INFO
⟳ pingpong-demo                            Rollout     ✖ Degraded          7d
├──# revision:2
│  └──⧉ pingpong-demo-65fb5ffc84           ReplicaSet  ◌ Progressing       7d   canary,ping
│     └──□ pingpong-demo-65fb5ffc84-9wf5r  Pod         ⚠ ImagePullBackOff  7d   ready:0/1
└──# revision:1
   └──⧉ pingpong-demo-877894d5b            ReplicaSet  ✔ Healthy           7d   stable,pong
      ├──□ pingpong-demo-877894d5b-6jfpt   Pod         ✔ Running           7d   ready:1/1
      └──□ pingpong-demo-877894d5b-7jmqw   Pod         ✔ Running           7d   ready:1/1"""
    )


def test_invalid_rollout_without_replicasets() -> None:
    message = (
        'InvalidSpec: The Rollout "broken" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other"}: `selector` does not match template `labels`'
    )
    ro = rollout(
        "broken", replicas=1, strategy={"canary": {}}, status={"phase": "Degraded", "message": message}
    )
    assert render(ro, [], []) == (
        f"""\
Name:            broken
Namespace:       demo
Status:          ✖ Degraded
Message:         {message}
Strategy:        Canary
  Step:
  SetWeight:     100
  ActualWeight:  100
Replicas:
  Desired:       1
  Current:       0
  Updated:       0
  Ready:         0
  Available:     0

NAME      KIND     STATUS      AGE  INFO
⟳ broken  Rollout  ✖ Degraded  7d"""
    )


# ---------------------------------------------------------------------------- experiments and analysis


def experiment_analysis_objects() -> dict[str, Any]:
    """A canary at an experiment step, with a background AnalysisRun of eight Job measurements."""
    ro = rollout(
        "ed",
        replicas=4,
        strategy={"canary": {"steps": [{"setWeight": 25}, {"experiment": {"templates": []}}]}},
        status={
            "phase": "Degraded",
            "message": 'ProgressDeadlineExceeded: ReplicaSet "ed-7b4f6c9d8" has timed out progressing.',
            "currentStepIndex": 1,
            "currentPodHash": "7b4f6c9d8",
            "stableRS": "5c8d7f9b6",
            "replicas": 4,
            "updatedReplicas": 1,
            "readyReplicas": 4,
            "availableReplicas": 4,
        },
    )
    canary = replicaset(ro, "7b4f6c9d8", revision=2, image="argoproj/rollouts-demo:yellow", replicas=1)
    stable = replicaset(ro, "5c8d7f9b6", revision=1, image="argoproj/rollouts-demo:blue", replicas=3)
    exp = experiment(ro, "ed-7b4f6c9d8-2-x4k", revision=2, phase="Running")
    baseline = replicaset(
        exp,
        "6d9f8c7b5",
        revision=1,
        image="argoproj/rollouts-demo:blue",
        replicas=1,
        name="ed-7b4f6c9d8-2-x4k-baseline-6d9f8c7b5",
    )
    candidate = replicaset(
        exp,
        "5f7b9c4d2",
        revision=1,
        image="argoproj/rollouts-demo:yellow",
        replicas=1,
        name="ed-7b4f6c9d8-2-x4k-canary-5f7b9c4d2",
    )
    run_name = "ed-random-fail-7b4f6c9d8-q9v2m"
    phases = ["Failed", "Successful", "Successful", "Failed", "Failed", "Successful", "Failed", "Successful"]
    measurements = [measurement(p, job=f"{run_name}-{i}") for i, p in enumerate(phases)]
    counters = {"count": 8, "successful": 4, "failed": 4, "inconclusive": 1, "error": 1}
    run = analysisrun(
        ro,
        run_name,
        phase="Inconclusive",
        revision=2,
        results=[metric_result("random-fail", "Inconclusive", measurements, **counters)],
        labels={rolloutview.HASH_LABEL: "7b4f6c9d8"},
    )
    pods = [
        pod(canary, "wn5w8"),
        pod(baseline, "7dczd"),
        pod(candidate, "7699v"),
        pod(stable, "bq55x"),
        pod(stable, "8dmnz"),
        pod(stable, "bb6v6"),
    ]
    return {
        "ro": ro,
        "replicasets": [stable, baseline, canary, candidate],
        "pods": pods,
        "experiments": [exp],
        "analysisruns": [run],
    }


def test_experiment_and_analysis_run_under_their_revision() -> None:
    objects = experiment_analysis_objects()
    assert render(**objects) == (
        """\
Name:            ed
Namespace:       demo
Status:          ✖ Degraded
Message:         ProgressDeadlineExceeded: ReplicaSet "ed-7b4f6c9d8" has timed out progressing.
Strategy:        Canary
  Step:          1/2
  SetWeight:     25
  ActualWeight:  25
Images:          argoproj/rollouts-demo:blue (stable)
                 argoproj/rollouts-demo:yellow (canary)
Replicas:
  Desired:       4
  Current:       4
  Updated:       1
  Ready:         4
  Available:     4

NAME                                                       KIND         STATUS          AGE  INFO
⟳ ed                                                       Rollout      ✖ Degraded      7d
├──# revision:2
│  ├──⧉ ed-7b4f6c9d8                                       ReplicaSet   ✔ Healthy       7d   canary
│  │  └──□ ed-7b4f6c9d8-wn5w8                              Pod          ✔ Running       7d   ready:1/1
│  ├──Σ ed-7b4f6c9d8-2-x4k                                 Experiment   ◌ Running       7d
│  │  ├──⧉ ed-7b4f6c9d8-2-x4k-baseline-6d9f8c7b5           ReplicaSet   ✔ Healthy       7d
│  │  │  └──□ ed-7b4f6c9d8-2-x4k-baseline-6d9f8c7b5-7dczd  Pod          ✔ Running       7d   ready:1/1
│  │  └──⧉ ed-7b4f6c9d8-2-x4k-canary-5f7b9c4d2             ReplicaSet   ✔ Healthy       7d
│  │     └──□ ed-7b4f6c9d8-2-x4k-canary-5f7b9c4d2-7699v    Pod          ✔ Running       7d   ready:1/1
│  └──α ed-random-fail-7b4f6c9d8-q9v2m                     AnalysisRun  ? Inconclusive  7d   ✔ 4,✖ 4,? 1,⚠ 1
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-0                Job          ✖ Failed        7d
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-1                Job          ✔ Successful    7d
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-2                Job          ✔ Successful    7d
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-3                Job          ✖ Failed        7d
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-4                Job          ✖ Failed        7d
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-5                Job          ✔ Successful    7d
│     ├──⊞ ed-random-fail-7b4f6c9d8-q9v2m-6                Job          ✖ Failed        7d
│     └──⊞ ed-random-fail-7b4f6c9d8-q9v2m-7                Job          ✔ Successful    7d
└──# revision:1
   └──⧉ ed-5c8d7f9b6                                       ReplicaSet   ✔ Healthy       7d   stable
      ├──□ ed-5c8d7f9b6-8dmnz                              Pod          ✔ Running       7d   ready:1/1
      ├──□ ed-5c8d7f9b6-bb6v6                              Pod          ✔ Running       7d   ready:1/1
      └──□ ed-5c8d7f9b6-bq55x                              Pod          ✔ Running       7d   ready:1/1"""
    )


def test_experiment_step_with_an_analysis_job() -> None:
    """The Experiment's template image is tagged ``Σ:<template>``; its AnalysisRun (owned by the
    Experiment) and that run's Job hang under it."""
    ro = rollout(
        "job-demo",
        replicas=2,
        strategy={"canary": {"steps": [{"experiment": {"templates": []}}]}},
        status={
            "phase": "Progressing",
            "message": "more replicas need to be updated",
            "currentStepIndex": 0,
            "currentPodHash": "645d5dbc4c",
            "stableRS": "877894d5b",
            "replicas": 2,
            "updatedReplicas": 0,
            "readyReplicas": 2,
            "availableReplicas": 2,
        },
    )
    canary = replicaset(ro, "645d5dbc4c", revision=2, image="argoproj/rollouts-demo:blue", replicas=0)
    stable = replicaset(ro, "877894d5b", revision=1, image="argoproj/rollouts-demo:green", replicas=2)
    exp = experiment(ro, "job-demo-645d5dbc4c-2-0", revision=2, phase="Running")
    preview = replicaset(
        exp,
        "7c9d6b8f4",
        revision=1,
        image="argoproj/rollouts-demo:blue",
        replicas=1,
        name="job-demo-645d5dbc4c-2-0-canary-preview",
        annotations={rolloutview.TEMPLATE_ANNOTATION: "canary-preview"},
    )
    job = "uid-job-demo-645d5dbc4c-2-0-stress-test.stress.1"
    run = analysisrun(
        exp,
        "job-demo-645d5dbc4c-2-0-stress-test",
        phase="Running",
        results=[metric_result("stress", "Running", [measurement("Running", job=job)])],
    )
    pods = [pod(preview, "zmmvz"), pod(stable, "n6xqz"), pod(stable, "nlmj9")]
    out = render(ro, [canary, stable, preview], pods, experiments=[exp], analysisruns=[run])
    assert out == (
        """\
Name:            job-demo
Namespace:       demo
Status:          ◌ Progressing
Message:         more replicas need to be updated
Strategy:        Canary
  Step:          0/1
  SetWeight:     0
  ActualWeight:  0
Images:          argoproj/rollouts-demo:blue (Σ:canary-preview)
                 argoproj/rollouts-demo:green (stable)
Replicas:
  Desired:       2
  Current:       2
  Updated:       0
  Ready:         2
  Available:     2

NAME                                                            KIND         STATUS         AGE  INFO
⟳ job-demo                                                      Rollout      ◌ Progressing  7d
├──# revision:2
│  ├──⧉ job-demo-645d5dbc4c                                     ReplicaSet   • ScaledDown   7d   canary
│  └──Σ job-demo-645d5dbc4c-2-0                                 Experiment   ◌ Running      7d
│     ├──⧉ job-demo-645d5dbc4c-2-0-canary-preview               ReplicaSet   ✔ Healthy      7d
│     │  └──□ job-demo-645d5dbc4c-2-0-canary-preview-zmmvz      Pod          ✔ Running      7d   ready:1/1
│     └──α job-demo-645d5dbc4c-2-0-stress-test                  AnalysisRun  ◌ Running      7d
│        └──⊞ uid-job-demo-645d5dbc4c-2-0-stress-test.stress.1  Job          ◌ Running      7d
└──# revision:1
   └──⧉ job-demo-877894d5b                                      ReplicaSet   ✔ Healthy      7d   stable
      ├──□ job-demo-877894d5b-n6xqz                             Pod          ✔ Running      7d   ready:1/1
      └──□ job-demo-877894d5b-nlmj9                             Pod          ✔ Running      7d   ready:1/1"""
    )


def test_aborted_by_background_analysis() -> None:
    message = 'RolloutAborted: metric "web" assessed Failed due to failed (1) > failureLimit (0)'
    ro = rollout(
        "bg-analysis",
        replicas=1,
        strategy={"canary": {"steps": [{"setWeight": 10}, {"pause": {}}], "analysis": {"templates": []}}},
        status={
            "phase": "Degraded",
            "message": message,
            "abort": True,
            "currentStepIndex": 0,
            "currentPodHash": "db976bc44",
            "stableRS": "7d84d44bb8",
            "replicas": 1,
            "updatedReplicas": 0,
            "readyReplicas": 1,
            "availableReplicas": 1,
        },
    )
    canary = replicaset(ro, "db976bc44", revision=2, image="argoproj/rollouts-demo:yellow", replicas=0)
    stable = replicaset(ro, "7d84d44bb8", revision=1, image="argoproj/rollouts-demo:blue", replicas=1)
    web = metric_result("web", "Failed", [measurement("Failed", value="false")], count=1, failed=1)
    run = analysisrun(ro, "bg-analysis-db976bc44-2", phase="Failed", revision=2, results=[web])
    assert render(ro, [canary, stable], [pod(stable, "z5wps")], analysisruns=[run]) == (
        f"""\
Name:            bg-analysis
Namespace:       demo
Status:          ✖ Degraded
Message:         {message}
Strategy:        Canary
  Step:          0/2
  SetWeight:     0
  ActualWeight:  0
Images:          argoproj/rollouts-demo:blue (stable)
Replicas:
  Desired:       1
  Current:       1
  Updated:       0
  Ready:         1
  Available:     1

NAME                                     KIND         STATUS        AGE  INFO
⟳ bg-analysis                            Rollout      ✖ Degraded    7d
├──# revision:2
│  ├──⧉ bg-analysis-db976bc44            ReplicaSet   • ScaledDown  7d   canary
│  └──α bg-analysis-db976bc44-2          AnalysisRun  ✖ Failed      7d   ✖ 1
└──# revision:1
   └──⧉ bg-analysis-7d84d44bb8           ReplicaSet   ✔ Healthy     7d   stable
      └──□ bg-analysis-7d84d44bb8-z5wps  Pod          ✔ Running     7d   ready:1/1"""
    )


def test_analysis_run_counts() -> None:
    """The INFO counts add up every metric's measurement counters (``runSummary`` counts metrics, not
    measurements, and is not used); a result without counters is counted from its measurements."""
    ro = rollout("c", strategy={"canary": {}}, status={})
    counted = metric_result("a", "Failed", [], count=5, successful=3, failed=1, error=1)
    uncounted = metric_result(
        "b",
        "Running",
        [
            measurement("Successful"),
            measurement("Inconclusive"),
            measurement("Error"),
            measurement("Running"),
        ],
    )
    run = analysisrun(ro, "r", phase="Failed", revision=1, results=[counted, uncounted])
    run["status"]["runSummary"] = {"count": 2, "successful": 1, "failed": 1}
    assert rolloutview.analysisrun_counts(run) == rolloutview.Counts(
        successful=4, failed=1, inconclusive=1, error=2
    )
    assert rolloutview.counts_text(rolloutview.analysisrun_counts(run)).plain == "✔ 4,✖ 1,? 1,⚠ 2"
    assert rolloutview.analysisrun_counts(analysisrun(ro, "e", phase="", results=[])) == rolloutview.Counts()


def test_analysis_runs_order_ownership_and_revision() -> None:
    """Runs of a revision come oldest first, then by name descending; a run without the revision
    annotation takes the revision of the ReplicaSet whose hash it is labelled with (else 0); runs of
    other Rollouts are left out."""
    ro = rollout("o", strategy={"canary": {}}, status={"stableRS": "h1"})
    stable = replicaset(ro, "h1", revision=1, image="i:1", replicas=1)
    late = "2026-08-08T09:00:00Z"
    runs = [
        analysisrun(ro, "o-a", phase="Successful", revision=3, results=[], created=late),
        analysisrun(ro, "o-b", phase="Successful", revision=3, results=[], created=late),
        analysisrun(ro, "o-c", phase="Running", revision=3, results=[]),
        analysisrun(ro, "o-labelled", phase="Pending", results=[], labels={rolloutview.HASH_LABEL: "h1"}),
        analysisrun(ro, "o-orphan", phase="Error", results=[]),
        analysisrun(rollout("x", strategy={}, status={}), "x-run", phase="Failed", revision=3, results=[]),
    ]
    info = rolloutview.rollout_info(ro, [stable], [], analysisruns=runs)
    assert [(run.name, run.revision) for run in info.analysisruns] == [
        ("o-c", 3),
        ("o-b", 3),
        ("o-a", 3),
        ("o-labelled", 1),
        ("o-orphan", 0),
    ]
    assert "\n".join(line.rstrip() for line in rolloutview.tree(info, NOW).plain.splitlines()) == (
        """\
NAME                KIND         STATUS         AGE  INFO
⟳ o                 Rollout      ◌ Progressing  7d
├──# revision:3
│  ├──α o-c         AnalysisRun  ◌ Running      7d
│  ├──α o-b         AnalysisRun  ✔ Successful   60m
│  └──α o-a         AnalysisRun  ✔ Successful   60m
├──# revision:1
│  ├──⧉ o-h1        ReplicaSet   ✔ Healthy      7d   stable
│  └──α o-labelled  AnalysisRun  ◷ Pending      7d
└──# revision:0
   └──α o-orphan    AnalysisRun  ⚠ Error        7d"""
    )


def test_terminal_styles_follow_upstream_colours() -> None:
    ro = rollout(
        "web",
        strategy={"canary": {}},
        status={"phase": "Healthy", "currentPodHash": "abc", "stableRS": "abc", "replicas": 1},
    )
    stable = replicaset(ro, "abc", revision=1, image="nginx:1", replicas=1)
    view = rolloutview.detail(rolloutview.rollout_info(ro, [stable], []), NOW)
    styled = {view.plain[span.start : span.end]: str(span.style) for span in view.spans}
    assert styled["✔"] == "green" and "Healthy" not in styled  # only the icon is coloured
    assert styled["stable"] == "green"
    assert styled["web-abc"] == "green"  # a ReplicaSet's name takes its role's colour


def styles(view: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for span in view.spans:
        found.setdefault(view.plain[span.start : span.end], set()).add(str(span.style))
    return found


def test_colours_of_runs_jobs_experiments_and_roles() -> None:
    """Names of Experiments, AnalysisRuns and Jobs still at work are blue, finished ones uncoloured; a
    ReplicaSet's name takes the colour of its last role (stable, then canary/active/preview, then
    ping/pong); the count icons are coloured like status icons."""
    objects = experiment_analysis_objects()
    run = objects["analysisruns"][0]
    run["status"]["phase"] = "Running"
    info = rolloutview.rollout_info(
        objects["ro"],
        objects["replicasets"],
        objects["pods"],
        experiments=objects["experiments"],
        analysisruns=objects["analysisruns"],
    )
    found = styles(rolloutview.tree(info, NOW))
    assert found[run["metadata"]["name"]] == {"bright_blue"}
    assert found["ed-7b4f6c9d8-2-x4k"] == {"bright_blue"}  # the Running Experiment
    assert f"{run['metadata']['name']}-1" not in found  # a Successful Job
    assert found["◌"] == {"bright_blue"} and found["⚠"] == {"red"} and found["?"] == {"yellow"}
    ro = rollout(
        "pp",
        strategy={"canary": {"pingPong": {"pingService": "ping", "pongService": "pong"}}},
        status={"currentPodHash": "new", "stableRS": "old", "canary": {"stablePingPong": "ping"}},
    )
    old = replicaset(ro, "old", revision=1, image="i:1", replicas=1)
    exp = experiment(ro, "pp-exp", revision=1, phase="Successful")
    tagged = {rolloutview.TEMPLATE_ANNOTATION: "base"}
    exp_rs = replicaset(exp, "e", revision=1, image="i:0", replicas=1, annotations=tagged, name="pp-exp-base")
    info = rolloutview.rollout_info(ro, [old, exp_rs], [], experiments=[exp])
    found = styles(rolloutview.detail(info, NOW))
    assert found["pp-old"] == {"bright_blue"}  # stable (green), then ping (blue)
    assert found["stable"] == {"green"} and found["ping"] == {"bright_blue"}
    assert "Σ:base" not in found and "pp-exp" not in found
    assert "i:0 (Σ:base)" in rolloutview.summary(info).plain


# -------------------------------------------------------------------------------------------- phase


UNSEEN = ("Progressing", "waiting for rollout spec update to be observed")


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        ({"observedGeneration": "3", "phase": "Healthy"}, 4, UNSEEN),
        ({"observedGeneration": "5", "phase": "Healthy"}, 4, ("Healthy", "")),  # a legacy hash-like number
        ({"observedGeneration": "6bd9b5c75d", "phase": "Healthy"}, 4, ("Healthy", "")),
        (
            {"observedGeneration": "4", "phase": "Paused", "controllerPause": True, "pauseConditions": []},
            4,
            ("Progressing", "waiting for rollout to unpause"),
        ),
        (
            {"observedGeneration": "4", "phase": "Degraded", "message": "InvalidSpec: x"},
            4,
            ("Degraded", "InvalidSpec: x"),
        ),
    ],
)
def test_client_side_phase(status: dict[str, Any], generation: int, expected: tuple[str, str]) -> None:
    ro = {"metadata": {"generation": generation}, "spec": {"strategy": {"canary": {}}}, "status": status}
    assert rolloutview.phase(ro) == expected


def test_phase_without_a_controller_phase_is_computed() -> None:
    def phase(spec: dict[str, Any], status: dict[str, Any]) -> tuple[str, str]:
        return rolloutview.phase({"metadata": {"generation": 1}, "spec": spec, "status": status})

    canary = {"replicas": 2, "strategy": {"canary": {}}}
    done = {
        "updatedReplicas": 2,
        "availableReplicas": 2,
        "replicas": 2,
        "currentPodHash": "a",
        "stableRS": "a",
    }
    assert phase(canary, {}) == ("Progressing", "more replicas need to be updated")
    assert phase(canary, done) == ("Healthy", "")
    assert phase({**canary, "paused": True}, done) == ("Paused", "manually paused")
    assert phase(canary, {**done, "pauseConditions": [{"reason": "CanaryPauseStep"}]}) == (
        "Paused",
        "CanaryPauseStep",
    )
    aborted = {
        "type": "Progressing",
        "reason": "RolloutAborted",
        "message": "Rollout aborted update to revision 2",
    }
    assert phase(canary, {**done, "conditions": [aborted]}) == (
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2",
    )
    assert phase({**canary, "restartAt": CREATED}, done) == ("Progressing", "rollout is restarting")
    assert phase({**canary, "restartAt": CREATED}, {**done, "restartedAt": CREATED}) == ("Healthy", "")
    assert phase(canary, {**done, "replicas": 3}) == ("Progressing", "old replicas are pending termination")
    assert phase(canary, {**done, "stableRS": "b"}) == ("Progressing", "waiting for all steps to complete")
    blue_green = {"replicas": 2, "strategy": {"blueGreen": {"activeService": "a"}}}
    assert phase(blue_green, done) == ("Progressing", "active service cutover pending")
    switched = {**done, "blueGreen": {"activeSelector": "a"}}
    assert phase(blue_green, switched) == ("Healthy", "")
    assert phase(blue_green, {**switched, "stableRS": "b"}) == (
        "Progressing",
        "waiting for post-promotion verification to complete",
    )


def test_set_weight_and_step() -> None:
    ro = rollout("w", strategy={"canary": {"steps": CANARY_STEPS}}, status={"currentStepIndex": 3})
    assert (rolloutview.set_weight(ro), rolloutview.step_text(ro)) == (40, "3/8")
    ro["status"]["currentStepIndex"] = 8
    assert (rolloutview.set_weight(ro), rolloutview.step_text(ro)) == (100, "8/8")
    ro["status"] = {"abort": True, "currentStepIndex": 3}
    assert rolloutview.set_weight(ro) == 0
    ro["status"] = {}
    assert (rolloutview.set_weight(ro), rolloutview.step_text(ro)) == (20, "")
    ro["spec"]["strategy"]["canary"]["trafficRouting"] = {"maxTrafficWeight": 1000}
    ro["status"] = {"currentStepIndex": 8}
    assert rolloutview.set_weight(ro) == 1000


def test_actual_weight_with_traffic_routing() -> None:
    ro = rollout(
        "w",
        strategy={"canary": {"steps": CANARY_STEPS, "trafficRouting": {"nginx": {"stableIngress": "web"}}}},
        status={"currentStepIndex": 2, "availableReplicas": 3},
    )
    assert rolloutview.rollout_info(ro).actual_weight == "40"  # no weights reported yet: the set weight
    ro["status"]["canary"] = {"weights": {"canary": {"weight": 35}, "stable": {"weight": 65}}}
    assert rolloutview.rollout_info(ro).actual_weight == "35"


# ------------------------------------------------------------------------------------ pods and sets


def waiting(reason: str, restarts: int = 0) -> dict[str, Any]:
    return {"ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Pending"}, ("Pending", "◌", "0/1", 0)),
        ({"phase": "Running", "containerStatuses": [running()]}, ("Running", "✔", "1/1", 0)),
        (
            {"phase": "Running", "containerStatuses": [waiting("CrashLoopBackOff", 4)]},
            ("CrashLoopBackOff", "✖", "0/1", 4),
        ),
        (
            {"phase": "Pending", "containerStatuses": [waiting("ErrImagePull")]},
            ("ErrImagePull", "⚠", "0/1", 0),
        ),
        (
            {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
            ("ExitCode:3", "✖", "0/1", 0),
        ),
        (
            {"phase": "Pending", "initContainerStatuses": [{"name": "init", "restartCount": 1, "state": {}}]},
            ("Init:0/1", "◌", "0/1", 1),
        ),
    ],
)
def test_pod_status(status: dict[str, Any], expected: tuple[str, str, str, int]) -> None:
    obj = {
        "metadata": {"name": "p"},
        "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "demo"}]},
        "status": status,
    }
    info = rolloutview.pod_info(obj)
    assert (info.status, info.icon, info.ready, info.restarts) == expected


def test_terminating_pod() -> None:
    obj = {
        "metadata": {"deletionTimestamp": CREATED},
        "spec": {"containers": [{}]},
        "status": {"phase": "Running"},
    }
    assert rolloutview.pod_info(obj).status == "Terminating"


def test_replicaset_status() -> None:
    ro = rollout("s", strategy={"canary": {}}, status={})
    rs = replicaset(ro, "h", revision=1, image="i", replicas=2)
    assert rolloutview.replicaset_status(rs) == "Healthy"
    rs["metadata"]["generation"] = 3
    assert rolloutview.replicaset_status(rs) == "Progressing"  # spec not observed yet
    rs["status"]["observedGeneration"] = 3
    rs["status"]["availableReplicas"] = 1
    assert rolloutview.replicaset_status(rs) == "Progressing"
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True"}]
    assert rolloutview.replicaset_status(rs) == "ReplicaFailure"
    rs["status"] = {"observedGeneration": 3}
    rs["spec"]["replicas"] = 0
    assert rolloutview.replicaset_status(rs) == "ScaledDown"


def test_ping_pong_roles_and_passed_delay() -> None:
    ro = rollout(
        "pp",
        strategy={"canary": {"pingPong": {"pingService": "ping", "pongService": "pong"}}},
        status={"currentPodHash": "new", "stableRS": "old", "canary": {"stablePingPong": "ping"}},
    )
    old = replicaset(ro, "old", revision=1, image="i:1", replicas=1)
    deadline = {rolloutview.SCALE_DOWN_DEADLINE_ANNOTATION: "2026-08-08T09:59:00Z"}
    new = replicaset(ro, "new", revision=2, image="i:2", replicas=1, annotations=deadline)
    infos = {i.name: i for i in rolloutview.replicaset_infos(ro, [old, new], [])}
    assert infos["pp-old"].roles == {"stable", "ping"}
    assert infos["pp-new"].roles == {"canary", "pong"}
    tree = rolloutview.tree(rolloutview.rollout_info(ro, [old, new], []), NOW).plain
    lines = [line.rstrip() for line in tree.splitlines()]
    assert lines[3].endswith("canary,pong,delay:passed") and lines[5].endswith("stable,ping")


def test_images_merge_tags_of_one_image() -> None:
    ro = rollout(
        "m",
        strategy={"canary": {}},
        status={"currentPodHash": "b", "stableRS": "a"},
    )
    a = replicaset(ro, "a", revision=1, image="same:1", replicas=1)
    b = replicaset(ro, "b", revision=2, image="same:1", replicas=1)
    gone = replicaset(ro, "c", revision=0, image="old:0", replicas=0)
    info = rolloutview.rollout_info(ro, [a, b, gone], [])
    assert rolloutview.images(info) == [("same:1", ("canary", "stable"))]


# -------------------------------------------------------------------------------------------- lists


def test_list_table() -> None:
    canary = rollout(
        "canary-demo",
        strategy={"canary": {"steps": CANARY_STEPS}},
        status={
            "phase": "Paused",
            "currentStepIndex": 1,
            "replicas": 3,
            "updatedReplicas": 1,
            "readyReplicas": 3,
            "availableReplicas": 3,
        },
    )
    blue_green = rollout(
        "bg", replicas=2, strategy={"blueGreen": {"activeService": "a"}}, status={"phase": "Healthy"}
    )
    blue_green["metadata"]["namespace"] = "other"
    lines = [line.rstrip() for line in rolloutview.list_table([canary, blue_green]).plain.splitlines()]
    assert lines == [
        "NAME         STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE",
        "canary-demo  Canary     Paused        1/8   20          3/3    3        1           3",
        "bg           BlueGreen  Healthy       -     -           0/0    2        0           0",
    ]
    wide = rolloutview.list_table([blue_green], all_namespaces=True).plain.splitlines()
    assert wide[0].startswith("NAMESPACE  NAME ") and wide[1].startswith("other      bg ")


def test_status_line_and_ages() -> None:
    assert rolloutview.status_line("Healthy", "") == "Healthy"
    assert rolloutview.status_line("Paused", "BlueGreenPause") == "Paused - BlueGreenPause"
    assert rolloutview.age("2026-08-08T09:58:00Z", NOW) == "2m"
    assert rolloutview.age("2026-08-08T09:59:30Z", NOW) == "30s"
    assert rolloutview.age("", NOW) == ""
