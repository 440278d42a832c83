"""`llmops`: the one console command. Subcommands grow with the packages they drive."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from gateway.config import ConfigError, Settings, load_settings


def _serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")
    try:
        settings = load_settings(args.config)
        server = settings.server.model_copy(
            update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        )
        settings = settings.model_copy(update={"server": server})
    except ConfigError as err:
        print(f"llmops: {err}", file=sys.stderr)
        return 2
    if not settings.client_keys() and not settings.admin_keys():
        if not (args.insecure_local and settings.server.host == "127.0.0.1"):
            print(
                "llmops: no API key is configured. Add one under auth.api_keys in the config, or set "
                "LLMOPS_API_KEY; or, on 127.0.0.1 only, pass --insecure-local to serve without keys.",
                file=sys.stderr,
            )
            return 2
        print("llmops: WARNING serving without API keys (--insecure-local, 127.0.0.1 only)", file=sys.stderr)

    triton = None
    if settings.triton.managed and not args.no_triton:
        from gateway.supervisor import triton_process

        data = settings.resolve_path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        triton = triton_process(settings)
        print(f"llmops: starting Triton (log: {data / 'triton.log'})", file=sys.stderr)
        try:
            triton.start(settings.triton.start_timeout_s, log_path=data / "triton.log")
        except RuntimeError as err:
            print(f"llmops: {err}", file=sys.stderr)
            return 1
        # Restarted whenever it exits or hangs, until stop().
        triton.supervise(settings.triton.start_timeout_s, hang_s=settings.triton.hang_restart_s)
        # uvicorn re-raises the SIGTERM it handled once it has shut down; under the default handler
        # that ends the process before the `finally` below, leaving Triton (its own session) running.
        signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return _run_uvicorn(settings, args)
    finally:
        if triton is not None:
            triton.stop()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_uvicorn(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.http_protocol import protocol_class
    from guardrails.errors import GuardrailError

    try:
        app = create_app(settings, insecure=args.insecure_local)
    except GuardrailError as err:
        print(f"llmops: guardrails configuration: {err}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=args.log_level,
        access_log=args.access_log,
        loop="uvloop",
        http=protocol_class(settings.server.header_timeout_s),
        timeout_graceful_shutdown=5,
        timeout_keep_alive=int(settings.server.keepalive_s),
    )
    uvicorn.Server(config).run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="LLMOps and guardrails gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the gateway (and the local Triton server)")
    serve.add_argument("--config", type=Path, default=None, help="YAML config (default configs/gateway.yaml)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--insecure-local", action="store_true", help="allow no API keys on 127.0.0.1")
    serve.add_argument("--no-triton", action="store_true", help="do not start the local Triton server")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(func=_serve)

    from evals.cli import add_subparser as add_eval
    from finetune.cli import add_subparser as add_finetune
    from gateway.governance.cli import add_subparser as add_keys
    from prompts.cli import add_subparser as add_prompts
    from rag.cli import add_subparser as add_rag

    add_prompts(sub)
    add_keys(sub)
    add_eval(sub)
    add_rag(sub, load_settings=lambda path: load_settings(path).rag)
    add_finetune(sub)
    return parser


def _default_database(argv: list[str]) -> None:
    """Let `llmops prompts|keys|eval|finetune ...` default to the database the gateway uses (the
    one in `--config` when given, else the default config's)."""
    config = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            config = argv[i + 1]
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
    try:
        url = load_settings(config).database_url()
    except ConfigError:
        return  # each subcommand's own default applies; `serve` reports the config error
    for name in ("LLMOPS_PROMPTS_DB", "LLMOPS_EVALS_DATABASE_URL", "LLMOPS_GOVERNANCE__DATABASE_URL", "LLMOPS_FINETUNE_DB"):
        os.environ.setdefault(name, url)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] != ["serve"]:
        _default_database(args_list)  # `serve` reads its own --config
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
