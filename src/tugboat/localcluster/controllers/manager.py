"""Starts the simulated controllers next to the local cluster's API server, and stops them.

The manager owns the shared informers, so every controller watching pods shares one watch, and starts the
controllers only once those informers have synced (as kube-controller-manager does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tugboat.kube.client import Client
from tugboat.kube.informers import InformerFactory
from tugboat.localcluster.controllers import (
    cronjob,
    daemonset,
    deployment,
    endpoints,
    job,
    kubelet,
    nodes,
    publishers,
    replicaset,
    scheduler,
    services,
    statefulset,
    traffic,
    trafficroutes,
    volumes,
)
from tugboat.localcluster.controllers.base import Context, Controller, SimulationOptions
from tugboat.util.tasks import cancel_and_wait

log = logging.getLogger(__name__)

REGISTRY: dict[str, Callable[[Context], Any]] = {
    "nodes": nodes.NodeController,
    "scheduler": scheduler.Scheduler,
    "kubelet": kubelet.Kubelet,
    "replicaset": replicaset.ReplicaSetController,
    "deployment": deployment.DeploymentController,
    "statefulset": statefulset.StatefulSetController,
    "daemonset": daemonset.DaemonSetController,
    "job": job.JobController,
    "cronjob": cronjob.CronJobController,
    "endpoints": endpoints.EndpointsController,
    "services": services.ServiceStatusController,
    "volumes": volumes.PersistentVolumeController,
    "publishers": publishers.NamespacePublisher,
    "traffic": traffic.TrafficSimulator,
    "trafficroutes": trafficroutes.TrafficRouter,
}


class ControllerManager:
    """Runs the enabled controllers (all by default) against ``client``."""

    def __init__(
        self, client: Client, options: SimulationOptions, *, enabled: list[str] | None = None
    ) -> None:
        unknown = sorted(set(enabled or []) - set(REGISTRY))
        if unknown:
            raise ValueError(f"unknown controllers: {', '.join(unknown)} (known: {', '.join(REGISTRY)})")
        self.client = client
        self.context = Context(client=client, informers=InformerFactory(client), options=options)
        names = enabled if enabled is not None else list(REGISTRY)
        self.controllers: list[Controller] = [REGISTRY[name](self.context) for name in names]
        self._tasks: list[asyncio.Task[None]] = []

    def metric_providers(self) -> dict[str, Callable[[], str]]:
        """Prometheus text exporters of the controllers, by name (served at ``/metrics/<name>``)."""
        providers: dict[str, Callable[[], str]] = {}
        for controller in self.controllers:
            export = getattr(controller, "metrics_text", None)
            if export is not None:
                providers[getattr(controller, "metrics_name", controller.name)] = export
        return providers

    async def start(self, *, sync_timeout: float = 30.0) -> None:
        self.context.informers.start()
        await self.context.informers.wait_synced(sync_timeout)
        for controller in self.controllers:
            self._tasks.append(
                asyncio.create_task(self._supervise(controller), name=f"controller-{controller.name}")
            )

    async def _supervise(self, controller: Controller) -> None:
        delay = 0.5
        while True:
            try:
                await controller.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s crashed; restarting in %.1fs", controller.name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        for recorder in self.context.recorders.values():
            await recorder.stop()
        await self.context.informers.stop()
        await self.client.close()
