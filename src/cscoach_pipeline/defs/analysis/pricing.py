"""What an analysis costs: tokens times a configurable price table (USD per million tokens).

The defaults are Google's published standard-tier prices for the Gemini API when this table
was written; contracts differ, so `CSCOACH_GEMINI_PRICES` (a JSON or YAML file with the same
shape) overrides or extends them.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel


class ModelPrice(BaseModel):
    input_per_million: float
    output_per_million: float
    cached_input_per_million: float = 0.0


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gemini-2.5-pro": ModelPrice(
        input_per_million=1.25, output_per_million=10.0, cached_input_per_million=0.31
    ),
    "gemini-2.5-flash": ModelPrice(
        input_per_million=0.30, output_per_million=2.50, cached_input_per_million=0.075
    ),
    "gemini-2.5-flash-lite": ModelPrice(
        input_per_million=0.10, output_per_million=0.40, cached_input_per_million=0.025
    ),
    "gemini-2.0-flash": ModelPrice(
        input_per_million=0.10, output_per_million=0.40, cached_input_per_million=0.025
    ),
}


def load_prices(path: str | None) -> dict[str, ModelPrice]:
    prices = dict(DEFAULT_PRICES)
    if path:
        text = Path(path).read_text(encoding="utf-8")
        raw = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        prices |= {name: ModelPrice.model_validate(value) for name, value in raw.items()}
    return prices


def cost_usd(
    prices: dict[str, ModelPrice],
    model: str,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int | None = None,
) -> float | None:
    """None when the model has no price (unknown cost is not zero cost)."""
    price = prices.get(model) or prices.get(model.removeprefix("models/"))
    if price is None or input_tokens is None or output_tokens is None:
        return None
    cached = min(cached_tokens or 0, input_tokens)
    total = (
        (input_tokens - cached) * price.input_per_million
        + cached * price.cached_input_per_million
        + output_tokens * price.output_per_million
    ) / 1_000_000
    return round(total, 8)
