"""The rail registry and the built-in rails. Built-ins register exactly as an extension would:

    @register("my-rail")
    def build(spec: RailSpec, res: Resources) -> Rail: ...

A rail sees one text at a time and returns a Verdict and the (possibly masked) text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from guardrails.errors import RailConfigError, UnknownRail
from guardrails.nemo import NemoConfigs
from guardrails.pii import PERSONAL_TYPES, SECRET_TYPES, PlaceholderVault, find_entities, ner
from guardrails.pii.detect import verdict_of
from guardrails.pii.entity import KNOWN_TYPES, NER_TYPES, Entity
from guardrails.pii.vault import mask_entities
from guardrails.policy import RailSpec
from guardrails.score_cache import DEFAULT_SIZE, ScoreCache, cache_key
from guardrails.verdict import Verdict


@dataclass
class RailContext:
    """Per-request state the rails share: the caller's placeholder vault and the canary."""

    stage: str
    vault: PlaceholderVault = field(default_factory=PlaceholderVault)
    system_prompt: str = ""
    canary: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)  # for NeMo output rails
    # The text being screened is data the assistant reads (a tool/function result), not a
    # message someone wrote; the retrieval stage always is. The injection rail then also looks
    # for requests addressed to the assistant inside it (document mode).
    document: bool = False
    # Who is asking (the API key's id): cached scores are never shared across callers.
    caller: str = ""


class Rail(Protocol):
    name: str

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]: ...


@dataclass
class Resources:
    """Heavy objects built once and shared by the rails of every policy."""

    nemo: NemoConfigs
    injection_model: Path
    ner_model: Path = ner.DEFAULT_MODEL
    _injection: Any = None

    def injection(self) -> Any:
        if self._injection is None:
            from guardrails.injection import InjectionDetector

            if not self.injection_model.exists():
                raise RailConfigError(
                    f"injection detector not found: {self.injection_model} "
                    "(train it: python -m guardrails.injection.train)"
                )
            try:
                self._injection = InjectionDetector.load(self.injection_model)
            except FileNotFoundError as exc:
                raise RailConfigError(str(exc)) from None
        return self._injection

    def ner(self) -> Any:
        try:
            return ner.configure(self.ner_model)
        except ner.NerModelMissing as exc:
            raise RailConfigError(str(exc)) from None


Factory = Callable[[RailSpec, Resources], Rail]
_REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return deco


def build(spec: RailSpec, res: Resources) -> Rail:
    try:
        factory = _REGISTRY[spec.rail]
    except KeyError:
        raise UnknownRail(spec.rail, list(_REGISTRY)) from None
    return factory(spec, res)


def registered() -> list[str]:
    return sorted(_REGISTRY)


def _elapsed(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


# -- built-ins ------------------------------------------------------------------------------------


@dataclass
class InjectionRail:
    name: str
    action: str
    detector: Any
    threshold: float | None
    # False: document mode without the sentence model (v4's decision, at its own calibration), for
    # policies where a p99 of tens of ms per tool result or chunk costs more than the catch rate gained.
    last_stage: bool = True
    # False: prompts scored by the first stage alone (v7's prompt mode, at its own calibration).
    prompt_stage: bool = True
    # Scores of texts this rail has seen, per caller (``score_cache``); None: score every time.
    cache: ScoreCache[tuple[float, bool]] | None = None

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]:
        t0 = time.perf_counter()
        document = ctx.document or ctx.stage == "retrieval"
        last_stage = self.last_stage if document else self.prompt_stage
        scored, notes = None, []
        if self.cache is not None:
            key = cache_key(ctx.caller, text, document, last_stage)
            scored = self.cache.get(key)
            notes = ["cached"] if scored is not None else []
        if scored is None:
            scored = await self._score(text, document, last_stage)
            if self.cache is not None:
                self.cache.put(key, scored)
        score, decoded = scored
        if decoded:
            notes.append("decoded payload")  # base64 or hex in the text read as an injection
        threshold = self.threshold if self.threshold is not None else float(self.detector.threshold)
        action = self.action if score >= threshold else "pass"
        return Verdict(self.name, action, score, _elapsed(t0), "; ".join(notes)), text  # type: ignore[arg-type]

    async def _score(self, text: str, document: bool, last_stage: bool) -> tuple[float, bool]:
        model = self.detector.sentence if document else getattr(self.detector, "prompt_stage", None)
        if last_stage and model is not None:
            # Either MiniLM stage may run (milliseconds of BLAS, GIL released): off the event loop.
            score, decoded = await asyncio.to_thread(self.detector.explain, text, document)
        else:
            score, decoded = self.detector.explain(text, document, last_stage)
        return float(score), bool(decoded)


