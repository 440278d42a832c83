"""Who owns the embedded store file.

Milvus Lite lets one process open a .db file at a time. The process that opens it (a gateway, or
a CLI ingestion) takes an exclusive lock on `<file>.owner` first and writes its pid and, for a
gateway, the URL it serves on. Another process can then tell "in use, and here is where to send
your documents" (`read_owner`) instead of failing inside Milvus Lite with a bare "open failed".
The OS drops the lock when its holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from rag.errors import StoreLocked


def owner_path(db_path: str) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + ".owner")


class OwnerLock:
    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = owner_path(db_path)
        self._fd: int | None = None

    def acquire(self, url: str | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = read_owner(self.db_path) or {}
            where = f" (gateway at {owner['url']})" if owner.get("url") else ""
            raise StoreLocked(
                f"the store {self.db_path} is in use by process {owner.get('pid', '?')}{where}; "
                "send documents through that gateway, or stop it first",
                owner,
            ) from None
        info = {"pid": os.getpid(), "url": url, "since": time.time()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def read_owner(db_path: str) -> dict[str, Any] | None:
    """The holder's {pid, url, since}, or None when nobody holds the store."""
    path = owner_path(db_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.read(fd, 4096)
            try:
                info = json.loads(raw or b"{}")
            except ValueError:
                info = {}
            return info if isinstance(info, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
