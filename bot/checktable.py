"""`imagebridge check`: which preset runs on which backend, and why not, from what each backend reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.config_discord import DiscordConfig
from bot.fit import BackendView, Need, serves, why_not
from bot.ports import BackendHealth
from bot.presets import Preset


@dataclass(frozen=True)
class Checked:
    """One backend as `check` found it."""

    view: BackendView
    health: BackendHealth


def cell(preset: Preset, checked: Checked) -> tuple[str, str]:
    """('yes' | 'no' | 'down', why not) for one preset on one backend."""
    view = checked.view
    if not checked.health.ok:
        reason = serves(preset, view.name, view.kind)
        return ("no", reason.text()) if reason else ("down", checked.health.detail or "not answering")
    reason = why_not(Need.typical(preset), view)  # an edit preset as an edit
    if reason is not None:
        return "no", reason.text()
    return ("yes", "") if view.inventory is not None else ("yes*", "")


def preset_table(presets: Sequence[Preset], backends: Sequence[Checked]) -> tuple[list[str], list[str]]:
    """The preset × backend table as lines, and the presets no backend can run."""
    names = [checked.view.name for checked in backends]
    first = max([len("preset"), *(len(preset.name) for preset in presets)])
    widths = [max(len(name), 4) for name in names]
    lines = ["preset × backend (yes: runs there as written)"]
    lines.append("  ".join([f"{'preset':<{first}}", *(f"{name:<{w}}" for name, w in zip(names, widths, strict=True))]))
    why: list[str] = []
    nowhere: list[str] = []
    for preset in presets:
        cells = [cell(preset, checked) for checked in backends]
        row = [f"{preset.name:<{first}}", *(f"{mark:<{w}}" for (mark, _), w in zip(cells, widths, strict=True))]
        lines.append("  ".join(row).rstrip())
        why += [
            f"  {preset.name} on {name}: {reason}" for name, (mark, reason) in zip(names, cells, strict=True) if reason
        ]
        if not any(mark in ("yes", "yes*", "down") for mark, _ in cells):
            nowhere.append(preset.name)
    if any(checked.health.ok and checked.view.inventory is None for checked in backends):
        lines.append("yes*: judged by kind only, the backend lists nothing it has")
    if why:
        lines += ["why not:", *why]
    if nowhere:
        lines.append(f"no backend can run: {', '.join(nowhere)} (/imagine refuses them)")
    return lines, nowhere


def discord_shards_line(config: DiscordConfig) -> str:
    """How this process connects to Discord: one unsharded session, or which shards of how many."""
    if not config.sharded:
        return "discord: one gateway session, no sharding (set [discord] shard_count past 2,500 servers)"
    ids = config.local_shards()
    roles = "commands sync and DMs here" if config.holds_shard_zero else "no command sync, no DMs (shard 0's process)"
    return f"discord: shards {ids} of shard_count {config.shard_count}; {roles}"
