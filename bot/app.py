"""The composition root: builds storage, backends, the engine, the commands and the platform adapters.

This is the only module in `bot/` that may import adapters, storage and simulators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from adapters.backends.factory import build_backend as create_backend
from adapters.ops import OpsMetrics, OpsServer
from adapters.ops import create as create_ops
from bot.engine import Engine
from bot.errors import ConfigError
from bot.lifecycle import stop_tasks
from bot.pool import PoolPolicy
from bot.ports import Backend, Outbound
from bot.secret_source import SecretSource
from bot.settings import BackendConfig, Settings
from bot.shared_queue import SharedEngine, owner_id
from commands.context import Services
from storage.db import Database
from storage.drains import SqliteDrains
from storage.images import ImageStore, image_files
from storage.postgres.accounts import PgAccountStore
from storage.postgres.backend_board import PgBackendBoard
from storage.postgres.claims import FairPolicy, PgClaims
from storage.postgres.db import PgDatabase
from storage.postgres.listen import Signals
from storage.postgres.queue_view import PgQueueView
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
        drains = SqliteDrains(db) if isinstance(db, Database) else None
        return Engine(settings=settings, drains=drains, **parts), None
    config = settings.scheduler
    policy = FairPolicy(config.affinity, config.affinity_window, config.max_pass_over, config.max_pass_over_seconds)
    owner = owner_id()
    signals = Signals(owner)
    url, password = settings.storage.url, secrets.get("IMAGEBRIDGE_STORAGE_PASSWORD")
    engine = SharedEngine(
        claims=PgClaims(db, policy, settings.limits.max_attempts), signals=signals, queue=PgQueueView(db),
        owner=owner,
        lease_seconds=settings.storage.lease_seconds, board=PgBackendBoard(db, url, password), settings=settings,
        **parts,
    )  # fmt: skip
    accounts = parts.get("pauses")
    if isinstance(accounts, PgAccountStore) and accounts.signals is not None:
        accounts.signals.watchers.append(engine.follow_settings)  # a pause saved anywhere: is_paused follows
    return engine, lambda: signals.run(url, password)


def _add_web(services: Services, db: StoreDb, secrets: SecretSource, ops: OpsServer | None) -> None:
    """The web gallery shares the ops endpoint's server (and port)."""
    if ops is None:
        raise ConfigError("[web] enabled needs [metrics] port: the gallery is served on that port under /gallery")
    from adapters import web

    site = web.create(services, db, secrets, served_at=lambda: ops.url)  # type: ignore[arg-type]  # either store
    ops.extra_routes.append(lambda application: web.add_routes(site, application))
