"""The `imagebridge` command: demo, run, check, simulate, db."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.errors import ConfigError
from bot.logs import configure
from bot.settings import Settings, config_path, load_settings

NO_CONFIG = (
    "no config file: looked for {where}.\n"
    "  Copy imagebridge.example.toml to imagebridge.toml and edit it, or pass --config FILE "
    "(or set IMAGEBRIDGE_CONFIG). `imagebridge demo` needs no config."
)
NOTHING_TO_RUN = (
    "nothing to run: no platform is enabled in {path}.\n"
    "  Set [discord] enabled = true, [telegram] enabled = true or [console] enabled = true\n"
    "  (with [storage] url on PostgreSQL, a process without platforms runs workers for the shared queue)."
)


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--config, --log-level and --log-format, accepted before and after the subcommand."""
    # After the subcommand the defaults are SUPPRESS, so they never overwrite a value given before it.
    default: dict[str, object] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--config", help="path to imagebridge.toml (or set IMAGEBRIDGE_CONFIG)", **default)  # type: ignore[arg-type]
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR", **default)  # type: ignore[arg-type]
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text (default) or JSON lines",
        **default,  # type: ignore[arg-type]
    )


def days(text: str) -> int:
    """An argparse type: a whole number of days, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 day (got {value})")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="imagebridge", description="Chat bot for shared image generation.")
    _global_options(root, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = root.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", parents=[common], help="generate with a local simulator, no GPU or tokens needed")
    demo.add_argument("prompt", nargs="?", help="prompt; without one an interactive session starts")
    demo.add_argument("--preset", help="preset name (sd15, sdxl, flux)")
    demo.add_argument("--count", type=int, default=1, help="number of images")
    demo.add_argument("--out", type=Path, default=Path("out"), help="folder for the images (default ./out)")
    demo.add_argument("--data", type=Path, help="data folder (default: a temporary one)")
    demo.add_argument("--admin", action="store_true", help="act as a bot admin (no quota) instead of a normal user")

    sub.add_parser("run", parents=[common], help="run the bot with the configured platforms and backends")
    sub.add_parser("check", parents=[common], help="validate the configuration and ask each backend whether it answers")

    db = sub.add_parser("db", parents=[common], help="database maintenance")
    db_actions = db.add_subparsers(dest="db_command", required=True)
    db_actions.add_parser("migrate", parents=[common], help="bring the database schema up to date (bot stopped)")
    db_actions.add_parser("stats", parents=[common], help="which database, its schema version and jobs per state")
    db_backup = db_actions.add_parser(
        "backup", parents=[common], help="online backup: SQLite's backup API, or pg_dump on PostgreSQL"
    )
    db_backup.add_argument("path", help="a new file, or a folder (existing, or ending in /) for a dated file")
    db_prune = db_actions.add_parser(
        "prune", parents=[common], help="delete finished jobs and their images older than N days"
    )
    db_prune.add_argument("--days", type=days, help="at least 1; default: retention_days from the config")
    db_import = db_actions.add_parser(
        "import-sqlite", parents=[common], help="copy a SQLite database into the configured, empty PostgreSQL one"
    )
    db_import.add_argument("path", nargs="?", help="the SQLite file (default: data_dir/imagebridge.sqlite3)")

    _simulate_parser(sub, common)
    return root


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    simulate = sub.add_parser("simulate", parents=[common], help="serve a backend simulator on loopback")
    kinds = ["a1111", "comfyui", "openwebui", "openai", "horde", "swarmui"]
    simulate.add_argument("kind", choices=kinds, help="which backend")
    simulate.add_argument("--port", type=int, default=7860, help="TCP port on 127.0.0.1 (default 7860)")
    simulate.add_argument(
        "--flavour", choices=["a1111", "forge"], default="a1111", help="a1111 only: which WebUI to imitate"
    )
    simulate.add_argument(
        "--seconds-per-step", type=float, default=0.05, help="simulated time per sampling step (default 0.05)"
    )
    simulate.add_argument(
        "--model-load-seconds", type=float, default=2.0, help="a1111 only: simulated checkpoint switch time (default 2)"
    )


def _settings(args: argparse.Namespace) -> tuple[Settings, Path | None]:
    """The settings, and the file they came from; `check` and `run` refuse to go on without a file."""
    path = config_path(getattr(args, "config", None))
    if path is None and args.command in ("check", "run"):
        raise ConfigError(NO_CONFIG.format(where=Path("imagebridge.toml").resolve()))
    if path is None:
        print(f"imagebridge: no config file ({Path('imagebridge.toml').resolve()}); using defaults", file=sys.stderr)
    return load_settings(path), path


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log_level = getattr(args, "log_level", None)
    level = log_level or ("WARNING" if args.command == "demo" else "INFO")
    configure(level, getattr(args, "log_format", None) or "text")
    from bot import app_check, app_demo, app_run

    try:
        if args.command == "demo":
            return asyncio.run(
                app_demo.run_demo(args.prompt, args.preset, args.count, args.out, args.data, admin=args.admin)
            )
        if args.command == "simulate":
            return asyncio.run(
                app_check.run_simulator(
                    args.kind, args.port, args.flavour, args.seconds_per_step, args.model_load_seconds
                )
            )
        settings, path = _settings(args)
        if log_level is None:
            logging.getLogger().setLevel(settings.log_level)
        if args.command == "db":
            return asyncio.run(
                app_check.run_db(args.db_command, getattr(args, "path", None), getattr(args, "days", None), settings)
            )
        if args.command == "check":
            return asyncio.run(app_check.run_check(settings))
        platforms = settings.discord.enabled or settings.telegram.enabled or settings.console.enabled
        if not platforms and settings.storage.url is None:  # on PostgreSQL: a process that only runs workers
            raise ConfigError(NOTHING_TO_RUN.format(path=path))
        return asyncio.run(app_run.run_bot(settings))
    except ConfigError as exc:
        print(f"imagebridge: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C in the demo; a second Ctrl-C in run
        return 130


if __name__ == "__main__":
    sys.exit(main())
