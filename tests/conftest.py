"""Session fixtures: the real processes (Triton with the local model, the fake external provider,
the gateway) started once on free loopback ports and shared by the live tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import yaml

from tests.conftest_triton import LocalTriton, triton_backend, triton_tokenizer  # noqa: F401  (fixtures)
from tests.support import procs

CLIENT_KEY = "sk-test-client"
ADMIN_KEY = "sk-test-admin"
# Client keys bound to a guardrails policy through guardrails.keys (key id → policy).
POLICY_KEYS = {"sk-test-strict": "strict", "sk-test-crashy": "crashy", "sk-test-crashy-open": "crashy-open",
               "sk-test-norails": "off", "sk-test-retrieval": "retrieval-only", "sk-test-refusal": "refusal",
               "sk-test-names": "names"}
BODY_TIMEOUT_S = 3.0  # short, so the slow-client drill waits seconds, not the default 30
HEADER_TIMEOUT_S = 5.0  # the same for trickled headers (a little longer: every fresh connection has it)
STREAM_WRITE_TIMEOUT_S = 5.0  # likewise for a client that never reads its stream (default 60)
MODEL_FILE = procs.ROOT / "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")


@dataclass(frozen=True)
class Triton:
    grpc: str
    http: str
    model: str


@dataclass(frozen=True)
class Gateway:
    url: str
    log: Path

    def client(self, key: str = CLIENT_KEY, **kw: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **kw)  # type: ignore[arg-type]

    def async_client(self, key: str = CLIENT_KEY, **kw: object) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="session")
def triton(session_tmp: Path) -> Iterator[Triton]:
    if not MODEL_FILE.exists():
        pytest.fail(f"local model file missing: {MODEL_FILE} (run scripts/setup.sh)")
    from gateway.config import load_settings
    from gateway.supervisor import triton_process

    ports = {k: procs.free_port() for k in ("http_port", "grpc_port", "metrics_port")}
    settings = load_settings()
    settings = settings.model_copy(update={"triton": settings.triton.model_copy(update=ports)})
    proc = triton_process(settings)
    proc.start(timeout_s=240, log_path=session_tmp / "triton.log")
    try:
        yield Triton(f"127.0.0.1:{ports['grpc_port']}", f"127.0.0.1:{ports['http_port']}", settings.triton.model_name)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def local_triton(triton: Triton, session_tmp: Path) -> LocalTriton:
    """The Triton tests' server is the session's one (started the way `llmops serve` starts it)."""
    return LocalTriton(triton.grpc, triton.http, triton.model, session_tmp / "triton.log", pid=0)


@pytest.fixture(scope="session")
def fake_provider(session_tmp: Path) -> Iterator[str]:
    proc, url = procs.start_fake_provider(session_tmp)
    try:
        yield url
    finally:
        procs.stop(proc)


def fake(model: str, url: str, **extra: object) -> dict[str, object]:
    return {"kind": "litellm", "model": f"openai/{model}", "api_base": f"{url}/v1", "api_key": "fake-key", **extra}


def guardrails_config() -> dict[str, object]:
    """The shipped policies, plus two whose rail crashes (fail closed / fail open)."""
    from gateway.auth import digest
    from gateway.config import load_settings

    rails = load_settings().guardrails.model_dump(mode="json")
    rails["plugins"] = ["tests.support.crash_rail"]
    rails["policies"]["crashy"] = {"input": [{"rail": "crash", "action": "block", "on_error": "block"}]}
    rails["policies"]["crashy-open"] = {"input": [{"rail": "crash", "action": "block", "on_error": "pass"}]}
    rails["policies"]["retrieval-only"] = {"retrieval": [{"rail": "injection", "action": "block"}]}
    # Document mode without the sentence model, logged rather than blocked so every score shows.
    rails["policies"]["fast-documents"] = {"input": [{"rail": "injection", "action": "log",
                                                      "params": {"document_last_stage": False}}]}
    # Prompts scored by the first stage alone (v7's prompt mode), logged so the score shows.
    rails["policies"]["fast-prompts"] = {"input": [{"rail": "injection", "action": "log",
                                                    "params": {"prompt_stage": False}}]}
    rails["policies"]["refusal"] = {**rails["policies"]["default"], "on_block": "refusal"}
    # Names and places (spaCy NER) masked on the way in, redacted on the way out.
    names = {"types": ["PERSON", "LOCATION", "EMAIL"]}
    rails["policies"]["names"] = {"input": [{"rail": "pii", "action": "mask", "params": names}],
                                  "output": [{"rail": "pii", "action": "mask", "params": names}]}
    rails["keys"] = {f"static-{digest(key)[:12]}": policy for key, policy in POLICY_KEYS.items()}
    return rails


def gateway_config(triton: Triton, fake_url: str, tmp: Path) -> dict[str, object]:
    return {
        "server": {"body_timeout_s": BODY_TIMEOUT_S, "header_timeout_s": HEADER_TIMEOUT_S,
                   "stream_write_timeout_s": STREAM_WRITE_TIMEOUT_S},
        "triton": {"managed": False},
        "auth": {"api_keys": list(POLICY_KEYS)},
        "guardrails": guardrails_config(),
        "storage": {"database_url": f"sqlite:///{tmp}/llmops.db"},
        "governance": {"log_content": True, "log_flush_interval_s": 0.05},
        "rag": {"uri": str(tmp / "rag.db")},
        "rag_routes": [{"name": "kb-assistant", "model": "fake-echo-system", "collection": "kb"}],
        "routing": {"num_retries": 2, "retry_backoff_s": 0.01, "timeout_s": 60,
                    "cooldown_failures": 2, "cooldown_s": 300},
        "models": [
            {"name": "smollm2", "deployments": [
                {"kind": "triton", "url": triton.grpc, "model": triton.model, "protocol": "grpc",
                 "tokenizer": "models/smollm2"}]},
            {"name": "text-embedding-minilm", "deployments": [{"kind": "local-embeddings"}]},
            {"name": "fake-good", "deployments": [fake("good", fake_url)]},
            {"name": "fake-litellm", "deployments": [fake("good-litellm", fake_url, fast_path=False)]},
            {"name": "fake-flaky", "deployments": [fake("flaky-2-a", fake_url)]},
            {"name": "fake-broken", "deployments": [fake("error-500", fake_url)], "fallbacks": ["smollm2"]},
            {"name": "fake-down", "deployments": [fake("error-500", fake_url)]},
            {"name": "fake-hang", "deployments": [fake("hang", fake_url, timeout_s=1)]},
            {"name": "fake-cooldown", "deployments": [fake("error-500", fake_url), fake("good-cool", fake_url)]},
            {"name": "fake-cut", "deployments": [fake("cut", fake_url)]},
            {"name": "fake-stall", "deployments": [fake("stall", fake_url, timeout_s=1)]},
            {"name": "fake-malformed", "deployments": [fake("malformed", fake_url)]},
            {"name": "fake-rejects", "deployments": [fake("bad-request", fake_url)]},
            {"name": "fake-echo", "deployments": [fake("echo", fake_url)]},
            {"name": "fake-echo-system", "deployments": [fake("echo-system", fake_url)]},
            {"name": "fake-leak", "deployments": [fake("leak", fake_url)]},
            {"name": "fake-endless", "deployments": [fake("endless", fake_url)]},
        ],
    }


@pytest.fixture(scope="session")
def gateway(session_tmp: Path, triton: Triton, fake_provider: str) -> Iterator[Gateway]:
    config = session_tmp / "gateway.yaml"
    config.write_text(yaml.safe_dump(gateway_config(triton, fake_provider, session_tmp)))
    env = {"LLMOPS_API_KEY": CLIENT_KEY, "LLMOPS_ADMIN_KEY": ADMIN_KEY}
    proc, url = procs.start_gateway(config, session_tmp, env)
    try:
        yield Gateway(url, session_tmp / f"gateway-{url.rsplit(':', 1)[1]}.log")
    finally:
        procs.stop(proc)
