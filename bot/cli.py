"""The `imagebridge` command: demo, run, check, simulate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.errors import ConfigError
from bot.logs import configure
from bot.settings import config_path, load_settings


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="imagebridge", description="Chat bot for shared image generation.")
    root.add_argument("--config", help="path to imagebridge.toml (or set IMAGEBRIDGE_CONFIG)")
    root.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    root.add_argument("--log-format", choices=["text", "json"], default="text", help="text (default) or JSON lines")
    sub = root.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate with a local simulator, no GPU or tokens needed")
    demo.add_argument("prompt", nargs="?", help="prompt; without one an interactive session starts")
    demo.add_argument("--preset", help="preset name (sd15, sdxl, flux)")
    demo.add_argument("--count", type=int, default=1, help="number of images")
    demo.add_argument("--out", type=Path, default=Path("out"), help="folder for the images (default ./out)")
    demo.add_argument("--data", type=Path, help="data folder (default: a temporary one)")

    sub.add_parser("run", help="run the bot with the configured platforms and backends")
    sub.add_parser("check", help="validate the configuration and ask each backend whether it answers")

    db = sub.add_parser("db", help="database maintenance")
    db_actions = db.add_subparsers(dest="db_command", required=True)
    db_backup = db_actions.add_parser("backup", help="online backup of the SQLite database")
    db_backup.add_argument("path", type=Path, help="file or folder to write to")
    db_prune = db_actions.add_parser("prune", help="delete finished jobs and their images older than N days")
    db_prune.add_argument("--days", type=int, help="default: retention_days from the config")

    simulate = sub.add_parser("simulate", help="serve a backend simulator on loopback")
    kinds = ["a1111", "comfyui", "openwebui", "openai", "horde", "swarmui"]
    simulate.add_argument("kind", choices=kinds, help="which backend")
    simulate.add_argument("--port", type=int, default=7860)
    simulate.add_argument("--flavour", choices=["a1111", "forge"], default="a1111")
    simulate.add_argument("--seconds-per-step", type=float, default=0.05)
    simulate.add_argument("--model-load-seconds", type=float, default=2.0)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = args.log_level or ("WARNING" if args.command == "demo" else "INFO")
    configure(level, args.log_format)
    from bot import app

    try:
        if args.command == "demo":
            return asyncio.run(app.run_demo(args.prompt, args.preset, args.count, args.out, args.data))
        if args.command == "simulate":
            return asyncio.run(
                app.run_simulator(args.kind, args.port, args.flavour, args.seconds_per_step, args.model_load_seconds)
            )
        settings = load_settings(config_path(args.config))
        if args.log_level is None:
            logging.getLogger().setLevel(settings.log_level)
        if args.command == "db":
            return asyncio.run(
                app.run_db(args.db_command, getattr(args, "path", None), getattr(args, "days", None), settings)
            )
        if args.command == "check":
            return asyncio.run(app.run_check(settings))
        return asyncio.run(app.run_bot(settings))
    except ConfigError as exc:
        print(f"imagebridge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
