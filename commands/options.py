"""Typed option values from raw input, with messages that say what is allowed."""

from __future__ import annotations

import math

from bot.errors import InvalidRequest
from commands.registry import CommandSpec, OptionSpec


def _limits(option: OptionSpec) -> dict[str, object] | None:
    if option.minimum is not None and option.maximum is not None:
        low = int(option.minimum) if option.type == "integer" else option.minimum
        high = int(option.maximum) if option.type == "integer" else option.maximum
        return {"low": low, "high": high}
    return None


def _bounds(option: OptionSpec) -> str:
    limits = _limits(option)
    return f" from {limits['low']} to {limits['high']}" if limits else ""


def coerce_value(option: OptionSpec, value: object) -> object:
    """Turn a raw value (text, or a platform's typed value) into the option's type, or explain."""
    if option.type in ("string", "attachment"):
        return value
    if option.type == "choice":
        text = str(value).strip()
        if text not in option.choices:
            raise InvalidRequest.of(
                "error.option_choice", name=option.name, choices=", ".join(option.choices), value=text[:40]
            )
        return text
    try:
        if option.type == "integer":
            if isinstance(value, bool):
                raise ValueError
            number: float = int(value) if isinstance(value, int) else int(str(value).strip().replace("_", ""))
        else:
            number = float(value) if isinstance(value, int | float) else float(str(value).strip())
            if not math.isfinite(number):
                raise ValueError
    except (TypeError, ValueError) as exc:
        limits = _limits(option)
        if limits is not None:
            key = "error.option_whole" if option.type == "integer" else "error.option_number"
            raise InvalidRequest.of(key, name=option.name, value=str(value)[:40], **limits) from exc
        key = "error.option_kind_whole" if option.type == "integer" else "error.option_kind_number"
        raise InvalidRequest.of(key, name=option.name, value=str(value)[:40]) from exc
    if (option.minimum is not None and number < option.minimum) or (
        option.maximum is not None and number > option.maximum
    ):
        limits = _limits(option)
        if limits is not None:
            raise InvalidRequest.of("error.option_range", name=option.name, value=number, **limits)
        raise InvalidRequest(f"{option.name} must be{_bounds(option)} (got {number:g}).")
    return number


def coerce(spec: CommandSpec, raw: dict[str, object]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, value in raw.items():
        option = spec.option(name)
        if option is None:
            raise InvalidRequest.of("error.no_such_option", command=spec.name, name=name, usage=spec.usage)
        if value is None:
            continue
        values[option.name] = coerce_value(option, value)
    for option in spec.options:
        if option.required and option.name not in values:
            raise InvalidRequest.of("error.option_required", command=spec.name, name=option.name, usage=spec.usage)
    return values
