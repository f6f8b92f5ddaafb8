-- SQLite: one process knows its backends' fits in memory (the board of 022_backend_fits.pg.sql has no use here).
-- Kept so both stores share one numbering.
SELECT 1;
