"""``tugboat rollout`` screens from realistic Rollout, ReplicaSet and Pod dicts, with a fixed clock.

The expected texts follow ``kubectl argo rollouts get rollout`` (research/rollouts.md §3): a ``%-17s``
header, then a tab-aligned tree with two spaces between columns.
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


def replicaset(
    owner: dict[str, Any],
    pod_hash: str,
    *,
    revision: int,
    image: str,
    replicas: int,
    available: int | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    name = f"{owner['metadata']['name']}-{pod_hash}"
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
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ],
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


def render(ro: dict[str, Any], replicasets: list[dict[str, Any]], pods: list[dict[str, Any]]) -> str:
    view = rolloutview.detail(rolloutview.rollout_info(ro, replicasets, pods), NOW)
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
    assert styled["web-abc"] == "green"  # a ReplicaSet's name takes its first role's colour


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
