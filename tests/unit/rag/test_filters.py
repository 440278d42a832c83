"""The filter grammar: what it accepts, what it emits, and the injections it refuses."""

from __future__ import annotations

import pytest

from rag import filters
from rag.errors import InvalidArgument, InvalidFilter


@pytest.mark.parametrize(
    ("user", "emitted"),
    [
        ('lang == "en"', 'metadata["lang"] == "en"'),
        ("lang == 'en'", 'metadata["lang"] == "en"'),
        ('source == "guide.md"', 'source == "guide.md"'),
        ("chunk_index >= 2", "chunk_index >= 2"),
        ('metadata["a"]["b"] != 1.5', 'metadata["a"]["b"] != 1.5'),
        ("year < -3", 'metadata["year"] < -3'),
        ("draft == false", 'metadata["draft"] == false'),
        ('lang in ["en", "fr"]', '(metadata["lang"] == "en" or metadata["lang"] == "fr")'),
        ('lang in ["en"]', 'metadata["lang"] == "en"'),
        ('lang not in ["en", "fr"]', '(metadata["lang"] != "en" and metadata["lang"] != "fr")'),
        ('source like "docs/%"', 'source like "docs/%"'),
        ('a == 1 AND b == 2 or c == 3', '((metadata["a"] == 1 and metadata["b"] == 2) or metadata["c"] == 3)'),
        ('a == 1 and (b == 2 or c == 3)', '(metadata["a"] == 1 and (metadata["b"] == 2 or metadata["c"] == 3))'),
        # negation is pushed down to the comparisons (De Morgan, flipped operators)
        ("not (a == 1 and b < 2)", '(metadata["a"] != 1 or metadata["b"] >= 2)'),
        ("not not a > 1", 'metadata["a"] > 1'),
        ('not lang in ["en", "fr"]', '(metadata["lang"] != "en" and metadata["lang"] != "fr")'),
        ("not (a <= 1 or b > 2)", '(metadata["a"] > 1 and metadata["b"] <= 2)'),
    ],
)
def test_accepted_filters_are_re_emitted(user: str, emitted: str) -> None:
    assert filters.compile_filter(user) == emitted


def test_emitted_filters_parse_back_to_themselves() -> None:
    for user in ['lang == "en"', "not (a == 1 and b < 2)", 'x in [1, "y", true]', 'source like "a%" or n >= 2.5']:
        once = filters.compile_filter(user)
        assert once is not None
        assert filters.compile_filter(once) == once


def test_mapping_filters() -> None:
    assert filters.compile_filter({"lang": "en"}) == 'metadata["lang"] == "en"'
    assert filters.compile_filter({"source": "a.md", "lang": ["en", "fr"]}) == (
        '(source == "a.md" and (metadata["lang"] == "en" or metadata["lang"] == "fr"))'
    )
    for bad in ({"tenant": "x"}, {"lang": {"$ne": 1}}, {}, {"lang": []}, {"a b": 1}, {"lang": 'x" or "1'}):
        with pytest.raises(InvalidFilter):
            filters.compile_filter(bad)


def test_tenant_is_anded_outside_the_users_parentheses() -> None:
    assert filters.scoped("acme", None) == 'tenant == "acme"'
    assert filters.scoped("", None) == 'tenant == ""'
    assert filters.scoped(None, None) is None
    assert filters.scoped(None, "a == 1") == 'metadata["a"] == 1'
    assert filters.scoped("acme", "a == 1 or b == 2") == '(tenant == "acme") and ((metadata["a"] == 1 or metadata["b"] == 2))'


INJECTIONS = [
    ') or (tenant != ""',
    'lang == "en") or (tenant != ""',
    'lang == "en" or tenant != ""',
    'tenant == "other"',
    'TENANT == "other"',
    'metadata["x"] == "a\\" or tenant != \\""',
    "lang == 'en\" or \"1\" == \"1'",
    'lang == "a\\\\" or 1 == 1',
    'lang == "en" || true',
    'lang == "en" && true',
    'lang == "en"; drop collection',
    'lang == "en" -- comment',
    'lang == "en" /* x */',
    "true",
    "1 == 1",
    '"a" == "a"',
    "lang == en",
    'lang == "en\n"',
    'metadata["la\\"ng"] == 1',
    'metadata["ok"]["bad key"] == 1',
    "metadata == 1",
    'id in ["x"]',
    'text like "%secret%"',
    "vector == 1",
    "source == 1",
    'chunk_index == "1"',
    'chunk_index like "1%"',
    "flag > true",
    'lang not like "e%"',
    'not (lang like "e%")',
    "lang in []",
    "lang == ",
    "(lang == 1",
    "lang == 1)",
    "",
    "   ",
    "lang == 1e999",
    "json_contains(tags, 'x')",
    'array_contains(tags, "x")',
    "exists lang",
    "lang == 1 and",
]


@pytest.mark.parametrize("user", INJECTIONS)
def test_hostile_or_malformed_filters_are_refused(user: str) -> None:
    with pytest.raises(InvalidFilter):
        filters.scoped("acme", user)


def test_size_limits() -> None:
    with pytest.raises(InvalidFilter, match="deeper"):
        filters.compile_filter("(" * 40 + "a == 1" + ")" * 40)
    with pytest.raises(InvalidFilter, match="comparisons"):
        filters.compile_filter(" or ".join(f"a == {i}" for i in range(100)))
    with pytest.raises(InvalidFilter, match="longer"):
        filters.compile_filter("a == " + "1" * 3000)
    with pytest.raises(InvalidFilter, match="at most"):
        filters.compile_filter("a in [" + ", ".join(str(i) for i in range(101)) + "]")


@pytest.mark.parametrize("tenant", ['acme" or "1" == "1', "a\\b", "x y", "é", "t" * 129])
def test_tenant_values_are_validated(tenant: str) -> None:
    with pytest.raises(InvalidArgument):
        filters.scoped(tenant, None)


def test_source_condition_takes_only_digests() -> None:
    assert filters.source_condition("t", "ab" * 16) == f'tenant == "t" and source_key == "{"ab" * 16}"'
    assert filters.source_condition(None, "ab" * 16) == f'source_key == "{"ab" * 16}"'
    with pytest.raises(ValueError):
        filters.source_condition("t", 'x" or "1')
