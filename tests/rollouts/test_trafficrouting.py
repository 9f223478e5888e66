"""The traffic routers against a real local cluster: the objects they write (weights, annotations, owner
references, names), that an unchanged reconcile writes nothing, and the errors users get.

The provider CRDs (TrafficSplit, VirtualService, DestinationRule, HTTPRoute) are not part of a cluster;
the tests install minimal ones (open schemas) when they are missing. Istio's are served at v1alpha3
only, so that the Istio router has to discover the version instead of assuming its favourite.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clusterproc import ClusterProcess, start_cluster
from tugboat.kube import errors, kinds
from tugboat.kube.client import Client
from tugboat.kube.kinds import Kind
from tugboat.rollouts import crds, trafficrouting
from tugboat.rollouts.trafficrouting import base, gatewayapi, istio, nginx, smi

CRDS = [
    ("split.smi-spec.io", "TrafficSplit", "trafficsplits", ["v1alpha1"]),
    ("networking.istio.io", "VirtualService", "virtualservices", ["v1alpha3"]),
    ("networking.istio.io", "DestinationRule", "destinationrules", ["v1alpha3"]),
    ("gateway.networking.k8s.io", "HTTPRoute", "httproutes", ["v1"]),
]
TS = Kind("split.smi-spec.io", "v1alpha1", "TrafficSplit", "trafficsplits")
HTTPROUTE = Kind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
MANAGED_BY = "argo-rollouts.argoproj.io/managed-by-rollouts"


def _crd(group: str, kind: str, plural: str, versions: list[str]) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {"name": v, "served": True, "storage": i == 0, "schema": schema}
                for i, v in enumerate(versions)
            ],
        },
    }


def _install_crds(cluster: ClusterProcess) -> None:
    """Install the provider CRDs and the Rollout CRD (owners must exist: the garbage collector runs)."""
    wanted = [(g, p, _crd(g, k, p, v)) for g, k, p, v in CRDS]
    wanted.append((crds.GROUP, "rollouts", crds.rollout_crd()))
    with cluster.client() as http:
        for group, plural, crd in wanted:
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{group}"
            if http.get(path).status_code == 404:
                created = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
                assert created.status_code in (201, 409), created.text
        deadline = time.monotonic() + 10
        for group, plural, _ in wanted:
            crd = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{group}").json()
            version = next(v["name"] for v in crd["spec"]["versions"] if v["served"])
            while http.get(f"/apis/{group}/{version}/{plural}").status_code != 200:
                assert time.monotonic() < deadline, f"{plural}.{group} not served"
                time.sleep(0.05)


@pytest.fixture(scope="module")
def with_crds(cluster: ClusterProcess) -> ClusterProcess:
    _install_crds(cluster)
    return cluster


@pytest.fixture
async def client(with_crds: ClusterProcess) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(with_crds.kubeconfig, field_manager="test") as c:
        yield c


def rollout(namespace: str, routing: dict[str, Any], *, name: str = "ro", **canary: Any) -> dict[str, Any]:
    """A Rollout as the controller sees it (not stored: enough for calls that write nothing)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {
            "strategy": {
                "canary": {
                    "canaryService": "canary-svc",
                    "stableService": "stable-svc",
                    "trafficRouting": routing,
                    **canary,
                }
            }
        },
    }


async def stored(client: Client, ro: dict[str, Any]) -> dict[str, Any]:
    """``ro`` created in the cluster, so that objects it owns are not garbage-collected."""
    body = dict(ro, metadata={k: v for k, v in ro["metadata"].items() if k != "uid"})
    body["spec"] = dict(ro["spec"], selector={"matchLabels": {"app": "web"}})
    return await client.create(crds.ROLLOUT, body)


def only(routers: list[trafficrouting.Router], type_: str) -> trafficrouting.Router:
    assert [r.type for r in routers] == [type_]
    return routers[0]


