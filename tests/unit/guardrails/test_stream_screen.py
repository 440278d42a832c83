"""Streamed output rails: checked windows, overlap, hold-back; nothing unsafe is ever released,
masked values are never cut in half, and placeholders come back whole for the caller."""

from __future__ import annotations

import asyncio

from gateway.config import ROOT
from guardrails.engine import Guardrails
from guardrails.pii import PlaceholderVault, find_entities, mask
from guardrails.policy import GuardrailsSettings
from guardrails.rails import RailContext
from guardrails.stream_screen import StreamScreen

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _screen(window: int = 32, **policy: object) -> StreamScreen:
    settings = GuardrailsSettings(policies={"p": policy}, default_policy="p")  # type: ignore[arg-type]
    compiled = Guardrails(settings, ROOT).policy("p")
    return StreamScreen(compiled, RailContext(stage="output"), window=window)


def _run(screen: StreamScreen, deltas: list[str]) -> tuple[str, bool]:
    async def go() -> tuple[str, bool]:
        out = []
        for d in deltas:
            r = await screen.feed(d)
            out.append(r.text)
            if r.stop:
                return "".join(out), True
        r = await screen.finish()
        out.append(r.text)
        return "".join(out), r.stop

    return asyncio.run(go())


BLOCK_SECRETS = {"output": [{"rail": "secrets", "action": "block"}]}
MASK_PII = {"output": [{"rail": "pii", "action": "mask"}]}


def test_clean_stream_is_released_in_full_and_in_order() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 40
    released, stopped = _run(_screen(**BLOCK_SECRETS), [text[i : i + 7] for i in range(0, len(text), 7)])
    assert not stopped and released == text


def test_secret_split_across_deltas_is_never_released() -> None:
    prefix = "Sure, here is the configuration you asked for. " * 3
    released, stopped = _run(_screen(**BLOCK_SECRETS), [prefix + "aws key: AKIAIOSF", "ODNN7EXAMPLE and more." * 3])
    assert stopped and "AKIA" not in released and released and prefix.startswith(released)


def test_secret_streamed_char_by_char_never_leaks_a_prefix() -> None:
    body = ("Some harmless text before the credentials. " * 10) + f"aws_secret_access_key = {SECRET}\nbye"
    released, stopped = _run(_screen(window=16, **BLOCK_SECRETS), list(body))
    assert stopped and "wJal" not in released and "aws_secret_access_key" not in released


def test_masked_entity_is_never_cut_in_half() -> None:
    text = "Write to me at someone.with.a.long.name@example.com or call later. " * 3
    for step in (1, 3, 7, 11):
        released, stopped = _run(_screen(window=8, **MASK_PII), [text[i : i + step] for i in range(0, len(text), step)])
        assert not stopped
        assert "@example.com" not in released and "someone" not in released
        assert released.count("[EMAIL]") == 3


def test_placeholders_from_the_prompt_are_restored_whole() -> None:
    vault = PlaceholderVault()
    masked = mask("my card is 4111 1111 1111 1111", vault)
    assert "<CREDIT_CARD_1>" in masked
    settings = GuardrailsSettings(policies={"p": {"output": [{"rail": "pii", "action": "mask"}]}}, default_policy="p")
    screen = StreamScreen(Guardrails(settings, ROOT).policy("p"), RailContext(stage="output", vault=vault), window=4)
    answer = "Your card <CREDIT_CARD_1> is noted."
    released, _ = _run(screen, [answer[i : i + 3] for i in range(0, len(answer), 3)])
    assert released == "Your card 4111 1111 1111 1111 is noted."
    assert not find_entities("<CREDIT_CARD_1>")
