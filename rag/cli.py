"""`llmops rag ingest|delete|search|collections`.

Where the work happens (so that a CLI and a running gateway never fight over a Milvus Lite file):

1. `--gateway URL` given: the running gateway does it (documents are uploaded to it).
2. The store is an embedded file held by a running gateway (its pid and URL are recorded beside
   the file, see rag/lock.py): the CLI sends the work to that URL.
3. Otherwise (file free, or a Milvus server URI) the CLI opens the store itself; an embedded file
   is then locked for the CLI's lifetime, and a gateway started meanwhile answers 503 for
   retrieval until the CLI is done.

Keys for the gateway: `--api-key`, else LLMOPS_ADMIN_KEY (ingest, delete, collections) or
LLMOPS_API_KEY (search).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import RagSettings
from rag.errors import InvalidArgument, RagError, StoreLocked, StoreUnavailable

SettingsLoader = Callable[[Path | None], RagSettings]


def add_subparser(subparsers: Any, load_settings: SettingsLoader | None = None) -> argparse.ArgumentParser:
    """Add `rag` to a parent parser's subcommands. `load_settings(config_path)` returns the
    retrieval settings (the gateway passes one that reads the `rag` section of its config);
    by default the built-in defaults are used."""
    rag = subparsers.add_parser("rag", help="ingest documents into and search the retrieval store")
    sub = rag.add_subparsers(dest="rag_command", required=True)

    def common(p: argparse.ArgumentParser, admin: bool = True) -> None:
        p.add_argument("--config", type=Path, default=None, help="gateway config file holding the rag settings")
        p.add_argument("--uri", default=None, help="Milvus URI (.db file or http(s)://host:port); overrides config")
        p.add_argument("--gateway", default=os.environ.get("LLMOPS_GATEWAY_URL"),
                       help="send the work to this running gateway (default: $LLMOPS_GATEWAY_URL)")
        env = "LLMOPS_ADMIN_KEY" if admin else "LLMOPS_API_KEY"
        p.add_argument("--api-key", default=None, help=f"key for the gateway (default: ${env})")
        p.add_argument("--local", action="store_true", help="open the store in this process, never a gateway")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(key_env=env, load_settings=load_settings)

    ingest = sub.add_parser("ingest", help="ingest files or directories (.txt .md .html .pdf .jsonl)")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--collection", "-c", required=True)
    ingest.add_argument("--tenant", default="", help="owner of the chunks (default: the shared tenant '')")
    ingest.add_argument("--metadata", default=None, help="JSON object added to every chunk's metadata")
    ingest.add_argument("--source-root", type=Path, default=None, help="name sources relative to this directory")
    ingest.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    common(ingest)
    ingest.set_defaults(func=_ingest)

    delete = sub.add_parser("delete", help="remove a source's chunks")
    delete.add_argument("--collection", "-c", required=True)
    delete.add_argument("--source", required=True)
    group = delete.add_mutually_exclusive_group()
    group.add_argument("--tenant", default="")
    group.add_argument("--all-tenants", action="store_true")
    common(delete)
    delete.set_defaults(func=_delete)

    search = sub.add_parser("search", help="ranked chunks for a query (no generation)")
    search.add_argument("query")
    search.add_argument("--collection", "-c", required=True)
    search.add_argument("--top-k", "-k", type=int, default=5)
    search.add_argument("--filter", default=None, help='e.g. \'lang == "en" and source like "docs/%%"\'')
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default=None)
    search.add_argument("--tenant", default=None, help="local only: scope to one tenant (default: all)")
    common(search, admin=False)
    search.set_defaults(func=_search)

    cols = sub.add_parser("collections", help="list collections")
    common(cols)
    cols.set_defaults(func=_collections)
    return rag


def run(args: argparse.Namespace) -> int:
    """Entry point for the parsed `rag` subcommand (what `args.func` points at)."""
    return int(args.func(args))


# ── where the work runs ──────────────────────────────────────────────────────


def _settings(args: argparse.Namespace) -> RagSettings:
    loader: SettingsLoader | None = args.load_settings
    try:
        settings = loader(args.config) if loader is not None else RagSettings()
    except Exception as err:  # the loader's own error type (e.g. the gateway's ConfigError)
        raise InvalidArgument(f"cannot load the settings: {err}") from None
    return settings.model_copy(update={"uri": args.uri}) if args.uri else settings


def _remote_url(args: argparse.Namespace, settings: RagSettings) -> str | None:
    if args.gateway and not args.local:
        return str(args.gateway)
    if args.local or not settings.embedded:
        return None
    from rag.lock import read_owner

    owner = read_owner(settings.resolved_uri())
    if owner is None:
        return None
    if owner.get("url"):
        return str(owner["url"])
    raise StoreLocked(f"the store {settings.resolved_uri()} is in use by process {owner.get('pid', '?')} "
                      "(another CLI run?); wait for it to finish", owner)


def _client(args: argparse.Namespace, url: str) -> Any:
    from rag.client import GatewayClient

    return GatewayClient(url, args.api_key or os.environ.get(args.key_env))


def _service(settings: RagSettings) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from rag.service import RagService

    return RagService(settings)


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except StoreUnavailable as err:
            print(f"llmops rag: {err.message}", file=sys.stderr)
            return 3
        except RagError as err:
            print(f"llmops rag: {err.message}", file=sys.stderr)
            return 2
        except ValueError as err:  # settings that do not validate
            print(f"llmops rag: {err}", file=sys.stderr)
            return 2

    return wrapped


# ── commands ─────────────────────────────────────────────────────────────────


@_guard
def _ingest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    metadata = json.loads(args.metadata) if args.metadata else {}
    if not isinstance(metadata, dict):
        print("llmops rag: --metadata must be a JSON object", file=sys.stderr)
        return 2
    from rag.ingest import expand

    url = _remote_url(args, settings)
    if url is not None:
        from tqdm import tqdm

        files = list(expand(args.paths, args.source_root))
        client = _client(args, url)
        try:
            with tqdm(total=len(files), unit="file", desc=f"upload to {url}", disable=args.quiet) as bar:
                report = client.ingest_files(files, args.collection, tenant=args.tenant, metadata=metadata,
                                             on_file=bar.update)
        finally:
            client.close()
    else:
        svc = _service(settings)
        try:
            report = svc.ingestor.ingest_paths(args.paths, args.collection, tenant=args.tenant, metadata=metadata,
                                               progress=not args.quiet, source_root=args.source_root)
        finally:
            svc.close()
    if args.json:
        print(json.dumps({"collection": report.collection, "files": [f.model_dump() for f in report.files],
                          "summary": report.summary(), "via": url or "local"}))
    else:
        for f in report.files:
            detail = f"error: {f.error}" if f.status == "error" else f"{f.chunks} chunks"
            print(f"{f.status:9s} {f.source} ({detail})")
        s = report.summary()
        print(f"{report.collection}: {s['added']} added, {s['replaced']} replaced, {s['unchanged']} unchanged, "
              f"{s['error']} failed; {s['chunks']} chunks written" + (f" via {url}" if url else ""))
    return 1 if report.errors else 0


@_guard
def _delete(args: argparse.Namespace) -> int:
    settings = _settings(args)
    tenant = None if args.all_tenants else args.tenant
    url = _remote_url(args, settings)
    if url is not None:
        client = _client(args, url)
        try:
            deleted = client.delete_source(args.collection, args.source, tenant)
        finally:
            client.close()
    else:
        svc = _service(settings)
        try:
            deleted = svc.ingestor.delete_source(args.collection, args.source, tenant=tenant)
        finally:
            svc.close()
    print(json.dumps({"deleted": deleted}) if args.json else f"deleted {deleted} chunks of {args.source}")
    return 0


@_guard
def _search(args: argparse.Namespace) -> int:
    settings = _settings(args)
    url = _remote_url(args, settings)
    if url is not None:
        if args.tenant is not None:
            print("llmops rag: --tenant applies only locally; the gateway scopes by the key's tenant", file=sys.stderr)
        client = _client(args, url)
        try:
            rows = client.search(args.collection, args.query, args.top_k, args.filter, args.mode)
        finally:
            client.close()
    else:
        svc = _service(settings)
        try:
            chunks = svc.retriever.search(args.collection, args.query, tenant=args.tenant, top_k=args.top_k,
                                          filter=args.filter, mode=args.mode)
        finally:
            svc.close()
        rows = [c.public() for c in chunks]
    if args.json:
        print(json.dumps({"data": rows}))
    else:
        for i, r in enumerate(rows, start=1):
            text = " ".join(r["text"].split())
            print(f"{i}. [{r['score']:.4f}] {r['source']}  {r['id']}\n   {text[:200]}")
    return 0


@_guard
def _collections(args: argparse.Namespace) -> int:
    settings = _settings(args)
    url = _remote_url(args, settings)
    if url is not None:
        client = _client(args, url)
        try:
            rows = client.collections()
        finally:
            client.close()
    else:
        import asyncio

        svc = _service(settings)
        try:
            rows = asyncio.run(svc.collections(counts=True))
        finally:
            svc.close()
    if args.json:
        print(json.dumps({"data": rows}))
    else:
        for r in rows:
            print(f"{r['name']}" + (f"\t{r['chunks']} chunks" if "chunks" in r else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m rag.cli ...`), the same as `llmops rag ...`."""
    parser = argparse.ArgumentParser(prog="llmops")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
