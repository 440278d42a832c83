"""Python actions of the `topics` NeMo config (NeMo loads actions.py from the config folder)."""

from __future__ import annotations

import re
from typing import Any

from nemoguardrails.actions import action


@action(name="topic_allowed")
async def topic_allowed(text: str | None = None, config: Any = None) -> bool:
    topics = (getattr(config, "custom_data", None) or {}).get("blocked_topics", [])
    lowered = (text or "").lower()
    return not any(re.search(rf"(?<!\w){re.escape(t.lower())}(?!\w)", lowered) for t in topics)
