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
EXEMPT = {"bot/app.py"}


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
