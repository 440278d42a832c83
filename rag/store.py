"""Milvus access: one MilvusClient per store, opened lazily and reused for every call.

The same code serves Milvus Lite (a local .db file) and a Milvus server or cluster (http(s)://):
only the URI differs. On a server, `tenant` is the collection's partition key, so a tenant-scoped
search touches only that tenant's partition. Milvus Lite 2.5 refuses every filter on a collection
with a partition key, so there it is an ordinary field (filtered all the same).

pymilvus errors are translated here, once: connection failures become `StoreUnavailable` (the
gateway's 503), a missing collection `CollectionNotFound`, and anything else `RagError`.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np

from rag.config import RagSettings, check_collection_name
from rag.errors import CollectionNotFound, InvalidFilter, RagError, StoreUnavailable
from rag.lock import OwnerLock

log = logging.getLogger("rag.store")
T = TypeVar("T")

# What a search returns per hit; the vector only when the caller needs it (MMR, thresholds).
HIT_FIELDS = ["text", "source", "metadata", "tenant", "chunk_index"]
QUERY_WINDOW = 16384  # Milvus caps offset + limit of one query at this
# pymilvus pings every 10 s; Milvus Lite's server answers an idle client's pings with GOAWAY
# "too_many_pings" (and a log line) after a few. A local socket to our own child needs no keepalive.
_LITE_GRPC = {"grpc.keepalive_time_ms": 3_600_000, "grpc.keepalive_permit_without_calls": False}


@dataclass(frozen=True)
class Hit:
    id: str
    distance: float
    fields: dict[str, Any]


class MilvusStore:
    def __init__(self, settings: RagSettings, *, owner_url: str | None = None) -> None:
        self.settings = settings
        self.uri = settings.resolved_uri()
        self._owner_url = owner_url
        self._client: Any = None
        self._owner: OwnerLock | None = None
        self._open_lock = threading.Lock()
        self._known: set[str] = set()

    # ── connection ───────────────────────────────────────────────────────────

    @property
    def embedded(self) -> bool:
        return self.settings.embedded

    def open(self) -> None:
        """Connect now (the gateway calls this at start-up); otherwise the first call connects."""
        self.client()

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        with self._open_lock:
            if self._client is None:
                self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        # pymilvus logs every failed RPC with a traceback at ERROR; we report failures ourselves.
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        owner = None
        if self.embedded:
            from pathlib import Path

            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            owner = OwnerLock(self.uri)
            owner.acquire(self._owner_url)  # raises StoreLocked with the holder's pid and URL
        try:
            with warnings.catch_warnings():  # milvus-lite 2.5 imports pkg_resources, which warns on import
                warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
                client = MilvusClient(
                    uri=self.uri, token=self.settings.token or "", db_name=self.settings.db_name,
                    timeout=self.settings.timeout_s, **({"grpc_options": _LITE_GRPC} if self.embedded else {}),
                )
        except MilvusException as err:
            if owner is not None:
                owner.release()
            raise StoreUnavailable(f"cannot reach Milvus at {self._where()}: {err.message}") from None
        except Exception as err:  # grpc and OS errors: nothing we could retry here
            if owner is not None:
                owner.release()
            raise StoreUnavailable(f"cannot open Milvus at {self._where()}: {err}") from None
        self._owner = owner
        return client

    def _where(self) -> str:
        return self.uri if self.embedded else self.uri.split("@")[-1]

    def close(self) -> None:
        with self._open_lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # closing a dead connection must not mask the caller's error
                    log.debug("close failed", exc_info=True)
                self._client = None
                self._known.clear()
                if self.embedded:
                    self._release_lite()
            if self._owner is not None:
                self._owner.release()
                self._owner = None

    def _release_lite(self) -> None:
        # MilvusClient.close leaves Milvus Lite's server running; stop it so the file is free again.
        try:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)
        except Exception:
            log.debug("releasing Milvus Lite failed", exc_info=True)

    def _call(self, what: str, fn: Callable[[], T], collection: str | None = None) -> T:
        from pymilvus.exceptions import (
            ConnectError,
            ConnectionNotExistException,
            MilvusException,
            MilvusUnavailableException,
        )

        try:
            return fn()
        except MilvusException as err:
            msg = str(err.message)
            if collection is not None and (err.code == 100 or "not exist" in msg or "not found" in msg):
                self._known.discard(collection)
                raise CollectionNotFound(collection) from None
            down = isinstance(err, ConnectError | ConnectionNotExistException | MilvusUnavailableException)
            if down or err.code == 2 or "connect" in msg.lower() or "unavailable" in msg.lower():  # 2: CONNECT_FAILED
                raise StoreUnavailable(f"Milvus at {self._where()} failed during {what}: {msg}") from None
            if err.code == 1100 and "expr" in msg.lower():
                raise InvalidFilter(f"the store rejected the filter: {msg}") from None
            raise RagError(f"Milvus {what} failed: {msg}") from None
        except (RagError, ValueError, TypeError):
            raise
        except Exception as err:  # grpc.RpcError and friends: the connection, not the request
            raise StoreUnavailable(f"Milvus at {self._where()} failed during {what}: {err}") from None

    # ── collections ──────────────────────────────────────────────────────────

    def list_collections(self) -> list[str]:
        client = self.client()
        return sorted(self._call("list_collections", client.list_collections))

    def has_collection(self, name: str) -> bool:
        check_collection_name(name)
        if name in self._known:
            return True
        client = self.client()
        exists = bool(self._call("has_collection", lambda: client.has_collection(name)))
        if exists:
            self._call("load_collection", lambda: client.load_collection(name), name)
            self._known.add(name)
        return exists

    def require(self, name: str) -> None:
        if not self.has_collection(name):
            raise CollectionNotFound(name)

    def ensure_collection(self, name: str) -> None:
        if self.has_collection(name):
            return
        client = self.client()
        schema, index = self._schema(client)
        kwargs: dict[str, Any] = {"consistency_level": self.settings.consistency_level}
        if not self.embedded:
            kwargs["num_partitions"] = self.settings.tenant_partitions
        self._call("create_collection",
                   lambda: client.create_collection(name, schema=schema, index_params=index, **kwargs))
        self._known.add(name)

    def _schema(self, client: Any) -> tuple[Any, Any]:
        from pymilvus import DataType, Function, FunctionType

        s = self.settings
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        text_kw: dict[str, Any] = {"enable_analyzer": True}
        if s.bm25_analyzer is not None:
            text_kw["analyzer_params"] = s.bm25_analyzer
        schema.add_field("text", DataType.VARCHAR, max_length=s.max_text_bytes, **text_kw)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=s.dim)
        schema.add_field("tenant", DataType.VARCHAR, max_length=128, is_partition_key=not self.embedded)
        schema.add_field("source", DataType.VARCHAR, max_length=1024)
        schema.add_field("source_key", DataType.VARCHAR, max_length=64)
        schema.add_field("fingerprint", DataType.VARCHAR, max_length=64)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("chunk_count", DataType.INT64)
        schema.add_field("metadata", DataType.JSON)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("vector", index_type=s.index_type(), metric_type=s.index.metric, params=dict(s.index.params))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        return schema, index

    def drop_collection(self, name: str) -> None:
        self.require(name)
        client = self.client()
        self._call("drop_collection", lambda: client.drop_collection(name), name)
        self._known.discard(name)

    def count(self, name: str, expr: str = "") -> int:
        self.require(name)
        client = self.client()
        rows = self._call("count", lambda: client.query(
            name, filter=expr, output_fields=["count(*)"], consistency_level=self.settings.consistency_level,
            timeout=self.settings.timeout_s), name)
        return int(rows[0]["count(*)"]) if rows else 0

    # ── rows ─────────────────────────────────────────────────────────────────

    def insert(self, name: str, rows: Sequence[dict[str, Any]]) -> int:
        client = self.client()
        step = self.settings.insert_batch_size  # Milvus Lite 2.5's insert time grows with the square of a batch
        for i in range(0, len(rows), step):
            batch = list(rows[i : i + step])
            self._call("insert", partial(client.insert, name, batch, timeout=self.settings.timeout_s), name)
        return len(rows)

    def delete(self, name: str, expr: str) -> int:
        client = self.client()
        res = self._call("delete", lambda: client.delete(name, filter=expr, timeout=self.settings.timeout_s), name)
        if isinstance(res, dict):
            return int(res.get("delete_count", 0))
        return int(getattr(res, "delete_count", 0) or 0)

    def query(self, name: str, expr: str, output_fields: list[str], limit: int = QUERY_WINDOW) -> list[dict[str, Any]]:
        client = self.client()
        return list(self._call("query", lambda: client.query(
            name, filter=expr, output_fields=output_fields, limit=limit,
            consistency_level=self.settings.consistency_level, timeout=self.settings.timeout_s), name))

    # ── search ───────────────────────────────────────────────────────────────

    def search_dense(self, name: str, vector: np.ndarray, limit: int, expr: str | None,
                     with_vectors: bool = False) -> list[Hit]:
        params = {"metric_type": self.settings.index.metric, "params": dict(self.settings.index.search_params)}
        return self._search(name, [np.asarray(vector, dtype=np.float32).tolist()], "vector", params,
                            limit, expr, with_vectors)

    def search_text(self, name: str, text: str, limit: int, expr: str | None,
                    with_vectors: bool = False) -> list[Hit]:
        return self._search(name, [text], "sparse", {"metric_type": "BM25"}, limit, expr, with_vectors)

    def _search(self, name: str, data: list[Any], field: str, params: dict[str, Any], limit: int,
                expr: str | None, with_vectors: bool) -> list[Hit]:
        client = self.client()
        fields = HIT_FIELDS + (["vector"] if with_vectors else [])
        res: Any = self._call(f"search ({field})", lambda: client.search(
            name, data=data, filter=expr or "", limit=limit, output_fields=fields, search_params=params,
            anns_field=field, consistency_level=self.settings.consistency_level,
            timeout=self.settings.timeout_s), name)
        hits = res[0] if res else []
        return [Hit(str(h["id"]), float(h["distance"]), dict(h["entity"])) for h in hits]
