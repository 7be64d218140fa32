-- The audit trail as an RFC 9162 Merkle tree: the "stored hashes" of Go's tlog layout (at most
-- about 2n rows, append-only), written in the same transaction as the entries they cover, and
-- the signed checkpoints cut after commit.

CREATE TABLE audit_hashes (
    idx INTEGER PRIMARY KEY,
    hash TEXT NOT NULL
);

CREATE TABLE audit_checkpoints (
    size INTEGER PRIMARY KEY,
    root TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);
