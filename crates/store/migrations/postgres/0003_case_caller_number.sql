-- The number a caller gave, as a column, for the per-caller-number velocity signal.
ALTER TABLE cases ADD COLUMN caller_number TEXT;
CREATE INDEX cases_caller_number ON cases (caller_number, opened_at);
