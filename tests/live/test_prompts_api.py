"""The prompt registry through the gateway: REST under /v1/prompts and chat by reference."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, CLIENT_KEY, Gateway

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"authorization": f"Bearer {CLIENT_KEY}"}

CAPITAL = {
    "messages": [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What is the capital of {{ country }}?"},
    ],
    "variables": {"country": {"type": "string"}},
    "defaults": {"temperature": 0, "max_tokens": 24},
}


def test_push_dedup_label_and_chat_by_reference(gateway: Gateway) -> None:
    url = f"{gateway.url}/v1/prompts/capital-test"
    first = httpx.post(f"{url}/versions", json=CAPITAL, headers=ADMIN)
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert set(v1) >= {"name", "version", "hash", "created_at"}
    again = httpx.post(f"{url}/versions", json=CAPITAL, headers=ADMIN)
    assert again.status_code == 200 and again.json()["version"] == v1["version"]
    v2_body = {**CAPITAL, "messages": [CAPITAL["messages"][0], {"role": "user", "content": "Name the capital city of {{ country }}."}]}
    v2 = httpx.post(f"{url}/versions", json=v2_body, headers=ADMIN).json()
    assert v2["version"] == v1["version"] + 1 and v2["hash"] != v1["hash"]

    moved = httpx.put(f"{url}/labels/production", json={"version": v1["version"], "reason": "first"}, headers=ADMIN)
    assert moved.status_code == 200, moved.text

    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2", messages=[],
        extra_body={"prompt": {"name": "capital-test", "label": "production", "variables": {"country": "France"}}},
    )
    assert raw.headers["x-prompt-version"] == str(v1["version"])
    resp = raw.parse()
    assert "Paris" in resp.choices[0].message.content
    assert resp.usage.completion_tokens <= 24  # the prompt's default max_tokens applied

    # Promote v2, then roll back: the label returns to v1 and history records both moves.
    httpx.put(f"{url}/labels/production", json={"version": v2["version"]}, headers=ADMIN).raise_for_status()
    by_label = httpx.get(f"{url}/labels/production", headers=ADMIN).json()
    assert by_label["version"] == v2["version"]
    back = httpx.post(f"{url}/labels/production/rollback", json={"reason": "regression"}, headers=ADMIN)
    assert back.status_code == 200 and back.json()["version"] == v1["version"]
    history = httpx.get(f"{url}/history", headers=ADMIN).json()["data"]
    assert len(history) == 3 and any(h["reason"] == "regression" for h in history)

    diff = httpx.get(f"{url}/diff", params={"from": v1["version"], "to": v2["version"]}, headers=ADMIN).json()
    assert "Name the capital city" in diff["unified"]
    listing = httpx.get(url, headers=ADMIN).json()
    assert listing["labels"]["production"] == v1["version"] and len(listing["versions"]) == 2
    assert httpx.get(f"{url}/versions/{v2['version']}", headers=ADMIN).json()["messages"][1]["content"].startswith("Name")

    # By version, and request values win over the prompt's defaults.
    resp = client.chat.completions.create(
        model="smollm2", messages=[], max_tokens=3,
        extra_body={"prompt": {"name": "capital-test", "version": v2["version"], "variables": {"country": "Italy"}}},
    )
    assert resp.usage.completion_tokens <= 3


def test_variable_errors_are_clear_400s(gateway: Gateway) -> None:
    httpx.post(f"{gateway.url}/v1/prompts/capital-vars/versions", json=CAPITAL, headers=ADMIN).raise_for_status()
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="smollm2", messages=[],
                                       extra_body={"prompt": {"name": "capital-vars", "version": 1, "variables": {}}})
    assert "country" in exc.value.message and exc.value.body["param"] == "prompt.variables.country"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2", messages=[],
                                       extra_body={"prompt": {"name": "capital-vars", "version": 1, "variables": {"country": 7}}})
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="smollm2", messages=[], extra_body={"prompt": {"name": "ghost", "label": "production"}})


def test_writes_need_an_admin_key(gateway: Gateway) -> None:
    url = f"{gateway.url}/v1/prompts/capital-auth"
    assert httpx.post(f"{url}/versions", json=CAPITAL, headers=CLIENT).status_code == 403
    assert httpx.get(f"{gateway.url}/v1/prompts", headers=CLIENT).status_code == 403
    assert httpx.post(f"{url}/versions", json=CAPITAL).status_code == 401


def test_library_prompts_are_synced_at_start(gateway: Gateway) -> None:
    names = {p["name"] for p in httpx.get(f"{gateway.url}/v1/prompts", headers=ADMIN).json()["data"]}
    assert {"support-answer", "rag-answer"} <= names
