"""The job store's smaller duties on both stores: a chat that changed id, recent sends, message ids, refunds,
deleting results, stats and timings."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from bot.models import utcnow
from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_the_records_delivery_needs(app_factory: AppFactory) -> None:
    app = await app_factory(quota={"user_daily": 1000.0})
    store = app.services.store
    reply = await dispatch_text(app.services, invocation(server="-100", channel="-100"), "/imagine moved chat")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 10)
    job_id = reply.job_id

    await store.set_messages(job_id, {"telegram_status": "-100:5", "telegram_chat": "-100"})
    await store.set_message(job_id, "telegram_status", "-100:6")
    assert (await store.get(job_id)).messages == {"telegram_status": "-100:6", "telegram_chat": "-100"}  # type: ignore[union-attr]

    day = utcnow().date()
    charged = await store.usage("console", "-100", "u1", day)
    assert charged[0] > 0
    assert await store.move_chat("console", "-100", "-200") == [job_id]  # a group became a supergroup
    moved = await store.get(job_id)
    assert moved is not None and (moved.destination.channel_id, moved.destination.server_id) == ("-200", "-200")
    assert moved.destination.source_message_id is None
    assert await store.usage("console", "-200", "u1", day) == charged, "the quota moved with the chat"

    now = time.time()
    await store.record_sends("telegram", [("-200", now - 1, 2), ("-300", now, 1)])
    assert await store.recent_sends("telegram", now - 0.5) == [("-300", now, 1)]

    stats = await store.stats("console", "-200", utcnow() - timedelta(days=1))  # type: ignore[attr-defined]
    assert stats == [("u1", 1, moved.cost)]
    images = await store.images(job_id)
    assert images and await store.delete_images(job_id) == images  # type: ignore[attr-defined]
    assert await store.images(job_id) == []

    await store.record_timing("never-run", 2.0)
    await store.record_timing("never-run", 1.0)  # a moving average: 0.7 old + 0.3 new
    assert (await store.timings())["never-run"] == pytest.approx(1.7)

    await store.refund(job_id)
    assert await store.usage("console", "-200", "u1", day) == (0.0, 0.0)


async def test_edit_prompts_are_remembered_and_replaced(app_factory: AppFactory) -> None:
    from bot.edit_prompts import EditPrompt

    prompts = (await app_factory(start=False)).services.edit_prompts
    await prompts.remember(EditPrompt("telegram", "-5", "41", "edit:abc:0", "7"))
    await prompts.remember(EditPrompt("telegram", "-5", "41", "edit:abc:1", "8"))  # the same message asks again
    assert await prompts.recall("telegram", "-5", "41") == EditPrompt("telegram", "-5", "41", "edit:abc:1", "8")
    assert await prompts.recall("telegram", "-5", "42") is None
