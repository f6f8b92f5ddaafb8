"""Issue 14 on Telegram: /edit through the real python-telegram-bot against the Bot API and ComfyUI simulators.

The edit backend is the real ComfyUI client running the shipped qwen_image_edit workflow (1-3 references) on
the ComfyUI simulator; generation runs on the usual fake.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from adapters.backends.comfyui import ComfyUIBackend
from bot.models import JobState
from simulators.comfyui import ComfyUISimulator
from simulators.telegram_updates import AlbumItem, send_album, send_document
from tests.edit_support import edit_overrides
from tests.fakes import png
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["bench"]

RED, BLUE, GREEN, GREY = (220, 30, 30), (30, 30, 220), (30, 200, 60), (128, 128, 128)


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyUISimulator]:
    simulator = ComfyUISimulator(seconds_per_step=0.002)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def editing(bench: Bench, comfy: ComfyUISimulator) -> Bench:
    """The bench with a ComfyUI edit backend named `comfy` and the qwen / kontext edit presets."""
    bench.overrides = edit_overrides(url=comfy.url, backend="comfy")
    bench.config = bench.config.model_copy(update={"album_wait_seconds": 0.3})
    bench.more_backends = lambda: [ComfyUIBackend("comfy", comfy.url, options={"edit_workflow": "qwen_image_edit"})]
    return bench


def uploaded(comfy: ComfyUISimulator) -> list[tuple[int, ...]]:
    """The colour of each reference the edit backend uploaded, in order."""
    found = []
    for name, data in sorted(comfy.folders["input"].items()):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        found.append((name, tuple(image.getpixel((1, 1)))))
    return [colour for _, colour in found]


async def edit_job(bench: Bench, chat_id: int, after: int) -> str:
    job_id = await bench.job_from(chat_id, after)
    await bench.finished(job_id)
    return job_id


async def stored_job(bench: Bench, job_id: str) -> Any:
    assert bench.app is not None
    job = await bench.app.services.store.get(job_id)
    assert job is not None
    return job


async def refused(bench: Bench, chat_id: int, words: str) -> str:
    await bench.sim.wait_for(lambda: any(words in (m.text or "") for m in bench.sim.visible(chat_id)))
    return next(m.text or "" for m in bench.sim.visible(chat_id) if words in (m.text or ""))


async def nothing_queued(bench: Bench) -> None:
    assert bench.app is not None
    for table in ("jobs", "quota_ledger"):
        row = await bench.app.db.fetchone(f"SELECT COUNT(*) FROM {table}")
        assert row is not None and row[0] == 0, table


async def test_edit_by_reply_to_a_photo(editing: Bench, comfy: ComfyUISimulator) -> None:
    await editing.open()
    photo = await editing.sim.send_photo(PRIVATE, PRIVATE, png(96, 64, RED))
    sent = await editing.sim.send_text(PRIVATE, PRIVATE, "/edit make it night --preset qwen", photo.message_id)
    job_id = await edit_job(editing, PRIVATE, sent.message_id)
    job = await stored_job(editing, job_id)
    assert job.state is JobState.SUCCEEDED and job.request.kind == "edit" and job.backend == "comfy"
    assert uploaded(comfy) == [RED]
    result = keyboard_message(editing, PRIVATE, job_id)
    assert (
        result.photo is not None and "make it night" in (result.caption or "") and f"reroll:{job_id}" in result.buttons
    )


async def test_edit_of_an_album_of_three_by_its_caption(editing: Bench, comfy: ComfyUISimulator) -> None:
    await editing.open()
    items = [AlbumItem(png(64, 64, colour)) for colour in (RED, BLUE, GREEN)]
    album = await send_album(
        editing.sim, PRIVATE, PRIVATE, items, caption="/edit put image 2 into image 1 --preset qwen"
    )
    job_id = await edit_job(editing, PRIVATE, album[-1].message_id)
    assert uploaded(comfy) == [RED, BLUE, GREEN]
    assert len((await stored_job(editing, job_id)).request.reference_image_ids) == 3


async def test_edit_by_reply_to_an_album_of_image_files(editing: Bench, comfy: ComfyUISimulator) -> None:
    await editing.open()
    items = [AlbumItem(png(64, 64, colour), "image/png", f"{n}.png") for n, colour in enumerate((BLUE, GREEN))]
    album = await send_album(editing.sim, PRIVATE, PRIVATE, items)
    await editing.sim.wait_for(lambda: editing.sim.polls.confirmed.issuperset({2}))  # the bot has seen both items
    sent = await editing.sim.send_text(PRIVATE, PRIVATE, "/edit swap them --preset qwen", album[1].message_id)
    job_id = await edit_job(editing, PRIVATE, sent.message_id)
    assert uploaded(comfy) == [BLUE, GREEN]
    await send_album(editing.sim, PRIVATE, PRIVATE, items, caption="/notacommand here")
    await editing.sim.send_text(PRIVATE, PRIVATE, "/show " + job_id)  # handled after the album's items
    await editing.sim.wait_for(lambda: len([m for m in editing.sim.visible(PRIVATE) if m.photo]) >= 2)
    assert editing.app is not None and editing.app.services.inbox is not None
    assert await editing.app.services.inbox.pending("telegram") == []  # album items are settled, not replayed


async def test_a_fourth_image_is_refused_before_any_download(editing: Bench) -> None:
    await editing.open()
    items = [AlbumItem(png(64, 64, colour)) for colour in (RED, BLUE, GREEN, GREY)]
    await send_album(editing.sim, PRIVATE, PRIVATE, items, caption="/edit combine them --preset qwen")
    text = await refused(editing, PRIVATE, "at most 3")
    assert "4 images" in text and "image 4" in text
    assert editing.sim.count("getFile") == 0
    await nothing_queued(editing)


async def test_a_non_image_is_refused_by_name(editing: Bench) -> None:
    await editing.open()
    pdf = await send_document(
        editing.sim, GROUP, 5, b"%PDF-1.4 ...", mime_type="application/pdf", file_name="brief.pdf"
    )
    await editing.sim.send_text(GROUP, 5, "/edit@test_bot make it night --preset qwen", pdf.message_id)
    text = await refused(editing, GROUP, "brief.pdf")
    assert "application/pdf" in text and "not an image" in text
    items = [AlbumItem(png(), "image/png", "a.png"), AlbumItem(b"PK\x03\x04", "application/zip", "b.zip")]
    await send_album(editing.sim, PRIVATE, PRIVATE, items, caption="/edit combine them --preset qwen")
    text = await refused(editing, PRIVATE, "b.zip")
    assert "Image 2 of the album" in text
    assert editing.sim.count("getFile") == 0
    await nothing_queued(editing)


async def test_a_preset_that_cannot_edit_or_takes_fewer_images_is_refused_before_downloading(editing: Bench) -> None:
    await editing.open()
    photo = await editing.sim.send_photo(PRIVATE, PRIVATE, png())
    await editing.sim.send_text(PRIVATE, PRIVATE, "/edit make it night --preset sd15", photo.message_id)
    text = await refused(editing, PRIVATE, "cannot edit images")
    assert "qwen" in text and "kontext" in text
    items = [AlbumItem(png(64, 64, colour)) for colour in (RED, BLUE)]
    await send_album(editing.sim, PRIVATE, PRIVATE, items, caption="/edit combine --preset kontext")
    await refused(editing, PRIVATE, "takes only 1 image and you gave 2")
    assert editing.sim.count("getFile") == 0
    await nothing_queued(editing)


async def test_reroll_of_an_edit_after_a_restart(editing: Bench, comfy: ComfyUISimulator) -> None:
    await editing.open()
    items = [AlbumItem(png(64, 64, colour)) for colour in (RED, BLUE)]
    album = await send_album(editing.sim, PRIVATE, PRIVATE, items, caption="/edit swap them --preset qwen --seed 5")
    first = await edit_job(editing, PRIVATE, album[-1].message_id)
    references = (await stored_job(editing, first)).request.reference_image_ids
    await editing.restart()
    comfy.folders["input"].clear()  # what the edit backend gets now comes from the bot's store
    result = keyboard_message(editing, PRIVATE, first)
    await editing.sim.press(PRIVATE, PRIVATE, result.message_id, f"reroll:{first}")
    again = await edit_job(editing, PRIVATE, result.message_id)
    job = await stored_job(editing, again)
    assert job.state is JobState.SUCCEEDED and job.request.kind == "edit"
    assert job.request.reference_image_ids == references and job.request.parent_job_id == first
    assert uploaded(comfy) == [RED, BLUE]


async def test_in_a_group_an_album_the_bot_cannot_see_whole_is_explained(
    editing: Bench, comfy: ComfyUISimulator
) -> None:
    await editing.open()
    items = [AlbumItem(png(64, 64, colour)) for colour in (RED, BLUE, GREEN)]
    await send_album(editing.sim, GROUP, 5, items, caption="/edit@test_bot put image 2 into image 1 --preset qwen")
    text = await refused(editing, GROUP, "only the first image of that album")
    assert "reply to one of my messages" in text and editing.sim.count("getFile") == 0
    await nothing_queued(editing)
    mine = editing.sim.visible(GROUP)[-1]  # replies to the bot reach it under privacy mode: the whole album arrives
    album = await send_album(
        editing.sim,
        GROUP,
        5,
        items,
        caption="/edit@test_bot put image 2 into image 1 --preset qwen",
        reply_to=mine.message_id,
    )
    await edit_job(editing, GROUP, album[-1].message_id)
    assert uploaded(comfy) == [RED, BLUE, GREEN]


async def test_edit_by_the_caption_of_one_photo_in_a_group(editing: Bench, comfy: ComfyUISimulator) -> None:
    await editing.open()
    photo = await editing.sim.send_photo(
        GROUP, 5, png(64, 96, GREEN), caption="/edit@test_bot make it snow --preset kontext"
    )
    job_id = await edit_job(editing, GROUP, photo.message_id)
    job = await stored_job(editing, job_id)
    assert uploaded(comfy) == [GREEN] and job.request.height > job.request.width  # the photo's 2:3 shape
