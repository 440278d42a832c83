"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request ids, the body read deadline
and the body size limit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.exceptions import HTTPException

from gateway import errors

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


class BodyLimitMiddleware:
    """413 in OpenAI's error shape for bodies over the limit, before the app reads them.

    A declared Content-Length is checked up front; a chunked body is buffered up to the limit.
    (Starlette's own limiter answers in plain text, which the SDK cannot parse.)
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
                break
        if length is not None:
            if length > self.max_bytes:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return dict(await receive())
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        err = errors.InvalidRequest(f"Request body exceeds {self.max_bytes} bytes.", code="request_too_large")
        await _send_error(send, 413, err)


async def _send_error(send: Send, status: int, err: errors.GatewayError) -> None:
    body = err.json()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


class BodyTimeout(HTTPException):
    """Raised from `receive` when the body is late. An HTTPException because FastAPI re-raises
    those from its body parsing (anything else it turns into a generic 400)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"The request body did not arrive within {timeout_s:g} seconds.")


class BodyTimeoutMiddleware:
    """408 in OpenAI's error shape when the whole body has not arrived `timeout_s` after the headers.

    A client that trickles its body (slowloris) would otherwise hold a request task, its buffers
    and a connection for as long as it likes: uvicorn bounds idle keep-alive connections, not a
    body in progress. The deadline covers the body only; once it is complete, `receive` (which a
    streaming response uses to hear the client leave) waits without one. The 408 closes the
    connection, so the rest of a trickled body is never read.
    """

    def __init__(self, app: Any, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> dict[str, Any]:
            nonlocal body_done, timed_out
            if body_done:
                return dict(await receive())
            try:
                async with asyncio.timeout_at(deadline):  # in this task: no task per body chunk
                    message = dict(await receive())
            except TimeoutError:
                timed_out = True
                raise BodyTimeout(self.timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
            return message

        async def send_closing(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if timed_out:
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        try:
            await self.app(scope, timed_receive, send_closing)
        except BodyTimeout as exc:
            # Raised outside the app's exception handlers (BodyLimitMiddleware reads first).
            if started:
                raise
            await _send_error(send_closing, 408, errors.RequestTimeout(str(exc.detail)))
