"""Ports: what the core needs from backends, storage and chat platforms, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Protocol, runtime_checkable

from bot.models import DeliveryState, GenerationRequest, GenerationResult, Job, JobState, Progress, StoredImage
from bot.replies import Reply

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Inventory:
    """What a backend has, as its own list endpoints report it, in the names presets use.

    A field left None is something this backend does not list (an OpenAI model has no checkpoints to
    choose from): routing does not judge it. An empty set means "has none".
    """

    checkpoints: frozenset[str] | None = None  # titles or file names (A1111 titles keep their "[hash]")
    modules: frozenset[str] | None = None  # VAEs and text encoders: Forge sd-modules, A1111 sd-vae, ComfyUI vae/clip
    loras: frozenset[str] | None = None
    samplers: frozenset[str] | None = None  # the names presets use (A1111 names; ComfyUI's translated)
    schedulers: frozenset[str] | None = None  # lower-cased names and labels
    node_types: frozenset[str] | None = None  # ComfyUI node classes
    upscalers: frozenset[str] | None = None
    lacks: tuple[tuple[str, str], ...] = ()  # (job kind, why this backend cannot do it here), e.g. a missing node


@dataclass
class BackendHealth:
    """What a health check found."""

    ok: bool
    models: list[str] = field(default_factory=list)
    loaded_model: str | None = None
    detail: str = ""
    inventory: Inventory | None = None  # None: the backend reports nothing it has (judged by kind only)


@dataclass(frozen=True)
class Capabilities:
    """What a backend kind can do at all; `Inventory.lacks` says what one server cannot do today."""

    img2img: bool = True
    upscale: bool = True
    progress: bool = True
    previews: bool = True
    cancel: bool = True
    max_batch: int = 8
    edits: bool = False  # edit by instruction with reference images (`edit()` on the backend)
    variations: bool = False  # V buttons: a variation seed (subseed) that really changes the image
    hires: bool = False  # A1111/Forge hires fix (txt2img `enable_hr`): a preset with `hires` runs only here
    max_references: int = 0  # the most reference images one edit may have here (0 when it cannot edit)


class Backend(Protocol):
    """One image-generation server."""

    name: str
    kind: str
    capabilities: Capabilities

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        """Run the request to completion and return its images. Raises BackendError on failure."""
        ...

    async def interrupt(self, job_id: str) -> None:
        """Stop the job with this id if the backend is running it (cancel)."""
        ...

    async def health(self) -> BackendHealth:
        """Ask whether the backend answers and which models it has."""
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...


class Editor(Protocol):
    """A backend whose `capabilities.edits` is true: it edits images by instruction, with reference images."""

    async def edit(
        self, job_id: str, request: GenerationRequest, sources: list[bytes], on_progress: ProgressCallback
    ) -> GenerationResult:
        """Change `sources[0]` as `request.prompt` says (the others are references). Raises BackendError."""
        ...


@dataclass(frozen=True)
class QuotaLimits:
    """Daily limits in cost units that apply to one reservation; None means unlimited."""

    user: float | None
    server: float | None
    day: date


@dataclass(frozen=True)
class QuotaUsage:
    user_used: float
    server_used: float
    user_limit: float | None
    server_limit: float | None


class JobStore(Protocol):
    """Jobs and the quota ledger, written atomically together."""

    async def create(self, job: Job, limits: QuotaLimits | None, max_queued: int | None = None) -> None:
        """Insert a queued job and reserve its cost, unless its user already has `max_queued` jobs waiting.

        Raises QuotaExceeded or InvalidRequest (too many waiting) without writing anything.
        """
        ...

    async def create_all(self, jobs: Sequence[Job], limits: QuotaLimits | None, max_queued: int | None = None) -> None:
        """Insert several jobs in one transaction: all of them with their reservations, or none (the first refusal)."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """One job by id."""
        ...

    async def save(self, job: Job) -> None:
        """Write the job's current state, timings, backend, error, delivery and message ids."""
        ...

    async def finish(self, job: Job, images: Sequence[StoredImage], actual_cost: float | None) -> None:
        """Store a final state with its images and settle (or refund) the reservation, in one transaction."""
        ...

    async def set_request(self, job: Job) -> None:
        """Write the job's request again: it changed before the job ran again (a new seed after a black image)."""
        ...

    async def set_delivery(self, job_id: str, state: DeliveryState) -> None:
        """Mark what the user has been shown."""
        ...

    async def set_message(self, job_id: str, key: str, value: str) -> None:
        """Remember a platform message id or token for this job."""
        ...

    async def in_states(self, states: Sequence[JobState]) -> list[Job]:
        """Jobs in these states, oldest first."""
        ...

    async def undelivered(self) -> list[Job]:
        """Final jobs whose outcome was not yet delivered."""
        ...

    async def history(self, platform: str, user_id: str, limit: int) -> list[Job]:
        """A user's most recent jobs."""
        ...

    async def usage(self, platform: str, server_id: str, user_id: str, day: date) -> tuple[float, float]:
        """(user, server) cost reserved or spent on that day."""
        ...

    async def images(self, job_id: str) -> list[StoredImage]:
        """A job's result images in order."""
        ...

    async def image(self, image_id: str) -> StoredImage | None:
        """One image (result or source) by id."""
        ...

    async def add_source_image(self, image: StoredImage) -> None:
        """Record an uploaded img2img source image."""
        ...

    async def record_timing(self, preset: str, seconds_per_step: float) -> None:
        """Fold one measured seconds-per-step into the preset's estimate."""
        ...

    async def timings(self) -> dict[str, float]:
        """Estimated seconds per step (at one megapixel) per preset."""
        ...


