"""What every simulated controller gets: the API client, shared informers, event recorders, options.

A controller is a class constructed with a :class:`Context` (where it registers the informers and
handlers it needs) and run with :meth:`Controller.run` once the informers have synced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

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


K = TypeVar("K")


class StaleCacheRetries(Generic[K]):
    """Delays for keys whose write hit a 409 because the informer cache lagged behind the server.

    Such a conflict is expected and clears once the watch delivers the newer object, so it is retried
    quietly (the work queue would log it as a failure): after 50 ms, doubling up to 5 s while it lasts.
    Return :meth:`retry_after` from a sync handler; call :meth:`forget` after a successful sync.
    """

    def __init__(self, *, first: float = 0.05, limit: float = 5.0) -> None:
        self.first = first
        self.limit = limit
        self._counts: dict[K, int] = {}

    def retry_after(self, key: K) -> float:
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        return min(self.first * 2**count, self.limit)

    def forget(self, key: K) -> None:
        self._counts.pop(key, None)
