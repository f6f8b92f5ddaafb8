"""The Edit button's id typed in the terminal: no form and no reply prompt there, so the answer says which
/edit to type, and that /edit edits the image."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from adapters.console.outbound import ConsoleOutbound
from adapters.console.session import ConsoleSession
from bot.app import build_app
from tests.conftest import make_settings
from tests.edit_support import FakeEditor, edit_overrides
from tests.fakes import FakeBackend


async def test_the_edit_id_in_the_terminal_says_which_edit_to_type(tmp_path: Path) -> None:
    outbound = ConsoleOutbound(stream=io.StringIO(), interval=0)
    editor = FakeEditor()
    settings = make_settings(tmp_path / "data", **edit_overrides())
    app = await build_app(settings, [outbound], backends=[FakeBackend(), editor])
    await app.start()
    try:
        session = ConsoleSession(app.services, outbound)
        made = await session.handle("/imagine a red fox")
        assert made is not None and made.job_id is not None
        await asyncio.wait_for(app.engine.finished_event(made.job_id).wait(), 10)
        answer = await session.handle(f"edit:{made.job_id}:1")
        command = f"/edit <instruction> --job {made.job_id} --image 1"
        assert answer is not None and command in answer.text and answer.asks_instruction is None
        edit = await session.handle(f"/edit make it night --job {made.job_id} --image 1")
        assert edit is not None and edit.job_id is not None, edit and edit.text
        await asyncio.wait_for(app.engine.finished_event(edit.job_id).wait(), 10)
        assert editor.edits[0][1].user_prompt == "make it night"
    finally:
        await app.stop()
