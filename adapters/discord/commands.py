"""Slash commands generated from the shared command registry."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Optional

import discord
from discord import app_commands

from bot.i18n import catalog
from commands.registry import COMMANDS, CommandSpec, OptionSpec

Run = Callable[[discord.Interaction[Any], str, dict[str, Any]], Awaitable[None]]
Complete = Callable[[discord.Interaction[Any], str, str], Awaitable[list[app_commands.Choice[str]]]]


def _annotation(option: OptionSpec) -> Any:
    if option.type == "attachment":
        base: Any = discord.Attachment
    elif option.type == "choice":
        base = Literal[option.choices]
    elif option.type == "integer":
        low = int(option.minimum) if option.minimum is not None else None
        high = int(option.maximum) if option.maximum is not None else None
        base = app_commands.Range[int, low, high] if low is not None or high is not None else int
    elif option.type == "boolean":
        base = bool
    elif option.type == "number":
        base = app_commands.Range[float, option.minimum, option.maximum]
    else:
        base = app_commands.Range[str, 1, 1500] if option.name == "prompt" else str
    return base if option.required else Optional[base]  # noqa: UP045 - discord.py reads typing.Optional


def build_command(spec: CommandSpec, run: Run, complete: Complete) -> app_commands.Command[Any, Any, None]:
    """One app command whose parameters mirror the spec's options."""

    async def callback(interaction: discord.Interaction[Any], **values: Any) -> None:
        await run(interaction, spec.name, values)

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for option in spec.options:
        default = inspect.Parameter.empty if option.required else None
        parameters.append(
            inspect.Parameter(
                option.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=_annotation(option)
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    descriptions = {
        option.name: app_commands.locale_str(option.description[:100], key=f"option.{spec.name}.{option.name}")
        for option in spec.options
    }
    callback = app_commands.describe(**descriptions)(callback)
    names = {
        option.name: app_commands.locale_str(option.name, key=f"option_name.{spec.name}.{option.name}")
        for option in spec.options
    }
    callback = app_commands.rename(**names)(callback)
    command: app_commands.Command[Any, Any, None] = app_commands.Command(
        name=app_commands.locale_str(spec.name, key=f"command_name.{spec.name}"),
        description=app_commands.locale_str(spec.description[:100], key=f"command.{spec.name}"),
        callback=callback,  # type: ignore[arg-type]  # the signature is rebuilt above from the spec
    )
    for option in spec.options:
        if option.autocomplete:
            command.autocomplete(option.name)(_completer(complete, option.name))  # type: ignore[arg-type]
    return command


def _completer(complete: Complete, name: str) -> Callable[..., Awaitable[list[app_commands.Choice[str]]]]:
    async def autocomplete(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await complete(interaction, name, current)  # which option is being typed, and what

    return autocomplete


TRANSLATED: dict[discord.Locale, str] = {discord.Locale.chinese: "zh"}  # Discord locale -> catalog language


class CatalogTranslator(app_commands.Translator):
    """Command and option names and descriptions in Simplified Chinese (zh-CN) from the zh catalog; others: English."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        lang = TRANSLATED.get(locale)
        key = string.extras.get("key")
        if lang is None or not isinstance(key, str):
            return None
        text = catalog(lang).get(key)
        return text[:100] if text else None


def add_commands(tree: app_commands.CommandTree[Any], run: Run, complete: Complete) -> None:
    for spec in COMMANDS:
        tree.add_command(build_command(spec, run, complete))
