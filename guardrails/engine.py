"""Run a policy's rails over messages, answers, streamed windows and retrieved chunks.

Every rail of a stage runs in order over each text it applies to; the first `block` stops the
stage. A rail that raises fails closed (`on_error: block`, the default) or open, and says so in
the log and in its verdict.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardrails.errors import RailConfigError, UnknownPolicy
from guardrails.nemo import NemoConfigs
from guardrails.policy import GuardrailsSettings, PolicySettings, RailSpec
from guardrails.rails import Rail, RailContext, Resources, build
from guardrails.verdict import Action, Verdict

log = logging.getLogger("guardrails")
# Message roles whose content is data returned to the model (screened in document mode).
DOCUMENT_ROLES = frozenset({"tool", "function"})


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    settings: PolicySettings
    input: list[tuple[RailSpec, Rail]]
    output: list[tuple[RailSpec, Rail]]
    retrieval: list[tuple[RailSpec, Rail]]

    @property
    def uses_canary(self) -> bool:
        return any(spec.rail == "canary" for spec, _ in self.output)


@dataclass
class Screen:
    """The outcome of screening one stage."""

    verdicts: list[Verdict] = field(default_factory=list)
    blocked_by: str | None = None
    masked: bool = False

    @property
    def allowed(self) -> bool:
        return self.blocked_by is None

    @property
    def action(self) -> str:
        return "block" if self.blocked_by else ("mask" if self.masked else "pass")


async def _run_one(spec: RailSpec, rail: Rail, text: str, ctx: RailContext) -> tuple[Verdict, str]:
    t0 = time.perf_counter()
    try:
        return await rail.run(text, ctx)
    except Exception as exc:  # a rail bug must not let text through unless configured to
        action: Action = "block" if spec.on_error == "block" else "pass"
        log.error(
            "rail %s crashed (%s: %s); failing %s",
            rail.name,
            type(exc).__name__,
            exc,
            "closed" if action == "block" else "open",
        )
        latency = (time.perf_counter() - t0) * 1000.0
        return Verdict(rail.name, action, 1.0, latency, f"rail error: {type(exc).__name__}"), text


async def run_rails(rails: list[tuple[RailSpec, Rail]], text: str, ctx: RailContext, screen: Screen) -> str:
    """Run rails over one text, recording verdicts in `screen`; returns the (masked) text."""
    for spec, rail in rails:
        verdict, new_text = await _run_one(spec, rail, text, ctx)
        screen.verdicts.append(verdict)
        if verdict.action == "block":
            screen.blocked_by = verdict.rail
            return text
        if verdict.action == "mask" and new_text != text:
            screen.masked = True
            text = new_text
    return text


class Guardrails:
    def __init__(self, settings: GuardrailsSettings, root: Path) -> None:
        self.settings = settings
        for module in settings.plugins:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise RailConfigError(f"guardrails.plugins: cannot import {module!r}: {exc}") from exc
        self.resources = Resources(
            NemoConfigs(root / settings.nemo_dir), root / settings.injection_model, root / settings.ner_model
        )
        # Built eagerly so that a bad policy or NeMo config fails at start-up, naming itself.
        self.policies = {name: self._compile(name, p) for name, p in settings.policies.items()}

    def _compile(self, name: str, p: PolicySettings) -> CompiledPolicy:
        def stage(specs: list[RailSpec]) -> list[tuple[RailSpec, Rail]]:
            return [(s, build(s, self.resources)) for s in specs]

        return CompiledPolicy(name, p, stage(p.input), stage(p.output), stage(p.retrieval))

    def policy(self, name: str) -> CompiledPolicy:
        try:
            return self.policies[name]
        except KeyError:
            raise UnknownPolicy(name, list(self.policies)) from None

    def resolve(self, key_id: str | None, key_policy: str | None, model: str | None) -> CompiledPolicy | None:
        """The key's own policy, else the config's policy for the key, else the model's, else the default."""
        if not self.settings.enabled:
            return None
        name = key_policy or (self.settings.keys.get(key_id) if key_id else None)
        name = name or (self.settings.models.get(model) if model else None) or self.settings.default_policy
        return self.policy(name) if name else None

    async def screen_messages(
        self, policy: CompiledPolicy, messages: list[dict[str, Any]], ctx: RailContext
    ) -> tuple[Screen, list[dict[str, Any]]]:
        """Screen every untrusted turn (not just the last); returns possibly masked messages."""
        screen = Screen()
        untrusted = set(policy.settings.untrusted_roles)
        out: list[dict[str, Any]] = []
        for message in messages:
            content = message.get("content")
            if message.get("role") not in untrusted or not isinstance(content, str) or not content:
                out.append(message)
                continue
            ctx.document = message.get("role") in DOCUMENT_ROLES
            try:
                new = await run_rails(policy.input, content, ctx, screen)
            finally:
                ctx.document = False
            if screen.blocked_by:
                return screen, messages
            out.append({**message, "content": new} if new != content else message)
        return screen, out

    async def screen_output(self, policy: CompiledPolicy, text: str, ctx: RailContext) -> tuple[Screen, str]:
        screen = Screen()
        new = await run_rails(policy.output, text, ctx, screen)
        return screen, new

    async def screen_chunks(
        self, policy: CompiledPolicy, texts: list[str], ctx: RailContext
    ) -> tuple[list[bool], list[Verdict]]:
        """Retrieval rails: which chunks may reach the model (a blocked chunk is dropped)."""
        keep: list[bool] = []
        verdicts: list[Verdict] = []
        for text in texts:
            screen = Screen()
            await run_rails(policy.retrieval, text, ctx, screen)
            keep.append(screen.allowed)
            verdicts.extend(screen.verdicts)
        return keep, verdicts

    async def warm(self) -> None:
        """Load detectors and build NeMo indexes now, not on the first request."""
        for policy in self.policies.values():
            ctx = RailContext(stage="input")
            await run_rails(policy.input, "hello", ctx, Screen())
            await run_rails(policy.output, "hello", RailContext(stage="output"), Screen())
        for nemo in self.resources.nemo.loaded():
            await nemo.warm()
