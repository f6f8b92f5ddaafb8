"""The composition root: builds storage, backends, the engine, the commands and the platform adapters.

This is the only module in `bot/` that may import adapters, storage and simulators.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from adapters.backends.factory import build_backend as create_backend
from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from adapters.ops import OpsMetrics, OpsServer
from adapters.ops import create as create_ops
from bot.checktable import Checked, discord_shards_line, preset_table
from bot.engine import Engine
from bot.errors import ConfigError
from bot.fit import BackendView
from bot.lifecycle import stop_tasks
from bot.pool import PoolPolicy
from bot.ports import Backend, Outbound
from bot.settings import BackendConfig, SecretSource, Settings, load_settings
from bot.shared_queue import SharedEngine, owner_id
from commands.context import Services
from storage.images import ImageStore, image_files
from storage.operations import db_command
from storage.postgres.claims import FairPolicy, PgClaims
from storage.postgres.db import PgDatabase
from storage.postgres.listen import Signals
from storage.stores import (
    StoreDb,
    Stores,
    count_jobs_by_state,
    edit_prompts,
    open_stores,
    retention_loop,
)

log = logging.getLogger(__name__)


def example_config_path() -> Path:
    return Path(str(resources.files("bot").joinpath("imagebridge.example.toml")))


def build_backend(name: str, config: BackendConfig, secrets: SecretSource) -> Backend:
    return create_backend(
        name, config, secrets.backend_secret(name, "API_KEY"), password=secrets.backend_secret(name, "PASSWORD")
    )


@dataclass
class App:
    """Everything one bot process runs."""

    settings: Settings
    db: StoreDb
    engine: Engine
    services: Services
    backends: list[Backend]
    files: ImageStore  # the image folder or bucket (storage/images.py)
    outbounds: dict[str, Outbound] = field(default_factory=dict)
    metrics: OpsMetrics | None = None
    ops: OpsServer | None = None
    maintenance: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: bool = False
    stores: Stores | None = None  # closing them also releases the SQLite one-process lock
    listen: Callable[[], Coroutine[Any, Any, None]] | None = None  # PostgreSQL's LISTEN for a shared queue

    async def start(self) -> None:
        if self.listen is not None:
            self.maintenance.append(asyncio.get_running_loop().create_task(self.listen(), name="listen"))
        await self.engine.start()
        if self.ops is not None:
            await self.ops.start()
        if self.settings.retention_days:
            files = self.files
            loop = asyncio.get_running_loop()
            self.maintenance.append(
                loop.create_task(retention_loop(self.db, files, self.settings.retention_days), name="retention")
            )

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await stop_tasks(self.maintenance)
        if self.ops is not None:
            await self.ops.stop()
        await self.engine.stop()
        for backend in self.backends:
            await backend.aclose()
        await self.files.aclose()
        await (self.stores.close() if self.stores is not None else self.db.close())


async def build_app(
    settings: Settings,
    outbounds: Sequence[Outbound],
    *,
    platforms_status: Callable[[], dict[str, bool]] = dict,
    backends: Sequence[Backend] | None = None,
    secrets: SecretSource | None = None,
) -> App:
    """Open the database and wire everything; nothing runs until `App.start()`.

    On SQLite a second bot process on the same database is refused here (storage/lock.py): stop the first,
    or move to PostgreSQL (`[storage] url`).
    """
    secrets = secrets or SecretSource()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stores = await open_stores(settings, secrets.get("IMAGEBRIDGE_STORAGE_PASSWORD"))
    try:
        app = _wire(settings, stores, outbounds, platforms_status, backends, secrets)
    except BaseException:
        await stores.close()
        raise
    try:
        await check_images(app.files)
    except BaseException:
        for backend in app.backends:
            await backend.aclose()
        await app.files.aclose()
        await stores.close()
        raise
    return app


def _wire(
    settings: Settings,
    stores: Stores,
    outbounds: Sequence[Outbound],
    platforms_status: Callable[[], dict[str, bool]],
    backends: Sequence[Backend] | None,
    secrets: SecretSource,
) -> App:
    db, store, accounts = stores.db, stores.jobs, stores.accounts
    files = image_files(settings, secrets)
    if backends is None:
        backends = [
            build_backend(name, config, secrets) for name, config in settings.backends.items() if config.enabled
        ]
    by_platform = {outbound.platform: outbound for outbound in outbounds}
    policy = PoolPolicy(
        check_interval_seconds=settings.pool.check_interval_seconds,
        max_consecutive_errors=settings.pool.max_consecutive_errors,
    )
    engine, listen = _engine(
        settings,
        db,
        secrets,
        store=store,
        files=files,
        backends=backends,
        outbounds=by_platform,
        pool_policy=policy,
        pauses=accounts,  # the engine alone holds "paused", kept across restarts here
    )
    metrics, ops = create_ops(settings.metrics, lambda: engine, platforms_status, lambda: count_jobs_by_state(db))
    engine.on_finished = metrics.observe_job
    services = Services(
        settings=settings,
        jobs=engine,
        store=store,
        files=files,
        accounts=accounts,
        on_quota_denied=metrics.record_quota_denial,
        inbox=stores.inbox,
        user_settings=stores.user_settings,
        edit_prompts=edit_prompts(db),
    )
    if settings.web.enabled:
        _add_web(services, db, secrets, ops)
    for outbound in outbounds:
        if hasattr(outbound, "on_rate_limited"):
            platform_name = outbound.platform
            outbound.on_rate_limited = lambda name=platform_name: metrics.record_rate_limited(name)
    return App(
        metrics=metrics,
        ops=ops,
        settings=settings,
        db=db,
        engine=engine,
        services=services,
        backends=list(backends),
        outbounds=by_platform,
        stores=stores,
        files=files,
        listen=listen,
    )


async def check_images(files: ImageStore) -> None:
    """A bucket that refuses our keys stops the start with one clear line (it names no secret)."""
    try:
        await files.check()
    except OSError as exc:
        raise ConfigError(f"storage.s3: the image bucket cannot be used: {exc}") from exc


def _engine(
    settings: Settings, db: StoreDb, secrets: SecretSource, **parts: Any
) -> tuple[Engine, Callable[[], Coroutine[Any, Any, None]] | None]:
    """SQLite: the queue in this process's memory. PostgreSQL: workers claim from the queue every process shares."""
    if not isinstance(db, PgDatabase) or settings.storage.url is None:
        return Engine(settings=settings, **parts), None
    config = settings.scheduler
    policy = FairPolicy(config.affinity, config.affinity_window, config.max_pass_over, config.max_pass_over_seconds)
    owner = owner_id()
    signals = Signals(owner)
    url, password = settings.storage.url, secrets.get("IMAGEBRIDGE_STORAGE_PASSWORD")
    engine = SharedEngine(
        claims=PgClaims(db, policy), signals=signals, owner=owner, lease_seconds=settings.storage.lease_seconds,
        settings=settings, **parts,
    )  # fmt: skip
    return engine, lambda: signals.run(url, password)


