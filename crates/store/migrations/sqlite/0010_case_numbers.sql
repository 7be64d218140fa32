-- Short case references people can read out on a call (DG-10427): a number per case, handed out
-- from one counter, unique. Existing cases are numbered in the order they were opened.
CREATE TABLE case_numbers (id INTEGER PRIMARY KEY CHECK (id = 1), next BIGINT NOT NULL);
ALTER TABLE cases ADD COLUMN number BIGINT;
UPDATE cases SET number = 10000 + (
    SELECT COUNT(*) FROM cases c2
    WHERE c2.opened_at < cases.opened_at OR (c2.opened_at = cases.opened_at AND c2.id <= cases.id)
);
UPDATE cases SET doc = json_set(doc, '$.number', number);
CREATE UNIQUE INDEX cases_number ON cases (number);
INSERT INTO case_numbers (id, next) SELECT 1, COALESCE(MAX(number), 10000) FROM cases;
