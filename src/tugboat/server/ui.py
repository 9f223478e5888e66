"""The web UI: static files served by the API server itself, with no CDN and no build step.

The UI is a single-page app of plain ES modules under ``static/``. Paths the API does not own
(``/applications/...``, ``/rollouts/...``, ``/login``) all answer with ``index.html`` so deep links and
reloads work; the app's router then draws the page. Assets are small and change only with a release, so
they are served with a validator (ETag) and revalidated on each load.
"""

from __future__ import annotations

import pathlib

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = pathlib.Path(__file__).with_name("static")
_NO_STORE = {"Cache-Control": "no-cache"}


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=_NO_STORE)


def routes() -> list[BaseRoute]:
    pages = ["/", "/login", "/applications", "/applications/{rest:path}"]
    pages += ["/rollouts", "/rollouts/{rest:path}"]
    return [
        Mount("/assets", app=StaticFiles(directory=STATIC_DIR), name="assets"),
        *(Route(path, index, methods=["GET"]) for path in pages),
    ]
