"""Server-side defaulting matches what kube-apiserver returns for the same manifests."""

from __future__ import annotations

import base64
import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tugboat.localcluster.defaults import apply_defaults, image_pull_policy_for, parse_quantity, pod_qos_class


def load(text: str) -> dict[str, Any]:
    obj = yaml.safe_load(text)
    assert isinstance(obj, dict)
    return obj


def ip_allocator(start: int = 10) -> Callable[[], str]:
    counter = itertools.count(start)
    return lambda: f"10.96.0.{next(counter)}"


def port_allocator(start: int = 30000) -> Callable[[], int]:
    counter = itertools.count(start)
    return lambda: next(counter)


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  selector:
    matchLabels: {app: guestbook-ui}
  template:
    metadata:
      labels: {app: guestbook-ui}
    spec:
      containers:
      - name: guestbook-ui
        image: gcr.io/heptio-images/ks-guestbook-demo:0.2
        ports:
        - containerPort: 80
        env:
        - name: POD_NAME
          valueFrom:
            fieldRef: {fieldPath: metadata.name}
        livenessProbe:
          httpGet: {port: 80}
        readinessProbe:
          tcpSocket: {port: 80}
          periodSeconds: 5
        volumeMounts:
        - {name: config, mountPath: /etc/config}
        - {name: scratch, mountPath: /tmp}
      volumes:
      - name: config
        configMap: {name: guestbook}
      - name: scratch
"""


def test_deployment_spec_defaults() -> None:
    obj = load(DEPLOYMENT)
    apply_defaults("apps", "Deployment", obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }


def test_pod_template_defaults() -> None:
    obj = load(DEPLOYMENT)
    apply_defaults("apps", "Deployment", obj)
    pod_spec = obj["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always"
    assert pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["schedulerName"] == "default-scheduler"
    assert pod_spec["securityContext"] == {}
    # Templates get none of what admission adds to Pods.
    for key in ("serviceAccountName", "enableServiceLinks", "priority", "tolerations"):
        assert key not in pod_spec


def test_container_defaults() -> None:
    obj = load(DEPLOYMENT)
    apply_defaults("apps", "Deployment", obj)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["resources"] == {}
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"][0]["valueFrom"]["fieldRef"] == {"apiVersion": "v1", "fieldPath": "metadata.name"}
    assert container["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["readinessProbe"]["periodSeconds"] == 5  # Given values win.
    assert container["readinessProbe"]["tcpSocket"] == {"port": 80}


def test_volume_defaults() -> None:
    obj = load(DEPLOYMENT)
    apply_defaults("apps", "Deployment", obj)
    volumes = obj["spec"]["template"]["spec"]["volumes"]
    assert volumes[0] == {"name": "config", "configMap": {"name": "guestbook", "defaultMode": 420}}
    assert volumes[1] == {"name": "scratch", "emptyDir": {}}


def test_defaulting_is_idempotent() -> None:
    obj = load(DEPLOYMENT)
    apply_defaults("apps", "Deployment", obj)
    again = copy.deepcopy(obj)
    apply_defaults("apps", "Deployment", again)
    assert again == obj


def test_recreate_strategy_gets_no_rolling_update() -> None:
    obj = load(DEPLOYMENT)
    obj["spec"]["strategy"] = {"type": "Recreate"}
    apply_defaults("apps", "Deployment", obj)
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_partial_rolling_update_is_completed() -> None:
    obj = load(DEPLOYMENT)
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1}}
    apply_defaults("apps", "Deployment", obj)
    assert obj["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"},
    }


def test_explicit_zero_and_null() -> None:
    obj = load(DEPLOYMENT)
    obj["spec"]["replicas"] = 0
    obj["spec"]["revisionHistoryLimit"] = None  # null means unset, as in Go
    apply_defaults("apps", "Deployment", obj)
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["revisionHistoryLimit"] == 10


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("docker.io/library/nginx:latest", "Always"),
        ("localhost:5000/team/app", "Always"),
        ("localhost:5000/team/app:1.2", "IfNotPresent"),
        ("nginx:1.27", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy_for(image) == policy


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx:1.27
    resources:
      limits: {cpu: 500m, memory: 128Mi}
  initContainers:
  - name: init
    image: busybox
"""


def test_pod_admission_defaults() -> None:
    obj = load(POD)
    apply_defaults("", "Pod", obj)
    spec = obj["spec"]
    assert spec["serviceAccountName"] == "default"
    assert spec["serviceAccount"] == "default"
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    assert spec["initContainers"][0]["imagePullPolicy"] == "Always"
    assert obj["status"] == {"phase": "Pending", "qosClass": "Burstable"}


