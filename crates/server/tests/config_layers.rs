//! Precedence through the real parser, environment included: flag → environment → config file →
//! default. The only test in this binary, because it changes the process's environment.

use clap::{CommandFactory, Parser};
use schema_registry_server::config::{Cli, Settings};

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    // Start from no setting in the environment (scripts/test.sh exports DATABASE_URL and more).
    for arg in Cli::command().get_arguments() {
        if let Some(name) = arg.get_env() {
            std::env::remove_var(name);
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9001\"\n\
         database_max_connections = 20\n\
         sqlite_readers = 3\n\
         metrics = false\n\
         s3_region = \"eu-west-1\"\n\
         s3_bucket = \"from-file\"\n",
    )
    .expect("write");
    std::env::set_var("SCHEMA_REGISTRY_CONFIG", &path);
    std::env::set_var("SCHEMA_REGISTRY_LISTEN", "127.0.0.1:9002");
    std::env::set_var("DATABASE_MAX_CONNECTIONS", "30");
    // Equal to the default, and still given: it beats the file.
    std::env::set_var("SCHEMA_REGISTRY_METRICS", "true");

    let cli = Cli::try_parse_from(["llm-schema-registry", "--database-max-connections", "40"])
        .expect("parse");
    let s = Settings::resolve(&cli.serve).expect("resolve");
    assert_eq!(
        s.listen.to_string(),
        "127.0.0.1:9002",
        "environment over file"
    );
    assert_eq!(
        s.storage.postgres.max_connections, 40,
        "flag over environment"
    );
    assert_eq!(s.storage.sqlite.readers, 3, "file over default");
    assert!(s.metrics, "environment over file");
    assert_eq!(s.max_body_bytes, 16 * 1024 * 1024, "default");
    let objects = s.storage.objects.expect("objects");
    let shown = format!("{:?}", objects.backend);
    assert!(
        shown.contains("bucket: \"from-file\"") && shown.contains("region: \"eu-west-1\""),
        "{shown}"
    );
}