def rv(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


def owned_by(obj: dict[str, Any], ro: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return [(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs] == [
        ("Rollout", ro["metadata"]["name"], ro["metadata"]["uid"], True)
    ]


# ------------------------------------------------------------------------------------------- nginx


def ingress(namespace: str, name: str, rules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"kubernetes.io/ingress.class": "nginx", "team": "web"},
        },
        "spec": {"rules": rules, **extra},
    }


def http_rule(host: str, *paths: tuple[str, str]) -> dict[str, Any]:
    return {
        "host": host,
        "http": {
            "paths": [
                {
                    "path": p,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": svc, "port": {"number": 80}}},
                }
                for p, svc in paths
            ]
        },
    }


async def test_nginx_creates_and_weights_the_canary_ingress(client: Client, namespace: str) -> None:
    stable_rules = [
        http_rule("app.example.com", ("/", "stable-svc"), ("/admin", "admin-svc")),
        http_rule("other.example.com", ("/", "other-svc")),
    ]
    tls = [{"hosts": ["app.example.com"], "secretName": "app-tls"}]
    await client.create(
        kinds.INGRESS, ingress(namespace, "web", stable_rules, tls=tls, ingressClassName="nginx")
    )
    ro = rollout(
        namespace,
        {"nginx": {"stableIngress": "web", "additionalIngressAnnotations": {"canary-by-header": "X-Canary"}}},
    )
    ro = await stored(client, ro)
    router = only(trafficrouting.routers_for(client, ro), "Nginx")
    await router.update_hash("abc", "def")  # nothing to do for nginx
    await router.set_weight(10)

    canary = await client.get(kinds.INGRESS, "ro-web-canary", namespace)
    annotations = canary["metadata"]["annotations"]
    assert annotations == {
        "kubernetes.io/ingress.class": "nginx",
        "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "10",
    }
    assert owned_by(canary, ro)
    # Only the rule reaching the stable Service is copied, its stable backend re-pointed at the canary.
    assert canary["spec"]["rules"] == [
        http_rule("app.example.com", ("/", "canary-svc"), ("/admin", "admin-svc"))
    ]
    assert canary["spec"]["tls"] == tls and canary["spec"]["ingressClassName"] == "nginx"
    assert await router.verify_weight(10) is True
    assert await router.verify_weight(20) is False

    # A reconcile that changes nothing writes nothing; annotations others add are kept.
    await router.set_weight(10)
    assert rv(await client.get(kinds.INGRESS, "ro-web-canary", namespace)) == rv(canary)
    await client.patch(
        kinds.INGRESS, "ro-web-canary", {"metadata": {"annotations": {"x": "y"}}}, namespace=namespace
    )
    await router.set_weight(30)
    updated = await client.get(kinds.INGRESS, "ro-web-canary", namespace)
    assert updated["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "30"
    assert updated["metadata"]["annotations"]["x"] == "y"
    assert await router.verify_weight(30) is True
    await router.remove_managed_routes()  # nothing to do for nginx

    # The stable Ingress itself is never touched.
    stable = await client.get(kinds.INGRESS, "web", namespace)
    assert stable["spec"]["rules"] == stable_rules


async def test_nginx_several_ingresses_prefix_and_weight_total(client: Client, namespace: str) -> None:
    for name in ("a", "b"):
        await client.create(
            kinds.INGRESS, ingress(namespace, name, [http_rule(f"{name}.io", ("/", "stable-svc"))])
        )
    ro = rollout(
        namespace,
        {
            "nginx": {"stableIngresses": ["a", "b"], "annotationPrefix": "custom.io"},
            "maxTrafficWeight": 1000,
        },
    )
    ro = await stored(client, ro)
    router = only(trafficrouting.routers_for(client, ro), "Nginx")
    await router.set_weight(250)
    for name in ("a", "b"):
        canary = await client.get(kinds.INGRESS, f"ro-{name}-canary", namespace)
        assert {k: v for k, v in canary["metadata"]["annotations"].items() if k.startswith("custom.io")} == {
            "custom.io/canary": "true",
            "custom.io/canary-weight": "250",
            "custom.io/canary-weight-total": "1000",
        }
    assert await router.verify_weight(250) is True
    assert nginx.canary_ingress_name("r" * 200, "i" * 100) == "r" * 200 + "-" + "i" * 45 + "-canary"


async def test_nginx_errors(client: Client, namespace: str) -> None:
    missing = only(
        trafficrouting.routers_for(client, rollout(namespace, {"nginx": {"stableIngress": "nope"}})), "Nginx"
    )
    with pytest.raises(trafficrouting.RouterError) as exc:
        await missing.set_weight(10)
    assert str(exc.value) == (
        'spec.strategy.canary.trafficRouting.nginx.stableIngress: Invalid value: "nope": '
        'ingresses.networking.k8s.io "nope" not found'
    )
    assert await missing.verify_weight(10) is False

    await client.create(
        kinds.INGRESS, ingress(namespace, "elsewhere", [http_rule("x.io", ("/", "other-svc"))])
    )
    unrelated = rollout(namespace, {"nginx": {"stableIngress": "elsewhere"}})
    with pytest.raises(
        trafficrouting.RouterError, match="ingress `elsewhere` has no rules using service stable-svc"
    ):
        await only(trafficrouting.routers_for(client, unrelated), "Nginx").set_weight(10)

    # A canary Ingress of that name owned by someone else is not taken over.
    await client.create(kinds.INGRESS, ingress(namespace, "web", [http_rule("x.io", ("/", "stable-svc"))]))
    await client.create(kinds.INGRESS, ingress(namespace, "ro-web-canary", [http_rule("x.io", ("/", "x"))]))
    taken = rollout(namespace, {"nginx": {"stableIngress": "web"}})
    with pytest.raises(
        trafficrouting.RouterError, match="canary ingress `ro-web-canary` controlled by different"
    ):
        await only(trafficrouting.routers_for(client, taken), "Nginx").set_weight(10)

    no_ingress = only(trafficrouting.routers_for(client, rollout(namespace, {"nginx": {}})), "Nginx")
    with pytest.raises(trafficrouting.RouterError, match="stableIngress: Required value"):
        await no_ingress.set_weight(0)


# --------------------------------------------------------------------------------------------- SMI


async def test_smi_owns_and_weights_the_traffic_split(client: Client, namespace: str) -> None:
    ro = rollout(namespace, {"smi": {}})
    ro = await stored(client, ro)
    router = only(trafficrouting.routers_for(client, ro), "SMI")
    await router.set_weight(25)
    split = await client.get(TS, "ro", namespace)
    assert owned_by(split, ro)
    assert split["spec"] == {
        "service": "stable-svc",
        "backends": [{"service": "canary-svc", "weight": 25}, {"service": "stable-svc", "weight": 75}],
    }
    assert await router.verify_weight(25) is True and await router.verify_weight(30) is False
    await router.set_weight(25)
    assert rv(await client.get(TS, "ro", namespace)) == rv(split)
    await router.set_weight(0)
    backends = (await client.get(TS, "ro", namespace))["spec"]["backends"]
    assert [b["weight"] for b in backends] == [0, 100]

    # Quantity-style weights written by someone else count as the same weights: nothing to write.
    await client.patch(
        TS,
        "ro",
        {
            "spec": {
                "backends": [
                    {"service": "canary-svc", "weight": "0"},
                    {"service": "stable-svc", "weight": "100"},
                ]
            }
        },
        namespace=namespace,
    )
    before = await client.get(TS, "ro", namespace)
    await router.set_weight(0)
    assert rv(await client.get(TS, "ro", namespace)) == rv(before)

    named = rollout(namespace, {"smi": {"trafficSplitName": "split", "rootService": "root-svc"}}, name="ro2")
    named = await stored(client, named)
    await only(trafficrouting.routers_for(client, named), "SMI").set_weight(5)
    assert (await client.get(TS, "split", namespace))["spec"]["service"] == "root-svc"

    foreign = rollout(namespace, {"smi": {"trafficSplitName": "split"}}, name="ro3")
    with pytest.raises(trafficrouting.RouterError, match="Rollout does not own TrafficSplit `split`"):
        await only(trafficrouting.routers_for(client, foreign), "SMI").set_weight(5)


# ------------------------------------------------------------------------------------------- Istio


def destination(host: str, weight: int, subset: str | None = None) -> dict[str, Any]:
    dest: dict[str, Any] = {"host": host}
    if subset:
        dest["subset"] = subset
    return {"destination": dest, "weight": weight}


async def _vs_kind(client: Client) -> Kind:
    return await istio.VIRTUAL_SERVICE.resolve(client)


async def test_istio_host_level_split(client: Client, namespace: str) -> None:
    vs_kind = await _vs_kind(client)
    crd = await client.get(kinds.CRD, "virtualservices.networking.istio.io")
    served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert vs_kind.version == next(v for v in ("v1beta1", "v1", "v1alpha3") if v in served)
    other_route = {"name": "other", "route": [destination("other-svc", 100)]}
    vs = {
        "apiVersion": vs_kind.api_version,
        "kind": "VirtualService",
        "metadata": {"name": "vs", "namespace": namespace},
        "spec": {
            "hosts": ["app"],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        destination("stable-svc.ns.svc.cluster.local", 100),
                        destination("canary-svc", 0),
                        destination("leftover-svc", 0),
                    ],
                },
                other_route,
            ],
        },
    }
    await client.create(vs_kind, vs)
    ro = rollout(namespace, {"istio": {"virtualService": {"name": f"vs.{namespace}", "routes": ["primary"]}}})
    router = only(trafficrouting.routers_for(client, ro), "Istio")
    await router.update_hash("abc", "def")  # no DestinationRule: nothing to do
    await router.set_weight(20)
    live = await client.get(vs_kind, "vs", namespace)
    # The stable and canary destinations are weighted; a destination that is neither goes (as upstream).
    assert live["spec"]["http"][0]["route"] == [
        destination("stable-svc.ns.svc.cluster.local", 80),
        destination("canary-svc", 20),
    ]
    assert live["spec"]["http"][1] == other_route and live["spec"]["hosts"] == ["app"]
    assert await router.verify_weight(20) is True and await router.verify_weight(30) is False
    await router.set_weight(20)
    assert rv(await client.get(vs_kind, "vs", namespace)) == rv(live)

    # Routes omitted: only possible with a single (unmanaged) http route.
    omitted = rollout(namespace, {"istio": {"virtualService": {"name": "vs"}}})
    with pytest.raises(trafficrouting.RouterError, match=r"spec.http\[\] should be set in VirtualService"):
        await only(trafficrouting.routers_for(client, omitted), "Istio").set_weight(50)
    await client.patch(vs_kind, "vs", {"spec": {"http": [live["spec"]["http"][0]]}}, namespace=namespace)
    await only(trafficrouting.routers_for(client, omitted), "Istio").set_weight(50)
    weights = [d["weight"] for d in (await client.get(vs_kind, "vs", namespace))["spec"]["http"][0]["route"]]
    assert weights == [50, 50]

    missing_route = rollout(namespace, {"istio": {"virtualService": {"name": "vs", "routes": ["nope"]}}})
    with pytest.raises(trafficrouting.RouterError, match="HTTP Route 'nope' is not found"):
        await only(trafficrouting.routers_for(client, missing_route), "Istio").set_weight(10)
    wrong_canary = rollout(
        namespace, {"istio": {"virtualService": {"name": "vs"}}}, canaryService="elsewhere-svc"
    )
    with pytest.raises(trafficrouting.RouterError, match="Canary Service 'elsewhere-svc' not found in route"):
        await only(trafficrouting.routers_for(client, wrong_canary), "Istio").set_weight(10)
    missing_vs = rollout(namespace, {"istio": {"virtualService": {"name": "absent"}}})
    with pytest.raises(
        trafficrouting.RouterError, match=re.escape('virtualservices.networking.istio.io "absent" not found')
    ):
        await only(trafficrouting.routers_for(client, missing_vs), "Istio").set_weight(10)


