"""/presets: the presets the user may pick in this channel."""

from __future__ import annotations

from bot.i18n import t
from bot.replies import Reply
from commands.context import Invocation, Services, language_for
from commands.imagine import allowed_presets


async def presets(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    allowed = await allowed_presets(services, invocation)
    server = await services.accounts.server(invocation.platform, invocation.destination.server_id)
    lang = await language_for(services, invocation)  # the user's /settings language first
    if not allowed:
        return Reply(text=t(lang, "presets.none"), private=True)
    default = server.default_preset or services.settings.first_preset
    lines = []
    for preset in allowed:
        mark = t(lang, "presets.default") if preset.name == default else ""
        if preset.max_references:
            mark += t(lang, "edit.preset_mark", count=preset.max_references)
        width, height = preset.size(None)
        lines.append(
            t(
                lang,
                "presets.line",
                name=preset.name,
                mark=mark,
                description=preset.description or preset.checkpoint,
                width=width,
                height=height,
                steps=preset.steps,
                max_steps=preset.max_steps,
                max_images=t(lang, "queued.images", count=preset.max_images),
                ratios=" ".join(preset.aspect_ratios),
            )
        )
    return Reply(text="\n".join(lines), private=True)
