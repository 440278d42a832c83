"""Errors of the guardrails package; the gateway maps them to HTTP answers."""

from __future__ import annotations


class GuardrailError(Exception):
    """Base of this package's errors."""


class RailConfigError(GuardrailError):
    """A policy or a NeMo config is invalid; the message names the file or key."""


class UnknownRail(RailConfigError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown rail {name!r}; registered rails: {sorted(known)}")


class UnknownPolicy(GuardrailError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown guardrails policy {name!r}; configured: {sorted(known)}")
