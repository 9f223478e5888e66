"""Desired vs live: normalization, server defaults, ignoreDifferences, removals and Secret masking.

The "live" objects here are what an API server returns for the desired ones (defaults filled in,
quantities in canonical form, metadata and status added), written out by hand.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import examples_support
from tugboat.gitops import diff
from tugboat.gitops.diff import IgnoreRule
from tugboat.gitops.errors import CustomizationError, DiffError, IgnoreDifferencesError
from tugboat.gitops.resourcekey import ResourceKey
from tugboat.kube import fieldsv1


def desired_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "guestbook-ui",
            "namespace": "guestbook",
            "labels": {"app.kubernetes.io/instance": "guestbook"},
            "annotations": {
                "argocd.argoproj.io/tracking-id": "guestbook:apps/Deployment:guestbook/guestbook-ui"
            },
        },
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app": "guestbook-ui"}},
            "template": {
                "metadata": {"labels": {"app": "guestbook-ui"}},
                "spec": {
                    "hostNetwork": False,
                    "containers": [
                        {
                            "name": "guestbook-ui",
                            "image": "gcr.io/heptio-images/ks-guestbook-demo:0.2",
                            "ports": [{"containerPort": 80}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "resources": {
                                "limits": {"cpu": "1000m", "memory": "1Gi"},
                                "requests": {"cpu": 0.5},
                            },
                        }
                    ],
                },
            },
        },
    }


def live_of(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server (and the Deployment controller) make of ``desired``."""
    live = copy.deepcopy(desired)
    meta = live["metadata"]
    meta.update(
        uid="5f0c3a4e-1111-4c1e-9a55-2b1e8a7e6c01",
        resourceVersion="48211",
        generation=1,
        creationTimestamp="2026-08-01T10:00:05Z",
    )
    meta["annotations"] = {
        **meta.get("annotations", {}),
        "deployment.kubernetes.io/revision": "1",
        "argocd.argoproj.io/tracking-id": "guestbook:apps/Deployment:guestbook/guestbook-ui-OLD",
    }
    meta["managedFields"] = [
        {
            "manager": "argocd-controller",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    ]
    spec = live["spec"]
    spec.update(
        progressDeadlineSeconds=600,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    )
    pod = spec["template"]["spec"]
    pod.pop("hostNetwork", None)  # omitempty false: the server drops it
    pod.update(
        restartPolicy="Always",
        terminationGracePeriodSeconds=30,
        dnsPolicy="ClusterFirst",
        securityContext={},
        schedulerName="default-scheduler",
    )
    for container in pod["containers"]:
        container.update(
            imagePullPolicy="IfNotPresent",
            terminationMessagePath="/dev/termination-log",
            terminationMessagePolicy="File",
        )
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        if "resources" in container:
            container["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    live["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    return live


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------------
# Normalization and server defaults


def test_server_defaults_and_metadata_are_not_differences() -> None:
    desired = desired_deployment()
    result = diff.diff(desired, live_of(desired))
    assert not result.modified, result.diff_text
    assert result.diff_text == ""
    live = result.normalized_live
    assert live is not None
    for name in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        assert name not in live["metadata"]
    assert "argocd.argoproj.io/tracking-id" not in live["metadata"]["annotations"]
    assert "status" not in live
    assert result.key == ResourceKey("apps", "Deployment", "guestbook", "guestbook-ui")


def test_changed_image_is_detected_and_shown() -> None:
    desired = desired_deployment()
    live = live_of(desired)
    container(desired)["image"] = "gcr.io/heptio-images/ks-guestbook-demo:0.3"
    result = diff.diff(desired, live)
    assert result.modified
    assert any(line.startswith("-") and line.endswith("ks-guestbook-demo:0.2") for line in result.diff_lines)
    assert any(line.startswith("+") and line.endswith("ks-guestbook-demo:0.3") for line in result.diff_lines)
    assert result.diff_lines[0] == "--- live/apps/Deployment guestbook/guestbook-ui"
    assert result.diff_lines[1] == "+++ desired/apps/Deployment guestbook/guestbook-ui"
    # Only the image changed: the predicted object keeps the server's defaults.
    assert result.predicted_live is not None
    predicted = container(result.predicted_live)
    assert predicted["imagePullPolicy"] == "IfNotPresent"
    assert predicted["image"].endswith(":0.3")


def test_inputs_are_not_modified() -> None:
    desired = desired_deployment()
    live = live_of(desired)
    before = copy.deepcopy((desired, live))
    diff.diff(desired, live, ignore=[IgnoreRule("apps", "Deployment", json_pointers=["/spec/replicas"])])
    assert (desired, live) == before


def test_status_is_ignored_unless_asked() -> None:
    desired = desired_deployment()
    desired["status"] = {"replicas": 7}
    live = live_of(desired_deployment())
    assert not diff.diff(desired, live).modified
    assert diff.diff(desired, live, normalize_status=False).modified


@pytest.mark.parametrize(
    ("wanted", "actual", "modified"),
    [
        ("1000m", "1", False),
        ("1Gi", "1024Mi", False),
        (0.5, "500m", False),
        ("1e3", "1k", False),
        (2, "2", False),
        ("500m", "1", True),
        ("1G", "1Gi", True),
    ],
)
def test_quantities_compare_by_value(wanted: Any, actual: Any, modified: bool) -> None:
    desired = desired_deployment()
    container(desired)["resources"] = {"limits": {"cpu": wanted}}
    live = live_of(desired_deployment())
    container(live)["resources"] = {"limits": {"cpu": actual}}
    assert diff.diff(desired, live).modified is modified


def test_zero_values_equal_missing_fields_and_null_means_unset() -> None:
    desired = desired_deployment()
    pod = desired["spec"]["template"]["spec"]
    pod.update(
        initContainers=[], nodeSelector={}, hostPID=False, priority=0, serviceAccountName="", tolerations=None
    )
    desired["metadata"]["annotations"] = None
    assert not diff.diff(desired, live_of(desired_deployment())).modified


def test_int_or_string_fields() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "guestbook-ui", "namespace": "guestbook"},
        "spec": {"ports": [{"port": 80, "targetPort": 80}], "selector": {"app": "guestbook-ui"}},
    }
    live = copy.deepcopy(service)
    live["spec"].update(
        clusterIP="10.96.12.7",
        clusterIPs=["10.96.12.7"],
        type="ClusterIP",
        sessionAffinity="None",
        ipFamilies=["IPv4"],
        ipFamilyPolicy="SingleStack",
        internalTrafficPolicy="Cluster",
        ports=[{"port": 80, "targetPort": "80", "protocol": "TCP"}],
    )
    assert not diff.diff(service, live).modified
    live["spec"]["ports"][0]["targetPort"] = 8080
    assert diff.diff(service, live).modified


