"""Request log: masking, batching off the request path, flush on close, retention, queries, export."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from governance_test_helpers import wait_until

from gateway.governance.logstore import RequestLogStore
from gateway.governance.masking import pii_mask
from gateway.governance.migrations import migrate
from gateway.governance.records import RailVerdict, RequestQuery, RequestRecord, UsageEvent
from gateway.governance.requestlog import RequestLog
from gateway.governance.settings import GovernanceSettings
from guardrails.verdict import Verdict
from prompts.db import create_engine

OpenLog = Callable[..., RequestLog]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def simple_mask(text: str) -> str:
    return re.sub(r"\S+@\S+", "<EMAIL>", text)


@pytest.fixture
def open_log(tmp_path: Path) -> Iterator[OpenLog]:
    opened: list[tuple[RequestLog, sa.Engine]] = []

    def factory(url: str, *, masker: Callable[[str], str] = simple_mask, busy_ms: int = 5000, **settings: Any) -> RequestLog:
        engine = create_engine(url, busy_timeout_ms=busy_ms)
        migrate(engine)
        settings.setdefault("log_content", True)
        settings.setdefault("log_flush_interval_s", 0.05)
        log = RequestLog(RequestLogStore(engine), GovernanceSettings(**settings), masker=masker, spill_dir=tmp_path)
        opened.append((log, engine))
        return log

    yield factory
    for log, engine in opened:
        log.close()
        engine.dispose()


def record(i: int = 0, **kw: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{i}", "created_at": T0 + timedelta(seconds=i), "endpoint": "/v1/chat/completions",
        "status": 200, "latency_ms": 12.5, "key_id": "vk-a", "team": "search", "model": "m1",
        "input_tokens": 10, "output_tokens": 20, "cost": 0.001,
    }
    values.update(kw)
    return RequestRecord(**values)


def _count(log: RequestLog) -> int:
    with log.store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM request_log")).scalar_one())


def test_content_is_masked_before_it_is_stored(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url, masker=pii_mask)
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "mail ana.silva@example.com my key"}]},
        {"role": "user", "content": "card 4111 1111 1111 1111", "name": "ana"},
    ]
    assert log.enqueue(record(messages=messages, answer="Reply to ana.silva@example.com",
                              rails=[Verdict("pii", "mask", 0.9, 0.3, "EMAIL:1")]))
    assert log.flush()
    stored = log.query(RequestQuery()).data[0]
    assert stored["messages"][0] == {"role": "system", "content": "be brief"}
    assert stored["messages"][1]["content"][0]["type"] == "text"
    assert "<EMAIL_1>" in stored["messages"][1]["content"][0]["text"]
    assert "4111" not in stored["messages"][2]["content"]
    assert stored["answer"] == "Reply to <EMAIL_1>"
    assert stored["rails"] == [RailVerdict(rail="pii", action="mask", score=0.9, latency_ms=0.3, detail="EMAIL:1").model_dump()]
    with log.store.engine.connect() as conn:
        raw = str(conn.execute(sa.text("SELECT messages, answer FROM request_log")).all())
    assert "ana.silva@example.com" not in raw and "4111 1111" not in raw


def test_content_is_not_stored_unless_enabled(sqlite_url: str, open_log: OpenLog) -> None:
    log = open_log(sqlite_url, log_content=False)
    log.enqueue(record(messages=[{"role": "user", "content": "secret plan"}], answer="ok"))
    assert log.flush()
    stored = log.query(RequestQuery()).data[0]
    assert stored["messages"] is None and stored["answer"] is None


def test_masking_failures_drop_the_content(sqlite_url: str, open_log: OpenLog) -> None:
    def broken(_text: str) -> str:
        raise RuntimeError("detector crashed")

    log = open_log(sqlite_url, masker=broken)
    log.enqueue(record(messages=[{"role": "user", "content": "ana@example.com"}], answer="x"))
    assert log.flush()
    stored = log.query(RequestQuery()).data[0]
    assert "ana@example.com" not in json.dumps(stored)


def test_writes_are_batched(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url, log_batch_size=100, log_flush_interval_s=5.0)
    sizes: list[int] = []
    original = log.store.write

    def counting(rows: Any, spend: Any) -> None:
        sizes.append(len(rows))
        original(rows, spend)

    log.store.write = counting  # type: ignore[method-assign]
    assert all(log.enqueue(record(i)) for i in range(450))
    assert log.flush()
    assert sum(sizes) == 450 == _count(log)
    assert max(sizes) <= 100 and len(sizes) < 450


def _lock_sqlite(url: str) -> sqlite3.Connection:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_enqueue_never_waits_for_a_locked_database(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url, log_batch_size=10)
    log.enqueue(record(0))
    assert log.flush()  # tables exist and the writer is warm
    if db_url.startswith("sqlite"):
        locker: Any = _lock_sqlite(db_url)
        release: Callable[[], None] = lambda: locker.execute("COMMIT")  # noqa: E731
    else:
        locker = sa.create_engine(db_url, poolclass=sa.NullPool).connect()
        tx = locker.begin()
        locker.execute(sa.text("LOCK TABLE request_log IN ACCESS EXCLUSIVE MODE"))
        release = tx.commit
    try:
        # This thread holds the lock: an enqueue that waited for the database would never return.
        assert all(log.enqueue(record(i)) for i in range(1, 101))
        assert not log.flush(timeout=0.3)  # the writer is stuck behind the lock, we are not
    finally:
        release()
        locker.close()
    assert log.flush()
    assert _count(log) == 101


def test_a_full_queue_drops_and_says_so(sqlite_url: str, open_log: OpenLog) -> None:
    dropped: list[int] = []
    log = open_log(sqlite_url, log_queue_size=5)
    log.enqueue(record(0))
    assert log.flush()
    log._writer._on_dropped = dropped.append  # noqa: SLF001
    locker = _lock_sqlite(sqlite_url)
    try:
        accepted = [log.enqueue(record(i)) for i in range(1, 30)]
    finally:
        locker.execute("COMMIT")
        locker.close()
    assert accepted.count(False) == len(dropped) > 0
    assert log.flush()
    assert _count(log) == 1 + accepted.count(True)


def test_close_flushes_every_accepted_record(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url, log_batch_size=10_000, log_flush_interval_s=60.0)
    assert all(log.enqueue(record(i)) for i in range(321))
    log.close()
    assert _count(log) == 321
    assert not log.enqueue(record(999))  # closed: refused, not silently lost


def test_close_spills_to_a_file_when_the_database_stays_locked(sqlite_url: str, open_log: OpenLog, tmp_path: Path) -> None:
    log = open_log(sqlite_url, busy_ms=100, log_flush_interval_s=60.0)
    log.enqueue(record(0))
    assert log.flush()
    locker = _lock_sqlite(sqlite_url)
    try:
        log.enqueue(record(1, messages=[{"role": "user", "content": "ana@example.com"}]))
        log.close(timeout=1.0)
        wait_until(lambda: bool(list(tmp_path.glob("request-log-spill-*.jsonl"))), what="the spill file")
        spills = list(tmp_path.glob("request-log-spill-*.jsonl"))
        lines = [orjson.loads(line) for line in spills[0].read_bytes().splitlines()]
    finally:
        locker.execute("COMMIT")
        locker.close()
    assert lines[0]["request"]["request_id"] == "req-1"
    assert "ana@example.com" not in spills[0].read_text()
    assert {"usage"} <= set().union(*lines)


def test_retention_purges_old_rows(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url, retention_days=30, purge_interval_s=3600)
    now = datetime.now(UTC)
    for i, age in enumerate((45, 31, 29, 1)):
        log.enqueue(record(i, created_at=now - timedelta(days=age)))
    assert log.flush()
    assert log.purge() == 2
    assert sorted(r["request_id"] for r in log.query(RequestQuery()).data) == ["req-2", "req-3"]


def test_retention_purge_runs_by_itself(sqlite_url: str, open_log: OpenLog) -> None:
    log = open_log(sqlite_url, retention_days=1, purge_interval_s=0.1)
    log.enqueue(record(0, created_at=datetime.now(UTC) - timedelta(days=3)))
    log.enqueue(record(1, created_at=datetime.now(UTC)))
    assert log.flush()
    wait_until(lambda: _count(log) == 1, what="the periodic purge")


def test_query_filters_and_cursor_pagination(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url)
    rows = [
        record(0, key_id="vk-a", model="m1", status=200, prompt_name="greet", prompt_version=1),
        record(1, key_id="vk-b", model="m2", status=429, error_code="rate_limit_exceeded"),
        record(2, key_id="vk-a", model="m2", status=200, prompt_name="greet", prompt_version=2),
        record(3, key_id="vk-a", model="m1", status=500, endpoint="/v1/completions"),
        record(4, key_id="vk-b", model="m1", status=200, prompt_name="other", prompt_version=1),
    ]
    for r in rows:
        log.enqueue(r)
    assert log.flush()

    def ids(**filters: Any) -> list[str]:
        return [r["request_id"] for r in log.query(RequestQuery(**filters)).data]

    assert ids() == ["req-4", "req-3", "req-2", "req-1", "req-0"]
    assert ids(key_id="vk-a") == ["req-3", "req-2", "req-0"]
    assert ids(model="m2") == ["req-2", "req-1"]
    assert ids(status=429) == ["req-1"]
    assert ids(endpoint="/v1/completions") == ["req-3"]
    assert ids(prompt="greet") == ["req-2", "req-0"]
    assert ids(prompt="greet@2") == ["req-2"]
    assert ids(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3)) == ["req-2", "req-1"]
    assert ids(key_id="vk-a", model="m1") == ["req-3", "req-0"]

    seen, cursor, pages = [], None, 0
    while True:
        page = log.query(RequestQuery(limit=2, cursor=cursor))
        seen += [r["request_id"] for r in page.data]
        pages += 1
        if not page.has_more:
            assert page.next_cursor is None
            break
        cursor = page.next_cursor
    assert pages == 3 and seen == ids()


def test_export_streams_every_match_as_jsonl(db_url: str, open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.governance.logstore.EXPORT_PAGE", 7)
    log = open_log(db_url)
    for i in range(30):
        log.enqueue(record(i, model="m1" if i % 3 else "m2"))
    assert log.flush()
    lines = [orjson.loads(line) for line in b"".join(log.export(RequestQuery(model="m1"))).splitlines()]
    assert [r["request_id"] for r in lines] == [f"req-{i}" for i in range(30) if i % 3]
    assert lines[0]["created_at"].startswith("2026-03-01T12:00:01")


def test_spend_is_kept_per_subject_and_day(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url)
    log.enqueue(record(0, cost=0.25, input_tokens=5, output_tokens=5))
    log.enqueue(record(1, cost=0.5, key_id="vk-b"))
    log.enqueue(record(2, cost=0.125, created_at=T0 + timedelta(days=1)))
    log.record_usage(UsageEvent(at=T0, key_id="vk-a", team="search", tokens=7, cost=0.0625))
    assert log.flush()
    log.purge()  # retention never touches spend
    assert log.store.spent("key:vk-a", None) == (10 + 30 + 7, 437_500_000)
    assert log.store.spent("key:vk-a", "2026-03-02") == (30, 125_000_000)
    assert log.store.spent("team:search", "2026-03-01") == (10 + 30 + 30 + 7, 937_500_000)


def test_a_record_the_database_rejects_does_not_block_its_batch(db_url: str, open_log: OpenLog) -> None:
    log = open_log(db_url)
    calls = {"n": 0}
    original = log.store.write

    def picky(rows: Any, spend: Any) -> None:
        calls["n"] += 1
        if any(r["request_id"] == "req-13" for r in rows):
            raise sa.exc.IntegrityError("insert", {}, Exception("rejected"))
        original(rows, spend)

    log.store.write = picky  # type: ignore[method-assign]
    for i in range(20):
        log.enqueue(record(i))
    assert log.flush()
    assert _count(log) == 19


def test_unknown_query_parameters_and_bad_prompt_filters_are_rejected() -> None:
    with pytest.raises(ValueError):
        RequestQuery.model_validate({"keyid": "x"})
    with pytest.raises(ValueError):
        RequestQuery(prompt="greet@latest")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_version_1_log_gains_completion_ids_and_keeps_its_rows(backend: str, tmp_path: Path) -> None:
    """Migration 2 on a database written by migration 1 only: old rows stay, new rows carry the id."""
    from contextlib import nullcontext

    from gateway.governance.migrations import MIGRATIONS
    from prompts.migrations import run_migrations
    from tests.support.databases import pg_schema

    context = pg_schema("llmops_logmig") if backend == "postgresql" else nullcontext(f"sqlite:///{tmp_path}/v1.db")
    with context as url:
        engine = create_engine(url)
        try:
            assert run_migrations(engine, "governance", MIGRATIONS[:1]) == [1]
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO request_log (request_id, created_at, endpoint, status, latency_ms, rails, "
                    "input_tokens, output_tokens, cost, stream) VALUES ('old', :at, 'chat', 200, 1.0, '[]', 1, 1, 0, false)"
                ), {"at": T0})
            assert migrate(engine) == [2]
            store = RequestLogStore(engine)
            store.write([{**record(1, completion_id="chatcmpl-new").model_dump(exclude={"messages", "answer", "rails"}),
                          "rails": "[]", "messages": None, "answer": None}], {})
            old = store.query(RequestQuery(request_id="old")).data
            assert [(r["request_id"], r["completion_id"]) for r in old] == [("old", None)]
            new = store.query(RequestQuery(completion_id="chatcmpl-new")).data
            assert [r["request_id"] for r in new] == ["req-1"]
        finally:
            engine.dispose()
