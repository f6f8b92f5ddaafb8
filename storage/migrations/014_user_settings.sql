-- /settings: one row per user and server (a Telegram private chat is its own "server"); NULL = not set.
CREATE TABLE user_settings (
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    preset TEXT,
    aspect TEXT,
    steps INTEGER,
    negative TEXT,
    private INTEGER NOT NULL DEFAULT 0,
    language TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, server_id, user_id)
);
