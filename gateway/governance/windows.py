"""Counting windows: fixed UTC minutes for rpm/tpm, calendar periods (UTC) for budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.governance.settings import BudgetPeriod

MINUTE = 60


def minute_window(now: float) -> tuple[int, float]:
    """The window holding `now` (epoch seconds) and the seconds until it ends."""
    window = int(now // MINUTE)
    return window, (window + 1) * MINUTE - now


def period_start(period: BudgetPeriod, now: float) -> datetime | None:
    """First instant of the budget period holding `now`; None for `total`."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return None


def period_end(period: BudgetPeriod, now: float) -> datetime | None:
    start = period_start(period, now)
    if start is None:
        return None
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def period_key(period: BudgetPeriod, now: float) -> str:
    start = period_start(period, now)
    return "total" if start is None else f"{period[0]}{start:%Y%m%d}"


def day_key(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
