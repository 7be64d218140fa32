-- One row per recovery code, spent with a conditional update of its own row: two cases cannot
-- both pass one code, and spending one code can never bring back another.
CREATE TABLE recovery_codes (
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    code_hash TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    used_at TEXT,
    PRIMARY KEY (subject_id, code_hash)
);

-- Codes issued before: each unused hash of the old JSON list becomes a row.
INSERT INTO recovery_codes (subject_id, code_hash, issued_at, used_at)
SELECT c.subject_id, j.value, c.created_at, NULL
FROM credentials c CROSS JOIN LATERAL jsonb_array_elements_text(c.hash::jsonb) AS j (value)
WHERE c.kind = 'recovery_codes'
ON CONFLICT (subject_id, code_hash) DO NOTHING;

DELETE FROM credentials WHERE kind = 'recovery_codes';
