"""Binds pending pods to a Ready node that fits (nodeSelector, tolerations, capacity).

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class Scheduler:
    name = "scheduler"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
