"""`imagebridge check`, `simulate` and `db` (part of the composition root, beside bot/app.py)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.app import build_backend
from bot.checktable import Checked, discord_shards_line, preset_table
from bot.errors import ConfigError
from bot.fit import BackendView
from bot.ports import Backend
from bot.secret_source import SecretSource
from bot.settings import Settings
from storage.operations import db_command


async def run_check(settings: Settings, backends: Sequence[Backend] | None = None) -> int:
    """Ask every configured backend whether it answers and what it has; print the backends and the preset ×
    backend table; non-zero if a backend is down or a preset runs nowhere."""
    secrets = SecretSource()
    if backends is None:
        backends = [
            build_backend(name, config, secrets) for name, config in settings.backends.items() if config.enabled
        ]
    urls = {name: config.url for name, config in settings.backends.items()}
    checked: list[Checked] = []
    print(f"{'name':<14} {'kind':<9} {'url':<32} {'healthy':<8} {'models':<7} {'loaded':<32} detail")
    for backend in backends:
        try:
            health = await backend.health()
        finally:
            await backend.aclose()
        checked.append(Checked(BackendView(backend.name, backend.kind, backend.capabilities, health.inventory), health))
        state = "yes" if health.ok else "NO"
        print(
            f"{backend.name:<14} {backend.kind:<9} {urls.get(backend.name, ''):<32} {state:<8} "
            f"{len(health.models):<7} {health.loaded_model or '-':<32} {'' if health.ok else health.detail}".rstrip()
        )
    lines, nowhere = preset_table(list(settings.presets.values()), checked)
    if settings.discord.enabled:
        lines.append(discord_shards_line(settings.discord))
    print("\n".join(lines))
    failures = sum(not entry.health.ok for entry in checked) + len(nowhere)
    return 1 if failures else 0


async def run_simulator(kind: str, port: int, flavour: str, seconds_per_step: float, model_load: float) -> int:
    """Serve one backend simulator on loopback until interrupted."""
    host = "127.0.0.1"
    if kind == "a1111":
        from simulators import a1111

        await a1111.serve(port, flavour, seconds_per_step, model_load, None)
    elif kind == "comfyui":
        from simulators import comfyui

        await comfyui.serve(port, host, seconds_per_step)
    elif kind == "openwebui":
        from simulators import openwebui

        await openwebui.serve(port, host, "sk-owui")
    elif kind == "openai":
        from simulators import openai_images

        await openai_images.serve(port, host, "sk-test")
    elif kind == "horde":
        from simulators import horde

        await horde.serve(port, host, seconds_per_step * 20)
    elif kind == "swarmui":
        from simulators import swarmui

        await swarmui.serve(port, host)
    else:
        raise ConfigError(f"simulate: {kind!r} is not a simulator (a1111, comfyui, openwebui, openai, horde, swarmui)")
    return 0


async def run_db(action: str, path: str | None, days: int | None, settings: Settings) -> int:
    """`imagebridge db migrate|stats|backup PATH|prune [--days N]|import-sqlite [PATH]` (storage/operations.py)."""
    password = SecretSource().get("IMAGEBRIDGE_STORAGE_PASSWORD")
    for line in await db_command(action, path, days, settings, password):
        print(line)
    return 0
