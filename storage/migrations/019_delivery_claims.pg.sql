-- Several processes deliver finished jobs (storage/postgres/claims.py claim_delivery): the one that sends a
-- result holds a delivery lease, so two processes' sweeps never send the same result.
ALTER TABLE jobs ADD COLUMN delivery_owner TEXT;
ALTER TABLE jobs ADD COLUMN delivery_until TIMESTAMPTZ;
