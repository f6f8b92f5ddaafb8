"""/settings: a user's defaults on this server (preset, aspect, steps, negative, private results, language), shown
with buttons and changed by a button or `/settings key value`; /imagine applies them when the command does not say,
and /edit where they fit an edit (`--private` / `private:False` override the private flag for one job)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.errors import InvalidRequest, UserError
from bot.i18n import LANGUAGES, t
from bot.ports import UserPrefs
from bot.presets import Preset
from bot.replies import Action, Button, Reply
from commands.context import Invocation, Services, language_for, prefs_for, require_not_banned
from commands.imagine import allowed_presets, resolve_preset, server_preset
from commands.options import FALSE, TRUE
from commands.parser import clean_text

KEYS = ("preset", "aspect", "steps", "negative", "private", "language")
SWITCH = ("on", "off")  # the private flag's choices, in button order
CLEAR = {"-", "none", "default", "reset"}


async def settings(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    await require_not_banned(services, invocation)
    prefs = await prefs_for(services, invocation)
    key = str(options.get("key") or "").strip().lower()
    if key:
        value = str(options.get("value") or "").strip()
        prefs = await _changed(services, invocation, prefs, key, value)
    return await show(services, invocation, prefs)


async def setting_button(services: Services, invocation: Invocation, key: str, index: int | None) -> Reply:
    """A /settings button: `set:key:i` picks the i-th choice, `set:key` clears the key."""
    prefs = await prefs_for(services, invocation)
    value = ""
    if index is not None:
        choices = await _choices(services, invocation, prefs, key)
        if not 0 <= index < len(choices):
            raise InvalidRequest.of("error.unknown_button")
        value = choices[index]
    return await show(services, invocation, await _changed(services, invocation, prefs, key, value))


async def _changed(services: Services, invocation: Invocation, prefs: UserPrefs, key: str, value: str) -> UserPrefs:
    """Validate and save one change; an empty value (or "reset") clears the key, `reset` alone clears all."""
    if key == "reset":
        updated = UserPrefs(platform=prefs.platform, server_id=prefs.server_id, user_id=prefs.user_id)
    elif key not in KEYS:
        raise InvalidRequest.of("settings.unknown_key", name=key[:20], keys=", ".join((*KEYS, "reset")))
    else:
        cleared = value.lower() in CLEAR or not value
        checked = None if cleared else await _checked(services, invocation, prefs, key, value)
        change: dict[str, Any] = {key: bool(checked) if key == "private" else checked}
        updated = replace(prefs, **change)
    if services.user_settings is not None:
        await services.user_settings.save(updated)
    return updated


async def _checked(
    services: Services, invocation: Invocation, prefs: UserPrefs, key: str, value: str
) -> str | int | bool:
    """The value to store, checked against the preset the setting will be used with."""
    if key == "private":
        return _switch(value)
    if key == "preset":
        return (await resolve_preset(services, invocation, value)).name
    if key == "language":
        if value.lower() not in LANGUAGES:
            raise InvalidRequest.of("settings.bad_language", value=value[:20], allowed=", ".join(LANGUAGES))
        return value.lower()
    if key == "negative":
        text = clean_text(value)
        limit = services.settings.limits.max_prompt_chars
        if len(text) > limit:
            raise InvalidRequest.of("error.negative_too_long", limit=limit)
        return text
    preset = await _preset(services, invocation, prefs)
    if key == "aspect":
        if value not in preset.aspect_ratios:
            raise InvalidRequest.of(
                "error.aspect", aspect=value[:20], name=preset.name, allowed=", ".join(preset.aspect_ratios)
            )
        return value
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if not 1 <= steps <= preset.max_steps:
        raise InvalidRequest.of("settings.bad_steps", value=value[:20], name=preset.name, maximum=preset.max_steps)
    return steps


def _switch(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE or word in FALSE:
        return word in TRUE
    raise InvalidRequest.of("settings.bad_private", value=value[:20])


async def _preset(services: Services, invocation: Invocation, prefs: UserPrefs) -> Preset:
    """The preset /imagine would use without --preset: the user's (while it can be used here), else the server's."""
    if prefs.preset and await _usable(services, invocation, prefs.preset):
        return await resolve_preset(services, invocation, prefs.preset)
    return await resolve_preset(services, invocation, await server_preset(services, invocation))


async def _usable(services: Services, invocation: Invocation, name: str) -> bool:
    try:
        await resolve_preset(services, invocation, name)
    except UserError:  # removed from the config, or not allowed in this channel
        return False
    return True


async def _choices(services: Services, invocation: Invocation, prefs: UserPrefs, key: str) -> list[str]:
    if key == "preset":
        return [preset.name for preset in await allowed_presets(services, invocation)]
    if key == "aspect":
        return list((await _preset(services, invocation, prefs)).aspect_ratios)
    if key == "language":
        return list(LANGUAGES)
    if key == "private":
        return list(SWITCH)
    return []


async def show(services: Services, invocation: Invocation, prefs: UserPrefs) -> Reply:
    lang = await language_for(services, invocation)
    unset = t(lang, "settings.unset")
    preset = await _preset(services, invocation, prefs)
    lines = [
        t(lang, "settings.header"),
        t(lang, "settings.preset", value=await _shown_preset(services, invocation, prefs, preset, lang)),
        t(lang, "settings.aspect", value=prefs.aspect or unset),
        t(lang, "settings.steps", value=prefs.steps or t(lang, "settings.preset_default", value=preset.steps)),
        t(lang, "settings.negative", value=prefs.negative or unset),
        t(lang, "settings.private_on" if prefs.private else "settings.private_off"),
        t(lang, "settings.language", value=prefs.language or unset),
        t(lang, "settings.how"),
    ]
    return Reply(text="\n".join(lines), buttons=await _buttons(services, invocation, prefs, lang), private=True)


async def _shown_preset(services: Services, invocation: Invocation, prefs: UserPrefs, preset: Preset, lang: str) -> str:
    if not prefs.preset:
        return t(lang, "settings.server_default", name=preset.name)
    if not await _usable(services, invocation, prefs.preset):
        return t(lang, "settings.unusable", name=prefs.preset)
    return prefs.preset


async def _buttons(services: Services, invocation: Invocation, prefs: UserPrefs, lang: str) -> list[list[Button]]:
    """A row of presets, rows of aspect ratios, then the languages and reset (five to a row)."""
    rows: list[list[Button]] = []
    for key in ("preset", "aspect"):
        choices = (await _choices(services, invocation, prefs, key))[:10]
        found = [Button(label=c, action=Action.SETTING, job_id=key, index=i) for i, c in enumerate(choices)]
        rows += [found[start : start + 5] for start in range(0, len(found), 5)]
    languages = [
        Button(label=code, action=Action.SETTING, job_id="language", index=i) for i, code in enumerate(LANGUAGES)
    ]
    reset = Button(label=t(lang, "settings.reset_button"), action=Action.SETTING, job_id="reset", danger=True)
    rows.append([*languages, _private_button(prefs, lang), reset])
    return rows[:5]


def _private_button(prefs: UserPrefs, lang: str) -> Button:
    """One toggle: it turns private results on when they are off, and off when they are on."""
    label = t(lang, "settings.private_button_off" if prefs.private else "settings.private_button_on")
    return Button(
        label=label, action=Action.SETTING, job_id="private", index=SWITCH.index("off" if prefs.private else "on")
    )
