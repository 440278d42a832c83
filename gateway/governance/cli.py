"""`llmops keys create|list|revoke|rotate`: virtual keys straight on the governance database.

The database is `--database-url`, else LLMOPS_GOVERNANCE__DATABASE_URL, else the embedded default
(var/governance.db). With `--redis-url` (or LLMOPS_GOVERNANCE__REDIS_URL) revoke and rotate also
tell running replicas to drop the old secret at once; without it they do so within the key cache TTL.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway import errors
from gateway.config import ROOT
from gateway.governance.keystore import KeyRepository
from gateway.governance.migrations import migrate
from gateway.governance.models import KeySpec, VirtualKey
from gateway.governance.settings import Budget, GovernanceSettings, default_database_url
from prompts.db import create_engine

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _expiry(value: str) -> datetime:
    """`30d`, `12h`, `2w`, `90m`, or an ISO timestamp (UTC unless it says otherwise)."""
    match = _DURATION.match(value)
    if match:
        return datetime.now(UTC) + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 30d, 12h or 2026-01-31T00:00:00Z, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _meta(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, val


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `keys` to the `llmops` parser (`subparsers` from `add_subparsers`)."""
    keys = subparsers.add_parser("keys", help="manage virtual API keys")
    keys.add_argument("--database-url", default=None, help="SQLAlchemy URL of the governance database")
    keys.add_argument("--redis-url", default=None, help="Redis URL, to revoke on running replicas at once")
    keys.add_argument("--json", action="store_true", help="print JSON")
    sub = keys.add_subparsers(dest="keys_command", required=True)

    create = sub.add_parser("create", help="create a key (its secret is printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--owner")
    create.add_argument("--team")
    create.add_argument("--tenant", help="retrieval scope")
    create.add_argument("--model", action="append", dest="models", help="allowed model (repeat); default all")
    create.add_argument("--route", action="append", dest="routes", help="allowed path (repeat); default all")
    create.add_argument("--rails-policy")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--budget", type=float, help="USD per --budget-period")
    create.add_argument("--budget-period", choices=["day", "week", "month", "total"], default="month")
    create.add_argument("--expires", type=_expiry, help="30d, 12h, 2w, 90m or an ISO timestamp")
    create.add_argument("--meta", type=_meta, action="append", default=[], help="KEY=VALUE (repeat)")
    create.set_defaults(keys_func=_create)

    listing = sub.add_parser("list", help="list keys")
    listing.add_argument("--team")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(keys_func=_list)

    for name, func, text in (("revoke", _revoke, "revoke a key"), ("rotate", _rotate, "new secret, same key")):
        p = sub.add_parser(name, help=text)
        p.add_argument("key_id")
        p.set_defaults(keys_func=func)
    keys.set_defaults(func=run)
    return keys


def run(args: argparse.Namespace) -> int:
    url = args.database_url or os.environ.get("LLMOPS_GOVERNANCE__DATABASE_URL") or default_database_url(ROOT / "var")
    engine = create_engine(url)
    try:
        migrate(engine)
        return int(args.keys_func(args, KeyRepository(engine), f"cli:{getpass.getuser()}"))
    except errors.GatewayError as err:
        print(f"llmops keys: {err.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _create(args: argparse.Namespace, repo: KeyRepository, actor: str) -> int:
    spec = KeySpec(
        name=args.name, owner=args.owner, team=args.team, tenant=args.tenant, models=args.models, routes=args.routes,
        rails_policy=args.rails_policy, rpm=args.rpm, tpm=args.tpm, expires_at=args.expires, metadata=dict(args.meta),
        budget=Budget(amount=args.budget, period=args.budget_period) if args.budget is not None else None,
    )
    issued = repo.create(spec, actor=actor)
    if args.json:
        _print_json(issued.public())
    else:
        print(f"created {issued.record.id} ({issued.record.name})")
        print(f"key: {issued.key}")
        print("Store the key now: it is not shown again.", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace, repo: KeyRepository, actor: str) -> int:
    found: list[VirtualKey] = []
    cursor = None
    while True:
        page, cursor = repo.list_keys(team=args.team, include_revoked=args.all, limit=1000, cursor=cursor)
        found += page
        if cursor is None:
            break
    if args.json:
        _print_json([k.public() for k in found])
        return 0
    for k in found:
        limits = " ".join(f"{n}={v}" for n, v in (("rpm", k.rpm), ("tpm", k.tpm)) if v is not None)
        budget = f" budget=${k.budget.amount:g}/{k.budget.period}" if k.budget else ""
        print(f"{k.id}  {k.status():8} {k.name}  team={k.team or '-'} {limits}{budget}".rstrip())
    return 0


def _revoke(args: argparse.Namespace, repo: KeyRepository, actor: str) -> int:
    record, key_hash = repo.revoke(args.key_id, actor=actor)
    _announce(args, key_hash)
    if args.json:
        _print_json(record.public())
    else:
        print(f"revoked {record.id} ({record.name})")
    return 0


def _rotate(args: argparse.Namespace, repo: KeyRepository, actor: str) -> int:
    issued, old_hash = repo.rotate(args.key_id, actor=actor)
    _announce(args, old_hash)
    if args.json:
        _print_json(issued.public())
    else:
        print(f"rotated {issued.record.id}; the old key no longer works")
        print(f"key: {issued.key}")
    return 0


def _announce(args: argparse.Namespace, key_hash: str) -> None:
    url = args.redis_url or os.environ.get("LLMOPS_GOVERNANCE__REDIS_URL")
    if not url:
        return
    from prompts.redis_channel import RedisInvalidation

    prefix = os.environ.get("LLMOPS_GOVERNANCE__REDIS_PREFIX", GovernanceSettings().redis_prefix)
    settings = GovernanceSettings(redis_prefix=prefix)
    channel = RedisInvalidation(url, settings.keys_channel, lambda _name: None, listen=False)
    try:
        channel.publish(key_hash)
    finally:
        channel.close()


def _print_json(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
