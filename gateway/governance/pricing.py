"""Cost from the price table, in integer nano-USD so that counters add up exactly everywhere."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.governance.settings import Price

NANO_PER_USD = 1_000_000_000
_FREE = Price()


def to_nano(usd: float) -> int:
    return round(usd * NANO_PER_USD)


def to_usd(nano: int) -> float:
    return nano / NANO_PER_USD


class PriceTable:
    """Per-model USD per 1M tokens; `*` prices every model not listed, else a model is free."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)
        self._default = self._prices.get("*", _FREE)

    def price(self, model: str) -> Price:
        return self._prices.get(model, self._default)

    def cost_nano(self, model: str, input_tokens: int, output_tokens: int) -> int:
        p = self.price(model)
        # USD per 1M tokens is exactly 1000 nano-USD per token per dollar of price.
        return round(input_tokens * p.input * 1000 + output_tokens * p.output * 1000)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        return to_usd(self.cost_nano(model, input_tokens, output_tokens))
