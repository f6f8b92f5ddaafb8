"""State of the Discord simulator: messages, interactions, recorded requests and a controllable clock."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from simulators.discord_guilds import SimGuild

DISCORD_EPOCH_MS = 1420070400000
TOKEN_LIFETIME = 15 * 60
CALLBACK_DEADLINE = 3.0
UPLOAD_LIMIT = 10 * 1024 * 1024
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}


@dataclass
class Recorded:
    """One request the bot sent."""

    method: str
    path: str
    payload: dict[str, Any]
    files: list[tuple[str, bytes]]
    status: int = 200


@dataclass
class SimMessage:
    """A message as Discord stores it: the bot's (author None, `files` it uploaded) or a user's (`author`, and
    `attachments` / `embeds` as Discord describes them). The bot's files are served from the simulator's CDN."""

    id: str
    channel_id: str
    content: str = ""
    files: list[tuple[str, bytes]] = field(default_factory=list)
    components: list[Any] = field(default_factory=list)
    ephemeral: bool = False
    deleted: bool = False
    edits: int = 0
    allowed_mentions: Any = None
    author: dict[str, Any] | None = None  # None: the bot
    attachments: list[dict[str, Any]] = field(default_factory=list)  # a user's uploads (attachment objects)
    embeds: list[dict[str, Any]] = field(default_factory=list)
    cdn: str = ""  # the simulator's base URL, for the bot's files

    def custom_ids(self) -> list[list[str]]:
        return [[c.get("custom_id", "") for c in row.get("components", [])] for row in self.components]

    def file_key(self, index: int) -> str:
        return f"m{self.id}-{index}-{self.files[index][0]}"

    def _files_json(self) -> list[dict[str, Any]]:
        files = []
        for index, (name, data) in enumerate(self.files):
            url = f"{self.cdn}/cdn/{self.file_key(index)}" if self.cdn else f"http://x/{name}"
            item = {"id": f"{self.id}{index}", "filename": name, "size": len(data), "url": url, "proxy_url": url}
            files.append({**item, **image_facts(name, data)})
        return files

    def wire(self, app_id: str) -> dict[str, Any]:
        author = self.author or {
            "id": app_id, "username": "imagebridge", "discriminator": "0", "avatar": None, "bot": True
        }  # fmt: skip
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "type": 0,
            "content": self.content,
            "author": author,
            "attachments": self._files_json() + self.attachments,
            "embeds": self.embeds,
            "components": self.components,
            "flags": 64 if self.ephemeral else 0,
            "timestamp": "2026-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
        }


def image_facts(name: str, data: bytes) -> dict[str, Any]:
    """`content_type`, `width` and `height` as Discord reports them for an uploaded file (sizes for images only)."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    content_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
    facts: dict[str, Any] = {"content_type": content_type}
    if content_type.startswith("image/"):
        try:
            with Image.open(io.BytesIO(data)) as image:
                facts.update(width=image.width, height=image.height)
        except Exception:  # Discord still labels it by its name; it has no size
            pass
    return facts


@dataclass
class SimInteraction:
    id: str
    token: str
    channel_id: str
    created: float
    answered: bool = False
    late: bool = False
    response_id: str | None = None
    ephemeral: bool = False
    source_message_id: str | None = None
    choices: list[dict[str, Any]] | None = None
    kind: int = 2  # 2 command, 3 component, 4 autocomplete, 5 modal submit: which callback types fit (modals.py)
    modal: dict[str, Any] | None = None  # the modal this interaction was answered with (callback type 9)
    user_id: str = ""
    loading: bool = False  # answered with DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE (5) and not yet followed up

    @property
    def autocomplete(self) -> bool:
        """An APPLICATION_COMMAND_AUTOCOMPLETE (type 4): only a type 8 answer fits it."""
        return self.kind == 4


class SimState:
    """Everything the simulator knows; tests read it to see what a user would see."""

    def __init__(self, app_id: str = "1000") -> None:
        self.app_id = app_id
        self.offset = 0.0
        self._ids = itertools.count(1)
        self.messages: dict[str, SimMessage] = {}
        self.interactions: dict[str, SimInteraction] = {}
        self.requests: list[Recorded] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.attachments: dict[str, bytes] = {}
        self.attachment_types: dict[str, str] = {}  # CDN name -> content type served
        self.guilds: dict[str, SimGuild] = {"500": SimGuild("500")}  # the servers the bot is in
        self.rate_limit_left = 0
        self.retry_after = 0.05
        self.retry_after_now = 0.0  # set by a bucket that ran out
        self.changed = asyncio.Condition()

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock (token lifetimes, callback deadlines)."""
        self.offset += seconds

    def snowflake(self) -> str:
        ms = int(self.now() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def token_expired(self, token: str) -> bool:
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        return interaction is None or self.now() - interaction.created > TOKEN_LIFETIME

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, predicate: Callable[[], Any], limit: float = 10.0) -> Any:
        """Wait until predicate() is truthy; returns its value."""
        async with asyncio.timeout(limit):
            async with self.changed:
                while not (value := predicate()):
                    await self.changed.wait()
                return value

    def visible(self, channel_id: str | None = None) -> list[SimMessage]:
        return [
            m for m in self.messages.values() if not m.deleted and (channel_id is None or m.channel_id == channel_id)
        ]

    def requests_to(self, fragment: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if fragment in r.path and (method is None or r.method == method)]
