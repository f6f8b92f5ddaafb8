-- Backends an admin drained (/admin drain), by lower-case name: kept across restarts, on both stores.
-- (The board of every process's backends, 020_backend_board.pg.sql, has no use with one process.)
CREATE TABLE drained_backends (
    name TEXT PRIMARY KEY,
    drained_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
