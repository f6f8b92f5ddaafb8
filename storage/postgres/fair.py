"""bot/scheduler.py's fair order, computed in SQL against the shared ledger (the fair_flows table).

The scheduler serves the least-served server first, and within it the least-served user, each charged
the cost of what it was given (deficit round robin with an infinitely small quantum). Repeated picks from
one state therefore come out in the order of each job's *virtual start*: within a user's FIFO, the user's
served counter plus the cost of the user's jobs ahead of it; within a server, the server's counter plus
the cost of the server's jobs ahead of it in that per-user order. Window functions compute both in one
query. Ties go as the scheduler's heap breaks them for first picks (the older last pick first); later
ties are broken by name, where the scheduler uses the simulated pick's tick (the one place they may differ).

A flow that becomes busy starts level with the least-served busy sibling (`level_flows`, at enqueue and
requeue), as `_activate` does, so nobody banks credit while idle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.models import Job
from storage.postgres.db import Connection

MIN_COST = 0.001  # bot/engine.py queues every job with at least this cost

ORDER = f"""
WITH q AS (
    SELECT j.id, j.platform, j.server_id, j.user_id, GREATEST(j.cost, {MIN_COST}) AS cost, j.preset, j.backend,
           j.request->>'checkpoint' AS checkpoint, j.passed_over, j.first_passed_at, j.priority, j.seq, j.unfit_marks,
           COALESCE(u.served, 0) AS u_served, COALESCE(u.last_pick, -1) AS u_last,
           COALESCE(s.served, 0) AS s_served, COALESCE(s.last_pick, -1) AS s_last
    FROM jobs j
    LEFT JOIN fair_flows u ON u.platform = j.platform AND u.server_id = j.server_id AND u.user_id = j.user_id
    LEFT JOIN fair_flows s ON s.platform = j.platform AND s.server_id = j.server_id AND s.user_id = ''
    WHERE j.state = 'queued' AND NOT EXISTS (
        SELECT 1 FROM server_settings p WHERE p.platform = j.platform AND p.server_id = j.server_id
        AND COALESCE((p.settings->>'paused')::boolean, FALSE))
), per_user AS (
    SELECT q.*, u_served + COALESCE(SUM(cost) OVER ahead, 0) AS u_start, ROW_NUMBER() OVER w AS u_rank
    FROM q WINDOW w AS (PARTITION BY platform, server_id, user_id ORDER BY priority DESC, seq),
                  ahead AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), per_server AS (
    SELECT per_user.*, s_served + COALESCE(SUM(cost) OVER ahead, 0) AS s_start, ROW_NUMBER() OVER w AS s_rank
    FROM per_user WINDOW w AS (PARTITION BY platform, server_id
                               ORDER BY u_start, u_rank > 1, CASE WHEN u_rank = 1 THEN u_last END, user_id, u_rank),
                         ahead AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT id, platform, server_id, user_id, cost, preset, backend, checkpoint, passed_over, first_passed_at
FROM per_server
"""
ORDER_BY = " ORDER BY s_start, s_rank > 1, CASE WHEN s_rank = 1 THEN s_last END, platform, server_id, s_rank"
ELIGIBLE = (
    " WHERE (backend IS NULL OR backend = ANY($1::text[])) AND ($2::text[] IS NULL OR preset = ANY($2::text[]))"
    " AND ($3::text[] IS NULL OR NOT $3::text[] <@ unfit_marks)"  # given back by every claiming backend as it is
)

BUSY_SERVER = (
    "EXISTS (SELECT 1 FROM jobs j WHERE j.state = 'queued' AND j.platform = f.platform AND j.server_id = f.server_id"
)
LEVEL_SERVER = f"""
INSERT INTO fair_flows (platform, server_id, user_id, served)
VALUES ($1, $2, '', COALESCE((
    SELECT MIN(f.served) FROM fair_flows f
    WHERE f.user_id = '' AND (f.platform, f.server_id) <> ($1, $2) AND {BUSY_SERVER})
), 0))
ON CONFLICT (platform, server_id, user_id) DO UPDATE SET served = GREATEST(fair_flows.served, EXCLUDED.served)
"""
LEVEL_USER = f"""
INSERT INTO fair_flows (platform, server_id, user_id, served)
VALUES ($1, $2, $3, COALESCE((
    SELECT MIN(f.served) FROM fair_flows f
    WHERE f.platform = $1 AND f.server_id = $2 AND f.user_id NOT IN ('', $3)
      AND {BUSY_SERVER} AND j.user_id = f.user_id)
), 0))
ON CONFLICT (platform, server_id, user_id) DO UPDATE SET served = GREATEST(fair_flows.served, EXCLUDED.served)
"""
CHARGE = """
INSERT INTO fair_flows (platform, server_id, user_id, served, last_pick) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (platform, server_id, user_id)
DO UPDATE SET served = fair_flows.served + EXCLUDED.served, last_pick = EXCLUDED.last_pick
"""

Flow = tuple[str, str, str]  # (platform, server_id, user_id); user_id '' is the server's own flow


async def _busy_elsewhere(conn: Connection, flow: Flow, count: int) -> bool:
    """Whether the flow had queued jobs before the `count` just added to it."""
    platform, server_id, user_id = flow
    sql = "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND platform = $1 AND server_id = $2"
    args: list[object] = [platform, server_id]
    if user_id:
        sql += " AND user_id = $3"
        args.append(user_id)
    return int(await conn.fetchval(sql, *args)) > count


async def level_flows(conn: Connection, jobs: Iterable[Job]) -> None:
    """Flows that just became busy start level with the least-served busy sibling (bot/scheduler.py `_activate`)."""
    added: dict[Flow, int] = {}
    for job in jobs:
        dest = job.destination
        for flow in ((dest.platform, dest.server_id, ""), (dest.platform, dest.server_id, dest.user_id)):
            added[flow] = added.get(flow, 0) + 1
    for flow in sorted(added):  # a fixed order: two transactions never wait on each other's rows in a circle
        if await _busy_elsewhere(conn, flow, added[flow]):
            continue
        if flow[2]:
            await conn.execute(LEVEL_USER, *flow)
        else:
            await conn.execute(LEVEL_SERVER, flow[0], flow[1])


async def charge(conn: Connection, job_id: str, platform: str, server_id: str, user_id: str, cost: float) -> None:
    """A pick: the server and the user are charged its cost and take the next pick number.

    The job keeps the pick's number and the flows' previous picks, for `refund` (the scheduler's `picked`).
    """
    tick = await conn.fetchval("SELECT nextval('fair_picks')")
    before = []
    for flow in ((platform, server_id, ""), (platform, server_id, user_id)):
        last = await conn.fetchval(
            "SELECT last_pick FROM fair_flows WHERE platform = $1 AND server_id = $2 AND user_id = $3 FOR UPDATE",
            *flow,
        )
        before.append(-1 if last is None else int(last))
        await conn.execute(CHARGE, *flow, cost, tick)
    await conn.execute(
        "UPDATE jobs SET pick_tick = $2, pick_server_last = $3, pick_user_last = $4 WHERE id = $1",
        job_id,
        tick,
        *before,
    )


async def refund(conn: Connection, row: Any) -> None:
    """A picked job came back unrun (lease lapsed, backend failed): its charge is taken back and, if nothing
    was picked from its flows since, the turn it took (bot/scheduler.py `requeue`)."""
    cost = max(float(row["cost"]), MIN_COST)
    tick = row["pick_tick"]
    flows = (("", row["pick_server_last"]), (row["user_id"], row["pick_user_last"]))
    for user_id, previous in flows:
        await conn.execute(
            "UPDATE fair_flows SET served = served - $4, "
            "last_pick = CASE WHEN last_pick = $5 THEN $6 ELSE last_pick END "
            "WHERE platform = $1 AND server_id = $2 AND user_id = $3",
            row["platform"],
            row["server_id"],
            user_id,
            cost,
            tick if tick is not None else -2,
            previous if previous is not None else -1,
        )
