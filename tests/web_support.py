"""Helpers for the web gallery tests: a bot with the gallery on, console users, and a headless Chromium."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import App, build_app
from bot.models import Destination, GenerationRequest, Progress
from bot.ports import GenerationResult, ProgressCallback
from tests.conftest import make_settings
from tests.fakes import FakeBackend, png

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
LINK = re.compile(r"http://127\.0\.0\.1:\d+/gallery/login\?token=\S+")


@dataclass
class PreviewBackend(FakeBackend):
    """A FakeBackend that sends a preview image with its progress, as A1111 and ComfyUI do."""

    previews: int = field(default=0)

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        self.previews += 1
        on_progress(Progress(fraction=0.3, step=3, steps=10, preview=png(32, 32, (30, 160, 90))))
        return await super().generate(job_id, request, source, on_progress)


class Chat:
    """Console users typing commands: the real chat path (parser, dispatch, commands, console adapter)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stream = io.StringIO()
        self.outbound = ConsoleOutbound(stream=self.stream)

    async def say(self, user: str, line: str, server: str = "local") -> Any:
        session = ConsoleSession(self.app.services, self.outbound, user)
        session.destination = Destination(
            platform="console", server_id=server, channel_id="terminal", user_id=user, user_name=user.title()
        )
        reply = await session.handle(line)
        assert reply is not None
        return reply

    async def imagine(self, user: str, prompt: str, server: str = "local", wait: bool = True) -> str:
        reply = await self.say(user, f"/imagine {prompt}", server)
        assert reply.job_id, reply.text
        if wait:
            await self.app.engine.finished_event(reply.job_id).wait()
        return str(reply.job_id)

    async def link(self, user: str, server: str = "local") -> str:
        reply = await self.say(user, "/gallery", server)
        found = LINK.search(reply.text)
        assert found, reply.text
        assert reply.private
        return found.group(0)  # no base_url configured: the link names the server's own address


@asynccontextmanager
async def gallery_app(data: Path, backend: FakeBackend, **overrides: Any) -> AsyncIterator[App]:
    settings = make_settings(
        data,
        metrics={"port": 0},
        web={"enabled": True},
        access={"bot_admins": ["console:root"]},
        **overrides,
    )
    app = await build_app(settings, [ConsoleOutbound(stream=io.StringIO())], backends=[backend])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def sign_in(page: Any, link: str) -> Any:
    """Open a sign-in link and press its button, as a person does; returns the response to the POST."""
    await page.goto(link)
    async with page.expect_navigation() as navigation:
        await page.click("#sign-in")
    return await navigation.value
