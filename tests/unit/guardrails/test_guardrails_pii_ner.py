"""Names and places (PERSON, LOCATION) through the real spaCy model that setup fetches."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.config import ROOT
from guardrails.engine import Guardrails
from guardrails.errors import RailConfigError
from guardrails.pii import PlaceholderVault, find_entities, mask, ner, unmask
from guardrails.pii.entity import KNOWN_TYPES, NER_TYPES
from guardrails.policy import GuardrailsSettings
from guardrails.rails import RailContext

TEXT = (
    "Please forward this to Maria Garcia (maria.garcia@example.com). "
    "She moved from Springfield, Illinois to London last spring."
)
WANTED = NER_TYPES | {"EMAIL"}


@pytest.fixture(scope="module", autouse=True)
def model_present() -> None:
    if not (ner.DEFAULT_MODEL / "config.cfg").exists():
        pytest.fail(f"spaCy NER model missing at {ner.DEFAULT_MODEL}: run `bash scripts/setup.sh`")


def _found(text: str, types: frozenset[str] | set[str] = WANTED) -> list[tuple[str, str]]:
    return [(e.type, e.value) for e in find_entities(text, types)]


def test_names_and_places_are_found_when_asked_for() -> None:
    found = _found(TEXT)
    assert ("PERSON", "Maria Garcia") in found
    assert {("LOCATION", "Springfield"), ("LOCATION", "Illinois"), ("LOCATION", "London")} <= set(found)
    assert ("EMAIL", "maria.garcia@example.com") in found  # the pattern types still run beside NER
    assert all(t != "PERSON" for t, _ in _found(TEXT, {"LOCATION"}))


def test_default_types_do_not_run_ner() -> None:
    assert {t for t, _ in _found(TEXT, None)} == {"EMAIL"}  # type: ignore[arg-type]
    assert not (NER_TYPES & {e.type for e in find_entities(TEXT)})


def test_masking_round_trip_with_names() -> None:
    vault = PlaceholderVault()
    masked = mask(TEXT, vault, WANTED)
    assert "Maria Garcia" not in masked and "London" not in masked and "<PERSON_1>" in masked
    assert unmask(masked, vault) == TEXT
    assert unmask(masked, PlaceholderVault()) == masked  # another caller's vault restores nothing


def test_already_masked_text_keeps_its_placeholders() -> None:
    found = find_entities("I spoke with John <PERSON_1> yesterday in <LOCATION_1>.", NER_TYPES)
    assert [(e.type, e.value) for e in found] == [("PERSON", "John")]  # the name left over, not the placeholder


def test_offsets_hold_past_the_piece_size() -> None:
    filler = "The quarterly numbers were discussed at length. " * (ner.PIECE // 40)
    text = filler + "Afterwards Maria Garcia flew to London."
    found = find_entities(text, NER_TYPES)
    assert len(text) > ner.PIECE and ("PERSON", "Maria Garcia") in [(e.type, e.value) for e in found]
    assert all(text[e.start : e.end] == e.value for e in found)


def _settings(tmp: Path, types: list[str], **extra: object) -> GuardrailsSettings:
    policy = {"input": [{"rail": "pii", "action": "mask", "params": {"types": types}}]}
    return GuardrailsSettings(policies={"p": policy}, default_policy="p", nemo_dir=str(tmp), **extra)  # type: ignore[arg-type]


def test_rail_masks_names_off_the_event_loop_and_keeps_the_vault(tmp_path: Path) -> None:
    rails = Guardrails(_settings(tmp_path, ["PERSON", "LOCATION", "EMAIL"]), ROOT)
    (_, rail), = rails.policies["p"].input
    ctx = RailContext(stage="input")
    verdict, text = asyncio.run(rail.run(TEXT, ctx))
    assert verdict.action == "mask" and "PERSON:1" in (verdict.detail or "")
    assert "Maria Garcia" not in text and unmask(text, ctx.vault) == TEXT
    out_verdict, out = asyncio.run(rail.run("Maria Garcia is in London.", RailContext(stage="output")))
    assert out == "[PERSON] is in [LOCATION]." and out_verdict.action == "mask"


def test_unknown_type_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(RailConfigError, match=r"unknown entity types \['NAME'\]; known: .*PERSON"):
        Guardrails(_settings(tmp_path, ["NAME"]), ROOT)
    assert NER_TYPES <= KNOWN_TYPES


def test_missing_model_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    with pytest.raises(RailConfigError, match=f"NER model not found at {missing}.*setup.sh"):
        Guardrails(_settings(tmp_path, ["PERSON"], ner_model=str(missing)), ROOT)
    Guardrails(_settings(tmp_path, ["EMAIL"], ner_model=str(missing)), ROOT)  # not needed: not loaded


def test_fetched_model_is_the_pinned_one() -> None:
    import json

    from scripts.fetch_model import NER_WHEEL, NER_WHEEL_SHA256

    meta = json.loads((ner.DEFAULT_MODEL / "meta.json").read_text())
    assert meta["version"] == "3.8.0" and NER_WHEEL.endswith("==3.8.0") and len(NER_WHEEL_SHA256) == 64
    assert (ner.DEFAULT_MODEL / "LICENSE").exists()
