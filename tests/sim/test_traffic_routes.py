"""Simulated traffic follows traffic-routing objects: nginx canary Ingress, SMI, Gateway API, Istio.

The pure route functions are checked on plain dicts; then a cluster running the workload controllers, the
traffic simulator and the router serves a stable and a canary Deployment, and the per-pod request counters
at ``/metrics/simulated`` must show the split each routing object asks for. The cluster starts without the
routing CRDs, so the router must pick each kind up when its CRD appears.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sim_support import controllers_cluster, wait_for

from clusterproc import ClusterProcess
from tugboat.localcluster.controllers import trafficroutes as tr

Obj = dict[str, Any]

NGINX = "nginx.ingress.kubernetes.io"


# ------------------------------------------------------------------------------------ route functions


def ingress(
    name: str,
    service: str,
    *,
    host: str = "web.example",
    path: str = "/",
    namespace: str = "ns",
    **notes: str,
) -> Obj:
    rule = {
        "host": host,
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": service, "port": {"number": 80}}},
                }
            ]
        },
    }
    meta = {"name": name, "namespace": namespace, "annotations": notes}
    return {"metadata": meta, "spec": {"rules": [rule]}}


def canary(name: str, service: str, weight: str, *, prefix: str = NGINX, **kw: Any) -> Obj:
    notes = {f"{prefix}/canary": "true", f"{prefix}/canary-weight": weight}
    return ingress(name, service, **kw, **notes)


def test_nginx_canary_diverts_its_weight_of_the_stable_service() -> None:
    routes = tr.nginx_routes([ingress("web", "stable"), canary("web-canary", "canary", "20")])
    assert routes == {"stable": {"stable": 80.0, "canary": 20.0}}
    # Any annotation prefix ending in /canary, and canary-weight-total.
    other = canary("c", "canary", "3", prefix="ingress.example.com")
    other["metadata"]["annotations"]["ingress.example.com/canary-weight-total"] = "10"
    assert tr.nginx_routes([ingress("web", "stable"), other]) == {"stable": {"stable": 7.0, "canary": 3.0}}
    # Weight 0 still makes the canary a destination (so it gets nothing of its own); no weight means 0.
    bare = ingress("c", "canary", **{f"{NGINX}/canary": "true"})
    assert tr.nginx_routes([ingress("web", "stable"), bare]) == {"stable": {"stable": 100.0, "canary": 0.0}}


def test_nginx_canary_needs_a_stable_ingress_at_the_same_host_and_path() -> None:
    assert tr.nginx_routes([canary("c", "canary", "20")]) == {}
    assert tr.nginx_routes([ingress("web", "stable"), canary("c", "canary", "20", host="other")]) == {}
    assert tr.nginx_routes([ingress("web", "stable"), canary("c", "canary", "20", path="/api")]) == {}
    off = ingress("c", "canary", **{f"{NGINX}/canary": "false", f"{NGINX}/canary-weight": "20"})
    assert tr.nginx_routes([ingress("web", "stable"), off]) == {}  # two ordinary Ingresses


def test_smi_trafficsplit() -> None:
    split = {
        "metadata": {"name": "s", "namespace": "ns"},
        "spec": {
            "service": "app.ns.svc.cluster.local",
            "backends": [
                {"service": "app-stable", "weight": "500m"},
                {"service": "app-canary", "weight": "500m"},
            ],
        },
    }
    assert tr.smi_routes(split) == {"app": {"app-stable": 0.5, "app-canary": 0.5}}
    assert tr.smi_routes({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"service": "app"}}) == {}


def test_istio_virtualservice_routes() -> None:
    vs = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {"destination": {"host": "stable"}, "weight": 70},
                        {"destination": {"host": "canary.ns.svc.cluster.local"}, "weight": 30},
                        {"destination": {"host": "elsewhere.other.svc.cluster.local"}, "weight": 0},
                    ],
                },
                {"route": [{"destination": {"host": "stable"}}]},  # a lone destination takes everything
                {
                    "route": [
                        {"destination": {"host": "api", "subset": "v1"}, "weight": 60},
                        {"destination": {"host": "api", "subset": "v2"}, "weight": 40},
                    ]
                },
                {"redirect": {"uri": "/"}},
            ]
        },
    }
    assert tr.istio_routes(vs) == {
        "virtualservice/web/primary": {"stable": 70.0, "canary": 30.0},
        "virtualservice/web/1": {"stable": 100.0},
        "virtualservice/web/2": {"api": 100.0},  # subsets fold onto the host Service (documented limit)
    }


def test_gateway_httproute_rules() -> None:
    route = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "stable", "port": 80, "weight": 90},
                        {"name": "canary", "weight": 10},
                    ]
                },
                {
                    "backendRefs": [
                        {"name": "a"},
                        {"name": "b"},
                        {"name": "x", "kind": "Bucket", "group": "s3"},
                    ]
                },
                {"backendRefs": [{"name": "far", "namespace": "other"}]},
            ]
        },
    }
    assert tr.gateway_routes(route) == {
        "httproute/web/0": {"stable": 90.0, "canary": 10.0},
        "httproute/web/1": {"a": 1.0, "b": 1.0},
    }


def test_weights_and_hosts() -> None:
    assert [tr.weight_of(v) for v in (20, "20", "1.5", "250m", "x", -3, True, None)] == [
        20.0,
        20.0,
        1.5,
        0.25,
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    assert tr.weight_of(None, default=100.0) == 100.0
    assert tr.service_name("web", "ns") == "web"
    assert tr.service_name("web.ns", "ns") == "web"
    assert tr.service_name("web.ns.svc.cluster.local", "ns") == "web"
    assert tr.service_name("web.other.svc.cluster.local", "ns") is None
    assert tr.service_name("httpbin.org", "ns") is None
    assert tr.service_name("*.example.com", "ns") is None


def crd_object(group: str, plural: str, versions: list[tuple[str, bool]], *, established: bool = True) -> Obj:
    return {
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural},
            "versions": [{"name": name, "served": served} for name, served in versions],
        },
        "status": {"conditions": [{"type": "Established", "status": "True" if established else "False"}]},
    }


def test_served_kind_picks_the_preferred_served_version() -> None:
    istio = next(api for api in tr.ROUTING_APIS if api.kind == "VirtualService")
    crds = [crd_object("networking.istio.io", "virtualservices", [("v1alpha3", True), ("v1beta1", True)])]
    kind = tr.served_kind(istio, crds)
    assert kind is not None and (kind.version, kind.plural) == ("v1beta1", "virtualservices")
    only_old = [crd_object("networking.istio.io", "virtualservices", [("v1alpha3", True), ("v1", False)])]
    old = tr.served_kind(istio, only_old)
    assert old is not None and old.version == "v1alpha3"
    assert tr.served_kind(istio, []) is None
    pending = [crd_object("networking.istio.io", "virtualservices", [("v1", True)], established=False)]
    assert tr.served_kind(istio, pending) is None


# ----------------------------------------------------------------------------------------- the cluster

CONTROLLERS = "nodes,scheduler,kubelet,replicaset,deployment,traffic,trafficroutes"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
TRAFFICSPLITS = "/apis/split.smi-spec.io/v1alpha2/namespaces/{ns}/trafficsplits"
HTTPROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"
VIRTUALSERVICES = "/apis/networking.istio.io/v1beta1/namespaces/{ns}/virtualservices"


@pytest.fixture(scope="module")
def routes_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "traffic-routes", CONTROLLERS)


def call(
    cluster: ClusterProcess, method: str, path: str, body: Obj | None = None, *, ok: tuple[int, ...] = ()
) -> Any:
    with cluster.client() as client:
        if method == "PATCH":
            headers = {"Content-Type": "application/merge-patch+json"}
            response = client.request(method, path, json=body, headers=headers)
        else:
            response = client.request(method, path, json=body)
    assert response.status_code in (ok or (200, 201)), (
        f"{method} {path}: {response.status_code} {response.text}"
    )
    return response


def two_versions(cluster: ClusterProcess, namespace: str) -> None:
    """A namespace serving a ``stable`` (2 pods) and a ``canary`` (1 pod) Deployment, each with a Service."""
    call(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    for name, replicas in (("stable", 2), ("canary", 1)):
        labels = {"app": "web", "version": name}
        deployment = {
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": f"example/web:{name}"}]},
                },
            },
        }
        call(cluster, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment)
        service = {"metadata": {"name": name}, "spec": {"selector": labels, "ports": [{"port": 80}]}}
        call(cluster, "POST", f"/api/v1/namespaces/{namespace}/services", service)


def ensure_crd(cluster: ClusterProcess, collection: str, kind: str) -> None:
    """Install a minimal CRD for ``collection`` unless the cluster has one, and wait until it is served."""
    _, _, group, version, _, _, plural = collection.split("/")
    name = f"{plural}.{group}"
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    if call(cluster, "GET", path, ok=(200, 404)).status_code == 404:
        schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
        names = {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"}
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": names,
                "versions": [{"name": version, "served": True, "storage": True, "schema": schema}],
            },
        }
        call(cluster, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd, ok=(201, 409))
    listing = f"/apis/{group}/{version}/{plural}"
    wait_for(lambda: call(cluster, "GET", listing, ok=(200, 404)).status_code == 200, what=f"{name} served")


def nginx_canary(cluster: ClusterProcess, ns: str) -> None:
    call(cluster, "POST", INGRESSES.format(ns=ns), ingress("web", "stable", namespace=ns))
    call(cluster, "POST", INGRESSES.format(ns=ns), canary("web-canary", "canary", "20", namespace=ns))


def smi_split(cluster: ClusterProcess, ns: str) -> None:
    root = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    call(cluster, "POST", f"/api/v1/namespaces/{ns}/services", root)
    backends = [{"service": "stable", "weight": 50}, {"service": "canary", "weight": 50}]
    split = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "web"},
        "spec": {"service": "web", "backends": backends},
    }
    call(cluster, "POST", TRAFFICSPLITS.format(ns=ns), split)


def gateway_route(cluster: ClusterProcess, ns: str) -> None:
    refs = [{"name": "stable", "port": 80, "weight": 90}, {"name": "canary", "port": 80, "weight": 10}]
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gateway"}], "rules": [{"backendRefs": refs}]},
    }
    call(cluster, "POST", HTTPROUTES.format(ns=ns), route)


def istio_route(cluster: ClusterProcess, ns: str) -> None:
    destinations = [
        {"destination": {"host": "stable"}, "weight": 75},
        {"destination": {"host": f"canary.{ns}.svc.cluster.local"}, "weight": 25},
    ]
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web.example"], "http": [{"name": "primary", "route": destinations}]},
    }
    call(cluster, "POST", VIRTUALSERVICES.format(ns=ns), vs)


@pytest.fixture(scope="module")
def namespaces(routes_cluster: ClusterProcess) -> dict[str, str]:
    """One namespace per routing kind, with its routing object, all set up at once (pods start together).

    The cluster starts without the routing CRDs: they are installed here, after the router started.
    """
    cluster = routes_cluster
    names = {kind: f"routes-{kind}" for kind in ("nginx", "smi", "gateway", "istio")}
    for namespace in names.values():
        two_versions(cluster, namespace)
    ensure_crd(cluster, TRAFFICSPLITS, "TrafficSplit")
    ensure_crd(cluster, HTTPROUTES, "HTTPRoute")
    ensure_crd(cluster, VIRTUALSERVICES, "VirtualService")
    nginx_canary(cluster, names["nginx"])
    smi_split(cluster, names["smi"])
    gateway_route(cluster, names["gateway"])
    istio_route(cluster, names["istio"])
    return names


def requests_by_version(cluster: ClusterProcess, namespace: str) -> dict[str, float]:
    """Requests answered so far by the pods of each version (all Services, all codes)."""
    text = call(cluster, "GET", "/metrics/simulated").text
    totals = {"stable": 0.0, "canary": 0.0}
    for line in text.splitlines():
        if not line.startswith("tugboat_sim_http_requests_total{"):
            continue
        series, _, value = line.rpartition(" ")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', series))
        version = labels["pod"].split("-", 1)[0]
        if labels["namespace"] == namespace and version in totals:
            totals[version] += float(value)
    return totals


def served(cluster: ClusterProcess, namespace: str, window: float) -> dict[str, float]:
    """Requests each version answered during ``window`` seconds from now."""
    before = requests_by_version(cluster, namespace)
    time.sleep(window)
    after = requests_by_version(cluster, namespace)
    return {version: after[version] - before[version] for version in after}


def settles_at(
    cluster: ClusterProcess, namespace: str, share: float, tolerance: float, window: float
) -> None:
    """Wait until the canary answers ``share`` of the namespace's requests over ``window`` seconds.

    Counters are whole requests (floors), hence the tolerance. The namespace has one entry point once the
    route is in place, so the total stays near the simulator's 10 requests/s.
    """

    def measured() -> dict[str, float] | None:
        counts = served(cluster, namespace, window)
        total = counts["stable"] + counts["canary"]
        return counts if total > 0 and abs(counts["canary"] / total - share) <= tolerance else None

    counts = wait_for(measured, timeout=20, interval=0.0, what=f"canary share {share} in {namespace}")
    assert sum(counts.values()) <= 10 * window * 1.5 + 4, counts  # no second entry point


def test_nginx_canary_ingress_weights(routes_cluster: ClusterProcess, namespaces: dict[str, str]) -> None:
    cluster, ns = routes_cluster, namespaces["nginx"]
    settles_at(cluster, ns, 0.2, 0.07, window=2.5)

    patch = {"metadata": {"annotations": {f"{NGINX}/canary-weight": "0"}}}
    call(cluster, "PATCH", f"{INGRESSES.format(ns=ns)}/web-canary", patch)
    wait_for(lambda: served(cluster, ns, 0.6)["canary"] == 0, timeout=10, interval=0.0, what="canary idle")
    counts = served(cluster, ns, 1.0)
    assert counts["canary"] == 0
    assert counts["stable"] >= 7  # the stable Service's 10 requests/s, all of them

    # Deleting the canary Ingress resets the route: the canary Service is an entry point of its own again.
    call(cluster, "DELETE", f"{INGRESSES.format(ns=ns)}/web-canary")
    wait_for(lambda: served(cluster, ns, 0.6)["canary"] >= 3, timeout=10, interval=0.0, what="canary back")


def test_smi_trafficsplit_halves(routes_cluster: ClusterProcess, namespaces: dict[str, str]) -> None:
    # The root Service selects all three pods; without the split they would take its 10/s unevenly (2:1).
    settles_at(routes_cluster, namespaces["smi"], 0.5, 0.1, window=2.0)


def test_gateway_httproute_ninety_ten(routes_cluster: ClusterProcess, namespaces: dict[str, str]) -> None:
    cluster, ns = routes_cluster, namespaces["gateway"]
    settles_at(cluster, ns, 0.1, 0.05, window=3.0)
    call(cluster, "DELETE", f"{HTTPROUTES.format(ns=ns)}/web")
    wait_for(lambda: served(cluster, ns, 0.6)["canary"] >= 3, timeout=10, interval=0.0, what="canary back")


def test_istio_virtualservice_route(routes_cluster: ClusterProcess, namespaces: dict[str, str]) -> None:
    settles_at(routes_cluster, namespaces["istio"], 0.25, 0.07, window=2.5)
