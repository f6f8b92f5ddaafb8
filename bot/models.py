"""Domain models: what a job is, where it came from and what it produced.

A job holds ids, never live platform objects, so it can be stored, retried,
resumed and delivered by a process that did not receive it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_job_id() -> str:
    """A short random id: 12 hex characters keeps button ids far below 64 bytes."""
    return secrets.token_hex(6)


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class DeliveryState(StrEnum):
    NONE = "none"  # nothing to deliver yet
    PENDING = "pending"  # final outcome stored, not yet shown to the user
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"  # the platform refused it repeatedly (bot removed from the chat…)
    HELD = "held"  # a private result the user's private chat refused (DMs closed): kept, shown by /show


JobKind = Literal["txt2img", "img2img", "upscale", "edit"]


class Destination(BaseModel):
    """Where a job came from and where its answers go, as plain ids."""

    model_config = ConfigDict(frozen=True)

    platform: str
    server_id: str
    channel_id: str
    user_id: str
    user_name: str = ""
    source_message_id: str | None = None
    locale: str = "en"  # the language of the job's messages (bot.i18n.LANGUAGES)
    private: bool = False  # results go to the user's private chat (DM); the channel is only told it is done

    @property
    def queue_key(self) -> str:
        """The per-server queue this destination belongs to."""
        return f"{self.platform}:{self.server_id}"


class Hires(BaseModel):
    """A1111/Forge hires fix: a second pass at a larger size (txt2img's `enable_hr` and `hr_*` fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upscaler: str = Field(default="Latent", description="hr_upscaler: a latent mode or an installed upscaler")
    scale: float = Field(default=2.0, ge=1, le=4, description="hr_scale, when resize_x/resize_y are 0")
    resize_x: int = Field(default=0, ge=0, le=4096, description="hr_resize_x: target width (0: from scale)")
    resize_y: int = Field(default=0, ge=0, le=4096, description="hr_resize_y: target height (0: from scale)")
    denoising_strength: float = Field(default=0.5, ge=0, le=1)
    second_pass_steps: int = Field(default=0, ge=0, le=500, description="hr_second_pass_steps: 0 = the steps")

    def target(self, width: int, height: int) -> tuple[int, int]:
        """The final image size, as A1111's calculate_target_resolution (then whole latents: multiples of 8)."""
        if not self.resize_x and not self.resize_y:
            x, y = int(width * self.scale), int(height * self.scale)
        elif not self.resize_y:
            x, y = self.resize_x, self.resize_x * height // width
        elif not self.resize_x:
            x, y = self.resize_y * width // height, self.resize_y
        else:  # covers the box, then is cropped to it
            x, y = self.resize_x, self.resize_y
        return x // 8 * 8, y // 8 * 8

    def steps(self, first_pass: int) -> int:
        return self.second_pass_steps or first_pass


class GenerationRequest(BaseModel):
    """A fully resolved request: every value the backend needs, nothing left to a default."""

    model_config = ConfigDict(frozen=True)

    kind: JobKind = "txt2img"
    preset: str
    user_prompt: str
    prompt: str
    negative_prompt: str = ""
    checkpoint: str
    sampler: str
    scheduler: str | None = None
    steps: int
    cfg_scale: float
    distilled_cfg_scale: float | None = None
    width: int
    height: int
    seed: int
    count: int = 1
    subseed: int | None = None
    subseed_strength: float = 0.0
    denoising_strength: float | None = None
    source_image_id: str | None = None
    upscale_factor: float = 2.0
    upscaler: str = "R-ESRGAN 4x+"
    override_settings: dict[str, Any] = Field(default_factory=dict)
    parent_job_id: str | None = None
    parent_index: int | None = None
    expansion: str | None = None  # what wildcards chose for this job, e.g. "red (prompt 1 of 3)"
    hires: Hires | None = None  # txt2img only
    # edit: the stored images (kind "source") the instruction (`user_prompt`) refers to, in order; the first is changed
    reference_image_ids: tuple[str, ...] = ()

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000

    @property
    def step_megapixels(self) -> float:
        """Sampling work of one image (steps × megapixels, at least ¼ MP), the hires pass at its size included."""
        work = max(1, self.steps) * max(self.megapixels, 0.25)
        if self.hires is not None and self.kind == "txt2img":
            width, height = self.hires.target(self.width, self.height)
            work += self.hires.steps(self.steps) * width * height / 1_000_000
        return work


class Job(BaseModel):
    """One generation from request to delivery. Every state change is stored before it is told."""

    id: str = Field(default_factory=new_job_id)
    request: GenerationRequest
    destination: Destination
    state: JobState = JobState.QUEUED
    cost: float = 0.0
    priority: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    backend: str | None = None
    backend_task_id: str | None = None
    attempts: int = 0
    error: str | None = None
    delivery: DeliveryState = DeliveryState.NONE
    # Platform message ids and tokens the adapters need later (status message, interaction token...).
    messages: dict[str, str] = Field(default_factory=dict)

    @property
    def queue_key(self) -> str:
        return self.destination.queue_key


class StoredImage(BaseModel):
    """An image on disk with the facts needed to show, vary or upscale it later."""

    id: str
    job_id: str | None
    index: int
    path: str
    sha256: str
    width: int
    height: int
    seed: int | None = None
    infotext: str = ""
    kind: Literal["result", "source"] = "result"


class Progress(BaseModel):
    """What a backend says about the job it is running."""

    fraction: float = 0.0
    step: int | None = None
    steps: int | None = None
    eta_seconds: float | None = None
    preview: bytes | None = None
    note: str = ""  # e.g. "loading model", "position 4 in the Horde queue"
    # A note from the catalogs (`progress.horde_position`), rendered in the job's language by the presenter.
    note_key: str | None = None
    note_params: dict[str, object] = Field(default_factory=dict)


class GeneratedImage(BaseModel):
    data: bytes
    seed: int | None = None
    infotext: str = ""


class GenerationResult(BaseModel):
    images: list[GeneratedImage]
    interrupted: bool = False
