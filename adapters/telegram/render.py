"""Turning platform-neutral replies into what Telegram accepts: cut texts, keyboards, photos within the rules."""

from __future__ import annotations

import io
import re

from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.replies import Button

MENTION = re.compile(r"@(?=[A-Za-z0-9_])")
WORD_JOINER = "\u2060"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ANSWER = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10000
MAX_RATIO = 20
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


def quiet(text: str) -> str:
    """Neutralise `@username` mentions (Telegram turns them into live, notifying links; Discord's equivalent is
    `allowed_mentions=none`): a word joiner after the @ shows the same text but matches no username."""
    return MENTION.sub("@" + WORD_JOINER, text)


def cut(text: str, limit: int) -> str:
    """Fit a text into `limit` characters (mentions neutralised), ending with an ellipsis when something was cut."""
    text = quiet(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    """An inline keyboard whose callback_data are the button ids (at most 64 bytes each)."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.id) for button in row] for row in rows if row]
    )


def fits_photo_rules(data: bytes) -> bool:
    """10 MB, width + height <= 10000, ratio <= 20: what sendPhoto accepts."""
    if len(data) > MAX_PHOTO_BYTES:
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:
        return False
    return width + height <= MAX_PHOTO_SIDES and max(width, height) <= MAX_RATIO * min(width, height)


def fit_photo(data: bytes) -> bytes:
    """Pad to a ratio of at most 20, scale to width + height <= 10000 and re-encode as JPEG under 10 MB."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    if max(width, height) > MAX_RATIO * min(width, height):
        long_side = max(width, height)
        short = -(-long_side // MAX_RATIO)
        size = (width, short) if width >= height else (short, height)
        canvas = Image.new("RGB", size, (0, 0, 0))
        canvas.paste(image, ((size[0] - width) // 2, (size[1] - height) // 2))
        image, (width, height) = canvas, size
    scale = min(1.0, (MAX_PHOTO_SIDES - 10) / (width + height))
    quality = 90
    while True:
        target = (max(1, int(width * scale)), max(1, int(height * scale)))
        resized = image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        resized.save(out, format="JPEG", quality=quality)
        if out.tell() <= MAX_PHOTO_BYTES - 1024:
            return out.getvalue()
        quality, scale = max(60, quality - 10), scale * 0.8


def chat_is_group(chat_id: int) -> bool:
    return chat_id < 0