def _add_web(services: Services, db: StoreDb, secrets: SecretSource, ops: OpsServer | None) -> None:
    """The web gallery shares the ops endpoint's server (and port)."""
    if ops is None:
        raise ConfigError("[web] enabled needs [metrics] port: the gallery is served on that port under /gallery")
    from adapters import web

    site = web.create(services, db, secrets, served_at=lambda: ops.url)  # type: ignore[arg-type]  # either store
    ops.extra_routes.append(lambda application: web.add_routes(site, application))


# ---- commands the CLI runs ---------------------------------------------------------------------


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


class Platform(Protocol):
    """A chat platform adapter: an Outbound for the engine, and a connection started with the services."""

    @property
    def outbound(self) -> Outbound: ...

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...


def build_platforms(settings: Settings) -> list[Platform]:
    """The chat platforms the config enables; a missing token stops start-up with a clear message."""
    platforms: list[Platform] = []
    secrets = SecretSource()
    if settings.discord.enabled:
        from adapters.discord import create as create_discord

        discord_token = secrets.get("DISCORD_TOKEN")
        if discord_token is None:
            raise ConfigError("discord.enabled is true but DISCORD_TOKEN is not set (environment or secrets folder)")
        platforms.append(create_discord(settings, discord_token, settings.discord))
    if settings.telegram.enabled:
        from adapters.telegram import create as create_telegram

        token = secrets.get("TELEGRAM_TOKEN")
        if token is None:
            raise ConfigError("telegram.enabled is true but TELEGRAM_TOKEN is not set (environment or secrets folder)")
        platforms.append(create_telegram(settings, token, settings.telegram))
    return platforms


async def run_bot(settings: Settings) -> int:
    """Start every enabled platform and backend; stop cleanly on Ctrl-C or SIGTERM."""
    platforms = build_platforms(settings)
    outbounds: list[Outbound] = [platform.outbound for platform in platforms]
    console = None
    if settings.console.enabled:
        console = ConsoleOutbound(interval=settings.progress.console_interval_seconds)
        outbounds.append(console)
    started: list[Platform] = []
    app = await build_app(
        settings, outbounds, platforms_status=lambda: {p.outbound.platform: p in started for p in platforms}
    )
    await app.start()
    stop, forced = asyncio.Event(), asyncio.Event()
    _stop_on_signals(stop, forced)
    tasks = []
    try:
        for platform in platforms:
            await platform.start(app.services)
            started.append(platform)
        if console is not None:
            session = ConsoleSession(app.services, console, settings.console.user, admin=True)
            tasks.append(asyncio.create_task(_until_done(session.interact(), stop)))
        log.info(
            "imagebridge running: %d platform(s)%s, %d backend(s); Ctrl-C stops",
            len(started),
            " and the console" if console is not None else "",
            len(app.backends),
        )
        await stop.wait()
        running = app.engine.busy_workers()
        if running:
            log.info(
                "stopping: no new jobs; %d running job(s) have %.0f s to finish (Ctrl-C again stops at once)",
                running,
                settings.shutdown_grace_seconds,
            )
        else:
            log.info("stopping")
        await app.engine.drain(settings.shutdown_grace_seconds)
    except asyncio.CancelledError:
        if not forced.is_set():
            raise
        log.warning("stopping at once; running jobs are put back in the queue for the next start")
    finally:
        for task in tasks:
            task.cancel()
        for platform in reversed(started):
            await platform.stop()
        await app.stop()
    return 0


def _stop_on_signals(stop: asyncio.Event, forced: asyncio.Event) -> None:
    """The first Ctrl-C (or SIGTERM) stops gracefully; a second one cancels the shutdown and stops at once."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            forced.set()
            main.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


async def _until_done(run: asyncio.Future[None] | object, stop: asyncio.Event) -> None:
    await run  # type: ignore[misc]
    stop.set()


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
