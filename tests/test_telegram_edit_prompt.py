"""The Edit button on Telegram end to end, with the real python-telegram-bot against the Bot API simulator:
the press sends a prompt with a selective ForceReply for the presser, the presser's reply runs the edit of that
image (also when the prompt was sent before a restart), another user's reply runs nothing, and a forged press
on another chat's job sends no prompt."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.telegram import create
from bot.app import build_app
from simulators.telegram_state import ChatMessage
from tests.conftest import make_settings
from tests.edit_support import FakeEditor, edit_overrides
from tests.test_telegram_support import GROUP, Bench, keyboard_message
from tests.test_telegram_support import bench as plain_bench

pytestmark = pytest.mark.telegram
__all__ = ["plain_bench"]

OWNER, OTHER, STRANGER, ELSEWHERE = 5, 6, 7, -1002
FOX = (200, 80, 40)  # the colour FakeBackend paints


@dataclass
class EditBench(Bench):
    """The Telegram bench with an edit backend beside the plain one, and the edit presets."""

    editor: FakeEditor = field(default_factory=FakeEditor)

    async def open(self) -> None:
        settings = make_settings(self.data_dir, **self.overrides)
        self.platform = create(settings, SecretStr(self.sim.token), self.config)
        self.app = await build_app(settings, [self.platform.outbound], backends=[self.backend, self.editor])
        await self.app.start()
        await self.platform.start(self.app.services)

    async def prompts(self) -> int:
        assert self.app is not None
        row = await self.app.db.fetchone("SELECT COUNT(*) FROM edit_prompts")
        return int(row[0]) if row is not None else -1

    async def jobs(self) -> int:
        assert self.app is not None
        row = await self.app.db.fetchone("SELECT COUNT(*) FROM jobs")
        return int(row[0]) if row is not None else -1


@pytest.fixture
async def bench(plain_bench: Bench) -> AsyncIterator[EditBench]:
    bench = EditBench(
        sim=plain_bench.sim, backend=plain_bench.backend, data_dir=plain_bench.data_dir, config=plain_bench.config
    )
    bench.overrides = edit_overrides()
    bench.sim.add_chat(ELSEWHERE, title="elsewhere")
    yield bench
    await bench.close()


async def press_edit(bench: EditBench, user: int, keys: ChatMessage, data: str) -> ChatMessage:
    """Press Edit; the prompt the bot sends (the press is answered once the prompt is sent and remembered)."""
    before = max(m.message_id for m in bench.sim.visible(GROUP))
    remembered = await bench.prompts()
    query = await bench.sim.press(GROUP, user, keys.message_id, data)
    await bench.sim.wait_for(lambda: query in bench.sim.callback_answers)
    assert await bench.prompts() == remembered + 1
    return next(m for m in bench.sim.visible(GROUP) if m.message_id > before)


async def reply_and_finish(bench: EditBench, user: int, prompt: ChatMessage, text: str) -> str:
    before = max(m.message_id for m in bench.sim.visible(GROUP))
    sent = await bench.sim.send_text(GROUP, user, text, reply_to=prompt.message_id)
    job_id = await bench.job_from(GROUP, max(before, sent.message_id))
    await bench.finished(job_id)
    return job_id


async def test_the_presser_answers_the_prompt_and_the_image_is_edited(bench: EditBench) -> None:
    await bench.open()
    job_id = await bench.imagine(GROUP, OWNER, "/imagine@test_bot a red fox")
    keys = keyboard_message(bench, GROUP, job_id)
    assert f"edit:{job_id}:0" in keys.buttons
    prompt = await press_edit(bench, OWNER, keys, f"edit:{job_id}:0")
    assert prompt.text is not None and prompt.text.startswith("User5: What should change in image 1")
    assert bench.sim.forced_reply_for(prompt) == {OWNER} and prompt.reply_to == keys.message_id

    jobs = await bench.jobs()
    before = max(m.message_id for m in bench.sim.visible(GROUP))
    await bench.sim.send_text(GROUP, OTHER, "make it purple", reply_to=prompt.message_id)
    await bench.sim.wait_for(lambda: any(m.message_id > before for m in bench.sim.visible(GROUP)))
    note = next(m for m in bench.sim.visible(GROUP) if m.message_id > before)
    assert "whoever pressed Edit" in (note.text or "") and await bench.jobs() == jobs and bench.editor.edits == []

    edit_id = await reply_and_finish(bench, OWNER, prompt, "make it night")
    edited_job, request, sources = bench.editor.edits[0]
    assert edited_job == edit_id and request.user_prompt == "make it night" and request.parent_job_id == job_id
    assert len(sources) == 1 and Image.open(io.BytesIO(sources[0])).convert("RGB").getpixel((1, 1)) == FOX


async def test_a_prompt_sent_before_a_restart_is_still_answered(bench: EditBench) -> None:
    await bench.open()
    job_id = await bench.imagine(GROUP, OWNER, "/imagine@test_bot a bridge")
    keys = keyboard_message(bench, GROUP, job_id)
    prompt = await press_edit(bench, OWNER, keys, f"edit:{job_id}:0")
    await bench.restart()
    await reply_and_finish(bench, OWNER, prompt, "make it snow")
    again = await press_edit(bench, OWNER, keys, f"edit:{job_id}:0")  # pressed after the restart
    await reply_and_finish(bench, OWNER, again, "make it rain")
    assert [request.user_prompt for _, request, _ in bench.editor.edits] == ["make it snow", "make it rain"]


async def test_a_forged_press_on_another_chats_job_sends_no_prompt(bench: EditBench) -> None:
    await bench.open()
    job_id = await bench.imagine(GROUP, OWNER, "/imagine@test_bot a castle")
    there = await bench.sim.send_text(ELSEWHERE, STRANGER, "/help@test_bot")
    await bench.sim.wait_for(lambda: any(m.from_bot for m in bench.sim.visible(ELSEWHERE)))
    shown = len(bench.sim.visible(ELSEWHERE))
    query = await bench.sim.press(ELSEWHERE, STRANGER, there.message_id, f"edit:{job_id}:0")
    await bench.sim.wait_for(lambda: query in bench.sim.callback_answers)
    answer = bench.sim.callback_answers[query]
    assert answer.get("show_alert") in ("True", "true", True) and job_id[:8] in str(answer.get("text"))
    assert len(bench.sim.visible(ELSEWHERE)) == shown and await bench.prompts() == 0


async def test_e2_under_a_two_image_result_edits_the_second_image(bench: EditBench) -> None:
    await bench.open()
    job_id = await bench.imagine(GROUP, OWNER, "/imagine@test_bot two foxes --n 2")
    keys = keyboard_message(bench, GROUP, job_id)
    assert {f"edit:{job_id}:0", f"edit:{job_id}:1"} <= set(keys.buttons) and f"edit:{job_id}" not in keys.buttons
    prompt = await press_edit(bench, OWNER, keys, f"edit:{job_id}:1")
    assert "image 2" in (prompt.text or "")
    await reply_and_finish(bench, OWNER, prompt, "only the left one")
    assert bench.editor.edits[0][1].parent_index == 1
