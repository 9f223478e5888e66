"""What every simulated controller gets: the API client, shared informers, event recorders, options.

A controller is a class constructed with a :class:`Context` (where it registers the informers and
handlers it needs) and run with :meth:`Controller.run` once the informers have synced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tugboat.kube.client import Client
from tugboat.kube.events import EventRecorder
from tugboat.kube.informers import InformerFactory


@dataclass
class SimulationOptions:
    """Knobs of the simulation (``tugboat cluster serve`` options)."""

    nodes: int = 3
    node_cpu: str = "32"
    node_memory: str = "128Gi"
    node_pods: int = 1100
    node_ephemeral_storage: str = "100Gi"
    readiness_delay: float = 1.0  # seconds from Running to Ready unless a pod says otherwise
    start_delay: float = 0.3  # seconds from scheduled to Running
    lease_renew_seconds: float = 10.0
    crash_backoff_base: float = 10.0  # kubelet's CrashLoopBackOff starts at 10 s and doubles
    crash_backoff_max: float = 300.0
    requests_per_second: float = 10.0  # simulated traffic per Service


@dataclass
class Context:
    client: Client
    informers: InformerFactory
    options: SimulationOptions
    recorders: dict[str, EventRecorder] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # components another one needs (e.g. traffic)

    def recorder(self, component: str, host: str = "") -> EventRecorder:
        key = f"{component}/{host}"
        recorder = self.recorders.get(key)
        if recorder is None:
            recorder = EventRecorder(self.client, component=component, host=host)
            self.recorders[key] = recorder
            recorder.start()
        return recorder


class Controller(Protocol):
    name: str

    async def run(self) -> None:
        """Run until cancelled."""
