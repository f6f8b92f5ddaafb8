"""What a SwarmUI server has, from one `ListT2IParams` answer, in the names presets use.

`models` maps each model type to `[name, class]` pairs (checkpoints under "Stable-Diffusion", "LoRA"); the
`sampler` and `scheduler` parameters list ComfyUI's ids (Swarm generates through ComfyUI), which the inventory
also lists under the A1111 names presets use where they translate.
"""

from __future__ import annotations

from typing import Any

from adapters.backends.comfyui_inventory import webui_samplers, webui_schedulers
from bot.ports import Inventory


def inventory_from(params: dict[str, Any]) -> Inventory:
    models = params.get("models") if isinstance(params.get("models"), dict) else {}
    assert isinstance(models, dict)
    values = {
        str(item.get("id")): [str(value) for value in item.get("values") or []]
        for item in params.get("list") or []
        if isinstance(item, dict)
    }
    samplers, schedulers = values.get("sampler"), values.get("scheduler")
    return Inventory(
        checkpoints=_names(models.get("Stable-Diffusion")),
        loras=None if "LoRA" not in models else frozenset(_lora_names(_names(models["LoRA"]) or frozenset())),
        samplers=None if samplers is None else frozenset({s.lower() for s in samplers} | webui_samplers(samplers)),
        schedulers=(
            None if schedulers is None else frozenset({s.lower() for s in schedulers} | webui_schedulers(schedulers))
        ),
    )


def _names(entries: Any) -> frozenset[str] | None:
    if not isinstance(entries, list):
        return None
    return frozenset(str(entry[0]) for entry in entries if isinstance(entry, list) and entry)


def _lora_names(files: frozenset[str]) -> set[str]:
    names = set()
    for name in files:
        base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
        names |= {base, base.rsplit(".", 1)[0], name.lower().rsplit(".", 1)[0]}
    return names
