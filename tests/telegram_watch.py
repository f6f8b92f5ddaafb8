"""Telegram bench helpers for the inbox tests: see when the adapter is done with a message."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field

from pydantic import SecretStr

from adapters.telegram import create
from bot.app import build_app
from bot.ports import Inbox, InboxEntry
from tests.conftest import make_settings
from tests.test_telegram_support import JOB_ID, Bench


@dataclass
class SettleWatch:
    """The real inbox, plus a condition to wait on until the adapter settles a (chat, message)."""

    inner: Inbox
    recorded: list[tuple[str, str]] = field(default_factory=list)
    settled: set[tuple[str, str]] = field(default_factory=set)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    failures: int = 0  # the next `failures` records fail as a locked database would

    async def record(self, platform: str, chat_id: str, message_id: str, payload: str) -> bool:
        self.recorded.append((chat_id, message_id))
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return await self.inner.record(platform, chat_id, message_id, payload)

    async def settle(self, platform: str, chat_id: str, message_id: str) -> None:
        await self.inner.settle(platform, chat_id, message_id)
        async with self.changed:
            self.settled.add((chat_id, message_id))
            self.changed.notify_all()

    async def pending(self, platform: str) -> list[InboxEntry]:
        return await self.inner.pending(platform)

    async def handled(self, chat_id: int, message_id: int, within: float = 10.0) -> None:
        """Wait until the adapter has finished with this message."""
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: (str(chat_id), str(message_id)) in self.settled)


async def handled_or_queued(bench: Bench, watch: SettleWatch, chat_id: int, message_id: int) -> None:
    """Wait until the adapter is done with the message, or a job was queued in the chat (code without an inbox)."""
    queued = asyncio.ensure_future(
        bench.sim.wait_for(lambda: any(JOB_ID.search(m.text or "") for m in bench.sim.visible(chat_id)))
    )
    done = asyncio.ensure_future(watch.handled(chat_id, message_id))
    finished, waiting = await asyncio.wait({queued, done}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    for task in waiting:
        task.cancel()
    assert finished, f"message {message_id} in chat {chat_id} was neither handled nor queued"


async def open_watched(bench: Bench) -> SettleWatch:
    """`bench.open()`, with the App's inbox wrapped in a SettleWatch before the platform starts."""
    settings = make_settings(bench.data_dir, **bench.overrides)
    bench.platform = create(settings, SecretStr(bench.sim.token), bench.config)
    bench.app = await build_app(settings, [bench.platform.outbound], backends=[bench.backend])
    inner = getattr(bench.app.services, "inbox", None)
    assert inner is not None, "the App has no inbox"
    watch = SettleWatch(inner)
    bench.app.services.inbox = watch
    await bench.app.start()
    await bench.platform.start(bench.app.services)
    return watch


async def count(bench: Bench, sql: str) -> int:
    assert bench.app is not None
    row = await bench.app.db.fetchone(sql)
    return int(row[0]) if row is not None else 0
