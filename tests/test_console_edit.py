"""Issue 14 in the terminal: `/edit <instruction> --image path …` through the console adapter, the real OpenAI
client and the simulator's `/v1/images/edits` (gpt-image-1 takes several images)."""

from __future__ import annotations

import io
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import SecretStr

from adapters.backends.openai_images import OpenAIImagesBackend
from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import App, build_app
from bot.replies import Tone
from simulators.openai_images import OpenAIImagesSimulator
from tests.conftest import make_settings
from tests.fakes import FakeBackend, png

RED, BLUE = (220, 30, 30), (30, 30, 220)


def settings_for(data_dir: Path, url: str) -> Any:
    preset = {
        "backend": "openai",
        "checkpoint": "gpt-image-1",
        "steps": 30,
        "max_steps": 30,
        "base_resolution": 1024,
        "aspect_ratios": ["1:1", "3:2", "2:3"],
        "max_images": 1,
        "max_references": 3,
    }
    backends = {
        "local": {"kind": "forge", "url": "http://127.0.0.1:9"},
        "openai": {"kind": "openai", "url": url, "model": "gpt-image-1"},
    }
    return make_settings(data_dir, backends=backends, presets={"gpt_edit": preset})


@pytest.fixture
async def terminal(tmp_path: Path) -> AsyncIterator[tuple[ConsoleSession, io.StringIO, OpenAIImagesSimulator, App]]:
    sim = OpenAIImagesSimulator()
    url = await sim.start()
    stream = io.StringIO()
    outbound = ConsoleOutbound(stream=stream, interval=0)
    editor = OpenAIImagesBackend("openai", url, SecretStr("sk-test"), {"model": "gpt-image-1"})
    app = await build_app(settings_for(tmp_path / "data", url), [outbound], backends=[FakeBackend(), editor])
    await app.start()
    yield ConsoleSession(app.services, outbound), stream, sim, app
    await app.stop()
    await sim.stop()


async def test_console_edit_with_two_image_paths(
    terminal: tuple[ConsoleSession, io.StringIO, OpenAIImagesSimulator, App], tmp_path: Path
) -> None:
    session, stream, sim, app = terminal
    (tmp_path / "room.png").write_bytes(png(96, 64, RED))
    (tmp_path / "my cat.png").write_bytes(png(64, 64, BLUE))
    line = f'/edit put the cat on the sofa --image {tmp_path / "room.png"} --image "{tmp_path / "my cat.png"}"'
    reply = await session.handle(line)
    assert reply is not None and reply.job_id is not None, stream.getvalue()
    await session.finish_jobs()
    sent = sim.edit_requests[0]
    assert sent["prompt"] == "put the cat on the sofa" and [f[0] for f in sent["files"]] == ["image[]", "image[]"]
    assert sent["size"] == "1536x1024"  # the room's 3:2 shape
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.request.kind == "edit" and len(job.request.reference_image_ids) == 2
    assert f"[Reroll: reroll:{job.id}]" in stream.getvalue()
    help_text = await session.handle("/help")
    assert help_text is not None and "--image photo.png" in help_text.text


async def test_console_edit_refusals_name_the_file(
    terminal: tuple[ConsoleSession, io.StringIO, OpenAIImagesSimulator, App], tmp_path: Path
) -> None:
    session, _, sim, app = terminal
    missing = await session.handle(f"/edit make it night --image {tmp_path / 'nope.png'}")
    assert missing is not None and missing.tone is Tone.ERROR and "nope.png" in missing.text
    (tmp_path / "notes.txt").write_text("not a picture")
    text = await session.handle(f"/edit make it night --image {tmp_path / 'notes.txt'}")
    assert text is not None and text.tone is Tone.ERROR and "not an image" in text.text
    (tmp_path / "a.png").write_bytes(png())
    four = await session.handle("/edit combine " + " ".join(f"--image {tmp_path / 'a.png'}" for _ in range(4)))
    assert four is not None and four.tone is Tone.ERROR and "at most 3" in four.text
    many = await session.handle(f"/edit make it night --image {tmp_path / 'a.png'} --n 3")
    assert many is not None and many.tone is Tone.ERROR and "one image at a time" in many.text and "--n" in many.text
    huge = tmp_path / "huge.png"  # over PIL's own warning limit (89.5 Mpx), under its error limit
    Image.new("1", (10_000, 9_500)).save(huge)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        bomb = await session.handle(f"/edit make it night --image {huge}")
    assert bomb is not None and bomb.tone is Tone.ERROR and "10000×9500" in bomb.text
    assert not [w for w in warned if issubclass(w.category, Image.DecompressionBombWarning)]  # no stderr noise
    row = await app.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 0 and sim.edit_requests == []


async def test_console_imagine_takes_one_image_path_for_img2img(
    terminal: tuple[ConsoleSession, io.StringIO, OpenAIImagesSimulator, App], tmp_path: Path
) -> None:
    session, stream, _, app = terminal
    (tmp_path / "start.png").write_bytes(png(64, 64, RED))
    reply = await session.handle(f"/imagine a red fox --preset sd15 --image {tmp_path / 'start.png'}")
    assert reply is not None and reply.job_id is not None, stream.getvalue()
    job = await app.services.store.get(reply.job_id)
    assert job is not None and job.request.kind == "img2img" and job.request.source_image_id
    two = await session.handle(f"/imagine a fox --image {tmp_path / 'start.png'} --image {tmp_path / 'start.png'}")
    assert two is not None and two.tone is Tone.ERROR and "one image" in two.text
