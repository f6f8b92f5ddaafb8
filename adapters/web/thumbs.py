"""Thumbnails: made once with Pillow in a thread, kept on disk beside the images."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

from PIL import Image

SIZE = 384
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class Thumbnails:
    """`path(image_id, source)` gives the cached thumbnail, making it on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._making: dict[str, asyncio.Task[Path]] = {}

    async def path(self, image_id: str, read: Callable[[], Awaitable[bytes]]) -> Path:
        """`read` gives the image's bytes (from the folder or the bucket), called only to make a new thumbnail."""
        target = self.folder / f"{image_id}.webp"
        if target.exists():
            return target
        task = self._making.get(image_id)
        if task is None:  # two requests for the same new thumbnail make it once
            task = asyncio.get_running_loop().create_task(self._from(read, target))
            self._making[image_id] = task
            task.add_done_callback(lambda _: self._making.pop(image_id, None))
        return await asyncio.shield(task)

    async def _from(self, read: Callable[[], Awaitable[bytes]], target: Path) -> Path:
        data = await read()
        return await asyncio.to_thread(self._make, data, target)

    @staticmethod
    def _make(data: bytes, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((SIZE, SIZE))
            partial = target.with_suffix(".part")
            image.convert("RGB").save(partial, format="WEBP", quality=80)
        partial.replace(target)  # never serve a half-written file
        return target


def content_type(path: Path | bytes) -> str:
    """The image's real type, read from its header rather than trusted from its name."""
    with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path) as image:
        return CONTENT_TYPES.get(image.format or "", "application/octet-stream")


def sniff(data: bytes) -> str:
    """A preview's type from its first bytes (previews arrive as PNG, JPEG or WebP)."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"
