"""Who sent it and what it points at: anonymous admins, channels, and files that are not images (issue 12: 13, 15)."""

from __future__ import annotations

import pytest

from simulators.telegram_updates import add_channel, forward_from_channel, send_as_channel, send_as_group, send_document
from tests.fakes import png
from tests.telegram_watch import count, handled_or_queued, open_watched
from tests.test_telegram_support import GROUP, PRIVATE, Bench, bench

pytestmark = pytest.mark.telegram
__all__ = ["bench"]

CHANNEL = -1009
NOTHING = "Nothing was queued"


async def nothing_charged(bench: Bench) -> None:
    assert await count(bench, "SELECT COUNT(*) FROM jobs") == 0
    assert await count(bench, "SELECT COUNT(*) FROM quota_ledger") == 0


def answer_to(bench: Bench, chat_id: int, message_id: int, text: str) -> bool:
    return any(m.reply_to == message_id and text in (m.text or "") for m in bench.sim.visible(chat_id))


async def test_anonymous_admin_is_told_to_write_as_themselves(bench: Bench) -> None:
    watch = await open_watched(bench)
    sent = await send_as_group(bench.sim, GROUP, "/imagine@test_bot a fox")
    await handled_or_queued(bench, watch, GROUP, sent.message_id)
    assert answer_to(bench, GROUP, sent.message_id, "anonymous admin")
    assert answer_to(bench, GROUP, sent.message_id, NOTHING)
    await nothing_charged(bench)


async def test_posting_as_a_channel_is_refused(bench: Bench) -> None:
    add_channel(bench.sim, CHANNEL)
    watch = await open_watched(bench)
    sent = await send_as_channel(bench.sim, GROUP, CHANNEL, "/imagine@test_bot a fox")
    await handled_or_queued(bench, watch, GROUP, sent.message_id)
    assert answer_to(bench, GROUP, sent.message_id, "posting as a channel")
    await nothing_charged(bench)


async def test_linked_channel_post_is_ignored_and_charges_nobody(bench: Bench) -> None:
    add_channel(bench.sim, CHANNEL)
    watch = await open_watched(bench)
    forwarded = await forward_from_channel(bench.sim, GROUP, CHANNEL, "/imagine@test_bot channel art")
    await handled_or_queued(bench, watch, GROUP, forwarded.message_id)
    assert not bench.sim.visible(GROUP), "no answer in the discussion thread"
    await nothing_charged(bench)
    assert await count(bench, "SELECT COUNT(*) FROM users WHERE user_id = '777000'") == 0


async def test_imagine_in_reply_to_a_pdf_is_refused(bench: Bench) -> None:
    watch = await open_watched(bench)
    pdf = await send_document(
        bench.sim, PRIVATE, PRIVATE, b"%PDF-1.7\n%\xe2\xe3\n", mime_type="application/pdf", file_name="brief.pdf"
    )
    sent = await bench.sim.send_text(PRIVATE, PRIVATE, "/imagine like this document", reply_to=pdf.message_id)
    await handled_or_queued(bench, watch, PRIVATE, sent.message_id)
    assert answer_to(bench, PRIVATE, sent.message_id, "(brief.pdf, application/pdf) is not an image")
    caption = "/imagine@test_bot x"
    captioned = await send_document(
        bench.sim, GROUP, 5, b"%PDF-1.7\n", mime_type="application/pdf", file_name="a.pdf", caption=caption
    )
    await handled_or_queued(bench, watch, GROUP, captioned.message_id)
    assert answer_to(bench, GROUP, captioned.message_id, "is not an image")
    await nothing_charged(bench)
    assert bench.sim.count("getFile") == 0


IMAGE_FILES = [("image/jpeg", "photo.jpg", "JPEG"), ("image/webp", "x.webp", "WEBP")]


@pytest.mark.parametrize(("mime", "name", "fmt"), IMAGE_FILES)
async def test_image_files_still_start_img2img(bench: Bench, mime: str, name: str, fmt: str) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(png(96, 96))).convert("RGB").save(buffer, fmt)
    await bench.open()
    document = await send_document(bench.sim, PRIVATE, PRIVATE, buffer.getvalue(), mime_type=mime, file_name=name)
    await bench.imagine(PRIVATE, PRIVATE, "/imagine from this file", reply_to=document.message_id)
    assert bench.backend.calls[-1][1].kind == "img2img"
