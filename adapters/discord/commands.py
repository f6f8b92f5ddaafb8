"""Slash commands generated from the shared command registry."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Optional

import discord
from discord import app_commands

from commands.registry import COMMANDS, CommandSpec, OptionSpec

Run = Callable[[discord.Interaction[Any], str, dict[str, Any]], Awaitable[None]]
Complete = Callable[[discord.Interaction[Any], str], Awaitable[list[app_commands.Choice[str]]]]


def _annotation(option: OptionSpec) -> Any:
    if option.type == "attachment":
        base: Any = discord.Attachment
    elif option.type == "choice":
        base = Literal[option.choices]
    elif option.type == "integer":
        low = int(option.minimum) if option.minimum is not None else None
        high = int(option.maximum) if option.maximum is not None else None
        base = app_commands.Range[int, low, high] if low is not None or high is not None else int
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
    descriptions = {option.name: option.description[:100] for option in spec.options}
    callback = app_commands.describe(**descriptions)(callback)
    command: app_commands.Command[Any, Any, None] = app_commands.Command(
        name=spec.name,
        description=spec.description[:100],
        callback=callback,  # type: ignore[arg-type]  # the signature is rebuilt above from the spec
    )
    for option in spec.options:
        if option.autocomplete:
            command.autocomplete(option.name)(_completer(complete, option.name))  # type: ignore[arg-type]
    return command


def _completer(complete: Complete, name: str) -> Callable[..., Awaitable[list[app_commands.Choice[str]]]]:
    async def autocomplete(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await complete(interaction, current)

    return autocomplete


def add_commands(tree: app_commands.CommandTree[Any], run: Run, complete: Complete) -> None:
    for spec in COMMANDS:
        tree.add_command(build_command(spec, run, complete))
