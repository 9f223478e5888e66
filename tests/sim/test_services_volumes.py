"""LoadBalancer and Ingress status addresses, and PersistentVolumeClaim binding (issue 3)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from sim_support import controllers_cluster, eventually, new_namespace

from clusterproc import ClusterProcess
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.localcluster.controllers.services import INGRESS_ADDRESS, POOL, AddressPool
from tugboat.localcluster.controllers.volumes import STORAGECLASS, best_volume, default_class

Obj = dict[str, Any]
_counter = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def svc_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "services-volumes", "services,volumes")


@pytest.fixture
async def client(svc_cluster: ClusterProcess) -> Any:
    async with Client.from_kubeconfig(svc_cluster.kubeconfig, field_manager="test") as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> str:
    return await new_namespace(client, f"sv{next(_counter)}")


def lb_ingress(obj: Obj | None) -> list[Obj]:
    return (((obj or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []


async def events_for(client: Client, ns: str, name: str) -> list[str]:
    items, _ = await client.list(kinds.EVENT, ns)
    return [e["reason"] for e in items if e["involvedObject"].get("name") == name]


# ---------------------------------------------------------------------------------------- unit tests


def test_address_pool_is_stable_and_reuses_released_addresses() -> None:
    pool = AddressPool(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    assert pool.claim("a", []) == "10.0.0.1"
    assert pool.claim("b", ["10.0.0.3"]) == "10.0.0.3"
    assert pool.claim("a", ["10.0.0.2"]) == "10.0.0.1"  # keeps what it has
    assert pool.claim("c", ["10.0.0.3"]) == "10.0.0.2"  # taken: the lowest free one instead
    assert pool.claim("d", []) is None
    assert pool.release("a") and not pool.release("a")
    assert pool.claim("d", []) == "10.0.0.1"


def _volume(name: str, size: str, *, cls: str = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",)) -> Obj:
    return {
        "metadata": {"name": name, "labels": {"tier": "fast"}},
        "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls},
        "status": {"phase": "Available"},
    }


def _claim(
    size: str, *, cls: str = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",), **spec: Any
) -> Obj:
    return {
        "metadata": {"name": "c", "namespace": "n", "uid": "u"},
        "spec": {
            "accessModes": list(modes),
            "resources": {"requests": {"storage": size}},
            "storageClassName": cls,
            **spec,
        },
    }


def test_best_volume_is_the_smallest_that_fits() -> None:
    volumes = [
        _volume("big", "10Gi"),
        _volume("small", "1Gi"),
        _volume("mid", "2Gi"),
        _volume("rwx", "1Gi", modes=("ReadWriteMany",)),
        _volume("other-class", "1Gi", cls="other"),
    ]
    assert best_volume(volumes, _claim("1500Mi"))["metadata"]["name"] == "mid"
    assert best_volume(volumes, _claim("1Gi"))["metadata"]["name"] == "small"
    assert best_volume(volumes, _claim("1Gi", modes=("ReadWriteMany",)))["metadata"]["name"] == "rwx"
    assert best_volume(volumes, _claim("20Gi")) is None
    assert best_volume(volumes, _claim("1Gi", selector={"matchLabels": {"tier": "slow"}})) is None
    taken = _volume("taken", "1Gi")
    taken["spec"]["claimRef"] = {"namespace": "n", "name": "someone-else"}
    prebound = _volume("prebound", "5Gi")
    prebound["spec"]["claimRef"] = {"namespace": "n", "name": "c"}
    assert best_volume([taken, prebound, *volumes], _claim("1Gi"))["metadata"]["name"] == "prebound"


def test_default_class_is_the_newest_marked_one() -> None:
    def sc(name: str, created: str, default: bool) -> Obj:
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}

    classes = [
        sc("a", "2024-01-01T00:00:00Z", True),
        sc("b", "2024-02-01T00:00:00Z", True),
        sc("c", "2025", False),
    ]
    assert default_class(classes)["metadata"]["name"] == "b"
    assert default_class([sc("c", "2025", False)]) is None


# ------------------------------------------------------------------------------- LoadBalancer, Ingress


async def test_load_balancer_services_get_stable_distinct_addresses(client: Client, ns: str) -> None:
    def service(name: str, kind: str = "LoadBalancer") -> Obj:
        spec = {"type": kind, "selector": {"app": name}, "ports": [{"port": 80}]}
        return {"metadata": {"name": name, "namespace": ns}, "spec": spec}

    await client.create(kinds.SERVICE, service("one"))
    await client.create(kinds.SERVICE, service("two"))
    await client.create(kinds.SERVICE, service("plain", "ClusterIP"))

    async def addresses() -> dict[str, str]:
        found = {}
        for name in ("one", "two"):
            (ingress,) = lb_ingress(await client.get(kinds.SERVICE, name, ns))
            assert ingress["ipMode"] == "VIP"
            found[name] = ingress["ip"]
        return found

    found = await eventually(addresses)
    assert found["one"] != found["two"]
    assert all(ipaddress.ip_address(ip) in POOL and ip != INGRESS_ADDRESS for ip in found.values())

    async def ensured() -> bool:
        reasons = await events_for(client, ns, "one")
        return {"EnsuringLoadBalancer", "EnsuredLoadBalancer"} <= set(reasons)

    await eventually(ensured)
    await asyncio.sleep(0.3)
    assert lb_ingress(await client.get(kinds.SERVICE, "plain", ns)) == []

    # An unrelated change keeps the address; a type change releases it, and status is cleared.
    await client.patch(kinds.SERVICE, "one", {"metadata": {"labels": {"x": "y"}}}, namespace=ns)
    await client.patch(
        kinds.SERVICE, "two", {"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}, namespace=ns
    )

    async def cleared() -> bool:
        return lb_ingress(await client.get(kinds.SERVICE, "two", ns)) == []

    await eventually(cleared)
    assert lb_ingress(await client.get(kinds.SERVICE, "one", ns))[0]["ip"] == found["one"]
    # The released address is handed out again (the lowest free one).
    await client.create(kinds.SERVICE, service("three"))

    async def reused() -> str:
        (ingress,) = lb_ingress(await client.get(kinds.SERVICE, "three", ns))
        return str(ingress["ip"])

    assert await eventually(reused) == found["two"]


async def test_ingress_gets_the_ingress_controller_address(client: Client, ns: str) -> None:
    ingress = {
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "rules": [
                {
                    "host": "web.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    await client.create(kinds.INGRESS, ingress)

    async def addressed() -> list[Obj]:
        return lb_ingress(await client.get(kinds.INGRESS, "web", ns))

    assert await eventually(addressed) == [{"ip": INGRESS_ADDRESS}]


# ------------------------------------------------------------------------------------------ volumes


async def test_default_storage_class_exists(client: Client) -> None:
    standard = await eventually(lambda: client.get_or_none(STORAGECLASS, "standard"))
    assert standard["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert standard["provisioner"] == "tugboat.dev/sim"
    assert standard["reclaimPolicy"] == "Delete"


async def test_claim_without_class_is_provisioned_bound_and_reclaimed(client: Client, ns: str) -> None:
    claim = {
        "metadata": {"name": "data", "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    created = await client.create(kinds.PVC, claim)
    volume_name = f"pvc-{created['metadata']['uid']}"

    async def bound() -> Obj:
        pvc = await client.get(kinds.PVC, "data", ns)
        assert pvc["status"]["phase"] == "Bound"
        return pvc

    pvc = await eventually(bound)
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["spec"]["volumeName"] == volume_name
    assert pvc["status"]["capacity"] == {"storage": "2Gi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    annotations = pvc["metadata"]["annotations"]
    assert annotations["pv.kubernetes.io/bind-completed"] == "yes"
    assert annotations["volume.kubernetes.io/storage-provisioner"] == "tugboat.dev/sim"

    async def volume_bound() -> Obj:
        pv = await client.get(kinds.PV, volume_name)
        assert pv["status"]["phase"] == "Bound"
        return pv

    pv = await eventually(volume_bound)
    assert pv["spec"]["claimRef"]["uid"] == created["metadata"]["uid"]
    assert pv["spec"]["capacity"] == {"storage": "2Gi"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["storageClassName"] == "standard"
    assert pv["spec"]["hostPath"]["path"].startswith("/tmp/tugboat-sim/")
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "tugboat.dev/sim"

    async def provisioned() -> bool:
        return "ProvisioningSucceeded" in await events_for(client, ns, "data")

    await eventually(provisioned)

    await client.delete(kinds.PVC, "data", ns)

    async def deleted() -> bool:
        return await client.get_or_none(kinds.PV, volume_name) is None

    await eventually(deleted)


async def test_claim_binds_a_matching_precreated_volume(client: Client, ns: str) -> None:
    def volume(name: str, size: str) -> Obj:
        return {
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": f"manual-{ns}",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": f"/tmp/{name}"},
            },
        }

    await client.create(kinds.PV, volume(f"{ns}-big", "10Gi"))
    await client.create(kinds.PV, volume(f"{ns}-small", "3Gi"))

    async def available() -> bool:
        for name in (f"{ns}-big", f"{ns}-small"):
            assert (await client.get(kinds.PV, name))["status"]["phase"] == "Available"
        return True

    await eventually(available)
    claim = {
        "metadata": {"name": "data", "namespace": ns},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": f"manual-{ns}",
        },
    }
    await client.create(kinds.PVC, claim)

    async def bound() -> Obj:
        pvc = await client.get(kinds.PVC, "data", ns)
        assert pvc["status"]["phase"] == "Bound"
        return pvc

    pvc = await eventually(bound)
    assert pvc["spec"]["volumeName"] == f"{ns}-small"
    assert pvc["status"]["capacity"] == {"storage": "3Gi"}
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    small = await client.get(kinds.PV, f"{ns}-small")
    assert small["status"]["phase"] == "Bound" and small["spec"]["claimRef"]["name"] == "data"
    assert (await client.get(kinds.PV, f"{ns}-big"))["status"]["phase"] == "Available"

    # Retain: the volume outlives its claim, Released.
    await client.delete(kinds.PVC, "data", ns)

    async def released() -> bool:
        return (await client.get(kinds.PV, f"{ns}-small"))["status"]["phase"] == "Released"

    await eventually(released)


async def test_claim_with_no_class_and_no_volume_stays_pending(client: Client, ns: str) -> None:
    claim = {
        "metadata": {"name": "lonely", "namespace": ns},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "",
        },
    }
    await client.create(kinds.PVC, claim)

    async def failed() -> bool:
        return "FailedBinding" in await events_for(client, ns, "lonely")

    await eventually(failed)
    pvc = await client.get(kinds.PVC, "lonely", ns)
    assert pvc["status"]["phase"] == "Pending" and not pvc["spec"].get("volumeName")
    # A volume that fits appears later: the claim gets it.
    volume = {
        "metadata": {"name": f"{ns}-late"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/late"},
        },
    }
    await client.create(kinds.PV, volume)

    async def bound() -> bool:
        return (await client.get(kinds.PVC, "lonely", ns))["spec"].get("volumeName") == f"{ns}-late"

    await eventually(bound)
