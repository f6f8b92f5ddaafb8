"""Backends, drains and pauses seen across the bot processes that share one queue (PostgreSQL).

Each process publishes its workers' state to the store's board (bot/queue_store.py BackendBoard) when it
changes (a job taken or finished, health, a drain; looked at every second) and as a heartbeat, and reads the
board again whenever any process announces a change (NOTIFY) or at the poll. `backends()` stays synchronous:
this process's workers live, then every other live process's as last read. Each backend names its process
(`BackendState.process`, host:pid:random, shown as "name @ process"), so two processes' backends of one name
can be told apart; a drain, though, is by name: `/admin drain gpu` drains `gpu` in every process.

A drain is stored (it outlives restarts) and every process's claims skip a drained name from the moment it
is committed; the other processes' workers follow on the notice, and an undrain wakes their claimers.
A pause or resume saved by any process reaches this one's `is_paused` through the settings notices
(storage/postgres/account_signals.py): the paused servers are read again and the scheduler's set follows.

Each backend's row also says what it can run (bot/routing.py BackendFit), so routing here counts the other
processes' backends: a request one of them can run is not refused, a job none can run any more fails (after
every read of the board and each inventory change here: bot/shared_queue.py `fail_stranded`), and a waiting
job's reason names only backends that can run it. A process that left the board keeps counting for a while
(`DEPARTED_GRACE_SECONDS`): a restart must not fail the jobs only its backends run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot import presenter
from bot.engine import Engine
from bot.i18n import t
from bot.jobs import BackendState
from bot.models import Job
from bot.queue_store import BackendBoard
from bot.routing import BackendFit, backend_fit

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger(__name__)

CHANGE_TICK_SECONDS = 1.0  # how often this process's backends are compared with what it last published
PUBLISH_GAP_SECONDS = 0.5  # at most two publishes a second: a burst of short jobs is one change to the others
READ_GAP_SECONDS = 0.25  # and the board read at most four times a second, however many notices arrive
DEPARTED_GRACE_SECONDS = 60.0  # a process gone from the board may be restarting: its backends count this long


class SharedBackends(Engine):
    """The Engine whose backends, drains and pauses are shared with the other processes on the queue."""

    owner: str  # set by bot/shared_queue.py SharedEngine
    lease_seconds: float
    poll_seconds: float

    def __init__(self, *, board: BackendBoard, **engine: Any) -> None:
        super().__init__(drains=board, **engine)
        self.board = board
        self.board_changed = asyncio.Condition()  # notified after each read of the board (tests wait on it)
        self.pauses_changed = asyncio.Condition()  # notified after the paused servers were read again
        self._remote: list[BackendState] = []
        self._drained: set[str] = set()
        self._published: tuple[tuple[object, ...], ...] | None = None
        self._poke = asyncio.Event()
        self._pauses_dirty = False
        self._pause_sync: asyncio.Task[None] | None = None
        self._fits: dict[str, tuple[tuple[str, bool], BackendFit]] = {}  # backend -> (mark, answered), its fits
        self._departed: dict[tuple[str | None, str], tuple[BackendState, float]] = {}  # left the board at (monotonic)
        self.router.elsewhere = self._fits_elsewhere

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.board.open(self.owner)  # first: its connection tells the others this process is alive
        await super().start()
        self._drained = await self.board.drained_backends()
        await self._publish()
        await self._read()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._publishing(), name="board-publish"))
        self._tasks.append(loop.create_task(self._reading(), name="board-read"))

    async def stop(self) -> None:
        if self._pause_sync is not None:
            self._pause_sync.cancel()
        await super().stop()
        try:
            await self.board.withdraw(self.owner)
        except Exception:
            log.exception("removing this process's backends from the board failed")
        await self.board.close()

    # ---- the board -----------------------------------------------------------------------------

    @property
    def heartbeat_seconds(self) -> float:
        """How often a process publishes its backends unchanged (a third of the lease, at least 5 s)."""
        return max(self.lease_seconds / 3, 5.0)

    def backends_changed(self) -> None:
        """A worker took or finished a job: publish soon."""
        self._poke.set()

    def released(self) -> None:
        super().released()
        self._poke.set()

    def _local(self) -> list[BackendState]:
        pairs = zip(super().backends(), self.workers, strict=True)
        return [replace(state, process=self.owner, fit=self._fit(worker)) for state, worker in pairs]

    def _fit(self, worker: Worker) -> BackendFit:
        """What the worker can run, computed again only when what it has changed (its mark) or it first answered."""
        key = (worker.fit_mark, worker.answered)
        known = self._fits.get(worker.backend.name)
        if known is None or known[0] != key:
            known = (key, backend_fit(worker, self.settings.presets))
            self._fits[worker.backend.name] = known
        return known[1]

    def _fits_elsewhere(self) -> list[tuple[str, BackendFit]]:
        """The other processes' backends for routing: those on the board, and those that left it lately."""
        now = time.monotonic()
        departed = [state for state, left in self._departed.values() if now - left < DEPARTED_GRACE_SECONDS]
        return [(state.name, state.fit) for state in [*self._remote, *departed] if state.fit is not None]

    def backends(self) -> list[BackendState]:
        return self._local() + self.remote_backends()

    def waiting_reason(self, job: Job) -> str | None:
        """As one process's, over every process's backends that can run the job's kind and preset."""
        request = job.request
        able = [s for s in self.remote_backends() if s.fit is None or not s.fit.why_not(request.kind, request.preset)]
        if any(state.healthy and not state.drained for state in able):
            return None
        here = super().waiting_reason(job)
        if not able or (here is None and any(self.router.runs(worker, job) for worker in self.workers)):
            return here
        lang = presenter.lang_of(job)
        quiet, drained = t(lang, "waiting.not_answering"), t(lang, "waiting.drained")
        named = [(w.backend.name, w.drained, w.health_detail) for w in self.workers if self.router.runs(w, job)]
        named += [(state.name, state.drained, state.detail) for state in able]
        reasons = "; ".join(f"{name}: {drained if off else (detail or quiet)}" for name, off, detail in named)
        return t(lang, "waiting.none_free", reasons=reasons)

    def remote_backends(self) -> list[BackendState]:
        return [replace(state, drained=state.name.lower() in self._drained) for state in self._remote]

    async def _publish(self) -> None:
        states = self._local()
        key = tuple(_key(state) for state in states)
        announce = key != self._published
        await self.board.publish(self.owner, states, announce)
        self._published = key

    async def _publishing(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHANGE_TICK_SECONDS):
                    await self._poke.wait()
            self._poke.clear()
            changed = tuple(_key(state) for state in self._local()) != self._published
            if changed or loop.time() - last >= self.heartbeat_seconds:
                try:
                    await self._publish()
                    last = loop.time()
                except Exception:
                    log.exception("publishing this process's backends failed; trying again")
                await asyncio.sleep(PUBLISH_GAP_SECONDS)

    async def _reading(self) -> None:
        while True:
            await self.board.wait_for_change(self.poll_seconds)  # a timeout is a poll: gone processes go
            try:
                await self._read()
            except Exception:
                log.exception("reading the backend board failed; trying again")
            await self.fail_stranded()  # what the board says now may leave a queued job no backend at all
            await asyncio.sleep(READ_GAP_SECONDS)

    async def _read(self) -> None:
        drained = await self.board.drained_backends()
        rows = await self.board.read(3 * self.heartbeat_seconds)  # three heartbeats missed: that process hangs
        self._note_departures([row for row in rows if row.process != self.owner])
        self._remote = [row for row in rows if row.process != self.owner]
        if self.workers and not any(row.process == self.owner for row in rows):
            self._published = None  # our rows were taken for a gone process's (a lost connection): publish again
            self._poke.set()
        await self._follow_drains(drained)
        async with self.board_changed:
            self.board_changed.notify_all()

    def _note_departures(self, remote: list[BackendState]) -> None:
        now = time.monotonic()
        here = {(state.process, state.name) for state in remote}
        for state in self._remote:
            if (state.process, state.name) not in here:
                self._departed[(state.process, state.name)] = (state, now)
        for key, (_, left) in list(self._departed.items()):
            if key in here or now - left >= DEPARTED_GRACE_SECONDS:
                del self._departed[key]

    async def _follow_drains(self, drained: set[str]) -> None:
        self._drained = drained
        undrained = False
        for worker in self.workers:
            now = worker.backend.name.lower() in drained
            undrained |= worker.drained and not now
            if worker.drained != now:
                worker.drained = now
                self._poke.set()
        if undrained:
            await self.wake_workers()

    # ---- drains, by name, in every process -------------------------------------------------------

    async def set_drained(self, name: str, drained: bool) -> BackendState | None:
        key = name.strip().lower()
        await self._read()  # the answer names every process's backend of that name as the store has it now
        named = [state for state in self.backends() if state.name.lower() == key]
        if not named and (drained or key not in self._drained):
            return None
        await self.board.record_drain(named[0].name if named else key, drained)  # stored and announced
        if drained:
            self._drained.add(key)
        else:
            self._drained.discard(key)
        for worker in self.workers:
            if worker.backend.name.lower() == key:
                worker.drained = drained
        if not drained:
            await self.wake_workers()
        self._poke.set()
        if not named:
            return BackendState(key, "", False, "", drained, None, None, 0, 0)
        current = next((state.current for state in named if state.current is not None), None)
        return replace(named[0], drained=drained, current=current)

    # ---- pauses saved by any process -------------------------------------------------------------

    def follow_settings(self, kind: str, _platform: str, _key: str) -> None:
        """A server's settings changed in some process ("*": anything may have): read the paused servers again."""
        if kind == "user" or self.pauses is None or self.stopping:
            return
        self._pauses_dirty = True
        if self._pause_sync is None or self._pause_sync.done():
            self._pause_sync = asyncio.get_running_loop().create_task(self._sync_pauses(), name="follow-pauses")

    async def _sync_pauses(self) -> None:
        assert self.pauses is not None
        while self._pauses_dirty:
            self._pauses_dirty = False
            try:
                paused = set(await self.pauses.paused_servers())
            except Exception:
                log.exception("reading the paused servers failed")
                return
            known = self.scheduler.paused()
            for key in known - paused:
                self.scheduler.resume(key)
            for key in paused - known:
                self.scheduler.pause(key)
            if known - paused:
                await self.wake_workers()
        async with self.pauses_changed:
            self.pauses_changed.notify_all()


def _key(state: BackendState) -> tuple[object, ...]:
    """What other processes are told about a backend (a running job's progress is not part of it)."""
    current = state.current.id if state.current is not None else None
    return (state.name, state.kind, state.healthy, state.detail, state.drained, current, state.loaded,
            state.completed, state.model_switches, state.fit)  # fmt: skip
