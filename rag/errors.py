"""The retrieval package's errors. The gateway maps them onto its own HTTP errors:

    RagError                 500  anything unexpected from the store
    ├── CollectionNotFound   404
    ├── StoreUnavailable     503  Milvus down or unreachable
    │   └── StoreLocked      503  the embedded store file is held by another process
    └── InvalidArgument      400  a bad name or value from the caller
        ├── BadDocument      400  one file could not be read (file name and reason)
        └── InvalidFilter    400  a filter expression outside the allowed grammar
"""

from __future__ import annotations


class RagError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CollectionNotFound(RagError):
    def __init__(self, collection: str) -> None:
        super().__init__(f"collection '{collection}' does not exist")
        self.collection = collection


class StoreUnavailable(RagError):
    pass


class StoreLocked(StoreUnavailable):
    """Another process (a running gateway, or a CLI ingestion) owns the embedded store file."""

    def __init__(self, message: str, owner: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.owner = owner or {}


class InvalidArgument(RagError):
    pass


class BadDocument(InvalidArgument):
    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class InvalidFilter(InvalidArgument):
    pass
