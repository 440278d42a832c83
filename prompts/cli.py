"""argparse wiring for ``llmops prompts ...``; the work happens in prompts.commands.

Usage from the gateway's CLI::

    prompts_cli.add_subparser(subparsers)   # then: sys.exit(args.func(args))
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from prompts import commands
from prompts.canonical import canonical_yaml
from prompts.errors import InvalidPrompt, PromptError
from prompts.registry import PromptRegistry

DEFAULT_DB = "sqlite:///var/llmops.db"


def _default_actor() -> str:
    try:
        return os.environ.get("LLMOPS_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _dump(data: Any) -> str:
    if isinstance(data, BaseModel):
        return data.model_dump_json(indent=2)
    return json.dumps([d.model_dump(mode="json") for d in data], indent=2)


def _text(command: str, data: Any) -> str:
    if command == "push":
        lines = []
        for r in data.results:
            if r.status == "error":
                lines.append(f"error      {r.path}: {r.error}")
            else:
                moved = "".join(f" {label}->v{v}" for label, v in r.labels_moved.items())
                lines.append(f"{r.status:<10} {r.name} v{r.version}{moved}")
        return "\n".join(lines)
    if command == "list":
        return "\n".join(
            f"{p.name:<40} v{p.latest_version:<5} " + " ".join(f"{k}=v{v}" for k, v in p.labels.items())
            for p in data
        )
    if command == "show":
        header = (f"# {data.name} v{data.version} sha256:{data.content_hash}\n"
                  f"# by {data.created_by} at {data.created_at}\n")
        return header + canonical_yaml(data)
    if command == "diff":
        return data.unified or f"v{data.from_version} and v{data.to_version} are identical"
    if command in ("promote", "rollback"):
        before = f"v{data.previous_version}" if data.previous_version else "(unset)"
        return f"{data.name} {data.label}: {before} -> v{data.version}" + ("" if data.moved else " (unchanged)")
    if command == "history":
        return "\n".join(
            f"{m.at:%Y-%m-%d %H:%M:%S} {m.label:<12} v{m.from_version or '-'} -> v{m.to_version} "
            f"{m.action:<8} {m.actor} {m.reason or ''}".rstrip()
            for m in data
        )
    return _dump(data)


def _parse_vars(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidPrompt(f"--vars is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPrompt("--vars must be a JSON object")
    return data


def _run(args: argparse.Namespace) -> Any:
    # The CLI is short-lived: no label cache or poller thread, but label moves
    # still reach running gateways via the DB generation counter (and Redis if given).
    with PromptRegistry(args.db, redis_url=args.redis, cache_labels=False, poll_interval_s=0) as registry:
        c = args.prompts_command
        if c == "push":
            return commands.push(registry, args.path, actor=args.actor)
        if c == "list":
            return commands.list_prompts(registry)
        if c == "show":
            return commands.show(registry, args.name, args.ref)
        if c == "diff":
            return commands.diff(registry, args.name, args.old, args.new)
        if c == "promote":
            return commands.promote(registry, args.name, args.label, args.ref, actor=args.actor, reason=args.reason)
        if c == "rollback":
            return commands.rollback(registry, args.name, args.label, actor=args.actor, reason=args.reason)
        if c == "history":
            return commands.history(registry, args.name, label=args.label, limit=args.limit)
        if c == "render":
            return commands.render(registry, args.name, args.ref, _parse_vars(args.vars))
    raise AssertionError(f"unknown command {c}")


def handle(args: argparse.Namespace) -> int:
    """Run a parsed ``prompts`` command; returns the process exit code."""
    try:
        data = _run(args)
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(_dump(data) if args.json else _text(args.prompts_command, data))
    return 0 if args.prompts_command != "push" or data.ok else 1


def add_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``prompts`` with its subcommands; each sets ``func`` to :func:`handle`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=os.environ.get("LLMOPS_PROMPTS_DB", DEFAULT_DB),
                        help="database URL (sqlite:///path or postgresql+psycopg://...)")
    common.add_argument("--redis", default=os.environ.get("LLMOPS_REDIS_URL"),
                        help="Redis URL to notify gateway replicas of label moves")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    writer = argparse.ArgumentParser(add_help=False)
    writer.add_argument("--actor", default=_default_actor(),
                        help="who makes the change (default: $LLMOPS_ACTOR or the OS user)")

    parser: argparse.ArgumentParser = subparsers.add_parser("prompts", help="versioned prompt templates")
    sub = parser.add_subparsers(dest="prompts_command", required=True, metavar="COMMAND")
    add: Callable[..., argparse.ArgumentParser] = sub.add_parser

    p = add("push", parents=[common, writer], help="push a prompt file or a folder of them")
    p.add_argument("path")
    add("list", parents=[common], help="list prompts with their labels")
    p = add("show", parents=[common], help="show a version (number, vN or label; default latest)")
    p.add_argument("name")
    p.add_argument("ref", nargs="?")
    p = add("diff", parents=[common], help="diff two versions or labels")
    p.add_argument("name")
    p.add_argument("old")
    p.add_argument("new")
    p = add("promote", parents=[common, writer], help="point a label at a version")
    p.add_argument("name")
    p.add_argument("label")
    p.add_argument("ref")
    p.add_argument("--reason")
    p = add("rollback", parents=[common, writer], help="move a label back to its previous version")
    p.add_argument("name")
    p.add_argument("label")
    p.add_argument("--reason")
    p = add("history", parents=[common], help="label moves, newest first")
    p.add_argument("name")
    p.add_argument("--label")
    p.add_argument("--limit", type=int, default=50)
    p = add("render", parents=[common], help="render a version with JSON variables")
    p.add_argument("name")
    p.add_argument("ref", nargs="?")
    p.add_argument("--vars", default="{}", help='JSON object, e.g. \'{"question": "hi"}\'')

    for action in sub.choices.values():
        action.set_defaults(func=handle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
