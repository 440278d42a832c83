"""`llmops keys ...` on the database URL, as gateway/cli.py wires it."""

from __future__ import annotations

import argparse

import orjson
import pytest
from governance_test_helpers import repository

from gateway.governance.cli import add_subparser
from gateway.governance.keys import VirtualKeys


def llmops(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llmops")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_create_list_rotate_revoke(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ("keys", "--database-url", db_url)
    assert llmops(*db, "--json", "create", "--name", "ci", "--team", "search", "--model", "m1", "--model", "m2",
                  "--rpm", "5", "--budget", "10", "--budget-period", "week", "--expires", "30d",
                  "--meta", "owner=ana") == 0
    created = orjson.loads(capsys.readouterr().out)
    assert created["models"] == ["m1", "m2"] and created["budget"] == {"amount": 10.0, "period": "week"}
    assert created["metadata"] == {"owner": "ana"} and created["created_by"].startswith("cli:")

    assert llmops(*db, "list") == 0
    listing = capsys.readouterr().out
    assert created["id"] in listing and "rpm=5" in listing and "budget=$10/week" in listing

    assert llmops(*db, "rotate", created["id"]) == 0
    new_secret = capsys.readouterr().out.split("key: ")[1].strip()
    assert llmops(*db, "revoke", created["id"]) == 0
    assert "revoked" in capsys.readouterr().out
    with repository(db_url) as repo:
        keys = VirtualKeys(repo, ttl_s=0)
        assert keys.lookup(created["key"]) is None and keys.lookup(new_secret) is None
        assert repo.get(created["id"]).revoked_at is not None

    assert llmops(*db, "list") == 0
    assert created["id"] not in capsys.readouterr().out
    assert llmops(*db, "list", "--all") == 0
    assert "revoked" in capsys.readouterr().out


def test_unknown_key_is_a_clear_error(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert llmops("keys", "--database-url", sqlite_url, "revoke", "vk-nope") == 1
    assert "No virtual key with id 'vk-nope'" in capsys.readouterr().err


def test_revoke_is_announced_on_redis(sqlite_url: str, redis_url: str, redis_prefix: str,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from governance_test_helpers import wait_until

    from gateway.governance.settings import GovernanceSettings
    from prompts.redis_channel import RedisInvalidation

    monkeypatch.setenv("LLMOPS_GOVERNANCE__REDIS_PREFIX", redis_prefix)
    heard: list[str | None] = []
    channel = GovernanceSettings(redis_prefix=redis_prefix).keys_channel
    listener = RedisInvalidation(redis_url, channel, heard.append, listen=True)
    try:
        assert listener.wait_ready(10)
        db = ("keys", "--database-url", sqlite_url, "--redis-url", redis_url)
        assert llmops(*db, "--json", "create", "--name", "x") == 0
        key_id = orjson.loads(capsys.readouterr().out)["id"]
        assert llmops(*db, "revoke", key_id) == 0
        wait_until(lambda: len([h for h in heard if h]) == 1, what="the revocation message")
    finally:
        listener.close()
