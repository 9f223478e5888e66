"""kubectl's STATUS, READY and RESTARTS of a Pod (tugboat.kube.podstatus), rule by rule."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tugboat.kube import podstatus

RUNNING = {"running": {"startedAt": "2024-01-01T00:00:00Z"}}


def pod(status: dict[str, Any], *, init: int = 0, sidecars: int = 0, containers: int = 1, **meta: Any) -> Any:
    init_specs = [{"name": f"init{i}"} for i in range(init)]
    init_specs += [{"name": f"side{i}", "restartPolicy": "Always"} for i in range(sidecars)]
    return {
        "metadata": {"name": "p", **meta},
        "spec": {"initContainers": init_specs, "containers": [{"name": f"c{i}"} for i in range(containers)]},
        "status": status,
    }


def ready(name: str = "c0", restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": True, "started": True, "restartCount": restarts, "state": RUNNING}


def waiting(reason: str, name: str = "c0", restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}


def terminated(name: str = "c0", **fields: Any) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": fields}}


def cells(obj: Any) -> tuple[str, str, int]:
    summary = podstatus.summarize(obj)
    return summary.reason, summary.ready_text, summary.restarts


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pod({"phase": "Pending"}), ("Pending", "0/1", 0)),
        (pod({}), ("", "0/1", 0)),
        (pod({"phase": "Running", "containerStatuses": [ready()]}), ("Running", "1/1", 0)),
        (pod({"phase": "Failed", "reason": "Evicted"}), ("Evicted", "0/1", 0)),
        (
            pod({"phase": "Running", "containerStatuses": [waiting("CrashLoopBackOff", restarts=4)]}),
            ("CrashLoopBackOff", "0/1", 4),
        ),
        # the first container in spec order with a problem names the STATUS
        (
            pod(
                {"phase": "Running", "containerStatuses": [waiting("ErrImagePull"), waiting("A", name="c1")]},
                containers=2,
            ),
            ("ErrImagePull", "0/2", 0),
        ),
        (pod({"phase": "Failed", "containerStatuses": [terminated(exitCode=3)]}), ("ExitCode:3", "0/1", 0)),
        (pod({"phase": "Failed", "containerStatuses": [terminated(signal=9)]}), ("Signal:9", "0/1", 0)),
        (
            pod({"phase": "Failed", "containerStatuses": [terminated(reason="OOMKilled")]}),
            ("OOMKilled", "0/1", 0),
        ),
    ],
)
def test_app_containers(obj: Any, expected: tuple[str, str, int]) -> None:
    assert cells(obj) == expected


@pytest.mark.parametrize(
    ("init_statuses", "expected"),
    [
        ([{"name": "init0", "restartCount": 1, "state": {}}], "Init:0/2"),
        ([terminated("init0", exitCode=0), {"name": "init1", "state": {}}], "Init:1/2"),
        ([waiting("PodInitializing", name="init0")], "Init:0/2"),
        ([waiting("ErrImagePull", name="init0")], "Init:ErrImagePull"),
        ([terminated("init0", exitCode=1, reason="Error")], "Init:Error"),
        ([terminated("init0", exitCode=2)], "Init:ExitCode:2"),
        ([terminated("init0", exitCode=137, signal=9)], "Init:Signal:9"),
    ],
)
def test_init_containers(init_statuses: list[dict[str, Any]], expected: str) -> None:
    obj = pod(
        {"phase": "Pending", "initContainerStatuses": init_statuses, "containerStatuses": [ready()]}, init=2
    )
    summary = podstatus.summarize(obj)
    assert summary.reason == expected
    assert summary.ready == 0  # app containers are not looked at while initialising


def test_initialized_condition_reads_the_app_containers() -> None:
    """With the Initialized condition the app containers are read even if an init container looks
    unfinished: a problem there names the STATUS, and ready ones count."""
    status = {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [{"name": "init0", "state": {}}],
        "containerStatuses": [ready()],
    }
    assert cells(pod(status, init=1)) == ("Init:0/1", "1/1", 0)
    status["containerStatuses"] = [waiting("CrashLoopBackOff", restarts=2)]
    assert cells(pod(status, init=1)) == ("CrashLoopBackOff", "0/1", 2)


def test_sidecars_count_as_running_containers() -> None:
    """Restartable init containers that started are ready containers out of (app + sidecar) total; their
    restarts stay in the total once the app containers are read."""
    status = {
        "phase": "Running",
        "initContainerStatuses": [
            terminated("init0", exitCode=0),
            {
                **ready("side0", restarts=2),
                "lastState": {"terminated": {"finishedAt": "2024-01-01T00:05:00Z"}},
            },
        ],
        "containerStatuses": [ready()],
    }
    summary = podstatus.summarize(pod(status, init=1, sidecars=1))
    assert (summary.reason, summary.ready_text, summary.restarts) == ("Running", "2/2", 2)
    assert summary.last_restart == datetime.datetime(2024, 1, 1, 0, 5, tzinfo=datetime.UTC)


def test_not_started_sidecar_holds_initialisation() -> None:
    status = {"phase": "Pending", "initContainerStatuses": [waiting("ContainerCreating", name="side0")]}
    assert cells(pod(status, sidecars=1)) == ("Init:ContainerCreating", "0/2", 0)


def test_restarts_and_the_last_restart() -> None:
    """Restart counts add up; the last restart is the latest ``lastState.terminated.finishedAt``
    (nanoseconds accepted)."""
    first = {**ready("c0", restarts=1), "lastState": {"terminated": {"finishedAt": "2024-01-01T00:01:00Z"}}}
    second = {
        **waiting("CrashLoopBackOff", name="c1", restarts=3),
        "lastState": {"terminated": {"finishedAt": "2024-01-01T00:02:00.123456789Z"}},
    }
    summary = podstatus.summarize(
        pod({"phase": "Running", "containerStatuses": [first, second]}, containers=2)
    )
    assert (summary.reason, summary.ready_text, summary.restarts) == ("CrashLoopBackOff", "1/2", 4)
    assert summary.last_restart == datetime.datetime(2024, 1, 1, 0, 2, 0, 123456, tzinfo=datetime.UTC)
    assert podstatus.summarize(pod({"phase": "Running"})).last_restart is None


@pytest.mark.parametrize(
    ("conditions", "expected"), [([{"type": "Ready", "status": "True"}], "Running"), ([], "NotReady")]
)
def test_completed_with_a_running_container(conditions: list[dict[str, Any]], expected: str) -> None:
    status = {
        "phase": "Running",
        "conditions": conditions,
        "containerStatuses": [ready("c0"), terminated("c1", exitCode=0, reason="Completed")],
    }
    assert podstatus.summarize(pod(status, containers=2)).reason == expected


def test_scheduling_gated() -> None:
    status = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    }
    assert podstatus.summarize(pod(status)).reason == "SchedulingGated"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Running", "containerStatuses": [ready()]}, "Terminating"),
        ({"phase": "Running", "reason": "NodeLost"}, "Unknown"),
        (
            {"phase": "Succeeded", "containerStatuses": [terminated(exitCode=0, reason="Completed")]},
            "Completed",
        ),
        ({"phase": "Failed"}, "Failed"),
    ],
)
def test_deleted_pods(status: dict[str, Any], expected: str) -> None:
    """A Pod being deleted is Terminating unless it already finished; Unknown when its node is lost."""
    assert podstatus.summarize(pod(status, deletionTimestamp="2024-01-01T00:00:00Z")).reason == expected
