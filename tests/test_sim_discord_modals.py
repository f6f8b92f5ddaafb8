"""The Discord simulator's attachments, message context menus and modals, checked with the real discord.py:
a slash command with three resolved attachments, a message command whose target comes resolved with its
images, the MODAL callback and the MODAL_SUBMIT that comes back, and the errors Discord answers for a bad
modal, a modal answering a modal submit, and a second answer (40060)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from simulators.discord import DiscordSimulator
from simulators.discord_commands import InvalidCommand, check_commands
from simulators.discord_events import click, slash
from simulators.discord_menus import image_embed, message_command, submit_modal, user_message
from simulators.discord_modals import FormError, check_modal
from tests.discord_support import discord_sim  # noqa: F401 (the `sim` fixture)
from tests.fakes import png

pytestmark = pytest.mark.discord


class Ask(discord.ui.Modal, title="Edit image"):
    """A modal with one paragraph input inside a Label, as discord.py 2.6+ builds it."""

    answer: discord.ui.Label[Any] = discord.ui.Label(
        text="Instruction", component=discord.ui.TextInput(style=discord.TextStyle.paragraph, max_length=200)
    )

    def __init__(self, probe: Probe, custom_id: str = "ask:1") -> None:
        super().__init__(custom_id=custom_id)
        self.probe = probe

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        component = self.answer.component
        assert isinstance(component, discord.ui.TextInput)
        self.probe.note("submit", component.value)
        try:
            if self.probe.modal_on_submit:
                await interaction.response.send_modal(Ask(self.probe, "ask:2"))
            else:
                await interaction.response.send_message("thanks", ephemeral=True)
        except discord.HTTPException as exc:
            self.probe.note("error", exc)


class Probe(discord.Client):
    """A bare discord.py client with a slash command taking three files, a message command and a button."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents(guilds=True))
        self.tree = app_commands.CommandTree(self)
        self.seen: list[tuple[str, Any]] = []
        self.modal_on_submit = False
        self.got = asyncio.Event()

        @self.tree.command(name="probe", description="files")
        async def probe(
            interaction: discord.Interaction[Any],
            image: discord.Attachment,
            image2: discord.Attachment | None = None,
            image3: discord.Attachment | None = None,
        ) -> None:
            files = [a for a in (image, image2, image3) if a is not None]
            self.note("files", [(a.filename, a.content_type, a.width, await a.read()) for a in files])
            await interaction.response.send_message("ok")

        @self.tree.context_menu(name="Inspect")
        async def inspect(interaction: discord.Interaction[Any], message: discord.Message) -> None:
            self.note("message", message)
            await interaction.response.send_modal(Ask(self))

    def note(self, what: str, value: Any) -> None:
        self.seen.append((what, value))
        self.got.set()

    async def setup_hook(self) -> None:
        self.tree.copy_global_to(guild=discord.Object(id=500))
        await self.tree.sync(guild=discord.Object(id=500))

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.component:
            await interaction.response.send_modal(Ask(self))


@pytest.fixture
async def probe(sim: DiscordSimulator) -> AsyncIterator[Probe]:
    client = Probe()
    await client.login("bot-token")
    task = asyncio.create_task(client.connect(reconnect=False))
    async with asyncio.timeout(10):
        await client.wait_until_ready()
    yield client
    await client.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def seen(probe: Probe, kind: str) -> Any:
    """The first thing of this kind the client noted, waiting for it."""
    async with asyncio.timeout(10):
        while not (found := [value for what, value in probe.seen if what == kind]):
            probe.got.clear()
            await probe.got.wait()
    return found[0]


async def test_a_command_with_three_files_resolves_each(sim: DiscordSimulator, probe: Probe) -> None:
    files = {"image": ("a.png", png(64, 48)), "image2": ("b.png", png(32, 32)), "image3": ("notes.txt", b"hello")}
    await slash(sim, "probe", files=files)
    got = await seen(probe, "files")
    assert [(name, kind, width) for name, kind, width, _ in got] == [
        ("a.png", "image/png", 64), ("b.png", "image/png", 32), ("notes.txt", "application/octet-stream", None)
    ]  # fmt: skip
    assert got[0][3] == files["image"][1] and got[2][3] == b"hello"


