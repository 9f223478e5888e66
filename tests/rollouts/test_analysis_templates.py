"""From AnalysisTemplates to an AnalysisRun spec (tugboat.rollouts.analysis.templates) against Argo Rollouts.

The pure parts follow upstream's ``utils/analysis/helpers.go`` (FlattenTemplates, MergeArgs, the dryRun
and measurementRetention merges) and ``utils/template/template.go`` (``{{args.x}}`` substitution, missing
values); ``fetch`` reads real AnalysisTemplate and ClusterAnalysisTemplate objects from the
``argo_cluster`` API server: references, cluster scope, nested templates (each once, cycles included),
upstream's order (namespaced templates first) and the errors for missing ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from clusterproc import ClusterProcess
from tugboat.kube.client import Client
from tugboat.rollouts import crds
from tugboat.rollouts.analysis import templates

Obj = dict[str, Any]
_installed: set[str] = set()


def metric(name: str, **fields: Any) -> Obj:
    return {"name": name, "provider": {"web": {"url": "http://example.test/{{args.service}}"}}, **fields}


def template(*metrics: Obj, args: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {"metrics": list(metrics), **spec}
    if args is not None:
        body["args"] = args
    return {"kind": "AnalysisTemplate", "metadata": {"name": "t"}, "spec": body}


def spec_error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(templates.AnalysisSpecError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# ------------------------------------------------------------------------------------ flatten


def test_flatten_concatenates_metrics_args_and_rules() -> None:
    first = template(
        metric("a"),
        args=[{"name": "service"}],
        dryRun=[{"metricName": "a"}],
        measurementRetention=[{"metricName": "a", "limit": 3}],
    )
    second = template(metric("b"), metric("c"), args=[{"name": "port", "value": "80"}])
    flat = templates.flatten([first, second])
    assert [m["name"] for m in flat["metrics"]] == ["a", "b", "c"]
    assert flat["args"] == [{"name": "service"}, {"name": "port", "value": "80"}]
    assert flat["dryRun"] == [{"metricName": "a"}]
    assert flat["measurementRetention"] == [{"metricName": "a", "limit": 3}]
    # The result is a copy: the templates are left alone.
    flat["metrics"][0]["name"] = "changed"
    assert first["spec"]["metrics"][0]["name"] == "a"


def test_flatten_refuses_two_metrics_of_one_name() -> None:
    message = spec_error(templates.flatten, [template(metric("a")), template(metric("b"), metric("a"))])
    assert message == "two metrics have the same name 'a'"


def test_flatten_refuses_duplicate_rules() -> None:
    dry = [
        template(metric("a"), dryRun=[{"metricName": "a"}]),
        template(metric("b"), dryRun=[{"metricName": "a"}]),
    ]
    assert spec_error(templates.flatten, dry) == "two Dry-Run metric rules have the same name 'a'"
    kept = [
        template(metric("a"), measurementRetention=[{"metricName": ".*", "limit": 1}]),
        template(metric("b"), measurementRetention=[{"metricName": ".*", "limit": 2}]),
    ]
    assert (
        spec_error(templates.flatten, kept)
        == "two Measurement Retention metric rules have the same name '.*'"
    )


def test_flatten_args_declared_in_several_templates() -> None:
    def flat_args(*arg_lists: list[Obj]) -> list[Obj]:
        found: list[Obj] = templates.flatten([template(args=a) for a in arg_lists])["args"]
        return found

    # The same value twice is fine; two values are an error, in upstream's words.
    assert flat_args([{"name": "x", "value": "1"}], [{"name": "x", "value": "1"}]) == [
        {"name": "x", "value": "1"}
    ]
    message = spec_error(flat_args, [{"name": "x", "value": "1"}], [{"name": "x", "value": "2"}])
    assert message == "Argument `x` specified multiple times with different values: '1', '2'"
    # A value is not lost to a later declaration without one ...
    assert flat_args([{"name": "x", "value": "1"}], [{"name": "x"}]) == [{"name": "x", "value": "1"}]
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    assert flat_args([{"name": "x", "value": "1"}], [{"name": "x", "valueFrom": secret}]) == [
        {"name": "x", "value": "1"}
    ]
    # ... and an arg without a value takes the later declaration.
    assert flat_args([{"name": "x"}], [{"name": "x", "value": "2"}]) == [{"name": "x", "value": "2"}]
    assert flat_args([{"name": "x"}], [{"name": "x", "valueFrom": secret}]) == [
        {"name": "x", "valueFrom": secret}
    ]
    assert flat_args([{"name": "x", "valueFrom": secret}], [{"name": "x", "value": "2"}]) == [
        {"name": "x", "value": "2"}
    ]


# ------------------------------------------------------------------------------------ args and rules


def test_merge_args_lays_the_callers_values_over_the_templates() -> None:
    declared = [{"name": "service"}, {"name": "port", "value": "80"}, {"name": "env", "value": "prod"}]
    incoming = [
        {"name": "service", "value": "api"},
        {"name": "port", "value": "8080"},
        {"name": "extra", "value": "x"},
    ]
    assert templates.merge_args(incoming, declared) == [
        {"name": "service", "value": "api"},
        {"name": "port", "value": "8080"},
        {"name": "env", "value": "prod"},
    ]
    # An empty string is a value.
    assert templates.merge_args([{"name": "service", "value": ""}], [{"name": "service"}]) == [
        {"name": "service", "value": ""}
    ]
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    merged = templates.merge_args([{"name": "service", "valueFrom": secret}], [{"name": "service"}])
    assert merged == [{"name": "service", "valueFrom": secret}]
    # The caller's list is not changed.
    assert incoming[0] == {"name": "service", "value": "api"}


def test_merge_args_requires_every_arg_resolved() -> None:
    declared = [{"name": "service", "value": "api"}, {"name": "canary-hash"}]
    assert spec_error(templates.merge_args, [], declared) == "args.canary-hash was not resolved"
    assert spec_error(templates.merge_args, [{"name": "other", "value": "1"}], declared) == (
        "args.canary-hash was not resolved"
    )
    assert templates.merge_args([], []) == []


def test_merge_rules_puts_the_callers_first_and_refuses_duplicates() -> None:
    merged = templates.merge_rules([{"metricName": "a"}], [{"metricName": "b"}])
    assert merged == [{"metricName": "a"}, {"metricName": "b"}]
    assert spec_error(templates.merge_rules, [{"metricName": "a"}], [{"metricName": "a"}]) == (
        "two Dry-Run metric rules have the same name 'a'"
    )
    message = spec_error(
        templates.merge_rules,
        [{"metricName": "a", "limit": 1}],
        [{"metricName": "a", "limit": 2}],
        what="Measurement Retention",
    )
    assert message == "two Measurement Retention metric rules have the same name 'a'"


def test_run_spec() -> None:
    found = [
        template(metric("a"), args=[{"name": "service"}], dryRun=[{"metricName": "a"}]),
        template(metric("b"), measurementRetention=[{"metricName": "b", "limit": 20}]),
    ]
    spec = templates.run_spec(
        found,
        args=[{"name": "service", "value": "api"}],
        dry_run=[{"metricName": "b"}],
        measurement_retention=[{"metricName": "a", "limit": 5}],
    )
    assert spec == {
        "metrics": [metric("a"), metric("b")],
        "args": [{"name": "service", "value": "api"}],
        "dryRun": [{"metricName": "b"}, {"metricName": "a"}],
        "measurementRetention": [{"metricName": "a", "limit": 5}, {"metricName": "b", "limit": 20}],
    }
    # No args, no rules: the keys are left out.
    assert templates.run_spec([template(metric("a"))]) == {"metrics": [metric("a")]}


def test_run_spec_errors() -> None:
    assert spec_error(templates.run_spec, [template()]) == "no metrics specified"
    assert spec_error(templates.run_spec, [template(metric("a"), args=[{"name": "service"}])]) == (
        "args.service was not resolved"
    )
    found = [template(metric("a"), dryRun=[{"metricName": "a"}])]
    assert spec_error(templates.run_spec, found, dry_run=[{"metricName": "a"}]) == (
        "two Dry-Run metric rules have the same name 'a'"
    )


# ------------------------------------------------------------------------------------ substitution


def test_substitute_replaces_args_in_every_string() -> None:
    variables = {"args.service": "api", "args.ns": "prod"}
    value = {
        "name": "m",
        "successCondition": "result[0] >= {{args.service}}",
        "provider": {
            "prometheus": {"query": 'sum(rate(x{service="{{ args.service }}",ns="{{args.ns}}"}[5m]))'},
            "headers": [{"key": "X-Env", "value": "{{args.ns}}-{{args.ns}}"}],
        },
        "count": 3,
        "flag": True,
        "nothing": None,
    }
    assert templates.substitute(value, variables) == {
        "name": "m",
        "successCondition": "result[0] >= api",
        "provider": {
            "prometheus": {"query": 'sum(rate(x{service="api",ns="prod"}[5m]))'},
            "headers": [{"key": "X-Env", "value": "prod-prod"}],
        },
        "count": 3,
        "flag": True,
        "nothing": None,
    }
    # Object keys too (upstream substitutes the metric's whole JSON text).
    labels = {"metadata": {"labels": {"team-{{args.ns}}": "{{args.service}}"}}}
    assert templates.substitute(labels, variables) == {"metadata": {"labels": {"team-prod": "api"}}}
    # Templated counts and limits become their text (IntOrString).
    assert templates.substitute({"count": "{{args.n}}"}, {"args.n": "5"}) == {"count": "5"}


def test_substitute_keeps_special_characters_of_values() -> None:
    # Upstream quotes values for its JSON round trip, so they arrive unchanged.
    tricky = 'say "hi"\n\tand \\ bye {not a tag}'
    assert templates.substitute("v={{args.x}}", {"args.x": tricky}) == f"v={tricky}"


def test_substitute_reports_an_unknown_tag_as_written() -> None:
    assert (
        spec_error(templates.substitute, {"q": "{{args.missing}}"}, {})
        == "failed to resolve {{args.missing}}"
    )
    assert spec_error(templates.substitute, ["x {{ args.other }}"], {"args.x": "1"}) == (
        "failed to resolve {{ args.other }}"
    )
    # Text without tags is returned as is.
    assert templates.substitute("a { b } c", {}) == "a { b } c"


def test_arg_variables() -> None:
    secret = {"secretKeyRef": {"name": "creds", "key": "token"}}
    args: list[Obj] = [{"name": "service", "value": "api"}, {"name": "token", "valueFrom": secret}]
    # Without secrets (validation): a placeholder stands for the secret's value.
    assert templates.arg_variables(args) == {"args.service": "api", "args.token": "temp-for-secret"}
    assert templates.arg_variables(args, secrets={"token": "s3cr3t"}) == {
        "args.service": "api",
        "args.token": "s3cr3t",
    }
    # The secret wins over a value given beside it, as upstream resolves it.
    both = [{"name": "token", "value": "plain", "valueFrom": secret}]
    assert templates.arg_variables(both, secrets={"token": "s3cr3t"}) == {"args.token": "s3cr3t"}
    # An empty value is a value.
    assert templates.arg_variables([{"name": "x", "value": ""}]) == {"args.x": ""}


def test_arg_variables_refuses_args_without_value() -> None:
    assert spec_error(templates.arg_variables, [{"name": "x"}]) == 'argument "x" was not supplied'
    field_ref = [{"name": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    assert spec_error(templates.arg_variables, field_ref) == 'argument "x" was not supplied'


def test_spec_fingerprint_tells_specs_apart() -> None:
    a = {"metrics": [metric("a")], "args": [{"name": "x", "value": "1"}]}
    same = {"args": [{"value": "1", "name": "x"}], "metrics": [metric("a")]}
    other = {"metrics": [metric("a")], "args": [{"name": "x", "value": "2"}]}
    assert templates.spec_fingerprint(a) == templates.spec_fingerprint(same)
    assert templates.spec_fingerprint(a) != templates.spec_fingerprint(other)


# ------------------------------------------------------------------------------------ fetch


@pytest.fixture
async def client(cluster: ClusterProcess) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test-analysis-templates") as c:
        if cluster.url not in _installed:
            await crds.install(c)
            _installed.add(cluster.url)
        yield c


async def make(client: Client, namespace: str | None, name: str, *metrics: Obj, **spec: Any) -> None:
    """Create an AnalysisTemplate (in ``namespace``) or a ClusterAnalysisTemplate (``namespace=None``)."""
    kind = crds.ANALYSISTEMPLATE if namespace else crds.CLUSTERANALYSISTEMPLATE
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    await client.create(kind, {"metadata": meta, "spec": {"metrics": list(metrics), **spec}})


def names(found: list[Obj]) -> list[tuple[str, str]]:
    return [(t["kind"], t["metadata"]["name"]) for t in found]


async def test_fetch_reads_templates_and_cluster_templates(client: Client, namespace: str) -> None:
    await make(client, namespace, "rate", metric("success-rate"), args=[{"name": "service"}])
    await make(client, None, f"{namespace}-latency", metric("latency"))
    refs: list[Obj] = [
        {"templateName": "rate"},
        {"templateName": f"{namespace}-latency", "clusterScope": True},
    ]
    found = await templates.fetch(client, namespace, refs)
    assert names(found) == [("AnalysisTemplate", "rate"), ("ClusterAnalysisTemplate", f"{namespace}-latency")]
    spec = templates.run_spec(found, args=[{"name": "service", "value": "api"}])
    assert [m["name"] for m in spec["metrics"]] == ["success-rate", "latency"]
    assert spec["args"] == [{"name": "service", "value": "api"}]


async def test_fetch_puts_namespaced_templates_first(client: Client, namespace: str) -> None:
    # Upstream flattens every AnalysisTemplate, then every ClusterAnalysisTemplate.
    await make(client, None, f"{namespace}-cluster", metric("c"))
    await make(client, namespace, "local", metric("l"))
    refs: list[Obj] = [
        {"templateName": f"{namespace}-cluster", "clusterScope": True},
        {"templateName": "local"},
    ]
    found = await templates.fetch(client, namespace, refs)
    assert names(found) == [
        ("AnalysisTemplate", "local"),
        ("ClusterAnalysisTemplate", f"{namespace}-cluster"),
    ]
    assert [m["name"] for m in templates.flatten(found)["metrics"]] == ["l", "c"]


async def test_fetch_follows_nested_templates_once(client: Client, namespace: str) -> None:
    shared = f"{namespace}-shared"
    await make(client, None, shared, metric("shared"))
    await make(client, namespace, "leaf", metric("leaf"))
    await make(
        client,
        namespace,
        "middle",
        metric("middle"),
        templates=[{"templateName": "leaf"}, {"templateName": shared, "clusterScope": True}],
    )
    await make(client, namespace, "top", templates=[{"templateName": "middle"}, {"templateName": "leaf"}])
    refs: list[Obj] = [
        {"templateName": "top"},
        {"templateName": "middle"},
        {"templateName": shared, "clusterScope": True},
    ]
    found = await templates.fetch(client, namespace, refs)
    assert names(found) == [
        ("AnalysisTemplate", "top"),
        ("AnalysisTemplate", "middle"),
        ("AnalysisTemplate", "leaf"),
        ("ClusterAnalysisTemplate", shared),
    ]
    spec = templates.run_spec(found, args=[{"name": "service", "value": "api"}])
    assert [m["name"] for m in spec["metrics"]] == ["middle", "leaf", "shared"]


async def test_fetch_survives_a_cycle(client: Client, namespace: str) -> None:
    await make(client, namespace, "ping", metric("ping"), templates=[{"templateName": "pong"}])
    await make(client, namespace, "pong", metric("pong"), templates=[{"templateName": "ping"}])
    found = await templates.fetch(client, namespace, [{"templateName": "ping"}])
    assert names(found) == [("AnalysisTemplate", "ping"), ("AnalysisTemplate", "pong")]


async def test_a_same_named_template_and_cluster_template_are_both_used(
    client: Client, namespace: str
) -> None:
    name = f"{namespace}-both"
    await make(client, namespace, name, metric("local"))
    await make(client, None, name, metric("cluster"))
    refs: list[Obj] = [
        {"templateName": name},
        {"templateName": name, "clusterScope": True},
        {"templateName": name},
    ]
    found = await templates.fetch(client, namespace, refs)
    assert names(found) == [("AnalysisTemplate", name), ("ClusterAnalysisTemplate", name)]


async def test_fetch_errors(client: Client, namespace: str) -> None:
    await make(client, namespace, "has-missing", metric("a"), templates=[{"templateName": "gone"}])
    with pytest.raises(templates.AnalysisSpecError, match=r'^AnalysisTemplate "absent" not found$'):
        await templates.fetch(client, namespace, [{"templateName": "absent"}])
    with pytest.raises(templates.AnalysisSpecError, match=r'^ClusterAnalysisTemplate "absent" not found$'):
        await templates.fetch(client, namespace, [{"templateName": "absent", "clusterScope": True}])
    with pytest.raises(templates.AnalysisSpecError, match=r'^AnalysisTemplate "gone" not found$'):
        await templates.fetch(client, namespace, [{"templateName": "has-missing"}])
    with pytest.raises(templates.AnalysisSpecError, match="no templateName"):
        await templates.fetch(client, namespace, [{"clusterScope": True}])
    # A namespaced template is looked for in the Rollout's namespace only.
    with pytest.raises(templates.AnalysisSpecError, match=r'^AnalysisTemplate "has-missing" not found$'):
        await templates.fetch(client, "default", [{"templateName": "has-missing"}])
