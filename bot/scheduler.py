"""The fair, model-aware queue.

Each server (Discord guild, Telegram chat, console session) has its own queue, and inside it each
user has a FIFO. The next job is chosen by least attained service, weighted by job cost: across
servers first, then across users within the chosen server. That is deficit round robin with an
infinitely small quantum: a flow that was idle rejoins at the level of the least-served active
flow, so it can neither bank credit while away nor be starved by a user with fifty jobs queued.

Model affinity looks at the next few jobs in that fair order and prefers one whose checkpoint the
backend already has loaded; a job may be passed over only a bounded number of times or seconds.
Everything here is synchronous and in memory; the engine persists every change first.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class QueuedJob:
    """What the scheduler needs to know about a queued job."""

    job_id: str
    server: str
    user: str
    cost: float
    checkpoint: str
    preset: str
    priority: int = 0
    estimate: float = 0.0  # expected seconds of generation, for ETAs
    seq: int = -1
    passed_over: int = 0
    first_passed_at: float | None = None
    picked: tuple[int, int, int] | None = None  # (tick, server's and user's last pick before it), for requeue

    @property
    def sort_key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


@dataclass
class _Flow:
    """A queue with a service counter: a user's jobs, or a server's users."""

    served: float = 0.0
    last_pick: int = -1
    jobs: list[QueuedJob] = field(default_factory=list)
    keys: list[tuple[int, int]] = field(default_factory=list)
    children: dict[str, _Flow] = field(default_factory=dict)
    size: int = 0


def _activate(flow: _Flow, siblings: dict[str, _Flow]) -> None:
    """A flow that becomes busy starts level with the least-served busy sibling (no banked credit)."""
    active = [other.served for other in siblings.values() if other.size > 0 and other is not flow]
    if active:
        flow.served = max(flow.served, min(active))


Filter = Callable[[QueuedJob], bool]


class FairScheduler:
    """Per-server queues with a fair pick and model affinity."""

    def __init__(
        self,
        *,
        affinity: bool = True,
        window: int = 8,
        max_pass_over: int = 4,
        max_pass_over_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.affinity = affinity
        self.window = window
        self.max_pass_over = max_pass_over
        self.max_pass_over_seconds = max_pass_over_seconds
        self._clock = clock
        self._servers: dict[str, _Flow] = {}
        self._index: dict[str, QueuedJob] = {}
        self._paused: set[str] = set()
        self._per_user: dict[str, int] = {}
        self.longest_pass_over_seconds = 0.0  # the longest any picked job waited after it was first passed over
        self.most_pass_overs = 0
        self._seq = itertools.count()
        self._picks = itertools.count()
        self.on_change: Callable[[], None] | None = None  # the queue's order may have moved (position updates)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def now(self) -> float:
        """The scheduler's clock (pass-over seconds are measured on it)."""
        return self._clock()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._index

    def get(self, job_id: str) -> QueuedJob | None:
        return self._index.get(job_id)

    def add(self, job: QueuedJob) -> None:
        """Queue a job at the back of its user's FIFO (ahead of lower-priority jobs)."""
        if job.job_id in self._index:
            return
        if job.seq < 0:  # a requeued job (see requeue) comes back with its seq, so it keeps its place
            job.seq = next(self._seq)
        server = self._servers.setdefault(job.server, _Flow())
        user = server.children.setdefault(job.user, _Flow())
        if server.size == 0:
            _activate(server, self._servers)
        if user.size == 0:
            _activate(user, server.children)
        position = bisect.bisect_right(user.keys, job.sort_key)
        user.keys.insert(position, job.sort_key)
        user.jobs.insert(position, job)
        user.size += 1
        server.size += 1
        self._index[job.job_id] = job
        self._per_user[job.user] = self._per_user.get(job.user, 0) + 1
        self._changed()

    def requeue(self, job: QueuedJob) -> None:
        """Put a picked job back where it stood: ahead of its user's later jobs, its pick's charge refunded."""
        server = self._servers.get(job.server)
        user = server.children.get(job.user) if server is not None else None
        if server is not None and user is not None:  # the pick charged them for service they did not get
            server.served -= job.cost
            user.served -= job.cost
            if job.picked is not None:  # and, if nothing was picked since, the turn it took
                tick, server_last, user_last = job.picked
                server.last_pick = server_last if server.last_pick == tick else server.last_pick
                user.last_pick = user_last if user.last_pick == tick else user.last_pick
        job.picked = None
        self.add(job)

    def remove(self, job_id: str) -> QueuedJob | None:
        """Take a job out of the queue (cancelled, or picked). Returns it, or None if not queued."""
        job = self._index.pop(job_id, None)
        if job is None:
            return None
        server = self._servers[job.server]
        user = server.children[job.user]
        position = user.jobs.index(job)
        del user.jobs[position]
        del user.keys[position]
        user.size -= 1
        server.size -= 1
        self._per_user[job.user] -= 1
        self._changed()
        return job

    def user_count(self, user: str) -> int:
        """Queued jobs of one user across all servers."""
        return self._per_user.get(user, 0)

    def pause(self, server: str) -> None:
        self._paused.add(server)
        self._changed()

    def resume(self, server: str) -> None:
        self._paused.discard(server)
        self._changed()

    def is_paused(self, server: str) -> bool:
        return server in self._paused

    def paused(self) -> frozenset[str]:
        """The paused servers."""
        return frozenset(self._paused)

    def order(self, limit: int | None = None, can_serve: Filter | None = None) -> list[QueuedJob]:
        """The next jobs in fair order, without changing anything."""
        result: list[QueuedJob] = []
        for job in self.walk():
            if can_serve is None or can_serve(job):
                result.append(job)
                if limit is not None and len(result) >= limit:
                    break
        return result

    def position(self, job_id: str) -> int | None:
        """1-based place in the fair order across all servers, or None if not queued."""
        if job_id not in self._index:
            return None
        for place, job in enumerate(self.walk(), start=1):
            if job.job_id == job_id:
                return place
        return None

    def pick(self, can_serve: Filter | None = None, loaded_checkpoint: str | None = None) -> QueuedJob | None:
        """Choose and remove the next job for a free backend."""
        candidates = self.order(limit=self.window_for(loaded_checkpoint), can_serve=can_serve)
        if not candidates:
            return None
        chosen_at = 0
        if len(candidates) > 1:
            now = self._clock()
            chosen_at = self.choose(candidates, loaded_checkpoint, lambda job: self._overdue(job, now))
            for passed in candidates[:chosen_at]:
                passed.passed_over += 1
                if passed.first_passed_at is None:
                    passed.first_passed_at = now
        chosen = candidates[chosen_at]
        if chosen.first_passed_at is not None:
            waited = self._clock() - chosen.first_passed_at
            self.longest_pass_over_seconds = max(self.longest_pass_over_seconds, waited)
        self.most_pass_overs = max(self.most_pass_overs, chosen.passed_over)
        self._charge(chosen)
        self.remove(chosen.job_id)
        return chosen

    @staticmethod
    def choose(candidates: list[QueuedJob], loaded_checkpoint: str | None, overdue: Filter) -> int:
        """Which of the next jobs a backend takes: the first on its loaded checkpoint or passed over enough."""
        for place, job in enumerate(candidates):
            if job.checkpoint == loaded_checkpoint or overdue(job):
                return place
        return 0

    def window_for(self, loaded_checkpoint: str | None) -> int:
        """How many of the next jobs a backend with this checkpoint loaded chooses from."""
        return self.window if self.affinity and loaded_checkpoint else 1

    def overdue_at(self, passed_over: int, first_passed_at: float | None, now: float) -> bool:
        """Passed over as often or as long as the bound allows: it runs next whatever is loaded."""
        if passed_over >= self.max_pass_over:
            return True
        return first_passed_at is not None and now - first_passed_at >= self.max_pass_over_seconds

    def _overdue(self, job: QueuedJob, now: float) -> bool:
        return self.overdue_at(job.passed_over, job.first_passed_at, now)

    def _charge(self, job: QueuedJob) -> None:
        tick = next(self._picks)
        server = self._servers[job.server]
        user = server.children[job.user]
        job.picked = (tick, server.last_pick, user.last_pick)
        server.served += job.cost
        user.served += job.cost
        server.last_pick = user.last_pick = tick

    def walk(self) -> Iterator[QueuedJob]:
        """Yield queued jobs in the order repeated fair picks would take them."""
        server_heap: list[tuple[float, int, str]] = []
        users: dict[str, list[tuple[float, int, str]]] = {}
        cursor: dict[tuple[str, str], int] = {}
        server_served: dict[str, float] = {}
        user_served: dict[tuple[str, str], float] = {}
        remaining: dict[str, int] = {}
        for name, flow in self._servers.items():
            if flow.size == 0 or name in self._paused:
                continue
            heapq.heappush(server_heap, (flow.served, flow.last_pick, name))
            server_served[name] = flow.served
            remaining[name] = flow.size
            heap = users[name] = []
            for user_name, user in flow.children.items():
                if user.size:
                    heapq.heappush(heap, (user.served, user.last_pick, user_name))
                    user_served[(name, user_name)] = user.served
                    cursor[(name, user_name)] = 0
        tick = 1 << 62  # simulated picks come after every real one
        while server_heap:
            _, _, server_name = heapq.heappop(server_heap)
            _, _, user_name = heapq.heappop(users[server_name])
            key = (server_name, user_name)
            flow = self._servers[server_name].children[user_name]
            job = flow.jobs[cursor[key]]
            yield job
            tick += 1
            cursor[key] += 1
            user_served[key] += job.cost
            server_served[server_name] += job.cost
            remaining[server_name] -= 1
            if cursor[key] < flow.size:
                heapq.heappush(users[server_name], (user_served[key], tick, user_name))
            if remaining[server_name]:
                heapq.heappush(server_heap, (server_served[server_name], tick, server_name))
