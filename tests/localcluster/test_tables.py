"""Server-side Tables: the cells ``kubectl get`` prints for built-ins and custom resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tugboat.localcluster import tables
from tugboat.localcluster.tables import Column

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: float = 600, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "creationTimestamp": ago(age),
        **extra,
    }


def row(group: str, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The row keyed by column name, after checking it lines up with the columns and is JSON."""
    columns = tables.columns_for(group, resource)
    cells = tables.row_for(group, resource, obj, NOW)
    assert len(cells) == len(columns)
    json.dumps(cells)
    return {column.name: cell for column, cell in zip(columns, cells, strict=True)}


def names(group: str, resource: str, *, wide: bool = False) -> list[str]:
    return [c.name for c in tables.columns_for(group, resource) if wide or c.priority == 0]


# --------------------------------------------------------------------------------------------------------
# human_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (59.9, "59s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (125 * 60, "125m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600 + 30 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (76 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (45 * 86400, "45d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (733 * 86400, "2y3d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_kubectl(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


# --------------------------------------------------------------------------------------------------------
# Pods


def container(name: str, *, ready: bool = False, restarts: int = 0, **state: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts, "image": "app:1"}
    status["state"] = state.pop("state", {"running": {"startedAt": ago(300)}} if ready else {})
    status.update(state)
    return status


def pod(
    name: str = "web-1",
    *,
    containers: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    init: list[dict[str, Any]] | None = None,
    init_specs: list[dict[str, Any]] | None = None,
    **status: Any,
) -> dict[str, Any]:
    statuses = containers if containers is not None else [container("app", ready=True)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, 3600),
        "spec": {
            "nodeName": "tugboat-worker",
            "containers": [{"name": s["name"], "image": "app:1"} for s in statuses] or [{"name": "app"}],
            "initContainers": init_specs or [{"name": s["name"], "image": "init:1"} for s in init or []],
        },
        "status": {
            "phase": phase,
            "podIP": "10.244.0.7",
            "podIPs": [{"ip": "10.244.0.7"}],
            "containerStatuses": statuses,
            **({"initContainerStatuses": init} if init else {}),
            **status,
        },
    }


def test_pod_columns_and_wide_columns() -> None:
    assert names("", "pods") == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert names("", "pods", wide=True)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    first = tables.columns_for("", "pods")[0]
    assert (first.type, first.format) == ("string", "name")


def test_running_pod() -> None:
    cells = row("", "pods", pod())
    assert cells == {
        "Name": "web-1",
        "Ready": "1/1",
        "Status": "Running",
        "Restarts": "0",
        "Age": "60m",
        "IP": "10.244.0.7",
        "Node": "tugboat-worker",
        "Nominated Node": "<none>",
        "Readiness Gates": "<none>",
    }


def test_crash_looping_pod_shows_restarts_and_when_the_last_one_ended() -> None:
    crashing = container(
        "app",
        restarts=5,
        state={
            "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container"}
        },
        lastState={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(200)}},
    )
    cells = row("", "pods", pod(containers=[crashing, container("proxy", ready=True)]))
    assert cells["Status"] == "CrashLoopBackOff"
    assert cells["Ready"] == "1/2"
    assert cells["Restarts"] == "5 (3m20s ago)"


def test_restarts_sum_over_containers_and_take_the_latest_termination() -> None:
    first = container(
        "a", ready=True, restarts=2, lastState={"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}
    )
    second = container(
        "b", ready=True, restarts=1, lastState={"terminated": {"exitCode": 137, "finishedAt": ago(90)}}
    )
    assert row("", "pods", pod(containers=[first, second]))["Restarts"] == "3 (90s ago)"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ({"waiting": {"reason": "ImagePullBackOff"}}, "ImagePullBackOff"),
        ({"waiting": {"reason": "ErrImagePull"}}, "ErrImagePull"),
        ({"waiting": {"reason": "ContainerCreating"}}, "ContainerCreating"),
        ({"waiting": {"reason": "CreateContainerConfigError"}}, "CreateContainerConfigError"),
        ({"terminated": {"exitCode": 1, "reason": "Error"}}, "Error"),
        ({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, "OOMKilled"),
        ({"terminated": {"exitCode": 137}}, "ExitCode:137"),
        ({"terminated": {"exitCode": 0, "signal": 9}}, "Signal:9"),
    ],
)
def test_container_state_reason_becomes_the_status(state: dict[str, Any], status: str) -> None:
    cells = row("", "pods", pod(containers=[container("app", state=state)], phase="Pending"))
    assert cells["Status"] == status
    assert cells["Ready"] == "0/1"