def test_keyed_lists_ignore_order_and_injected_items() -> None:
    desired = desired_deployment()
    live = live_of(desired)
    # A webhook injected a sidecar and an env var; the env order differs.
    live["spec"]["template"]["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2"})
    container(live)["env"] = [
        {"name": "B", "value": "2"},
        {"name": "INJECTED", "value": "x"},
        {"name": "A", "value": "1"},
    ]
    assert not diff.diff(desired, live).modified
    container(live)["env"][2]["value"] = "changed"
    assert diff.diff(desired, live).modified


def test_atomic_lists_compare_item_by_item() -> None:
    desired = desired_deployment()
    container(desired)["args"] = ["--port", "80"]
    live = live_of(desired)
    assert not diff.diff(desired, live).modified
    container(live)["args"] = ["--port", "80", "--debug"]
    result = diff.diff(desired, live)
    assert result.modified
    assert [line.split() for line in result.diff_lines if line.startswith(("-", "+"))][2:] == [
        ["-", "-", "--debug"]
    ]


def test_custom_resources_and_rollout_pod_templates() -> None:
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "bluegreen", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "strategy": {"blueGreen": {"activeService": "active", "autoPromotionEnabled": False}},
            "template": {"spec": {"containers": [{"name": "app", "image": "argoproj/rollouts-demo:blue"}]}},
        },
    }
    live = copy.deepcopy(rollout)
    # Rollout's template is a pod template (knownTypeFields): containers merge by name.
    live["spec"]["template"]["spec"]["containers"].insert(0, {"name": "injected", "image": "x"})
    live["spec"]["template"]["spec"]["containers"][1]["resources"] = {}
    live["status"] = {"phase": "Healthy"}
    assert not diff.diff(rollout, live).modified
    live["spec"]["strategy"]["blueGreen"]["autoPromotionEnabled"] = True
    assert diff.diff(rollout, live).modified


