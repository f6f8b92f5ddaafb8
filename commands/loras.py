"""/loras [preset]: the LoRAs a preset offers here (only those a backend that runs it has), to pick with --lora."""

from __future__ import annotations

from bot.errors import InvalidRequest
from bot.fit import Need
from bot.i18n import t
from bot.loras import LoraChoice
from bot.presets import Preset
from bot.replies import MAX_BUTTON_ID_BYTES, Action, Button, Reply
from commands.context import Invocation, Services, language_for
from commands.imagine import resolve_preset


def offered(services: Services, preset: Preset) -> dict[str, LoraChoice]:
    """The preset's LoRAs that some backend able to run the preset reports having (or has not listed yet)."""
    jobs = services.jobs
    anywhere = not jobs.backends()  # no backend configured: nothing to ask
    return {
        name: choice
        for name, choice in preset.loras.items()
        if anywhere or jobs.can_run(Need(preset, loras=frozenset({choice.file.lower()})))
    }


async def lora_choices(services: Services, invocation: Invocation, preset_name: str | None, current: str) -> list[str]:
    """Names for autocomplete: the preset's offered LoRAs matching what is typed after the last comma."""
    try:
        preset = await resolve_preset(services, invocation, preset_name)
    except Exception:  # an unknown or forbidden preset offers nothing; /imagine will say why
        return []
    done, _, typing = current.rpartition(",")
    prefix = f"{done.strip()}, " if done.strip() else ""
    wanted = typing.strip().lower()
    return [f"{prefix}{name}" for name in offered(services, preset) if wanted in name][:25]


async def loras(services: Services, invocation: Invocation, options: dict[str, object]) -> Reply:
    preset = await resolve_preset(services, invocation, str(options.get("preset") or "").strip() or None)
    lang = await language_for(services, invocation)
    available = offered(services, preset)
    if not available:
        return Reply(text=t(lang, "loras.none", name=preset.name), private=True)
    lines = [t(lang, "loras.header", name=preset.name)]
    for name, choice in available.items():
        words = t(lang, "loras.triggers", words=", ".join(choice.triggers)) if choice.triggers else ""
        lines.append(
            t(
                lang,
                "loras.line",
                name=name,
                weight=choice.weight,
                low=choice.min_weight,
                high=choice.max_weight,
                triggers=words,
                description=f" · {choice.description}" if choice.description else "",
            )
        )
    return Reply(text="\n".join(lines), buttons=buttons(preset, available), private=True)


def buttons(preset: Preset, available: dict[str, LoraChoice]) -> list[list[Button]]:
    """One button per offered LoRA (five to a row); none when the preset's name cannot fit a button id."""
    names = list(preset.loras)
    found = [
        Button(label=name, action=Action.LORA, job_id=preset.name, index=names.index(name))
        for name in available
        if names.index(name) < 100
    ]
    if ":" in preset.name or len(f"lora:{preset.name}:99".encode()) > MAX_BUTTON_ID_BYTES:
        return []
    return [found[start : start + 5] for start in range(0, len(found), 5)][:5]


async def lora_button(services: Services, invocation: Invocation, preset_name: str, index: int | None) -> Reply:
    """A /loras button: the `--lora` text to add to /imagine."""
    preset = await resolve_preset(services, invocation, preset_name)
    names = list(preset.loras)
    if index is None or not 0 <= index < len(names):
        raise InvalidRequest.of("error.unknown_button")
    name = names[index]
    choice = preset.loras[name]
    lang = await language_for(services, invocation)
    return Reply(text=t(lang, "loras.use", preset=preset.name, name=name, weight=choice.weight), private=True)