async def test_istio_subset_level_split_and_managed_routes(client: Client, namespace: str) -> None:
    vs_kind = await _vs_kind(client)
    dr_kind = await istio.DESTINATION_RULE.resolve(client)
    await client.create(
        dr_kind,
        {
            "metadata": {"name": "dr", "namespace": namespace},
            "spec": {
                "host": "app",
                "subsets": [
                    {"name": "canary", "labels": {"app": "web"}},
                    {
                        "name": "stable",
                        "labels": {"app": "web"},
                        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                    },
                    {"name": "legacy", "labels": {"version": "1"}},
                ],
            },
        },
    )
    header = {
        "name": "header-route",
        "match": [{"headers": {"x": {"exact": "1"}}}],
        "route": [destination("app", 100, "canary")],
    }
    await client.create(
        vs_kind,
        {
            "metadata": {"name": "vs", "namespace": namespace},
            "spec": {
                "http": [
                    header,
                    {
                        "name": "main",
                        "route": [destination("app", 100, "stable"), destination("app", 0, "canary")],
                    },
                ]
            },
        },
    )
    ro = rollout(
        namespace,
        {
            "istio": {
                "virtualServices": [{"name": "vs", "routes": ["main"]}],
                "destinationRule": {"name": "dr", "canarySubsetName": "canary", "stableSubsetName": "stable"},
            },
            "managedRoutes": [{"name": "header-route"}],
        },
        canaryService="",
        stableService="",
    )
    router = only(trafficrouting.routers_for(client, ro), "Istio")
    await router.update_hash("abc", "def")
    dr = await client.get(dr_kind, "dr", namespace)
    assert dr["metadata"]["annotations"][MANAGED_BY] == "ro"
    assert dr["spec"]["subsets"] == [
        {"name": "canary", "labels": {"app": "web", "rollouts-pod-template-hash": "abc"}},
        {
            "name": "stable",
            "labels": {"app": "web", "rollouts-pod-template-hash": "def"},
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        },
        {"name": "legacy", "labels": {"version": "1"}},
    ]
    await router.update_hash("abc", "def")
    assert rv(await client.get(dr_kind, "dr", namespace)) == rv(dr)

    await router.set_weight(40)
    http = (await client.get(vs_kind, "vs", namespace))["spec"]["http"]
    assert http[0] == header  # a managed route is not weighted
    assert http[1]["route"] == [destination("app", 60, "stable"), destination("app", 40, "canary")]
    assert await router.verify_weight(40) is True

    await router.remove_managed_routes()
    http = (await client.get(vs_kind, "vs", namespace))["spec"]["http"]
    assert [r["name"] for r in http] == ["main"]
    before = await client.get(vs_kind, "vs", namespace)
    await router.remove_managed_routes()
    assert rv(await client.get(vs_kind, "vs", namespace)) == rv(before)

    no_subset = rollout(
        namespace,
        {
            "istio": {
                "virtualService": {"name": "vs", "routes": ["main"]},
                "destinationRule": {
                    "name": "dr",
                    "canarySubsetName": "preview",
                    "stableSubsetName": "stable",
                },
            }
        },
    )
    with pytest.raises(trafficrouting.RouterError, match="Canary DestinationRule subset 'preview' not found"):
        await only(trafficrouting.routers_for(client, no_subset), "Istio").set_weight(10)


