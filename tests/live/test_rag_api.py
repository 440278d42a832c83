"""The retrieval router over HTTP (in-process ASGI), on a real Milvus Lite file and the real model."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.api import rag as rag_api
from gateway.app import install_error_handlers
from gateway.auth import KeyStore, Principal, digest
from rag import MiniLMEmbedder, RagService, RagSettings
from tests.unit.rag.test_loaders import tiny_pdf

pytestmark = pytest.mark.timeout(300)

ADMIN, CLIENT, ACME, ACME_ADMIN = "sk-admin", "sk-client", "sk-acme", "sk-acme-admin"


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


class _NoVirtualKeys:
    """The governance this partial app needs: no virtual keys, and a dense search's query embedding
    is charged (recorded here; the live gateway's spend is checked in test_rag_gateway)."""

    def __init__(self) -> None:
        from gateway.governance.pricing import PriceTable

        self.prices = PriceTable({})
        self.charged: list[tuple[str, int]] = []

    async def authenticate(self, secret: str) -> None:
        return None

    async def record_usage(self, principal: Principal, *, tokens: int, cost: float) -> None:
        self.charged.append((principal.key_id, tokens))


def keys() -> KeyStore:
    store = KeyStore([CLIENT], [ADMIN])
    # Tenant-scoped keys, as virtual keys will carry them.
    store._keys[digest(ACME)] = Principal(key_id="acme", role="client", tenant="acme")
    store._keys[digest(ACME_ADMIN)] = Principal(key_id="acme-admin", role="admin", tenant="acme")
    return store


def build_app(rag: RagService | None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(rag_api.router)
    # What the auth dependencies read from the gateway's services: static keys, no virtual keys.
    app.state.services = SimpleNamespace(keys=keys(), insecure=False, governance=_NoVirtualKeys())
    app.state.rag = rag
    return app


@pytest.fixture
async def api(tmp_path: Path, embedder: MiniLMEmbedder) -> AsyncIterator[Any]:
    rag = RagService(RagSettings(uri=str(tmp_path / "rag.db")), embedder=embedder)
    await rag.start()
    transport = httpx.ASGITransport(app=build_app(rag))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:

        def call(method: str, path: str, key: str, **kw: Any) -> Any:
            return http.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kw)

        yield call
    await rag.aclose()


DOCS = [
    {"source": "guide/passwords.md", "text": "# Passwords\n\nTo reset a password, open Settings and choose Reset."},
    {"source": "lunch.txt", "text": "The cafeteria serves lunch from noon until two.", "metadata": {"lang": "en"}},
]


async def test_upload_search_delete_round_trip(api: Any) -> None:
    r = await api("POST", "/v1/rag/documents", ADMIN, json={"collection": "kb", "documents": DOCS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {"added": 2, "replaced": 0, "unchanged": 0, "error": 0, "chunks": 2}

    r = await api("POST", "/v1/rag/search", CLIENT, json={"collection": "kb", "query": "reset my password", "top_k": 2})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert list(data[0]) == ["id", "text", "score", "source", "metadata"]
    assert data[0]["source"] == "guide/passwords.md"
    assert data[0]["score"] >= data[1]["score"]

    r = await api("POST", "/v1/rag/search", CLIENT,
                  json={"collection": "kb", "query": "food", "top_k": 5, "filter": {"lang": "en"}})
    assert [d["source"] for d in r.json()["data"]] == ["lunch.txt"]

    r = await api("DELETE", "/v1/rag/collections/kb/sources", ADMIN, params={"source": "lunch.txt"})
    assert r.json()["deleted"] == 1
    r = await api("GET", "/v1/rag/collections", ADMIN)
    assert r.json()["data"] == [{"name": "kb", "chunks": 1}]
    r = await api("GET", "/v1/rag/collections", CLIENT)
    assert r.json()["data"] == [{"name": "kb"}]


async def test_multipart_upload_with_a_bad_file_in_the_batch(api: Any) -> None:
    files = [("files", ("report.pdf", tiny_pdf("Quarterly revenue grew by nine percent"), "application/pdf")),
             ("files", ("notes.txt", b"Remember to water the plants.", "text/plain")),
             ("files", ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf"))]
    r = await api("POST", "/v1/rag/documents", ADMIN, files=files,
                  data={"collection": "kb", "metadata": '{"team": "finance"}'})
    assert r.status_code == 200, r.text
    status = {f["source"]: (f["status"], f["error"]) for f in r.json()["files"]}
    assert status["report.pdf"] == ("added", None) and status["notes.txt"] == ("added", None)
    assert status["broken.pdf"][0] == "error" and "not a readable PDF" in status["broken.pdf"][1]
    r = await api("POST", "/v1/rag/search", CLIENT, json={"collection": "kb", "query": "revenue growth", "top_k": 1})
    hit = r.json()["data"][0]
    assert hit["source"] == "report.pdf" and hit["metadata"] == {"team": "finance", "page": 1}


async def test_tenancy_follows_the_key(api: Any) -> None:
    await api("POST", "/v1/rag/documents", ADMIN, json={"collection": "kb", "tenant": "globex", "documents": [
        {"source": "plan.txt", "text": "Globex launch plan: doomsday device."}]})
    r = await api("POST", "/v1/rag/documents", ACME_ADMIN, json={"collection": "kb", "documents": [
        {"source": "plan.txt", "text": "Acme launch plan: rocket skates."}]})
    assert r.status_code == 200
    r = await api("POST", "/v1/rag/documents", ACME_ADMIN, json={"collection": "kb", "tenant": "globex", "documents": [
        {"source": "x.txt", "text": "x"}]})
    assert r.status_code == 403

    async def seen(key: str, **body: Any) -> set[str]:
        r = await api("POST", "/v1/rag/search", key, json={"collection": "kb", "query": "launch plan", "top_k": 10, **body})
        assert r.status_code == 200, r.text
        return {d["text"].split()[0] for d in r.json()["data"]}

    assert await seen(ACME) == {"Acme"}
    assert await seen(ACME, filter='source like "%" or chunk_index >= 0') == {"Acme"}
    assert await seen(CLIENT) == set()  # an unscoped client key reads the shared tenant only
    assert await seen(ADMIN) == {"Acme", "Globex"}
    r = await api("POST", "/v1/rag/search", ACME, json={"collection": "kb", "query": "plan", "filter": ') or (tenant != ""'})
    assert r.status_code == 400 and r.json()["error"]["param"] == "filter"
    r = await api("DELETE", "/v1/rag/collections/kb/sources", ACME_ADMIN, params={"source": "plan.txt"})
    assert r.json()["deleted"] == 1
    assert await seen(ADMIN) == {"Globex"}


async def test_errors_use_the_gateway_envelope(api: Any) -> None:
    r = await api("POST", "/v1/rag/search", CLIENT, json={"collection": "nope", "query": "q"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "collection"
    r = await api("POST", "/v1/rag/search", CLIENT, json={"collection": "kb", "query": "q", "top_k": 0})
    assert r.status_code == 400
    r = await api("POST", "/v1/rag/search", CLIENT, json={"query": "q", "unknown": 1})
    assert r.status_code == 400
    r = await api("POST", "/v1/rag/documents", CLIENT, json={"collection": "kb", "documents": DOCS})
    assert r.status_code == 403
    r = await api("POST", "/v1/rag/documents", ADMIN, json={"collection": "kb", "documents": [{"source": "a.txt"}]})
    assert r.status_code == 400
    r = await api("POST", "/v1/rag/documents", ADMIN, json={"collection": "bad name", "documents": DOCS})
    assert r.status_code == 400
    b64 = base64.b64encode(b"\xff\xfe not text").decode()
    r = await api("POST", "/v1/rag/documents", ADMIN, json={"collection": "kb", "documents": [
        {"source": "latin.txt", "content_base64": b64}]})
    assert r.json()["files"][0]["status"] == "error" and "UTF-8" in r.json()["files"][0]["error"]
    r = await api("POST", "/v1/rag/search", "sk-wrong", json={"query": "q"})
    assert r.status_code == 401


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(60)
async def test_store_down_answers_503(embedder: MiniLMEmbedder) -> None:
    rag = RagService(RagSettings(uri=f"http://127.0.0.1:{closed_port()}", timeout_s=3), embedder=embedder)
    assert await rag.start() is False
    transport = httpx.ASGITransport(app=build_app(rag))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        r = await http.post("/v1/rag/search", json={"query": "q"}, headers={"Authorization": f"Bearer {CLIENT}"})
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "service_unavailable"
        assert "127.0.0.1" not in r.json()["error"]["message"]  # the store's address stays in the log
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(None)), base_url="http://gw") as http:
        r = await http.post("/v1/rag/search", json={"query": "q"}, headers={"Authorization": f"Bearer {CLIENT}"})
        assert r.status_code == 503
