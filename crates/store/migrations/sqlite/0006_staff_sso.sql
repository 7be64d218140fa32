-- Staff may sign in to the console through single sign-on (OpenID Connect) with the identity
-- their provider vouches for (one identity per staff member, compared without case), and may be
-- disabled: a disabled staff member neither signs in nor authenticates with any token.
ALTER TABLE staff ADD COLUMN sso_identity TEXT;
ALTER TABLE staff ADD COLUMN disabled_at TEXT;
CREATE UNIQUE INDEX staff_sso_identity ON staff (lower(sso_identity));
