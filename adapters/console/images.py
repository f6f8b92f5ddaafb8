"""Images in the terminal: `--image path` on /edit (up to 3, in order) and /imagine (img2img), read from disk.

`--image 2` (a bare number) keeps its meaning on /edit: the image of the job given with `--job`.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.errors import InvalidRequest
from bot.presets import MAX_REFERENCES

IMAGE_FLAG = re.compile(r"(?:(?<=\s)|^)--image(?:\s+|\s*=\s*)(\"[^\"]*\"|'[^']*'|\S+)")


def take_paths(line: str) -> tuple[str, list[str]]:
    """The line without its `--image <path>` options, and the paths in the order given."""
    paths: list[str] = []

    def take(match: re.Match[str]) -> str:
        value = match.group(1)
        if value.isdigit():
            return match.group(0)
        paths.append(value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else value)
        return ""

    return IMAGE_FLAG.sub(take, line), paths


async def read_images(paths: list[str], max_bytes: int) -> list[bytes]:
    """The files' bytes; InvalidRequest naming a file that cannot be read or is too large. More than 3 are
    refused before any is read."""
    if len(paths) > MAX_REFERENCES:
        raise InvalidRequest.of("edit.too_many", count=len(paths), most=MAX_REFERENCES, first_extra=MAX_REFERENCES + 1)
    return [await asyncio.to_thread(_read, name, max_bytes) for name in paths]


def _read(name: str, max_bytes: int) -> bytes:
    path = Path(name).expanduser()
    try:
        size = path.stat().st_size
        if size > max_bytes:  # refused as the core would, without reading it
            raise InvalidRequest.of("error.image_too_large", size=size / 1_048_576, limit=max_bytes / 1_048_576)
        return path.read_bytes()
    except OSError as exc:
        raise InvalidRequest.of("edit.console_file", path=name, reason=exc.strerror or type(exc).__name__) from exc
