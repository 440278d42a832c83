"""`GET /metrics`: Prometheus text format. Admin key required unless `governance.metrics_public`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.deps import admin
from gateway.governance.state import governance

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    gov = governance(request)
    if not gov.settings.metrics_public:
        admin(request)
    body, content_type = gov.metrics.render()
    return Response(body, media_type=content_type)
