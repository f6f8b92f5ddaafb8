-- PostgreSQL: as 003_inbox.sql; `seq` orders replays as SQLite's rowid does.
CREATE TABLE inbox (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    received_at TIMESTAMPTZ NOT NULL,
    seq BIGSERIAL NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);
CREATE INDEX inbox_state ON inbox(platform, state, received_at);
