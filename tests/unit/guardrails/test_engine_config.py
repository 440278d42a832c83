"""Policy and NeMo config errors are named clearly, at start-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import ROOT
from guardrails.engine import Guardrails
from guardrails.errors import RailConfigError, UnknownRail
from guardrails.policy import GuardrailsSettings


def _settings(tmp: Path, **policy: object) -> GuardrailsSettings:
    return GuardrailsSettings(policies={"p": policy}, default_policy="p", nemo_dir=str(tmp))  # type: ignore[arg-type]


def test_unknown_rail_lists_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownRail, match="registered rails: .*injection.*pii"):
        Guardrails(_settings(tmp_path, input=[{"rail": "telepathy"}]), ROOT)


def test_missing_nemo_config_is_named(tmp_path: Path) -> None:
    (tmp_path / "topics").mkdir()
    with pytest.raises(RailConfigError, match=r"NeMo config 'ghost' not found .*available: \['topics'\]"):
        Guardrails(_settings(tmp_path, input=[{"rail": "nemo", "params": {"config": "ghost"}}]), ROOT)


def test_broken_nemo_config_is_named_at_warm_up(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.yml").write_text("rails:\n  input:\n    flows: [ this is: not: yaml\n")
    rails = Guardrails(_settings(tmp_path, input=[{"rail": "nemo", "params": {"config": "broken"}}]), ROOT)
    with pytest.raises(RailConfigError, match=str(folder)):
        asyncio.run(rails.warm())


def test_unknown_policy_reference_is_named() -> None:
    with pytest.raises(ValidationError, match="guardrails.models.smollm2: unknown policy 'ghost'"):
        GuardrailsSettings(policies={}, models={"smollm2": "ghost"})


def test_injection_cannot_mask(tmp_path: Path) -> None:
    with pytest.raises(RailConfigError, match="cannot mask"):
        Guardrails(_settings(tmp_path, input=[{"rail": "injection", "action": "mask"}]), ROOT)


def test_shipped_config_builds() -> None:
    from gateway.config import load_settings

    rails = Guardrails(load_settings().guardrails, ROOT)
    assert {"default", "strict", "off"} <= set(rails.policies)
