"""End to end with the real python-telegram-bot Application: commands, progress, results, img2img."""

from __future__ import annotations

import pytest

from bot.models import GenerationRequest, GenerationResult, Progress
from bot.ports import ProgressCallback
from tests.fakes import FakeBackend, png
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


async def test_private_imagine_sends_one_photo_with_buttons(bench: Bench) -> None:
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine a lighthouse at dusk")
    results = bench.results(PRIVATE)
    assert len(results) == 1 and results[0].photo is not None
    assert set(results[0].buttons) >= {f"reroll:{job_id}", f"info:{job_id}", f"delete:{job_id}", f"vary:{job_id}:0"}
    assert "lighthouse" in (results[0].caption or "")
    assert results[0].reply_to is not None
    assert (PRIVATE, "upload_photo") in bench.sim.chat_actions
    names = {command["command"] for command in bench.sim.commands}
    assert {"imagine", "img", "draw", "start", "help", "admin"} <= names


async def test_group_imagine_with_botname_sends_album_then_keyboard(bench: Bench) -> None:
    await bench.open()
    await bench.sim.send_text(GROUP, 5, "/imagine@other_bot not for us")
    job_id = await bench.imagine(GROUP, 5, "/imagine@test_bot three foxes --n 3 --preset sd15")
    photos = [m for m in bench.sim.visible(GROUP) if m.photo is not None]
    assert len(photos) == 3 and len({m.media_group_id for m in photos}) == 1
    keys = keyboard_message(bench, GROUP, job_id)
    assert {f"vary:{job_id}:2", f"upscale:{job_id}:2"} <= set(keys.buttons)
    assert not any("not for us" in (m.text or "") for m in bench.sim.visible(GROUP))


async def test_alias_and_start_and_unknown_bot(bench: Bench) -> None:
    await bench.open()
    await bench.imagine(PRIVATE, PRIVATE, "/draw a tree")
    await bench.sim.send_text(PRIVATE, PRIVATE, "/start")
    await bench.sim.wait_for(lambda: any("/imagine" in (m.text or "") for m in bench.sim.visible(PRIVATE)))


async def test_progress_edits_the_status_message_with_a_preview(bench: Bench) -> None:
    bench.backend.hold = True
    await bench.open()
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a slow painting")
    job_id = await bench.job_from(PRIVATE)
    await bench.sim.wait_for(
        lambda: any(m.edits and "Generating" in (m.text or "") for m in bench.sim.visible(PRIVATE))
    )
    status = next(m for m in bench.sim.visible(PRIVATE) if job_id in (m.text or ""))
    assert "step 1/2" in (status.text or "") and status.buttons == [f"cancel:{job_id}"]
    bench.backend.release.set()
    await bench.finished(job_id)
    assert status.deleted
    assert not [e for e in bench.sim.errors if "not modified" not in e[2]]


async def test_img2img_by_reply_to_a_photo(bench: Bench) -> None:
    await bench.open()
    photo = await bench.sim.send_photo(PRIVATE, PRIVATE, png(256, 256))
    await bench.imagine(PRIVATE, PRIVATE, "/imagine make it blue", reply_to=photo.message_id)
    assert bench.backend.calls[-1][1].kind == "img2img"


async def test_img2img_by_reply_to_an_image_document(bench: Bench) -> None:
    await bench.open()
    document = await bench.sim.send_photo(GROUP, 5, png(128, 128), as_document=True)
    await bench.imagine(GROUP, 5, "/img@test_bot watercolour", reply_to=document.message_id)
    assert bench.backend.calls[-1][1].kind == "img2img"


async def test_img2img_by_photo_caption(bench: Bench) -> None:
    await bench.open()
    await bench.sim.send_photo(GROUP, 5, png(200, 300), caption="/imagine@test_bot neon city --preset sd15")
    job_id = await bench.job_from(GROUP)
    await bench.finished(job_id)
    assert bench.backend.calls[-1][1].kind == "img2img"


async def test_non_admin_admin_command_is_refused(bench: Bench) -> None:
    await bench.open()
    await bench.sim.send_text(GROUP, 5, "/admin@test_bot pause")
    await bench.sim.wait_for(lambda: any("Only server admins" in (m.text or "") for m in bench.sim.visible(GROUP)))
    await bench.sim.send_text(GROUP, 1, "/admin@test_bot pause")
    await bench.sim.wait_for(lambda: any("paused" in (m.text or "") for m in bench.sim.visible(GROUP)))
    assert bench.sim.count("getChatMember") >= 2


async def test_failed_job_edits_the_status_message(bench: Bench) -> None:
    from bot.errors import BackendError

    bench.backend.failures = [BackendError("the model crashed", retryable=False)] * 3
    await bench.open()
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a broken thing")
    job_id = await bench.job_from(PRIVATE)
    await bench.finished(job_id)
    texts = [m.text or "" for m in bench.sim.visible(PRIVATE)]
    assert any(f"Job {job_id} failed" in text for text in texts)


class PreviewBackend(FakeBackend):
    """Sends one progress update with a preview image, waits until the test saw it, then finishes."""

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        on_progress(Progress(fraction=0.25, step=5, steps=20, eta_seconds=3, preview=png(64, 64, (10, 10, 200))))
        await self.release.wait()
        return await super().generate(job_id, request, source, on_progress)


async def test_progress_preview_uses_edit_message_media(bench: Bench) -> None:
    bench.backend = PreviewBackend()
    await bench.open()
    await bench.sim.send_text(GROUP, 5, "/imagine@test_bot a preview")
    job_id = await bench.job_from(GROUP)
    await bench.sim.wait_for(lambda: bench.sim.count("editMessageMedia") >= 1)
    status = next(m for m in bench.sim.visible(GROUP) if job_id in (m.caption or ""))
    assert status.photo == (64, 64) and "step 5/20" in (status.caption or "")
    bench.backend.release.set()
    await bench.finished(job_id)
    assert status.deleted
    assert [m for m in bench.sim.visible(GROUP) if m.photo is not None and f"reroll:{job_id}" in m.buttons]
