-- What each backend on the board can run (bot/shared_backends.py), so that every process can tell a job no backend
-- of any process can run (it fails, refunded, as on one process) and count another process's backend in its ETAs
-- only for what it fits: whether it has answered a health check yet, its fit mark (bot/worker.py; the marks a job
-- given back carries) and, per "kind:preset" it cannot run at all, why (bot/fit.py Unfit: key and params).
ALTER TABLE backend_board ADD COLUMN answered BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE backend_board ADD COLUMN fit_mark TEXT NOT NULL DEFAULT '';
ALTER TABLE backend_board ADD COLUMN unfit JSONB NOT NULL DEFAULT '{}'
