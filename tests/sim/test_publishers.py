"""Every namespace gets the ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap (issue 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from sim_support import controllers_cluster, eventually

from clusterproc import ClusterProcess, start_cluster
from tugboat.kube import kinds
from tugboat.kube.client import Client
from tugboat.localcluster.controllers.publishers import DESCRIPTION, self_signed_ca_pem

Obj = dict[str, Any]
_counter = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def pub_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    yield from controllers_cluster(tmp_path_factory, "publishers", "publishers")


@pytest.fixture
async def client(pub_cluster: ClusterProcess) -> Any:
    async with Client.from_kubeconfig(pub_cluster.kubeconfig, field_manager="test") as c:
        yield c


async def published(client: Client, ns: str) -> tuple[Obj, Obj]:
    account = await client.get_or_none(kinds.SERVICEACCOUNT, "default", ns)
    configmap = await client.get_or_none(kinds.CONFIGMAP, "kube-root-ca.crt", ns)
    assert account is not None and configmap is not None
    return account, configmap


def test_self_signed_ca_is_a_ca_certificate() -> None:
    cert = x509.load_pem_x509_certificate(self_signed_ca_pem().encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


async def test_system_and_new_namespaces_get_account_and_root_ca(client: Client) -> None:
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        await eventually(lambda ns=ns: published(client, ns))
    name = f"pub{next(_counter)}"
    await client.create(kinds.NAMESPACE, {"metadata": {"name": name}})
    _, configmap = await eventually(lambda: published(client, name))
    assert configmap["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert configmap["metadata"]["annotations"]["kubernetes.io/description"] == DESCRIPTION
    # One CA for the whole cluster.
    _, system = await published(client, "default")
    assert system["data"] == configmap["data"]


async def test_deleted_or_changed_objects_come_back(client: Client) -> None:
    name = f"pub{next(_counter)}"
    await client.create(kinds.NAMESPACE, {"metadata": {"name": name}})
    account, configmap = await eventually(lambda: published(client, name))
    await client.delete(kinds.SERVICEACCOUNT, "default", name)
    await client.delete(kinds.CONFIGMAP, "kube-root-ca.crt", name)

    async def recreated() -> bool:
        new_account, new_configmap = await published(client, name)
        assert new_account["metadata"]["uid"] != account["metadata"]["uid"]
        assert new_configmap["metadata"]["uid"] != configmap["metadata"]["uid"]
        return True

    await eventually(recreated)
    await client.patch(kinds.CONFIGMAP, "kube-root-ca.crt", {"data": {"ca.crt": "tampered"}}, namespace=name)

    async def restored() -> bool:
        _, current = await published(client, name)
        return current["data"] == configmap["data"]

    await eventually(restored)


async def test_namespace_deletion_completes(client: Client) -> None:
    name = f"pub{next(_counter)}"
    await client.create(kinds.NAMESPACE, {"metadata": {"name": name}})
    await eventually(lambda: published(client, name))
    await client.delete(kinds.NAMESPACE, name)

    async def gone() -> bool:
        return await client.get_or_none(kinds.NAMESPACE, name) is None

    await eventually(gone, timeout=30)
    # Nothing was left behind or recreated afterwards.
    await asyncio.sleep(0.3)
    assert await client.get_or_none(kinds.SERVICEACCOUNT, "default", name) is None
    assert await client.get_or_none(kinds.CONFIGMAP, "kube-root-ca.crt", name) is None


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    proc = start_cluster(
        tmp_path_factory.mktemp("publishers-tls"), "--tls", "--controllers", "publishers", simulate=True
    )
    yield proc
    proc.stop()


async def test_root_ca_is_the_clusters_own_ca_with_tls(tls_cluster: ClusterProcess) -> None:
    ca = (tls_cluster.state_dir / "pki" / "ca.crt").read_text()
    async with Client.from_kubeconfig(tls_cluster.kubeconfig, field_manager="test") as client:
        _, configmap = await eventually(lambda: published(client, "default"))
    assert configmap["data"]["ca.crt"] == ca
