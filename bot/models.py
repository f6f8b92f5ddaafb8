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


JobKind = Literal["txt2img", "img2img", "upscale"]


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

    @property
    def queue_key(self) -> str:
        """The per-server queue this destination belongs to."""
        return f"{self.platform}:{self.server_id}"


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

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000


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


class GeneratedImage(BaseModel):
    data: bytes
    seed: int | None = None
    infotext: str = ""


class GenerationResult(BaseModel):
    images: list[GeneratedImage]
    interrupted: bool = False
