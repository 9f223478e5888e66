"""Built-in health checks, the override registry and the Application roll-up, on realistic objects.

Messages are compared verbatim: users read them in ``argocd app get`` and in our status, so they must be
Argo CD's own.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tugboat.gitops import health
from tugboat.gitops.health import HealthStatus
from tugboat.gitops.resourcekey import ResourceKey


def deployment(**status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "guestbook-ui", "namespace": "guestbook", "generation": 2},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "guestbook-ui"}},
            "template": {
                "metadata": {"labels": {"app": "guestbook-ui"}},
                "spec": {
                    "containers": [
                        {"name": "guestbook-ui", "image": "gcr.io/heptio-images/ks-guestbook-demo:0.2"}
                    ]
                },
            },
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }
    obj["status"].update(status)
    return obj


def check(obj: dict[str, Any]) -> HealthStatus | None:
    return health.health_of(obj)


# ---------------------------------------------------------------------------------------------------
# Deployment


def test_deployment_rolled_out_is_healthy() -> None:
    assert check(deployment()) == HealthStatus("Healthy")


def test_deployment_paused_is_suspended() -> None:
    obj = deployment()
    obj["spec"]["paused"] = True
    assert check(obj) == HealthStatus("Suspended", "Deployment is paused")


def test_deployment_generation_not_observed() -> None:
    assert check(deployment(observedGeneration=1)) == HealthStatus(
        "Progressing",
        "Waiting for rollout to finish: observed deployment generation less than desired generation",
    )


def test_deployment_progress_deadline_exceeded_is_degraded() -> None:
    obj = deployment(
        updatedReplicas=1,
        availableReplicas=1,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "guestbook-ui-6b8cf6f7db" has timed out progressing.',
            }
        ],
    )
    assert check(obj) == HealthStatus("Degraded", 'Deployment "guestbook-ui" exceeded its progress deadline')


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            {"updatedReplicas": 1},
            "Waiting for rollout to finish: 1 out of 2 new replicas have been updated...",
        ),
        (
            {"replicas": 3, "updatedReplicas": 2},
            "Waiting for rollout to finish: 1 old replicas are pending termination...",
        ),
        (
            {"availableReplicas": 1},
            "Waiting for rollout to finish: 1 of 2 updated replicas are available...",
        ),
    ],
)
def test_deployment_rollout_waiting_messages(status: dict[str, Any], message: str) -> None:
    assert check(deployment(**status)) == HealthStatus("Progressing", message)


def test_deployment_malformed_status_is_unknown() -> None:
    result = check(deployment(replicas="two"))
    assert result is not None and result.status == "Unknown"
    assert "status.replicas" in result.message


# ---------------------------------------------------------------------------------------------------
# StatefulSet, DaemonSet, ReplicaSet


def statefulset(**status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "generation": 1},
        "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}},
        "status": {
            "observedGeneration": 1,
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "currentRevision": "db-7b4c9",
            "updateRevision": "db-7b4c9",
        },
    }
    obj["status"].update(status)
    return obj


def test_statefulset_states() -> None:
    assert check(statefulset(observedGeneration=0)) == HealthStatus(
        "Progressing", "Waiting for statefulset spec update to be observed..."
    )
    assert check(statefulset(readyReplicas=1)) == HealthStatus(
        "Progressing", "Waiting for 2 pods to be ready..."
    )
    assert check(statefulset(updateRevision="db-9f00a", updatedReplicas=1)) == HealthStatus(
        "Progressing", "waiting for statefulset rolling update to complete 1 pods at revision db-9f00a..."
    )
    assert check(statefulset()) == HealthStatus(
        "Healthy", "statefulset rolling update complete 3 pods at revision db-7b4c9..."
    )
    partitioned = statefulset(updatedReplicas=0)
    partitioned["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert check(partitioned) == HealthStatus(
        "Progressing", "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated..."
    )
    partitioned["status"]["updatedReplicas"] = 1
    assert check(partitioned) == HealthStatus(
        "Healthy", "partitioned roll out complete: 1 new pods have been updated..."
    )
    on_delete = statefulset(updateRevision="db-9f00a")
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert check(on_delete) == HealthStatus("Healthy", "statefulset has 3 ready pods")


def daemonset(**status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "fluentd", "namespace": "kube-system", "generation": 4},
        "spec": {"updateStrategy": {"type": "RollingUpdate"}},
        "status": {
            "observedGeneration": 4,
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberAvailable": 3,
            "numberReady": 3,
        },
    }
    obj["status"].update(status)
    return obj


def test_daemonset_states() -> None:
    assert check(daemonset()) == HealthStatus("Healthy")
    assert check(daemonset(observedGeneration=3)) == HealthStatus(
        "Progressing",
        "Waiting for rollout to finish: observed daemon set generation less than desired generation",
    )
    assert check(daemonset(updatedNumberScheduled=1)) == HealthStatus(
        "Progressing",
        'Waiting for daemon set "fluentd" rollout to finish: 1 out of 3 new pods have been updated...',
    )
    assert check(daemonset(numberAvailable=2)) == HealthStatus(
        "Progressing",
        'Waiting for daemon set "fluentd" rollout to finish: 2 of 3 updated pods are available...',
    )
    on_delete = daemonset(updatedNumberScheduled=1)
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert check(on_delete) == HealthStatus("Healthy", "daemon set 1 out of 3 new pods have been updated")


def replicaset(**status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "frontend", "namespace": "default", "generation": 1},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3},
    }
    obj["status"].update(status)
    return obj


def test_replicaset_states() -> None:
    assert check(replicaset()) == HealthStatus("Healthy")
    assert check(replicaset(availableReplicas=1)) == HealthStatus(
        "Progressing", "Waiting for rollout to finish: 1 out of 3 new replicas are available..."
    )
    failing = replicaset(
        availableReplicas=0,
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "frontend-" is forbidden: exceeded quota',
            }
        ],
    )
    assert check(failing) == HealthStatus("Degraded", 'pods "frontend-" is forbidden: exceeded quota')
    assert check(replicaset(observedGeneration=0)) == HealthStatus(
        "Progressing",
        "Waiting for rollout to finish: observed replica set generation less than desired generation",
    )


# ---------------------------------------------------------------------------------------------------
# Pod


def pod(phase: str, *, restart_policy: str = "Always", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-5d8f7b6c4-x2x7q", "namespace": "default"},
        "spec": {"restartPolicy": restart_policy, "containers": [{"name": "main", "image": "nginx"}]},
        "status": {"phase": phase, **status},
    }


def test_pod_crashloop_and_image_pull_backoff_are_degraded() -> None:
    crashing = pod(
        "Running",
        containerStatuses=[
            {
                "name": "main",
                "ready": False,
                "restartCount": 5,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 5m0s restarting failed container=main pod=web-5d8f7b6c4-x2x7q",
                    }
                },
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
    )
    assert check(crashing) == HealthStatus(
        "Degraded", "back-off 5m0s restarting failed container=main pod=web-5d8f7b6c4-x2x7q"
    )
    pulling = pod(
        "Pending",
        containerStatuses=[
            {
                "name": "main",
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "nginx:nope"',
                    }
                },
            }
        ],
    )
    assert check(pulling) == HealthStatus("Degraded", 'Back-off pulling image "nginx:nope"')


def test_pod_hook_with_backoff_is_not_failed_early() -> None:
    # A Never/OnFailure pod (typically a hook) may still recover: Pending stays Progressing.
    pulling = pod(
        "Pending",
        restart_policy="Never",
        containerStatuses=[
            {"name": "main", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "x"}}}
        ],
    )
    assert check(pulling) == HealthStatus("Progressing")
    # ...unless the ignore-restart-policy annotation says to judge it like a long-running pod.
    pulling["metadata"]["annotations"] = {"argocd.argoproj.io/ignore-restart-policy": "true"}
    assert check(pulling) == HealthStatus("Degraded", "x")
    # A hook keeps the hook semantics even with the annotation.
    pulling["metadata"]["annotations"]["argocd.argoproj.io/hook"] = "PreSync"
    assert check(pulling) == HealthStatus("Progressing")


def test_pod_phases() -> None:
    ready = pod("Running", conditions=[{"type": "Ready", "status": "True"}])
    assert check(ready) == HealthStatus("Healthy")
    assert check(pod("Running", conditions=[{"type": "Ready", "status": "False"}])) == HealthStatus(
        "Progressing"
    )
    restarted = pod(
        "Running",
        conditions=[{"type": "Ready", "status": "False"}],
        containerStatuses=[
            {"name": "main", "lastState": {"terminated": {"exitCode": 137}}, "state": {"running": {}}}
        ],
    )
    assert check(restarted) == HealthStatus("Degraded")
    assert check(pod("Pending", message="0/3 nodes are available")) == HealthStatus(
        "Progressing", "0/3 nodes are available"
    )
    assert check(pod("Succeeded", restart_policy="Never")) == HealthStatus("Healthy")
    assert check(pod("Running", restart_policy="OnFailure")) == HealthStatus("Progressing")
    assert check(pod("Unknown")) == HealthStatus("Unknown")


def test_pod_failed_messages() -> None:
    assert check(pod("Failed", restart_policy="Never", message="Pod was evicted")) == HealthStatus(
        "Degraded", "Pod was evicted"
    )
    exited = pod(
        "Failed",
        restart_policy="Never",
        containerStatuses=[{"name": "main", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}],
    )
    assert check(exited) == HealthStatus("Degraded", 'container "main" failed with exit code 2')
    oom = pod(
        "Failed",
        restart_policy="Never",
        initContainerStatuses=[
            {"name": "init", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
        ],
    )
    assert check(oom) == HealthStatus("Degraded", "OOMKilled")


# ---------------------------------------------------------------------------------------------------
# Job, CronJob, PVC, Service, Ingress, HPA, APIService


def job(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "upgrade-sql-schema", "namespace": "default"},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "y"}]}}
        },
        "status": {"conditions": list(conditions)} if conditions else {"active": 1},
    }


def test_job_states() -> None:
    assert check(job()) == HealthStatus("Progressing")
    assert check(job({"type": "Complete", "status": "True"})) == HealthStatus("Healthy")
    assert check(
        job(
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        )
    ) == HealthStatus("Degraded", "Job has reached the specified backoff limit")
    assert check(
        job({"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"})
    ) == HealthStatus("Suspended", "Job suspended")


def test_cronjob_states() -> None:
    cron: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {},
    }
    assert check(cron) == HealthStatus("Progressing", "Waiting for CronJob")
    cron["status"] = {
        "lastScheduleTime": "2026-01-01T10:00:00Z",
        "lastSuccessfulTime": "2026-01-01T09:00:00Z",
    }
    assert check(cron) == HealthStatus(
        "Degraded", "CronJob has not completed its last execution successfully"
    )
    cron["status"]["lastSuccessfulTime"] = "2026-01-01T10:00:05Z"
    assert check(cron) == HealthStatus("Healthy", "CronJob has completed its last execution successfully")
    cron["spec"]["suspend"] = True
    assert check(cron) == HealthStatus("Suspended", "CronJob is Suspended")


@pytest.mark.parametrize(
    ("phase", "expected"),
    [("Bound", "Healthy"), ("Pending", "Progressing"), ("Lost", "Degraded"), ("Weird", "Unknown")],
)
def test_pvc(phase: str, expected: str) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase},
    }
    assert check(pvc) == HealthStatus(expected)


def test_service_and_ingress_load_balancers() -> None:
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "guestbook-ui"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80, "targetPort": 80}]},
    }
    assert check(service) == HealthStatus("Healthy")
    service["spec"]["type"] = "LoadBalancer"
    service["status"] = {"loadBalancer": {}}
    assert check(service) == HealthStatus("Progressing")
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    assert check(service) == HealthStatus("Healthy")

    for api_version in ("networking.k8s.io/v1", "extensions/v1beta1"):
        ingress: dict[str, Any] = {
            "apiVersion": api_version,
            "kind": "Ingress",
            "metadata": {"name": "front-end"},
            "spec": {"rules": [{"http": {"paths": []}}]},
            "status": {"loadBalancer": {}},
        }
        assert check(ingress) == HealthStatus("Progressing")
        ingress["status"]["loadBalancer"]["ingress"] = [{"hostname": "lb.example.com"}]
        assert check(ingress) == HealthStatus("Healthy")


def hpa(api_version: str = "autoscaling/v2", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "annotations": extra.pop("annotations", {})},
        "spec": {"minReplicas": 1, "maxReplicas": 5},
        "status": extra,
    }


def test_hpa_states() -> None:
    assert check(hpa()) == HealthStatus("Progressing", "Waiting to Autoscale")
    healthy = hpa(
        conditions=[
            {
                "type": "AbleToScale",
                "status": "True",
                "reason": "ReadyForNewScale",
                "message": "recommended size matches current size",
            },
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
        ]
    )
    assert check(healthy) == HealthStatus("Healthy", "recommended size matches current size")
    degraded = hpa(
        conditions=[
            {
                "type": "ScalingActive",
                "status": "False",
                "reason": "FailedGetResourceMetric",
                "message": "the HPA was unable to compute the replica count: missing request for cpu",
            },
            {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
        ]
    )
    assert check(degraded) == HealthStatus(
        "Degraded", "the HPA was unable to compute the replica count: missing request for cpu"
    )
    v1 = hpa(
        "autoscaling/v1",
        annotations={
            "autoscaling.alpha.kubernetes.io/conditions": json.dumps(
                [{"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale", "message": "ok"}]
            )
        },
    )
    assert check(v1) == HealthStatus("Healthy", "ok")
    assert check(hpa("autoscaling/v1")) == HealthStatus("Progressing", "Waiting to Autoscale")
    broken = hpa("autoscaling/v1", annotations={"autoscaling.alpha.kubernetes.io/conditions": "{not json"})
    result = check(broken)
    assert result is not None and result.status == "Unknown"
    assert "failed to convert conditions annotation to typed" in result.message


def test_apiservice() -> None:
    api: dict[str, Any] = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {},
    }
    assert check(api) == HealthStatus("Progressing", "Waiting to be processed")
    api["status"] = {
        "conditions": [
            {
                "type": "Available",
                "status": "False",
                "reason": "MissingEndpoints",
                "message": 'endpoints for service/metrics-server in "kube-system" have no addresses',
            }
        ]
    }
    assert check(api) == HealthStatus(
        "Progressing",
        'MissingEndpoints: endpoints for service/metrics-server in "kube-system" have no addresses',
    )
    api["status"]["conditions"][0].update(status="True", reason="Passed", message="all checks passed")
    assert check(api) == HealthStatus("Healthy", "Passed: all checks passed")


# ---------------------------------------------------------------------------------------------------
# argoproj.io


def rollout(**status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "bluegreen-demo", "namespace": "default", "generation": 3},
        "spec": {
            "replicas": 2,
            "strategy": {"blueGreen": {"activeService": "active", "previewService": "preview"}},
        },
        "status": {"observedGeneration": "3", "currentPodHash": "6b8cf6f7db", "replicas": 2},
    }
    obj["status"].update(status)
    return obj


@pytest.mark.parametrize(
    ("phase", "message", "expected"),
    [
        ("Healthy", "", HealthStatus("Healthy")),
        (
            "Progressing",
            "more replicas need to be updated",
            HealthStatus("Progressing", "more replicas need to be updated"),
        ),
        (
            "Degraded",
            "RolloutAborted: Rollout aborted update to revision 3",
            HealthStatus("Degraded", "RolloutAborted: Rollout aborted update to revision 3"),
        ),
        ("Paused", "BlueGreenPause", HealthStatus("Suspended", "BlueGreenPause")),
    ],
)
def test_rollout_phase(phase: str, message: str, expected: HealthStatus) -> None:
    assert check(rollout(phase=phase, message=message)) == expected


def test_rollout_generation_not_observed() -> None:
    waiting = HealthStatus("Progressing", "Waiting for rollout spec update to be observed")
    assert check(rollout(observedGeneration="2", phase="Healthy")) == waiting
    no_status = rollout()
    del no_status["status"]
    assert check(no_status) == waiting
    # Numeric observedGeneration works too; a pre-v0.10 hash is treated as observed.
    assert check(rollout(observedGeneration=3, phase="Healthy")) == HealthStatus("Healthy")
    assert check(rollout(observedGeneration="7d9f8b6c5", phase="Healthy")) == HealthStatus("Healthy")
    # workloadRef: the referenced Deployment's generation must be observed as well.
    ref = rollout(phase="Healthy", workloadObservedGeneration="1")
    ref["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    ref["metadata"]["annotations"] = {"rollout.argoproj.io/workload-generation": "2"}
    assert check(ref) == waiting
    ref["status"]["workloadObservedGeneration"] = "2"
    assert check(ref) == HealthStatus("Healthy")


def test_rollout_without_phase_uses_legacy_rules() -> None:
    paused = rollout(pauseConditions=[{"reason": "BlueGreenPause", "startTime": "2026-01-01T00:00:00Z"}])
    assert check(paused) == HealthStatus("Suspended", "Rollout is paused")
    invalid = rollout(
        conditions=[{"type": "InvalidSpec", "status": "True", "message": "The Rollout is invalid"}]
    )
    assert check(invalid) == HealthStatus("Degraded", "The Rollout is invalid")
    assert check(rollout(updatedReplicas=1, availableReplicas=1)) == HealthStatus(
        "Progressing", "Waiting for roll out to finish: More replicas need to be updated"
    )
    cutover = rollout(updatedReplicas=2, availableReplicas=2, blueGreen={"activeSelector": "old"})
    assert check(cutover) == HealthStatus("Progressing", "active service cutover pending")
    done = rollout(
        updatedReplicas=2,
        availableReplicas=2,
        blueGreen={"activeSelector": "6b8cf6f7db"},
        stableRS="6b8cf6f7db",
    )
    assert check(done) == HealthStatus("Healthy")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            None,
            HealthStatus(
                "Progressing", "Waiting for analysis run to finish: status has not been reconciled."
            ),
        ),
        ({"phase": "Running"}, HealthStatus("Progressing", "Analysis run is running")),
        ({"phase": "Successful"}, HealthStatus("Healthy", "Analysis run completed successfully")),
        (
            {"phase": "Failed", "message": 'Metric "success-rate" assessed Failed'},
            HealthStatus("Degraded", 'Metric "success-rate" assessed Failed'),
        ),
        ({"phase": "Error"}, HealthStatus("Degraded", "Analysis run had an error")),
        ({"phase": "Inconclusive"}, HealthStatus("Unknown", "Analysis run was inconclusive")),
    ],
)
def test_analysisrun(status: dict[str, Any] | None, expected: HealthStatus) -> None:
    run: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "a"},
    }
    if status is not None:
        run["status"] = status
    assert check(run) == expected


def test_workflow() -> None:
    wf: dict[str, Any] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"}}
    assert check(wf) == HealthStatus("Progressing")
    wf["status"] = {"phase": "Failed", "message": "child 'w-1' failed"}
    assert check(wf) == HealthStatus("Degraded", "child 'w-1' failed")
    wf["status"] = {"phase": "Succeeded"}
    assert check(wf) == HealthStatus("Healthy")


def child_app(status: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "example.guestbook", "namespace": "argocd"},
        "spec": {},
    }
    if status is not None:
        obj["status"] = {"health": {"status": status, "message": "from child"}}
    return obj


def test_application_health_follows_the_child() -> None:
    assert check(child_app(None)) == HealthStatus("Progressing")
    assert check(child_app("Degraded")) == HealthStatus("Degraded", "from child")
    # Argo CD's stock behaviour (no health for child Applications) is one switch away.
    assert health.HealthChecks(application_health=False).health_of(child_app("Degraded")) is None


# ---------------------------------------------------------------------------------------------------
# Generic rules and the registry


def test_kinds_without_health_return_none() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    assert check(cm) is None
    # Deployments are only checked in the apps group.
    legacy = deployment()
    legacy["apiVersion"] = "extensions/v1beta1"
    assert check(legacy) is None


def test_pending_deletion_unless_hook_finalizer() -> None:
    obj = deployment()
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert check(obj) == HealthStatus("Progressing", "Pending deletion")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "deletionTimestamp": "x"}}
    assert check(cm) == HealthStatus("Progressing", "Pending deletion")
    hook = job({"type": "Complete", "status": "True"})
    hook["metadata"].update(deletionTimestamp="x", finalizers=["argocd.argoproj.io/hook-finalizer"])
    assert check(hook) == HealthStatus("Healthy")


def test_severity_order() -> None:
    assert health.ORDER == ("Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown")
    assert health.is_worse("Healthy", "Suspended")
    assert health.is_worse("Progressing", "Missing")
    assert health.is_worse("Missing", "Degraded")
    assert health.is_worse("Degraded", "Unknown")
    assert not health.is_worse("Degraded", "Progressing")
    assert not health.is_worse("Healthy", "Healthy")
    assert not health.is_worse("Healthy", "Bogus")  # unknown codes rank as Healthy, as in IsWorse


def test_override_wins_over_builtin_and_none_defers() -> None:
    calls: list[str] = []

    def always_healthy(obj: Any) -> HealthStatus:
        calls.append(obj["metadata"]["name"])
        return HealthStatus("Healthy", "custom")

    checks = health.HealthChecks({("apps", "Deployment"): always_healthy})
    paused = deployment()
    paused["spec"]["paused"] = True
    assert checks.health_of(paused) == HealthStatus("Healthy", "custom")
    assert calls == ["guestbook-ui"]

    deferring = health.HealthChecks({("apps", "Deployment"): lambda obj: None})
    assert deferring.health_of(paused) == HealthStatus("Suspended", "Deployment is paused")


def test_wildcard_override_and_new_kinds() -> None:
    def ready(obj: Any) -> HealthStatus:
        return HealthStatus("Healthy" if obj.get("status", {}).get("ready") else "Progressing")

    checks = health.HealthChecks({("*.crossplane.io", "*"): ready})
    bucket = {"apiVersion": "s3.aws.crossplane.io/v1beta1", "kind": "Bucket", "metadata": {"name": "b"}}
    assert checks.has_check("s3.aws.crossplane.io", "Bucket")
    assert checks.health_of(bucket) == HealthStatus("Progressing")
    bucket["status"] = {"ready": True}
    assert checks.health_of(bucket) == HealthStatus("Healthy")
    # An exact override beats a wildcard one.
    checks.register("s3.aws.crossplane.io", "Bucket", lambda obj: HealthStatus("Degraded", "exact"))
    assert checks.health_of(bucket) == HealthStatus("Degraded", "exact")
    assert not checks.has_check("", "ConfigMap")


def test_failing_override_gives_unknown() -> None:
    def broken(obj: Any) -> HealthStatus:
        raise KeyError("status")

    checks = health.HealthChecks({("apps", "Deployment"): broken})
    result = checks.health_of(deployment())
    assert result is not None and result.status == "Unknown"
    assert "KeyError" in result.message


def test_checks_do_not_modify_objects() -> None:
    objects = [deployment(), statefulset(), pod("Running"), rollout(phase="Paused"), hpa()]
    before = copy.deepcopy(objects)
    for obj in objects:
        check(obj)
    assert objects == before


def test_to_dict() -> None:
    assert HealthStatus("Healthy").to_dict() == {"status": "Healthy"}
    assert HealthStatus("Degraded", "boom").to_dict() == {"status": "Degraded", "message": "boom"}


# ---------------------------------------------------------------------------------------------------
# Aggregation


def resource(
    obj: dict[str, Any] | None, *, hook: bool = False
) -> tuple[dict[str, Any] | None, HealthStatus | None, bool]:
    return obj, (health.health_of(obj) if obj is not None else HealthStatus("Missing")), hook


def configmap(name: str = "c") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "guestbook"}}


def test_aggregate_worst_wins_and_names_causes() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "guestbook-ui", "namespace": "guestbook"},
        "spec": {},
    }
    result = health.aggregate(
        [resource(deployment(availableReplicas=1)), resource(service), resource(configmap())]
    )
    assert result == HealthStatus("Progressing", "apps/Deployment:guestbook/guestbook-ui")
    degraded_pod = pod("Failed", restart_policy="Never")
    result = health.aggregate([resource(deployment(availableReplicas=1)), resource(degraded_pod)])
    assert result.status == "Degraded"
    assert result.message == "Pod:default/web-5d8f7b6c4-x2x7q"
    assert health.aggregate([resource(deployment()), resource(service)]) == HealthStatus("Healthy")


def test_aggregate_skips_hooks_no_health_and_ignored() -> None:
    failed_hook = job({"type": "Failed", "status": "True", "message": "boom"})
    assert health.aggregate([resource(deployment()), resource(failed_hook, hook=True)]) == HealthStatus(
        "Healthy"
    )
    assert health.aggregate([resource(configmap())]) == HealthStatus("Healthy")
    ignored = deployment(availableReplicas=0)
    ignored["metadata"]["annotations"] = {"argocd.argoproj.io/ignore-healthcheck": "true"}
    assert health.aggregate([resource(ignored), resource(configmap())]) == HealthStatus("Healthy")
    assert health.aggregate([]) == HealthStatus("Healthy")


def test_aggregate_missing_only_when_everything_is_missing() -> None:
    # One missing resource does not lower the health (OutOfSync says it already).
    assert health.aggregate([resource(None), resource(deployment())]) == HealthStatus("Healthy")
    assert (
        health.aggregate([resource(None), resource(deployment(availableReplicas=1))]).status == "Progressing"
    )
    # All missing (before the first sync): Missing; hooks don't count as resources.
    assert health.aggregate([resource(None), resource(None)]) == HealthStatus("Missing")
    assert health.aggregate([resource(None), resource(job(), hook=True)]) == HealthStatus("Missing")
    # Only hooks: nothing to be missing.
    assert health.aggregate([resource(None, hook=True)]) == HealthStatus("Healthy")


def test_aggregate_child_applications() -> None:
    children = [
        resource(child_app("Healthy")),
        resource(child_app("Unknown")),
        resource(child_app("Missing")),
    ]
    assert health.aggregate(children) == HealthStatus("Healthy")
    children.append(resource(child_app("Degraded")))
    assert health.aggregate(children) == HealthStatus(
        "Degraded", "argoproj.io/Application:argocd/example.guestbook"
    )


def test_aggregate_skips_the_application_itself() -> None:
    me = child_app("Degraded")
    assert health.aggregate([resource(me)], self_key=ResourceKey.of(me)) == HealthStatus("Healthy")
