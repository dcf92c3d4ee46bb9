//! The storage crate used directly, without the HTTP server: open the embedded backend,
//! register, fetch, search, list.
//!
//! ```text
//! cargo run -p llm-schema-registry-storage --example basic_usage [-- DATABASE_URL]
//! ```
//! With no argument it uses a SQLite file in a fresh temporary directory; pass a
//! `postgres://...` URL to run the same steps on PostgreSQL.

use schema_registry_core::{
    Bump, Limits, NewSchema, SchemaContent, SchemaFormat, SchemaReference, SchemaVersion, Subject,
    VersionRequest,
};
use schema_registry_storage::{open, SearchQuery, StorageOptions, SubjectQuery};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("registry.db").display()));
    let storage = open(&url, &StorageOptions::default()).await?;
    println!(
        "opened the {} backend at {}",
        storage.kind(),
        schema_registry_storage::redact_url(&url)
    );

    let limits = Limits::default();
    let address = NewSchema::new(
        Subject::parse("example.address")?,
        VersionRequest::Next(Bump::Minor),
        SchemaContent::parse(
            SchemaFormat::JsonSchema,
            &json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        )?,
    )
    .with_tags(vec!["example".into()], &limits)?;
    let registered = storage.register(address).await?;
    println!(
        "registered {} {} (id {}, checksum {}…, created: {})",
        registered.record.subject,
        registered.record.version,
        registered.record.id,
        &registered.record.checksum()[..12],
        registered.created
    );

    let customer = NewSchema::new(
        Subject::parse("example.customer")?,
        VersionRequest::Next(Bump::Minor),
        SchemaContent::parse(
            SchemaFormat::JsonSchema,
            &json!({"type": "object", "properties": {"name": {"type": "string"}, "address": {"$ref": "example.address"}}}),
        )?,
    )
    .with_description(Some("A customer, with an address".into()), &limits)?
    .with_references(
        vec![SchemaReference { subject: Subject::parse("example.address")?, version: SchemaVersion::parse("1.0.0")? }],
        &limits,
    )?;
    let customer = storage.register(customer).await?.record;
    println!(
        "registered {} {} referencing example.address 1.0.0",
        customer.subject, customer.version
    );

    let again = storage.get_by_id(customer.id).await?;
    println!(
        "fetched by id: {} bytes of {}",
        again.size_bytes(),
        again.format()
    );
    let latest = storage
        .get_latest(&Subject::parse("example.customer")?)
        .await?;
    println!("latest example.customer is {}", latest.version);

    let deps = storage.dependencies(customer.id, true).await?;
    for d in &deps {
        println!(
            "example.customer depends on {} {} (depth {})",
            d.subject, d.version, d.depth
        );
    }

    let found = storage
        .search(&SearchQuery {
            text: Some("address".into()),
            ..SearchQuery::default()
        })
        .await?;
    println!("search \"address\": {} result(s)", found.total);
    for r in &found.items {
        println!("  {} {}", r.subject, r.version);
    }

    let subjects = storage.list_subjects(&SubjectQuery::default()).await?;
    for s in &subjects.items {
        println!(
            "subject {} — latest {}, {} version(s)",
            s.subject, s.latest_version, s.version_count
        );
    }
    let stats = storage.statistics().await?;
    println!(
        "statistics: {} schemas, {} subjects, {} bytes",
        stats.schemas, stats.subjects, stats.bytes
    );
    storage.close().await;
    Ok(())
}