# ------------------------------------------------------------------------------------- Gateway API


def backend(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 80}
    if weight is not None:
        ref["weight"] = weight
    return ref


async def test_gateway_api_weights_http_route_backends(client: Client, namespace: str) -> None:
    header_rule = {
        "name": "header-route",
        "matches": [{"headers": [{"name": "x", "value": "1"}]}],
        "backendRefs": [backend("canary-svc")],
    }
    await client.create(
        HTTPROUTE,
        {
            "metadata": {"name": "route", "namespace": namespace},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [
                    {"backendRefs": [backend("stable-svc", 100), backend("canary-svc", 0)]},
                    {"matches": [{"path": {"value": "/api"}}], "backendRefs": [backend("stable-svc")]},
                    header_rule,
                ],
            },
        },
    )
    ro = rollout(
        namespace,
        {
            "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "route"}},
            "managedRoutes": [{"name": "header-route"}],
        },
    )
    router = only(trafficrouting.routers_for(client, ro), "GatewayAPI")
    await router.update_hash("abc", "def")  # nothing to do
    await router.set_weight(30)
    live = await client.get(HTTPROUTE, "route", namespace)
    rules = live["spec"]["rules"]
    assert rules[0]["backendRefs"] == [backend("stable-svc", 70), backend("canary-svc", 30)]
    assert rules[1]["backendRefs"] == [backend("stable-svc", 70)]
    assert rules[2] == header_rule
    assert live["metadata"]["labels"] == {gatewayapi.IN_PROGRESS_LABEL: "in-progress"}
    assert await router.verify_weight(30) is True and await router.verify_weight(0) is False
    await router.set_weight(30)
    assert rv(await client.get(HTTPROUTE, "route", namespace)) == rv(live)

    await router.set_weight(0)
    live = await client.get(HTTPROUTE, "route", namespace)
    assert gatewayapi.IN_PROGRESS_LABEL not in (live["metadata"].get("labels") or {})
    assert live["spec"]["rules"][0]["backendRefs"] == [backend("stable-svc", 100), backend("canary-svc", 0)]

    await router.remove_managed_routes()
    assert len((await client.get(HTTPROUTE, "route", namespace))["spec"]["rules"]) == 2

    listed = rollout(
        namespace,
        {
            "plugins": {
                "argoproj-labs/gatewayAPI": {"httpRoutes": [{"name": "route"}], "namespace": namespace}
            }
        },
        canaryService="preview-svc",
    )
    with pytest.raises(trafficrouting.RouterError, match="backendRef was not found in httpRoute `route`"):
        await only(trafficrouting.routers_for(client, listed), "GatewayAPI").set_weight(10)
    missing = rollout(namespace, {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "absent"}}})
    with pytest.raises(
        trafficrouting.RouterError, match=re.escape('httproutes.gateway.networking.k8s.io "absent" not found')
    ):
        await only(trafficrouting.routers_for(client, missing), "GatewayAPI").set_weight(10)
    grpc = rollout(namespace, {"plugins": {"argoproj-labs/gatewayAPI": {"grpcRoute": "g"}}})
    with pytest.raises(trafficrouting.RouterError, match="grpcRoute not supported"):
        await only(trafficrouting.routers_for(client, grpc), "GatewayAPI").set_weight(10)


