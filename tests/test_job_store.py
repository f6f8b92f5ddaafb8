"""The job store: what platform adapters record survives the engine's whole-row saves."""

from __future__ import annotations

from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation


async def test_saving_a_job_keeps_the_message_ids_adapters_recorded(app_factory: AppFactory) -> None:
    """A whole-row save of the in-memory job must not erase what `set_message` added (a restart reads it)."""
    app = await app_factory(start=False)
    reply = await dispatch_text(app.services, invocation(), "/imagine a harbour")
    assert reply is not None and reply.job_id
    store = app.services.store
    await store.set_message(reply.job_id, "telegram_status", "-100:5")
    job = app.engine.active_job(reply.job_id)
    assert job is not None and "telegram_status" not in job.messages  # the engine's copy never saw it
    await store.save(job)
    saved = await store.get(reply.job_id)
    assert saved is not None and saved.messages.get("telegram_status") == "-100:5"
