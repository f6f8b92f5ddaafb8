"""Commands through the real engine and SQLite, with a fake backend: bad input costs nothing."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from bot.app import App
from bot.models import JobState
from bot.replies import Tone
from commands.dispatch import dispatch_button, dispatch_text
from tests.conftest import AppFactory, invocation
from tests.fakes import FakeBackend, RecordingOutbound, png


async def count_jobs(app: App) -> int:
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    return int(row[0]) if row else -1


async def charged(app: App) -> float:
    row = await app.db.fetchone("SELECT COALESCE(SUM(amount), 0) FROM quota_ledger WHERE state != 'refunded'")
    return float(row[0]) if row else -1.0


def bomb_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (6000, 6000)).save(out, format="PNG")
    return out.getvalue()


BAD_INPUTS = [
    ("/imagine", {}, "needs a value for prompt"),
    ("/imagine    ", {}, "needs a value for prompt"),
    ("/imagine " + "x" * 2001, {}, "limit is 2,000"),
    ("/imagine cat --preset nope", {}, "no preset 'nope'"),
    ("/imagine cat --ar 21:9", {}, "--ar must be one of"),
    ("/imagine cat --preset flux --ar 4:3", {"channel_nsfw": True}, "Allowed: 1:1"),
    ("/imagine cat --steps 61", {}, "--steps must be from 1 to 60 with preset 'sdxl' (got 61)"),
    ("/imagine cat --steps 0", {}, "--steps must be from 1 to 60"),
    ("/imagine cat --n 5", {}, "--n must be from 1 to 4 with preset 'sdxl'"),
    # One message with the preset's real bounds, whatever the registry's absolute cap (10) says.
    ("/imagine cat --n 99", {}, "--n must be from 1 to 4 with preset 'sdxl'"),
    ("/imagine cat --n 10", {}, "--n must be from 1 to 4 with preset 'sdxl'"),
    ("/imagine cat --count 0", {}, "--count must be from 1 to 4"),
    ("/imagine cat --seed 99999999999999999999", {}, "(got 99999999999999999999)"),
    ("/imagine cat --seed 4294967296", {}, "--seed must be from 0"),
    ("/imagine cat --seed -5", {}, "seed must be from 0"),
    ("/imagine cat <lora:secret:1> --preset flux", {}, "LoRA secret is not allowed"),
    ("/imagine cat", {"source_image": b"not an image at all"}, "not an image"),
    ("/imagine cat", {"source_image": png()[:40]}, "not an image"),
    ("/imagine cat", {"source_image": bomb_png()}, "limit is 16,777,216 pixels"),
    ("/imagine cat --strength 0.5", {}, "strength only applies"),
    ("/imagine cat --n 4 --steps 60", {"roles": []}, "daily quota"),
]


@pytest.mark.parametrize(("text", "extra", "message"), BAD_INPUTS, ids=[t[:40] for t, _, _ in BAD_INPUTS])
async def test_bad_input_is_explained_and_costs_nothing(
    app_factory: AppFactory, text: str, extra: dict[str, object], message: str
) -> None:
    app = await app_factory(quota={"user_daily": 100.0})
    reply = await dispatch_text(app.services, invocation(**extra), text)
    assert reply is not None and reply.tone is Tone.ERROR and reply.private
    assert message in reply.text
    assert await count_jobs(app) == 0
    assert await charged(app) == 0
    assert len(app.engine.scheduler) == 0


async def test_oversized_source_file_is_refused(app_factory: AppFactory) -> None:
    app = await app_factory(limits={"max_source_bytes": 2048})
    reply = await dispatch_text(app.services, invocation(source_image=png(256, 256) + b"\0" * 4096), "/imagine cat")
    assert reply is not None and "limit is" in reply.text and await count_jobs(app) == 0


async def test_nsfw_preset_only_in_nsfw_channels(app_factory: AppFactory) -> None:
    app = await app_factory(presets={"spicy": {"checkpoint": "x", "nsfw": True}})
    reply = await dispatch_text(app.services, invocation(), "/imagine cat --preset spicy")
    assert reply is not None and "age-restricted" in reply.text and await count_jobs(app) == 0
    ok = await dispatch_text(app.services, invocation(channel_nsfw=True), "/imagine cat --preset spicy")
    assert ok is not None and ok.tone is not Tone.ERROR and await count_jobs(app) == 1


async def test_imagine_runs_and_delivers_once(app_factory: AppFactory) -> None:
    outbound = RecordingOutbound()
    app = await app_factory(outbound=outbound)
    reply = await dispatch_text(app.services, invocation(), "/imagine a red fox --n 2 --seed 5 --ar 16:9")
    assert reply is not None and reply.job_id and "#1 in line" in reply.text
    assert reply.buttons[0][0].id == f"cancel:{reply.job_id}"
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 5)
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.delivery.value == "delivered"
    assert (job.request.width, job.request.height, job.request.prompt) == (1344, 768, "a red fox, highly detailed")
    assert outbound.delivered_ids() == [reply.job_id]
    final = outbound.deliveries[0][1]
    assert len(final.images) == 2 and [i.seed for i in await app.services.store.images(job.id)] == [5, 6]
    labels = [b.label for row in final.buttons for b in row]
    assert labels == ["Reroll", "Info", "Delete", "V1", "V2", "U1", "U2"]
    assert all(len(b.id.encode()) <= 64 for row in final.buttons for b in row)


async def test_buttons_reroll_vary_upscale_info_delete(app_factory: AppFactory) -> None:
    backend = FakeBackend()
    app = await app_factory(backend=backend)
    first = await dispatch_text(app.services, invocation(), "/imagine a fox --n 2 --seed 10")
    assert first is not None and first.job_id
    await asyncio.wait_for(app.engine.finished_event(first.job_id).wait(), 5)
    jobs = {}
    for button in ("reroll", "vary", "upscale"):
        reply = await dispatch_button(app.services, invocation(), f"{button}:{first.job_id}:1")
        assert reply.job_id and reply.tone is not Tone.ERROR, reply.text
        await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 5)
        jobs[button] = backend.calls[-1][1]
    assert jobs["reroll"].seed != 10 and jobs["reroll"].parent_job_id == first.job_id
    assert (jobs["vary"].seed, jobs["vary"].subseed_strength) == (11, 0.15)
    assert jobs["upscale"].kind == "upscale" and jobs["upscale"].source_image_id == f"{first.job_id}-1"
    info = await dispatch_button(app.services, invocation(user="someone"), f"info:{first.job_id}")
    assert "Seeds: 10, 11" in info.text
    refused = await dispatch_button(app.services, invocation(user="someone"), f"delete:{first.job_id}")
    assert refused.tone is Tone.ERROR and await app.services.store.images(first.job_id)
    deleted = await dispatch_button(app.services, invocation(), f"delete:{first.job_id}")
    assert deleted.remove_message and await app.services.store.images(first.job_id) == []
    bad = await dispatch_button(app.services, invocation(), "explode:abc")
    assert bad.tone is Tone.ERROR


async def test_cancel_queued_refunds_and_others_cannot_cancel(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    outbound = RecordingOutbound()
    app = await app_factory(backend=backend, outbound=outbound)
    running = await dispatch_text(app.services, invocation(), "/imagine one")
    queued = await dispatch_text(app.services, invocation(), "/imagine two")
    assert running and queued and running.job_id and queued.job_id
    await asyncio.wait_for(backend.started.wait(), 5)
    refused = await dispatch_text(app.services, invocation(user="mallory"), f"/cancel {queued.job_id}")
    assert refused is not None and "Only the person" in refused.text
    done = await dispatch_text(app.services, invocation(), f"/cancel {queued.job_id}")
    assert done is not None and "Cancelled" in done.text
    job = await app.services.store.get(queued.job_id)
    assert job is not None and job.state is JobState.CANCELLED
    row = await app.db.fetchone("SELECT state FROM quota_ledger WHERE job_id = ?", (queued.job_id,))
    assert row is not None and row[0] == "refunded"
    stopping = await dispatch_text(app.services, invocation(), "/cancel")
    assert stopping is not None and running.job_id in stopping.text
    await asyncio.wait_for(app.engine.finished_event(running.job_id).wait(), 5)
    job = await app.services.store.get(running.job_id)
    assert job is not None and job.state is JobState.CANCELLED and backend.interrupted == [running.job_id]


async def test_black_image_is_explained_and_refunded(app_factory: AppFactory) -> None:
    outbound = RecordingOutbound()
    app = await app_factory(backend=FakeBackend(black=True, kind="forge"), outbound=outbound)  # flux is a Forge preset
    reply = await dispatch_text(app.services, invocation(channel_nsfw=True), "/imagine night --preset flux")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 5)
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.state is JobState.FAILED and "Simple" in (job.error or "")
    assert "Nothing was charged" in outbound.deliveries[0][1].text
    assert await charged(app) == 0


async def test_transient_errors_are_retried(app_factory: AppFactory) -> None:
    from bot.errors import BackendError

    backend = FakeBackend(failures=[BackendError("boom", retryable=True)])
    app = await app_factory(backend=backend)
    reply = await dispatch_text(app.services, invocation(), "/imagine retry me")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 5)
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == 2


async def test_queue_history_show_quota_presets_help(app_factory: AppFactory) -> None:
    backend = FakeBackend(hold=True)
    app = await app_factory(backend=backend)
    first = await dispatch_text(app.services, invocation(), "/imagine first")
    second = await dispatch_text(app.services, invocation(user="u2"), "/imagine second")
    assert first and second and second.job_id
    await asyncio.wait_for(backend.started.wait(), 5)
    queue = await dispatch_text(app.services, invocation(), "/queue")
    assert queue is not None and f"#1 {second.job_id}" in queue.text
    history = await dispatch_text(app.services, invocation(), "/history")
    assert history is not None and first.job_id in (history.text or "")
    show = await dispatch_text(app.services, invocation(user="u2"), f"/show {second.job_id}")
    assert show is not None and "#1 in line" in show.text
    quota = await dispatch_text(app.services, invocation(), "/quota")
    assert quota is not None and "of 500 used" in quota.text
    presets = await dispatch_text(app.services, invocation(), "/presets")
    assert presets is not None and "sdxl (default)" in presets.text and "flux" in presets.text
    helped = await dispatch_text(app.services, invocation(), "/help")
    assert helped is not None and "/imagine <prompt>" in helped.text and "/admin" not in helped.text
    backend.release.set()


async def test_admin_commands_need_admin(app_factory: AppFactory) -> None:
    app = await app_factory()
    refused = await dispatch_text(app.services, invocation(), "/admin pause")
    assert refused is not None and refused.tone is Tone.ERROR
    assert await dispatch_text(app.services, invocation(is_admin=True), "/admin ban u9")
    banned = await dispatch_text(app.services, invocation(user="u9"), "/imagine cat")
    assert banned is not None and "banned" in banned.text and await count_jobs(app) == 0
    await dispatch_text(app.services, invocation(is_admin=True), "/admin deny sdxl")
    denied = await dispatch_text(app.services, invocation(), "/imagine cat --preset sdxl")
    assert denied is not None and "not allowed in this channel" in denied.text
    other_channel = await dispatch_text(app.services, invocation(channel="c2"), "/imagine cat --preset sdxl")
    assert other_channel is not None and other_channel.tone is not Tone.ERROR
