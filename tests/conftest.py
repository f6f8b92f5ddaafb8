from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app, example_config_path
from bot.models import Destination
from bot.settings import Settings, load_settings
from commands.context import Invocation
from tests.fakes import FakeBackend, RecordingOutbound
from tests.postgres_support import drop_database, fresh_database, postgres_server

__all__ = ["postgres_server"]  # a session fixture: the throwaway PostgreSQL server

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
def store_kind() -> str:
    """Which store `app_factory` builds on: SQLite, or IMAGEBRIDGE_TEST_STORE=postgres to run every app_factory
    test on PostgreSQL; store tests override it with params ["sqlite", "postgres"]."""
    return os.environ.get("IMAGEBRIDGE_TEST_STORE", "sqlite")


@pytest.fixture
async def storage(request: pytest.FixtureRequest, store_kind: str) -> AsyncIterator[dict[str, Any]]:
    """Settings overrides for the store: none for SQLite; a fresh database on the test server for PostgreSQL."""
    if store_kind == "sqlite":
        yield {}
        return
    server = request.getfixturevalue("postgres_server")
    url = await fresh_database(server)
    yield {"storage": {"url": url}}
    await drop_database(server, url)


@pytest.fixture
async def app_factory(tmp_path: Path, storage: dict[str, Any]) -> AsyncIterator[AppFactory]:
    apps: list[App] = []

    async def factory(
        backend: FakeBackend | None = None,
        outbound: RecordingOutbound | None = None,
        start: bool = True,
        **overrides: Any,
    ) -> App:
        settings = make_settings(tmp_path / "data", **{**storage, **overrides})
        app = await build_app(settings, [outbound or RecordingOutbound()], backends=[backend or FakeBackend()])
        if start:
            await app.start()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.stop()
