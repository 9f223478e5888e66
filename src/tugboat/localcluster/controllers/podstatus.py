"""Writing a pod's status as kubelet, the scheduler and the node controller do.

Each writes only its part of the status through ``pods/status`` with a strategic merge patch, so that
conditions merge by type and those another component owns survive.
"""

from __future__ import annotations

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj


async def patch_pod_status(client: Client, name: str, namespace: str | None, status: Obj) -> Obj | None:
    """Merge ``status`` into the pod's status; the pod as written, or None when it is gone."""
    try:
        return await client.patch(
            kinds.POD,
            name,
            {"status": status},
            namespace=namespace,
            patch_type="strategic",
            subresource="status",
        )
    except errors.ApiError as exc:
        if exc.not_found:
            return None
        raise
