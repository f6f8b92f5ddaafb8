"""The LoRA picker through the console: /loras offers only what a backend that runs the preset has, --lora adds
the tag and trigger words, and the job goes only to a backend that has the LoRA (two real A1111 clients)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import App, build_app
from bot.pool import check
from simulators.a1111 import A1111Simulator
from tests.conftest import make_settings

pytestmark = pytest.mark.backends

JOB = re.compile(r"\b([0-9a-f]{12})\b")
SDXL = "sd_xl_base_1.0.safetensors [31e35c80fc]"
LORAS = {
    "detail": {"file": "add-detail-xl", "weight": 0.6, "triggers": ["detailed"], "max_weight": 1.0},
    "pixel": {"file": "pixel-art-xl", "triggers": ["pixel art"]},  # on no backend: never offered
}
PRESETS: dict[str, Any] = {"sdxl": {"base_resolution": 256, "loras": LORAS}}


@dataclass
class Stand:
    app: App
    session: ConsoleSession
    stream: io.StringIO
    stocked: A1111Simulator
    bare: A1111Simulator

    async def say(self, line: str) -> str:
        start = len(self.stream.getvalue())
        await self.session.handle(line)
        return self.stream.getvalue()[start:]

    def prompts(self, sim: A1111Simulator) -> list[str]:
        return [
            str((r.json or {}).get("prompt"))
            for r in sim.requests
            if r.method == "POST" and r.path == "/sdapi/v1/txt2img"
        ]


@pytest.fixture
async def stand(tmp_path: Path) -> AsyncIterator[Stand]:
    stocked = A1111Simulator(flavour="a1111", checkpoints=[SDXL], loras=["add-detail-xl.safetensors"])
    bare = A1111Simulator(flavour="a1111", checkpoints=[SDXL])
    backends = {
        "local": {"enabled": False},
        "bare": {"kind": "a1111", "url": await bare.start(), "poll_interval_seconds": 0.05},
        "stocked": {"kind": "a1111", "url": await stocked.start(), "poll_interval_seconds": 0.05},
    }
    stream = io.StringIO()
    outbound = ConsoleOutbound(stream=stream, interval=0)
    overrides = {"backends": backends, "presets": PRESETS, "quota": {"enabled": False}}
    app = await build_app(make_settings(tmp_path / "data", **overrides), [outbound])
    await app.start()
    for worker in app.engine.workers:  # the check each worker runs as it starts, done before the first command
        await check(worker)
    assert app.services is not None
    yield Stand(app, ConsoleSession(app.services, outbound), stream, stocked, bare)
    await app.stop()
    for sim in (stocked, bare):
        await sim.stop()


async def test_loras_lists_only_what_a_backend_has(stand: Stand) -> None:
    text = await stand.say("/loras sdxl")
    assert "detail — weight 0.6 (0 to 1)" in text and "adds “detailed”" in text, text
    # Console ids count from 1, like the image buttons (V1, U1).
    assert "pixel" not in text and "[detail: lora:sdxl:1]" in text and "lora:sdxl:2" not in text
    assert "/imagine … --preset sdxl --lora detail:0.6" in await stand.say("lora:sdxl:1")  # the console's button
    assert "not one of mine" in await stand.say("lora:sdxl:7")


async def test_a_lora_job_goes_only_to_the_backend_that_has_it(stand: Stand) -> None:
    texts = [await stand.say(f"/imagine a castle {i} --preset sdxl --lora detail:0.8 --steps 2") for i in range(4)]
    texts += [await stand.say(f"/imagine a plain castle {i} --preset sdxl --steps 2") for i in range(2)]
    job_ids = [JOB.findall(text)[0] for text in texts]
    async with asyncio.timeout(30):
        for job_id in job_ids:
            await stand.app.engine.finished_event(job_id).wait()
    with_lora = [p for p in stand.prompts(stand.stocked) if "<lora:" in p]
    assert len(with_lora) == 4 and not [p for p in stand.prompts(stand.bare) if "<lora:" in p]
    assert all("detailed" in p and "<lora:add-detail-xl:0.8>" in p for p in with_lora), with_lora


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("--lora detail:1.4", "from 0 to 1 (got 1.4)"),
        ("--lora nothere", "'nothere' is not offered by preset 'sdxl'"),
        ("--lora pixel", "pixel-art-xl"),  # listed by the admin, on no backend: refused, nothing queued
    ],
)
async def test_bad_picks_are_refused_and_cost_nothing(stand: Stand, option: str, words: str) -> None:
    text = await stand.say(f"/imagine a castle --preset sdxl {option}")
    assert words in text, text
    assert stand.app.engine.queued_jobs() == [] and not stand.prompts(stand.stocked) + stand.prompts(stand.bare)


async def test_two_loras_and_a_wildcard_make_one_tagged_job_per_choice(stand: Stand) -> None:
    text = await stand.say("/imagine a {red|blue} castle, detailed --preset sdxl --lora detail --lora detail:0.3")
    assert "2 jobs" in text, text
    job_ids = JOB.findall(text)
    assert len(set(job_ids)) == 2
    async with asyncio.timeout(30):
        for job_id in set(job_ids):
            await stand.app.engine.finished_event(job_id).wait()
    # the trigger word is in the prompt already, so it is not added twice; the later weight wins
    assert sorted(stand.prompts(stand.stocked)) == [
        "a blue castle, detailed, <lora:add-detail-xl:0.3>, highly detailed",
        "a red castle, detailed, <lora:add-detail-xl:0.3>, highly detailed",
    ]
