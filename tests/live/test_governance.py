"""Keys, limits, budgets, the request log and metrics through the live gateway; and two gateway
replicas sharing the machine's real PostgreSQL and Redis enforcing one limit and one budget."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.conftest import ADMIN_KEY, CLIENT_KEY, Gateway, fake
from tests.support import procs
from tests.support.databases import pg_schema, redis_url

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
HI = [{"role": "user", "content": "hi"}]


def _new_key(url: str, **spec: object) -> dict[str, object]:
    resp = httpx.post(f"{url}/v1/admin/keys", headers=ADMIN, json={"name": f"k-{uuid.uuid4().hex[:8]}", **spec})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_key_lifecycle_scopes_and_rotation(gateway: Gateway) -> None:
    created = _new_key(gateway.url, models=["fake-good"])
    secret = str(created["key"])
    assert secret.startswith("sk-llmops-")
    client = gateway.client(key=secret)
    assert client.chat.completions.create(model="fake-good", messages=HI).choices[0].message.content  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="fake-echo", messages=HI)  # type: ignore[arg-type]
    listed = httpx.get(f"{gateway.url}/v1/admin/keys", headers=ADMIN).json()["data"]
    assert any(k["id"] == created["id"] for k in listed) and all("key" not in k for k in listed)
    rotated = httpx.post(f"{gateway.url}/v1/admin/keys/{created['id']}/rotate", headers=ADMIN).json()
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    new_client = gateway.client(key=str(rotated["key"]))
    assert new_client.models.list().data
    assert httpx.delete(f"{gateway.url}/v1/admin/keys/{created['id']}", headers=ADMIN).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        new_client.models.list()
    actions = [a["action"] for a in httpx.get(f"{gateway.url}/v1/admin/audit", headers=ADMIN).json()["data"]]
    assert {"key.create", "key.rotate", "key.revoke"} <= set(actions)


def test_client_key_on_admin_endpoints_is_403(gateway: Gateway) -> None:
    for path in ("/v1/admin/keys", "/v1/admin/requests", "/metrics"):
        resp = httpx.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {CLIENT_KEY}"})
        assert resp.status_code == 403, path
        assert httpx.get(f"{gateway.url}{path}").status_code == 401, path


def test_rate_limit_is_429_with_headers(gateway: Gateway) -> None:
    client = gateway.client(key=str(_new_key(gateway.url, rpm=2)["key"]))
    ok = client.chat.completions.with_raw_response.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
    assert ok.headers["x-ratelimit-limit-requests"] == "2"
    client.chat.completions.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="fake-good", messages=HI)  # type: ignore[arg-type]
    headers = exc.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "0"
    assert exc.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]


def test_request_log_masks_and_metrics_count(gateway: Gateway) -> None:
    gateway.client().chat.completions.create(
        model="fake-echo", messages=[{"role": "user", "content": "write to ops@example.net please"}])
    records: list[dict[str, object]] = []
    for _ in range(50):  # the writer flushes in the background, off the request path
        records = httpx.get(f"{gateway.url}/v1/admin/requests", headers=ADMIN,
                            params={"model": "fake-echo", "limit": 50}).json()["data"]
        if any("ops" in str(r.get("messages")) for r in records):
            break
        asyncio.run(asyncio.sleep(0.1))
    logged = [r for r in records if "write to" in str(r.get("messages"))]
    assert logged, "the request was logged with its (masked) messages"
    assert "ops@example.net" not in str(logged) and "EMAIL" in str(logged[0]["messages"])
    assert logged[0]["rails"] and logged[0]["answer"]
    metrics = httpx.get(f"{gateway.url}/metrics", headers=ADMIN).text
    assert 'llmops_requests_total{endpoint="chat",model="fake-echo",status="200"}' in metrics
    assert "llmops_rail_verdicts_total" in metrics


def test_a_record_is_found_by_its_completion_id_and_request_id(gateway: Gateway) -> None:
    """What a user reports is the answer's id (or the x-request-id they sent): each finds the record."""
    rid = f"support-{uuid.uuid4().hex}"
    answers = [
        gateway.client().chat.completions.create(model="fake-good", messages=HI, extra_headers={"x-request-id": rid}),
        gateway.client().completions.create(model="fake-good", prompt="hi"),
    ]
    stream = gateway.client().chat.completions.create(model="fake-good", messages=HI, stream=True)
    streamed_id = {chunk.id for chunk in stream}
    assert len(streamed_id) == 1
    for completion_id in [a.id for a in answers] + list(streamed_id):
        rows: list[dict[str, object]] = []
        for _ in range(100):  # the writer flushes in the background, off the request path
            rows = httpx.get(f"{gateway.url}/v1/admin/requests", headers=ADMIN,
                             params={"completion_id": completion_id}).json()["data"]
            if rows:
                break
            asyncio.run(asyncio.sleep(0.1))
        assert [r["completion_id"] for r in rows] == [completion_id]
    by_request = httpx.get(f"{gateway.url}/v1/admin/requests", headers=ADMIN, params={"request_id": rid}).json()
    assert [r["completion_id"] for r in by_request["data"]] == [answers[0].id]
    assert answers[0].id.startswith("chatcmpl-") and answers[1].id.startswith("cmpl-")


