"""A bot process for tests/test_telegram_polling_role.py's kill -9 test: App + Telegram platform on PostgreSQL.

`python -m tests.telegram_poller_process API_URL FILE_URL TOKEN PG_URL DATA_DIR`. Prints "started" once
running and "polling" whenever it takes the Telegram polling role; runs until killed. The one-bot-per-database
lock is bypassed (it goes when the engine claims jobs from the store)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from adapters.telegram import create
from bot.app import build_app
from bot.config_telegram import TelegramConfig
from storage.postgres.lock import PgProcessLock
from tests.conftest import make_settings
from tests.fakes import FakeBackend


async def no_lock(self: PgProcessLock, *_args: Any) -> PgProcessLock:
    return self


async def main(api: str, files: str, token: str, url: str, data_dir: str) -> None:
    PgProcessLock.acquire = no_lock  # type: ignore[method-assign]
    config = TelegramConfig(enabled=True, api_base_url=api, file_base_url=files, poll_timeout_seconds=1)
    settings = make_settings(Path(data_dir), storage={"url": url})
    platform = create(settings, SecretStr(token), config)
    app = await build_app(settings, [platform.outbound], backends=[FakeBackend()])
    await app.start()
    await platform.start(app.services)
    print("started", flush=True)
    assert platform.turn is not None
    while True:
        await platform.turn.polling.wait()
        print("polling", flush=True)
        while platform.turn.polling.is_set():  # noqa: ASYNC110  (a flag with no "cleared" event)
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
