from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag import Chunk, RagSettings, StoreLocked, citations, format_context
from rag.config import ROOT, check_collection_name
from rag.errors import InvalidArgument
from rag.lock import OwnerLock, owner_path, read_owner
from rag.retrieve import whitespace_tokens, within_budget


def test_settings_defaults_and_validation() -> None:
    s = RagSettings()
    assert s.embedded and s.resolved_uri() == str(ROOT / "var/rag.db")
    assert s.default_mode == "hybrid" and s.index.type is None and s.index_type() == "FLAT"
    assert RagSettings(uri="/abs/x.db").resolved_uri() == "/abs/x.db"
    server = RagSettings(uri="http://milvus:19530")
    assert not server.embedded and server.resolved_uri() == "http://milvus:19530"
    assert server.index_type() == "AUTOINDEX"
    assert RagSettings(index={"type": "IVF_FLAT"}).index_type() == "IVF_FLAT"  # type: ignore[arg-type]
    assert RagSettings(hybrid=False).default_mode == "dense"
    for bad in ({"chunk_overlap": 800}, {"chunk_size": 5000}, {"unknown": 1}, {"mmr_lambda": 2},
                {"default_collection": "no-dashes"}, {"index": {"type": "DISKANN"}}):
        with pytest.raises(ValidationError):
            RagSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        s.chunk_size = 10  # type: ignore[misc]  (frozen)


def test_collection_names() -> None:
    assert check_collection_name("docs_v2") == "docs_v2"
    for bad in ("", "2docs", "a-b", "a b", "x" * 256):
        with pytest.raises(InvalidArgument):
            check_collection_name(bad)


def test_owner_lock_records_the_holder(tmp_path: Path) -> None:
    db = str(tmp_path / "rag.db")
    assert read_owner(db) is None
    first = OwnerLock(db)
    first.acquire("http://127.0.0.1:9")
    info = read_owner(db)
    assert info is not None and info["url"] == "http://127.0.0.1:9" and isinstance(info["pid"], int)
    with pytest.raises(StoreLocked) as err:
        OwnerLock(db).acquire()
    assert "http://127.0.0.1:9" in err.value.message and err.value.owner["url"] == "http://127.0.0.1:9"
    first.release()
    assert read_owner(db) is None and owner_path(db).exists()
    second = OwnerLock(db)
    second.acquire()
    assert read_owner(db) == {**(read_owner(db) or {}), "url": None}
    second.release()


def chunk(i: int, text: str, score: float) -> Chunk:
    return Chunk(id=f"c{i}", text=text, score=score, source=f"doc{i}.md")


def test_token_budget_keeps_the_best_first_prefix() -> None:
    chunks = [chunk(1, "one two three", 0.9), chunk(2, "four five", 0.8), chunk(3, "six", 0.7)]
    assert [c.id for c in within_budget(chunks, None)] == ["c1", "c2", "c3"]
    assert [c.id for c in within_budget(chunks, 5)] == ["c1", "c2"]
    assert [c.id for c in within_budget(chunks, 4)] == ["c1"]  # c2 would not fit; nothing after it is taken
    assert within_budget(chunks, 2) == []
    assert [c.id for c in within_budget(chunks, 3, tokenizer=lambda t: 1)] == ["c1", "c2", "c3"]
    assert whitespace_tokens("  a\tb\nc  ") == 3


def test_citations_and_context() -> None:
    chunks = [chunk(1, "Reset it in Settings.\n", 0.0327868852), chunk(2, "Lunch at noon.", 0.016)]
    assert citations(chunks) == [{"id": "c1", "source": "doc1.md", "score": 0.032787},
                                 {"id": "c2", "source": "doc2.md", "score": 0.016}]
    assert format_context(chunks) == "[1] doc1.md\nReset it in Settings.\n\n[2] doc2.md\nLunch at noon."
    assert chunks[0].public() == {"id": "c1", "text": "Reset it in Settings.\n", "score": 0.0327868852,
                                  "source": "doc1.md", "metadata": {}}


def test_document_in_takes_text_or_bytes() -> None:
    from rag import DocumentIn

    assert DocumentIn(source="a.txt", text="hé").content() == "hé".encode()
    assert DocumentIn(source="a.pdf", content_base64="JVBERi0=").content() == b"%PDF-"
    for bad in ({}, {"text": "x", "content_base64": "eA=="}):
        with pytest.raises(ValidationError):
            DocumentIn(source="a.txt", **bad)
    with pytest.raises(ValueError, match="not valid base64"):
        DocumentIn(source="a.pdf", content_base64="***").content()
