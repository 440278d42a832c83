"""Reversible masking with a per-caller placeholder vault."""

from __future__ import annotations

from guardrails.pii import PlaceholderVault, mask, unmask

TEXT = "Email jane@example.com or john@example.org; again jane@example.com. Card 4111 1111 1111 1111."


def test_round_trip_and_stable_placeholders() -> None:
    vault = PlaceholderVault()
    masked = mask(TEXT, vault)
    assert masked == "Email <EMAIL_1> or <EMAIL_2>; again <EMAIL_1>. Card <CREDIT_CARD_1>."
    assert unmask(masked, vault) == TEXT
    # A later message in the same conversation reuses the same placeholder.
    assert mask("cc jane@example.com", vault) == "cc <EMAIL_1>"


def test_model_output_is_unmasked() -> None:
    vault = PlaceholderVault()
    mask(TEXT, vault)
    assert unmask("I wrote to <EMAIL_2> about <CREDIT_CARD_1>.", vault) == (
        "I wrote to john@example.org about 4111 1111 1111 1111."
    )


def test_vaults_are_isolated() -> None:
    a, b = PlaceholderVault(), PlaceholderVault()
    masked_a = mask("alice@example.com", a)
    masked_b = mask("bob@example.com", b)
    assert masked_a == masked_b == "<EMAIL_1>"
    assert unmask(masked_a, a) == "alice@example.com"
    assert unmask(masked_a, b) == "bob@example.com"  # b's own EMAIL_1, never alice
    assert "alice" not in unmask("<EMAIL_1> <EMAIL_2>", b)
    assert unmask("<EMAIL_2>", b) == "<EMAIL_2>"  # unknown placeholders stay as they are


def test_unknown_and_lookalike_placeholders_untouched() -> None:
    vault = PlaceholderVault()
    assert unmask("<EMAIL_7> and <b>bold</b>", vault) == "<EMAIL_7> and <b>bold</b>"


def test_max_entries_falls_back_to_one_way_redaction() -> None:
    vault = PlaceholderVault(max_entries=1)
    masked = mask("a@example.com b@example.com", vault)
    assert masked == "<EMAIL_1> <EMAIL_REDACTED>"
    assert unmask(masked, vault) == "a@example.com <EMAIL_REDACTED>"
    assert len(vault) == 1


def test_type_filter() -> None:
    vault = PlaceholderVault()
    assert mask(TEXT, vault, types={"CREDIT_CARD"}).count("<CREDIT_CARD_1>") == 1
    assert "jane@example.com" in mask(TEXT, PlaceholderVault(), types={"CREDIT_CARD"})
