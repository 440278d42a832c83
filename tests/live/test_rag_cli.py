"""`llmops rag` and a running gateway on the same Milvus Lite file: the CLI hands its work to the
gateway that holds the file, and opens the file itself once nobody holds it. Real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import procs

pytestmark = pytest.mark.timeout(400)

SERVER = '''
import asyncio, sys
from types import SimpleNamespace
import uvicorn
from fastapi import FastAPI
from gateway.api import rag as rag_api
from gateway.app import install_error_handlers
from gateway.auth import KeyStore
from gateway.governance.pricing import PriceTable
from rag import RagService, RagSettings

db, port = sys.argv[1], int(sys.argv[2])
app = FastAPI()
install_error_handlers(app)
app.include_router(rag_api.router)
app.get("/health")(lambda: {"status": "ok"})

class NoVirtualKeys:  # the governance this partial app needs: no virtual keys, searches charge nothing
    prices = PriceTable({})

    async def authenticate(self, secret):
        return None

    async def record_usage(self, principal, *, tokens, cost):
        pass

app.state.services = SimpleNamespace(keys=KeyStore([], ["sk-admin"]), insecure=False, governance=NoVirtualKeys())
rag = RagService(RagSettings(uri=db), owner_url=f"http://127.0.0.1:{port}")
assert asyncio.run(rag.start())
app.state.rag = rag
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
'''


def cli(*args: str, key: str | None = "sk-admin") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LLMOPS_ADMIN_KEY", "LLMOPS_API_KEY", "LLMOPS_GATEWAY_URL")}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if key:
        env |= {"LLMOPS_ADMIN_KEY": key, "LLMOPS_API_KEY": key}
    return subprocess.run([sys.executable, "-m", "rag.cli", "rag", *args], cwd=procs.ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_sends_work_to_the_gateway_holding_the_store(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "passwords.md").write_text("# Passwords\n\nTo reset a password, open Settings and choose Reset.\n")
    (docs / "lunch.txt").write_text("The cafeteria serves lunch from noon until two.\n")
    (docs / "broken.jsonl").write_text("{not json\n")
    db = str(tmp_path / "rag.db")
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = procs.spawn([sys.executable, str(script), db, str(port)], log)
    try:
        procs.wait_http(f"{url}/health", server, 240, log)

        out = cli("ingest", str(docs), "-c", "kb", "--uri", db, "--source-root", str(tmp_path), "--json", "--quiet")
        assert out.returncode == 1, out.stderr  # one file failed; the others went in
        report = json.loads(out.stdout)
        assert report["via"] == url
        assert report["summary"] == {"added": 2, "replaced": 0, "unchanged": 0, "error": 1, "chunks": 2}
        assert [f["source"] for f in report["files"] if f["status"] == "error"] == ["docs/broken.jsonl"]

        out = cli("search", "how do I reset my password", "-c", "kb", "--uri", db, "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["data"][0]["source"] == "docs/passwords.md"

        out = cli("ingest", str(docs / "lunch.txt"), "-c", "kb", "--uri", db, "--source-root", str(tmp_path), "--json")
        assert json.loads(out.stdout)["summary"]["unchanged"] == 1

        out = cli("search", "lunch", "-c", "kb", "--uri", db, "--local")
        assert out.returncode == 3 and "in use by process" in out.stderr and url in out.stderr

        out = cli("ingest", str(docs), "-c", "kb", "--uri", db, key=None)
        assert out.returncode == 2 and "401" in out.stderr
    finally:
        procs.stop(server)

    # nobody holds the file now: the CLI opens it itself
    out = cli("delete", "-c", "kb", "--source", "docs/lunch.txt", "--uri", db, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"deleted": 1}
    out = cli("collections", "--uri", db, "--json")
    assert json.loads(out.stdout) == {"data": [{"name": "kb", "chunks": 1}]}
