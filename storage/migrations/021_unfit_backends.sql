-- SQLite: one process picks jobs in memory and asks each worker whether it can run a job before taking it,
-- so the marks of 021_unfit_backends.pg.sql have no use here. Kept so both stores share one numbering.
SELECT 1;
