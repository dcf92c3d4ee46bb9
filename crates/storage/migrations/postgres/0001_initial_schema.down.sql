-- Revoke what 0001 granted (the roles themselves are cluster-wide and may serve other databases,
-- so they are left in place), then drop everything 0001 created.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schema_registry_reader') THEN
        REVOKE ALL ON subjects, schemas, schema_dependencies, validation_history, subject_versions FROM schema_registry_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'schema_registry_writer') THEN
        REVOKE ALL ON subjects, schemas, schema_dependencies, validation_history, subject_versions FROM schema_registry_writer;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'schema registry grants not revoked: %', SQLERRM;
END
$$;
DROP MATERIALIZED VIEW IF EXISTS subject_versions;
DROP TABLE IF EXISTS validation_history;
DROP TABLE IF EXISTS schema_dependencies;
DROP TABLE IF EXISTS schemas;
DROP TABLE IF EXISTS subjects;
