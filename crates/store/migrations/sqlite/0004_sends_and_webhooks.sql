-- One row per one-time code sent, keyed by a hash of the destination (never the number or
-- address itself), for the per-contact send limit.
CREATE TABLE code_sends (
    contact_hash TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE INDEX code_sends_contact ON code_sends (contact_hash, sent_at);

-- Identity-verification webhook deliveries already processed: a replay conflicts here.
CREATE TABLE webhook_deliveries (
    vendor TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (vendor, delivery_id)
);
