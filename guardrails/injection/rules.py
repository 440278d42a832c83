"""Hand-written cue features for the linear model (not a rule-based detector on their own).

Each regex marks a generic prompt-injection move, written from public descriptions of
the attack classes (OWASP LLM01, the BIPIA / garak taxonomies), not fitted to our test
rows. A hit becomes one extra feature; logistic regression learns how much each cue
counts, so a cue that also fires on benign text ("act as a tutor") gets a small weight.
Changing this list changes the feature space: bump ``RULES_VERSION`` and retrain.
"""

from __future__ import annotations

import re
from typing import Final

RULES_VERSION: Final = 2
_W = r"(?:\w+\W+)"  # one filler word; \w and \W are disjoint, so no catastrophic backtracking

RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in (
        (
            "override_instructions",
            rf"\b(?:ignore|disregard|forget|skip|override|bypass|abandon|drop)\W+{_W}{{0,4}}"
            r"(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|the|these|those)\W+"
            rf"{_W}{{0,2}}(?:instructions?|directions?|rules?|prompts?|guidelines?|directives?|commands?|context|programming)\b",
        ),
        (
            "system_prompt_ref",
            r"\b(?:system|initial|hidden|original|secret|developer|internal|starting|confidential)\W+"
            r"(?:prompt|instructions?|message|configuration|directives?|rules)\b",
        ),
        (
            "reveal_prompt",
            rf"\b(?:reveal|print|show|output|repeat|display|dump|leak|tell me|recite|quote|spell out)\W+{_W}{{0,5}}"
            r"(?:prompt|instructions?|rules|guidelines|configuration)\b",
        ),
        (
            "persona_switch",
            r"\b(?:you are now|you're now|you are no longer|from now on,? you|you will now|you must now|"
            r"pretend (?:to be|you are|you're)|act as (?:an?|my)? ?\w+ (?:ai|model|assistant|bot)|roleplay as|"
            r"stay in character|never break character)\b",
        ),
        (
            "no_restrictions",
            rf"\b(?:no|without|free (?:of|from)|bypass\w*|ignor\w+|break\w*|remov\w+|disabl\w+|unbound)\W+{_W}{{0,2}}"
            r"(?:restrictions?|filters?|filtering|limitations?|guidelines|rules|censorship|ethics|ethical|morals?|"
            r"polic(?:y|ies)|guardrails|safeguards|boundaries)\b",
        ),
        (
            "special_mode",
            r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|dan|sudo|admin|maintenance|debug|opposite)\s+mode\b",
        ),
        ("named_jailbreak", r"\b(?:DAN|STAN|DUDE|AIM|AntiDAN|jailbr(?:ea|o)k(?:en|ing)?|do anything now)\b"),
        (
            "refusal_suppression",
            rf"\b(?:never|do not|don't|must not|mustn't|cannot|can't|won't|will not)\W+{_W}{{0,2}}"
            r"(?:refuse|apologi[sz]e|decline|say (?:no|sorry)|add (?:any )?(?:warnings?|disclaimers?)|moralize|lecture)\b",
        ),
        (
            "addressed_to_ai",
            r"\b(?:(?:ai|assistant|language model|llm|chatbot|agent|model)s?\W+(?:reading|processing|summari[sz]ing|parsing|that reads?)"
            r"|(?:note|message|instructions?|command) (?:to|for) (?:the |any |all )?(?:ai|assistant|model|llm|agent|bot)s?)\b",
        ),
        (
            "response_manipulation",
            r"\b(?:(?:in|to|into|within) your (?:response|reply|answer|output|summary)"
            r"|your (?:response|reply|answer|output) (?:must|should|shall|will))\b",
        ),
        (
            "delimiter_spoof",
            r"<\|im_start\|>|<\|?(?:system|endoftext)\|?>|\[/?INST\]|###\s*(?:system|instruction|admin)|"
            r"</?(?:system|user|assistant)>|\bend of (?:user )?input\b|\bnew (?:system )?instructions?:",
        ),
        # Data smuggled out through an image URL the client will fetch: the query carries a
        # template slot ({...}, $var, %s, <...>). Plain README badges (?maxAge=86400) do not.
        ("markdown_exfil", r"!\[[^\]]{0,40}\]\(\s*https?://[^)\s]*[?&][\w.-]*=\s*(?:\{|\$|%s|<|\[)"),
        (
            "decode_and_obey",
            rf"\b(?:decode|decrypt|base64|rot13|reverse|translate)\W+{_W}{{0,8}}(?:follow|obey|execute|do what|comply)\b",
        ),
        (
            "tool_or_exfil_action",
            r"\b(?:call|invoke|run|execute|use) (?:the |your )?\w+ (?:tool|function|plugin|api)\b|"
            r"\b(?:send|forward|email|upload|post) (?:\w+ ){0,4}(?:inbox|passwords?|credentials|api keys?|conversation|chat history)\b",
        ),
    )
)


def rule_spans(text: str) -> list[tuple[int, int, int]]:
    """(rule index, start, end) of every non-overlapping match of every rule."""
    return [(i, m.start(), m.end()) for i, (_, rx) in enumerate(RULES) for m in rx.finditer(text)]


def rule_hits(text: str) -> list[int]:
    """Indices of the rules that fire on ``text`` (already normalised is fine)."""
    return [i for i, (_, rx) in enumerate(RULES) if rx.search(text)]


def rule_names(indices: list[int]) -> list[str]:
    return [RULES[i][0] for i in indices]
