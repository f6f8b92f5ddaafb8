"""Scenarios 4–6: acknowledgement latency, memory per queued job, CPU per delivered image."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bench.harness import NullOutbound, StandInBackend, bot, invocation, percentile, rss_mb
from bot.models import GeneratedImage, GenerationRequest, GenerationResult
from bot.ports import Capabilities, ProgressCallback
from commands.dispatch import dispatch_text
from simulators.images import encode_png, render_image


@dataclass
class ParkedBackend(StandInBackend):
    """Holds every job until released: the queue only grows (latency and memory scenarios)."""

    name: str = "parked"
    kind: str = "a1111"
    capabilities: Capabilities = field(default_factory=Capabilities)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        await self.release.wait()
        return GenerationResult(images=[])


@dataclass
class InstantBackend(StandInBackend):
    """Returns ready-made 1024×1024 PNGs at once, so only the bot's own work is measured."""

    images: list[bytes]
    name: str = "instant"
    kind: str = "a1111"
    capabilities: Capabilities = field(default_factory=Capabilities)

    async def generate(
        self, job_id: str, request: GenerationRequest, source: bytes | None, on_progress: ProgressCallback
    ) -> GenerationResult:
        return GenerationResult(
            images=[
                GeneratedImage(data=self.images[i % len(self.images)], seed=request.seed + i)
                for i in range(request.count)
            ]
        )


async def latency(commands: int, paced_rate: float = 100.0) -> dict[str, Any]:
    """/imagine commands: time from received to the "queued" reply, through the command layer and the console adapter.

    `burst`: all commands arrive at once (the issue's 500 concurrent). `paced`: the same number arriving at
    `paced_rate` per second, open loop, each handled concurrently with the others still in flight.
    """
    burst = await _acks(commands, 0.0)
    paced = await _acks(commands, 1 / paced_rate)
    return {
        "commands": commands,
        "ack_p50_ms": burst[0],
        "ack_p99_ms": burst[1],
        "paced_rate_per_s": paced_rate,
        "ack_p50_ms_paced": paced[0],
        "ack_p99_ms_paced": paced[1],
    }


async def _acks(commands: int, gap: float) -> tuple[float, float]:
    backend = ParkedBackend()
    console = ConsoleOutbound(stream=_Sink())
    times: list[float] = []
    async with bot([backend], NullOutbound()) as app:
        session = ConsoleSession(app.services, console)

        async def one(index: int) -> None:
            started = time.perf_counter()
            if index % 2:
                reply = await session.handle(f"/imagine lighthouse number {index} --seed {index}")
            else:
                reply = await dispatch_text(app.services, invocation(f"user{index % 40}"), f"/imagine fox {index}")
            times.append((time.perf_counter() - started) * 1000)
            assert reply is not None and reply.job_id, reply

        tasks = []
        for index in range(commands):
            tasks.append(asyncio.create_task(one(index)))
            if gap:
                await asyncio.sleep(gap)
        await asyncio.gather(*tasks)
        backend.release.set()
    return round(percentile(times, 0.5), 2), round(percentile(times, 0.99), 2)


async def memory(jobs: int) -> dict[str, Any]:
    backend = ParkedBackend()
    async with bot([backend], NullOutbound()) as app:
        for index in range(20):  # warm caches and the first allocations
            await dispatch_text(app.services, invocation(f"warm{index}"), f"/imagine warm {index}")
        gc.collect()
        before = rss_mb()
        for index in range(jobs):
            await dispatch_text(
                app.services,
                invocation(f"user{index % 50}"),
                f"/imagine a queued job with a prompt of ordinary length, number {index}",
            )
        gc.collect()
        after = rss_mb()
        queued = len(app.engine.scheduler)
        backend.release.set()
    return {
        "jobs": jobs,
        "queued": queued,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_mb_per_10k_jobs": round((after - before) * 10_000 / jobs, 2),
    }


async def cpu_per_image(images: int) -> dict[str, Any]:
    pngs = [encode_png(render_image(f"bench {i}", i, 1024, 1024), f"bench {i}\nSteps: 20") for i in range(4)]
    per_job = 4
    jobs = max(1, images // per_job)
    outbound = NullOutbound(expected=jobs, prepare=True)
    async with bot([InstantBackend(pngs)], outbound, presets={"m1": {"base_resolution": 1024}}) as app:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        for index in range(jobs):
            await dispatch_text(app.services, invocation(f"user{index % 5}"), f"/imagine cpu --n {per_job}")
        await asyncio.wait_for(outbound.all_done.wait(), 600)
        cpu = time.process_time() - start_cpu
        wall = time.perf_counter() - start_wall
    delivered = jobs * per_job
    return {
        "images": delivered,
        "size": "1024x1024",
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "cpu_ms_per_image": round(cpu * 1000 / delivered, 2),
    }


class _Sink:
    """A text stream that drops everything (console output is not what is measured)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False
