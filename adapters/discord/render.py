"""Reply -> what discord.py sends: content, files that fit the upload limit, and persistent buttons."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import discord
from PIL import Image

from bot.i18n import t
from bot.replies import Action, Button, Reply

log = logging.getLogger(__name__)

MAX_CONTENT = 2000
NO_MENTIONS = discord.AllowedMentions.none()
BUTTON_TEMPLATE = (  # every Action, so a new kind of button is routed without another edit here
    rf"(?P<action>{'|'.join(action.value for action in Action)}):(?P<job>[0-9a-zA-Z_-]+)(?::(?P<index>\d{{1,2}}))?"
)
STYLES = {
    Action.CANCEL: discord.ButtonStyle.secondary,
    Action.DELETE: discord.ButtonStyle.danger,
    Action.REROLL: discord.ButtonStyle.primary,
}


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_TEMPLATE):
    """A persistent button whose custom id is the platform-neutral button id; the job is read from SQLite."""

    def __init__(self, button_id: str, label: str = "", style: discord.ButtonStyle = discord.ButtonStyle.secondary):
        super().__init__(discord.ui.Button(label=label or button_id, custom_id=button_id, style=style))
        self.button_id = button_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match.group(0))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler = getattr(interaction.client, "on_job_button", None)
        if handler is not None:
            await handler(interaction, self.button_id)


def view_for(rows: list[list[Button]]) -> discord.ui.View | None:
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(rows[:5]):
        for button in row[:5]:
            style = (
                discord.ButtonStyle.danger
                if button.danger
                else STYLES.get(button.action, discord.ButtonStyle.secondary)
            )
            item = JobButton(button.id, button.label, style)
            item.item.row = number
            view.add_item(item)
    return view


def content_of(text: str, notes: list[str]) -> str:
    full = "\n".join([text, *notes]) if notes else text
    return full if len(full) <= MAX_CONTENT else full[: MAX_CONTENT - 1] + "…"


@dataclass
class Rendered:
    content: str
    files: list[discord.File] = field(default_factory=list)
    view: discord.ui.View | None = None
    notes: list[str] = field(default_factory=list)


def fit(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Re-encode as JPEG, then scale down, until the image is under `limit` bytes. Returns (data, changed)."""
    if len(data) <= limit:
        return data, False
    image = Image.open(io.BytesIO(data)).convert("RGB")
    for scale in (1.0, 0.75, 0.5, 0.35, 0.25, 0.15, 0.1):
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        candidate = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        for quality in (90, 75):
            out = io.BytesIO()
            candidate.save(out, format="JPEG", quality=quality)
            if out.tell() <= limit:
                return out.getvalue(), True
    return out.getvalue(), True


def render(reply: Reply, limit: int) -> Rendered:
    """Build content, files and view; images over `limit` are re-encoded and the text says so. CPU-bound."""
    files: list[discord.File] = []
    notes: list[str] = []
    for number, attachment in enumerate(reply.images[:10], start=1):
        data, changed = fit(attachment.read(), limit)
        name = attachment.filename
        if changed:
            name = name.rsplit(".", 1)[0] + ".jpg"
            notes.append(t("en", "platform.discord_reencoded", index=number, limit=limit // (1024 * 1024)))
        files.append(discord.File(io.BytesIO(data), filename=name))
    return Rendered(content_of(reply.text, notes), files, view_for(reply.buttons), notes)
