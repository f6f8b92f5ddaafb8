"""/settings through the console: shown with buttons, changed by text and by buttons, checked against the
preset's real bounds, kept in SQLite across a restart, and applied by /imagine (its own options win)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import App, build_app
from bot.models import GenerationRequest
from tests.conftest import make_settings
from tests.fakes import FakeBackend

JOB = re.compile(r"\b([0-9a-f]{12})\b")


@dataclass
class Console:
    app: App
    session: ConsoleSession
    stream: io.StringIO
    backend: FakeBackend

    async def say(self, line: str) -> str:
        start = len(self.stream.getvalue())
        await self.session.handle(line)
        return self.stream.getvalue()[start:]

    async def run(self, line: str) -> GenerationRequest:
        """An /imagine that must queue; the request the backend got."""
        text = await self.say(line)
        found = JOB.findall(text)
        assert found, text
        async with asyncio.timeout(10):
            await self.app.engine.finished_event(found[0]).wait()
        return next(request for job, request in self.backend.calls if job == found[0])


async def open_console(data: Path, backend: FakeBackend, storage: dict[str, Any]) -> Console:
    stream = io.StringIO()
    outbound = ConsoleOutbound(stream=stream, interval=0)
    app = await build_app(make_settings(data, quota={"enabled": False}, **storage), [outbound], backends=[backend])
    await app.start()
    assert app.services is not None
    return Console(app, ConsoleSession(app.services, outbound, admin=True), stream, backend)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Settings are kept on both stores."""
    return str(request.param)


@pytest.fixture
async def console(tmp_path: Path, storage: dict[str, Any]) -> AsyncIterator[Console]:
    opened = await open_console(tmp_path / "data", FakeBackend(), storage)
    yield opened
    await opened.app.stop()


async def test_settings_show_the_defaults_with_buttons(console: Console) -> None:
    text = await console.say("/settings")
    assert "Preset: not set (the server's sdxl)" in text and "Steps: not set (the preset's 25)" in text, text
    assert "[16:9: set:aspect:6]" in text and "[sd15: set:preset:1]" in text
    assert "Private results: off" in text and "[🔒 Private: turn on: set:private:1]" in text
    assert "[zh: set:language:2]" in text and "set:reset" in text


async def test_imagine_uses_the_settings_and_its_own_options_win(console: Console) -> None:
    assert "Preset: sd15" in await console.say("/settings preset sd15")
    assert "Steps: 30" in await console.say("/settings steps 30")
    assert "Negative prompt: no cats, no dogs" in await console.say("/settings negative no cats, no dogs")
    # Console ids count from 1; sd15 offers 1:1 3:2 2:3 16:9 9:16.
    assert "Aspect ratio: 16:9" in await console.say("set:aspect:4")
    request = await console.run("/imagine a fox")
    assert (request.preset, request.steps, request.width > request.height) == ("sd15", 30, True)
    assert "no cats, no dogs" in request.negative_prompt
    request = await console.run("/imagine a fox --preset sdxl --steps 12 --ar 1:1 --neg rain")
    assert (request.preset, request.steps, request.width == request.height) == ("sdxl", 12, True)
    assert "rain" in request.negative_prompt and "cats" not in request.negative_prompt


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("/settings steps 51", "Preset 'sd15' allows 1 to 50 steps (got '51')"),
        ("/settings steps many", "Preset 'sd15' allows 1 to 50 steps (got 'many')"),
        ("/settings aspect 4:3", "Aspect ratio '4:3' is not offered by preset 'sd15'. Allowed: 1:1, 3:2, 2:3"),
        ("/settings preset nope", "nope"),
        ("/settings private on", "private"),  # not offered until results can really go by DM
        ("/settings language fr", "Language 'fr' is not offered. Choose one of: en, zh"),
        ("/settings colour red", "colour"),
        ("set:aspect:42", "not one of mine"),
    ],
)
async def test_bad_values_are_refused_with_the_presets_bounds(console: Console, line: str, words: str) -> None:
    await console.say("/settings preset sd15")
    text = await console.say(line)
    assert words in text, text
    assert "Preset: sd15" in await console.say("/settings")  # nothing else changed


async def test_a_saved_value_the_chosen_preset_does_not_offer_is_explained(console: Console) -> None:
    await console.say("/settings steps 55")  # sdxl (the server's default) allows 60
    text = await console.say("/imagine a fox --preset sd15")
    assert "Your /settings steps (55) are over preset 'sd15''s maximum of 50" in text, text
    assert console.backend.calls == [] and console.app.engine.queued_jobs() == []
    request = await console.run("/imagine a fox --preset sd15 --steps 20")  # an explicit value is the way out
    assert request.steps == 20


async def test_language_and_reset_and_they_outlast_a_restart(tmp_path: Path, storage: dict[str, Any]) -> None:
    first = await open_console(tmp_path / "data", FakeBackend(), storage)
    try:
        assert "语言：zh" in await first.say("set:language:2")
        assert "此机器人未启用配额。" in await first.say("/quota")  # every answer follows the chosen language
        assert "基础尺寸" in await first.say("/presets")
        await first.say("/settings aspect 16:9")
    finally:
        await first.app.stop()
    again = await open_console(tmp_path / "data", FakeBackend(), storage)
    try:
        text = await again.say("/settings")
        assert "语言：zh" in text and "宽高比：16:9" in text, text
        assert "宽高比：未设置" in await again.say("/settings aspect")  # a key alone goes back to the default
        text = await again.say("set:reset")
        assert "Aspect ratio: not set" in text and "Language: not set" in text, text
    finally:
        await again.app.stop()


async def test_a_saved_preset_denied_in_this_channel_points_to_settings(console: Console) -> None:
    await console.say("/settings preset sd15")
    assert "sd15" in await console.say("/admin deny sd15")  # the console user is this server's admin
    text = await console.say("/settings")
    assert "Preset: sd15 (cannot be used here" in text, text  # the panel still opens
    text = await console.say("/imagine a fox")
    assert "Your /settings preset 'sd15' cannot be used here" in text and "sdxl" in text, text
    assert console.backend.calls == [] and console.app.engine.queued_jobs() == []
    request = await console.run("/imagine a fox --preset sdxl")
    assert request.preset == "sdxl"