def test_pod_requests_default_to_limits() -> None:
    obj = load(POD)
    del obj["spec"]["initContainers"]
    apply_defaults("", "Pod", obj)
    resources = obj["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "128Mi"}
    assert obj["status"]["qosClass"] == "Guaranteed"


def test_pod_keeps_its_own_tolerations_and_service_account() -> None:
    obj = load(POD)
    obj["spec"]["serviceAccountName"] = "builder"
    obj["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    ]
    apply_defaults("", "Pod", obj)
    assert obj["spec"]["serviceAccountName"] == "builder"
    keys = [t["key"] for t in obj["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert "tolerationSeconds" not in obj["spec"]["tolerations"][0]


def test_host_network_copies_container_ports() -> None:
    obj = load(POD)
    obj["spec"]["hostNetwork"] = True
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    apply_defaults("", "Pod", obj)
    assert obj["spec"]["containers"][0]["ports"] == [
        {"containerPort": 8080, "protocol": "TCP", "hostPort": 8080}
    ]


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "100m"}}, "Burstable"),
        (
            {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}},
            "Guaranteed",
        ),
        (
            {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}},
            "Burstable",
        ),
    ],
)
def test_qos_class(resources: dict[str, Any], qos: str) -> None:
    assert pod_qos_class({"containers": [{"name": "c", "image": "x", "resources": resources}]}) == qos


def test_parse_quantity() -> None:
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert parse_quantity("1Gi") == 2**30
    assert parse_quantity("1e3") == 1000
    assert parse_quantity(2) == 2
    assert parse_quantity("lots") is None


def test_replica_set_and_daemon_set() -> None:
    rs = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    apply_defaults("apps", "ReplicaSet", rs)
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["restartPolicy"] == "Always"

    ds: dict[str, Any] = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    apply_defaults("apps", "DaemonSet", ds)
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10

    on_delete: dict[str, Any] = {"spec": {"updateStrategy": {"type": "OnDelete"}}}
    apply_defaults("apps", "DaemonSet", on_delete)
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


STATEFUL_SET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: postgres
        image: postgres:16
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def test_stateful_set_defaults() -> None:
    obj = load(STATEFUL_SET)
    apply_defaults("apps", "StatefulSet", obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}


JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  uid: 0b4f2cf5-8a5d-4a8e-9c7e-6f4a1d2b3c4d
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
"""
JOB_UID = "0b4f2cf5-8a5d-4a8e-9c7e-6f4a1d2b3c4d"


def test_job_defaults_and_generated_selector() -> None:
    obj = load(JOB)
    apply_defaults("batch", "Job", obj)
    spec = obj["spec"]
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID}}
    expected_labels = {
        "batch.kubernetes.io/controller-uid": JOB_UID,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": JOB_UID,
        "job-name": "pi",
    }
    assert spec["template"]["metadata"]["labels"] == expected_labels
    assert obj["metadata"]["labels"] == expected_labels
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_labels_come_from_the_user_template() -> None:
    obj = load(JOB)
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    apply_defaults("batch", "Job", obj)
    assert obj["metadata"]["labels"] == {"app": "pi"}
    assert obj["spec"]["template"]["metadata"]["labels"]["app"] == "pi"
    assert obj["spec"]["template"]["metadata"]["labels"]["job-name"] == "pi"


def test_job_parallelism_only_leaves_completions_unset() -> None:
    obj = load(JOB)
    obj["spec"]["parallelism"] = 3
    apply_defaults("batch", "Job", obj)
    assert "completions" not in obj["spec"]
    assert obj["spec"]["parallelism"] == 3


def test_job_manual_selector_is_not_generated() -> None:
    obj = load(JOB)
    obj["spec"]["manualSelector"] = True
    obj["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    apply_defaults("batch", "Job", obj)
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "pi"}}
    assert "labels" not in obj["spec"]["template"].get("metadata", {})


def test_job_template_without_restart_policy_defaults_to_always() -> None:
    # Upstream defaults it too; validation then rejects it with `Unsupported value: "Always"`.
    obj = load(JOB)
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    apply_defaults("batch", "Job", obj)
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_cron_job_defaults() -> None:
    obj = load(
        """
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: hello, image: busybox:1.28}]
          restartPolicy: OnFailure
"""
    )
    apply_defaults("batch", "CronJob", obj)
    spec = obj["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    pod_spec = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "OnFailure"
    assert pod_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: guestbook-ui}
spec:
  selector: {app: guestbook-ui}
  ports:
  - port: 80
"""


