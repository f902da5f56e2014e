"""Which endpoints judge: a chat model that takes images, as the harness describes one, with
judging defaults (temperature 0, a seed where the API has one) and optional prices."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from ..harness.endpoints import ModelSpec


class JudgeEndpoint(ModelSpec):
    """One judge: an OpenAI-compatible ``/v1/chat/completions`` endpoint or the Anthropic messages API."""

    name: str = Field("judge", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(400, gt=0)
    price_input_per_mtok: float | None = Field(None, ge=0, description="USD per million input tokens (image tokens included)")
    price_output_per_mtok: float | None = Field(None, ge=0, description="USD per million output tokens")

    @model_validator(mode="before")
    @classmethod
    def _seeded(cls, raw: Any) -> Any:
        # Reproducible by default where the API takes a seed; the Anthropic API has none.
        if isinstance(raw, dict) and raw.get("kind") == "openai" and "seed" not in raw:
            return {**raw, "seed": 0}
        return raw

    @property
    def priced(self) -> bool:
        return self.price_input_per_mtok is not None and self.price_output_per_mtok is not None

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float | None:
        if not self.priced:
            return None
        return (input_tokens * self.price_input_per_mtok + output_tokens * self.price_output_per_mtok) / 1e6  # type: ignore[operator]

    @property
    def endpoint(self) -> str:
        """The base URL without credentials or query, for records."""
        parts = urlsplit(self.base_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"

    def describe(self) -> dict[str, Any]:
        """What a record says of this judge (never its key, nor the key's variable's value)."""
        return {
            "name": self.name, "kind": self.kind, "model": self.model, "endpoint": self.endpoint,
            "temperature": self.temperature, "seed": self.seed, "max_tokens": self.max_tokens,
        }  # fmt: skip
