"""The request log as the gateway uses it: `enqueue` on the request path, everything else off it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from gateway.governance.logstore import RequestLogStore, Spend
from gateway.governance.logwriter import LogWriter
from gateway.governance.masking import Mask, mask_text, mask_value
from gateway.governance.models import Page
from gateway.governance.pricing import to_nano
from gateway.governance.records import RequestQuery, RequestRecord, UsageEvent
from gateway.governance.settings import GovernanceSettings
from prompts.rows import now

log = logging.getLogger(__name__)

Item = RequestRecord | UsageEvent
# Column widths of request_log: a longer value is cut rather than failing its whole batch.
_WIDTHS = {"request_id": 128, "endpoint": 128, "key_id": 64, "team": 128, "model": 128,
           "prompt_name": 128, "error_code": 64}


def to_row(record: RequestRecord, *, masker: Mask, log_content: bool) -> dict[str, Any]:
    row = record.model_dump(exclude={"messages", "answer", "rails"})
    for column, width in _WIDTHS.items():
        if isinstance(row[column], str):
            row[column] = row[column][:width]
    row["rails"] = orjson.dumps([r.model_dump() for r in record.rails]).decode()
    keep = log_content and record.messages is not None
    row["messages"] = orjson.dumps(mask_value(record.messages, masker)).decode() if keep else None
    row["answer"] = mask_text(record.answer, masker) if log_content and record.answer is not None else None
    return row


def spend_of(items: Sequence[Item]) -> Spend:
    spend: dict[tuple[str, str], tuple[int, int]] = {}
    for item in items:
        if isinstance(item, RequestRecord):
            at, tokens, cost = item.created_at, item.input_tokens + item.output_tokens, item.cost
        else:
            at, tokens, cost = item.at, item.tokens, item.cost
        if not tokens and not cost:
            continue
        day = at.strftime("%Y-%m-%d")
        for subject in (f"key:{item.key_id}" if item.key_id else None, f"team:{item.team}" if item.team else None):
            if subject is not None:
                t, c = spend.get((subject, day), (0, 0))
                spend[(subject, day)] = (t + tokens, c + to_nano(cost))
    return spend


class RequestLog:
    def __init__(
        self,
        store: RequestLogStore,
        settings: GovernanceSettings,
        *,
        masker: Mask,
        spill_dir: Path,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self._masker = masker
        self._log_content = settings.log_content
        self._retention = timedelta(days=settings.retention_days)
        self._spill_dir = spill_dir
        self._writer: LogWriter[Item] = LogWriter(
            self._write,
            maxsize=settings.log_queue_size,
            batch_size=settings.log_batch_size,
            flush_interval_s=settings.log_flush_interval_s,
            spill=self._spill,
            periodic=self._purge_quietly,
            period_s=settings.purge_interval_s,
            on_written=on_written,
            on_dropped=on_dropped,
        )

    def enqueue(self, record: RequestRecord) -> bool:
        """Never blocks. True: the record will be stored. False: the queue is full and it was dropped."""
        return self._writer.put(record)

    def record_usage(self, event: UsageEvent) -> bool:
        return self._writer.put(event)

    def qsize(self) -> int:
        return self._writer.qsize()

    def flush(self, timeout: float = 30.0) -> bool:
        return self._writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        self._writer.close(timeout)

    def query(self, q: RequestQuery) -> Page:
        return self.store.query(q)

    def export(self, q: RequestQuery) -> Iterator[bytes]:
        return self.store.export(q)

    def purge(self) -> int:
        deleted = self.store.purge(now() - self._retention)
        if deleted:
            log.info("request log: purged %d records older than %s", deleted, self._retention)
        return deleted

    def _purge_quietly(self) -> None:
        self.purge()

    def _rows(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        return [to_row(i, masker=self._masker, log_content=self._log_content)
                for i in items if isinstance(i, RequestRecord)]

    def _write(self, items: Sequence[Item]) -> None:
        self.store.write(self._rows(items), spend_of(items))

    def _spill(self, items: Sequence[Item]) -> None:
        # Masked like stored rows; a later import (or an operator) can load the file as JSON lines.
        # Written under a temporary name, synced, then renamed: a spill file that exists is complete
        # (a reader, or a crash mid-write, never sees half of one). One file per spill.
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        lines = [orjson.dumps({"request": row}) for row in self._rows(items)]
        lines += [orjson.dumps({"usage": {"subject": subject, "day": day, "tokens": tokens, "cost_nano": cost}})
                  for (subject, day), (tokens, cost) in spend_of(items).items()]
        stem = f"request-log-spill-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns()}"
        part, path = self._spill_dir / f".{stem}.part", self._spill_dir / f"{stem}.jsonl"
        with part.open("wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        part.replace(path)
        log.error("request log: database unavailable at shutdown; %d records spilled to %s", len(items), path)
