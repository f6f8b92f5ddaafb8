-- Jobs: the durable ledger of every request from "queued" to "delivered".
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    destination TEXT NOT NULL,          -- JSON Destination
    request TEXT NOT NULL,              -- JSON GenerationRequest
    preset TEXT NOT NULL,
    state TEXT NOT NULL,
    cost REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    backend TEXT,
    backend_task_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    delivery TEXT NOT NULL DEFAULT 'none',
    messages TEXT NOT NULL DEFAULT '{}'  -- JSON platform message ids and tokens
);
CREATE INDEX jobs_state ON jobs(state, created_at);
CREATE INDEX jobs_user ON jobs(platform, user_id, created_at);
CREATE INDEX jobs_delivery ON jobs(delivery);

-- Images: results on disk, and img2img sources.
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    job_id TEXT REFERENCES jobs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    seed INTEGER,
    infotext TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX images_job ON images(job_id, idx);

-- Quota ledger: one row per job, reserved at enqueue, settled or refunded at the end.
CREATE TABLE quota_ledger (
    job_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    amount REAL NOT NULL,
    state TEXT NOT NULL,                -- reserved | settled | refunded
    updated_at TEXT NOT NULL
);
CREATE INDEX quota_user_day ON quota_ledger(platform, user_id, day);
CREATE INDEX quota_server_day ON quota_ledger(platform, server_id, day);

CREATE TABLE users (
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    banned INTEGER NOT NULL DEFAULT 0,
    role TEXT,
    daily_limit REAL,
    PRIMARY KEY (platform, user_id)
);

CREATE TABLE server_settings (
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    settings TEXT NOT NULL,             -- JSON ServerSettings
    PRIMARY KEY (platform, server_id)
);

-- Measured seconds per step (at one megapixel) per preset, for ETAs.
CREATE TABLE timings (
    preset TEXT PRIMARY KEY,
    seconds_per_step REAL NOT NULL,
    samples INTEGER NOT NULL
);