def test_endpoints_subsets_are_sorted() -> None:
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "ext", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}],
                "ports": [{"name": "b", "port": 81}, {"name": "a", "port": 80}],
            }
        ],
    }
    live = copy.deepcopy(endpoints)
    live["subsets"][0]["addresses"].reverse()
    live["subsets"][0]["ports"].reverse()
    assert not diff.diff(endpoints, live).modified


# ---------------------------------------------------------------------------------------------------
# Removals


def test_removal_detected_through_last_applied_configuration() -> None:
    desired = desired_deployment()
    previous = copy.deepcopy(desired)
    previous["metadata"]["labels"]["team"] = "web"
    live = live_of(previous)
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(previous)
    # The label was in the last applied configuration and is gone from Git: the next apply removes it.
    result = diff.diff(desired, live, apply_manager=None)
    assert result.modified
    assert "-    team: web" in result.diff_text
    # A label someone else added (not in last-applied) is not a difference.
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(desired)
    assert not diff.diff(desired, live, apply_manager=None).modified


def test_removal_detected_through_our_server_side_apply_ownership() -> None:
    desired = desired_deployment()
    live = live_of(desired)
    live["metadata"]["labels"]["team"] = "web"
    owned = {"f:metadata": {"f:labels": {"f:team": {}, "f:app.kubernetes.io/instance": {}}}}
    live["metadata"]["managedFields"] = [
        {"manager": "argocd-controller", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": owned}
    ]
    assert diff.diff(desired, live).modified
    assert not diff.diff(desired, live, apply_manager=None).modified
    # Shared with another manager: applying without it keeps the field, so no difference.
    live["metadata"]["managedFields"].append(
        {
            "manager": "kubectl-label",
            "operation": "Apply",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
        }
    )
    assert not diff.diff(desired, live).modified


def test_missing_and_extra_resources() -> None:
    desired = desired_deployment()
    created = diff.diff(desired, None)
    assert created.modified and created.normalized_live is None and created.predicted_live is not None
    assert created.diff_lines[0] == "--- live/apps/Deployment guestbook/guestbook-ui"
    assert "+kind: Deployment" in created.diff_lines
    pruned = diff.diff(None, live_of(desired))
    assert pruned.modified and pruned.predicted_live is None
    assert "-kind: Deployment" in pruned.diff_lines


def test_bad_inputs() -> None:
    with pytest.raises(DiffError, match="both missing"):
        diff.diff(None, None)
    with pytest.raises(DiffError, match="apiVersion and kind"):
        diff.diff({"metadata": {"name": "x"}}, None)
    with pytest.raises(DiffError, match="mapping"):
        diff.diff(["not", "an", "object"], None)  # type: ignore[arg-type]
    with pytest.raises(DiffError, match="cannot compare"):
        diff.diff(desired_deployment(), {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}})


# ---------------------------------------------------------------------------------------------------
# ignoreDifferences


def scaled() -> tuple[dict[str, Any], dict[str, Any]]:
    desired = desired_deployment()
    live = live_of(desired)
    live["spec"]["replicas"] = 5
    return desired, live


def test_ignore_by_json_pointer() -> None:
    desired, live = scaled()
    assert diff.diff(desired, live).modified
    rule = IgnoreRule("apps", "Deployment", json_pointers=["/spec/replicas"])
    assert not diff.diff(desired, live, ignore=[rule]).modified
    # Rules for other resources don't apply.
    for other in (
        IgnoreRule("apps", "StatefulSet", json_pointers=["/spec/replicas"]),
        IgnoreRule("apps", "Deployment", name="other", json_pointers=["/spec/replicas"]),
        IgnoreRule("apps", "Deployment", namespace="other", json_pointers=["/spec/replicas"]),
        IgnoreRule("", "Deployment", json_pointers=["/spec/replicas"]),
    ):
        assert diff.diff(desired, live, ignore=[other]).modified
    # Globs, name and namespace that match.
    rule = IgnoreRule(
        "*", "Deploy*", name="guestbook-ui", namespace="guestbook", json_pointers=["/spec/replicas"]
    )
    assert not diff.diff(desired, live, ignore=[rule]).modified


