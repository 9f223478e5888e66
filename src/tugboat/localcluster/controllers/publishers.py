"""The ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap in every namespace.

Pods run as the ``default`` ServiceAccount unless they name another, and many charts and operators mount
``kube-root-ca.crt`` (projected service-account volumes do); on a real cluster kube-controller-manager's
serviceaccount controller and root-ca-cert publisher make sure both exist in every active namespace and
recreate them when deleted. The CA is the local cluster's when it serves TLS (``ctx.shared["ca_pem"]``);
without TLS there is no CA, so the one already published is kept, or a self-signed one is made once.

Terminating namespaces are left alone, so deleting a namespace finishes even though its ServiceAccount
and ConfigMap are deleted under this controller's eyes (the server would refuse the creates anyway).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tugboat.kube import errors
from tugboat.kube.client import Obj
from tugboat.kube.informers import Informer
from tugboat.kube.kinds import CONFIGMAP, NAMESPACE, SERVICEACCOUNT, Kind
from tugboat.kube.workqueue import WorkQueue, run_workers
from tugboat.localcluster.controllers.base import Context, StaleCacheRetries

log = logging.getLogger(__name__)

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DEFAULT_SERVICE_ACCOUNT = "default"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such "
    "as the internal service IP or kubernetes.default.svc. "
    "No other usage is guaranteed across distributions of Kubernetes clusters."
)
_PEM_MARKER = "-----BEGIN CERTIFICATE-----"
_EXPECTATION_TTL = 10.0  # how long a created object may take to show up in the informer


def self_signed_ca_pem() -> str:
    """A throwaway CA certificate (PEM) for a cluster that has none of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tugboat-local-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _active(namespace: Obj | None) -> bool:
    if namespace is None or namespace["metadata"].get("deletionTimestamp"):
        return False
    return (namespace.get("status") or {}).get("phase") != "Terminating"


class NamespacePublisher:
    """Creates (and re-creates) each active namespace's default ServiceAccount and root CA ConfigMap."""

    name = "publishers"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue: WorkQueue[str] = WorkQueue()
        self.namespaces = ctx.informers.informer(NAMESPACE)
        # Only the objects we publish: a cluster may hold many ConfigMaps and ServiceAccounts.
        self.configmaps = Informer(ctx.client, CONFIGMAP, fields=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.accounts = Informer(
            ctx.client, SERVICEACCOUNT, fields=f"metadata.name={DEFAULT_SERVICE_ACCOUNT}"
        )
        self.ca_pem = ""
        # (kind, namespace) created but not yet seen by the informer -> give up waiting at this time
        self._created: dict[tuple[str, str], float] = {}
        self._stale: StaleCacheRetries[str] = StaleCacheRetries()
        self.namespaces.add_handler(self._on_namespace)
        self.configmaps.add_handler(self._on_published)
        self.accounts.add_handler(self._on_published)

    def _on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        if _active(new):
            assert new is not None
            self.queue.add(new["metadata"]["name"])

    def _on_published(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        assert obj is not None
        namespace = obj["metadata"].get("namespace")
        self._created.pop((str(obj.get("kind")), str(namespace)), None)
        if namespace and _active(self.namespaces.get(namespace)):
            self.queue.add(namespace)

    async def run(self) -> None:
        own = [self.configmaps, self.accounts]
        try:
            for informer in own:
                informer.start()
            for informer in own:
                await informer.wait_synced()
            self.ca_pem = self._choose_ca()
            await run_workers(self.queue, self.sync, workers=2, name="publishers")
        finally:
            await asyncio.gather(*(informer.stop() for informer in own))

    def _choose_ca(self) -> str:
        """The cluster's CA if known, else the one already published (kept over restarts), else a new one."""
        shared = self.ctx.shared.get("ca_pem")
        if shared:
            return shared.decode() if isinstance(shared, bytes) else str(shared)
        for name in ("default", "kube-system"):
            existing = self.configmaps.get(ROOT_CA_CONFIGMAP, name)
            pem = str(((existing or {}).get("data") or {}).get("ca.crt") or "")
            if _PEM_MARKER in pem:
                return pem
        for existing in self.configmaps.objects():
            pem = str((existing.get("data") or {}).get("ca.crt") or "")
            if _PEM_MARKER in pem:
                return pem
        return self_signed_ca_pem()

    async def sync(self, namespace: str) -> float | None:
        if not _active(self.namespaces.get(namespace)):
            return None
        try:
            await self._ensure_service_account(namespace)
            await self._ensure_root_ca(namespace)
            self._stale.forget(namespace)
        except errors.ApiError as exc:
            if exc.conflict:
                return self._stale.retry_after(namespace)
            # 403: the namespace began terminating; 404: it is gone. Either way there is nothing to publish.
            if exc.code not in (403, 404):
                raise
        return None

    def _awaiting(self, kind: str, namespace: str) -> bool:
        """Whether we created this object a moment ago and the informer has not delivered it yet."""
        deadline = self._created.get((kind, namespace))
        if deadline is None:
            return False
        if deadline < time.monotonic():
            del self._created[(kind, namespace)]
            return False
        return True

    async def _create(self, kind: Kind, body: Obj) -> None:
        namespace = body["metadata"]["namespace"]
        try:
            await self.client.create(kind, body)
        except errors.ApiError as exc:
            if not exc.already_exists:
                raise
        self._created[(kind.kind, namespace)] = time.monotonic() + _EXPECTATION_TTL

    async def _ensure_service_account(self, namespace: str) -> None:
        current = self.accounts.get(DEFAULT_SERVICE_ACCOUNT, namespace)
        if current is not None or self._awaiting(SERVICEACCOUNT.kind, namespace):
            return
        await self._create(
            SERVICEACCOUNT, {"metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}}
        )

    async def _ensure_root_ca(self, namespace: str) -> None:
        data = {"ca.crt": self.ca_pem}
        current = self.configmaps.get(ROOT_CA_CONFIGMAP, namespace)
        if current is None and self._awaiting(CONFIGMAP.kind, namespace):
            return
        if current is None:
            body: Obj = {
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "namespace": namespace,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": data,
            }
            await self._create(CONFIGMAP, body)
            return
        annotations = current["metadata"].get("annotations") or {}
        if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        updated = copy.deepcopy(current)
        updated["data"] = data
        updated["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        await self.client.replace(CONFIGMAP, updated)
