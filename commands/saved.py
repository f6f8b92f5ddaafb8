"""A user's /settings filled into a command's options where the command left them out (/imagine, /edit).

The private flag and the language are not options: `submit` reads them from the settings for every job."""

from __future__ import annotations

from bot.errors import InvalidRequest
from bot.ports import UserPrefs
from bot.presets import Preset


def with_saved(prefs: UserPrefs, options: dict[str, object], preset: Preset, *, strict: bool) -> dict[str, object]:
    """The options with the saved negative prompt, aspect ratio and steps where the command did not give them.

    A saved aspect or step count that `preset` does not offer is refused with a word about /settings when
    `strict` (/imagine: the settings were made for its presets), else left out so the command's own default
    applies (/edit, whose preset is seldom the one the settings were checked against)."""
    merged = dict(options)
    if prefs.negative and "negative" not in options:
        merged["negative"] = prefs.negative
    if prefs.aspect and "aspect" not in options:
        if prefs.aspect in preset.aspect_ratios:
            merged["aspect"] = prefs.aspect
        elif strict:
            allowed = ", ".join(preset.aspect_ratios)
            raise InvalidRequest.of("settings.saved_aspect", aspect=prefs.aspect, name=preset.name, allowed=allowed)
    if prefs.steps and "steps" not in options:
        if prefs.steps <= preset.max_steps:
            merged["steps"] = prefs.steps
        elif strict:
            raise InvalidRequest.of(
                "settings.saved_steps", steps=prefs.steps, name=preset.name, maximum=preset.max_steps
            )
    return merged