def test_first_container_with_a_problem_wins() -> None:
    statuses = [
        container("a", state={"waiting": {"reason": "ImagePullBackOff"}}),
        container("b", state={"waiting": {"reason": "CrashLoopBackOff"}}),
    ]
    assert row("", "pods", pod(containers=statuses))["Status"] == "ImagePullBackOff"


def test_completed_job_pod() -> None:
    done = container(
        "job", state={"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(30)}}
    )
    cells = row("", "pods", pod("pi-x7k2p", containers=[done], phase="Succeeded"))
    assert (cells["Ready"], cells["Status"], cells["Restarts"]) == ("0/1", "Completed", "0")


def test_completed_container_next_to_a_running_one_reads_running_or_not_ready() -> None:
    done = container("setup", state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    statuses = [container("app", ready=True), done]
    ready = pod(containers=statuses, conditions=[{"type": "Ready", "status": "True"}])
    assert row("", "pods", ready)["Status"] == "Running"
    assert row("", "pods", pod(containers=statuses))["Status"] == "NotReady"


def test_terminating_pod() -> None:
    obj = pod()
    obj["metadata"]["deletionTimestamp"] = ago(2)
    assert row("", "pods", obj)["Status"] == "Terminating"


def test_a_finished_pod_being_deleted_keeps_its_status() -> None:
    done = container("job", state={"terminated": {"exitCode": 0, "reason": "Completed"}})
    obj = pod(containers=[done], phase="Succeeded")
    obj["metadata"]["deletionTimestamp"] = ago(2)
    assert row("", "pods", obj)["Status"] == "Completed"


def test_pod_on_a_lost_node_being_deleted_is_unknown() -> None:
    obj = pod(reason="NodeLost")
    obj["metadata"]["deletionTimestamp"] = ago(2)
    assert row("", "pods", obj)["Status"] == "Unknown"


def test_pod_waiting_for_its_init_container() -> None:
    init = [container("migrate", state={"running": {"startedAt": ago(5)}})]
    app = [container("app", state={"waiting": {"reason": "PodInitializing"}})]
    cells = row("", "pods", pod(containers=app, init=init, phase="Pending"))
    assert (cells["Ready"], cells["Status"]) == ("0/1", "Init:0/1")


def test_second_init_container_running() -> None:
    init = [
        container("a", state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
        container("b", state={"waiting": {"reason": "PodInitializing"}}),
    ]
    app = [container("app", state={"waiting": {"reason": "PodInitializing"}})]
    assert row("", "pods", pod(containers=app, init=init, phase="Pending"))["Status"] == "Init:1/2"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ({"waiting": {"reason": "CrashLoopBackOff"}}, "Init:CrashLoopBackOff"),
        ({"terminated": {"exitCode": 1, "reason": "Error"}}, "Init:Error"),
        ({"terminated": {"exitCode": 2}}, "Init:ExitCode:2"),
        ({"terminated": {"exitCode": 2, "signal": 15}}, "Init:Signal:15"),
    ],
)
def test_failing_init_container(state: dict[str, Any], status: str) -> None:
    init = [container("migrate", restarts=3, state=state)]
    app = [container("app", state={"waiting": {"reason": "PodInitializing"}})]
    cells = row("", "pods", pod(containers=app, init=init, phase="Pending"))
    assert cells["Status"] == status
    assert cells["Restarts"] == "3"


def test_sidecar_init_containers_count_towards_ready() -> None:
    init_specs = [{"name": "mesh", "image": "envoy", "restartPolicy": "Always"}]
    init = [container("mesh", ready=True, started=True, restarts=1)]
    cells = row(
        "",
        "pods",
        pod(init=init, init_specs=init_specs, conditions=[{"type": "Initialized", "status": "True"}]),
    )
    assert (cells["Ready"], cells["Status"], cells["Restarts"]) == ("2/2", "Running", "1")


def test_pending_pod_without_statuses_and_scheduling_gates() -> None:
    assert row("", "pods", pod(containers=[], phase="Pending"))["Status"] == "Pending"
    gated = pod(
        containers=[],
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert row("", "pods", gated)["Status"] == "SchedulingGated"


def test_status_reason_overrides_the_phase() -> None:
    evicted = pod(containers=[], phase="Failed", reason="Evicted")
    assert row("", "pods", evicted)["Status"] == "Evicted"


def test_pod_readiness_gates_and_unscheduled_wide_cells() -> None:
    obj = pod(conditions=[{"type": "example.com/lb", "status": "True"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "other"}]
    del obj["spec"]["nodeName"]
    del obj["status"]["podIPs"], obj["status"]["podIP"]
    cells = row("", "pods", obj)
    assert (cells["IP"], cells["Node"], cells["Readiness Gates"]) == ("<none>", "<none>", "1/2")


def test_pod_without_a_creation_timestamp_has_unknown_age() -> None:
    obj = pod()
    del obj["metadata"]["creationTimestamp"]
    assert row("", "pods", obj)["Age"] == "<unknown>"


# --------------------------------------------------------------------------------------------------------
# Workloads


def workload(kind: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "envoy", "image": "envoy:1.30"}]
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta(name, 4 * 86400 + 3600),
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template, **spec},
        "status": status,
    }


