-- The per-user queue cap is counted inside the insert's transaction: a small index of waiting jobs only.
CREATE INDEX jobs_queued ON jobs(platform, user_id) WHERE state = 'queued';
