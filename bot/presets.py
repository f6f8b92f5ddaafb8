"""Presets: the only way a user picks a model. They hold the model's quirks so users never need to."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.errors import InvalidRequest
from bot.loras import LoraChoice
from bot.models import Hires

LORA_TAG = re.compile(r"<lora:([^:>]+)(?::[^>]*)?>", re.IGNORECASE)
ASPECT = re.compile(r"^(\d{1,2}):(\d{1,2})$")
DEFAULT_ASPECTS = ["1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16"]
MAX_REFERENCES = 3  # the most images one /edit may refer to, on any platform


def parse_aspect(value: str) -> tuple[int, int]:
    match = ASPECT.match(value.strip())
    if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise ValueError(f"aspect ratio must look like 16:9, got {value!r}")
    return int(match.group(1)), int(match.group(2))


def size_for(base: int, aspect: str) -> tuple[int, int]:
    """Width and height of about base² pixels at the aspect ratio, each a multiple of 64."""
    w, h = parse_aspect(aspect)
    width = base * math.sqrt(w / h)
    height = base * math.sqrt(h / w)
    return max(64, round(width / 64) * 64), max(64, round(height / 64) * 64)


class Preset(BaseModel):
    """A named model configuration an admin sets up once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    backend: str = Field(default="a1111", description="backend kind or backend name that serves it")
    checkpoint: str
    sampler: str = "Euler a"
    scheduler: str | None = None
    steps: int = Field(default=25, ge=1, le=500)
    max_steps: int = Field(default=50, ge=1, le=500)
    cfg_scale: float = Field(default=7.0, ge=0, le=30)
    distilled_cfg_scale: float | None = Field(default=None, ge=0, le=30)
    base_resolution: int = Field(default=1024, ge=64, le=4096)
    aspect_ratios: list[str] = Field(default_factory=lambda: list(DEFAULT_ASPECTS))
    max_images: int = Field(default=4, ge=1, le=10)
    prompt_template: str = "{prompt}"
    negative_template: str = "{negative}"
    default_negative: str = ""
    override_settings: dict[str, Any] = Field(default_factory=dict)
    nsfw: bool = False
    lora_policy: Literal["allow", "strip", "deny"] = "allow"
    lora_allowlist: list[str] = Field(default_factory=list)
    cost_weight: float = Field(default=1.0, gt=0)
    upscaler: str = "R-ESRGAN 4x+"
    upscale_factor: float = Field(default=2.0, ge=1, le=4)
    variation_strength: float = Field(default=0.15, gt=0, le=1)
    denoising_strength: float = Field(default=0.6, gt=0, le=1)
    loras: dict[str, LoraChoice] = Field(default_factory=dict, description="LoRAs users pick with --lora")
    max_references: int = Field(
        default=0, ge=0, le=MAX_REFERENCES, description="/edit: how many reference images it takes (0: cannot edit)"
    )

    @field_validator("loras")
    @classmethod
    def _lora_names(cls, value: dict[str, LoraChoice]) -> dict[str, LoraChoice]:
        return {name.lower(): choice for name, choice in value.items()}

    hires: Hires | None = Field(default=None, description="A1111/Forge hires fix for txt2img ([presets.X.hires])")

    @field_validator("base_resolution")
    @classmethod
    def _multiple_of_64(cls, value: int) -> int:
        if value % 64:
            raise ValueError(f"must be a multiple of 64, e.g. {round(value / 64) * 64 or 64}")
        return value

    @field_validator("aspect_ratios")
    @classmethod
    def _aspects(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one aspect ratio such as 1:1")
        for item in value:
            parse_aspect(item)
        return value

    @field_validator("prompt_template")
    @classmethod
    def _prompt_slot(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError("must contain {prompt}")
        return value

    @model_validator(mode="after")
    def _steps_in_range(self) -> Preset:
        if self.steps > self.max_steps:
            raise ValueError(f"steps ({self.steps}) must not exceed max_steps ({self.max_steps})")
        return self

    def size(self, aspect: str | None) -> tuple[int, int]:
        """The pixel size for an allowed aspect ratio; other ratios are refused with the allowed list."""
        chosen = aspect or self.aspect_ratios[0]
        if chosen not in self.aspect_ratios:
            raise InvalidRequest.of(
                "error.aspect_preset", aspect=chosen, name=self.name, allowed=", ".join(self.aspect_ratios)
            )
        return size_for(self.base_resolution, chosen)

    def render_prompt(self, prompt: str) -> str:
        return self.prompt_template.replace("{prompt}", self.apply_lora_policy(prompt))

    def render_negative(self, negative: str | None) -> str:
        text = negative if negative is not None else self.default_negative
        if "{negative}" in self.negative_template:
            rendered = self.negative_template.replace("{negative}", text)
        else:
            rendered = ", ".join(part for part in (self.negative_template, text) if part)
        return rendered.strip().strip(",").strip()

    def apply_lora_policy(self, prompt: str) -> str:
        """Enforce the LoRA policy: `allow` all, `strip` unlisted tags, `deny` a prompt with unlisted tags."""
        if self.lora_policy == "allow" and not self.lora_allowlist:
            return prompt
        allowed = {name.lower() for name in self.lora_allowlist} | {c.file.lower() for c in self.loras.values()}
        unlisted = [m.group(1) for m in LORA_TAG.finditer(prompt) if m.group(1).lower() not in allowed]
        if not unlisted or self.lora_policy == "allow":
            return prompt
        if self.lora_policy == "deny":
            listed = ", ".join(self.lora_allowlist) or "none"
            raise InvalidRequest.of(
                "error.lora_denied", loras=", ".join(sorted(set(unlisted))), name=self.name, allowed=listed
            )
        kept = LORA_TAG.sub(lambda m: m.group(0) if m.group(1).lower() in allowed else "", prompt)
        return re.sub(r"\s{2,}", " ", kept).strip()

    def cost(self, steps: int, width: int, height: int, count: int, hires: bool = False, references: int = 0) -> float:
        """Quota cost: steps × megapixels × images × the preset's weight, plus the hires pass at its size.

        An edit's reference images are sampled alongside every image it makes (Kontext and Qwen-Image-Edit put
        their tokens beside the image's): each counts as one more image's worth, so an edit with N references
        costs (1 + N) times the same generation.
        """
        work = steps * width * height
        if hires and self.hires is not None:
            hires_width, hires_height = self.hires.target(width, height)
            work += self.hires.steps(steps) * hires_width * hires_height
        return round(work / 1_000_000 * count * (1 + references) * self.cost_weight, 3)