def test_deployment_two_of_three_ready() -> None:
    obj = workload(
        "Deployment",
        "web",
        {"replicas": 3},
        {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    )
    assert names("apps", "deployments") == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert row("apps", "deployments", obj) == {
        "Name": "web",
        "Ready": "2/3",
        "Up-to-date": 3,
        "Available": 2,
        "Age": "4d1h",
        "Containers": "nginx,envoy",
        "Images": "nginx:1.27,envoy:1.30",
        "Selector": "app=web",
    }


def test_deployment_defaults_and_selector_expressions() -> None:
    obj = workload("Deployment", "api", {}, {})
    obj["spec"]["selector"] = {
        "matchLabels": {"tier": "backend", "app": "api"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "canary"]},
            {"key": "track", "operator": "NotIn", "values": ["legacy"]},
            {"key": "zone", "operator": "Exists"},
            {"key": "debug", "operator": "DoesNotExist"},
        ],
    }
    cells = row("apps", "deployments", obj)
    assert (cells["Ready"], cells["Up-to-date"], cells["Available"]) == ("0/1", 0, 0)
    assert cells["Selector"] == "app=api,!debug,env in (canary,prod),tier=backend,track notin (legacy),zone"


def test_replicaset_statefulset_and_daemonset() -> None:
    rs = workload("ReplicaSet", "web-7d9f", {"replicas": 3}, {"replicas": 3, "readyReplicas": 1})
    assert names("apps", "replicasets") == ["Name", "Desired", "Current", "Ready", "Age"]
    cells = row("apps", "replicasets", rs)
    assert (cells["Desired"], cells["Current"], cells["Ready"], cells["Selector"]) == (
        3,
        3,
        1,
        "app=web-7d9f",
    )

    sts = workload("StatefulSet", "db", {"replicas": 2}, {"readyReplicas": 2})
    assert names("apps", "statefulsets", wide=True) == ["Name", "Ready", "Age", "Containers", "Images"]
    assert row("apps", "statefulsets", sts)["Ready"] == "2/2"

    ds = workload(
        "DaemonSet",
        "agent",
        {},
        {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    )
    assert names("apps", "daemonsets") == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
    ]
    cells = row("apps", "daemonsets", ds)
    assert [cells[n] for n in ("Desired", "Current", "Ready", "Up-to-date", "Available")] == [3, 3, 2, 3, 2]
    assert cells["Node Selector"] == "<none>"
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/os": "linux"}
    assert row("apps", "daemonsets", ds)["Node Selector"] == "kubernetes.io/os=linux"


def test_controller_revision_names_its_owner() -> None:
    obj = {
        "metadata": meta(
            "db-5c6f7",
            ownerReferences=[
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": True}
            ],
        ),
        "revision": 2,
    }
    cells = row("apps", "controllerrevisions", obj)
    assert (cells["Controller"], cells["Revision"]) == ("statefulset.apps/db", 2)


def job(conditions: list[dict[str, str]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta("pi", 900),
        "spec": {
            "completions": 3,
            "parallelism": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}},
        },
        "status": {"conditions": conditions or [], **status},
    }


def test_running_job() -> None:
    cells = row("batch", "jobs", job(startTime=ago(200), succeeded=1, active=1))
    assert names("batch", "jobs") == ["Name", "Status", "Completions", "Duration", "Age"]
    assert (cells["Status"], cells["Completions"], cells["Duration"], cells["Age"]) == (
        "Running",
        "1/3",
        "3m20s",
        "15m",
    )
    assert cells["Selector"] == "batch.kubernetes.io/controller-uid=u1"


