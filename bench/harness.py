"""Shared pieces of the benchmark: the machine, a bot wired to simulators, a recording outbound."""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import App, build_app, example_config_path
from bot.models import Destination, Job
from bot.ports import Backend, BackendHealth
from bot.replies import Reply
from bot.settings import Settings, load_settings, merge
from commands.context import Invocation


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc, else the peak)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


class StandInBackend:
    """What the bench's stand-in backends share: nothing to interrupt, always healthy, nothing to close."""

    async def interrupt(self, job_id: str) -> None:
        return None

    async def health(self) -> BackendHealth:
        return BackendHealth(ok=True)

    async def aclose(self) -> None:
        return None


@dataclass
class NullOutbound:
    """Records when each job was delivered; shows nothing."""

    platform: str = "bench"
    delivered_at: dict[str, float] = field(default_factory=dict)
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    prepare: bool = False

    def min_interval(self, job: Job) -> float:
        return 1.0

    async def update_status(self, job: Job, reply: Reply) -> None:
        return None

    async def deliver(self, job: Job, reply: Reply) -> bool:
        if self.prepare:  # what a platform adapter does: read the files it uploads
            for image in reply.images:
                image.read()
        self.delivered_at[job.id] = time.perf_counter()
        if self.expected and len(self.delivered_at) >= self.expected:
            self.all_done.set()
        return True


def invocation(user: str, server: str = "bench-server") -> Invocation:
    return Invocation(
        destination=Destination(platform="bench", server_id=server, channel_id="c", user_id=user), channel_nsfw=True
    )


def bench_settings(data_dir: Path, *, affinity: bool = True, **overrides: Any) -> Settings:
    """The bench's configuration: quotas off, three 512 px presets on three checkpoints."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "backends": {"local": {"kind": "forge", "url": "http://127.0.0.1:9"}},
        "quota": {"enabled": False},
        "limits": {"max_queued_per_user": 100_000, "retry_backoff_seconds": 0},
        "scheduler": {"affinity": affinity, "max_pass_over": 6, "max_pass_over_seconds": 600},
        "presets": {
            name: {
                "checkpoint": checkpoint,
                "base_resolution": 512,
                "steps": 20,
                "backend": "a1111",
                "sampler": "Euler",
                "scheduler": "Karras",
                "max_images": 4,
                "default_negative": "",
            }
            for name, checkpoint in (
                ("m1", "v1-5-pruned-emaonly.safetensors"),
                ("m2", "sd_xl_base_1.0.safetensors"),
                ("m3", "dreamshaper_8.safetensors"),
            )
        },
        "default_preset": "m1",
    }
    return load_settings(example_config_path(), merge(base, overrides))


@asynccontextmanager
async def bot(
    backends: Sequence[Backend], outbound: NullOutbound, *, affinity: bool = True, **overrides: Any
) -> AsyncIterator[App]:
    with tempfile.TemporaryDirectory(prefix="imagebridge-bench-") as data:
        settings = bench_settings(Path(data), affinity=affinity, **overrides)
        app = await build_app(settings, [outbound], backends=list(backends))
        await app.start()
        try:
            yield app
        finally:
            await app.stop()
