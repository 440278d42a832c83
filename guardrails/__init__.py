"""Fast, self-contained guardrails: pure functions and small classes, no web framework.

Every rail returns a :class:`Verdict`. Typical wiring (one vault per request/caller)::

    from guardrails import InjectionDetector, PlaceholderVault, mask, unmask

    detector = InjectionDetector.load()          # once per process
    verdict = detector.check(user_prompt)        # Verdict(action="block"|"pass", ...)
    vault = PlaceholderVault()                   # per request, never shared
    safe_prompt = mask(user_prompt, vault)
    answer = unmask(model_answer, vault)
"""

from guardrails.canary import PromptLeakDetector, embed_canary, make_canary
from guardrails.denylist import DenyList, DenyListConfig, DenyRule
from guardrails.injection import InjectionDetector
from guardrails.pii import Entity, PlaceholderVault, find_entities, mask, unmask
from guardrails.pii import check as check_sensitive_data
from guardrails.verdict import Action, Verdict

__all__ = [
    "Action",
    "DenyList",
    "DenyListConfig",
    "DenyRule",
    "Entity",
    "InjectionDetector",
    "PlaceholderVault",
    "PromptLeakDetector",
    "Verdict",
    "check_sensitive_data",
    "embed_canary",
    "find_entities",
    "make_canary",
    "mask",
    "unmask",
]
