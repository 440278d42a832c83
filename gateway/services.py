"""What the request handlers need, built once at start-up and reached through `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from fastapi import Request

from evals.store import EvalStore
from gateway.auth import KeyStore
from gateway.config import Settings
from gateway.governance.state import Governance
from gateway.routing import Router
from guardrails.engine import Guardrails
from prompts.registry import PromptRegistry
from rag.service import RagService


@dataclass
class Services:
    settings: Settings
    router: Router
    keys: KeyStore
    http: aiohttp.ClientSession
    prompts: PromptRegistry
    guardrails: Guardrails
    governance: Governance
    evals: EvalStore
    rag: RagService | None
    insecure: bool = False

    async def aclose(self) -> None:
        await self.router.aclose()
        await self.http.close()
        self.prompts.close()
        self.evals.close()
        if self.rag is not None:
            await self.rag.aclose()
        await self.governance.aclose()  # last: flushes every accepted log record


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]