async def test_a_message_command_gets_the_target_with_its_images(sim: DiscordSimulator, probe: Probe) -> None:
    commands = sim.state.commands["500"]
    assert {(c["name"], c["type"]) for c in commands} >= {("probe", 1), ("Inspect", 3)}
    target = user_message(
        sim, "700", "43", "look", files=[("cat.png", png(40, 30))], embeds=[image_embed(sim, "dog.png", png(20, 20))]
    )
    interaction = await message_command(sim, "Inspect", target.id)
    await sim.state.wait_until(lambda: interaction.modal is not None)
    message = await seen(probe, "message")
    assert message.id == int(target.id) and message.content == "look" and message.author.id == 43
    assert [(a.filename, a.width, a.height) for a in message.attachments] == [("cat.png", 40, 30)]
    assert message.embeds[0].thumbnail.url is not None
    assert await message.attachments[0].read() == png(40, 30)


async def test_a_modal_opens_and_its_submit_comes_back(sim: DiscordSimulator, probe: Probe) -> None:
    posted = user_message(sim, "700", "43", "x")
    posted.components = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Edit", "custom_id": "e:1"}]}]
    pressed = await click(sim, posted.id, "e:1")
    await sim.state.wait_until(lambda: pressed.modal is not None)
    assert pressed.modal is not None and pressed.modal["title"] == "Edit image"
    assert pressed.modal["components"][0]["type"] == 18
    with pytest.raises(ValueError, match="required"):
        await submit_modal(sim, pressed, {})
    with pytest.raises(ValueError, match="0-200"):
        await submit_modal(sim, pressed, {pressed.modal["components"][0]["component"]["custom_id"]: "x" * 201})
    field = pressed.modal["components"][0]["component"]["custom_id"]
    submitted = await submit_modal(sim, pressed, {field: "make it night"})
    await sim.state.wait_until(lambda: submitted.response_id is not None)
    assert ("submit", "make it night") in probe.seen
    assert sim.state.messages[submitted.response_id or ""].ephemeral


async def test_a_modal_cannot_answer_a_modal_submit(sim: DiscordSimulator, probe: Probe) -> None:
    probe.modal_on_submit = True
    target = user_message(sim, "700", "43", "x")
    opened = await message_command(sim, "Inspect", target.id)
    await sim.state.wait_until(lambda: opened.modal is not None)
    field = (opened.modal or {})["components"][0]["component"]["custom_id"]
    submitted = await submit_modal(sim, opened, {field: "again"})
    error = await seen(probe, "error")
    assert error.status == 400 and error.code == 50035 and "In type: Value must be one of {4, 5}" in str(error)
    assert not submitted.answered and submitted.modal is None


