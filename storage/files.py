"""Image files under the data folder; disk work runs in a thread so the loop never blocks."""

from __future__ import annotations

import asyncio
from pathlib import Path


class DiskImageFiles:
    """ImageFiles on the local disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def write(self, folder: str, name: str, data: bytes) -> str:
        target = self.root / folder / name
        await asyncio.to_thread(self._write, target, data)
        return str(target)

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(target)

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(Path(path).read_bytes)

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(Path(path).unlink, True)

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(Path(path).is_file)

    async def check(self) -> None:
        """Nothing to check on disk: the folder is made on first write."""

    async def aclose(self) -> None:
        """Nothing to close."""
