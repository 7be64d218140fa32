-- Console session tokens expire; API tokens may too. NULL means no expiry.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
