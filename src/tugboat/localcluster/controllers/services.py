"""Status addresses for LoadBalancer Services and Ingresses, as a cloud provider and an ingress controller.

On a real cluster a cloud controller gives every ``type: LoadBalancer`` Service an external address and an
ingress controller publishes its address on every Ingress; until then tools that wait for health (Argo CD
treats such a Service or Ingress without ``status.loadBalancer.ingress`` as Progressing, ``kubectl wait``
on the field) never finish. Here each LoadBalancer Service gets its own address from a simulated pool
(``172.18.255.0/24``, like kind with MetalLB), stable for as long as it stays a LoadBalancer, and released
when it is deleted or changes type; every Ingress gets the one simulated ingress controller's address.
"""

from __future__ import annotations

import ipaddress
import logging

from tugboat.kube.client import Obj
from tugboat.kube.informers import object_key, split_key
from tugboat.kube.kinds import INGRESS, SERVICE
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster.controllers.base import Context

log = logging.getLogger(__name__)

POOL = ipaddress.ip_network("172.18.255.0/24")
INGRESS_ADDRESS = "172.18.255.200"  # the simulated ingress controller, outside the Service pool
COMPONENT = "service-controller"

_POOL_EMPTY = "no addresses left in the pool"
_SERVICE = "service"
_INGRESS = "ingress"


def _pool_addresses() -> list[str]:
    return [str(ip) for ip in POOL.hosts() if str(ip) != INGRESS_ADDRESS]


def _is_load_balancer(service: Obj) -> bool:
    return (service.get("spec") or {}).get("type") == "LoadBalancer"


def _status_ingress(obj: Obj) -> list[Obj]:
    return list(((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])


class AddressPool:
    """Addresses handed to LoadBalancer Services, by Service key; the lowest free one first."""

    def __init__(self, addresses: list[str]) -> None:
        self._free = list(addresses)
        self._valid = set(addresses)
        self.by_key: dict[str, str] = {}

    def address_of(self, key: str) -> str | None:
        return self.by_key.get(key)

    def claim(self, key: str, wanted: list[str]) -> str | None:
        """The address of ``key``: kept if it has one, else the first free of ``wanted``, else the lowest."""
        current = self.by_key.get(key)
        if current is not None:
            return current
        for address in wanted:
            if address in self._valid and address in self._free:
                return self._take(key, address)
        return self._take(key, self._free[0]) if self._free else None

    def _take(self, key: str, address: str) -> str:
        self._free.remove(address)
        self.by_key[key] = address
        return address

    def release(self, key: str) -> bool:
        address = self.by_key.pop(key, None)
        if address is None:
            return False
        self._free.append(address)
        self._free.sort(key=lambda a: ipaddress.ip_address(a))
        return True


class ServiceStatusController:
    """Writes ``status.loadBalancer`` of LoadBalancer Services and of Ingresses."""

    name = "services"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue()
        self.pool = AddressPool(_pool_addresses())
        self._waiting: set[str] = set()  # LoadBalancer Services the pool had no address for
        self.services = ctx.informers.informer(SERVICE)
        self.ingresses = ctx.informers.informer(INGRESS)
        self.services.add_handler(self._on_service)
        self.ingresses.add_handler(self._on_ingress)

    def _on_service(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        if new is not None and old is not None and not (_is_load_balancer(old) or _is_load_balancer(new)):
            return
        if new is None and not _is_load_balancer(obj) and not self.pool.address_of(object_key(obj)):
            return
        self.queue.add((_SERVICE, object_key(obj)))

    def _on_ingress(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add((_INGRESS, object_key(new)))

    async def run(self) -> None:
        self._reclaim_addresses()
        await run_workers(self.queue, self.sync, workers=2, name="services")

    def _reclaim_addresses(self) -> None:
        """Give LoadBalancer Services back the addresses their status already shows (after a restart)."""
        for service in sorted(
            self.services.objects(), key=lambda s: str(s["metadata"].get("creationTimestamp"))
        ):
            if _is_load_balancer(service):
                wanted = [str(i.get("ip")) for i in _status_ingress(service) if i.get("ip")]
                if wanted and wanted[0] in set(_pool_addresses()):
                    self.pool.claim(object_key(service), wanted[:1])

    async def sync(self, item: tuple[str, str]) -> float | None:
        kind, key = item
        if kind == _INGRESS:
            await self._sync_ingress(key)
        else:
            await self._sync_service(key)
        return None

    async def _sync_service(self, key: str) -> None:
        service = self.services.cache.get(key)
        if service is None or not _is_load_balancer(service):
            self._waiting.discard(key)
            if self.pool.release(key):
                self._retry_waiting()
            if service is not None and _status_ingress(service):
                await self._clear(service)
            return
        wanted = [str(ip) for ip in [(service.get("spec") or {}).get("loadBalancerIP")] if ip]
        wanted += [str(i.get("ip")) for i in _status_ingress(service) if i.get("ip")]
        address = self.pool.claim(key, wanted)
        recorder = self.ctx.recorder(COMPONENT)
        if address is None:
            if key not in self._waiting:
                self._waiting.add(key)
                message = f"Error syncing load balancer: failed to ensure load balancer: {_POOL_EMPTY}"
                recorder.event(service, "Warning", "SyncLoadBalancerFailed", message)
            return
        self._waiting.discard(key)
        desired = [{"ip": address, "ipMode": "VIP"}]
        if _status_ingress(service) == desired:
            return
        recorder.event(service, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        namespace, name = split_key(key)
        await self.client.patch_status(
            SERVICE, name, {"loadBalancer": {"ingress": desired}}, namespace=namespace
        )
        recorder.event(service, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")

    async def _clear(self, service: Obj) -> None:
        recorder = self.ctx.recorder(COMPONENT)
        recorder.event(service, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
        meta = service["metadata"]
        await self.client.patch_status(
            SERVICE, meta["name"], {"loadBalancer": {"ingress": None}}, namespace=meta["namespace"]
        )
        recorder.event(service, "Normal", "DeletedLoadBalancer", "Deleted load balancer")

    def _retry_waiting(self) -> None:
        for key in sorted(self._waiting):
            self.queue.add((_SERVICE, key))

    async def _sync_ingress(self, key: str) -> None:
        ingress = self.ingresses.cache.get(key)
        if ingress is None or ingress["metadata"].get("deletionTimestamp"):
            return
        desired = [{"ip": INGRESS_ADDRESS}]
        if _status_ingress(ingress) == desired:
            return
        namespace, name = split_key(key)
        await self.client.patch_status(
            INGRESS, name, {"loadBalancer": {"ingress": desired}}, namespace=namespace
        )
