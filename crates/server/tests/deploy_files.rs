//! The operator files in `deploy/` stay valid: they are JSON with the rules the README promises.

use serde_json::Value;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bucket_policy_files_say_what_the_docs_say() {
    assert_eq!(load("s3-bucket-versioning.json")["Status"], "Enabled");
    let lifecycle = load("s3-lifecycle.json");
    let rules = lifecycle["Rules"].as_array().expect("Rules");
    let expiry = rules
        .iter()
        .find_map(|r| r["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64());
    assert_eq!(
        expiry,
        Some(90),
        "non-current versions expire after 90 days"
    );
    assert!(rules
        .iter()
        .all(|r| r["Status"] == "Enabled" && r["Filter"]["Prefix"] == "schemas/"));
    assert!(rules
        .iter()
        .any(|r| r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1));
}
