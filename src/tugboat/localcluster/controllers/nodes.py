"""Simulated Nodes with capacity, conditions and Lease heartbeats in kube-node-lease.

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class NodeController:
    name = "nodes"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
