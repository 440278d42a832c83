"""`GET /metrics`: Prometheus text format, on the gateway's own registry.

Two routers with one handler: `router` asks for an admin key, `public_router` does not. The app
factory includes `public_router` only when `governance.metrics_public` is set (for a scraper on
a trusted network); the choice is made once, at start-up.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.api.deps import admin
from gateway.governance.state import governance

router = APIRouter(dependencies=[Depends(admin)])
public_router = APIRouter()


def metrics(request: Request) -> Response:
    body, content_type = governance(request).metrics.render()
    return Response(body, media_type=content_type)


for _router in (router, public_router):
    _router.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
