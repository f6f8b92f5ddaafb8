"""Typed option values from raw input, with messages that say what is allowed."""

from __future__ import annotations

import math

from bot.errors import InvalidRequest
from commands.registry import CommandSpec, OptionSpec

# Options whose real bounds come from the preset (max_steps, max_images): /imagine checks them once, with
# the preset's numbers, instead of here with the registry's absolute caps (which would give two different
# "1 to N" messages for the same option).
PRESET_BOUNDED = frozenset({("imagine", "steps"), ("imagine", "count"), ("edit", "steps"), ("edit", "count")})


def _limits(option: OptionSpec) -> dict[str, object] | None:
    if option.minimum is not None and option.maximum is not None:
        low = int(option.minimum) if option.type == "integer" else option.minimum
        high = int(option.maximum) if option.type == "integer" else option.maximum
        return {"low": low, "high": high}
    return None


TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


def _boolean(value: object, name: str) -> bool:
    """A platform's true/false, or the words of the text syntax (`--private=no`)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE or word in FALSE:
        return word in TRUE
    raise InvalidRequest.of("error.option_boolean", name=name, value=_typed(value))


def _typed(value: object) -> str:
    """The value as the user typed it (not reformatted: 99999999999999999999, not 1e+20), cut to 40."""
    return str(value).strip()[:40]


def _number(option: OptionSpec, value: object) -> float:
    if option.type == "integer":
        if isinstance(value, bool):
            raise ValueError
        return int(value) if isinstance(value, int) else int(str(value).strip().replace("_", ""))
    number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    if not math.isfinite(number):
        raise ValueError
    return number


def coerce_value(option: OptionSpec, value: object, label: str | None = None, bounded: bool = True) -> object:
    """Turn a raw value (text, or a platform's typed value) into the option's type, or explain.

    `label` names the option as the user typed it (`--n`); `bounded=False` leaves the range to the caller.
    """
    name = label or option.name
    if option.type in ("string", "attachment"):
        return value
    if option.type == "boolean":
        return _boolean(value, name)
    if option.type == "choice":
        text = str(value).strip()
        chosen = next((choice for choice in option.choices if choice.lower() == text.lower()), None)
        if chosen is None:
            raise InvalidRequest.of(
                "error.option_choice", name=name, choices=", ".join(option.choices), value=text[:40]
            )
        return chosen
    limits = _limits(option) if bounded else None
    try:
        number = _number(option, value)
    except (TypeError, ValueError) as exc:
        if limits is not None:
            key = "error.option_whole" if option.type == "integer" else "error.option_number"
            raise InvalidRequest.of(key, name=name, value=_typed(value), **limits) from exc
        key = "error.option_kind_whole" if option.type == "integer" else "error.option_kind_number"
        raise InvalidRequest.of(key, name=name, value=_typed(value)) from exc
    if bounded and (
        (option.minimum is not None and number < option.minimum)
        or (option.maximum is not None and number > option.maximum)
    ):
        if limits is not None:
            raise InvalidRequest.of("error.option_range", name=name, value=_typed(value), **limits)
        if option.minimum is not None:
            raise InvalidRequest.of("option_bound.min", name=name, value=_typed(value), low=option.minimum)
        raise InvalidRequest.of("option_bound.max", name=name, value=_typed(value), high=option.maximum)
    return number


def coerce(spec: CommandSpec, raw: dict[str, object], labels: dict[str, str] | None = None) -> dict[str, object]:
    """Typed values for a command's raw options; `labels` are the option names as typed (`{"count": "--n"}`)."""
    labels = labels or {}
    values: dict[str, object] = {}
    for name, value in raw.items():
        option = spec.option(name)
        if option is None:
            raise InvalidRequest.of("error.no_such_option", command=spec.name, name=name, usage=spec.usage)
        if value is None:
            continue
        bounded = (spec.name, option.name) not in PRESET_BOUNDED
        values[option.name] = coerce_value(option, value, labels.get(option.name), bounded)
    for option in spec.options:
        if option.required and option.name not in values:
            raise InvalidRequest.of("error.option_required", command=spec.name, name=option.name, usage=spec.usage)
    return values
