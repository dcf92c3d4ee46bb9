DROP MATERIALIZED VIEW IF EXISTS popular_schemas;
DROP TABLE IF EXISTS schema_access_log;
ALTER TABLE schemas RESET (autovacuum_analyze_scale_factor, autovacuum_vacuum_scale_factor);
DROP STATISTICS IF EXISTS schemas_subject_state;
DROP INDEX IF EXISTS schemas_tags;
DROP INDEX IF EXISTS schemas_metadata;
DROP INDEX IF EXISTS schemas_description_trgm;
DROP INDEX IF EXISTS schemas_subject_trgm;
DROP INDEX IF EXISTS schemas_search_vector;
ALTER TABLE schemas DROP COLUMN IF EXISTS search_vector;
-- pg_trgm is left installed: other objects in the database may use it.
