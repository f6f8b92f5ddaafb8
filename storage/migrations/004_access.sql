-- The per-user queue cap is counted inside the insert's transaction: a small index of waiting jobs only.
CREATE INDEX jobs_queued ON jobs(platform, user_id) WHERE state = 'queued';

-- Interaction tokens are credentials and no longer stored (the Discord adapter keeps them in memory only).
UPDATE jobs SET messages = json_remove(messages, '$.discord_token') WHERE messages LIKE '%discord_token%';
