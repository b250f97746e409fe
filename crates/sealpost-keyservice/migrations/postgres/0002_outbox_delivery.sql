-- Sealpost key service: delivery state of the passcode outbox (PostgreSQL).
-- Keep in step with ../sqlite/0002_outbox_delivery.sql: same columns and indexes.
-- Times are Unix seconds; flags are 0/1 integers.
--
-- A row is pending until `delivered_at` or `failed_at` is set. The delivery worker claims a
-- due row (`next_attempt_at <= now`, `claimed_until < now`) by moving `claimed_until` into
-- the future with one conditional UPDATE, so one instance sends it. A decoy is written for a
-- non-recipient so that both answers of /v1/otp/start do the same durable work; it is never
-- sent, never listed, and removed by the purge.

ALTER TABLE outbox ADD COLUMN decoy BIGINT NOT NULL DEFAULT 0 CHECK (decoy IN (0, 1));
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN delivered_at BIGINT;
ALTER TABLE outbox ADD COLUMN failed_at BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;

-- The worker's scan: pending real mail by due time.
CREATE INDEX outbox_due ON outbox (next_attempt_at)
    WHERE decoy = 0 AND delivered_at IS NULL AND failed_at IS NULL;
-- The purge by age.
CREATE INDEX outbox_created ON outbox (created);
