-- A job a backend claimed and could not run (a LoRA, checkpoint or size it lacks: bot/fit.py) is given back
-- marked with that backend as it was (name and what it reported having, bot/worker.py fit_mark); claims skip
-- it for that mark, so the backend is not offered it again until what it has changes (storage/postgres/claims.py).
ALTER TABLE jobs ADD COLUMN unfit_marks TEXT[] NOT NULL DEFAULT '{}';
