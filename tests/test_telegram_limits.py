"""Telegram's limits: flood control under ten concurrent jobs, oversize photos, long texts, the simulator's rules."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter

from adapters.telegram.render import MAX_CAPTION, MAX_TEXT
from bot.models import GeneratedImage, GenerationRequest, GenerationResult
from bot.ports import ProgressCallback
from tests.fakes import FakeBackend, png
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["bench"]
log = logging.getLogger(__name__)


class HugeBackend(FakeBackend):
    """Makes one photo wider than Telegram accepts (width + height > 10000)."""

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        self.calls.append((job_id, request))
        return GenerationResult(images=[GeneratedImage(data=png(9000, 1500), seed=request.seed)])


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "pacer-off"])
async def test_ten_concurrent_jobs_in_one_group_under_flood_control(bench: Bench, paced: bool) -> None:
    if not paced:  # the bot's windows far shorter than Telegram's: it overruns and must recover from 429s
        bench.config = bench.config.model_copy(update={"flood_time_scale": 0.0001})
    await bench.open()
    counted = asyncio.Event()  # the adapter counts a 429 when its answer arrives, after the simulator counted it
    metrics_hook = bench.outbound.on_rate_limited

    def on_rate_limited() -> None:
        if metrics_hook is not None:
            metrics_hook()
        counted.set()

    bench.outbound.on_rate_limited = on_rate_limited
    sends = [bench.sim.send_text(GROUP, 100 + i, f"/imagine@test_bot picture {i} --preset sd15") for i in range(10)]
    await asyncio.gather(*sends)
    jobs: set[str] = set()

    def all_queued() -> bool:
        jobs.update(m.buttons[0].split(":")[1] for m in bench.sim.messages.values() if m.from_bot and m.buttons)
        return len(jobs) >= 10

    await bench.sim.wait_for(all_queued, 20)
    async with asyncio.timeout(30):
        for job_id in jobs:
            await bench.finished(job_id, 30)
    results = [m for m in bench.sim.visible(GROUP) if m.photo is not None]
    assert len(results) == 10
    if paced:
        assert bench.sim.flood.refused == 0 and bench.outbound.retry_after_count == 0
    else:
        assert bench.sim.flood.refused > 0
        async with asyncio.timeout(5):  # a 429 may still be on its way back to the adapter when the last job ends
            while bench.outbound.retry_after_count < bench.sim.flood.refused:
                counted.clear()
                await counted.wait()
        assert bench.outbound.retry_after_count == bench.sim.flood.refused
    unexpected = [e for e in bench.sim.errors if e[1] != 429 and "not modified" not in e[2]]
    assert unexpected == []
    log.warning(
        "flood control: %d x 429 (%s), adapter retried %d",
        bench.sim.flood.refused,
        bench.sim.flood.refused_by_method,
        bench.outbound.retry_after_count,
    )


async def test_oversize_image_is_scaled_and_the_original_sent_as_document(bench: Bench) -> None:
    bench.backend = HugeBackend()
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine a panorama")
    photo = next(m for m in bench.sim.visible(PRIVATE) if m.photo is not None)
    assert photo.photo is not None and sum(photo.photo) <= 10000
    documents = [m for m in bench.sim.visible(PRIVATE) if m.document is not None]
    assert len(documents) == 1
    original = bench.sim.files[documents[0].document or ""].data
    assert Image.open(io.BytesIO(original)).size == (9000, 1500)
    assert f"reroll:{job_id}" in photo.buttons


async def test_long_prompt_is_cut_never_rejected(bench: Bench) -> None:
    bench.overrides = {"limits": {"retry_backoff_seconds": 0, "max_prompt_chars": 4096}}
    await bench.open()
    prompt = " ".join(f"word{i}" for i in range(1000))[:4070]
    job_id = await bench.imagine(PRIVATE, PRIVATE, f"/imagine {prompt}")
    result = keyboard_message(bench, PRIVATE, job_id)
    assert len(result.caption or "") <= MAX_CAPTION
    query = await bench.sim.press(PRIVATE, PRIVATE, result.message_id, f"info:{job_id}")
    await bench.sim.wait_for(
        lambda: any((m.text or "").startswith(f"Job {job_id}") for m in bench.sim.visible(PRIVATE))
    )
    info = next(m for m in bench.sim.visible(PRIVATE) if (m.text or "").startswith(f"Job {job_id}"))
    assert MAX_TEXT - 10 <= len(info.text or "") <= MAX_TEXT and (info.text or "").endswith("…")
    assert query in bench.sim.callback_answers
    assert [e for e in bench.sim.errors if e[1] == 400] == []


async def test_simulator_is_strict_like_the_real_server(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    bench.sim.flood.time_scale = 1.0
    bot = Bot(bench.sim.token, base_url=bench.sim.api_base_url, base_file_url=bench.sim.file_base_url)
    async with bot:
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(PRIVATE, "x" * (MAX_TEXT + 1))
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="x" * 65)]])
            await bot.send_message(PRIVATE, "hi", reply_markup=markup)
        with pytest.raises(BadRequest, match=r"(?i)photo_invalid_dimensions"):
            await bot.send_photo(PRIVATE, png(2100, 100))
        sent = await bot.send_message(PRIVATE, "same")
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("same", chat_id=PRIVATE, message_id=sent.message_id)
        await bot.send_message(PRIVATE, "two")
        await bot.send_message(PRIVATE, "three")
        with pytest.raises(RetryAfter):
            await bot.send_message(PRIVATE, "four")
    entities = bench.sim.message_json(await bench.sim.send_text(GROUP, 5, "/imagine@test_bot x"))["entities"]
    assert entities == [{"type": "bot_command", "offset": 0, "length": 17}]
    assert bench.sim.flood.refused == 1
