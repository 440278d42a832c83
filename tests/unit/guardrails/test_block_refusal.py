"""A policy's `on_block`: a blocked input is a 400 (error, the default) or a refusal the caller answers."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from gateway import errors, guard
from gateway.backends.base import Generation, Usage
from gateway.config import ROOT
from guardrails.engine import Guardrails
from guardrails.policy import BLOCK_MESSAGE, GuardrailsSettings, PolicySettings

DENY = [{"rail": "denylist", "action": "block", "params": {"terms": ["zanzibar"]}}]


def _guard(**policy: object) -> tuple[Guardrails, guard.Guard]:
    settings = GuardrailsSettings(policies={"p": policy}, default_policy="p")  # type: ignore[arg-type]
    rails = Guardrails(settings, ROOT)
    return rails, guard.Guard(rails.policy("p"))


def _screen(rails: Guardrails, g: guard.Guard, text: str) -> list[dict[str, object]]:
    return asyncio.run(guard.screen_input(rails, g, [{"role": "user", "content": text}]))


def test_default_is_the_400_with_the_block_message() -> None:
    rails, g = _guard(input=DENY)
    assert g.policy is not None and g.policy.settings.on_block == "error"
    with pytest.raises(errors.ContentPolicyViolation) as info:
        _screen(rails, g, "tell me about Zanzibar")
    assert info.value.status == 400
    assert info.value.message == BLOCK_MESSAGE.replace("{rail}", "denylist")
    assert g.refusal is None


def test_refusal_policy_returns_the_refusal_instead_of_raising() -> None:
    rails, g = _guard(input=DENY, on_block="refusal")
    _screen(rails, g, "tell me about Zanzibar")
    assert g.refusal == "I'm sorry, but I can't help with that: the request was blocked by the 'denylist' guardrail."
    assert g.action == "block"
    assert [v.action for v in g.verdicts] == ["block"]


def test_refusal_policy_lets_clean_input_through() -> None:
    rails, g = _guard(input=DENY, on_block="refusal")
    assert _screen(rails, g, "tell me about Paris") == [{"role": "user", "content": "tell me about Paris"}]
    assert g.refusal is None


def test_custom_block_message_keeps_other_braces() -> None:
    rails, g = _guard(input=DENY, on_block="refusal", block_message="Sorry, I can't do that ({rail}; {x}).")
    _screen(rails, g, "zanzibar")
    assert g.refusal == "Sorry, I can't do that (denylist; {x})."


@pytest.mark.parametrize(("on_block", "expected"), [("error", ""), ("refusal", BLOCK_MESSAGE.replace("{rail}", "denylist"))])
def test_blocked_answer_is_empty_or_the_refusal(on_block: str, expected: str) -> None:
    rails, g = _guard(output=DENY, on_block=on_block)
    gen = Generation(text="Zanzibar is an island.", finish_reason="stop", usage=Usage(5, 5))
    out = asyncio.run(guard.screen_generation(rails, g, gen))
    assert (out.text, out.finish_reason) == (expected, "content_filter")


def test_unknown_on_block_and_empty_message_are_rejected() -> None:
    with pytest.raises(ValidationError, match="on_block"):
        PolicySettings(on_block="shrug")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="block_message"):
        PolicySettings(block_message="")