def test_complete_failed_and_suspended_jobs() -> None:
    complete = job(
        [{"type": "Complete", "status": "True"}], startTime=ago(800), completionTime=ago(770), succeeded=3
    )
    assert row("batch", "jobs", complete)["Status"] == "Complete"
    assert row("batch", "jobs", complete)["Duration"] == "30s"
    failed = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], startTime=ago(60))
    assert row("batch", "jobs", failed)["Status"] == "Failed"
    suspended = job([{"type": "Suspended", "status": "True"}])
    assert row("batch", "jobs", suspended)["Status"] == "Suspended"
    assert row("batch", "jobs", suspended)["Duration"] == ""
    not_suspended = job([{"type": "Suspended", "status": "False"}])
    assert row("batch", "jobs", not_suspended)["Status"] == "Running"


def test_job_completions_without_a_completion_count() -> None:
    obj = job(succeeded=0)
    del obj["spec"]["completions"]
    assert row("batch", "jobs", obj)["Completions"] == "0/1"
    obj["spec"]["parallelism"] = 4
    assert row("batch", "jobs", obj)["Completions"] == "0/1 of 4"


def test_cronjob() -> None:
    obj = {
        "metadata": meta("backup", 86400 * 3),
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}
            },
        },
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(65)},
    }
    assert names("batch", "cronjobs") == [
        "Name",
        "Schedule",
        "Timezone",
        "Suspend",
        "Active",
        "Last Schedule",
        "Age",
    ]
    cells = row("batch", "cronjobs", obj)
    assert [cells[n] for n in ("Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age")] == [
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "65s",
        "3d",
    ]
    obj["spec"].update(suspend=True, timeZone="Europe/Paris")
    del obj["status"]
    cells = row("batch", "cronjobs", obj)
    assert [cells[n] for n in ("Timezone", "Suspend", "Active", "Last Schedule")] == [
        "Europe/Paris",
        "True",
        0,
        "<none>",
    ]


# --------------------------------------------------------------------------------------------------------
# Services and networking


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("web"), "spec": {"selector": {"app": "web"}, **spec}, "status": status or {}}


def test_cluster_ip_service() -> None:
    obj = service(
        {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"port": 53, "protocol": "UDP"}],
        }
    )
    assert names("", "services") == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
    assert row("", "services", obj) == {
        "Name": "web",
        "Type": "ClusterIP",
        "Cluster-IP": "10.96.0.10",
        "External-IP": "<none>",
        "Port(s)": "80/TCP,53/UDP",
        "Age": "10m",
        "Selector": "app=web",
    }


def test_node_port_and_headless_services() -> None:
    node_port = service(
        {"type": "NodePort", "clusterIP": "10.96.3.4", "ports": [{"port": 80, "nodePort": 30080}]}
    )
    cells = row("", "services", node_port)
    assert (cells["Type"], cells["Cluster-IP"], cells["Port(s)"]) == ("NodePort", "10.96.3.4", "80:30080/TCP")
    headless = service({"clusterIP": "None", "clusterIPs": ["None"], "selector": {}})
    cells = row("", "services", headless)
    assert (cells["Type"], cells["Cluster-IP"], cells["Port(s)"], cells["Selector"]) == (
        "ClusterIP",
        "None",
        "<none>",
        "<none>",
    )


def test_load_balancer_service_pending_then_assigned() -> None:
    spec = {"type": "LoadBalancer", "clusterIP": "10.96.1.2", "ports": [{"port": 443, "nodePort": 31443}]}
    assert row("", "services", service(spec))["External-IP"] == "<pending>"
    assigned = service(
        spec, {"loadBalancer": {"ingress": [{"ip": "172.18.0.5"}, {"hostname": "lb.example"}]}}
    )
    cells = row("", "services", assigned)
    assert (cells["External-IP"], cells["Port(s)"]) == ("172.18.0.5,lb.example", "443:31443/TCP")
    with_external = service({**spec, "externalIPs": ["203.0.113.9"]})
    assert row("", "services", with_external)["External-IP"] == "203.0.113.9"


def test_external_name_service() -> None:
    cells = row("", "services", service({"type": "ExternalName", "externalName": "db.example.com"}))
    assert (cells["Cluster-IP"], cells["External-IP"]) == ("<none>", "db.example.com")


def test_endpoints() -> None:
    empty = {"metadata": meta("web")}
    assert row("", "endpoints", empty)["Endpoints"] == "<none>"
    obj: dict[str, Any] = {
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}, {"ip": "fd00::7"}],
                "ports": [{"port": 8080}, {"port": 9090}],
            }
        ],
    }
    assert (
        row("", "endpoints", obj)["Endpoints"] == "10.244.0.5:8080,10.244.0.6:8080,[fd00::7]:8080 + 3 more..."
    )
    obj["subsets"][0]["ports"] = [{"port": 80}]
    obj["subsets"][0]["addresses"] = obj["subsets"][0]["addresses"][:2]
    assert row("", "endpoints", obj)["Endpoints"] == "10.244.0.5:80,10.244.0.6:80"


