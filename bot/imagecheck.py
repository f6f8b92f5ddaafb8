"""Checks on what a backend returned: is it an image, how big, is it all black (NaN / wrong Flux settings)."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from PIL import Image, UnidentifiedImageError

from bot.errors import BackendError, InvalidRequest

BLACK_MAX_LEVEL = 4  # a channel maximum at or below this over the whole image counts as black


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    sha256: str
    black: bool
    infotext: str
    format: str


def inspect(data: bytes) -> ImageFacts:
    """Decode an image returned by a backend. Raises a retryable BackendError if it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            text = img.info.get("parameters", "") if isinstance(img.info.get("parameters"), str) else ""
            probe = img.convert("RGB")
            small = probe.reduce(max(1, min(probe.size) // 64))
            extrema = cast(tuple[tuple[int, int], ...], small.getextrema())
            black = max(high for _, high in extrema) <= BLACK_MAX_LEVEL
            return ImageFacts(
                width=img.width,
                height=img.height,
                sha256=hashlib.sha256(data).hexdigest(),
                black=black,
                infotext=text,
                format=img.format or "PNG",
            )
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BackendError.of("backend.unreadable_image", retryable=True, detail=str(exc)) from exc


def check_source_image(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[int, int]:
    """Validate an uploaded img2img source. Raises InvalidRequest saying what is allowed."""
    if len(data) > max_bytes:
        raise InvalidRequest.of("error.image_too_large", size=len(data) / 1_048_576, limit=max_bytes / 1_048_576)
    try:
        with _quiet_about_size(), Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                side = int(max_pixels**0.5)
                raise InvalidRequest.of("error.image_pixels", width=width, height=height, limit=max_pixels, side=side)
            img.load()
            return width, height
    except InvalidRequest:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidRequest.of("error.image_bomb", limit=max_pixels) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidRequest.of("error.not_image") from exc


@contextmanager
def _quiet_about_size() -> Iterator[None]:
    """PIL warns on stderr about any image over its own limit; the user is answered by ours instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def to_png(data: bytes) -> bytes:
    """Re-encode an uploaded source image as PNG (the backends all accept it)."""
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, format="PNG")
        return out.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size
