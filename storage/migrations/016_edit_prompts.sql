-- The Edit button's reply prompts (Telegram): the message that asked a user for an edit instruction, with the
-- button it answers (edit:job:index) and the one user whose reply counts. A reply after a restart still works.
CREATE TABLE edit_prompts (
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    button_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (platform, chat_id, message_id)
);
CREATE INDEX edit_prompts_time ON edit_prompts(created_at);
