"""Simulated kubelets: pod lifecycle with the behaviours of behaviour.py, events, graceful deletion.

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class Kubelet:
    name = "kubelet"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
