"""Endpoints and EndpointSlices of Services from their Ready pods.

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class EndpointsController:
    name = "endpoints"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