async def callback(sim: DiscordSimulator, interaction_id: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        url = f"{sim.url}/api/v10/interactions/{interaction_id}/{token}/callback?with_response=1"
        async with session.post(url, json=body) as response:
            return response.status, await response.json() if response.status != 204 else None


def modal(**changes: Any) -> dict[str, Any]:
    text = {"type": 4, "custom_id": "instruction", "style": 2, "max_length": 4000}
    base: dict[str, Any] = {"custom_id": "edit:abc:0", "title": "Edit image", "components": [
        {"type": 18, "label": "Instruction", "component": text}
    ]}  # fmt: skip
    base.update(changes)
    return base


async def test_a_modal_on_an_answered_interaction_is_40060(sim: DiscordSimulator) -> None:
    interaction = sim.new_interaction("700", kind=2, user_id="42")
    assert await callback(sim, interaction.id, interaction.token, {"type": 9, "data": modal()}) == (
        200, {"interaction": {"id": interaction.id, "type": 2}}
    )  # fmt: skip
    status, body = await callback(sim, interaction.id, interaction.token, {"type": 9, "data": modal()})
    assert (status, body["code"]) == (400, 40060) and body["message"] == "Interaction has already been acknowledged."


INPUT = {"type": 4, "custom_id": "i", "style": 1}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"title": "x" * 46}, "data.title"),
        ({"title": ""}, "data.title"),
        ({"custom_id": "x" * 101}, "data.custom_id"),
        ({"components": []}, "data.components"),
        ({"components": [{"type": 18, "label": "l", "component": {**INPUT, "custom_id": f"i{n}"}}
                         for n in range(6)]}, "data.components"),
        ({"components": [{"type": 18, "label": "x" * 46, "component": INPUT}]}, "data.components.0.label"),
        ({"components": [{"type": 18, "label": "l", "component": {**INPUT, "max_length": 4001}}]},
         "data.components.0.component.max_length"),
        ({"components": [{"type": 18, "label": "l", "component": {**INPUT, "custom_id": "x" * 101}}]},
         "data.components.0.component.custom_id"),
        ({"components": [{"type": 18, "label": "l", "component": {**INPUT, "style": 3}}]},
         "data.components.0.component.style"),
        ({"components": [{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "b", "label": "b"}]}]},
         "data.components.0.components.0.type"),
        ({"components": [{"type": 1, "components": [{**INPUT, "label": "x" * 46}]}]},
         "data.components.0.components.0.label"),
        ({"components": [{"type": 1, "components": [INPUT]}]}, "data.components.0.components.0.label"),
        ({"components": [{"type": 18, "label": "a", "component": INPUT},
                         {"type": 18, "label": "b", "component": INPUT}]}, "data.components.1.component.custom_id"),
    ],
)  # fmt: skip
async def test_a_bad_modal_is_refused_naming_the_field(
    sim: DiscordSimulator, changes: dict[str, Any], path: str
) -> None:
    with pytest.raises(FormError) as refused:
        check_modal(modal(**changes))
    assert refused.value.path == path
    interaction = sim.new_interaction("700", kind=3, user_id="42")
    status, body = await callback(sim, interaction.id, interaction.token, {"type": 9, "data": modal(**changes)})
    node = body["errors"]
    for part in path.split("."):
        node = node[part]
    assert (status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body") and node["_errors"]
    assert not interaction.answered  # a refused answer leaves the interaction open


async def test_an_action_row_text_input_is_still_accepted(sim: DiscordSimulator) -> None:
    check_modal(modal(components=[{"type": 1, "components": [{**INPUT, "label": "Instruction"}]}]))


@pytest.mark.parametrize(
    ("kind", "response", "ok"),
    [(2, 9, True), (3, 9, True), (4, 9, False), (5, 9, False), (2, 7, False), (5, 4, True), (4, 8, True)],
)
async def test_which_answers_fit_which_interaction(sim: DiscordSimulator, kind: int, response: int, ok: bool) -> None:
    interaction = sim.new_interaction("700", kind=kind, user_id="42")
    data = modal() if response == 9 else {"choices": []} if response == 8 else {"content": "x"}
    status, _ = await callback(sim, interaction.id, interaction.token, {"type": response, "data": data})
    assert (status in (200, 204)) is ok


def test_message_commands_take_mixed_case_and_spaces_but_no_description() -> None:
    slash_edit = {"name": "edit", "description": "Edit", "type": 1}
    check_commands([slash_edit, {"name": "Edit image", "type": 3}, {"name": "Edit image", "type": 2}])
    with pytest.raises(InvalidCommand, match="description"):
        check_commands([{"name": "Edit image", "type": 3, "description": "x"}])
    with pytest.raises(InvalidCommand, match="unique"):
        check_commands([{"name": "Edit image", "type": 3}, {"name": "Edit image", "type": 3}])
    with pytest.raises(InvalidCommand, match="context menu"):
        check_commands([{"name": f"Menu {n}", "type": 3} for n in range(16)])
    with pytest.raises(InvalidCommand, match="name"):
        check_commands([{"name": "x" * 33, "type": 3}])


async def test_the_first_followup_after_a_deferral_fills_the_loading_message(sim: DiscordSimulator) -> None:
    interaction = sim.new_interaction("700", kind=3, user_id="42")
    status, body = await callback(sim, interaction.id, interaction.token, {"type": 5, "data": {"flags": 64}})
    loading = body["interaction"]["response_message_id"]
    async with aiohttp.ClientSession() as session:
        url = f"{sim.url}/api/v10/webhooks/{sim.state.app_id}/{interaction.token}?wait=1"
        async with session.post(url, json={"content": "done", "flags": 0}) as response:
            first = await response.json()
        async with session.post(url, json={"content": "more", "flags": 0}) as response:
            second = await response.json()
    assert status == 200 and first["id"] == loading and first["flags"] == 64  # edited in place, still private
    assert sim.state.messages[loading].content == "done" and second["id"] != loading and second["flags"] == 0