def test_cluster_ip_service() -> None:
    obj = load(SERVICE)
    apply_defaults(
        "", "Service", obj, allocate_cluster_ip=ip_allocator(), allocate_node_port=port_allocator()
    )
    spec = obj["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["clusterIP"] == "10.96.0.10"
    assert spec["clusterIPs"] == ["10.96.0.10"]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert "externalTrafficPolicy" not in spec
    assert "nodePort" not in spec["ports"][0]


def test_named_target_port_is_kept() -> None:
    obj = load(SERVICE)
    obj["spec"]["ports"][0]["targetPort"] = "http"
    apply_defaults("", "Service", obj, allocate_cluster_ip=ip_allocator())
    assert obj["spec"]["ports"][0]["targetPort"] == "http"


def test_node_port_service() -> None:
    obj = load(SERVICE)
    obj["spec"]["type"] = "NodePort"
    obj["spec"]["ports"].append({"name": "metrics", "port": 9090, "nodePort": 31000})
    obj["spec"]["ports"][0]["name"] = "http"
    apply_defaults(
        "", "Service", obj, allocate_cluster_ip=ip_allocator(), allocate_node_port=port_allocator()
    )
    spec = obj["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert [port["nodePort"] for port in spec["ports"]] == [30000, 31000]
    assert "allocateLoadBalancerNodePorts" not in spec


def test_load_balancer_service() -> None:
    obj = load(SERVICE)
    obj["spec"]["type"] = "LoadBalancer"
    obj["spec"]["externalTrafficPolicy"] = "Local"
    apply_defaults(
        "", "Service", obj, allocate_cluster_ip=ip_allocator(), allocate_node_port=port_allocator()
    )
    spec = obj["spec"]
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["ports"][0]["nodePort"] == 30000
    assert spec["healthCheckNodePort"] == 30001


def test_headless_and_fixed_ip_services() -> None:
    def never() -> str:
        raise AssertionError("nothing should be allocated")

    headless = load(SERVICE)
    headless["spec"]["clusterIP"] = "None"
    apply_defaults("", "Service", headless, allocate_cluster_ip=never)
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "SingleStack"

    fixed = load(SERVICE)
    fixed["spec"]["clusterIP"] = "10.96.0.200"
    apply_defaults("", "Service", fixed, allocate_cluster_ip=never)
    assert fixed["spec"]["clusterIPs"] == ["10.96.0.200"]


def test_external_name_service_gets_no_cluster_ip() -> None:
    obj = {"spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    apply_defaults("", "Service", obj, allocate_cluster_ip=ip_allocator())
    assert obj["spec"] == {
        "type": "ExternalName",
        "externalName": "db.example.com",
        "sessionAffinity": "None",
    }


def test_service_without_allocator_leaves_cluster_ip_unset() -> None:
    obj = load(SERVICE)
    apply_defaults("", "Service", obj)
    assert "clusterIP" not in obj["spec"]


def test_service_update_keeps_allocations() -> None:
    old = load(SERVICE)
    old["spec"]["type"] = "NodePort"
    apply_defaults(
        "", "Service", old, allocate_cluster_ip=ip_allocator(), allocate_node_port=port_allocator()
    )
    replacement = load(SERVICE)  # as `kubectl replace` sends it: no clusterIP, no nodePort
    replacement["spec"]["type"] = "NodePort"
    apply_defaults(
        "",
        "Service",
        replacement,
        allocate_cluster_ip=ip_allocator(50),
        allocate_node_port=port_allocator(32000),
        old=old,
    )
    assert replacement["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert replacement["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]


def test_client_ip_affinity_timeout() -> None:
    obj = load(SERVICE)
    obj["spec"]["sessionAffinity"] = "ClientIP"
    apply_defaults("", "Service", obj)
    assert obj["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_namespace_defaults() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "team-a", "labels": {"owner": "me"}}}
    apply_defaults("", "Namespace", obj)
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}
    assert obj["metadata"]["labels"] == {"owner": "me", "kubernetes.io/metadata.name": "team-a"}


def test_secret_defaults_and_string_data() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "creds"}, "data": {"a": "eA=="}, "stringData": {"b": "hello"}}
    apply_defaults("", "Secret", obj)
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    assert obj["data"] == {"a": "eA==", "b": base64.b64encode(b"hello").decode()}


def test_pvc_defaults() -> None:
    obj: dict[str, Any] = {"spec": {"accessModes": ["ReadWriteOnce"]}}
    apply_defaults("", "PersistentVolumeClaim", obj)
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["status"] == {"phase": "Pending"}


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "ServiceAccount"),
        ("", "ConfigMap"),
        ("coordination.k8s.io", "Lease"),
        ("", "Event"),
        ("policy", "PodDisruptionBudget"),
        ("networking.k8s.io", "Ingress"),
        ("argoproj.io", "Rollout"),
    ],
)
def test_kinds_without_defaults_are_untouched(group: str, kind: str) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"anything": True}}
    before = copy.deepcopy(obj)
    apply_defaults(group, kind, obj)
    assert obj == before


def test_wrongly_typed_fields_are_left_for_validation() -> None:
    obj: dict[str, Any] = {"spec": {"template": {"spec": {"containers": "oops"}}, "strategy": "fast"}}
    apply_defaults("apps", "Deployment", obj)
    assert obj["spec"]["strategy"] == "fast"
    assert obj["spec"]["template"]["spec"]["containers"] == "oops"
