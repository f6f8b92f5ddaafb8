"""Issue 14, the core of /edit: presets, checks, routing by reference count, quotas, storage, /show, Reroll."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.app import App, build_app
from bot.models import JobState
from bot.ports import Capabilities
from bot.replies import Reply, Tone
from commands.dispatch import dispatch, dispatch_button, dispatch_text
from commands.registry import CommandInput
from tests.conftest import invocation, make_settings
from tests.edit_support import FakeEditor, edit_overrides
from tests.fakes import FakeBackend, RecordingOutbound, png

Build = Callable[..., Awaitable[App]]
RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 60)


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Build]:
    apps: list[App] = []

    async def make(editor: FakeBackend | None = None, **overrides: Any) -> App:
        settings = make_settings(tmp_path / "data", **edit_overrides(**overrides))
        backends = [FakeBackend(), editor or FakeEditor()]
        app = await build_app(settings, [RecordingOutbound()], backends=backends)
        await app.start()
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.stop()


async def edit(app: App, text: str, images: list[bytes], **where: Any) -> Reply:
    who = invocation(**where)
    who.reference_images = images
    reply = await dispatch_text(app.services, who, text)
    assert reply is not None
    return reply


async def done(app: App, reply: Reply) -> None:
    assert reply.job_id is not None, reply.text
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 10)


def colour(data: bytes) -> tuple[int, ...]:
    return tuple(Image.open(io.BytesIO(data)).convert("RGB").getpixel((1, 1)))


async def nothing_queued_or_stored(app: App) -> None:
    for table in ("jobs", "quota_ledger", "images"):
        row = await app.db.fetchone(f"SELECT COUNT(*) FROM {table}")
        assert row is not None and row[0] == 0, table


async def test_an_edit_of_three_images_runs_on_the_editor_with_the_references_in_order(build: Build) -> None:
    editor = FakeEditor()
    app = await build(editor)
    images = [png(64, 64, RED), png(96, 64, BLUE), png(64, 96, GREEN)]
    reply = await edit(app, "/edit put the cat from image 2 on the sofa --preset qwen --seed 7", images)
    await done(app, reply)
    job_id, request, sources = editor.edits[0]
    assert job_id == reply.job_id and [colour(data) for data in sources] == [RED, BLUE, GREEN]
    assert request.kind == "edit" and request.user_prompt == "put the cat from image 2 on the sofa"
    assert request.seed == 7 and len(request.reference_image_ids) == 3
    stored = [await app.services.store.image(image_id) for image_id in request.reference_image_ids]
    assert all(image is not None and image.kind == "source" for image in stored)
    for image, data in zip(stored, sources, strict=True):
        assert image is not None and hashlib.sha256(data).hexdigest() == image.sha256
    assert [s[:4] for s in sources] == [b"\x89PNG"] * 3
    job = await app.services.store.get(reply.job_id or "")
    assert job is not None and job.state is JobState.SUCCEEDED and job.backend == "editor"


async def test_the_size_follows_the_first_images_shape(build: Build) -> None:
    editor = FakeEditor()
    app = await build(editor)
    await done(app, await edit(app, "/edit make it night --preset kontext", [png(300, 200)]))
    request = editor.edits[0][1]
    assert request.width > request.height  # 3:2 from a 300×200 picture


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [
        ("/edit make it night --preset qwen", 4, "at most 3"),
        ("/edit make it night --preset kontext", 2, "takes only 1 image"),
        ("/edit make it night --preset sd15", 1, "cannot edit images"),
        ("/edit make it night", 0, "needs an image"),
    ],
)
async def test_refusals_queue_and_charge_nothing(build: Build, text: str, count: int, expected: str) -> None:
    app = await build(quota={"user_daily": 1000.0})
    reply = await edit(app, text, [png(64, 64)] * count)
    assert reply.tone is Tone.ERROR and expected in reply.text, reply.text
    await nothing_queued_or_stored(app)


async def test_a_bad_reference_is_named_and_nothing_is_stored(build: Build) -> None:
    app = await build(limits={"retry_backoff_seconds": 0, "max_source_pixels": 100_000})
    reply = await edit(app, "/edit swap them --preset qwen", [png(64, 64), b"%PDF-1.4 not an image"])
    assert reply.tone is Tone.ERROR and "Image 2 of 2" in reply.text and "not an image" in reply.text
    bomb = await edit(app, "/edit swap them --preset qwen", [png(64, 64), png(64, 64), png(400, 400)])
    assert bomb.tone is Tone.ERROR and "Image 3 of 3" in bomb.text and "pixels" in bomb.text
    await nothing_queued_or_stored(app)


async def test_three_references_never_go_to_a_one_reference_backend(build: Build) -> None:
    kontext_only = FakeEditor(capabilities=Capabilities(upscale=False, edits=True, max_references=1))
    app = await build(kontext_only)
    refused = await edit(app, "/edit combine them --preset qwen", [png()] * 3)
    assert refused.tone is Tone.ERROR and "at most 1 reference" in refused.text, refused.text
    await nothing_queued_or_stored(app)
    await done(app, await edit(app, "/edit make it night --preset qwen", [png()]))
    assert len(kontext_only.edits) == 1


async def test_an_edit_never_goes_to_a_backend_that_cannot_edit(build: Build) -> None:
    app = await build(FakeEditor(capabilities=Capabilities(edits=False)))
    reply = await edit(app, "/edit make it night --preset qwen", [png()])
    assert reply.tone is Tone.ERROR and "cannot edit images" in reply.text
    await nothing_queued_or_stored(app)


async def test_references_count_in_the_quota(build: Build) -> None:
    # qwen at 512×512, 4 steps: one image costs 4 × 0.262144 = 1.048576; with 2 references, 3 × that = 3.146.
    app = await build(quota={"user_daily": 3.0})
    refused = await edit(app, "/edit swap them --preset qwen --ar 1:1", [png(), png()])
    assert refused.tone is Tone.ERROR and "costs 3.146" in refused.text, refused.text
    await nothing_queued_or_stored(app)
    one = await edit(app, "/edit make it night --preset qwen --ar 1:1", [png()])
    await done(app, one)
    job = await app.services.store.get(one.job_id or "")
    assert job is not None and job.cost == pytest.approx(2.097)


async def test_edit_of_a_stored_result_follows_the_show_rule_and_rerolls_after_a_restart(
    build: Build, tmp_path: Path
) -> None:
    editor = FakeEditor()
    app = await build(editor)
    first = await dispatch_text(app.services, invocation(), "/imagine a red barn --preset sd15")
    assert first is not None
    await done(app, first)
    options = {"instruction": "paint it blue", "job": first.job_id, "image": 1, "preset": "qwen"}
    stranger = await dispatch(app.services, invocation(user="u9", channel="c9"), CommandInput("edit", options))
    assert stranger.tone is Tone.ERROR and "no job" in stranger.text.lower()
    reply = await dispatch(app.services, invocation(), CommandInput("edit", options))
    await done(app, reply)
    result = (await app.services.store.images(first.job_id or ""))[0]
    request = editor.edits[0][1]
    assert request.parent_job_id == first.job_id and request.parent_index == 0
    assert editor.edits[0][2] == [await app.services.files.read(result.path)]
    await app.stop()
    again_editor = FakeEditor()
    app = await build(again_editor)  # a restart: nothing in memory, the references come from the store
    reroll = await dispatch_button(app.services, invocation(), f"reroll:{reply.job_id}")
    await done(app, reroll)
    rerun = again_editor.edits[0]
    assert rerun[1].kind == "edit" and rerun[1].reference_image_ids == request.reference_image_ids
    assert rerun[1].parent_job_id == reply.job_id
    assert rerun[2] == editor.edits[0][2]
    original, rerolled = [await app.services.store.get(r.job_id or "") for r in (reply, reroll)]
    assert original is not None and rerolled is not None
    assert rerolled.cost == original.cost == app.services.settings.presets["qwen"].cost(4, 512, 512, 1, references=1)


async def test_show_and_history_give_the_instruction_and_the_hashes(build: Build) -> None:
    app = await build()
    images = [png(64, 64, RED), png(64, 64, BLUE)]
    reply = await edit(app, "/edit swap the colours --preset qwen", images)
    await done(app, reply)
    job = await app.services.store.get(reply.job_id or "")
    assert job is not None
    stored = [await app.services.store.image(image_id) for image_id in job.request.reference_image_ids]
    hashes = [image.sha256[:12] for image in stored if image is not None]
    shown = await dispatch_text(app.services, invocation(), f"/show {reply.job_id}")
    assert shown is not None and "swap the colours" in shown.text and all(h in shown.text for h in hashes)
    history = await dispatch_text(app.services, invocation(), "/history")
    assert history is not None and f"edit of {hashes[0]}, {hashes[1]}" in history.text


async def test_retention_keeps_the_references_of_a_kept_edit(build: Build) -> None:
    from storage.maintenance import prune

    app = await build()
    reply = await edit(app, "/edit swap them --preset qwen", [png(64, 64, RED), png(64, 64, BLUE)])
    await done(app, reply)
    await app.db.connection.execute("UPDATE images SET created_at = '2000-01-01T00:00:00+00:00'")
    await prune(app.db, app.services.files, 1)  # the job is recent and stays: so do the images it refers to
    job = await app.services.store.get(reply.job_id or "")
    assert job is not None
    assert all([await app.services.store.image(image_id) for image_id in job.request.reference_image_ids])


def test_check_judges_an_edit_preset_as_an_edit() -> None:
    from bot.checktable import Checked, preset_table
    from bot.fit import BackendView
    from bot.ports import BackendHealth, Inventory
    from bot.presets import Preset

    kontext = Preset(name="kontext", backend="comfyui", checkpoint="flux1-dev-kontext.safetensors", max_references=1)
    qwen = Preset(name="qwen", backend="comfyui", checkpoint="qwen_image_edit.safetensors", max_references=3)
    inventory = Inventory(checkpoints=frozenset({"sd15.safetensors"}))  # edit models are the workflow's, not listed
    one = Capabilities(edits=True, max_references=1)
    view = BackendView("kontext-gpu", "comfyui", one, inventory)
    lines, nowhere = preset_table([kontext, qwen], [Checked(view, BackendHealth(ok=True, inventory=inventory))])
    assert nowhere == ["qwen"] and any("at most 1 reference images and the edit has 3" in line for line in lines)


async def test_presets_lists_what_each_edit_preset_takes(build: Build) -> None:
    app = await build()
    reply = await dispatch_text(app.services, invocation(), "/presets")
    assert reply is not None and "qwen (/edit: 1 to 3 images)" in reply.text
    assert "kontext (/edit: 1 image)" in reply.text


async def test_the_text_form_edits_image_n_of_a_job(build: Build) -> None:
    editor = FakeEditor()
    app = await build(editor)
    first = await dispatch_text(app.services, invocation(), "/imagine two barns --preset sd15 --n 2")
    assert first is not None
    await done(app, first)
    reply = await dispatch_text(app.services, invocation(), f"/edit paint it blue --job {first.job_id} --image 2")
    assert reply is not None
    await done(app, reply)
    assert editor.edits[0][1].parent_index == 1 and editor.edits[0][1].preset == "qwen"  # the first edit preset
    wrong = await dispatch_text(app.services, invocation(), f"/edit paint it --job {first.job_id} --image 3")
    assert wrong is not None and wrong.tone is Tone.ERROR and "images 1 to 2" in wrong.text
    lone = await dispatch_text(app.services, invocation(), "/edit paint it --image 2")
    assert lone is not None and lone.tone is Tone.ERROR and "--job" in lone.text
