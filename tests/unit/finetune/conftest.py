"""Fixtures: a real FineTuning facade on SQLite per test (PostgreSQL for the queue's races)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from finetune.service import FineTuning
from finetune.settings import FinetuneSettings
from gateway.api.finetune import include_routes
from gateway.app import install_error_handlers
from gateway.auth import KeyStore
from tests.support.databases import pg_schema

ROOT = Path(__file__).resolve().parents[3]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def chat_line(user: str, answer: str, **extra: object) -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                       **extra})


def chat_file(n: int = 3) -> bytes:
    return "".join(chat_line(f"question {i}?", f"answer {i}") + "\n" for i in range(n)).encode()


def settings_for(tmp: Path, **kw: object) -> FinetuneSettings:
    return FinetuneSettings(data_dir=str(tmp / "ft"), models_dir=str(tmp / "models"), **kw)  # type: ignore[arg-type]


@pytest.fixture
def ft(tmp_path: Path) -> Iterator[FineTuning]:
    facade = FineTuning(settings_for(tmp_path), f"sqlite:///{tmp_path / 'ft.db'}", ROOT)
    yield facade
    facade.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ft.db'}"
    else:
        with pg_schema("finetune_test") as url:
            yield url


CLIENT, OTHER, ADMIN = "sk-ft-client", "sk-ft-other", "sk-ft-admin"


@pytest.fixture
async def app(ft: FineTuning) -> FastAPI:
    """The three routers with the real facade; the slice of Services that gateway.api.deps reads."""
    app = FastAPI()
    install_error_handlers(app)
    include_routes(app)
    app.state.finetune = ft
    app.state.services = SimpleNamespace(keys=KeyStore([CLIENT, OTHER], [ADMIN]), insecure=False, governance=None)
    return app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client
