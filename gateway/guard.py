"""The gateway's side of the guardrails: resolve the policy, screen input, guard the output.

Input: every untrusted turn is screened before any model is called; a block is a 400 with
`code: content_policy_violation` naming the rail, or, under a policy with `on_block: refusal`, a
refusal the pipeline answers as a normal reply (`Guard.refusal`). Output: a non-streamed answer is screened whole;
a stream is released in windows only after the rails passed on them, and a hit ends it with
`finish_reason: "content_filter"`. Masked values are restored in the answer for the same caller
(the vault lives only as long as the request).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from gateway import errors
from gateway.auth import Principal
from gateway.backends.base import Delta, Generation
from guardrails.canary import embed_canary, make_canary
from guardrails.engine import CompiledPolicy, Guardrails
from guardrails.pii import unmask
from guardrails.rails import RailContext
from guardrails.stream_screen import StreamScreen
from guardrails.verdict import Verdict


@dataclass
class Guard:
    policy: CompiledPolicy | None
    ctx: RailContext = field(default_factory=lambda: RailContext(stage="input"))
    verdicts: list[Verdict] = field(default_factory=list)
    action: str = "pass"
    refusal: str | None = None  # a blocked input's answer, when the policy refuses instead of erroring

    @property
    def screens_output(self) -> bool:
        return self.policy is not None and bool(self.policy.output)


def resolve(rails: Guardrails, principal: Principal, model: str) -> Guard:
    policy = rails.resolve(principal.key_id, principal.rails_policy, model)
    return Guard(policy, RailContext(stage="input", caller=principal.key_id))


def _add_canary(guard: Guard, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, message in enumerate(messages):
        if message.get("role") in ("system", "developer") and isinstance(message.get("content"), str):
            guard.ctx.canary = make_canary()
            guard.ctx.system_prompt = message["content"]
            return [*messages[:i], {**message, "content": embed_canary(message["content"], guard.ctx.canary)},
                    *messages[i + 1 :]]
    return messages


async def screen_input(rails: Guardrails, guard: Guard, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if guard.policy is None:
        return messages
    screen, screened = await rails.screen_messages(guard.policy, messages, guard.ctx)
    guard.verdicts.extend(screen.verdicts)
    guard.action = screen.action
    if screen.blocked_by:
        text = guard.policy.settings.block_text(screen.blocked_by)
        if guard.policy.settings.on_block == "error":
            raise errors.ContentPolicyViolation(text, param="messages")
        guard.refusal = text  # the caller answers with it and calls no model
        return messages
    guard.ctx.history = [m for m in screened if m.get("role") == "user"][-1:]
    if guard.policy.uses_canary:
        screened = _add_canary(guard, screened)
    return screened


async def screen_generation(rails: Guardrails, guard: Guard, gen: Generation) -> Generation:
    if guard.policy is None:
        return gen
    guard.ctx.stage = "output"
    screen, text = await rails.screen_output(guard.policy, gen.text, guard.ctx)
    guard.verdicts.extend(screen.verdicts)
    if screen.blocked_by:
        guard.action = "block"
        settings = guard.policy.settings
        text = settings.block_text(screen.blocked_by) if settings.on_block == "refusal" else ""
        return replace(gen, text=text, finish_reason="content_filter", tool_calls=None)
    if screen.masked:
        guard.action = "mask"
    return replace(gen, text=unmask(text, guard.ctx.vault))


async def guard_stream(guard: Guard, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """Release streamed text only after the output rails passed on it."""
    assert guard.policy is not None
    guard.ctx.stage = "output"
    screen = StreamScreen(guard.policy, guard.ctx, guard.policy.settings.stream_window_chars)
    try:
        async for delta in deltas:
            if delta.text:
                release = await screen.feed(delta.text)
                if release.text:
                    yield Delta(text=release.text)
                if release.stop:
                    guard.action = "block"
                    yield Delta(finish_reason="content_filter")
                    return
            if delta.tool_calls:
                yield Delta(tool_calls=delta.tool_calls)
            if delta.finish_reason is not None:
                release = await screen.finish()
                if release.text:
                    yield Delta(text=release.text)
                if release.stop:
                    guard.action = "block"
                yield Delta(finish_reason="content_filter" if release.stop else delta.finish_reason, usage=delta.usage)
                return
    finally:
        closer = getattr(deltas, "aclose", None)
        if closer is not None:
            await closer()  # a blocked stream stops the upstream too
        guard.verdicts.extend(screen.screen.verdicts)
        if screen.screen.masked and guard.action == "pass":
            guard.action = "mask"
