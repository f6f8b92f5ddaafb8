-- Chats the bot was removed from or blocked in (Telegram's my_chat_member "left"/"kicked", or a 403 on a send),
-- known to every process sharing the queue: each process's read of the queue carries them, the jobs queued there
-- are cancelled and refunded by whichever process reads first, and a claim of one ends it cancelled
-- (storage/postgres/gone_chats.py, bot/shared_chats.py). A command from the chat again (the bot is back there)
-- removes the row before its job is stored.
CREATE TABLE gone_chats (
    platform TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    gone_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, channel_id)
)
