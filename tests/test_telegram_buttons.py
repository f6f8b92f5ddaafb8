"""Every inline button, answered, and still working after a restart (new Application, new App, same data)."""

from __future__ import annotations

import pytest

from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


async def press_and_wait_job(bench: Bench, chat_id: int, user_id: int, message_id: int, data: str) -> str:
    before = max(m.message_id for m in bench.sim.visible(chat_id))
    query = await bench.sim.press(chat_id, user_id, message_id, data)
    job_id = await bench.job_from(chat_id, before)
    await bench.finished(job_id)
    assert bench.sim.callback_answers[query]["text"] == "Queued"
    return job_id


async def answered(bench: Bench, query: str) -> dict[str, object]:
    await bench.sim.wait_for(lambda: query in bench.sim.callback_answers)
    return bench.sim.callback_answers[query]


async def test_reroll_vary_upscale_make_new_jobs(bench: Bench) -> None:
    await bench.open()
    job_id = await bench.imagine(GROUP, 5, "/imagine@test_bot a castle --n 2 --preset sd15")
    keys = keyboard_message(bench, GROUP, job_id)
    reroll = await press_and_wait_job(bench, GROUP, 5, keys.message_id, f"reroll:{job_id}")
    vary = await press_and_wait_job(bench, GROUP, 5, keys.message_id, f"vary:{job_id}:1")
    upscale = await press_and_wait_job(bench, GROUP, 5, keys.message_id, f"upscale:{job_id}:0")
    requests = {job: request for job, request in bench.backend.calls}
    assert requests[reroll].parent_job_id == job_id
    assert requests[vary].subseed_strength > 0 and requests[vary].parent_index == 1
    assert requests[upscale].kind == "upscale"


async def test_info_and_delete_and_cancel(bench: Bench) -> None:
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine a harbour")
    result = keyboard_message(bench, PRIVATE, job_id)
    info = await bench.sim.press(PRIVATE, PRIVATE, result.message_id, f"info:{job_id}")
    await answered(bench, info)
    await bench.sim.wait_for(lambda: any("Prompt:" in (m.text or "") for m in bench.sim.visible(PRIVATE)))
    stranger = await bench.sim.press(PRIVATE, 7, result.message_id, f"delete:{job_id}")
    assert "Only the person" in str((await answered(bench, stranger))["text"])
    assert not result.deleted
    delete = await bench.sim.press(PRIVATE, PRIVATE, result.message_id, f"delete:{job_id}")
    assert "Deleted" in str((await answered(bench, delete))["text"])
    await bench.sim.wait_for(lambda: result.deleted)
    bench.backend.hold = True
    await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine a queue")
    second = await bench.job_from(PRIVATE, result.message_id)
    await bench.backend.started.wait()
    status = next(m for m in bench.sim.visible(PRIVATE) if f"cancel:{second}" in m.buttons)
    cancel = await bench.sim.press(PRIVATE, PRIVATE, status.message_id, f"cancel:{second}")
    await answered(bench, cancel)
    await bench.finished(second)
    assert any("cancelled" in (m.text or "") for m in bench.sim.visible(PRIVATE))


async def test_unknown_button_is_answered(bench: Bench) -> None:
    await bench.open()
    message = await bench.sim.send_text(PRIVATE, PRIVATE, "hello")
    query = await bench.sim.press(PRIVATE, PRIVATE, message.message_id, "nonsense")
    assert "not one of mine" in str((await answered(bench, query))["text"])


async def test_buttons_work_after_a_restart(bench: Bench) -> None:
    await bench.open()
    job_id = await bench.imagine(GROUP, 5, "/imagine@test_bot a bridge --n 2 --preset sd15")
    keys = keyboard_message(bench, GROUP, job_id)
    await bench.restart()
    vary = await press_and_wait_job(bench, GROUP, 5, keys.message_id, f"vary:{job_id}:0")
    assert bench.backend.calls[-1][0] == vary
    info = await bench.sim.press(GROUP, 5, keys.message_id, f"info:{job_id}")
    await answered(bench, info)
    delete = await bench.sim.press(GROUP, 5, keys.message_id, f"delete:{job_id}")
    await answered(bench, delete)
    await bench.sim.wait_for(lambda: keys.deleted)
    photos = [m for m in bench.sim.messages.values() if m.photo is not None and m.media_group_id and m.from_bot]
    assert photos and all(m.deleted for m in photos if m.message_id < keys.message_id)
