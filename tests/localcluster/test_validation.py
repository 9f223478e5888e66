"""Validation refuses what kube-apiserver refuses, with its field paths and messages."""

from __future__ import annotations

import copy
import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tugboat.localcluster.defaults import apply_defaults
from tugboat.localcluster.validation import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    REQUIRED,
    Cause,
    invalid_message,
    invalid_status,
    name_is_label,
    regex_error,
    selector_matches,
    validate,
    validate_metadata_name,
    validate_object_meta,
)

_ips = (f"10.96.0.{i}" for i in itertools.count(10))
_ports = itertools.count(30000)


def defaulted(group: str, kind: str, text: str) -> dict[str, Any]:
    """A manifest as the server validates it: parsed, given a uid, defaulted."""
    obj = yaml.safe_load(text)
    obj.setdefault("metadata", {})["uid"] = str(uuid.uuid4())
    apply_defaults(
        group, kind, obj, allocate_cluster_ip=lambda: next(_ips), allocate_node_port=lambda: next(_ports)
    )
    return obj


def messages(causes: list[Cause]) -> list[str]:
    return [str(cause) for cause in causes]


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, tier: frontend}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{name: http, containerPort: 80}]
        volumeMounts: [{name: html, mountPath: /usr/share/nginx/html}]
      - name: exporter
        image: nginx/nginx-prometheus-exporter:1.3
      volumes:
      - {name: html, emptyDir: {}}
