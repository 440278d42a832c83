"""Governance: virtual keys, limits and budgets, the request log, tracing and metrics.

Built once by the app factory (`Governance.build(settings.governance, data_dir=...)`) and
reached through `request.app.state.governance`; `state.py` lists the request-path calls.

Names load lazily (PEP 562): `gateway.config` imports `gateway.governance.settings`, and that
must not drag in the database, Redis, OpenTelemetry and Prometheus clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Governance": "state", "governance": "state",
    "GovernanceSettings": "settings", "Budget": "settings", "Price": "settings", "TeamLimits": "settings",
    "TracingSettings": "settings",
    "KeySpec": "models", "VirtualKey": "models", "IssuedKey": "models", "AuditEntry": "models",
    "RequestRecord": "records", "RailVerdict": "records", "RequestQuery": "records", "UsageEvent": "records",
    "LimitRejected": "limiter", "Reservation": "limiter",
    "Limits": "quota",
    "check_route": "principal", "limits_of": "principal", "team_of": "principal",
    "rails_policy_of": "principal",
    "Tracing": "tracing", "Span": "tracing",
    "Metrics": "metrics",
    "pii_mask": "masking",
}
__all__ = [
    "AuditEntry", "Budget", "Governance", "GovernanceSettings", "IssuedKey", "KeySpec",
    "LimitRejected", "Limits", "Metrics", "Price", "RailVerdict", "RequestQuery", "RequestRecord",
    "Reservation", "Span", "TeamLimits", "Tracing", "TracingSettings", "UsageEvent", "VirtualKey",
    "check_route", "governance", "limits_of", "pii_mask", "rails_policy_of", "team_of",
]

if TYPE_CHECKING:
    from gateway.governance.limiter import LimitRejected, Reservation
    from gateway.governance.masking import pii_mask
    from gateway.governance.metrics import Metrics
    from gateway.governance.models import AuditEntry, IssuedKey, KeySpec, VirtualKey
    from gateway.governance.principal import check_route, limits_of, rails_policy_of, team_of
    from gateway.governance.quota import Limits
    from gateway.governance.records import RailVerdict, RequestQuery, RequestRecord, UsageEvent
    from gateway.governance.settings import Budget, GovernanceSettings, Price, TeamLimits, TracingSettings
    from gateway.governance.state import Governance, governance
    from gateway.governance.tracing import Span, Tracing


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.governance' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gateway.governance.{module}"), name)
