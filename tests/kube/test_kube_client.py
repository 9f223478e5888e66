"""The dict client and the informer against a real local cluster process."""

from __future__ import annotations

import asyncio

import pytest

from clusterproc import ClusterProcess
from tugboat.kube import errors, kinds
from tugboat.kube.client import Client
from tugboat.kube.informers import Informer, by_owner_uid


async def test_client_crud_and_errors(cluster: ClusterProcess, namespace: str) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        created = await client.create(
            kinds.CONFIGMAP, {"metadata": {"name": "a", "namespace": namespace}, "data": {"k": "1"}}
        )
        assert created["metadata"]["managedFields"][0]["manager"] == "test"
        patched = await client.patch(kinds.CONFIGMAP, "a", {"data": {"k": "2"}}, namespace=namespace)
        assert patched["data"] == {"k": "2"}
        items, rv = await client.list(kinds.CONFIGMAP, namespace)
        assert [i["metadata"]["name"] for i in items] == ["a"] and int(rv) >= int(
            patched["metadata"]["resourceVersion"]
        )
        stale = dict(created)
        with pytest.raises(errors.ApiError) as conflict:
            await client.replace(kinds.CONFIGMAP, stale)
        assert conflict.value.conflict
        with pytest.raises(errors.ApiError) as exists:
            await client.create(kinds.CONFIGMAP, {"metadata": {"name": "a", "namespace": namespace}})
        assert exists.value.already_exists
        applied = await client.apply(
            kinds.CONFIGMAP, {"metadata": {"name": "b", "namespace": namespace}, "data": {"x": "y"}}
        )
        assert applied["data"] == {"x": "y"}
        assert await client.delete(kinds.CONFIGMAP, "a", namespace) is not None
        assert await client.get_or_none(kinds.CONFIGMAP, "a", namespace) is None


async def test_informer_follows_changes_and_indexes_owners(cluster: ClusterProcess, namespace: str) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig, field_manager="test") as client:
        informer = Informer(client, kinds.CONFIGMAP, namespace=namespace, watch_timeout=5)
        informer.add_index("owner", by_owner_uid)
        seen: list[tuple[str | None, str | None]] = []

        def record(old: dict | None, new: dict | None) -> None:
            seen.append(
                (
                    old and old["metadata"]["name"] + "@" + old["data"]["v"],
                    new and new["metadata"]["name"] + "@" + new["data"]["v"],
                )
            )

        informer.add_handler(record)
        owner_uid = (await client.get(kinds.NAMESPACE, namespace))["metadata"]["uid"]
        await client.create(
            kinds.CONFIGMAP, {"metadata": {"name": "pre", "namespace": namespace}, "data": {"v": "0"}}
        )
        informer.start()
        await informer.wait_synced(10)
        await client.create(
            kinds.CONFIGMAP,
            {
                "metadata": {
                    "name": "child",
                    "namespace": namespace,
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": owner_uid}
                    ],
                },
                "data": {"v": "0"},
            },
        )
        await client.patch(kinds.CONFIGMAP, "pre", {"data": {"v": "1"}}, namespace=namespace)
        await client.delete(kinds.CONFIGMAP, "pre", namespace)
        for _ in range(200):
            if len(seen) >= 4:
                break
            await asyncio.sleep(0.02)
        await informer.stop()
        assert seen == [(None, "pre@0"), (None, "child@0"), ("pre@0", "pre@1"), ("pre@1", None)]
        assert [o["metadata"]["name"] for o in informer.by_index("owner", owner_uid)] == ["child"]
        assert informer.get("child", namespace) is not None
