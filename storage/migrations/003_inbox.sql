-- Inbox: each command message a platform handed over, written before the platform is told it arrived
-- (Telegram: before getUpdates asks for the next offset), so that a crash cannot lose it. Settled rows
-- keep only the key, to recognise a repeat of the same (chat, message).
CREATE TABLE inbox (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload TEXT NOT NULL,              -- the platform's update as JSON, to replay after a crash; '' once settled
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | settled
    received_at TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);
CREATE INDEX inbox_state ON inbox(platform, state, received_at);

-- A replayed command whose job was already written is settled, not run twice.
CREATE INDEX jobs_source_message ON jobs(platform, channel_id, json_extract(destination, '$.source_message_id'));
