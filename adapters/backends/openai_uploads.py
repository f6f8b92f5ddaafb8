"""The files of an OpenAI `/v1/images/edits` request, shaped to what each model accepts.

GPT image models: up to 16 png/jpeg/webp files under 50 MB (others are re-encoded as PNG); one goes as `image`,
several as `image[]` (as the official client sends a list). dall-e-2: one square PNG under 4 MB in RGBA, LA or L
(RGB is refused by the API), at most 1024 pixels a side. A mask is always a PNG.
"""

from __future__ import annotations

import io
import re

from PIL import Image

from adapters.backends.downloads import image_format
from bot.errors import BackendError

EDIT_MODELS = re.compile(r"^(dall-e-2|gpt-image|chatgpt-image)")
INSTRUCTION_EDITS = re.compile(r"^(gpt-image|chatgpt-image)")  # edit by instruction, with reference images
MIMETYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
MAX_IMAGES = 16
MAX_BYTES = 50 * 1024 * 1024
DALLE2_MAX_BYTES = 4 * 1024 * 1024

Files = list[tuple[str, tuple[str, bytes, str]]]


def edit_files(model: str, sources: list[bytes], mask: bytes | None = None) -> Files:
    """The multipart file fields, or BackendError (not retryable) for what the model cannot take."""
    if not EDIT_MODELS.match(model):
        raise BackendError.of("backend.openai_no_edits", model=model)
    files: Files
    if model.startswith("dall-e-2"):
        if len(sources) != 1:
            raise BackendError.of("backend.openai_edit_count", model=model, most=1, count=len(sources))
        files = [("image", ("image.png", _dalle2_png(sources[0]), "image/png"))]
    else:
        if len(sources) > MAX_IMAGES:
            raise BackendError.of("backend.openai_edit_count", model=model, most=MAX_IMAGES, count=len(sources))
        field = "image" if len(sources) == 1 else "image[]"
        files = []
        for number, data in enumerate(sources, 1):
            kind, payload = _gpt_file(data, number)
            files.append((field, (f"image-{number}.{EXTENSIONS[kind]}", payload, MIMETYPES[kind])))
    if mask is not None:
        files.append(("mask", ("mask.png", _png(_open(mask, 0)), "image/png")))
    return files


def _open(data: bytes, number: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BackendError.of("backend.openai_edit_not_image", number=number) from exc


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _gpt_file(data: bytes, number: int) -> tuple[str, bytes]:
    kind = image_format(data)
    if kind in MIMETYPES and len(data) < MAX_BYTES:
        return kind, data
    payload = _png(_open(data, number).convert("RGBA"))  # GIF, BMP, TIFF…: the API takes png, jpeg and webp only
    if len(payload) >= MAX_BYTES:
        raise BackendError.of("backend.openai_edit_too_large", number=number, most=MAX_BYTES // (1024 * 1024))
    return "PNG", payload


def _dalle2_png(data: bytes) -> bytes:
    img = _open(data, 1)
    if img.width != img.height:
        raise BackendError.of("backend.openai_edit_square", width=img.width, height=img.height)
    if img.mode not in ("RGBA", "LA", "L"):
        img = img.convert("RGBA")
    for side in (1024, 512, 256):  # dall-e-2 makes at most 1024x1024; smaller until it fits in 4 MB
        payload = _png(img if img.width <= side else img.resize((side, side), Image.Resampling.LANCZOS))
        if len(payload) < DALLE2_MAX_BYTES:
            return payload
    raise BackendError.of("backend.openai_edit_too_large", number=1, most=DALLE2_MAX_BYTES // (1024 * 1024))
