-- Messages the bot sent (or edited) per chat, kept a few minutes: after a restart the flood pacer
-- starts from what the previous run just sent instead of bursting into 429s.
CREATE TABLE platform_sends (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    sent_at REAL NOT NULL,              -- unix time
    count INTEGER NOT NULL
);
CREATE INDEX platform_sends_time ON platform_sends(platform, sent_at);