def test_endpoint_slice() -> None:
    obj = {
        "metadata": meta("web-abcde"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}],
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)],
    }
    cells = row("discovery.k8s.io", "endpointslices", obj)
    assert (cells["AddressType"], cells["Ports"]) == ("IPv4", "80,named")
    assert cells["Endpoints"] == "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."
    bare = row("discovery.k8s.io", "endpointslices", {"metadata": meta("x"), "addressType": "IPv4"})
    assert (bare["Ports"], bare["Endpoints"]) == ("<unset>", "<unset>")


def test_ingress_and_ingress_class() -> None:
    obj = {
        "metadata": meta("web"),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "a.example"}, {"host": "b.example"}, {}, {"host": "c.example"}, {"host": "d"}],
            "tls": [{"hosts": ["a.example"]}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.2"}]}},
    }
    assert names("networking.k8s.io", "ingresses") == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    cells = row("networking.k8s.io", "ingresses", obj)
    assert cells["Class"] == "nginx"
    assert cells["Hosts"] == "a.example,b.example,c.example + 2 more..."
    assert (cells["Address"], cells["Ports"]) == ("172.18.0.2", "80, 443")
    bare = row("networking.k8s.io", "ingresses", {"metadata": meta("x"), "spec": {"rules": [{"http": {}}]}})
    assert (bare["Class"], bare["Hosts"], bare["Address"], bare["Ports"]) == ("<none>", "*", "", "80")

    klass = {
        "metadata": meta("nginx"),
        "spec": {
            "controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external"},
        },
    }
    cells = row("networking.k8s.io", "ingressclasses", klass)
    assert (cells["Controller"], cells["Parameters"]) == (
        "k8s.io/ingress-nginx",
        "IngressParameters.k8s.example.com/external",
    )


# --------------------------------------------------------------------------------------------------------
# Configuration, cluster objects, events


def test_configmap_secret_serviceaccount_namespace_lease() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert row("", "configmaps", cm)["Data"] == 3
    assert row("", "configmaps", {"metadata": meta("empty")})["Data"] == 0

    secret = {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    assert names("", "secrets") == ["Name", "Type", "Data", "Age"]
    assert [row("", "secrets", secret)[n] for n in ("Type", "Data")] == ["kubernetes.io/tls", 2]
    assert row("", "secrets", {"metadata": meta("x"), "stringData": {"k": "v"}})["Type"] == "Opaque"

    sa = {"metadata": meta("default"), "secrets": [{"name": "default-token"}]}
    assert row("", "serviceaccounts", sa)["Secrets"] == 1

    ns = {"metadata": meta("argocd"), "status": {"phase": "Terminating"}}
    assert row("", "namespaces", ns) == {"Name": "argocd", "Status": "Terminating", "Age": "10m"}
    assert row("", "namespaces", {"metadata": meta("new")})["Status"] == "Active"

    lease = {"metadata": meta("tugboat-leader"), "spec": {"holderIdentity": "tugboat-0_1a2b"}}
    assert row("coordination.k8s.io", "leases", lease)["Holder"] == "tugboat-0_1a2b"
    assert row("coordination.k8s.io", "leases", {"metadata": meta("free")})["Holder"] == ""


def node(ready: str | None = "True", **spec: Any) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {
        "metadata": meta(
            "tugboat-control-plane",
            86400 * 20,
            labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true"},
        ),
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": "cp"},
                {"type": "InternalIP", "address": "172.18.0.2"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian GNU/Linux 12",
                "kernelVersion": "6.8",
            },
        },
    }


def test_nodes() -> None:
    assert names("", "nodes") == ["Name", "Status", "Roles", "Age", "Version"]
    assert row("", "nodes", node()) == {
        "Name": "tugboat-control-plane",
        "Status": "Ready",
        "Roles": "control-plane,etcd",
        "Age": "20d",
        "Version": "v1.32.0",
        "Internal-IP": "172.18.0.2",
        "External-IP": "<none>",
        "OS-Image": "Debian GNU/Linux 12",
        "Kernel-Version": "6.8",
        "Container-Runtime": "<unknown>",
    }
    assert row("", "nodes", node("False", unschedulable=True))["Status"] == "NotReady,SchedulingDisabled"
    assert row("", "nodes", node("Unknown"))["Status"] == "NotReady"
    assert row("", "nodes", node(None))["Status"] == "Unknown"
    plain = node()
    plain["metadata"]["labels"] = {"kubernetes.io/role": "worker", "kubernetes.io/os": "linux"}
    assert row("", "nodes", plain)["Roles"] == "worker"
    plain["metadata"]["labels"] = {}
    assert row("", "nodes", plain)["Roles"] == "<none>"