def test_json_pointer_escapes_and_missing_paths() -> None:
    desired = desired_deployment()
    live = live_of(desired)
    live["metadata"]["labels"]["app.kubernetes.io/instance"] = "someone-else"
    assert diff.diff(desired, live).modified
    rule = IgnoreRule(
        "apps", "Deployment", json_pointers=["/metadata/labels/app.kubernetes.io~1instance", "/no/such/path"]
    )
    assert not diff.diff(desired, live, ignore=[rule]).modified


def test_ignore_by_jq_path_expression() -> None:
    desired, live = scaled()
    rule = IgnoreRule("apps", "Deployment", jq_path_expressions=[".spec.replicas"])
    assert not diff.diff(desired, live, ignore=[rule]).modified
    # Select one container's image.
    desired = desired_deployment()
    live = live_of(desired)
    container(live)["image"] = "mutated:by-a-webhook"
    rule = IgnoreRule(
        "apps",
        "Deployment",
        jq_path_expressions=['.spec.template.spec.containers[] | select(.name == "guestbook-ui") | .image'],
    )
    assert not diff.diff(desired, live, ignore=[rule]).modified


def test_runaway_jq_expression_is_stopped_and_reported() -> None:
    desired, live = scaled()
    rule = IgnoreRule("apps", "Deployment", jq_path_expressions=[".spec.replicas) | last(range(1e12)) | (.x"])
    result = diff.diff(desired, live, ignore=[rule], jq_timeout=0.2)
    assert result.modified  # not applied
    assert len(result.warnings) == 2  # once per side
    assert "did not finish within 0.2s" in result.warnings[0]
    # The helper process was restarted: the next expression works.
    ok = IgnoreRule("apps", "Deployment", jq_path_expressions=[".spec.replicas"])
    assert not diff.diff(desired, live, ignore=[ok]).modified


def test_managed_fields_managers() -> None:
    desired, live = scaled()
    live["metadata"]["managedFields"].append(
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    )
    assert diff.diff(desired, live).modified
    assert not diff.diff(desired, live, managed_fields_managers=["kube-controller-manager"]).modified
    rule = IgnoreRule("apps", "Deployment", managed_fields_managers=["kube-controller-manager"])
    assert not diff.diff(desired, live, ignore=[rule]).modified
    # Fields the manager does not own are still compared.
    container(live)["image"] = "other"
    assert diff.diff(desired, live, managed_fields_managers=["kube-controller-manager"]).modified


