"""The local cluster assembled: storage, resource registry, semantics, controllers and the HTTP app.

:class:`LocalCluster` owns the start-up order (open the store, serve the CRDs it holds, create the
namespaces and objects every cluster has, start the controllers) and the shutdown order, so that the
CLI, the tests and the benchmarks all run exactly the same server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from tugboat.localcluster import customresources, errors, metadata
from tugboat.localcluster.app import APIServerApp
from tugboat.localcluster.auth import Authenticator
from tugboat.localcluster.lifecycle import LifecycleController
from tugboat.localcluster.objects import ObjectAPI, WriteOptions
from tugboat.localcluster.resources import Registry
from tugboat.localcluster.storage import Store

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_BOOTSTRAP = WriteOptions(field_manager="tugboat-bootstrap")


class LocalCluster:
    """One local cluster over one SQLite database."""

    def __init__(
        self,
        database: Path,
        *,
        authenticator: Authenticator,
        bookmark_interval: float = 60.0,
        retain_revisions: int = 1000,
        retain_seconds: float = 300.0,
        compact_interval: float = 30.0,
    ) -> None:
        self.store = Store(
            database,
            retain_revisions=retain_revisions,
            retain_seconds=retain_seconds,
            compact_interval=compact_interval,
        )
        self.registry = Registry()
        self.api = ObjectAPI(self.store, self.registry)
        self.api.on_crd_change = self._crd_changed
        self.lifecycle = LifecycleController(self.api)
        self.http = APIServerApp(self.api, authenticator=authenticator, bookmark_interval=bookmark_interval)

    def asgi(self) -> Starlette:
        return self.http.build()

    async def start(self) -> None:
        await self.store.open()
        crd_type = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_type is not None
        for key, entry in self.store.scan(crd_type.storage_prefix):
            self._crd_changed(entry.obj, key)
        await self._bootstrap()
        await self.lifecycle.start()

    async def stop(self) -> None:
        await self.lifecycle.stop()
        await self.store.close()

    def _crd_changed(self, crd: dict[str, Any] | None, key: str) -> None:
        name = key.rsplit("/", 1)[-1]
        self.registry.set_custom(name, customresources.types_for_crd(crd) if crd is not None else [])

    async def _bootstrap(self) -> None:
        namespaces = self.registry.get("", "v1", "namespaces")
        services = self.registry.get("", "v1", "services")
        assert namespaces is not None and services is not None
        for name in SYSTEM_NAMESPACES:
            await self._ensure(namespaces, "", {"metadata": {"name": name}})
        await self._ensure(
            services,
            "default",
            {
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": "10.96.0.1",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                    "sessionAffinity": "None",
                    "type": "ClusterIP",
                },
            },
        )

    async def _ensure(self, rt: Any, namespace: str, body: dict[str, Any]) -> None:
        if self.store.get(rt.key(namespace, metadata.name_of(body))) is not None:
            return
        try:
            await self.api.create(rt, namespace, body, _BOOTSTRAP)
        except errors.ApiError as exc:
            if exc.code != 409:
                raise
