"""Shared bench for the Telegram tests: the Bot API simulator, the real PTB Application and the App."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.telegram import TelegramPlatform, create
from bot.app import App, build_app
from bot.config_telegram import TelegramConfig
from simulators.telegram import TelegramSimulator
from simulators.telegram_state import ChatMessage
from tests.conftest import make_settings
from tests.fakes import FakeBackend

pytestmark = pytest.mark.telegram

JOB_ID = re.compile(r"job ([0-9a-f]{12})")
PRIVATE = 42
GROUP = -1001


@dataclass
class Bench:
    """One simulator, one App and one TelegramPlatform; `restart()` builds new ones on the same data dir."""

    sim: TelegramSimulator
    backend: FakeBackend
    data_dir: Path
    config: TelegramConfig
    overrides: dict[str, Any] = field(default_factory=dict)
    more_backends: Callable[[], list[Any]] = list  # built anew at each open (a restart closes the old ones)
    app: App | None = None
    platform: TelegramPlatform | None = None

    async def open(self) -> None:
        settings = make_settings(self.data_dir, **self.overrides)
        self.platform = create(settings, SecretStr(self.sim.token), self.config)
        backends = [self.backend, *self.more_backends()]
        self.app = await build_app(settings, [self.platform.outbound], backends=backends)
        await self.app.start()
        await self.platform.start(self.app.services)

    async def close(self) -> None:
        if self.platform is not None:
            await self.platform.stop()
        if self.app is not None:
            await self.app.stop()
        self.platform = self.app = None

    async def restart(self) -> None:
        await self.close()
        await self.open()

    @property
    def outbound(self) -> Any:
        assert self.platform is not None
        return self.platform.outbound

    async def job_from(self, chat_id: int, after: int = 0, within: float = 10.0) -> str:
        """The id of the first job named in a bot message in the chat with a message id above `after`."""
        found: list[str] = []

        def named() -> bool:
            for message in self.sim.visible(chat_id):
                match = JOB_ID.search(message.text or message.caption or "")
                if message.message_id > after and match:
                    found.append(match.group(1))
                    return True
            return False

        await self.sim.wait_for(named, within)
        return found[0]

    async def finished(self, job_id: str, within: float = 10.0) -> None:
        assert self.app is not None
        async with asyncio.timeout(within):
            await self.app.engine.finished_event(job_id).wait()

    async def imagine(self, chat_id: int, user_id: int, text: str, reply_to: int | None = None) -> str:
        before = max((m.message_id for m in self.sim.visible(chat_id)), default=0)
        sent = await self.sim.send_text(chat_id, user_id, text, reply_to)
        job_id = await self.job_from(chat_id, max(before, sent.message_id))
        await self.finished(job_id)
        return job_id

    def results(self, chat_id: int) -> list[ChatMessage]:
        return [m for m in self.sim.visible(chat_id) if m.photo is not None or m.buttons]


def keyboard_message(bench: Bench, chat_id: int, job_id: str) -> ChatMessage:
    return next(m for m in bench.sim.visible(chat_id) if any(job_id in data for data in m.buttons))


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    sim = TelegramSimulator(time_scale=0.02)
    await sim.start()
    sim.add_chat(PRIVATE)
    sim.add_chat(GROUP, title="artists", admins=(1,))
    config = TelegramConfig(
        enabled=True,
        api_base_url=sim.api_base_url,
        file_base_url=sim.file_base_url,
        private_progress_interval_seconds=0.02,
        group_progress_interval_seconds=0.06,
        poll_timeout_seconds=1,
        admin_users=[99],
        flood_time_scale=0.03,  # the bot paces itself on the simulator clock (0.02), with room for loopback jitter
    )
    bench = Bench(sim=sim, backend=FakeBackend(), data_dir=tmp_path / "data", config=config)
    yield bench
    await bench.close()
    await sim.stop()
