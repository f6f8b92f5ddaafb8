"""State of the Discord simulator: messages, interactions, recorded requests and a controllable clock."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.discord_guilds import SimGuild

DISCORD_EPOCH_MS = 1420070400000
TOKEN_LIFETIME = 15 * 60
CALLBACK_DEADLINE = 3.0
UPLOAD_LIMIT = 10 * 1024 * 1024


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
    id: str
    channel_id: str
    content: str = ""
    files: list[tuple[str, bytes]] = field(default_factory=list)
    components: list[Any] = field(default_factory=list)
    ephemeral: bool = False
    deleted: bool = False
    edits: int = 0
    allowed_mentions: Any = None

    def custom_ids(self) -> list[list[str]]:
        return [[c.get("custom_id", "") for c in row.get("components", [])] for row in self.components]

    def wire(self, app_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "type": 0,
            "content": self.content,
            "author": {"id": app_id, "username": "imagebridge", "discriminator": "0", "avatar": None, "bot": True},
            "attachments": [
                {"id": f"{self.id}{i}", "filename": n, "size": len(d), "url": f"http://x/{n}", "proxy_url": "x"}
                for i, (n, d) in enumerate(self.files)
            ],
            "embeds": [],
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
    autocomplete: bool = False  # an APPLICATION_COMMAND_AUTOCOMPLETE (type 4): only a type 8 answer fits it


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