# -- two replicas, one PostgreSQL, one Redis ------------------------------------------------------


@pytest.fixture(scope="module")
def replicas(session_tmp: Path, fake_provider: str) -> Iterator[tuple[str, str]]:
    with pg_schema("llmops_replicas") as database_url:
        config = {
            "triton": {"managed": False},
            "storage": {"database_url": database_url, "redis_url": redis_url()},
            "governance": {"redis_prefix": f"llmops:test:{uuid.uuid4().hex[:8]}",
                           "prices": {"fake-good": {"input": 1_000_000, "output": 1_000_000}}},
            "models": [{"name": "fake-good", "deployments": [fake("good", fake_provider)]}],
        }
        path = session_tmp / "replicas.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {"LLMOPS_API_KEY": CLIENT_KEY, "LLMOPS_ADMIN_KEY": ADMIN_KEY}
        a, url_a = procs.start_gateway(path, session_tmp, env)
        b, url_b = procs.start_gateway(path, session_tmp, env)
        try:
            yield url_a, url_b
        finally:
            procs.stop(a)
            procs.stop(b)


async def _burst(urls: tuple[str, str], key: str, n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=60) as http:
        async def one(i: int) -> int:
            resp = await http.post(f"{urls[i % 2]}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                   json={"model": "fake-good", "messages": HI, "max_tokens": 6})
            return resp.status_code
        return list(await asyncio.gather(*(one(i) for i in range(n))))


def test_two_replicas_enforce_one_rate_limit(replicas: tuple[str, str]) -> None:
    key = str(_new_key(replicas[0], rpm=20)["key"])
    statuses = asyncio.run(_burst(replicas, key, 50))
    assert statuses.count(200) == 20 and statuses.count(429) == 30


def test_two_replicas_enforce_one_budget(replicas: tuple[str, str]) -> None:
    # $1 a token; a request here is 7 prompt + 6 completion tokens: $13. The budget buys ten.
    created = _new_key(replicas[1], budget={"amount": 130, "period": "day"})
    statuses = asyncio.run(_burst(replicas, str(created["key"]), 50))
    assert 8 <= statuses.count(200) <= 10 and statuses.count(200) + statuses.count(429) == 50
    spent = 0.0
    for _ in range(50):
        rows = httpx.get(f"{replicas[0]}/v1/admin/requests", headers=ADMIN,
                         params={"key_id": created["id"], "limit": 100}).json()["data"]
        if len([r for r in rows if r["status"] == 200]) == statuses.count(200):
            spent = sum(float(r["cost"]) for r in rows)
            break
        asyncio.run(asyncio.sleep(0.1))
    # No overspend beyond one in-flight request per replica.
    assert 0 < spent <= 130 + 2 * 13
