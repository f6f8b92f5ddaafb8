-- PostgreSQL: the same tables as 001_initial.sql, with native types (jsonb, timestamptz, boolean).
-- `seq` stands in for SQLite's rowid: the insertion order that breaks ties between equal times.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    seq BIGSERIAL NOT NULL,
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    destination JSONB NOT NULL,
    request JSONB NOT NULL,
    preset TEXT NOT NULL,
    state TEXT NOT NULL,
    cost DOUBLE PRECISION NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    backend TEXT,
    backend_task_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    delivery TEXT NOT NULL DEFAULT 'none',
    messages JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_state ON jobs(state, created_at);
CREATE INDEX jobs_user ON jobs(platform, user_id, created_at);
CREATE INDEX jobs_delivery ON jobs(delivery);

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    job_id TEXT REFERENCES jobs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    seed BIGINT,
    infotext TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX images_job ON images(job_id, idx);

CREATE TABLE quota_ledger (
    job_id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX quota_user_day ON quota_ledger(platform, user_id, day);
CREATE INDEX quota_server_day ON quota_ledger(platform, server_id, day);

CREATE TABLE users (
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    banned BOOLEAN NOT NULL DEFAULT FALSE,
    role TEXT,
    daily_limit DOUBLE PRECISION,
    PRIMARY KEY (platform, user_id)
);

CREATE TABLE server_settings (
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    settings JSONB NOT NULL,
    PRIMARY KEY (platform, server_id)
);

CREATE TABLE timings (
    preset TEXT PRIMARY KEY,
    seconds_per_step DOUBLE PRECISION NOT NULL,
    samples INTEGER NOT NULL
);
