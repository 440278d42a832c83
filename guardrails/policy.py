"""Rails policies as configuration: which rails run at each stage and what each does on a hit.

    guardrails:
      policies:
        default:
          input:  [{rail: injection, action: block}, {rail: pii, action: mask}]
          output: [{rail: secrets, action: block}, {rail: canary, action: block}]
      models: {smollm2: default}        # per model route
      keys: {static-ab12cd34ef56: strict}  # per API key id (virtual keys carry their own)

A policy is resolved per request: the key's policy, else the model's, else `default_policy`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RailAction = Literal["block", "mask", "log"]
# The text of a block; `{rail}` becomes the blocking rail's name. Scanners such as garak recognise a
# refusal by phrases like its opening, so a refusal answer is scored as the model declining.
BLOCK_MESSAGE = "I'm sorry, but I can't help with that: the request was blocked by the '{rail}' guardrail."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RailSpec(_Strict):
    rail: str = Field(description="Registered rail name: injection, pii, secrets, denylist, canary, nemo, ...")
    action: RailAction = Field("block", description="What a hit does.")
    on_error: Literal["block", "pass"] = Field(
        "block", description="A rail that crashes fails closed (block) unless set to pass."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Rail-specific parameters.")


class PolicySettings(_Strict):
    input: list[RailSpec] = Field(default_factory=list)
    output: list[RailSpec] = Field(default_factory=list)
    retrieval: list[RailSpec] = Field(default_factory=list, description="Screens retrieved chunks.")
    stream_window_chars: int = Field(
        96, ge=1, description="Streamed text is released in windows of this size after output rails pass."
    )
    untrusted_roles: list[str] = Field(
        default_factory=lambda: ["user", "tool", "function"],
        description="Message roles screened as untrusted input (every turn, not just the last).",
    )
    on_block: Literal["error", "refusal"] = Field(
        "error",
        description="A blocked input is answered with HTTP 400 `content_policy_violation` (error), or as a normal "
        "assistant reply holding `block_message` with finish_reason content_filter, no model called (refusal). "
        "With refusal, a blocked non-streamed answer also carries `block_message` instead of nothing.",
    )
    block_message: str = Field(
        BLOCK_MESSAGE, min_length=1, description="The block's text (error message or refusal); `{rail}` is the rail."
    )

    def block_text(self, rail: str) -> str:
        # replace, not format: an operator's message may hold other braces
        return self.block_message.replace("{rail}", rail)


class GuardrailsSettings(_Strict):
    enabled: bool = True
    default_policy: str | None = None
    policies: dict[str, PolicySettings] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict, description="Model name → policy.")
    keys: dict[str, str] = Field(default_factory=dict, description="API key id → policy.")
    plugins: list[str] = Field(
        default_factory=list, description="Modules imported at start-up that register extra rails."
    )
    nemo_dir: str = Field("configs/rails", description="Folder of NeMo Guardrails configs, one per subfolder.")
    injection_model: str = Field(
        "guardrails/injection/artifacts/injection-v9.npz", description="Prompt-injection detector artifact."
    )
    ner_model: str = Field(
        "models/spacy/en_core_web_sm",
        description="spaCy NER model folder for the PERSON and LOCATION types of the pii rail (fetched by setup).",
    )

    @model_validator(mode="after")
    def _references(self) -> GuardrailsSettings:
        known = set(self.policies)
        refs = [("default_policy", self.default_policy)] if self.default_policy else []
        refs += [(f"models.{k}", v) for k, v in self.models.items()]
        refs += [(f"keys.{k}", v) for k, v in self.keys.items()]
        for where, name in refs:
            if name not in known:
                raise ValueError(f"guardrails.{where}: unknown policy {name!r}; configured: {sorted(known)}")
        return self
