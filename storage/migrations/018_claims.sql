-- SQLite: one process holds the database (storage/lock.py) and picks jobs in memory (bot/scheduler.py),
-- so the claiming columns of 018_claims.pg.sql have no use here. Kept so both stores share one numbering.
SELECT 1;
