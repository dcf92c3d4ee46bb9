DROP TABLE IF EXISTS schema_access_log;
