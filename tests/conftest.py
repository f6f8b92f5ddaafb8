from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app, example_config_path
from bot.models import Destination
from bot.settings import Settings, load_settings
from commands.context import Invocation
from tests.fakes import FakeBackend, RecordingOutbound

AppFactory = Callable[..., Awaitable[App]]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "backends": {"local": {"kind": "forge", "url": "http://127.0.0.1:9"}},
        "limits": {"retry_backoff_seconds": 0},
    }
    base.update(overrides)
    return load_settings(example_config_path(), base)


def invocation(user: str = "u1", server: str = "s1", channel: str = "c1", **kwargs: Any) -> Invocation:
    return Invocation(
        destination=Destination(platform="console", server_id=server, channel_id=channel, user_id=user),
        **kwargs,
    )


@pytest.fixture
async def app_factory(tmp_path: Path) -> AsyncIterator[AppFactory]:
    apps: list[App] = []

    async def factory(
        backend: FakeBackend | None = None,
        outbound: RecordingOutbound | None = None,
        start: bool = True,
        **overrides: Any,
    ) -> App:
        settings = make_settings(tmp_path / "data", **overrides)
        app = await build_app(settings, [outbound or RecordingOutbound()], backends=[backend or FakeBackend()])
        if start:
            await app.start()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.stop()