def test_core_events_put_last_seen_first() -> None:
    event = {
        "metadata": meta("web-1.17a2b", 300),
        "involvedObject": {
            "kind": "Pod",
            "name": "web-1",
            "namespace": "default",
            "fieldPath": "spec.containers{app}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container app  \n",
        "type": "Warning",
        "count": 7,
        "firstTimestamp": ago(300),
        "lastTimestamp": ago(12),
        "source": {"component": "kubelet", "host": "tugboat-worker"},
    }
    assert names("", "events") == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert row("", "events", event) == {
        "Last Seen": "12s",
        "Type": "Warning",
        "Reason": "BackOff",
        "Object": "pod/web-1",
        "Subobject": "spec.containers{app}",
        "Source": "kubelet, tugboat-worker",
        "Message": "Back-off restarting failed container app",
        "First Seen": "5m",
        "Count": 7,
        "Name": "web-1.17a2b",
    }


def test_events_k8s_io_shape_and_series() -> None:
    event = {
        "metadata": meta("web.1", 600),
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up replica set web-7d9f to 3",
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "eventTime": ago(601).replace("Z", ".5Z"),
        "reportingController": "deployment-controller",
        "series": {"count": 4, "lastObservedTime": ago(31).replace("Z", ".500000001Z")},
    }
    cells = row("events.k8s.io", "events", event)
    assert [cells[n] for n in ("Last Seen", "Object", "Message", "First Seen", "Count", "Source")] == [
        "30s",
        "deployment/web",
        "Scaled up replica set web-7d9f to 3",
        "10m",
        4,
        "deployment-controller",
    ]
    del event["series"]
    cells = row("", "events", event)
    assert (cells["Last Seen"], cells["Count"]) == ("10m", 1)


# --------------------------------------------------------------------------------------------------------
# Storage, autoscaling, policy


def test_persistent_volume_claims_and_volumes() -> None:
    pending = {
        "metadata": meta("data"),
        "spec": {"storageClassName": "standard"},
        "status": {"phase": "Pending"},
    }
    cells = row("", "persistentvolumeclaims", pending)
    assert [cells[n] for n in ("Status", "Volume", "Capacity", "Access Modes", "StorageClass")] == [
        "Pending",
        "",
        "",
        "",
        "standard",
    ]
    bound = {
        "metadata": meta("data"),
        "spec": {"storageClassName": "standard", "volumeName": "pvc-1", "volumeMode": "Filesystem"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        },
    }
    cells = row("", "persistentvolumeclaims", bound)
    assert [cells[n] for n in ("Status", "Volume", "Capacity", "Access Modes", "VolumeMode")] == [
        "Bound",
        "pvc-1",
        "1Gi",
        "RWO,RWX",
        "Filesystem",
    ]
    volume = {
        "metadata": meta("pvc-1"),
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "default", "name": "data"},
            "storageClassName": "standard",
        },
        "status": {"phase": "Bound"},
    }
    cells = row("", "persistentvolumes", volume)
    assert [
        cells[n] for n in ("Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass")
    ] == [
        "1Gi",
        "RWO",
        "Delete",
        "Bound",
        "default/data",
        "standard",
    ]


def test_horizontal_pod_autoscaler() -> None:
    obj = {
        "metadata": meta("web"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "500Mi"},
                    },
                },
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "10"},
                    },
                },
            ],
        },
        "status": {
            "currentReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}
            ],
        },
    }
    assert names("autoscaling", "horizontalpodautoscalers") == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    cells = row("autoscaling", "horizontalpodautoscalers", obj)
    assert cells["Reference"] == "Deployment/web"
    assert cells["Targets"] == "cpu: 45%/80%, memory: <unknown>/500Mi + 1 more..."
    assert [cells[n] for n in ("MinPods", "MaxPods", "Replicas")] == ["2", 10, 3]
    v1 = {"metadata": meta("old"), "spec": {"maxReplicas": 4, "targetCPUUtilizationPercentage": 50}}
    cells = row("autoscaling", "horizontalpodautoscalers", v1)
    assert (cells["Targets"], cells["MinPods"]) == ("cpu: <unknown>/50%", "<unset>")


