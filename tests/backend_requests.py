"""A resolved request for backend tests."""

from __future__ import annotations

from bot.models import GenerationRequest


def request(**changes: object) -> GenerationRequest:
    base: dict[str, object] = dict(
        preset="sd15", user_prompt="a cat", prompt="a cat", checkpoint="v1-5-pruned-emaonly.safetensors [6ce0161689]",
        sampler="Euler a", steps=6, cfg_scale=7.0, width=64, height=64, seed=42,
    )  # fmt: skip
    return GenerationRequest.model_validate(base | changes)
