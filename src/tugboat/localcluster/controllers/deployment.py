"""The Deployment controller: RollingUpdate and Recreate over ReplicaSets, revisions, progress.

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class DeploymentController:
    name = "deployment"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
