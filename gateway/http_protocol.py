"""uvicorn's httptools protocol with a deadline on request headers.

uvicorn bounds idle keep-alive connections but not headers in progress: its keep-alive timer is
cancelled by the first byte that arrives, and a fresh connection has no timer at all. A client
that opens connections and trickles header bytes (slowloris) could hold sockets and parser state
for as long as it liked. Here a connection's headers must be complete `header_timeout_s` after it
opened or after its previous response ended: a partial request gets a 408 in OpenAI's error shape,
a connection that never sent anything is closed quietly. The body has its own deadline
(`middleware.BodyTimeoutMiddleware`), which starts once these headers are in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import errors


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout_s: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_started = False

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_started = True
        if self._header_timer is None:  # a keep-alive or pipelined request: its own deadline
            self._arm()  # (between requests the keep-alive timer bounds the idle wait)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._request_started = False
        super().on_headers_complete()

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._request_started:
            body = errors.RequestTimeout(
                f"The request headers did not arrive within {self.header_timeout_s:g} seconds."
            ).json()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
            )
        self.transport.close()


def protocol_class(header_timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with this deadline."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": header_timeout_s})
