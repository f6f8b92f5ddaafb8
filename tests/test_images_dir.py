"""`[storage] images_dir`: image files go to that folder (a mount several hosts share), not data_dir/images."""

from __future__ import annotations

import asyncio
from pathlib import Path

from commands.dispatch import dispatch_text
from tests.conftest import AppFactory, invocation


async def test_results_are_written_under_images_dir(app_factory: AppFactory, tmp_path: Path) -> None:
    shared = tmp_path / "shared-images"
    app = await app_factory(storage={"images_dir": str(shared)})
    reply = await dispatch_text(app.services, invocation(), "/imagine a lighthouse")
    assert reply is not None and reply.job_id
    await asyncio.wait_for(app.engine.finished_event(reply.job_id).wait(), 10)
    images = await app.services.store.images(reply.job_id)
    assert images and all(Path(image.path).is_relative_to(shared) for image in images)
    written = [await asyncio.to_thread(Path(image.path).is_file) for image in images]
    assert all(written) and not await asyncio.to_thread((app.settings.data_dir / "images").exists)
