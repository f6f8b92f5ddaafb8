"""`imagebridge demo`: the whole path on one machine (part of the composition root, beside bot/app.py)."""

from __future__ import annotations

from pathlib import Path

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import App, build_app, example_config_path
from bot.secret_source import SecretSource
from bot.settings import load_settings

DEMO_DAILY_QUOTA = 200.0  # cost units: about seven 1024×1024 images at 25 steps, so /quota has something to show
DEMO_EDIT_PRESET = {
    "description": "gpt-image-1 edits (simulated): /edit with up to 3 images",
    "backend": "edits",
    "checkpoint": "gpt-image-1",
    "steps": 30,
    "max_steps": 30,
    "base_resolution": 1024,
    "aspect_ratios": ["1:1", "3:2", "2:3"],
    "max_images": 1,
    "max_references": 3,
}


async def run_demo(
    prompt: str | None, preset: str | None, count: int, out: Path | None, data: Path | None, *, admin: bool = False
) -> int:
    """The whole path on one machine: an A1111 simulator and an OpenAI-compatible one (for /edit) on loopback,
    SQLite in a temp folder, the console.

    The console user is a normal user with a demo quota; `admin` makes them one of the bot's admins.
    """
    import os
    import tempfile

    from simulators.a1111 import A1111Simulator
    from simulators.openai_images import OpenAIImagesSimulator

    simulator = A1111Simulator(flavour="forge", seconds_per_step=0.02, model_load_seconds=0.3)
    editor = OpenAIImagesSimulator()  # gpt-image-1 edits with up to three images
    url, edits_url = await simulator.start(), await editor.start()
    with tempfile.TemporaryDirectory(prefix="imagebridge-demo-") as temp:
        data_dir = data or Path(temp)
        settings = load_settings(
            example_config_path(),
            {
                "data_dir": data_dir,
                "backends": {
                    "local": {"kind": "forge", "url": url, "poll_interval_seconds": 0.1},
                    "edits": {"kind": "openai", "url": edits_url, "model": "gpt-image-1"},
                },
                "presets": {"gpt_edit": DEMO_EDIT_PRESET},
                "quota": {"enabled": True, "user_daily": DEMO_DAILY_QUOTA},
                "access": {"bot_admins": ["console:console"] if admin else []},
            },
        )
        secrets = SecretSource({**os.environ, "IMAGEBRIDGE_BACKEND_EDITS_API_KEY": editor.api_key})
        outbound = ConsoleOutbound(out_dir=out or Path("out"), interval=settings.progress.console_interval_seconds)
        app = await build_app(settings, [outbound], secrets=secrets)
        await app.start()
        session = ConsoleSession(app.services, outbound, admin=admin)
        outbound.write(f"A1111 simulator (Forge flavour) on {url}, OpenAI-compatible edits on {edits_url}")
        outbound.write(f"Data in {data_dir}. Try: /imagine a red fox, then /edit make it night --image <a png>")
        try:
            if prompt is None:
                await session.interact()
                return 0
            return await _demo_once(app, session, prompt, preset, count)
        finally:
            await app.stop()
            await simulator.stop()
            await editor.stop()


async def _demo_once(app: App, session: ConsoleSession, prompt: str, preset: str | None, count: int) -> int:
    line = f"/imagine {prompt} --n {count}" + (f" --preset {preset}" if preset else "")
    reply = await session.handle(line)
    if reply is None or reply.job_id is None:
        return 2
    await app.services.jobs.wait_delivered(reply.job_id)
    job = await app.services.store.get(reply.job_id)
    return 0 if job is not None and job.state.value == "succeeded" else 1
