from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import DEFAULT_CONFIG, ConfigError, load_settings
from tests.support.procs import ROOT


def test_default_config_loads() -> None:
    s = load_settings(DEFAULT_CONFIG)
    assert {m.name for m in s.models} >= {"smollm2", "text-embedding-minilm"}


def test_invalid_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  - name: m\n    deployments: [{kind: triton, url: a, model: b, tokenizr: t}]\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert "models.0.deployments.0.triton.tokenizer" in str(exc.value)
    assert "tokenizr" in str(exc.value)


def test_unknown_fallback_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  - name: m\n    deployments: [{kind: local-embeddings}]\n    fallbacks: [ghost]\n")
    with pytest.raises(ConfigError, match="models.0.fallbacks: unknown model 'ghost'"):
        load_settings(cfg)


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server: {port: 9000}\n")
    monkeypatch.setenv("LLMOPS_SERVER__PORT", "9100")
    monkeypatch.setenv("LLMOPS_API_KEY", "k1")
    monkeypatch.setenv("LLMOPS_ADMIN_KEY", "a1")
    s = load_settings(cfg)
    assert s.server.port == 9100
    assert s.client_keys() == ["k1"] and s.admin_keys() == ["a1"]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMOPS_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "serve", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_serve_refuses_without_keys() -> None:
    out = _serve("--no-triton", "--port", "1")
    assert out.returncode == 2
    assert "no API key is configured" in out.stderr


def test_insecure_local_refused_off_loopback() -> None:
    out = _serve("--no-triton", "--insecure-local", "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 2


def test_serve_reports_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server: {port: not-a-port}\n")
    out = _serve("--config", str(cfg), env={"LLMOPS_API_KEY": "k"})
    assert out.returncode == 2
    assert "server.port" in out.stderr