# ------------------------------------------------------------------------------------------ common


async def test_routers_for_lists_configured_providers(client: Client, namespace: str) -> None:
    assert trafficrouting.routers_for(client, rollout(namespace, {})) == []  # no provider configured
    basic = rollout(namespace, {})
    del basic["spec"]["strategy"]["canary"]["trafficRouting"]
    assert trafficrouting.routers_for(client, basic) == []
    assert trafficrouting.routers_for(client, {"spec": {"strategy": {"blueGreen": {}}}}) == []

    mixed = rollout(
        namespace,
        {
            "nginx": {"stableIngress": "web"},
            "smi": {},
            "alb": {"ingress": "x"},
            "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r"}, "acme/other": {}},
        },
    )
    routers = trafficrouting.routers_for(client, mixed)
    assert [r.type for r in routers] == ["Nginx", "ALB", "SMI", "acme/other", "GatewayAPI"]
    with pytest.raises(
        trafficrouting.RouterError,
        match=re.escape("trafficRouting.alb: the ALB traffic router is not supported"),
    ):
        await routers[1].set_weight(10)
    with pytest.raises(trafficrouting.RouterError, match='plugin "acme/other" is not supported'):
        await routers[3].remove_managed_routes()
    unnamed = rollout(namespace, {"istio": {"virtualService": {"name": "vs"}, "destinationRule": {}}})
    with pytest.raises(trafficrouting.RouterError, match=r"destinationRule\.name: Required value"):
        await only(trafficrouting.routers_for(client, unnamed), "Istio").update_hash("a", "b")


