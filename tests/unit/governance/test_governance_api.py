"""Admin and metrics routers through a small FastAPI app with the real governance components."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from gateway.api import admin, metrics
from gateway.app import install_error_handlers
from gateway.auth import KeyStore, Principal, digest
from gateway.governance import Governance, GovernanceSettings, RequestRecord
from gateway.governance.quota import Limits
from gateway.governance.records import RequestQuery

ADMIN_KEY = "sk-test-admin"
CLIENT_KEY = "sk-test-client"
ADMIN_ID = f"static-{digest(ADMIN_KEY)[:12]}"
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


async def _app(tmp_path: Path, **settings: Any) -> tuple[FastAPI, Governance]:
    gov = Governance.build(
        GovernanceSettings(database_url=f"sqlite:///{tmp_path / 'gov.db'}", log_content=True, **settings),
        data_dir=tmp_path,
    )
    await gov.start()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(admin.router)
    public = settings.get("metrics_public", False)
    app.include_router(metrics.public_router if public else metrics.router)
    app.state.governance = gov
    # The slice of gateway.services.Services that gateway.api.deps reads.
    app.state.services = SimpleNamespace(keys=KeyStore([CLIENT_KEY], [ADMIN_KEY]), insecure=False, governance=gov)
    return app, gov


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Governance]]:
    app, gov = await _app(tmp_path, prices={"m1": {"input": 1.0, "output": 2.0}})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        yield http, gov
    await gov.aclose()


async def test_key_lifecycle_over_http(client: tuple[httpx.AsyncClient, Governance]) -> None:
    http, gov = client
    created = await http.post("/v1/admin/keys", headers=AUTH, json={
        "name": "ci", "team": "search", "models": ["m1"], "rpm": 60, "budget": {"amount": 5, "period": "month"},
        "expires_at": "2099-01-01T00:00:00Z", "metadata": {"owner": "ana"},
    })
    assert created.status_code == 201, created.text
    body = created.json()
    key_id, secret = body["id"], body["key"]
    assert body["status"] == "active" and body["object"] == "virtual_key"
    assert body["budget"] == {"amount": 5.0, "period": "month"} and "key_hash" not in body
    principal = await gov.authenticate(secret)
    assert isinstance(principal, Principal) and principal.limits == Limits(rpm=60, budget=gov.keys.get(key_id).budget)

    listed = (await http.get("/v1/admin/keys", headers=AUTH)).json()
    assert [k["id"] for k in listed["data"]] == [key_id] and "key" not in listed["data"][0]
    assert (await http.get(f"/v1/admin/keys/{key_id}", headers=AUTH)).json()["name"] == "ci"

    rotated = (await http.post(f"/v1/admin/keys/{key_id}/rotate", headers=AUTH)).json()
    assert rotated["id"] == key_id and rotated["key"] != secret
    assert await gov.authenticate(secret) is None
    assert await gov.authenticate(rotated["key"]) is not None

    revoked = await http.delete(f"/v1/admin/keys/{key_id}", headers=AUTH)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert await gov.authenticate(rotated["key"]) is None
    assert (await http.get("/v1/admin/keys", headers=AUTH)).json()["data"] == []
    assert len((await http.get("/v1/admin/keys?include_revoked=true", headers=AUTH)).json()["data"]) == 1

    audit = (await http.get("/v1/admin/audit", headers=AUTH)).json()["data"]
    assert [(e["action"], e["actor"], e["target_id"]) for e in audit] == [
        ("key.revoke", ADMIN_ID, key_id), ("key.rotate", ADMIN_ID, key_id), ("key.create", ADMIN_ID, key_id),
    ]
    assert secret not in str(audit) and rotated["key"] not in str(audit)


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({}, 401, "invalid_api_key"),
    ({"authorization": f"Bearer {CLIENT_KEY}"}, 403, "permission_denied"),
    ({"authorization": "Bearer sk-wrong"}, 401, "invalid_api_key"),
])
async def test_admin_endpoints_need_an_admin_key(
    client: tuple[httpx.AsyncClient, Governance], headers: dict[str, str], status: int, code: str
) -> None:
    http, _ = client
    for method, path in (("POST", "/v1/admin/keys"), ("GET", "/v1/admin/keys"), ("GET", "/v1/admin/requests"),
                         ("GET", "/v1/admin/audit"), ("DELETE", "/v1/admin/keys/vk-x")):
        response = await http.request(method, path, headers=headers, json={"name": "x"})
        assert response.status_code == status, (method, path)
        assert response.json()["error"]["code"] == code


async def test_a_virtual_key_is_never_an_admin_key(client: tuple[httpx.AsyncClient, Governance]) -> None:
    http, _ = client
    secret = (await http.post("/v1/admin/keys", headers=AUTH, json={"name": "x"})).json()["key"]
    response = await http.get("/v1/admin/keys", headers={"authorization": f"Bearer {secret}"})
    assert response.status_code == 403  # a valid key, but virtual keys are never admin keys


async def test_errors_are_openai_shaped(client: tuple[httpx.AsyncClient, Governance]) -> None:
    http, _ = client
    missing = await http.get("/v1/admin/keys/vk-nope", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    bad = await http.post("/v1/admin/keys", headers=AUTH, json={"name": "x", "rpm_limit": 5})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad_query = await http.get("/v1/admin/requests?prompt=greet@latest", headers=AUTH)
    assert bad_query.status_code == 400
    bad_cursor = await http.get("/v1/admin/requests?cursor=abc", headers=AUTH)
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["param"] == "cursor"


async def test_request_log_query_pagination_and_export(client: tuple[httpx.AsyncClient, Governance]) -> None:
    http, gov = client
    for i in range(5):
        assert gov.log(RequestRecord(
            request_id=f"r{i}", created_at=datetime(2026, 3, 1, 12, 0, i, tzinfo=UTC), endpoint="/v1/chat/completions",
            status=200 if i != 3 else 502, latency_ms=5.0, key_id="vk-a", model="m1" if i % 2 else "m2",
            messages=[{"role": "user", "content": f"hi ana@example.com {i}"}], answer="ok",
        ))
    assert gov.requests.flush()
    first = (await http.get("/v1/admin/requests?limit=2", headers=AUTH)).json()
    assert [r["request_id"] for r in first["data"]] == ["r4", "r3"] and first["has_more"]
    second = (await http.get(f"/v1/admin/requests?limit=2&cursor={first['next_cursor']}", headers=AUTH)).json()
    assert [r["request_id"] for r in second["data"]] == ["r2", "r1"]
    filtered = (await http.get("/v1/admin/requests?model=m1&status=502", headers=AUTH)).json()
    assert [r["request_id"] for r in filtered["data"]] == ["r3"]
    assert "ana@example.com" not in str(filtered) and "<EMAIL_1>" in filtered["data"][0]["messages"][0]["content"]
    since = (await http.get("/v1/admin/requests?since=2026-03-01T12:00:03Z", headers=AUTH)).json()
    assert [r["request_id"] for r in since["data"]] == ["r4", "r3"]

    export = await http.get("/v1/admin/requests/export?model=m2", headers=AUTH)
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    assert [orjson.loads(line)["request_id"] for line in export.content.splitlines()] == ["r0", "r2", "r4"]
    actions = [e["action"] for e in (await http.get("/v1/admin/audit", headers=AUTH)).json()["data"]]
    assert actions[0] == "requests.export" and "requests.query" in actions


async def test_metrics_after_some_traffic(client: tuple[httpx.AsyncClient, Governance]) -> None:
    http, gov = client
    assert (await http.get("/metrics")).status_code == 401
    principal = Principal(key_id="vk-a", role="client", name="a", limits=Limits(rpm=1))
    reservation = await gov.admit(principal, model="m1", prompt_tokens=10, max_tokens=20)
    with pytest.raises(Exception) as rejected:
        await gov.admit(principal, model="m1", prompt_tokens=10, max_tokens=20)
    assert getattr(rejected.value, "status", None) == 429
    cost = await gov.settle(reservation, input_tokens=10, output_tokens=15)
    gov.metrics.request(endpoint="/v1/chat/completions", model="m1", status=200, duration_s=0.12)
    gov.metrics.request(endpoint="/v1/chat/completions", model="m1", status=429, duration_s=0.001)
    gov.metrics.first_token("m1", 0.05)
    gov.metrics.upstream_call("m1", 0.1)
    gov.metrics.rail("pii", "mask")
    gov.metrics.retry("m1")
    gov.metrics.fallback("m1", "m2")
    gov.metrics.cache_lookup("prompt", hit=True)
    gov.metrics.cache_lookup("retrieval", hit=False)
    gov.log(RequestRecord(request_id="r", created_at=datetime(2026, 3, 1, tzinfo=UTC), endpoint="/v1/chat/completions",
                          status=200, latency_ms=1, cost=cost))
    assert gov.requests.flush()

    response = await http.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        'llmops_requests_total{endpoint="/v1/chat/completions",model="m1",status="200"} 1.0',
        'llmops_requests_total{endpoint="/v1/chat/completions",model="m1",status="429"} 1.0',
        'llmops_request_duration_seconds_count{endpoint="/v1/chat/completions",model="m1"} 2.0',
        'llmops_time_to_first_token_seconds_count{model="m1"} 1.0',
        'llmops_upstream_duration_seconds_count{model="m1"} 1.0',
        'llmops_tokens_total{direction="input",model="m1"} 10.0',
        'llmops_tokens_total{direction="output",model="m1"} 15.0',
        'llmops_cost_usd_total{model="m1"} 4e-05',
        'llmops_rail_verdicts_total{action="mask",rail="pii"} 1.0',
        'llmops_retries_total{model="m1"} 1.0',
        'llmops_fallbacks_total{from_model="m1",to_model="m2"} 1.0',
        'llmops_cache_lookups_total{cache="prompt",result="hit"} 1.0',
        'llmops_cache_lookups_total{cache="retrieval",result="miss"} 1.0',
        'llmops_rate_limited_total{limit="requests",scope="key"} 1.0',
        "llmops_request_log_written_total 1.0",
        "llmops_request_log_queue_depth 0.0",
    ):
        assert line in text, line
    assert "python_gc_objects_collected_total" not in text  # our registry, not the global one


async def test_metrics_can_be_public(tmp_path: Path) -> None:
    app, gov = await _app(tmp_path, metrics_public=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        assert (await http.get("/metrics")).status_code == 200
    await gov.aclose()


async def test_query_model_matches_the_http_filters() -> None:
    assert set(RequestQuery.model_fields) >= {"key_id", "model", "status", "since", "until", "prompt", "cursor"}
