"""API keys: `Authorization: Bearer <key>` checked against hashed configured keys.

Keys are held only as sha256 digests; configuration may give them plain or as `sha256:HEX`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gateway import errors

if TYPE_CHECKING:
    from gateway.governance.quota import Limits

Role = Literal["client", "admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    name: str = ""
    models: frozenset[str] | None = None  # None: every model
    tenant: str | None = None
    rails_policy: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    team: str | None = None
    routes: frozenset[str] | None = None  # None: every route
    limits: Limits | None = None  # None: no limits of its own

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def digest(key: str) -> str:
    if key.startswith("sha256:"):
        return key[len("sha256:") :].lower()
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Static keys from configuration. Virtual keys (issue 7) plug in as another lookup."""

    def __init__(self, client_keys: list[str], admin_keys: list[str]) -> None:
        self._keys: dict[str, Principal] = {}
        for role, keys in (("client", client_keys), ("admin", admin_keys)):
            for key in keys:
                d = digest(key)
                self._keys[d] = Principal(key_id=f"static-{d[:12]}", role=role)  # type: ignore[arg-type]

    @property
    def empty(self) -> bool:
        return not self._keys

    def lookup(self, key: str) -> Principal | None:
        d = hashlib.sha256(key.encode()).hexdigest()
        principal = self._keys.get(d)
        # The dict lookup already matched; compare_digest keeps the final check constant-time.
        if principal is not None and hmac.compare_digest(d, digest(key)):
            return principal
        return None


def bearer(header: str | None) -> str:
    if not header:
        raise errors.AuthenticationError(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
        )
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise errors.AuthenticationError("Malformed Authorization header; expected 'Bearer <key>'.")
    return key.strip()


def require_admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise errors.PermissionDenied("This endpoint needs an admin key.")
    return principal


def check_model_access(principal: Principal, model: str) -> None:
    if principal.models is not None and model not in principal.models:
        raise errors.PermissionDenied(f"This key may not use model '{model}'.", param="model")
