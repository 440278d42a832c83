"""Deny-list rail: phrases and regexes, case-insensitive, whole-word."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from guardrails.denylist import DenyList, DenyListConfig, DenyRule


@pytest.fixture()
def deny() -> DenyList:
    return DenyList(
        [
            DenyRule(name="competitor", pattern="Globex Corp"),
            DenyRule(name="ass", pattern="ass"),
            DenyRule(name="ticket", pattern=r"INC-\d{6}", regex=True),
            "c++",
        ]
    )


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Is GLOBEX   corp better?", "competitor"),
        ("globex\ncorp pricing", "competitor"),
        ("what an ass.", "ass"),
        ("see inc-123456 for details", "ticket"),
        ("I code in C++ daily", "c++"),
        ("Ｇｌｏｂｅｘ Ｃｏｒｐ", "competitor"),  # full-width look-alikes
    ],
)
def test_hits(deny: DenyList, text: str, rule: str) -> None:
    v = deny.check(text)
    assert v.action == "block" and rule in v.detail
    assert [h.rule for h in deny.find(text)] == [rule]


@pytest.mark.parametrize("text", ["a classy assistant", "Globex Corporation", "INC-12345", "abc++ lib", "bass guitar"])
def test_word_boundaries(deny: DenyList, text: str) -> None:
    assert deny.check(text).action == "pass"


def test_from_config_and_validation() -> None:
    cfg = DenyListConfig.model_validate({"rules": [{"name": "x", "pattern": "secret project"}], "action": "log"})
    v = DenyList.from_config(cfg).check("about the Secret Project")
    assert v.action == "log"
    with pytest.raises(ValidationError):
        DenyListConfig.model_validate({"rules": [{"name": "x", "pattern": ""}]})
    with pytest.raises(re.error):
        DenyList([DenyRule(name="bad", pattern="(unclosed", regex=True)])


def test_empty_list_passes() -> None:
    assert DenyList([]).check("anything").action == "pass"
