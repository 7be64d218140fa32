-- Sign-in attempts keep their pending state sealed in the browser (no row per attempt, so an
-- anonymous client cannot fill a table or overwrite someone's pending sign-in). What the server
-- must remember is only which attempts were finished, until they would have expired anyway:
-- a second use of one conflicts here. Rows past `expires_at` are deleted as new ones arrive.
CREATE TABLE sign_in_spent (
    attempt_hash TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX sign_in_spent_expiry ON sign_in_spent (expires_at);
