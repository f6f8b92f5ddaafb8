"""/presets: the presets the user may pick in this channel."""

from __future__ import annotations

from bot.replies import Reply
from commands.context import Invocation, Services
from commands.imagine import allowed_presets


async def presets(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    allowed = await allowed_presets(services, invocation)
    if not allowed:
        return Reply(text="No presets are allowed in this channel.", private=True)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    default = server.default_preset or services.settings.first_preset
    lines = []
    for preset in allowed:
        mark = " (default)" if preset.name == default else ""
        width, height = preset.size(None)
        lines.append(
            f"{preset.name}{mark} — {preset.description or preset.checkpoint} · {width}×{height} base · "
            f"steps {preset.steps} (max {preset.max_steps}) · up to {preset.max_images} images · "
            f"ratios {' '.join(preset.aspect_ratios)}"
        )
    return Reply(text="\n".join(lines), private=True)
