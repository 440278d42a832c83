"""The retrieval package against a real Milvus Lite file and the real MiniLM model (tiny corpora)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag import (
    Chunk,
    CollectionNotFound,
    DocumentIn,
    InvalidFilter,
    MiniLMEmbedder,
    RagService,
    RagSettings,
    StoreLocked,
    StoreUnavailable,
)
from rag.fusion import rrf
from rag.lock import read_owner

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture
def make(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[Any]:
    services: list[RagService] = []

    def build(**settings: Any) -> RagService:
        settings.setdefault("uri", str(tmp_path / "rag.db"))
        owner_url = settings.pop("owner_url", None)
        svc = RagService(RagSettings(**settings), embedder=embedder, owner_url=owner_url)
        services.append(svc)
        return svc

    yield build
    for svc in services:
        svc.close()


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)
    return root


DOCS = {
    "docs/passwords.md": "# Accounts\n\n## Passwords\n\nTo reset a password, open Settings and choose Reset password. "
                         "A reset link is emailed to you.\n\n## Two-factor\n\nEnable two-factor authentication in the "
                         "Security tab with an authenticator app.\n",
    "docs/lunch.txt": "The cafeteria serves lunch from noon until 2pm every weekday. Vegetarian options are daily.",
    "docs/billing.html": "<html><body><h1>Billing</h1><p>Invoices are sent on the first day of each month."
                         "</p><script>var secret = 1;</script></body></html>",
    "docs/faq.jsonl": json.dumps({"text": "Refunds are possible within 30 days of purchase.", "metadata": {"lang": "en"}})
                      + "\n" + json.dumps({"text": "Les remboursements sont possibles sous 30 jours.",
                                           "metadata": {"lang": "fr"}}) + "\n",
    "docs/broken.jsonl": "{not json\n",
    "docs/notes.docx": b"PK\x03\x04 not supported",
}


def sources(chunks: list[Chunk]) -> set[str]:
    return {c.source for c in chunks}


def test_ingest_is_idempotent_replaces_changed_files_and_deletes_sources(tmp_path: Path, make: Any) -> None:
    root = write(tmp_path, DOCS)
    svc = make()
    ing = svc.ingestor

    first = ing.ingest_paths([root / "docs", root / "docs/notes.docx"], "kb", tenant="acme", source_root=root)
    status = {f.source: f.status for f in first.files}
    assert status == {"docs/billing.html": "added", "docs/faq.jsonl": "added", "docs/lunch.txt": "added",
                      "docs/passwords.md": "added", "docs/broken.jsonl": "error", "docs/notes.docx": "error"}
    errors = {f.source: f.error for f in first.errors}
    assert "line 1: invalid JSON" in (errors["docs/broken.jsonl"] or "")
    assert "unsupported file type '.docx'" in (errors["docs/notes.docx"] or "")
    total = svc.store.count("kb")
    assert total == first.chunks >= 5

    again = ing.ingest_paths([root / "docs"], "kb", tenant="acme", source_root=root)
    assert {f.status for f in again.files if f.status != "error"} == {"unchanged"}
    assert svc.store.count("kb") == total

    (root / "docs/lunch.txt").write_text("Lunch is now served from 11:30 until 1:30pm, and breakfast from 8am.")
    changed = ing.ingest_paths([root / "docs"], "kb", tenant="acme", source_root=root)
    assert {f.source: f.status for f in changed.files}["docs/lunch.txt"] == "replaced"
    assert svc.store.count("kb") == total
    lunch = svc.retriever.search("kb", "when is lunch served", tenant="acme", top_k=5)
    lunch_texts = [c.text for c in lunch if c.source == "docs/lunch.txt"]
    assert lunch_texts == ["Lunch is now served from 11:30 until 1:30pm, and breakfast from 8am."]

    removed = ing.delete_source("kb", "docs/passwords.md", tenant="acme")
    assert removed == 2
    assert svc.store.count("kb") == total - 2
    assert "docs/passwords.md" not in sources(svc.retriever.search("kb", "reset my password", tenant="acme", top_k=10))
    assert ing.delete_source("kb", "docs/passwords.md", tenant="acme") == 0


def test_html_markdown_and_jsonl_content_lands_as_expected(tmp_path: Path, make: Any) -> None:
    root = write(tmp_path, DOCS)
    svc = make()
    svc.ingestor.ingest_paths([root / "docs"], "kb", tenant="acme", source_root=root, metadata={"team": "support"})
    hits = svc.retriever.search("kb", "two-factor authentication", tenant="acme", top_k=1)
    assert hits[0].source == "docs/passwords.md"
    assert hits[0].metadata == {"team": "support", "section": "Accounts > Two-factor"}
    assert hits[0].text.startswith("Accounts > Two-factor\n")
    html = svc.retriever.search("kb", "invoices", tenant="acme", top_k=10, filter={"source": "docs/billing.html"})
    assert [c.text for c in html] == ["Billing\n\nInvoices are sent on the first day of each month."]


def test_metadata_filters_are_pushed_down(tmp_path: Path, make: Any) -> None:
    root = write(tmp_path, DOCS)
    svc = make()
    svc.ingestor.ingest_paths([root / "docs"], "kb", tenant="acme", source_root=root)
    search = svc.retriever.search

    fr = search("kb", "refund", tenant="acme", top_k=10, filter='lang == "fr"')
    assert [c.metadata["lang"] for c in fr] == ["fr"]
    en_or_fr = search("kb", "refund", tenant="acme", top_k=10, filter={"lang": ["en", "fr"]})
    assert sorted(c.metadata["lang"] for c in en_or_fr) == ["en", "fr"]
    not_fr = search("kb", "refund", tenant="acme", top_k=10, filter='not (lang == "fr")')
    # != (and so a negated ==) also matches chunks without the key, as `not` should
    assert "fr" not in {c.metadata.get("lang") for c in not_fr} and "en" in {c.metadata.get("lang") for c in not_fr}
    assert "docs/lunch.txt" in sources(not_fr)
    md = search("kb", "anything", tenant="acme", top_k=10, filter='source like "docs/pass%" and chunk_index >= 1')
    assert sources(md) == {"docs/passwords.md"} and all(c.chunk_index >= 1 for c in md)
    for mode in ("dense", "bm25", "hybrid"):
        assert sources(search("kb", "lunch", tenant="acme", top_k=10, mode=mode, filter={"source": "docs/lunch.txt"})) \
            <= {"docs/lunch.txt"}
    with pytest.raises(InvalidFilter):
        search("kb", "x", tenant="acme", filter='lang == "en") or (tenant != ""')


def test_a_tenant_never_sees_another_tenants_chunks(tmp_path: Path, make: Any) -> None:
    svc = make()
    docs = {
        "acme": [DocumentIn(source="plan.txt", text="Acme secret launch plan: rocket skates ship in March.")],
        "globex": [DocumentIn(source="plan.txt", text="Globex secret launch plan: the doomsday device ships in May.")],
        "": [DocumentIn(source="handbook.txt", text="Everyone may read the shared handbook about launch plans.")],
    }
    for tenant, items in docs.items():
        assert svc.ingestor.ingest_documents(items, "kb", tenant=tenant).summary()["added"] == 1

    def tenants(tenant: str | None, query: str, **kw: Any) -> set[str]:
        hits = svc.retriever.search("kb", query, tenant=tenant, top_k=10, **kw)
        return {c.tenant for c in hits}

    for mode in ("dense", "bm25", "hybrid"):
        assert tenants("acme", "Globex doomsday device launch plan", mode=mode) == {"acme"}
        # BM25 finds nothing of Globex's for Acme's words, and must not find Acme's
        assert tenants("globex", "Acme rocket skates", mode=mode) == (set() if mode == "bm25" else {"globex"})
    # the same source name in two tenants is two sources
    assert {c.text[:5] for c in svc.retriever.search("kb", "plan", tenant="acme", top_k=10, filter={"source": "plan.txt"})} \
        == {"Acme "}
    # filters that are valid but broad still stay inside the tenant
    for broad in ('source like "%" or chunk_index >= 0', 'not (source == "nothing")', 'chunk_index < 0 or chunk_index >= 0'):
        assert tenants("acme", "launch plan", filter=broad) == {"acme"}
    # hostile filters are refused, never run
    for hostile in (') or (tenant != ""', 'source == "x" or tenant == "globex"', 'source == "x\\" or tenant != \\""',
                    "source == 'x\" or \"1\" == \"1'", 'TENANT == "globex"'):
        with pytest.raises(InvalidFilter):
            svc.retriever.search("kb", "launch plan", tenant="acme", filter=hostile)
    assert tenants("", "launch plan") == {""}
    assert tenants(None, "launch plan") == {"acme", "globex", ""}
    assert tenants("initech", "launch plan") == set()
    # deleting one tenant's source leaves the other tenant's source of the same name
    assert svc.ingestor.delete_source("kb", "plan.txt", tenant="acme") == 1
    assert tenants(None, "launch plan") == {"globex", ""}


def test_hybrid_is_the_rank_fusion_of_dense_and_bm25(tmp_path: Path, make: Any) -> None:
    svc = make()
    texts = {
        "code.txt": "Error ZX-4471 means the disk quota of the workspace is exceeded.",
        "save1.txt": "If saving a document fails, an error dialog explains why the file could not be written.",
        "save2.txt": "Saving can fail when the folder is read-only; the editor then shows an error.",
        "refund.txt": "Purchases may be returned for a full refund within thirty days.",
        "lunch.txt": "The cafeteria serves lunch from noon until two in the afternoon.",
    }
    svc.ingestor.ingest_documents([DocumentIn(source=k, text=v) for k, v in texts.items()], "kb")
    search = svc.retriever.search

    q = "what does ZX-4471 mean"
    dense = search("kb", q, tenant="", top_k=5, mode="dense")
    bm25 = search("kb", q, tenant="", top_k=5, mode="bm25")
    hybrid = search("kb", q, tenant="", top_k=5, mode="hybrid")
    assert bm25[0].source == "code.txt"  # the exact token: lexical search's strength
    expected = [d for d, _ in rrf([[c.id for c in dense], [c.id for c in bm25]], k=svc.settings.rrf_k)]
    assert [c.id for c in hybrid] == expected[:5]
    assert hybrid[0].source == "code.txt"
    assert all(c.similarity is not None for c in dense)

    # a paraphrase with no shared words: only the dense side can find it
    para = "how can I get my money back"
    assert search("kb", para, tenant="", top_k=1, mode="dense")[0].source == "refund.txt"
    assert "refund.txt" not in sources(search("kb", para, tenant="", top_k=5, mode="bm25"))
    assert "refund.txt" in sources(search("kb", para, tenant="", top_k=2, mode="hybrid"))


def test_scoring_and_ordering_stages(tmp_path: Path, make: Any) -> None:
    svc = make()
    dup = "To reset a password, open Settings and choose Reset password."
    svc.ingestor.ingest_documents([
        DocumentIn(source="a.txt", text=dup),
        DocumentIn(source="b.txt", text=dup + " "),
        DocumentIn(source="c.txt", text="Passwords must have twelve characters and may not reuse old ones."),
        DocumentIn(source="d.txt", text="The cafeteria serves lunch from noon until two."),
    ], "kb")
    search = svc.retriever.search
    plain = search("kb", "reset password", tenant="", top_k=2, mode="dense")
    assert sources(plain) == {"a.txt", "b.txt"}
    diverse = search("kb", "reset password", tenant="", top_k=2, mode="dense", mmr=True, mmr_lambda=0.5)
    assert len(sources(diverse) & {"a.txt", "b.txt"}) == 1  # never both copies
    strict = search("kb", "reset password", tenant="", top_k=4, mode="hybrid", score_threshold=0.5)
    assert strict and all((c.similarity or 0) >= 0.5 for c in strict) and "d.txt" not in sources(strict)
    budget = search("kb", "password", tenant="", top_k=4, token_budget=12)
    assert len(budget) == 1  # each passwords chunk is 10-11 words; two would exceed 12
    assert [c.score for c in search("kb", "password", tenant="", top_k=4)] == \
        sorted((c.score for c in search("kb", "password", tenant="", top_k=4)), reverse=True)


def test_screen_hook_may_drop_or_redact_but_not_add(tmp_path: Path, make: Any) -> None:
    svc = make()
    svc.ingestor.ingest_documents([DocumentIn(source="a.txt", text="The admin password is hunter2."),
                                   DocumentIn(source="b.txt", text="Passwords rotate every 90 days.")], "kb")
    foreign = Chunk(id="not-a-candidate", text="injected", score=1.0, source="evil.txt", tenant="other")

    def screen(chunks: list[Chunk]) -> list[Chunk]:
        kept = [c.model_copy(update={"text": c.text.replace("hunter2", "[redacted]")}) for c in chunks]
        return [foreign, *kept]

    hits = svc.retriever.search("kb", "password", tenant="", top_k=5, screen=screen)
    assert "evil.txt" not in sources(hits) and len(hits) == 2
    assert any("[redacted]" in c.text for c in hits) and not any("hunter2" in c.text for c in hits)

    async def async_screen(chunks: list[Chunk]) -> list[Chunk]:
        await asyncio.sleep(0)
        return [c for c in chunks if c.source != "a.txt"]

    async def run() -> list[Chunk]:
        return await svc.retrieve_for_chat("password", "kb", 5, None, "", async_screen)

    assert sources(asyncio.run(run())) == {"b.txt"}


def test_unknown_collection_and_bad_arguments(tmp_path: Path, make: Any) -> None:
    svc = make()
    with pytest.raises(CollectionNotFound):
        svc.retriever.search("missing", "q", tenant=None)
    with pytest.raises(CollectionNotFound):
        svc.ingestor.delete_source("missing", "a.txt", tenant="")
    from rag import InvalidArgument

    for bad in ({"collection": "bad-name!"}, {"tenant": 'x" or "1'}, {"top_k": 0}, {"query": "  "}):
        args = {"collection": "kb", "query": "q", "tenant": "", "top_k": 5, **bad}
        with pytest.raises(InvalidArgument):
            svc.retriever.search(args.pop("collection"), args.pop("query"), **args)


def test_the_store_file_has_one_owner(tmp_path: Path, make: Any) -> None:
    first = make(owner_url="http://127.0.0.1:8123")
    first.store.open()
    assert read_owner(first.store.uri)["url"] == "http://127.0.0.1:8123"  # type: ignore[index]
    second = make()
    with pytest.raises(StoreLocked) as info:
        second.store.open()
    assert "http://127.0.0.1:8123" in info.value.message
    first.close()
    assert read_owner(first.store.uri) is None
    second.store.open()  # free again


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(60)
def test_milvus_down_is_store_unavailable_not_a_hang(make: Any) -> None:
    svc = make(uri=f"http://127.0.0.1:{closed_port()}", timeout_s=3)
    with pytest.raises(StoreUnavailable, match="cannot reach Milvus"):
        svc.retriever.search("kb", "anything", tenant="acme")
    with pytest.raises(StoreUnavailable):
        svc.ingestor.ingest_documents([DocumentIn(source="a.txt", text="x")], "kb")
    assert asyncio.run(svc.start()) is False  # start-up survives a store that is down
