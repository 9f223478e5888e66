"""The default ServiceAccount and the kube-root-ca.crt ConfigMap in every namespace.

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class NamespacePublisher:
    name = "publishers"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
