"""`python -m tests.web_screenshot docs/gallery.png`: the README's screenshot of the gallery, made in Chromium."""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.models import GeneratedImage, GenerationRequest, GenerationResult
from bot.ports import ProgressCallback
from simulators.images import render_image
from tests.fakes import FakeBackend
from tests.web_support import Chat, browser, gallery_app, sign_in

PROMPTS = (
    "a lighthouse at dusk",
    "a red fox in snow",
    "koi pond, ink painting",
    "a robot reading in a library",
    "mountain lake at sunrise",
    "a cat astronaut",
    "neon city street in the rain",
    "still life with lemons",
)


@dataclass
class PictureBackend(FakeBackend):
    """Pictures that look like something (the A1111 simulator's renderer) instead of a flat colour."""

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        out = io.BytesIO()
        render_image(request.user_prompt, request.seed, 384, 384).save(out, format="PNG")
        return GenerationResult(images=[GeneratedImage(data=out.getvalue(), seed=request.seed)])


async def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as data:
        async with gallery_app(Path(data), PictureBackend()) as app, browser() as chromium:
            chat = Chat(app)
            for n, prompt in enumerate(PROMPTS):
                await chat.imagine("alice" if n % 3 else "bob", f"{prompt} --seed {n + 11}")
            page = await chromium.new_page(viewport={"width": 1100, "height": 720})
            await sign_in(page, await chat.link("alice"))
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=str(target))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/gallery.png")))
