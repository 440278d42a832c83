"""Redis pub/sub invalidation channel (imported only when a Redis URL is configured:
the redis client alone costs most of a second at import)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)


class RedisInvalidation:
    """Publishes writes and, when ``listen``, applies other replicas' writes."""

    def __init__(
        self, url: str, channel: str, on_message: Callable[[str | None], None], *, listen: bool,
    ) -> None:
        self._channel = channel
        self._on_message = on_message
        # Short timeouts: a Redis outage must not stall a DB write that already committed.
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        if listen:
            self._thread = threading.Thread(target=self._run, name="prompts-redis-invalidate", daemon=True)
            self._thread.start()

    def publish(self, name: str) -> None:
        try:
            self._client.publish(self._channel, json.dumps({"name": name}))
        except redis.RedisError as e:
            # The DB generation bump already happened; pollers will catch up.
            log.warning("prompt registry: Redis publish failed (%s); pollers will catch up", e)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Anything published while we were not subscribed is lost.
                        self._on_message(None)
                        self._ready.set()
                        backoff = 0.1
                    elif message["type"] == "message":
                        self._on_message(_parse_name(message["data"]))
            except redis.RedisError as e:
                if backoff == 0.1:  # once per outage, not once per retry
                    log.warning("prompt registry: Redis subscription lost (%s); retrying with backoff", e)
                self._ready.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()


def _parse_name(data: bytes | str) -> str | None:
    try:
        name = json.loads(data).get("name")
    except (ValueError, AttributeError):
        return None  # unknown payload: flush everything rather than guess
    return name if isinstance(name, str) else None
