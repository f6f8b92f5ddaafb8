-- SQLite: one process holds every job, so the chats it was removed from are kept in its memory (bot/views.py
-- mark_gone) and their jobs cancelled at once (bot/chats.py); 023_gone_chats.pg.sql shares them among processes.
-- Kept so both stores share one numbering.
SELECT 1;
