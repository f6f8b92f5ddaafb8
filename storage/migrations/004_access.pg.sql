-- PostgreSQL: the same two indexes as 004_access.sql (no stored interaction tokens to remove on a new database).
CREATE INDEX jobs_source_message ON jobs(platform, channel_id, (destination->>'source_message_id'));
CREATE INDEX jobs_queued ON jobs(platform, user_id) WHERE state = 'queued';
