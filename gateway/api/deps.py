"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from gateway import errors
from gateway.auth import Principal, bearer, require_admin
from gateway.governance.principal import check_route
from gateway.services import services


async def client(request: Request) -> Principal:
    """Static keys from config first (no I/O), then virtual keys (cached lookups)."""
    svc = services(request)
    if svc.insecure and svc.keys.empty:
        return Principal(key_id="insecure-local", role="admin")
    secret = bearer(request.headers.get("authorization"))
    principal = svc.keys.lookup(secret) or await svc.governance.authenticate(secret)
    if principal is None:
        raise errors.AuthenticationError("Incorrect API key provided.")
    route = request.scope.get("route")
    if route is not None:
        check_route(principal, route.path)
    return principal


async def admin(request: Request) -> Principal:
    return require_admin(await client(request))


def request_id(request: Request) -> str:
    """Not a dependency: FastAPI would run a sync one in its thread pool, a hop per request."""
    return str(request.scope.get("state", {}).get("request_id", ""))
