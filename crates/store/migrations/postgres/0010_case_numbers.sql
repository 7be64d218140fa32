-- Short case references people can read out on a call (DG-10427): a number per case, handed out
-- from one counter, unique. Existing cases are numbered in the order they were opened.
CREATE TABLE case_numbers (id INTEGER PRIMARY KEY CHECK (id = 1), next BIGINT NOT NULL);
ALTER TABLE cases ADD COLUMN number BIGINT;
UPDATE cases SET number = n.number
FROM (SELECT id, 10000 + ROW_NUMBER() OVER (ORDER BY opened_at, id) AS number FROM cases) AS n
WHERE cases.id = n.id;
UPDATE cases SET doc = jsonb_set(doc::jsonb, '{number}', to_jsonb(number))::text;
CREATE UNIQUE INDEX cases_number ON cases (number);
INSERT INTO case_numbers (id, next) SELECT 1, COALESCE(MAX(number), 10000) FROM cases;
