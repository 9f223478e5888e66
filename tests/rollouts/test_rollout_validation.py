"""Rollout spec validation: the InvalidSpec messages, worded as upstream words them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tugboat.rollouts import validation

PREFIX = 'The Rollout "foo" is invalid: '


def rollout(strategy: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "foo"}},
        "template": {
            "metadata": {"labels": {"app": "foo"}},
            "spec": {"containers": [{"name": "foo", "image": "argoproj/rollouts-demo:blue"}]},
        },
        "strategy": strategy
        if strategy is not None
        else {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
    }
    body.update(spec)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "foo"},
        "spec": body,
    }


def canary(**fields: Any) -> dict[str, Any]:
    return rollout({"canary": fields})


def message(ro: dict[str, Any]) -> str:
    found = validation.validate(ro)
    assert found is not None and found.startswith(PREFIX), found
    return found[len(PREFIX) :]


def test_valid_rollouts() -> None:
    assert validation.validate(rollout()) is None
    assert validation.validate(rollout({"blueGreen": {"activeService": "a", "previewService": "p"}})) is None
    assert validation.validate(rollout({"blueGreen": {"activeService": "a"}})) is None
    assert validation.validate(canary(maxSurge=0, maxUnavailable=1)) is None
    assert validation.validate(canary(steps=[{"pause": {"duration": "1h"}}, {"setWeight": 100}])) is None
    nginx = {"nginx": {"stableIngress": "ing"}, "maxTrafficWeight": 1000}
    assert (
        validation.validate(
            canary(canaryService="c", stableService="s", trafficRouting=nginx, steps=[{"setWeight": 500}])
        )
        is None
    )


def test_input_is_not_mutated() -> None:
    ro = canary(maxSurge=0, maxUnavailable=0)
    before = copy.deepcopy(ro)
    validation.validate(ro)
    assert ro == before


def test_selector() -> None:
    ro = rollout()
    del ro["spec"]["selector"]
    assert message(ro) == "spec.selector: Required value: Rollout has missing field '.spec.selector'"
    ro["spec"]["selector"] = {}
    assert message(ro) == "spec.selector: Invalid value: {}: empty selector is invalid for deployment"
    ro["spec"]["selector"] = {"matchLabels": {"app": "doesnt-match"}}
    assert validation.validate(ro) == (
        'The Rollout "foo" is invalid: spec.template.metadata.labels: Invalid value: {"app":"foo"}: '
        "`selector` does not match template `labels`"
    )
    ro["spec"]["selector"] = {
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["foo", "bar"]}]
    }
    assert validation.validate(ro) is None
    ro["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Sometimes"}]}
    assert message(ro).startswith("spec.selector: Invalid value: ")


def test_template_without_labels_or_containers() -> None:
    ro = rollout()
    ro["spec"]["template"]["metadata"] = {}
    assert message(ro) == (
        "spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`"
    )
    ro = rollout()
    ro["spec"]["template"]["spec"] = {}
    assert message(ro) == "spec.template.spec.containers: Required value"
    ro["spec"]["template"]["spec"] = {"containers": [{"name": "c"}]}
    assert message(ro) == "spec.template.spec.containers[0].image: Required value"
    ro["spec"]["template"]["spec"]["containers"][0]["image"] = "x"
    ro["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert (
        message(ro)
        == 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    )


def test_workload_ref_needs_no_selector_but_an_empty_template() -> None:
    ro = rollout()
    del ro["spec"]["selector"]
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "foo"}
    assert (
        message(ro) == "spec.template: Internal error: template must be empty for workload reference rollout"
    )
    del ro["spec"]["template"]
    assert validation.validate(ro) is None


def test_numbers() -> None:
    assert (
        message(rollout(replicas=-1))
        == "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    )
    assert message(rollout(minReadySeconds=-5)) == (
        "spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0"
    )
    assert message(rollout(revisionHistoryLimit=-1)) == (
        "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"
    )
    assert message(rollout(minReadySeconds=600)) == (
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    )
    assert validation.validate(rollout(minReadySeconds=30, progressDeadlineSeconds=31)) is None


def test_strategy_count() -> None:
    assert message(rollout({})) == (
        "spec.strategy.strategy: Required value: "
        "Rollout has missing field '.spec.strategy.canary or .spec.strategy.blueGreen'"
    )
    both = rollout({"canary": {}, "blueGreen": {"activeService": "a"}})
    assert message(both) == (
        'spec.strategy.strategy: Invalid value: "blueGreen: true canary: true": '
        "Multiple Strategies can not be listed"
    )


def test_blue_green_services() -> None:
    assert message(rollout({"blueGreen": {"previewService": "p"}})) == (
        "spec.strategy.blueGreen.activeService: Required value: "
        "Rollout has missing field '.spec.strategy.blueGreen.activeService'"
    )
    assert message(rollout({"blueGreen": {"activeService": "svc", "previewService": "svc"}})) == (
        'spec.strategy.activeService: Invalid value: "svc": This rollout uses the same service for the '
        "active and preview services, but two different services are required."
    )


def test_blue_green_scale_down_limit_and_anti_affinity() -> None:
    ro = rollout({"blueGreen": {"activeService": "a", "scaleDownDelayRevisionLimit": 11}})
    assert message(ro) == (
        "spec.strategy.scaleDownDelayRevisionLimit: Invalid value: 11: This rollout's revision history limit "
        "can not be smaller than the rollout's scale down limit"
    )
    ro = rollout({"blueGreen": {"activeService": "a", "antiAffinity": {}}})
    assert message(ro) == (
        "spec.strategy.antiAffinity: Invalid value: "
        '"antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution: false '
        'antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution: false": '
        "AntiAffinity must have exactly one strategy listed"
    )
    ro = canary(antiAffinity={"preferredDuringSchedulingIgnoredDuringExecution": {"weight": 0}})
    assert (
        message(ro)
        == "spec.strategy.antiAffinity.weight: Invalid value: 0: AntiAffinity weight must be between 1-100"
    )


def test_canary_services() -> None:
    assert message(canary(canaryService="svc", stableService="svc")) == (
        'spec.strategy.stableService: Invalid value: "svc": This rollout uses the same service for the '
        "stable and canary services, but two different services are required."
    )
    assert message(canary(canaryService="c", trafficRouting={"nginx": {"stableIngress": "i"}})) == (
        'spec.strategy.stableService: Invalid value: "": '
        "Canary service and Stable service must to be set to use Traffic Routing"
    )
    assert message(canary(stableService="s", trafficRouting={"smi": {}})) == (
        'spec.strategy.canaryService: Invalid value: "": '
        "Canary service and Stable service must to be set to use Traffic Routing"
    )
    # Istio with a DestinationRule (subset split) needs no canary/stable services
    assert validation.validate(canary(trafficRouting={"istio": {"destinationRule": {"name": "d"}}})) is None


@pytest.mark.parametrize(
    ("surge", "unavailable", "shown"),
    [(0, 0, "0"), ("0%", 0, '"0%"'), (0, "0%", "0"), ("0", "0%", '"0"')],
)
def test_max_surge_and_unavailable_not_both_zero(
    surge: int | str, unavailable: int | str, shown: str
) -> None:
    assert message(canary(maxSurge=surge, maxUnavailable=unavailable)) == (
        f"spec.strategy.maxSurge: Invalid value: {shown}: MaxSurge and MaxUnavailable both can not be zero"
    )


def test_canary_scaling_needs_traffic_routing() -> None:
    assert message(canary(scaleDownDelaySeconds=60)) == (
        "spec.strategy.scaleDownDelaySeconds: Invalid value: 60: "
        "Canary scaleDownDelaySeconds can only be used with traffic routing"
    )
    assert message(canary(dynamicStableScale=True)) == (
        "spec.strategy.dynamicStableScale: Invalid value: true: "
        "Canary dynamicStableScale can only be used with traffic routing"
    )
    routed = {"canaryService": "c", "stableService": "s", "trafficRouting": {"smi": {}}}
    assert message(canary(**routed, dynamicStableScale=True, scaleDownDelaySeconds=5)) == (
        "spec.strategy.dynamicStableScale: Invalid value: true: "
        "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds"
    )
    routed["trafficRouting"] = {"smi": {}, "maxTrafficWeight": 1000}
    assert message(canary(**routed)) == (
        "spec.strategy.trafficRouting.maxTrafficWeight: Invalid value: 1000: "
        "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins"
    )


def test_set_weight_range() -> None:
    assert message(canary(steps=[{"pause": {}}, {"setWeight": 101}])) == (
        "spec.strategy.steps[1].setWeight: Invalid value: 101: SetWeight needs to be between 0 and 100"
    )
    assert message(canary(steps=[{"setWeight": -1}])) == (
        "spec.strategy.steps[0].setWeight: Invalid value: -1: SetWeight needs to be between 0 and 100"
    )
    assert validation.validate(canary(steps=[{"setWeight": 0}, {"setWeight": 100}])) is None


@pytest.mark.parametrize(("duration", "shown"), [("abc", "-1"), ("10x", "-1"), ("-5", "-5"), (-3, "-3")])
def test_pause_duration(duration: Any, shown: str) -> None:
    assert message(canary(steps=[{"pause": {"duration": duration}}])) == (
        f"spec.strategy.steps[0].pause.duration: Invalid value: {shown}: Duration needs to be greater than 0"
    )


def test_step_kinds() -> None:
    assert message(canary(steps=[{}])) == (
        'spec.strategy.steps[0]: Invalid value: "step.Experiment: true step.Pause: true step.SetWeight: true '
        "step.Analysis: true step.SetCanaryScale: true step.SetHeaderRoute: true step.SetMirrorRoute: true "
        'step.Plugin: true": Step must have one of the following set: experiment, setWeight, setCanaryScale, '
        "plugin or pause"
    )
    assert message(canary(steps=[{"setWeight": 10, "pause": {}}])) == (
        'spec.strategy.steps[0]: Invalid value: "step.Experiment: false step.Pause: true '
        'step.SetWeight: true step.Analysis: false": Step must have one of the following set: experiment, '
        "setWeight, setCanaryScale, plugin or pause"
    )
    assert message(canary(steps=[{"setCanaryScale": {"weight": 10}}])) == (
        "spec.strategy.trafficRouting: Required value: SetCanaryScale requires TrafficRouting to be set"
    )


def test_routes_and_experiments() -> None:
    header = {"setHeaderRoute": {"name": "h", "match": [{"headerName": "x", "headerValue": {"exact": "1"}}]}}
    assert message(canary(steps=[header])) == (
        'spec.strategy.steps[0].setHeaderRoute: Invalid value: {"match":[{"headerName":"x",'
        '"headerValue":{"exact":"1"}}],"name":"h"}: '
        "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix"
    )
    istio = {"canaryService": "c", "stableService": "s", "trafficRouting": {"istio": {"virtualService": {}}}}
    assert message(canary(**istio, steps=[header])) == (
        "spec.strategy.trafficRouting.managedRoutes: Required value: "
        "Rollout has missing field 'spec.strategy.canary.trafficRouting.managedRoutes'"
    )
    istio["trafficRouting"]["managedRoutes"] = [{"name": "other"}]
    assert message(canary(**istio, steps=[header])) == (
        'spec.strategy.steps[0].setHeaderRoute: Invalid value: "h": '
        "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes"
    )
    istio["trafficRouting"]["managedRoutes"] = [{"name": "h"}]
    assert validation.validate(canary(**istio, steps=[header])) is None
    header["setHeaderRoute"]["match"][0]["headerValue"] = {"exact": "1", "prefix": "2"}
    assert message(canary(**istio, steps=[header])).endswith(
        "StringMatch match value must have exactly one of the following: exact, regex, prefix"
    )
    experiment = {"experiment": {"templates": [{"name": "t", "specRef": "canary", "weight": 20}]}}
    assert message(canary(steps=[experiment])) == (
        "spec.strategy.steps[0].experiment.templates[0].weight: Invalid value: 20: "
        "Experiment template weight cannot be set unless TrafficRouting is enabled"
    )


def test_first_problem_is_reported_and_all_are_listed() -> None:
    ro = canary(maxSurge=0, maxUnavailable=0, steps=[{"setWeight": 200}])
    ro["spec"]["replicas"] = -1
    problems = [str(e) for e in validation.field_errors(ro)]
    assert problems == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.strategy.maxSurge: Invalid value: 0: MaxSurge and MaxUnavailable both can not be zero",
        "spec.strategy.steps[0].setWeight: Invalid value: 200: SetWeight needs to be between 0 and 100",
    ]
    assert validation.validate(ro) == PREFIX + problems[0]


def test_render_value() -> None:
    assert validation.render_value(True) == "true"
    assert validation.render_value(7) == "7"
    assert validation.render_value('a "b"') == '"a \\"b\\""'
    assert validation.render_value(None) == "null"
    assert validation.render_value({"b": 1, "a": [1, "<&>"]}) == '{"a":[1,"\\u003c\\u0026\\u003e"],"b":1}'
