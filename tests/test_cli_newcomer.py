"""The CLI as a newcomer runs it (issue 15): options in either place, no config, db commands, Ctrl-C, the console."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


def test_global_options_work_after_the_subcommand(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[presets.x]\ncheckpoint = "a"\nsteps = "many"\n', encoding="utf-8")
    result = run("check", "--config", str(bad), "--log-format", "json", cwd=tmp_path)
    assert result.returncode == 2 and "presets.x.steps" in result.stderr, result.stderr
    result = run("run", "--log-format", "json", "--config", str(tmp_path / "missing.toml"), cwd=tmp_path)
    assert result.returncode == 2 and "config file not found" in result.stderr, result.stderr
    # Before the subcommand still works, and a value given before is not reset by the subcommand's parser.
    result = run("--config", str(bad), "check", "--log-level", "DEBUG", cwd=tmp_path)
    assert result.returncode == 2 and "presets.x.steps" in result.stderr


def test_check_and_run_without_a_config_file_say_what_to_do(tmp_path: Path) -> None:
    for command in ("check", "run"):
        result = run(command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout)
        assert str(tmp_path / "imagebridge.toml") in result.stderr
        assert "imagebridge.example.toml" in result.stderr and "--config" in result.stderr
    assert not (tmp_path / "data").exists()


def test_run_with_no_platform_enabled_refuses(tmp_path: Path) -> None:
    (tmp_path / "imagebridge.toml").write_text('data_dir = "d"\n', encoding="utf-8")
    result = run("run", cwd=tmp_path)
    assert result.returncode == 2 and "no platform is enabled" in result.stderr
    assert not (tmp_path / "d").exists()


def test_unknown_config_keys_get_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "imagebridge.toml").write_text("[quota]\nuser_dayly = 5\n", encoding="utf-8")
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2 and "quota.user_dayly: unknown key (did you mean 'user_daily'?)" in result.stderr


def test_db_backup_into_a_folder_keeps_dated_files(tmp_path: Path) -> None:
    (tmp_path / "imagebridge.toml").write_text('data_dir = "data"\n', encoding="utf-8")
    assert run("demo", "a fox", "--data", "data", "--out", "out", cwd=tmp_path).returncode == 0
    first = run("db", "backup", "backups/", cwd=tmp_path)
    second = run("db", "backup", "--config", "imagebridge.toml", "backups/", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    files = sorted((tmp_path / "backups").glob("imagebridge-*.sqlite3"))
    assert (tmp_path / "backups").is_dir() and len(files) == 2
    again = run("db", "backup", str(files[0]), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    pruned = run("db", "prune", "--days", "1", cwd=tmp_path)
    assert pruned.returncode == 0 and "pruned 0 finished jobs older than 1 day\n" in pruned.stdout, pruned.stderr


def test_db_commands_refuse_a_missing_database_and_bad_days(tmp_path: Path) -> None:
    result = run("db", "backup", "b/", cwd=tmp_path)
    assert result.returncode == 2 and "no database at" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "b").exists()
    for days, message in (("-3", "at least 1 day (got -3)"), ("0", "at least 1 day (got 0)"), ("x", "whole number")):
        result = run("db", "prune", "--days", days, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_simulate_help_explains_every_option(tmp_path: Path) -> None:
    result = run("simulate", "--help", cwd=tmp_path)
    for option in ("--port", "--flavour", "--seconds-per-step", "--model-load-seconds"):
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(option))
        assert len(line.split()) > 2 or "default" in result.stdout, line
    assert "simulated time per sampling step" in result.stdout and "TCP port" in result.stdout


class Process:
    """A CLI subprocess whose output lines arrive on a queue, waited for with a timeout (no sleeps)."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=cwd,
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{text!r} not seen in {''.join(self.seen)!r}") from None
            self.seen.append(line)
            if text in line:
                return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)  # the whole output, up to the end
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ctrl_c_stops_the_interactive_demo_without_enter(tmp_path: Path) -> None:
    demo = Process("demo", "--out", "out", cwd=tmp_path)
    try:
        demo.wait_for("Type /help")
        demo.interrupt()  # stdin stays open and nothing is typed
        assert demo.finish(timeout=20) == 130
    finally:
        demo.kill()


def console_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "imagebridge.toml"
    path.write_text(
        f"""data_dir = "data"
shutdown_grace_seconds = 30
[console]
enabled = true
[backends.local]
kind = "forge"
url = "http://127.0.0.1:{port}"
poll_interval_seconds = 0.1
[presets.sd15]
checkpoint = "v1-5-pruned-emaonly.safetensors"
steps = 20
""",
        encoding="utf-8",
    )
    return path


def test_ctrl_c_in_run_stops_at_once_when_nothing_runs(tmp_path: Path) -> None:
    bot = Process("run", "--config", str(console_config(tmp_path, free_port())), cwd=tmp_path)
    try:
        bot.wait_for("imagebridge running")
        bot.interrupt()
        assert bot.finish(timeout=20) == 0
        assert not any("have 30 s" in line for line in bot.seen)
    finally:
        bot.kill()


def test_a_second_ctrl_c_stops_a_running_job_at_once(tmp_path: Path) -> None:
    port = free_port()
    simulator = Process("simulate", "a1111", "--port", str(port), "--seconds-per-step", "5", cwd=tmp_path)
    bot = Process("run", "--config", str(console_config(tmp_path, port)), cwd=tmp_path)
    try:
        simulator.wait_for(str(port))
        bot.wait_for("imagebridge running")
        bot.send("/imagine a slow lighthouse\n")
        bot.wait_for("Generating")
        bot.interrupt()
        bot.wait_for("Ctrl-C again stops at once")
        bot.interrupt()
        assert bot.finish(timeout=15) in (0, 130)
        assert any("stopping at once" in line for line in bot.seen), bot.seen
    finally:
        bot.kill()
        simulator.kill()


def test_piped_console_waits_for_the_job_and_shows_one_based_button_ids(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--log-level", "INFO", "--out", "out"],
        cwd=tmp_path,
        env=ENV,
        input="/imagine a red fox --n 2\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "waiting for your running job" in out and len(list((tmp_path / "out").glob("*.png"))) == 2
    job = out.split("job ")[-1].split()[0]
    assert f"[V1: vary:{job}:1]" in out and f"[U2: upscale:{job}:2]" in out and f"reroll:{job}" in out
    assert "httpx" not in result.stderr + out and "imagebridge> " not in out  # no prompts in piped output


def test_the_demo_user_has_a_quota_and_demo_admin_has_none(tmp_path: Path) -> None:
    def quota(*extra: str) -> str:
        args = [sys.executable, "-m", "bot.cli", "demo", "--out", "out", *extra]
        done = subprocess.run(args, cwd=tmp_path, env=ENV, input="/quota\n", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "You: 0 of 200 used" in quota() and "bot's admins" not in quota()
    assert "you are one of the bot's admins" in quota("--admin")
