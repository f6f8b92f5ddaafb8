"""`python -m bench [--quick] [--json PATH]`: every scenario beside its baseline, one table, optional JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from bench import scenarios, scenarios_load, scenarios_queue, scenarios_web
from bench.harness import machine

GOALS = {
    "overhead_ratio": ("<=", 1.02),
    "affinity_switch_ratio": ("<=", 0.34),
    "affinity_makespan_ratio": ("<=", 0.6),
    "fairness_wait_jobs": ("<=", 1.5),
    "ack_p99_ms": ("<=", 50),
    "rss_mb_per_10k_jobs": ("<=", 50),
    "cpu_ms_per_image": ("<=", 20),
    "platform_429": ("==", 0),
    "lost": ("==", 0),
    "placement_walk_ms": ("<=", 150),
    "submit_ms_at_depth": ("<=", 250),
    "gallery_p95_ms": ("<=", 100),
}

QUICK = {
    "overhead": 30,
    "affinity": 36,
    "fairness": 12,
    "latency": 500,
    "memory": 2000,
    "cpu": 40,
    "pressure": 6,
    "positions": 2000,
    "gallery": 10_000,
}
FULL = {
    "overhead": 200,
    "affinity": 120,
    "fairness": 50,
    "latency": 500,
    "memory": 10_000,
    "cpu": 200,
    "pressure": 20,
    "positions": 10_000,
    "gallery": 100_000,
}


def verdict(name: str, value: float) -> str:
    op, goal = GOALS[name]
    ok = value <= goal if op == "<=" else value == goal
    return "ok" if ok else "MISS"


async def run(sizes: dict[str, int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    steps: list[tuple[str, Any]] = [
        ("overhead", scenarios.overhead(sizes["overhead"])),
        ("affinity", scenarios.affinity(sizes["affinity"])),
        ("fairness", scenarios.fairness(sizes["fairness"])),
        ("latency", scenarios_load.latency(sizes["latency"])),
        ("memory", scenarios_load.memory(sizes["memory"])),
        ("cpu", scenarios_load.cpu_per_image(sizes["cpu"])),
        ("positions", scenarios_queue.positions(sizes["positions"])),
        ("gallery", scenarios_web.gallery(sizes["gallery"])),
    ]
    try:
        from bench import pressure
    except ImportError:
        pressure = None  # type: ignore[assignment]
    if pressure is not None:
        steps.append(("pressure", pressure.platform_pressure(sizes["pressure"])))
    for name, coroutine in steps:
        started = time.perf_counter()
        results[name] = await coroutine
        results[name]["seconds"] = round(time.perf_counter() - started, 2)
        print(f"  {name} done in {results[name]['seconds']} s", file=sys.stderr)
    return results


def metrics(results: dict[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    for scenario in results.values():
        for key, value in scenario.items():
            if key in GOALS:
                found[key] = value
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller counts, same shapes (about a minute)")
    parser.add_argument("--json", type=Path, help="write {machine, metrics, scenarios} here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    sizes = QUICK if args.quick else FULL
    results = asyncio.run(run(sizes))
    found = metrics(results)
    print(f"{'metric':<26} {'value':>10}  {'goal':<8} verdict")
    for name, (op, goal) in GOALS.items():
        value = found.get(name)
        shown = "n/a" if value is None else f"{value:g}"
        mark = "n/a" if value is None else verdict(name, value)
        print(f"{name:<26} {shown:>10}  {op}{goal:<6} {mark}")
    if args.json:
        payload = {
            "machine": {**machine(), "mode": "quick" if args.quick else "full", "sizes": sizes},
            "metrics": found,
            "scenarios": results,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