def test_managed_fields_of_list_items() -> None:
    desired = desired_deployment()
    live = live_of(desired)
    container(live)["env"][0]["value"] = "set-by-operator"
    fields = {
        "f:spec": {
            "f:template": {
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"guestbook-ui"}': {"f:env": {'k:{"name":"A"}': {".": {}, "f:value": {}}}}
                    }
                }
            }
        }
    }
    live["metadata"]["managedFields"].append(
        {"manager": "env-operator", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    )
    assert diff.diff(desired, live).modified
    assert not diff.diff(desired, live, managed_fields_managers=["env-operator"]).modified


def test_ignore_rule_validation() -> None:
    with pytest.raises(IgnoreDifferencesError, match="kind is required"):
        IgnoreRule("apps", "")
    with pytest.raises(IgnoreDifferencesError, match="JSON pointer"):
        IgnoreRule("apps", "Deployment", json_pointers=["spec/replicas"])
    with pytest.raises(IgnoreDifferencesError, match="would ignore everything"):
        IgnoreRule("apps", "Deployment", json_pointers=[""])
    with pytest.raises(IgnoreDifferencesError, match="invalid jq path expression"):
        IgnoreRule("apps", "Deployment", jq_path_expressions=[".spec.replicas["])
    with pytest.raises(IgnoreDifferencesError, match="list of strings"):
        IgnoreRule("apps", "Deployment", json_pointers="/spec/replicas")
    with pytest.raises(IgnoreDifferencesError, match=r"spec\.ignoreDifferences\[1\]: .*unknown field"):
        diff.ignore_rules(
            [{"group": "apps", "kind": "Deployment"}, {"kind": "Service", "jsonPointer": ["/x"]}]
        )


def test_ignore_rules_from_application_spec() -> None:
    rules = diff.ignore_rules(
        [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
            {
                "kind": "ConfigMap",
                "name": "c",
                "jqPathExpressions": [".data.x"],
                "managedFieldsManagers": ["m"],
            },
        ]
    )
    assert rules == [
        IgnoreRule("apps", "Deployment", json_pointers=("/spec/replicas",)),
        IgnoreRule(
            "", "ConfigMap", name="c", jq_path_expressions=(".data.x",), managed_fields_managers=("m",)
        ),
    ]


def test_system_level_rules_from_configmap() -> None:
    prefix = "resource.customizations.ignoreDifferences."
    data = {
        prefix + "all": "managedFieldsManagers:\n- kube-controller-manager\n",
        prefix + "admissionregistration.k8s.io_MutatingWebhookConfiguration": (
            "jqPathExpressions:\n- '.webhooks[]?.clientConfig.caBundle'\n"
        ),
        "resource.customizations.ignoreDifferences.Service": "jsonPointers:\n- /spec/clusterIP\n",
        "resource.compareoptions": "ignoreResourceStatusField: crd\n",
    }
    settings = diff.settings_from_configmap(data)
    assert not settings.normalize_status
    by_kind = {(rule.group, rule.kind): rule for rule in settings.ignore}
    assert by_kind[("*", "*")].managed_fields_managers == ("kube-controller-manager",)
    assert by_kind[("admissionregistration.k8s.io", "MutatingWebhookConfiguration")].jq_path_expressions == (
        ".webhooks[]?.clientConfig.caBundle",
    )
    assert by_kind[("", "Service")].json_pointers == ("/spec/clusterIP",)
    assert by_kind[("apiextensions.k8s.io", "CustomResourceDefinition")].json_pointers == ("/status",)

    desired, live = scaled()
    live["metadata"]["managedFields"].append(
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    )
    assert not diff.diff(desired, live, ignore=settings.ignore).modified

    assert diff.settings_from_configmap({}) == diff.DiffSettings((), True)
    assert not diff.settings_from_configmap(
        {"resource.compareoptions": "ignoreResourceStatusField: off"}
    ).normalize_status
    with pytest.raises(CustomizationError, match="unknown field"):
        diff.settings_from_configmap({"resource.customizations.ignoreDifferences.all": "jsonPointer: [/x]"})
    with pytest.raises(CustomizationError, match="JSON pointer"):
        diff.settings_from_configmap({"resource.customizations.ignoreDifferences.all": "jsonPointers: [x]"})


# ---------------------------------------------------------------------------------------------------
# Secrets


def secret(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "guestbook"},
        "type": "Opaque",
        **fields,
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_string_data_is_normalized_into_data() -> None:
    desired = secret(stringData={"password": "hunter2", "user": "admin"})
    live = secret(data={"password": b64("hunter2"), "user": b64("admin")})
    live["metadata"]["uid"] = "u"
    assert not diff.diff(desired, live).modified
    mixed = secret(data={"user": b64("admin")}, stringData={"password": "hunter2"})
    assert not diff.diff(mixed, live).modified


def test_secret_values_never_appear_in_the_diff() -> None:
    desired = secret(stringData={"password": "hunter2", "user": "admin", "token": "t0ken-new"})
    live = secret(data={"password": b64("correct horse"), "user": b64("admin"), "token": b64("t0ken-old")})
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            secret(stringData={"password": "correct horse"})
        )
    }
    result = diff.diff(desired, live)
    assert result.modified
    text = result.diff_text + yaml.safe_dump(result.normalized_live) + yaml.safe_dump(result.predicted_live)
    for value in ("hunter2", "admin", "correct horse", "t0ken-new", "t0ken-old"):
        assert value not in text
        assert b64(value) not in text
    assert result.normalized_live is not None and result.predicted_live is not None
    live_data, predicted_data = result.normalized_live["data"], result.predicted_live["data"]
    # Unchanged key: the same mask on both sides. Changed keys: different masks.
    assert live_data["user"] == predicted_data["user"] == "++++++++"
    assert live_data["password"] == "++++++++" and predicted_data["password"] == "++++++++++++"
    assert live_data["token"] != predicted_data["token"]
    assert "-  password: '++++++++'" in result.diff_text or "-  password: ++++++++" in result.diff_text