class ImageFiles(Protocol):
    """Image bytes in a folder or an S3-compatible bucket (storage/images.py); paths are what `write` returned."""

    async def write(self, folder: str, name: str, data: bytes) -> str:
        """Write the file and return its path."""
        ...

    async def read(self, path: str) -> bytes:
        """Read a stored file."""
        ...

    async def delete(self, path: str) -> None:
        """Remove a file if it exists."""
        ...

    async def exists(self, path: str) -> bool:
        """Whether the file is there (the gallery answers 404 for an image pruned meanwhile)."""
        ...


@dataclass
class UserRecord:
    platform: str
    user_id: str
    banned: bool = False
    role: str | None = None
    daily_limit: float | None = None

    def copy(self) -> UserRecord:
        return replace(self)


@dataclass
class ServerSettings:
    platform: str
    server_id: str
    paused: bool = False
    default_preset: str | None = None
    daily_limit: float | None = None
    role_limits: dict[str, float] = field(default_factory=dict)
    channel_presets: dict[str, list[str]] = field(default_factory=dict)
    language: str | None = None
    banned: list[str] = field(default_factory=list)  # user ids a server admin banned here
    user_limits: dict[str, float] = field(default_factory=dict)  # personal daily limits set by a server admin
    blocked_words: list[str] = field(default_factory=list)  # this server's own, beside [moderation]

    def copy(self) -> ServerSettings:
        """A copy to change and save; the lists and maps are copied too."""
        return replace(
            self,
            role_limits=dict(self.role_limits),
            channel_presets={channel: list(names) for channel, names in self.channel_presets.items()},
            banned=list(self.banned),
            user_limits=dict(self.user_limits),
            blocked_words=list(self.blocked_words),
        )


class AccountStore(Protocol):
    """Users (role, ban, personal limit) and per-server settings.

    Every command reads these, so reads return the shared cached record: read it, never change it. To change
    one, take `.copy()`, change the copy and save it.
    """

    async def user(self, platform: str, user_id: str) -> UserRecord:
        """The user's record (a default one when unknown); shared, read-only."""
        ...

    async def save_user(self, record: UserRecord) -> None:
        """Insert or replace."""
        ...

    async def server(self, platform: str, server_id: str) -> ServerSettings:
        """The server's settings (defaults when unknown); shared, read-only."""
        ...

    async def save_server(self, settings: ServerSettings) -> None:
        """Insert or replace."""
        ...


class Undeliverable(Exception):
    """Raised by `Outbound.deliver` when trying again cannot help: the chat is gone, or the platform refused the
    result for good (the user has been told where the platform still lets the bot write)."""


@runtime_checkable
class ChatRecords(Protocol):
    """What delivery remembers about chats in the store: ids that moved, recent sends, refunds."""

    async def move_chat(self, platform: str, old: str, new: str) -> list[str]:
        """Point every job of chat `old` at chat `new` (a Telegram group became a supergroup); their ids."""
        ...

    async def record_sends(self, platform: str, sends: Sequence[tuple[str, float, int]]) -> None:
        """Remember (chat, unix time, message count) of messages just sent; older ones are forgotten."""
        ...

    async def recent_sends(self, platform: str, since: float) -> list[tuple[str, float, int]]:
        """(chat, unix time, count) of the messages sent since `since`."""
        ...

    async def refund(self, job_id: str) -> None:
        """Give back what the job was charged (its result never reached the user)."""
        ...

    async def set_messages(self, job_id: str, values: dict[str, str]) -> None:
        """Remember several platform message ids or tokens of a job in one transaction."""
        ...


class Outbound(Protocol):
    """A chat platform's way to show job updates. Implementations must not raise for platform errors.

    An Outbound with `owns_status = True` posts a job's status message itself: the engine publishes the queued
    status when the job is stored, and the adapter that took the command does not post it.
    """

    platform: str

    def min_interval(self, job: Job) -> float:
        """Seconds between two status edits for this job's destination."""
        ...

    async def update_status(self, job: Job, reply: Reply) -> bool | None:
        """Edit (or first send) the job's status message: queue position, progress, preview.

        False when the platform skipped it for now (a busy chat): the notifier shows the newest state later.
        """
        ...

    async def deliver(self, job: Job, reply: Reply) -> bool:
        """Show the final outcome (images or failure). Returns True once the user has it."""
        ...


@dataclass(frozen=True)
class InboxEntry:
    """A command a platform handed over that was not handled yet: its chat, its message and the update."""

    chat_id: str
    message_id: str
    payload: str


class Inbox(Protocol):
    """Commands kept from the moment a platform hands them over until they are handled, so a crash loses none."""

    async def record(self, platform: str, chat_id: str, message_id: str, payload: str) -> bool:
        """Keep a command; False when this (chat, message) was received before (a repeat, to be skipped)."""
        ...

    async def settle(self, platform: str, chat_id: str, message_id: str) -> None:
        """The command was handled (or failed for good): never replay it."""
        ...

    async def pending(self, platform: str) -> list[InboxEntry]:
        """Commands received but not handled before the last stop, oldest first (those that made a job are settled)."""
        ...


@dataclass(frozen=True)
class UserPrefs:
    """A user's /settings on one server: what /imagine uses when the command does not say. None = not set."""

    platform: str
    server_id: str
    user_id: str
    preset: str | None = None
    aspect: str | None = None
    steps: int | None = None
    negative: str | None = None
    private: bool = False  # kept for private delivery (results by DM); not offered by /settings yet
    language: str | None = None


class UserSettingsStore(Protocol):
    """Per-user, per-server settings (/settings)."""

    async def get(self, platform: str, server_id: str, user_id: str) -> UserPrefs:
        """The user's settings here (all unset when never saved)."""
        ...

    async def save(self, prefs: UserPrefs) -> None:
        """Insert or replace."""
        ...
