DROP TABLE IF EXISTS schema_dependencies;
DROP TABLE IF EXISTS schemas;
DROP TABLE IF EXISTS subjects;
