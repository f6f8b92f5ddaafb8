-- SQLite: one process holds the database (storage/lock.py) and delivers alone, so the delivery lease of
-- 019_delivery_claims.pg.sql has no use here. Kept so both stores share one numbering.
SELECT 1;