@register("injection")
def _injection(spec: RailSpec, res: Resources) -> Rail:
    if spec.action == "mask":
        raise RailConfigError("rail 'injection' cannot mask; use block or log")
    last_stage = spec.params.get("document_last_stage", True)
    prompt_stage = spec.params.get("prompt_stage", True)
    for key, value in (("document_last_stage", last_stage), ("prompt_stage", prompt_stage)):
        if not isinstance(value, bool):
            raise RailConfigError(f"rail 'injection': params.{key} must be true or false, not {value!r}")
    detector = res.injection()
    if not last_stage and not detector.can_skip_last_stage:
        raise RailConfigError(
            f"rail 'injection': detector {detector.version} has no calibration for document mode without its "
            "last stage (params.document_last_stage: false); retrain it with python -m guardrails.injection.train"
        )
    threshold = spec.params.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1):
        # Checked here: a string would otherwise fail every request at run time (and fail closed).
        raise RailConfigError(f"rail 'injection': params.threshold must be a number between 0 and 1, not {threshold!r}")
    size = spec.params.get("cache_size", DEFAULT_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RailConfigError(f"rail 'injection': params.cache_size must be a whole number >= 0 (0: none), not {size!r}")
    return InjectionRail(
        "injection", spec.action, detector, None if threshold is None else float(threshold), last_stage, prompt_stage,
        ScoreCache(size) if size else None,
    )


@dataclass
class SensitiveDataRail:
    name: str
    action: str
    types: frozenset[str]

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(e.start, e.end) for e in find_entities(text, self.types)]

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]:
        t0 = time.perf_counter()
        if self.types & NER_TYPES:
            # tens of ms of spaCy: off the event loop, so other requests keep moving meanwhile
            entities = await asyncio.to_thread(find_entities, text, self.types)
        else:
            entities = find_entities(text, self.types)
        verdict = verdict_of(entities, 0.0, self.action, self.name)  # type: ignore[arg-type]
        if verdict.action == "mask":
            # Input values go into the caller's vault and come back in the answer; values the
            # model produced are redacted for good (a vault placeholder would be restored).
            text = mask_entities(text, entities, ctx.vault) if ctx.stage != "output" else redact(text, entities)
        return Verdict(verdict.rail, verdict.action, verdict.score, _elapsed(t0), verdict.detail), text


def redact(text: str, entities: list[Entity]) -> str:
    """Replace each entity with `[TYPE]`: irreversible, unlike the vault's `<TYPE_n>`."""
    out, last = [], 0
    for e in entities:
        out.append(text[last : e.start])
        out.append(f"[{e.type}]")
        last = e.end
    out.append(text[last:])
    return "".join(out)


def _types(spec: RailSpec, default: frozenset[str]) -> frozenset[str]:
    wanted = spec.params.get("types")
    if wanted is None:
        return default
    unknown = set(wanted) - KNOWN_TYPES
    if unknown:
        raise RailConfigError(f"rail {spec.rail!r}: unknown entity types {sorted(unknown)}; known: {sorted(KNOWN_TYPES)}")
    return frozenset(wanted)


@register("pii")
def _pii(spec: RailSpec, res: Resources) -> Rail:
    types = _types(spec, PERSONAL_TYPES)
    if types & NER_TYPES:
        res.ner()  # load it now: a missing model is a start-up error naming it, not a 500 later
    return SensitiveDataRail("pii", spec.action, types)


@register("secrets")
def _secrets(spec: RailSpec, res: Resources) -> Rail:
    return SensitiveDataRail("secrets", spec.action, _types(spec, SECRET_TYPES))


@dataclass
class DenyListRail:
    name: str
    denylist: Any

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]:
        return self.denylist.check(text), text


@register("denylist")
def _denylist(spec: RailSpec, res: Resources) -> Rail:
    from guardrails.denylist import DenyList, DenyRule

    rules = [DenyRule(name=t, pattern=t) for t in spec.params.get("terms", [])]
    rules += [DenyRule(name=p, pattern=p, regex=True) for p in spec.params.get("patterns", [])]
    if not rules:
        raise RailConfigError("rail 'denylist' needs params.terms or params.patterns")
    name = str(spec.params.get("name", "denylist"))
    return DenyListRail(name, DenyList(rules, action=spec.action, rail=name))


@dataclass
class CanaryRail:
    """System-prompt leakage: the request's canary token, or a long verbatim copy of the prompt."""

    name: str
    action: str
    min_words: int

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]:
        from guardrails.canary import PromptLeakDetector

        if not ctx.system_prompt and not ctx.canary:
            return Verdict(self.name, "pass", 0.0, 0.0), text
        detector = PromptLeakDetector(
            ctx.system_prompt,
            ctx.canary,
            self.min_words,
            rail=self.name,
            action=self.action,  # type: ignore[arg-type]
        )
        return detector.check(text), text


@register("canary")
def _canary(spec: RailSpec, res: Resources) -> Rail:
    return CanaryRail("canary", spec.action, int(spec.params.get("min_overlap_words", 10)))


@dataclass
class NemoRail:
    name: str
    action: str
    nemo: Any

    async def run(self, text: str, ctx: RailContext) -> tuple[Verdict, str]:
        t0 = time.perf_counter()
        if ctx.stage == "output":
            messages = [*ctx.history[-1:], {"role": "assistant", "content": text}]
            stage = "output"
        else:
            messages, stage = [{"role": "user", "content": text}], "input"
        status, rail, content = await self.nemo.check(messages, stage)
        if status == "blocked":
            return Verdict(self.name, self.action, 1.0, _elapsed(t0), f"nemo flow {rail!r}"), text  # type: ignore[arg-type]
        if status == "modified" and self.action == "mask":
            return Verdict(self.name, "mask", 1.0, _elapsed(t0), f"nemo flow {rail!r} modified"), content
        return Verdict(self.name, "pass", 0.0, _elapsed(t0)), text


@register("nemo")
def _nemo(spec: RailSpec, res: Resources) -> Rail:
    config = spec.params.get("config")
    if not config:
        raise RailConfigError("rail 'nemo' needs params.config: the folder name under configs/rails/")
    return NemoRail(f"nemo:{config}", spec.action, res.nemo.get(str(config)))