async def test_update_retries_after_a_conflicting_write(client: Client, namespace: str) -> None:
    stale = await client.create(
        kinds.CONFIGMAP, {"metadata": {"name": "cm", "namespace": namespace}, "data": {"a": "1"}}
    )
    await client.patch(kinds.CONFIGMAP, "cm", {"data": {"b": "2"}}, namespace=namespace)

    def change(obj: dict[str, Any]) -> dict[str, Any]:
        obj["data"]["c"] = "3"
        return obj

    result = await base.update(client, kinds.CONFIGMAP, "cm", namespace, change, live=stale)
    assert result["data"] == {"a": "1", "b": "2", "c": "3"}  # the other writer's change survived
    with pytest.raises(errors.ApiError) as conflict:
        await base.patch_to(client, kinds.CONFIGMAP, stale, change(dict(stale, data=dict(stale["data"]))))
    assert conflict.value.conflict


async def test_provider_types_not_served(tmp_path: Path) -> None:
    bare = start_cluster(tmp_path / "bare")
    try:
        async with Client.from_kubeconfig(bare.kubeconfig, field_manager="test") as c:
            ro = rollout(
                "default",
                {
                    "smi": {},
                    "istio": {"virtualService": {"name": "vs"}},
                    "plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "r"}},
                },
            )
            expected = {
                "SMI": "TrafficSplit (trafficsplits.split.smi-spec.io, versions v1alpha1, v1alpha2, "
                "v1alpha3) is not served by the cluster: install its CustomResourceDefinition to use "
                "trafficRouting.smi",
                "Istio": "VirtualService (virtualservices.networking.istio.io, versions v1beta1, v1, "
                "v1alpha3) is not served",
                "GatewayAPI": "HTTPRoute (httproutes.gateway.networking.k8s.io, versions v1, v1beta1) is "
                "not served",
            }
            for router in trafficrouting.routers_for(c, ro):
                with pytest.raises(trafficrouting.RouterError) as exc:
                    await router.set_weight(10)
                assert str(exc.value).startswith(expected[router.type])
    finally:
        bare.stop()
    assert smi.TRAFFIC_SPLIT.versions[0] == "v1alpha1"
