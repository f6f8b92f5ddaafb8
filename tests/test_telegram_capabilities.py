"""Through the real python-telegram-bot Application: a backend that cannot upscale or vary gets no U/V buttons,
and a stale U button is answered with the reason, nothing queued."""

from __future__ import annotations

import pytest

from bot.models import JobState
from bot.ports import Capabilities
from tests.fakes import FakeBackend
from tests.test_telegram_support import PRIVATE, Bench, bench, keyboard_message

pytestmark = pytest.mark.telegram
__all__ = ["bench"]


async def test_no_upscale_or_variation_buttons_where_no_backend_can(bench: Bench) -> None:
    bench.backend = FakeBackend(capabilities=Capabilities(upscale=False, variations=False))
    await bench.open()
    job_id = await bench.imagine(PRIVATE, PRIVATE, "/imagine a lighthouse --n 2")
    keys = keyboard_message(bench, PRIVATE, job_id)
    assert {f"reroll:{job_id}", f"info:{job_id}", f"delete:{job_id}"} <= set(keys.buttons)
    assert not any(data.startswith(("vary:", "upscale:")) for data in keys.buttons), keys.buttons
    query = await bench.sim.press(PRIVATE, PRIVATE, keys.message_id, f"upscale:{job_id}:0")  # an old message's
    await bench.sim.wait_for(lambda: query in bench.sim.callback_answers)
    assert "cannot upscale" in str(bench.sim.callback_answers[query]["text"])
    assert len(await bench.app.services.store.in_states(list(JobState))) == 1
    assert [request.kind for _, request in bench.backend.calls] == ["txt2img"]
