"""Role-based access control of the API server (placeholder: allows every authenticated caller).

The real policy reads Argo CD's ``argocd-rbac-cm`` ConfigMap (policy CSV, default role) with casbin.
"""

from __future__ import annotations

from collections.abc import Sequence

from tugboat.kube.client import Client


class Policy:
    """Decides each API call from the RBAC ConfigMap in ``namespace``."""

    def __init__(self, client: Client, *, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    async def enforce(
        self, subject: str, groups: Sequence[str], resource: str, action: str, obj: str
    ) -> bool:
        return True
