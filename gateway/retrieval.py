"""The retrieval step of the chat path: search, screen the chunks, put them in a prompt.

Chunks come from `rag` scoped to the caller's tenant; the policy's `retrieval` rails screen each one
as untrusted input (a chunk that carries an injected instruction is dropped and logged); the
survivors enter through a registry prompt (`rag-answer` by default) that replaces the last user turn.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway import errors
from gateway.api.rag import charge_query, search_tenant
from gateway.auth import Principal
from gateway.guard import Guard
from gateway.protocol import RetrievalOptions
from gateway.services import Services
from guardrails.rails import RailContext
from rag.context import citations, format_context
from rag.models import Chunk

log = logging.getLogger("gateway.retrieval")


def _question(messages: list[dict[str, Any]]) -> tuple[int, str]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user" and isinstance(messages[i].get("content"), str):
            return i, str(messages[i]["content"])
    raise errors.InvalidRequest("Retrieval needs a user message to search with.", param="messages")


async def augment(
    svc: Services, principal: Principal, rails: Guard, messages: list[dict[str, Any]],
    opts: RetrievalOptions, prompt: str, label: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the messages with the retrieved context in place, and the citations."""
    if svc.rag is None:
        raise errors.ServiceUnavailable("Retrieval is not enabled on this gateway.")
    index, question = _question(messages)
    policy = rails.policy

    async def screen(chunks: list[Chunk]) -> list[Chunk]:
        if policy is None or not policy.retrieval:
            return chunks
        ctx = RailContext(stage="retrieval", caller=principal.key_id)
        keep, verdicts = await svc.guardrails.screen_chunks(policy, [c.text for c in chunks], ctx)
        rails.verdicts.extend(verdicts)
        for chunk, kept in zip(chunks, keep, strict=True):
            if not kept:
                log.warning("retrieval rails dropped chunk %s from %s", chunk.id, chunk.source)
        return [c for c, k in zip(chunks, keep, strict=True) if k]

    chunks = await svc.rag.retrieve_for_chat(
        question, opts.collection, opts.top_k, opts.filter, search_tenant(principal), screen
    )
    await charge_query(svc.governance, svc.rag, principal, question)
    rendered = svc.prompts.render(prompt, {"context": format_context(chunks), "question": question}, label=label)
    augmented = [*messages[:index], *(dict(m) for m in rendered.messages), *messages[index + 1 :]]
    return augmented, citations(chunks)
