"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from gateway.auth import Principal, authenticate, require_admin
from gateway.services import services


def client(request: Request) -> Principal:
    svc = services(request)
    return authenticate(svc.keys, request.headers.get("authorization"), svc.insecure)


def admin(request: Request) -> Principal:
    return require_admin(client(request))


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))
