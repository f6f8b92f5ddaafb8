"""Scenarios 1–3: overhead against the backend's own FIFO, model affinity, fairness."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx

from adapters.backends.a1111 import A1111Backend
from bench.harness import NullOutbound, bot, invocation
from commands.dispatch import dispatch_text
from simulators.a1111 import A1111Simulator

CHECKPOINTS = [
    "v1-5-pruned-emaonly.safetensors [6ce0161689]",
    "sd_xl_base_1.0.safetensors [31e35c80fc]",
    "dreamshaper_8.safetensors [879db523c3]",
]
STEP_SECONDS = 0.01  # 20 steps at 10 ms: a 0.2 s job
MODEL_LOAD_SECONDS = 0.6  # a model switch costs about three jobs


def simulator(**kwargs: Any) -> A1111Simulator:
    options: dict[str, Any] = {
        "seconds_per_step": STEP_SECONDS,
        "model_load_seconds": MODEL_LOAD_SECONDS,
        "checkpoints": CHECKPOINTS,
        "previews": False,
    }
    options.update(kwargs)
    return A1111Simulator(flavour="forge", **options)


def backend(sim: A1111Simulator, name: str = "sim") -> A1111Backend:
    return A1111Backend(name, sim.url, kind="forge", poll_interval_seconds=0.5, previews=False)


async def overhead(jobs: int) -> dict[str, Any]:
    """The same jobs through the bot and fired straight at the simulator (its FIFO lock is the ideal)."""
    body = {
        "prompt": "a lighthouse",
        "seed": 1,
        "steps": 20,
        "width": 512,
        "height": 512,
        "sampler_name": "Euler",
        "scheduler": "Karras",
        "cfg_scale": 7,
        "batch_size": 1,
        "override_settings": {"sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors"},
        "override_settings_restore_afterwards": False,
    }
    sim = simulator()
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.url, timeout=600) as client:
            await client.post("/sdapi/v1/txt2img", json=body)  # warm: model loaded, like the bot's first job
            started = time.perf_counter()
            responses = await asyncio.gather(*(client.post("/sdapi/v1/txt2img", json=body) for _ in range(jobs)))
            direct = time.perf_counter() - started
            assert all(r.status_code == 200 and base64.b64decode(r.json()["images"][0]) for r in responses)
        outbound = NullOutbound(expected=jobs)
        async with bot([backend(sim)], outbound) as app:
            started = time.perf_counter()
            for index in range(jobs):
                await dispatch_text(app.services, invocation(f"user{index % 5}"), "/imagine a lighthouse --seed 1")
            await asyncio.wait_for(outbound.all_done.wait(), 600)
            via_bot = max(outbound.delivered_at.values()) - started
    finally:
        await sim.stop()
    return {
        "jobs": jobs,
        "direct_makespan_s": round(direct, 3),
        "bot_makespan_s": round(via_bot, 3),
        "overhead_ratio": round(via_bot / direct, 4),
    }


async def _affinity_run(jobs: int, affinity: bool) -> dict[str, Any]:
    sim = simulator()
    await sim.start()
    outbound = NullOutbound(expected=jobs)
    try:
        async with bot([backend(sim)], outbound, affinity=affinity) as app:
            started = time.perf_counter()
            for index in range(jobs):
                user, model = f"user{index % 6}", f"m{index % 3 + 1}"
                await dispatch_text(app.services, invocation(user), f"/imagine tower --preset {model} --seed {index}")
            switches_before = sim.model_switches
            await asyncio.wait_for(outbound.all_done.wait(), 900)
            makespan = max(outbound.delivered_at.values()) - started
            scheduler = app.engine.scheduler
            longest_pass = round(scheduler.longest_pass_over_seconds, 3)
            most_passes = scheduler.most_pass_overs
            longest_wait = await _longest_queue_wait(app)
    finally:
        await sim.stop()
    return {
        "switches": sim.model_switches - switches_before + (1 if switches_before else 0),
        "makespan_s": round(makespan, 3),
        "longest_passed_over_s": longest_pass,
        "most_pass_overs": most_passes,
        "longest_queue_wait_s": longest_wait,
    }


async def _longest_queue_wait(app: Any) -> float:
    rows = await app.db.fetchall("SELECT created_at, started_at FROM jobs")
    from datetime import datetime

    waits = [(datetime.fromisoformat(r[1]) - datetime.fromisoformat(r[0])).total_seconds() for r in rows if r[1]]
    return round(max(waits), 3) if waits else 0.0


async def affinity(jobs: int) -> dict[str, Any]:
    fifo = await _affinity_run(jobs, affinity=False)
    grouped = await _affinity_run(jobs, affinity=True)
    return {
        "jobs": jobs,
        "users": 6,
        "checkpoints": 3,
        "model_load_s": MODEL_LOAD_SECONDS,
        "fifo": fifo,
        "affinity": grouped,
        "affinity_switch_ratio": round(grouped["switches"] / max(1, fifo["switches"]), 4),
        "affinity_makespan_ratio": round(grouped["makespan_s"] / fifo["makespan_s"], 4),
        "longest_passed_over_s": grouped["longest_passed_over_s"],
    }


async def fairness(backlog: int) -> dict[str, Any]:
    """User A queues `backlog` jobs, then user B queues one: how many job-lengths does B wait?"""
    sim = simulator()
    await sim.start()
    result: dict[str, Any] = {"backlog": backlog}
    try:
        for label, servers in (("same_server", ("s1", "s1")), ("two_servers", ("s1", "s2"))):
            outbound = NullOutbound(expected=backlog + 1)
            async with bot([backend(sim)], outbound) as app:
                for index in range(backlog):
                    await dispatch_text(app.services, invocation("alice", servers[0]), f"/imagine a --seed {index}")
                await asyncio.sleep(0.3)  # alice's first job is running when bob arrives
                asked = time.perf_counter()
                reply = await dispatch_text(app.services, invocation("bob", servers[1]), "/imagine b --seed 1")
                assert reply is not None and reply.job_id
                await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 600)
                waited = outbound.delivered_at[reply.job_id] - asked
                await asyncio.wait_for(outbound.all_done.wait(), 600)
                one_job = (max(outbound.delivered_at.values()) - min(outbound.delivered_at.values())) / backlog
                result[label] = {
                    "bob_wait_s": round(waited, 3),
                    "job_s": round(one_job, 3),
                    "wait_jobs": round(waited / one_job - 1, 3),
                }
    finally:
        await sim.stop()
    result["fairness_wait_jobs"] = max(result["same_server"]["wait_jobs"], result["two_servers"]["wait_jobs"])
    return result
