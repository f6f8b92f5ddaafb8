"""The backend factory: which config fields become which client options, per kind."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from adapters.backends.factory import build_backend, options_for
from adapters.backends.swarmui import SwarmUIBackend
from bot.settings import BackendConfig
from simulators.openwebui import A1111_MODELS, OpenWebUISimulator
from simulators.swarmui import SwarmUISimulator
from tests.backend_requests import request

pytestmark = pytest.mark.backends
SDXL = A1111_MODELS[0][0]


def config(kind: str, **fields: object) -> BackendConfig:
    return BackendConfig.model_validate({"kind": kind, "url": "http://127.0.0.1:9"} | fields)


@pytest.mark.parametrize(("kind", "model"), [("openai", "m1"), ("horde", "m1"), ("swarmui", "m1"), ("openwebui", None)])
def test_models_list_becomes_the_model_except_for_open_webui(kind: str, model: str | None) -> None:
    assert options_for(config(kind, models=["m1", "m2"])).get("model") == model
    assert options_for(config(kind, models=["m1"], model="m2"))["model"] == "m2"  # an explicit model always counts


async def test_open_webui_with_a_models_list_and_a_user_key_generates() -> None:
    sim = OpenWebUISimulator(users={"sk-user": True}, admins={"sk-admin"}, engine="automatic1111", model=SDXL)
    url = await sim.start()
    backend = build_backend("ow", config("openwebui", url=url, models=[SDXL]), SecretStr("sk-user"))
    try:
        result = await backend.generate("j", request(), None, lambda p: None)
        assert len(result.images) == 1
    finally:
        await backend.aclose()
        await sim.stop()


async def test_swarmui_is_built_with_its_token_as_cookie() -> None:
    sim = SwarmUISimulator(token="626f74.id.check", close_grace_seconds=0)
    url = await sim.start()
    backend = build_backend("swarm", config("swarmui", url=url, previews=False), SecretStr("626f74.id.check"))
    try:
        assert isinstance(backend, SwarmUIBackend) and backend.kind == "swarmui"
        assert not backend.capabilities.previews and backend.capabilities.cancel
        assert (await backend.health()).ok
    finally:
        await backend.aclose()
        await sim.stop()
