-- Built-in directory, staff, cases, single-use links, credentials and the audit trail.
-- Times are RFC 3339 UTC strings with microseconds, so text order is time order.

CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email TEXT,
    tier TEXT NOT NULL,
    status TEXT NOT NULL,
    doc TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX subjects_name ON subjects (display_name);

CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    subject_id TEXT,
    doc TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff (id),
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    state TEXT NOT NULL,
    action TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    executed_at TEXT,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX cases_subject ON cases (subject_id, state);
CREATE INDEX cases_agent ON cases (agent_id, state);
CREATE INDEX cases_opened ON cases (opened_at);

-- Single-use links (manager attestation, ...): only the SHA-256 of the token is kept.
CREATE TABLE link_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id),
    verification_id TEXT NOT NULL,
    respondent TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

-- Credentials the built-in directory holds for its subjects: hashes only.
CREATE TABLE credentials (
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    used_at TEXT,
    PRIMARY KEY (subject_id, kind)
);

-- The audit trail. audit_head is the single sequencer row: every append locks it, so two
-- writers can never hand out the same index.
CREATE TABLE audit_log (
    idx BIGINT PRIMARY KEY,
    time TEXT NOT NULL,
    case_id TEXT,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    chain_hash TEXT NOT NULL
);
CREATE INDEX audit_case ON audit_log (case_id);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL,
    chain_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, size, chain_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
