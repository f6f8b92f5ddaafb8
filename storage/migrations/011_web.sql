-- Web gallery: one-use sign-in links (only a hash of the token is kept) and the chats a user signed in from.
CREATE TABLE web_tokens (
    token_hash TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    server_id TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE TABLE web_members (
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    server_id TEXT NOT NULL,
    PRIMARY KEY (platform, user_id, server_id)
);
-- The gallery walks finished jobs newest first, per server or across all (keyset pagination).
CREATE INDEX jobs_gallery_server ON jobs(platform, server_id, created_at) WHERE state = 'succeeded';
CREATE INDEX jobs_gallery_time ON jobs(created_at) WHERE state = 'succeeded';
CREATE INDEX jobs_gallery_user ON jobs(platform, user_id, created_at) WHERE state = 'succeeded'
