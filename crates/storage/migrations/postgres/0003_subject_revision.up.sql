-- A per-subject revision, raised by every registration into the subject. Registration reads it
-- together with what it decides on, and inserts only if it is unchanged (a compare-and-set in
-- one statement): two round trips and no explicit transaction on the common path, instead of
-- BEGIN, an advisory lock, the reads, the writes and COMMIT. See postgres/optimistic.rs.
ALTER TABLE subjects ADD COLUMN revision bigint NOT NULL DEFAULT 0;
