-- Backends an admin drained (/admin drain), by lower-case name: kept across restarts, and every process's
-- claims skip a drained name (storage/postgres/backend_board.py).
CREATE TABLE drained_backends (
    name TEXT PRIMARY KEY,
    drained_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Each process's backends as it last published them (bot/shared_backends.py): a row per (process, backend).
-- Rows of a process whose LISTEN connection is gone, or whose heartbeat is stale, are removed by any reader.
CREATE TABLE backend_board (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    place INTEGER NOT NULL,
    kind TEXT NOT NULL,
    healthy BOOLEAN NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    drained BOOLEAN NOT NULL DEFAULT FALSE,
    current_job TEXT,
    loaded TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    model_switches INTEGER NOT NULL DEFAULT 0,
    heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, name)
)
