"""The checks that read a principal's governance fields (team, routes, rails policy, limits)."""

from __future__ import annotations

from gateway import errors
from gateway.auth import Principal
from gateway.governance.quota import NO_LIMITS, Limits


def team_of(principal: Principal) -> str | None:
    return principal.team


def limits_of(principal: Principal) -> Limits:
    return principal.limits or NO_LIMITS


def rails_policy_of(principal: Principal) -> str | None:
    return principal.rails_policy


def check_route(principal: Principal, path: str) -> None:
    """403 unless the key may call `path` (the route template, e.g. /v1/chat/completions)."""
    routes = principal.routes
    if routes is not None and path not in routes:
        raise errors.PermissionDenied(f"This key may not call {path}.")
