"""bot/ and commands/ stay free of platform, HTTP and database libraries (only bot/app.py wires them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    *("discord", "telegram", "httpx", "aiohttp", "aiosqlite", "asyncpg"),
    *("adapters", "storage", "simulators", "websockets"),
}
EXEMPT = {"bot/app.py", "bot/app_demo.py", "bot/app_run.py", "bot/app_check.py"}  # the composition root


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def core_files() -> list[Path]:
    files = [p for folder in ("bot", "commands") for p in (ROOT / folder).rglob("*.py")]
    return [p for p in files if p.relative_to(ROOT).as_posix() not in EXEMPT]


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_imports_no_outside_library(path: Path) -> None:
    assert not imported_modules(path) & FORBIDDEN


def test_the_walk_sees_the_composition_root() -> None:
    # The walker itself must be able to fail: app.py does import adapters and storage.
    assert {"adapters", "storage"} <= imported_modules(ROOT / "bot" / "app.py")


def test_commands_do_not_import_adapters() -> None:
    assert len(core_files()) > 20


# ---- the Jobs port (bot/jobs.py) is all that commands, ops, the web pages and the platform adapters see ----

ENGINE_MODULES = {
    "bot.engine",
    "bot.scheduler",
    "bot.worker",
    "bot.worksource",
    "bot.pool",
    "bot.dispatch",
    "bot.views",
    "bot.intake",
    "bot.routing",
    "bot.notify",
}
# `.scheduler` is left out: requests and presets have a sampler scheduler. Past `services.jobs`, mypy (the port
# is a Protocol) refuses any attribute the port does not name.
ENGINE_INTERNALS = {"engine", "workers", "pool", "notifier", "gone_chats", "finished_event", "worker_changed"}
RECORDS = {"QueuedJob"}  # plain data from an engine module (the forecast reads queue entries)
ENGINE_CLASSES = {"Engine", "FairScheduler", "Worker", "BackendPool", "Router", "StatusNotifier"}
PORT_USERS = ("bot/chats.py", "bot/positions.py", "bot/placement.py")


def port_user_files() -> list[Path]:
    files = [p for folder in ("commands", "adapters") for p in (ROOT / folder).rglob("*.py")]
    return files + [ROOT / name for name in PORT_USERS]


def engine_reaches(path: Path) -> list[str]:
    """Imports of the engine's modules or classes, and attribute reads of its internals, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name in ENGINE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in ENGINE_MODULES and not {alias.name for alias in node.names} <= RECORDS:
                found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names if alias.name in ENGINE_CLASSES]
        elif isinstance(node, ast.Attribute) and node.attr in ENGINE_INTERNALS:
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("path", port_user_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_callers_see_only_the_jobs_port(path: Path) -> None:
    assert engine_reaches(path) == []


def test_the_port_walk_sees_the_engine() -> None:
    # The walker must be able to fail: the composition root builds the engine and reads its workers' state.
    reaches = engine_reaches(ROOT / "bot" / "app.py")
    assert "bot.engine" in reaches and any(".engine" in reach for reach in reaches)
