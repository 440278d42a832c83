"""What the chat pipeline does with retrieved chunks: a context block for the prompt, and citations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.models import Chunk


def citations(chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """`[{"id", "source", "score"}]`, in the order the chunks were given (best first)."""
    return [{"id": c.id, "source": c.source, "score": round(c.score, 6)} for c in chunks]


def format_context(chunks: Sequence[Chunk]) -> str:
    """Numbered passages, each headed by its source, for a system or user message:

        [1] guide.md
        text...
    """
    return "\n\n".join(f"[{i}] {c.source}\n{c.text.strip()}" for i, c in enumerate(chunks, start=1))