"""


def deployment() -> dict[str, Any]:
    return defaulted("apps", "Deployment", DEPLOYMENT)


def test_valid_deployment() -> None:
    assert validate("apps", "Deployment", deployment()) == []


def test_selector_must_match_template_labels() -> None:
    obj = deployment()
    obj["spec"]["selector"]["matchLabels"] = {"app": "other"}
    causes = validate("apps", "Deployment", obj)
    assert causes == [
        Cause(
            INVALID,
            "spec.template.metadata.labels",
            'Invalid value: map[string]string{"app":"web", "tier":"frontend"}: '
            "`selector` does not match template `labels`",
        )
    ]
    assert invalid_message("Deployment", "apps", "web", causes) == (
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"web", "tier":"frontend"}: `selector` does not match template `labels`'
    )


def test_selector_expressions() -> None:
    obj = deployment()
    obj["spec"]["selector"] = {
        "matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web", "api"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ]
    }
    assert validate("apps", "Deployment", obj) == []
    obj["spec"]["selector"]["matchExpressions"][1]["operator"] = "Exists"
    assert [c.field for c in validate("apps", "Deployment", obj)] == ["spec.template.metadata.labels"]


def test_selector_required_and_not_empty() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    assert messages(validate("apps", "Deployment", obj)) == ["spec.selector: Required value"]
    obj["spec"]["selector"] = {}
    assert messages(validate("apps", "Deployment", obj)) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    ]


def test_bad_selector_operator() -> None:
    obj = deployment()
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]}
    assert messages(validate("apps", "Deployment", obj)) == [
        'spec.selector.matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator'
    ]


def test_selector_is_immutable() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["selector"]["matchLabels"]["tier"] = "frontend"
    assert messages(validate("apps", "Deployment", new, old=old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", '
        '"tier":"frontend"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert validate("apps", "Deployment", scaled, old=old) == []


def test_containers_required() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = []
    assert messages(validate("apps", "Deployment", obj)) == ["spec.template.spec.containers: Required value"]


def test_container_name_and_image() -> None:
    obj = deployment()
    containers = obj["spec"]["template"]["spec"]["containers"]
    del containers[0]["image"]
    containers[1]["name"] = "nginx"
    assert validate("apps", "Deployment", obj) == [
        Cause(REQUIRED, "spec.template.spec.containers[0].image", "Required value"),
        Cause(DUPLICATE, "spec.template.spec.containers[1].name", 'Duplicate value: "nginx"'),
    ]
    del containers[1]["name"]
    assert Cause(REQUIRED, "spec.template.spec.containers[1].name", "Required value") in validate(
        "apps", "Deployment", obj
    )


def test_init_container_names_share_the_namespace() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "exporter", "image": "busybox", "imagePullPolicy": "Always"}
    ]
    assert messages(validate("apps", "Deployment", obj)) == [
        'spec.template.spec.containers[1].name: Duplicate value: "exporter"'
    ]


def test_container_name_format() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][1]["name"] = "Exporter"
    label_error = regex_error(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character",
        "[a-z0-9]([-a-z0-9]*[a-z0-9])?",
        "my-name",
        "123-abc",
    )
    assert messages(validate("apps", "Deployment", obj)) == [
        f'spec.template.spec.containers[1].name: Invalid value: "Exporter": {label_error}'
    ]
    assert "(e.g. 'my-name',  or '123-abc', regex used" in label_error


def test_volume_mount_must_name_a_volume() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["volumes"] = []
    assert validate("apps", "Deployment", obj) == [
        Cause(NOT_FOUND, "spec.template.spec.containers[0].volumeMounts[0].name", 'Not found: "html"')
    ]


def test_container_port_range() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    assert messages(validate("apps", "Deployment", obj)) == [
        "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive"
    ]


def test_negative_replicas() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = -1
    assert messages(validate("apps", "Deployment", obj)) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    ]


def test_deployment_restart_policy_must_be_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert validate("apps", "Deployment", obj) == [
        Cause(
            NOT_SUPPORTED,
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Never": supported values: "Always"',
        )
    ]


def test_deployment_strategy() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    assert validate("apps", "Deployment", obj) == [
        Cause(
            FORBIDDEN,
            "spec.strategy.rollingUpdate",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        )
    ]
    obj["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"},
    }
    assert messages(validate("apps", "Deployment", obj)) == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
        'intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: may not be 0 when `maxSurge` is 0'
    ]
    obj["spec"]["strategy"] = {"type": "BlueGreen"}
    assert messages(validate("apps", "Deployment", obj)) == [
        'spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"'
    ]


def test_active_deadline_is_not_for_long_running_workloads() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 60
    assert messages(validate("apps", "Deployment", obj)) == [
        "spec.template.spec.activeDeadlineSeconds: Invalid value: 60: "
        "activeDeadlineSeconds in ReplicaSet is not Supported"
    ]


def test_progress_deadline_after_min_ready() -> None:
    obj = deployment()
    obj["spec"]["minReadySeconds"] = 600
    assert messages(validate("apps", "Deployment", obj)) == [
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    ]


def test_replica_set_and_daemon_set() -> None:
    rs = defaulted("apps", "ReplicaSet", DEPLOYMENT)
    assert validate("apps", "ReplicaSet", rs) == []
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    assert [c.field for c in validate("apps", "ReplicaSet", rs)] == ["spec.template.metadata.labels"]

    ds = defaulted("apps", "DaemonSet", DEPLOYMENT.replace("replicas: 3", ""))
    assert validate("apps", "DaemonSet", ds) == []
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 1, "maxSurge": 1}
    assert messages(validate("apps", "DaemonSet", ds)) == [
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "
        'intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero'
    ]


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


def test_stateful_set_claim_templates_are_volumes() -> None:
    assert validate("apps", "StatefulSet", defaulted("apps", "StatefulSet", STATEFUL_SET)) == []


def test_stateful_set_updates_are_limited() -> None:
    old = defaulted("apps", "StatefulSet", STATEFUL_SET)
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 3
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17"
    assert validate("apps", "StatefulSet", scaled, old=old) == []
    resized = copy.deepcopy(old)
    resized["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert messages(validate("apps", "StatefulSet", resized, old=old)) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
        "'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' "
        "and 'minReadySeconds' are forbidden"
    ]


def test_stateful_set_pod_management_policy() -> None:
    obj = defaulted("apps", "StatefulSet", STATEFUL_SET)
    obj["spec"]["podManagementPolicy"] = "Random"
    assert messages(validate("apps", "StatefulSet", obj)) == [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"
    ]


POD = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: nginx:1.27
"""


def test_pod() -> None:
    obj = defaulted("", "Pod", POD)
    assert validate("", "Pod", obj) == []
    obj["spec"]["containers"][0]["image"] = ""
    obj["spec"]["restartPolicy"] = "Sometimes"
    obj["spec"]["containers"][0]["imagePullPolicy"] = "Maybe"
    assert messages(validate("", "Pod", obj)) == [
        "spec.containers[0].image: Required value",
        'spec.containers[0].imagePullPolicy: Unsupported value: "Maybe": '
        'supported values: "Always", "IfNotPresent", "Never"',
        'spec.restartPolicy: Unsupported value: "Sometimes": '
        'supported values: "Always", "OnFailure", "Never"',
    ]
    obj["spec"]["containers"] = []
    assert "spec.containers: Required value" in messages(validate("", "Pod", obj))


JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
  backoffLimit: 4
"""


def test_job() -> None:
    assert validate("batch", "Job", defaulted("batch", "Job", JOB)) == []


def test_job_restart_policy() -> None:
    obj = defaulted("batch", "Job", JOB.replace("restartPolicy: Never", ""))
    causes = validate("batch", "Job", obj)
    assert causes == [
        Cause(
            NOT_SUPPORTED,
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Always": supported values: "OnFailure", "Never"',
        )
    ]
    assert invalid_message("Job", "batch", "pi", causes) == (
        'Job.batch "pi" is invalid: spec.template.spec.restartPolicy: '
        'Unsupported value: "Always": supported values: "OnFailure", "Never"'
    )


def test_job_update_immutability() -> None:
    old = defaulted("batch", "Job", JOB)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    assert [c.field for c in validate("batch", "Job", new, old=old)] == ["spec.template"]
    new["spec"]["selector"] = {"matchLabels": {"job-name": "pi"}}
    assert [c.field for c in validate("batch", "Job", new, old=old)] == ["spec.selector", "spec.template"]
    suspended_old = copy.deepcopy(old)
    suspended_old["spec"]["suspend"] = True
    retemplated = copy.deepcopy(old)
    retemplated["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36"
    assert validate("batch", "Job", retemplated, old=suspended_old) == []
    resumed = copy.deepcopy(old)
    resumed["spec"]["suspend"] = True
    assert validate("batch", "Job", resumed, old=old) == []


def test_job_without_uid_has_no_selector() -> None:
    obj = yaml.safe_load(JOB)
    apply_defaults("batch", "Job", obj)
    assert messages(validate("batch", "Job", obj)) == ["spec.selector: Required value"]


def test_cron_job() -> None:
    text = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: hello, image: busybox:1.28, command: [date]}]
          restartPolicy: OnFailure
"""
    obj = defaulted("batch", "CronJob", text)
    assert validate("batch", "CronJob", obj) == []
    del obj["spec"]["schedule"]
    obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert messages(validate("batch", "CronJob", obj)) == [
        "spec.schedule: Required value",
        'spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": '
        'supported values: "OnFailure", "Never"',
    ]


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: metrics, port: 9113}
"""


def test_service() -> None:
    assert validate("", "Service", defaulted("", "Service", SERVICE)) == []


def test_service_port_names() -> None:
    obj = defaulted("", "Service", SERVICE)
    del obj["spec"]["ports"][0]["name"]
    assert validate("", "Service", obj) == [Cause(REQUIRED, "spec.ports[0].name", "Required value")]
    obj["spec"]["ports"][0]["name"] = "metrics"
    assert validate("", "Service", obj) == [
        Cause(DUPLICATE, "spec.ports[1].name", 'Duplicate value: "metrics"')
    ]


def test_single_service_port_needs_no_name() -> None:
    obj = defaulted("", "Service", "spec: {ports: [{port: 443}]}")
    assert validate("", "Service", obj) == []


def test_service_port_numbers() -> None:
    obj = defaulted("", "Service", SERVICE)
    obj["spec"]["ports"][1]["port"] = 0
    obj["spec"]["ports"][1]["targetPort"] = 70000
    assert messages(validate("", "Service", obj)) == [
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        "spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    ]


def test_service_duplicate_port_and_protocol() -> None:
    obj = defaulted("", "Service", SERVICE)
    obj["spec"]["ports"][1]["port"] = 80
    assert [(c.type, c.field) for c in validate("", "Service", obj)] == [(DUPLICATE, "spec.ports[1]")]


def test_service_type() -> None:
    obj = defaulted("", "Service", SERVICE)
    obj["spec"]["type"] = "Internal"
    assert messages(validate("", "Service", obj)) == [
        'spec.type: Unsupported value: "Internal": supported values: '
        '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'
    ]


def test_node_port_forbidden_for_cluster_ip() -> None:
    obj = defaulted("", "Service", SERVICE)
    obj["spec"]["ports"][0]["nodePort"] = 30080
    assert messages(validate("", "Service", obj)) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    ]


def test_cluster_ip_is_immutable() -> None:
    old = defaulted("", "Service", SERVICE)
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.1.1"
    new["spec"]["clusterIPs"] = ["10.96.1.1"]
    assert messages(validate("", "Service", new, old=old)) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.1.1"}: may not change once set'
    ]
    to_external = copy.deepcopy(new)
    to_external["spec"] = {"type": "ExternalName", "externalName": "web.example.com"}
    assert validate("", "Service", to_external, old=old) == []


def test_external_name_service() -> None:
    obj = defaulted("", "Service", "spec: {type: ExternalName}")
    assert messages(validate("", "Service", obj)) == ["spec.externalName: Required value"]


def test_config_map_keys() -> None:
    obj = {"metadata": {"name": "cfg"}, "data": {"app.properties": "a=b", "bad key": "x", "..": "y"}}
    assert [(c.field, c.type) for c in validate("", "ConfigMap", obj)] == [
        ("data[bad key]", INVALID),
        ("data[..]", INVALID),
    ]
    assert messages(validate("", "ConfigMap", {"data": {"bad key": ""}})) == [
        'data[bad key]: Invalid value: "bad key": '
        "a valid config key must consist of alphanumeric characters, "
        "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
        "regex used for validation is '[-._a-zA-Z0-9]+')"
    ]


def test_immutable_config_map_and_secret() -> None:
    old = {"immutable": True, "data": {"a": "1"}}
    assert validate("", "ConfigMap", copy.deepcopy(old), old=old) == []
    assert messages(validate("", "ConfigMap", {"immutable": True, "data": {"a": "2"}}, old=old)) == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]
    assert messages(validate("", "ConfigMap", {"data": {"a": "1"}}, old=old)) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"
    ]
    assert validate("", "ConfigMap", {"data": {"a": "2"}}, old={"data": {"a": "1"}}) == []
    secret_old = {"type": "Opaque", "immutable": True, "data": {"a": "MQ=="}}
    secret_new = {"type": "Opaque", "immutable": True, "data": {"a": "Mg=="}}
    assert messages(validate("", "Secret", secret_new, old=secret_old)) == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]


def test_secret_type() -> None:
    tls = {"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}
    assert messages(validate("", "Secret", tls)) == ["data[tls.key]: Required value"]
    assert messages(validate("", "Secret", {"type": "Opaque"}, old=tls)) == [
        'type: Invalid value: "Opaque": field is immutable'
    ]


@pytest.mark.parametrize(
    ("name", "label", "valid"),
    [
        ("web", True, True),
        ("web.example.com", False, True),
        ("web.example.com", True, False),
        ("Web", False, False),
        ("-web", True, False),
        ("a" * 63, True, True),
        ("a" * 64, True, False),
        ("a" * 253, False, True),
        ("a" * 254, False, False),
    ],
)
def test_validate_metadata_name(name: str, label: bool, valid: bool) -> None:
    assert (validate_metadata_name(name, label=label) is None) == valid


def test_metadata_name_messages() -> None:
    assert validate_metadata_name("My_App", label=False) == (
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert validate_metadata_name("x" * 64, label=True) == "must be no more than 63 characters"


def test_name_is_label() -> None:
    assert name_is_label("", "Namespace")
    assert name_is_label("", "Service")
    assert name_is_label("apps", "StatefulSet")
    assert not name_is_label("apps", "Deployment")
    assert not name_is_label("", "ConfigMap")
    assert not name_is_label("argoproj.io", "Rollout")


def test_validate_object_meta() -> None:
    assert (
        validate_object_meta("apps", "Deployment", {"metadata": {"name": "web", "labels": {"app": "web"}}})
        == []
    )
    assert messages(validate_object_meta("", "ConfigMap", {"metadata": {}})) == [
        "metadata.name: Required value: name or generateName is required"
    ]
    # Services are RFC 1035 labels: they must start with a letter.
    assert [c.field for c in validate_object_meta("", "Service", {"metadata": {"name": "1web"}})] == [
        "metadata.name"
    ]
    assert validate_object_meta("", "Pod", {"metadata": {"generateName": "web-"}}) == []
    cron = validate_object_meta("batch", "CronJob", {"metadata": {"name": "c" * 53}})
    assert messages(cron) == [
        f'metadata.name: Invalid value: "{"c" * 53}": must be no more than 52 characters'
    ]


def test_label_validation() -> None:
    causes = validate_object_meta(
        "",
        "Pod",
        {"metadata": {"name": "p", "labels": {"app": "has space", "example.com/ok": "v", "a/b/c": "v"}}},
    )
    assert [c.field for c in causes] == ["metadata.labels", "metadata.labels"]
    assert causes[0].message.startswith('Invalid value: "has space": a valid label must be an empty string')
    assert causes[1].message.startswith('Invalid value: "a/b/c": a qualified name must consist of')


def test_selector_matches() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}],
    }
    assert selector_matches(selector, {"app": "web"})
    assert selector_matches(selector, {"app": "web", "track": "stable"})
    assert not selector_matches(selector, {"app": "web", "track": "canary"})
    assert not selector_matches(selector, {"app": "api"})


def test_invalid_message_and_status() -> None:
    causes = [
        Cause(REQUIRED, "spec.selector", "Required value"),
        Cause(REQUIRED, "spec.template.spec.containers", "Required value"),
        Cause(REQUIRED, "spec.selector", "Required value"),
    ]
    assert invalid_message("Deployment", "apps", "web", causes) == (
        'Deployment.apps "web" is invalid: [spec.selector: Required value, '
        "spec.template.spec.containers: Required value]"
    )
    assert invalid_message("Pod", "", "p", []) == 'Pod "p" is invalid'
    status = invalid_status("Pod", "", "p", causes[:1])
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["message"] == 'Pod "p" is invalid: spec.selector: Required value'
    assert status["details"] == {
        "name": "p",
        "kind": "Pod",
        "causes": [{"reason": REQUIRED, "message": "Required value", "field": "spec.selector"}],
    }


def test_unknown_kinds_have_no_causes() -> None:
    assert validate("argoproj.io", "Rollout", {"spec": {}}) == []
    assert validate("", "ServiceAccount", {}) == []


def test_malformed_objects_do_not_crash() -> None:
    for kind, group in (("Deployment", "apps"), ("Service", ""), ("Job", "batch"), ("Pod", "")):
        obj: dict[str, Any] = {
            "spec": {"template": "x", "ports": "y", "selector": [], "containers": {"a": 1}}
        }
        apply_defaults(group, kind, obj)
        assert isinstance(validate(group, kind, obj), list)


# --------------------------------------------------------------------------------------------------------
# Upstream example manifests

POD_BEARING = {
    ("", "Pod"),
    ("", "Service"),
    ("", "ReplicationController"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
}


def _example_documents(root: Path) -> list[tuple[str, dict[str, Any]]]:
    documents: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(root.rglob("*.y*ml")):
        text = path.read_text(errors="replace")
        if "{{" in text:
            continue  # a Helm template
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue  # not YAML PyYAML accepts (e.g. a trailing tab)
        documents.extend((f"{path.relative_to(root)}", doc) for doc in loaded if isinstance(doc, dict))
    return documents


def _group_of(doc: dict[str, Any]) -> str:
    api_version = str(doc.get("apiVersion", ""))
    return api_version.split("/")[0] if "/" in api_version else ""


def test_upstream_examples_default_and_validate_cleanly() -> None:
    root = os.environ.get("TUGBOAT_EXAMPLES")
    if not root:
        pytest.skip("TUGBOAT_EXAMPLES is not set")
    checked = 0
    for where, doc in _example_documents(Path(root)):
        group, kind = _group_of(doc), str(doc.get("kind"))
        metadata = doc.setdefault("metadata", {})
        if (group, kind) not in POD_BEARING or any(ch.isupper() for ch in str(metadata.get("name", ""))):
            continue  # not ours, or an e2e template with a placeholder name (REPLACEME, ROLLOUT_NAME)
        metadata.setdefault("name", f"{metadata.get('generateName', 'x')}abcde")
        metadata["uid"] = str(uuid.uuid4())
        apply_defaults(
            group, kind, doc, allocate_cluster_ip=lambda: next(_ips), allocate_node_port=lambda: next(_ports)
        )
        causes = validate_object_meta(group, kind, doc) + validate(group, kind, doc)
        assert causes == [], f"{where}: {invalid_message(kind, group, metadata['name'], causes)}"
        checked += 1
    assert checked > 0
