"""`POST /v1/guardrails/check`: screen text with a policy's rails, without calling a model."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway import errors
from gateway.api.deps import client
from gateway.auth import Principal
from gateway.services import services
from guardrails.engine import Screen
from guardrails.errors import UnknownPolicy
from guardrails.rails import RailContext

router = APIRouter()


class CheckMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[CheckMessage] = Field(min_length=1)
    rails: Literal["input", "output"] = "input"
    policy: str | None = None


@router.post("/v1/guardrails/check")
async def check(body: CheckRequest, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    engine = services(request).guardrails
    try:
        policy = engine.policy(body.policy) if body.policy else engine.resolve(principal.key_id, principal.rails_policy, None)
    except UnknownPolicy as exc:
        raise errors.InvalidRequest(str(exc), param="policy") from None
    messages = [m.model_dump() for m in body.messages]
    if policy is None:
        return {"allowed": True, "action": "pass", "messages": messages, "verdicts": []}
    ctx = RailContext(stage=body.rails, caller=principal.key_id)
    if body.rails == "input":
        screen, messages = await engine.screen_messages(policy, messages, ctx)
    else:
        screen = Screen()
        ctx.history = [m for m in messages if m["role"] == "user"][-1:]
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            one, text = await engine.screen_output(policy, message["content"], ctx)
            screen.verdicts.extend(one.verdicts)
            screen.masked = screen.masked or one.masked
            if one.blocked_by:
                screen.blocked_by = one.blocked_by
                break
            messages[i] = {**message, "content": text}
    return {
        "allowed": screen.allowed,
        "action": screen.action,
        "messages": messages,
        "verdicts": [
            {"rail": v.rail, "action": v.action, "score": round(v.score, 4), "latency_ms": round(v.latency_ms, 3),
             "detail": v.detail}
            for v in screen.verdicts
        ],
    }