def test_mask_secret() -> None:
    masked = diff.mask_secret(secret(data={"a": b64("x"), "b": b64("x")}, stringData={"c": "y"}))
    assert masked["data"] == {"a": "++++++++", "b": "++++++++"}
    assert masked["stringData"] == {"c": "++++++++"}
    first, second = diff.mask_secrets(secret(data={"k": "v1"}), secret(data={"k": "v2"}))
    assert first is not None and second is not None
    assert (first["data"]["k"], second["data"]["k"]) == ("++++++++", "++++++++++++")


# ---------------------------------------------------------------------------------------------------
# FieldsV1 paths (tugboat.kube.fieldsv1, used by managedFieldsManagers and removal detection)


def test_fieldsv1_decode_and_resolve() -> None:
    tree = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:containers": {
                'k:{"name":"web"}': {
                    ".": {},
                    "f:image": {},
                    "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}}},
                }
            },
            "f:finalizers": {'v:"a"': {}},
        },
    }
    paths = fieldsv1.decode(tree)
    assert ("f:metadata", "f:labels") in paths
    assert ("f:spec", "f:containers", 'k:{"name":"web"}', "f:image") in paths
    obj = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "containers": [
                {"name": "other"},
                {"name": "web", "image": "i", "ports": [{"containerPort": 80}]},
            ],
            "finalizers": ["b", "a"],
        },
    }
    assert fieldsv1.get(obj, ("f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == (True, "i")
    # A port written without protocol is the TCP port.
    port = (
        "f:spec",
        "f:containers",
        'k:{"name":"web"}',
        "f:ports",
        'k:{"containerPort":80,"protocol":"TCP"}',
    )
    assert fieldsv1.get(obj, port)[0]
    assert fieldsv1.remove(obj, ("f:spec", "f:finalizers", 'v:"a"'))
    assert obj["spec"]["finalizers"] == ["b"]
    assert not fieldsv1.remove(obj, ("f:spec", "f:nothing"))
    assert fieldsv1.to_string(port) == '.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]'
    with pytest.raises(fieldsv1.FieldsV1Error):
        fieldsv1.decode({"f:spec": "not an object"})


# ---------------------------------------------------------------------------------------------------
# Argo CD's example apps (when TUGBOAT_EXAMPLES points at a checkout)


def test_guestbook_example_against_a_defaulted_live_copy() -> None:
    root = examples_support.example_dir("argocd-example-apps")
    if not root:
        pytest.skip("TUGBOAT_EXAMPLES (argocd-example-apps) is not available")
    directory = Path(root) / "guestbook"
    objects = [
        doc
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    deployment = next(obj for obj in objects if obj["kind"] == "Deployment")
    live = live_of(deployment)
    assert not diff.diff(deployment, live).modified
    container(live)["image"] = "gcr.io/heptio-images/ks-guestbook-demo:0.1"
    assert diff.diff(deployment, live).modified


def test_jq_expression_with_several_results_is_skipped() -> None:
    desired, live = scaled()
    rule = IgnoreRule("apps", "Deployment", jq_path_expressions=[".spec.replicas), (.spec"])
    result = diff.diff(desired, live, ignore=[rule])
    assert result.modified
    assert "JQ patch returned multiple objects" in result.warnings[0]


def test_resource_keys() -> None:
    key = ResourceKey.of(desired_deployment())
    assert str(key) == "apps/Deployment guestbook/guestbook-ui"
    assert key.diff_header() == "===== apps/Deployment guestbook/guestbook-ui ======"
    namespace = ResourceKey.of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "guestbook"}})
    assert namespace == ResourceKey("", "Namespace", "", "guestbook")
    assert namespace.group_kind == "Namespace"
    assert str(namespace) == "Namespace guestbook"
