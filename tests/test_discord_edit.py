"""Editing on Discord end to end, with the real discord.py against the simulator: /edit with one and three
attachments, a fourth that cannot be sent, a non-image refused at no cost, the message menu "Edit image", and
the Edit button's modal, also across a restart, and refused for a job of another channel."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.settings import Settings
from simulators.discord import DiscordSimulator
from simulators.discord_events import click, place, slash
from simulators.discord_harness import BotProcess, patched
from simulators.discord_menus import image_embed, message_command, submit_modal, user_message
from simulators.discord_state import SimInteraction, SimMessage
from tests.conftest import make_settings
from tests.edit_support import FakeEditor, edit_overrides
from tests.fakes import FakeBackend, png

pytestmark = pytest.mark.discord
RED, BLUE, GREEN, GREY = (220, 30, 30), (30, 30, 220), (30, 200, 60), (90, 90, 90)


class Bench:
    """The simulator, the bot process and its backends; `restart` builds a new process on the same data."""

    def __init__(self, sim: DiscordSimulator, settings: Settings) -> None:
        self.sim, self.settings = sim, settings
        self.backend, self.editor = FakeBackend(), FakeEditor()
        self.process: BotProcess | None = None

    async def start(self) -> BotProcess:
        self.process = await BotProcess.start(self.settings, [self.backend, self.editor], self.sim)
        return self.process

    async def restart(self) -> BotProcess:
        assert self.process is not None
        await self.process.stop()
        return await self.start()

    async def job_of(self, interaction: SimInteraction) -> tuple[str, SimMessage]:
        """The job an interaction queued (its answer is the status message) once it has finished."""
        message = await self.sim.state.wait_until(lambda: answer(self.sim, interaction))
        job_id = next(i.split(":")[1] for row in message.custom_ids() for i in row if i.startswith("cancel:"))
        assert self.process is not None
        async with asyncio.timeout(10):
            await self.process.app.engine.finished_event(job_id).wait()
        return job_id, message

    async def count(self, table: str) -> int:
        assert self.process is not None
        row = await self.process.app.db.fetchone(f"SELECT COUNT(*) FROM {table}")
        return int(row[0]) if row is not None else -1


def answer(sim: DiscordSimulator, interaction: SimInteraction) -> SimMessage | None:
    return sim.state.messages.get(interaction.response_id or "")


def colour(data: bytes) -> tuple[int, ...]:
    return tuple(Image.open(io.BytesIO(data)).convert("RGB").getpixel((1, 1)))


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    sim = DiscordSimulator(time_scale=0.05)
    url = await sim.start()
    with patched(url):
        bench = Bench(sim, make_settings(tmp_path / "data", **edit_overrides()))
        await bench.start()
        yield bench
        if bench.process is not None:
            await bench.process.stop()
    await sim.stop()


def instruction_field(opened: SimInteraction) -> str:
    assert opened.modal is not None, "no modal was opened"
    component = opened.modal["components"][0]
    return str((component.get("component") or component["components"][0])["custom_id"])


async def test_edit_of_one_image(bench: Bench) -> None:
    sim = bench.sim
    sent = await slash(sim, "edit", {"instruction": "make it night"}, files={"reference": ("a.png", png(64, 64, RED))})
    job_id, message = await bench.job_of(sent)
    _, request, sources = bench.editor.edits[0]
    assert request.user_prompt == "make it night" and [colour(s) for s in sources] == [RED]
    assert len(message.files) == 1 and f"edit:{job_id}:0" in message.custom_ids()[0]


async def test_edit_of_three_images_keeps_their_order(bench: Bench) -> None:
    files = {
        "reference": ("a.png", png(64, 64, RED)),
        "reference2": ("b.png", png(96, 64, BLUE)),
        "reference3": ("c.jpg", png(64, 96, GREEN)),
    }
    sent = await slash(bench.sim, "edit", {"instruction": "the cat from image 2 on the sofa"}, files=files)
    await bench.job_of(sent)
    _, request, sources = bench.editor.edits[0]
    assert [colour(s) for s in sources] == [RED, BLUE, GREEN] and len(request.reference_image_ids) == 3


async def test_a_fourth_image_cannot_be_sent(bench: Bench) -> None:
    edit = next(c for c in bench.sim.state.commands["500"] if c["name"] == "edit" and c["type"] == 1)
    assert [o["name"] for o in edit["options"] if o["type"] == 11] == ["reference", "reference2", "reference3"]
    zh = [o["name_localizations"]["zh-CN"] for o in edit["options"] if o["type"] == 11]
    assert edit["name_localizations"]["zh-CN"] == "改图" and zh == ["图片", "图片2", "图片3"]
    files = {name: (f"{name}.png", png(8, 8)) for name in ("reference", "reference2", "reference3", "reference4")}
    with pytest.raises(ValueError, match="cannot send"):
        await slash(bench.sim, "edit", {"instruction": "x"}, files=files)


async def test_a_non_image_is_refused_clearly_and_costs_nothing(bench: Bench) -> None:
    files = {"reference": ("a.png", png(64, 64, RED)), "reference2": ("notes.txt", b"not a picture", "text/plain")}
    sent = await slash(bench.sim, "edit", {"instruction": "make it night"}, files=files)
    message = await bench.sim.state.wait_until(lambda: answer(bench.sim, sent))
    assert message.ephemeral and "Attachment 2 (notes.txt, text/plain) is not an image" in message.content
    assert bench.editor.edits == [] and await bench.count("jobs") == 0 and await bench.count("quota_ledger") == 0
    assert not any(r.path.startswith("/cdn") for r in bench.sim.state.requests)  # nothing was even downloaded


async def test_the_message_menu_edits_the_images_of_a_message(bench: Bench) -> None:
    sim = bench.sim
    menu = next(c for c in sim.state.commands["500"] if c["type"] == 3)
    assert menu["name"] == "Edit image" and menu["name_localizations"]["zh-CN"] == "编辑图片"
    files = [("a.png", png(64, 64, RED)), ("notes.txt", b"text", "text/plain"), ("b.png", png(64, 64, BLUE))]
    embeds = [image_embed(sim, "c.png", png(64, 64, GREEN)), image_embed(sim, "d.png", png(64, 64, GREY))]
    target = user_message(sim, "700", "43", "our cat", files=files, embeds=embeds)
    opened = await message_command(sim, "Edit image", target.id)
    await sim.state.wait_until(lambda: opened.modal is not None)
    submitted = await submit_modal(sim, opened, {instruction_field(opened): "give them hats"})
    await bench.job_of(submitted)
    _, request, sources = bench.editor.edits[0]
    assert request.user_prompt == "give them hats" and [colour(s) for s in sources] == [RED, BLUE, GREEN]

    empty = user_message(sim, "700", "43", "no pictures here", files=[("notes.txt", b"text", "text/plain")])
    refused = await message_command(sim, "Edit image", empty.id)
    message = await sim.state.wait_until(lambda: answer(sim, refused))
    assert refused.modal is None and message.ephemeral and "no image I can edit" in message.content


async def imagine_result(bench: Bench) -> tuple[str, SimMessage]:
    sent = await slash(bench.sim, "imagine", {"prompt": "a red fox"})
    job_id, message = await bench.job_of(sent)
    assert f"edit:{job_id}:0" in message.custom_ids()[0]
    return job_id, message


async def test_the_edit_button_opens_a_modal_and_works_across_a_restart(bench: Bench) -> None:
    sim = bench.sim
    job_id, result = await imagine_result(bench)
    before = await click(sim, result.id, f"edit:{job_id}:0")  # opened before the restart, submitted after
    await sim.state.wait_until(lambda: before.modal is not None)
    assert before.modal is not None and before.modal["custom_id"] == f"edit:{job_id}:0"
    await bench.restart()
    first = await submit_modal(sim, before, {instruction_field(before): "make it snow"})
    edit_id, _ = await bench.job_of(first)
    after = await click(sim, result.id, f"edit:{job_id}:0")  # pressed after the restart
    await sim.state.wait_until(lambda: after.modal is not None)
    second = await submit_modal(sim, after, {instruction_field(after): "make it rain"})
    await bench.job_of(second)
    assert [request.user_prompt for _, request, _ in bench.editor.edits] == ["make it snow", "make it rain"]
    stored = bench.backend.calls[0][0]
    assert stored == job_id and all(len(sources) == 1 for _, _, sources in bench.editor.edits)
    assert bench.editor.edits[0][1].parent_job_id == job_id and edit_id != job_id


async def test_an_edit_press_or_submit_for_another_channels_job_does_nothing(bench: Bench) -> None:
    sim = bench.sim
    job_id, result = await imagine_result(bench)
    elsewhere = user_message(sim, "701", "77", "x")
    elsewhere.components = result.components  # a forged button: another user, another channel
    forged = await click(sim, elsewhere.id, f"edit:{job_id}:0", where=place(user="77"))
    message = await sim.state.wait_until(lambda: answer(sim, forged))
    assert forged.modal is None and message.ephemeral and job_id[:8] in message.content
    opened = sim.new_interaction("701", kind=3, user_id="77")
    opened.modal = {"custom_id": f"edit:{job_id}:0", "title": "Edit image 1", "components": [
        {"type": 18, "label": "What should change?",
         "component": {"type": 4, "custom_id": "instruction", "style": 2}},
    ]}  # fmt: skip
    submitted = await submit_modal(sim, opened, {"instruction": "steal it"}, where=place(user="77"))
    refusal = await sim.state.wait_until(lambda: answer(sim, submitted))
    assert refusal.ephemeral and bench.editor.edits == [] and await bench.count("jobs") == 1


async def test_the_edit_button_is_offered_only_where_some_backend_edits(tmp_path: Path) -> None:
    sim = DiscordSimulator(time_scale=0.05)
    url = await sim.start()
    try:
        with patched(url):
            process = await BotProcess.start(make_settings(tmp_path / "data"), [FakeBackend()], sim)
            try:
                sent = await slash(sim, "imagine", {"prompt": "a red fox"})
                message = await sim.state.wait_until(lambda: answer(sim, sent))
                job_id = message.custom_ids()[0][0].split(":")[1]
                async with asyncio.timeout(10):
                    await process.app.engine.finished_event(job_id).wait()
                ids: list[Any] = [i for row in message.custom_ids() for i in row]
                assert f"reroll:{job_id}" in ids and not any(i.startswith("edit:") for i in ids)
            finally:
                await process.stop()
    finally:
        await sim.stop()


async def test_an_edit_press_too_slow_for_a_form_is_acknowledged_and_explained(bench: Bench) -> None:
    sim = bench.sim
    job_id, result = await imagine_result(bench)
    assert bench.process is not None and bench.process.platform.client is not None
    handler = bench.process.platform.client.handler
    handler.config = handler.config.model_copy(update={"respond_within_seconds": 1e-6})  # any check is slower
    pressed = await click(sim, result.id, f"edit:{job_id}:0")
    said = await sim.state.wait_until(lambda: [m for m in sim.state.visible() if "Press Edit again" in m.content])
    assert not pressed.late and pressed.answered and pressed.modal is None and len(said) == 1 and said[0].ephemeral
    assert said[0].id == pressed.response_id  # the followup filled the loading message


async def test_a_menu_form_left_open_across_a_restart_asks_to_pick_again(bench: Bench) -> None:
    sim = bench.sim
    target = user_message(sim, "700", "43", "our cat", files=[("a.png", png(64, 64, RED))])
    opened = await message_command(sim, "Edit image", target.id)
    await sim.state.wait_until(lambda: opened.modal is not None)
    await bench.restart()  # the message's image links lived in the old process
    submitted = await submit_modal(sim, opened, {instruction_field(opened): "give it a hat"})
    message = await sim.state.wait_until(lambda: answer(sim, submitted))
    assert message.ephemeral and "Pick Edit image on the message again" in message.content
    assert bench.editor.edits == [] and await bench.count("jobs") == 0
