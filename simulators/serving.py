"""Serve a simulator's aiohttp app on loopback: a free port when asked for 0, no access log, a quick shutdown."""

from __future__ import annotations

from aiohttp import web


async def start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start `app`; return its runner (for `cleanup()`) and its base URL with the port actually bound."""
    runner = web.AppRunner(app, shutdown_timeout=0.05, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = [address for address in runner.addresses if isinstance(address, tuple)]
    return runner, f"http://{host}:{bound[0][1] if bound else port}"
