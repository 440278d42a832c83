"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware). Body size is FastAPI's `max_body_size`."""

from __future__ import annotations

import uuid
from typing import Any

Scope = dict[str, Any]
Receive = Any
Send = Any


class RequestIdMiddleware:
    """Echo `x-request-id` or generate one, on every response, errors included."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value[:128]
                break
        if not rid:
            rid = uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = rid.decode("latin-1")

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)
