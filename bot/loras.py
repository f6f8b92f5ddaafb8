"""LoRAs an admin offers per preset: `--lora name[:weight]` adds the tag and its trigger words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.errors import InvalidRequest

PICK = re.compile(r"^([A-Za-z0-9_.-]{1,64})(?::(-?\d+(?:\.\d+)?))?$")


class LoraChoice(BaseModel):
    """`[presets.x.loras.detail] file = "add_detail", weight = 0.6, triggers = ["detailed"]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(min_length=1, description="the LoRA's name in the backend's list (no extension)")
    weight: float = Field(default=0.8, ge=-5, le=5)
    min_weight: float = Field(default=0.0, ge=-5, le=5)
    max_weight: float = Field(default=1.5, ge=-5, le=5)
    triggers: list[str] = Field(default_factory=list, description="words added to the prompt")
    description: str = ""

    @model_validator(mode="after")
    def _weight_in_bounds(self) -> LoraChoice:
        if not self.min_weight <= self.weight <= self.max_weight:
            raise ValueError(f"weight {self.weight} must be within min_weight..max_weight")
        return self


@dataclass(frozen=True)
class Pick:
    """One LoRA a user picked, with the weight to use."""

    name: str
    choice: LoraChoice
    weight: float

    @property
    def tag(self) -> str:
        return f"<lora:{self.choice.file}:{self.weight:g}>"


def parse_picks(text: str, loras: dict[str, LoraChoice], preset: str) -> list[Pick]:
    """`detail:0.5, style` (the text syntax repeats --lora; Discord takes a comma list) against the preset's list."""
    picks: dict[str, Pick] = {}
    offered = ", ".join(sorted(loras)) or "—"
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        match = PICK.match(raw)
        choice = loras.get(match.group(1).lower()) if match else None
        if match is None or choice is None:
            raise InvalidRequest.of("error.lora_unknown", lora=raw[:40], name=preset, allowed=offered)
        weight = float(match.group(2)) if match.group(2) is not None else choice.weight
        if not choice.min_weight <= weight <= choice.max_weight:
            raise InvalidRequest.of(
                "error.lora_weight", lora=match.group(1), weight=weight, low=choice.min_weight, high=choice.max_weight
            )
        picks[match.group(1).lower()] = Pick(match.group(1).lower(), choice, weight)
    return list(picks.values())


def apply(prompt: str, picks: list[Pick]) -> str:
    """The prompt with each pick's trigger words (once) and tag appended."""
    words = [prompt]
    present = prompt.lower()
    for pick in picks:
        words += [word for word in pick.choice.triggers if word.lower() not in present]
        words.append(pick.tag)
    return ", ".join(word for word in words if word)
