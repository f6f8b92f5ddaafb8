-- PostgreSQL: REAL is 4 bytes there, too coarse for unix times.
CREATE TABLE platform_sends (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX platform_sends_time ON platform_sends(platform, sent_at);
