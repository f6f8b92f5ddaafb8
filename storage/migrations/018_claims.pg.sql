-- Several processes claim jobs from one PostgreSQL (storage/postgres/claims.py).
-- A claimed job holds a lease: its owner renews it; once it lapses the job is claimable again (a retry).
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until TIMESTAMPTZ;
-- Model affinity's bound, kept with the job so every process sees how often it was passed over.
ALTER TABLE jobs ADD COLUMN passed_over INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN first_passed_at TIMESTAMPTZ;
-- A cancel asked for in one process, for the process that runs the job (also sent with NOTIFY).
ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
-- The pick's number and the flows' previous picks, so a job given back unrun returns the turn it took.
ALTER TABLE jobs ADD COLUMN pick_tick BIGINT;
ALTER TABLE jobs ADD COLUMN pick_server_last BIGINT;
ALTER TABLE jobs ADD COLUMN pick_user_last BIGINT;
CREATE INDEX jobs_leases ON jobs(lease_until) WHERE state = 'running' AND lease_owner IS NOT NULL;
-- Attained service per server (user_id '') and per user within a server: the fair order's shared ledger,
-- bot/scheduler.py's served counters kept where every process sees them.
CREATE TABLE fair_flows (
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    served DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_pick BIGINT NOT NULL DEFAULT -1,
    PRIMARY KEY (platform, server_id, user_id)
);
CREATE SEQUENCE fair_picks
