"""The CronJob controller: Jobs on schedule with history limits.

(Placeholder: being implemented.)
"""

from __future__ import annotations

import asyncio

from tugboat.localcluster.controllers.base import Context


class CronJobController:
    name = "cronjob"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()
