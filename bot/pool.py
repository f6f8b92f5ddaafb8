"""The backend pool: which backends are in rotation, periodic health checks, and why jobs wait.

Each backend has one worker (bot/worker.py). A worker leaves rotation when its backend cannot be
reached or fails `max_consecutive_errors` jobs in a row; it rejoins once a health check passes.
Idle backends in rotation are checked every `check_interval_seconds` so a dead one is noticed
before a job is given to it. Each check also reads what the backend has (its inventory), which
routing (bot/routing.py) matches against presets.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import BackendError
from bot.i18n import t

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolPolicy:
    """How the pool watches its backends."""

    health_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)  # between checks of a backend out of rotation
    check_interval_seconds: float = 60.0  # between checks of idle backends in rotation
    max_consecutive_errors: int = 3


def checkpoint_name(title: str | None) -> str | None:
    """'sd_xl_base_1.0.safetensors [31e35c80fc]' -> 'sd_xl_base_1.0.safetensors' (presets name files)."""
    if not title:
        return None
    return re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", title).strip() or None


class BackendPool:
    """The workers of every configured backend, seen as one pool."""

    def __init__(self, workers: Sequence[Worker], policy: PoolPolicy | None = None) -> None:
        self.workers = list(workers)
        self.policy = policy or PoolPolicy()

    def in_rotation(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.healthy]

    def all_down(self) -> bool:
        return bool(self.workers) and not self.in_rotation()

    def why_waiting(self, lang: str | None = None) -> str:
        """A sentence for users whose jobs wait because no backend is available (health details stay English)."""
        quiet = t(lang, "waiting.not_answering")
        reasons = "; ".join(f"{w.backend.name}: {w.health_detail or quiet}" for w in self.workers)
        return t(lang, "waiting.all_down", reasons=reasons)

    def why_job_waits(self, runs: Callable[[Worker], bool], lang: str | None = None) -> str | None:
        """Why a job waits when none of the backends that can run it takes jobs (down, or drained by an admin);
        None when one of them does (or none here can: another process's backend may)."""
        able = [worker for worker in self.workers if runs(worker)]
        if not able or any(worker.healthy and not worker.drained for worker in able):
            return None
        if self.all_down() and not any(worker.drained for worker in able):
            return self.why_waiting(lang)
        quiet, drained = t(lang, "waiting.not_answering"), t(lang, "waiting.drained")
        reasons = "; ".join(f"{w.backend.name}: {drained if w.drained else (w.health_detail or quiet)}" for w in able)
        return t(lang, "waiting.none_free", reasons=reasons)

    def status(self) -> list[tuple[str, str, bool, str]]:
        """(name, kind, in rotation, detail) per backend, for admin commands and `imagebridge check`."""
        return [(w.backend.name, w.backend.kind, w.healthy, w.health_detail) for w in self.workers]

    def named(self, name: str) -> Worker | None:
        """The worker of the backend with this name (case-insensitive), if any."""
        return next((w for w in self.workers if w.backend.name.lower() == name.strip().lower()), None)

    async def watch(self) -> None:
        """Check idle backends in rotation periodically; take the dead ones out."""
        while True:
            await asyncio.sleep(self.policy.check_interval_seconds)
            for worker in self.in_rotation():
                if worker.current is None:
                    await check(worker)


async def check(worker: Worker) -> bool:
    """Ask the worker's backend for its health; update rotation, the loaded checkpoint and what it has."""
    try:
        health = await worker.backend.health()
    except BackendError as exc:
        worker.take_out(exc.user_message)
        return False
    if not health.ok:
        worker.take_out(health.detail or "health check failed")
        return False
    if not worker.healthy:
        log.info("backend %s passed its health check and rejoins the pool", worker.backend.name)
    worker.healthy = True
    worker.consecutive_errors = 0
    worker.loaded_checkpoint = checkpoint_name(health.loaded_model) or worker.loaded_checkpoint
    if worker.set_inventory(health.inventory):
        await worker.work.fail_stranded()
    return True
