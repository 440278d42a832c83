"""Records of virtual keys and the admin audit log, as the admin API and the CLI show them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.errors import InvalidRequest
from gateway.governance.settings import Budget

KeyStatus = Literal["active", "revoked", "expired"]
_NAME = r"^[\w.@:/ -]{1,128}$"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _aware(value: datetime | None) -> datetime | None:
    # A naive timestamp from a client is taken as UTC rather than the server's local time.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class KeySpec(_Record):
    """What an admin sets on a key; everything but `name` is optional."""

    name: str = Field(pattern=_NAME)
    owner: str | None = Field(default=None, max_length=256)
    team: str | None = Field(default=None, pattern=_NAME)
    tenant: str | None = Field(default=None, max_length=128, description="Retrieval scope of the key's requests.")
    models: list[str] | None = Field(default=None, description="Models the key may call; None: all.")
    routes: list[str] | None = Field(
        default=None, description="Endpoint paths the key may call (e.g. /v1/chat/completions); None: all."
    )
    rails_policy: str | None = Field(default=None, max_length=128)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    budget: Budget | None = None
    expires_at: datetime | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @field_validator("routes")
    @classmethod
    def _paths(cls, routes: list[str] | None) -> list[str] | None:
        if routes is not None and any(not r.startswith("/") for r in routes):
            raise ValueError("routes are endpoint paths starting with '/', e.g. /v1/chat/completions")
        return routes


class VirtualKey(KeySpec):
    """A stored key: its settings and lifecycle, never its secret."""

    id: str
    created_at: datetime
    created_by: str
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    def status(self, now: datetime | None = None) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        return {"object": "virtual_key", **self.model_dump(mode="json"), "status": self.status()}


class IssuedKey(_Record):
    """A key with its secret: returned once, by create and rotate."""

    key: str
    record: VirtualKey

    def public(self) -> dict[str, Any]:
        return {**self.record.public(), "key": self.key}


class AuditEntry(_Record):
    id: int
    at: datetime
    actor: str
    action: str
    target_id: str | None
    detail: dict[str, Any] = Field(default_factory=dict)


class Page(BaseModel):
    """One page of a list; `next_cursor` is passed back as `cursor` for the next one."""

    model_config = ConfigDict(extra="forbid")

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    next_cursor: str | None = None
    has_more: bool = False


def parse_cursor(value: str) -> int:
    # ASCII only and int64-sized: str.isdigit() also accepts "²" (int() refuses it) and any length.
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise InvalidRequest("Invalid cursor; pass back the next_cursor of the previous page.", param="cursor")
    return int(value)