def test_pod_disruption_budget() -> None:
    obj = {"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    cells = row("policy", "poddisruptionbudgets", obj)
    assert [cells[n] for n in ("Min Available", "Max Unavailable", "Allowed Disruptions")] == [
        "50%",
        "N/A",
        1,
    ]


# --------------------------------------------------------------------------------------------------------
# Defaults and invariants


def test_resources_without_a_printer_get_name_and_created_at() -> None:
    crd = {"metadata": meta("rollouts.argoproj.io", 3600)}
    assert not tables.has_printer("apiextensions.k8s.io", "customresourcedefinitions")
    columns = tables.columns_for("apiextensions.k8s.io", "customresourcedefinitions")
    assert [(c.name, c.type, c.format) for c in columns] == [
        ("Name", "string", "name"),
        ("Created At", "date", ""),
    ]
    cells = tables.row_for("apiextensions.k8s.io", "customresourcedefinitions", crd, NOW)
    assert cells == ["rollouts.argoproj.io", "2025-03-01T11:00:00Z"]
    odd = {"metadata": {"name": "x", "creationTimestamp": "2025-03-01T13:00:00.5+02:00"}}
    assert tables.row_for("rbac.authorization.k8s.io", "roles", odd, NOW) == ["x", "2025-03-01T11:00:00Z"]
    assert tables.row_for("", "widgets", {"metadata": {"name": "y"}}, NOW) == ["y", "0001-01-01T00:00:00Z"]


BUILTINS = [
    ("", "pods"),
    ("", "services"),
    ("", "endpoints"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "namespaces"),
    ("", "nodes"),
    ("", "events"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "controllerrevisions"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("coordination.k8s.io", "leases"),
    ("events.k8s.io", "events"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "ingressclasses"),
    ("discovery.k8s.io", "endpointslices"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
]


@pytest.mark.parametrize(("group", "resource"), BUILTINS)
def test_every_printer_survives_sparse_and_mistyped_objects(group: str, resource: str) -> None:
    assert tables.has_printer(group, resource)
    name_columns = [c for c in tables.columns_for(group, resource) if c.format == "name"]
    assert [c.name for c in name_columns] == ["Name"]
    for obj in ({}, {"metadata": {"name": "x"}}, {"metadata": meta("x"), "spec": [], "status": "weird"}):
        cells = tables.row_for(group, resource, obj, NOW)
        assert len(cells) == len(tables.columns_for(group, resource))
        assert all(cell is None or isinstance(cell, str | int | float | bool) for cell in cells)


def test_naive_now_is_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert tables.row_for("", "configmaps", {"metadata": meta("c", 42)}, naive)[2] == "42s"


# --------------------------------------------------------------------------------------------------------
# Custom resources

ROLLOUT_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Desired",
        "type": "integer",
        "description": "Number of desired pods",
        "jsonPath": ".spec.replicas",
    },
    {
        "name": "Current",
        "type": "integer",
        "description": "Total number of non-terminated pods",
        "jsonPath": ".status.replicas",
    },
    {"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas"},
    {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

APPLICATION_COLUMNS: list[dict[str, Any]] = [
    {"name": "Sync Status", "type": "string", "jsonPath": ".status.sync.status"},
    {"name": "Health Status", "type": "string", "jsonPath": ".status.health.status"},
    {"name": "Revision", "type": "string", "jsonPath": ".status.sync.revision", "priority": 10},
    {"name": "Project", "type": "string", "jsonPath": ".spec.project", "priority": 10},
]


def test_rollout_printer_columns() -> None:
    columns = tables.crd_columns(ROLLOUT_COLUMNS)
    assert [c.name for c in columns] == ["Name", "Desired", "Current", "Up-to-date", "Available", "Age"]
    assert columns[0] == Column("Name", "string", "name", columns[0].description, 0)
    assert columns[1].description == "Number of desired pods"
    assert (
        columns[3].description
        == "Custom resource definition column (in JSONPath format): .status.updatedReplicas"
    )
    assert columns[5].type == "date"
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": meta("canary-demo", 125),
        "spec": {"replicas": 5},
        "status": {"replicas": 6, "updatedReplicas": 1, "availableReplicas": 5.0},
    }
    assert tables.crd_row(ROLLOUT_COLUMNS, rollout, NOW) == ["canary-demo", 5, 6, 1, 5, "2m5s"]
    fresh = {"metadata": meta("new", 3), "spec": {"replicas": 2}}
    assert tables.crd_row(ROLLOUT_COLUMNS, fresh, NOW) == ["new", 2, None, None, None, "3s"]


def test_application_printer_columns() -> None:
    columns = tables.crd_columns(APPLICATION_COLUMNS)
    assert [(c.name, c.priority) for c in columns] == [
        ("Name", 0),
        ("Sync Status", 0),
        ("Health Status", 0),
        ("Revision", 10),
        ("Project", 10),
    ]
    app = {
        "metadata": meta("guestbook"),
        "spec": {"project": "default"},
        "status": {
            "sync": {"status": "OutOfSync", "revision": "4f1c2e"},
            "health": {"status": "Progressing"},
        },
    }
    assert tables.crd_row(APPLICATION_COLUMNS, app, NOW) == [
        "guestbook",
        "OutOfSync",
        "Progressing",
        "4f1c2e",
        "default",
    ]
    assert tables.crd_row(APPLICATION_COLUMNS, {"metadata": meta("new")}, NOW) == [
        "new",
        None,
        None,
        None,
        None,
    ]


def test_condition_filter_column() -> None:
    columns = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
    ]
    obj = {
        "metadata": meta("cert"),
        "status": {
            "conditions": [{"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True"}]
        },
    }
    assert tables.crd_row(columns, obj, NOW) == ["cert", "True"]


def test_crd_cells_are_coerced_to_the_column_type() -> None:
    columns = [
        {"name": "I", "type": "integer", "jsonPath": ".v.float"},
        {"name": "I2", "type": "integer", "jsonPath": ".v.text"},
        {"name": "N", "type": "number", "jsonPath": ".v.int"},
        {"name": "B", "type": "boolean", "jsonPath": ".v.flag"},
        {"name": "B2", "type": "boolean", "jsonPath": ".v.text"},
        {"name": "S", "type": "string", "jsonPath": ".v.int"},
        {"name": "S2", "type": "string", "jsonPath": ".v.flag"},
        {"name": "S3", "type": "string", "jsonPath": ".v.map"},
        {"name": "S4", "type": "string", "jsonPath": ".v.whole"},
        {"name": "S5", "type": "string", "jsonPath": ".v.null"},
        {"name": "D", "type": "date", "jsonPath": ".v.text"},
        {"name": "D2", "type": "date", "jsonPath": ".v.int"},
        {"name": "X", "type": "string", "jsonPath": ".v[broken"},
        {"name": "All", "type": "string", "jsonPath": ".v.list[*]"},
        {"name": "Custom", "type": "quantity", "jsonPath": ".v.int"},
    ]
    obj = {
        "metadata": meta("x"),
        "v": {
            "float": 2.9,
            "int": 7,
            "flag": True,
            "text": "soon",
            "map": {"b": 1, "a": [1, "x"]},
            "whole": 3.0,
            "null": None,
            "list": ["first", "second"],
        },
    }
    cells = tables.crd_row(columns, obj, NOW)
    assert cells == [
        "x",
        2,
        None,
        7.0,
        True,
        None,
        "7",
        "true",
        '{"a":[1,"x"],"b":1}',
        "3",
        None,
        "<invalid>",
        None,
        None,
        "first",
        None,
    ]
    assert isinstance(cells[3], float)


def test_crd_without_printer_columns_is_name_and_age() -> None:
    printer_columns: list[dict[str, Any]] | None
    for printer_columns in (None, []):
        columns = tables.crd_columns(printer_columns)
        assert [(c.name, c.type, c.format) for c in columns] == [
            ("Name", "string", "name"),
            ("Age", "date", ""),
        ]
        assert tables.crd_row(printer_columns, {"metadata": meta("r", 7200)}, NOW) == ["r", "120m"]


# --------------------------------------------------------------------------------------------------------
# build_table


def test_build_table_with_partial_object_metadata() -> None:
    obj = pod()
    columns = tables.columns_for("", "pods")
    table = tables.build_table(
        columns, [(tables.row_for("", "pods", obj, NOW), obj)], resource_version="42", continue_token="abc"
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert table["columnDefinitions"][0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": columns[0].description,
        "priority": 0,
    }
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    (only,) = table["rows"]
    assert only["cells"][:3] == ["web-1", "1/1", "Running"]
    assert only["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }
    json.dumps(table)


def test_build_table_include_object_variants() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c"), "data": {"k": "v"}}
    rows = [(tables.row_for("", "configmaps", obj, NOW), obj)]
    columns = tables.columns_for("", "configmaps")
    full = tables.build_table(columns, rows, include_object="Object")
    assert full["rows"][0]["object"] == obj
    assert full["metadata"] == {}
    bare = tables.build_table(columns, rows, include_object="None")
    assert bare["rows"][0] == {"cells": ["c", 1, "10m"], "object": None}
    empty = tables.build_table(columns, [], resource_version="7")
    assert (empty["rows"], empty["metadata"]) == ([], {"resourceVersion": "7"})
    with pytest.raises(ValueError, match="includeObject"):
        tables.build_table(columns, rows, include_object="Everything")
