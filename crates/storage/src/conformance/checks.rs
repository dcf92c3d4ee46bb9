//! The checks: one `pub async fn` per promise of the storage contract, each over a fresh,
//! empty stack. Every one is listed in [`conformance_tests!`](crate::conformance_tests).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::{
    ConflictReason, NotFound, Page, PointRead, SearchQuery, Storage, StorageError, SubjectQuery,
};
use schema_registry_core::{
    Bump, Limits, NewSchema, SchemaContent, SchemaFormat, SchemaReference, SchemaState,
    SchemaVersion, Subject, VersionRequest,
};
use serde_json::{json, Map, Value};

fn subject(s: &str) -> Subject {
    Subject::parse(s).expect("valid subject")
}

fn v(s: &str) -> SchemaVersion {
    SchemaVersion::parse(s).expect("valid version")
}

fn json_schema(doc: Value) -> SchemaContent {
    SchemaContent::parse(SchemaFormat::JsonSchema, &doc).expect("valid JSON Schema")
}

/// A registration of `doc` into `s` with the next minor version.
fn new(s: &str, doc: Value) -> NewSchema {
    NewSchema::new(
        subject(s),
        VersionRequest::Next(Bump::Minor),
        json_schema(doc),
    )
}

fn new_at(s: &str, version: &str, doc: Value) -> NewSchema {
    NewSchema::new(
        subject(s),
        VersionRequest::Exact(v(version)),
        json_schema(doc),
    )
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// A distinct document per `n`.
fn doc(n: usize) -> Value {
    json!({"type": "object", "title": format!("doc {n}"), "properties": {"n": {"const": n}}})
}

pub async fn register_then_read_back(b: Arc<dyn Storage>) {
    let limits = Limits::default();
    let schema = new(
        "orders.created",
        json!({"type": "object", "properties": {"id": {"type": "string"}}}),
    )
    .with_description(Some("An order was placed".into()), &limits)
    .expect("description")
    .with_metadata(obj(json!({"team": "payments", "revision": 3})), &limits)
    .expect("metadata")
    .with_tags(vec!["pii".into(), "orders".into()], &limits)
    .expect("tags");
    let reg = b.register(schema.clone()).await.expect("register");
    assert!(reg.created);
    let rec = reg.record;
    assert_eq!(rec.version, v("1.0.0"));
    assert_eq!(rec.state, SchemaState::Active);
    assert_eq!(rec.content, schema.content);
    assert_eq!(rec.checksum(), schema.content.checksum());
    assert_eq!(rec.size_bytes(), schema.content.text().len() as u64);
    assert_eq!(rec.description.as_deref(), Some("An order was placed"));
    assert_eq!(rec.metadata, schema.metadata);
    assert_eq!(rec.tags, vec!["pii".to_string(), "orders".to_string()]);
    assert_eq!(rec.id.get_version_num(), 7, "ids are UUIDv7");

    let by_id = b.get_by_id(rec.id).await.expect("by id");
    assert_eq!(
        by_id, rec,
        "the record read back equals the one returned by the write"
    );
    assert!(by_id.content.verify());
    assert_eq!(
        b.get_version(&rec.subject, &rec.version)
            .await
            .expect("by version"),
        rec
    );
    assert_eq!(b.get_latest(&rec.subject).await.expect("latest"), rec);
}

pub async fn unknown_things_are_not_found(b: Arc<dyn Storage>) {
    let id = uuid::Uuid::now_v7();
    assert!(
        matches!(b.get_by_id(id).await, Err(StorageError::NotFound(NotFound::Schema(x))) if x == id)
    );
    assert!(matches!(
        b.get_latest(&subject("nope")).await,
        Err(StorageError::NotFound(NotFound::Subject(_)))
    ));
    assert!(matches!(
        b.list_versions(&subject("nope"), true).await,
        Err(StorageError::NotFound(NotFound::Subject(_)))
    ));
    assert!(matches!(
        b.get_version(&subject("nope"), &v("1.0.0")).await,
        Err(StorageError::NotFound(NotFound::Version { .. }))
    ));
    assert!(matches!(
        b.set_state(id, SchemaState::Deprecated).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        b.dependencies(id, true).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        b.dependents(id, false).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        b.soft_delete(&subject("nope"), &v("1.0.0")).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        b.soft_delete_subject(&subject("nope")).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        b.hard_delete(&subject("nope"), &v("1.0.0")).await,
        Err(StorageError::NotFound(_))
    ));
}

pub async fn registration_is_idempotent(b: Arc<dyn Storage>) {
    let first = b
        .register(new("s", json!({"b": 1, "a": 2})))
        .await
        .expect("first");
    // Same document, different key order and whitespace: same canonical form.
    let again = b
        .register(new("s", json!({"a": 2, "b": 1})))
        .await
        .expect("again");
    assert!(!again.created);
    assert_eq!(again.record.id, first.record.id);
    // Asking for the same exact version is also a retry.
    let exact = b
        .register(new_at("s", "1.0.0", json!({"a": 2, "b": 1})))
        .await
        .expect("exact retry");
    assert!(!exact.created);
    assert_eq!(exact.record.id, first.record.id);
    // Asking for a different exact version stores the same content again, on purpose.
    let other = b
        .register(new_at("s", "3.0.0", json!({"a": 2, "b": 1})))
        .await
        .expect("other version");
    assert!(other.created);
    assert_eq!(other.record.version, v("3.0.0"));
    assert_eq!(
        b.list_versions(&subject("s"), false).await.expect("list"),
        vec![v("1.0.0"), v("3.0.0")]
    );
}

pub async fn versions_are_bumped_from_the_highest_ever_assigned(b: Arc<dyn Storage>) {
    let s = "bumps";
    let reg = |n: usize, bump: Bump| {
        let b = b.clone();
        async move {
            let schema =
                NewSchema::new(subject(s), VersionRequest::Next(bump), json_schema(doc(n)));
            b.register(schema).await.expect("register").record.version
        }
    };
    assert_eq!(reg(1, Bump::Minor).await, v("1.0.0"));
    assert_eq!(reg(2, Bump::Minor).await, v("1.1.0"));
    assert_eq!(reg(3, Bump::Patch).await, v("1.1.1"));
    assert_eq!(reg(4, Bump::Major).await, v("2.0.0"));
    b.register(new_at(s, "3.0.0-rc.1", doc(5)))
        .await
        .expect("explicit pre-release");
    assert_eq!(
        reg(6, Bump::Minor).await,
        v("3.0.0"),
        "bumping a pre-release releases it"
    );
    assert_eq!(reg(7, Bump::Patch).await, v("3.0.1"));
}

pub async fn versions_are_never_handed_out_twice(b: Arc<dyn Storage>) {
    let s = subject("reuse");
    b.register(new("reuse", doc(1))).await.expect("1.0.0");
    let second = b
        .register(new("reuse", doc(2)))
        .await
        .expect("1.1.0")
        .record;
    assert_eq!(second.version, v("1.1.0"));
    b.soft_delete(&s, &second.version)
        .await
        .expect("soft delete");
    b.hard_delete(&s, &second.version)
        .await
        .expect("hard delete");
    let third = b.register(new("reuse", doc(3))).await.expect("next").record;
    assert_eq!(
        third.version,
        v("1.2.0"),
        "1.1.0 was assigned once; it is never assigned again"
    );
    assert_ne!(third.id, second.id);
}

pub async fn explicit_version_conflicts_leave_data_unchanged(b: Arc<dyn Storage>) {
    let original = b
        .register(new_at("c", "1.0.0", doc(1)))
        .await
        .expect("register")
        .record;
    let err = b
        .register(new_at("c", "1.0.0", doc(2)))
        .await
        .expect_err("conflict");
    assert!(
        matches!(err, StorageError::VersionExists { ref version, .. } if *version == v("1.0.0")),
        "{err:?}"
    );
    assert_eq!(
        b.get_version(&subject("c"), &v("1.0.0"))
            .await
            .expect("read"),
        original
    );
    assert_eq!(
        b.list_versions(&subject("c"), true).await.expect("list"),
        vec![v("1.0.0")]
    );
}

pub async fn latest_prefers_releases_and_skips_deleted(b: Arc<dyn Storage>) {
    let s = subject("latest");
    b.register(new_at("latest", "2.0.0-beta.1", doc(1)))
        .await
        .expect("pre");
    assert_eq!(
        b.get_latest(&s).await.expect("only pre-releases").version,
        v("2.0.0-beta.1")
    );
    b.register(new_at("latest", "2.0.0-beta.2", doc(2)))
        .await
        .expect("pre 2");
    assert_eq!(
        b.get_latest(&s).await.expect("highest pre-release").version,
        v("2.0.0-beta.2")
    );
    b.register(new_at("latest", "1.4.0", doc(3)))
        .await
        .expect("release");
    assert_eq!(
        b.get_latest(&s).await.expect("release wins").version,
        v("1.4.0")
    );
    b.register(new_at("latest", "1.10.0", doc(4)))
        .await
        .expect("release");
    assert_eq!(
        b.get_latest(&s).await.expect("semver, not text").version,
        v("1.10.0")
    );
    b.soft_delete(&s, &v("1.10.0")).await.expect("delete");
    assert_eq!(
        b.get_latest(&s).await.expect("deleted skipped").version,
        v("1.4.0")
    );
}

pub async fn versions_list_in_semver_order(b: Arc<dyn Storage>) {
    let s = subject("order");
    for (i, ver) in [
        "1.10.0",
        "1.2.0",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.0-alpha",
        "1.0.0-alpha.10",
        "1.0.0-alpha.2",
        "0.9.0",
    ]
    .iter()
    .enumerate()
    {
        b.register(new_at("order", ver, doc(i)))
            .await
            .expect("register");
    }
    let listed = b.list_versions(&s, false).await.expect("list");
    let expected: Vec<_> = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.2",
        "1.0.0-alpha.10",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.10.0",
    ]
    .iter()
    .map(|x| v(x))
    .collect();
    assert_eq!(listed, expected);
    b.soft_delete(&s, &v("1.2.0")).await.expect("delete");
    assert!(!b
        .list_versions(&s, false)
        .await
        .expect("list")
        .contains(&v("1.2.0")));
    assert_eq!(b.list_versions(&s, true).await.expect("list all"), expected);
}

pub async fn subjects_are_listed_with_prefix_and_pages(b: Arc<dyn Storage>) {
    for name in ["app.a", "app.b", "app.c", "billing.x", "app_d"] {
        b.register(new(name, doc(1))).await.expect("register");
    }
    b.register(new("app.b", doc(2)))
        .await
        .expect("second version");
    let all = b
        .list_subjects(&SubjectQuery::default())
        .await
        .expect("list");
    let names: Vec<_> = all.items.iter().map(|s| s.subject.to_string()).collect();
    assert_eq!(names, ["app.a", "app.b", "app.c", "app_d", "billing.x"]);
    assert_eq!(all.total, 5);
    let b_row = &all.items[1];
    assert_eq!(
        (b_row.latest_version.clone(), b_row.version_count),
        (v("1.1.0"), 2)
    );

    let q = SubjectQuery {
        prefix: Some("app.".into()),
        limit: 2,
        offset: 1,
    };
    let page = b.list_subjects(&q).await.expect("page");
    let names: Vec<_> = page.items.iter().map(|s| s.subject.to_string()).collect();
    assert_eq!(
        names,
        ["app.b", "app.c"],
        "'.' and '_' are literal in prefixes"
    );
    assert_eq!(page.total, 3);

    b.soft_delete_subject(&subject("app.a"))
        .await
        .expect("delete subject");
    let after = b
        .list_subjects(&SubjectQuery::default())
        .await
        .expect("list");
    assert_eq!(after.total, 4);
    assert!(after.items.iter().all(|s| s.subject.as_str() != "app.a"));
}

pub async fn search_filters_and_ranks(b: Arc<dyn Storage>) {
    let limits = Limits::default();
    let reg = |s: &str, d: Value, desc: Option<&str>, tags: &[&str], meta: Value| {
        let b = b.clone();
        let schema = new(s, d)
            .with_description(desc.map(str::to_string), &limits)
            .expect("desc")
            .with_tags(tags.iter().map(|t| t.to_string()).collect(), &limits)
            .expect("tags")
            .with_metadata(obj(meta), &limits)
            .expect("meta");
        async move { b.register(schema).await.expect("register").record }
    };
    let in_content = reg(
        "events.one",
        json!({"title": "invoice total"}),
        None,
        &["finance"],
        json!({"team": "billing"}),
    )
    .await;
    let in_desc = reg(
        "events.two",
        json!({"title": "x"}),
        Some("Every invoice ever"),
        &["finance", "pii"],
        json!({"team": "billing", "tier": 1}),
    )
    .await;
    let in_subject = reg(
        "invoice.created",
        json!({"title": "y"}),
        None,
        &["pii"],
        json!({"team": "core"}),
    )
    .await;
    let unrelated = reg("users.created", json!({"title": "z"}), None, &[], json!({})).await;

    let search = |q: SearchQuery| {
        let b = b.clone();
        async move { b.search(&q).await.expect("search") }
    };
    let ids = |p: &Page<schema_registry_core::SchemaRecord>| {
        p.items.iter().map(|r| r.id).collect::<Vec<_>>()
    };

    let r = search(SearchQuery {
        text: Some("Invoice".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&r),
        vec![in_subject.id, in_desc.id, in_content.id],
        "subject > description > content"
    );
    assert_eq!(r.total, 3);

    let r = search(SearchQuery {
        tags: vec!["finance".into(), "pii".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&r), vec![in_desc.id], "tags are AND-ed");

    let r = search(SearchQuery {
        metadata: obj(json!({"team": "billing"})),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&r),
        vec![in_desc.id, in_content.id],
        "newest first without text"
    );
    let r = search(SearchQuery {
        metadata: obj(json!({"team": "billing", "tier": 1})),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&r), vec![in_desc.id]);
    let r = search(SearchQuery {
        metadata: obj(json!({"tier": "1"})),
        ..Default::default()
    })
    .await;
    assert!(r.items.is_empty(), "metadata values compare as typed JSON");

    let r = search(SearchQuery {
        subject_prefix: Some("events.".into()),
        limit: 1,
        offset: 1,
        ..Default::default()
    })
    .await;
    assert_eq!((ids(&r), r.total), (vec![in_content.id], 2));

    let r = search(SearchQuery {
        format: Some(SchemaFormat::Avro),
        ..Default::default()
    })
    .await;
    assert_eq!(r.total, 0);

    b.set_state(unrelated.id, SchemaState::Deprecated)
        .await
        .expect("deprecate");
    let r = search(SearchQuery {
        state: Some(SchemaState::Deprecated),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&r), vec![unrelated.id]);

    b.soft_delete(&in_subject.subject, &in_subject.version)
        .await
        .expect("delete");
    let r = search(SearchQuery {
        text: Some("invoice".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&r),
        vec![in_desc.id, in_content.id],
        "deleted versions are hidden"
    );
    let r = search(SearchQuery {
        state: Some(SchemaState::Deleted),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&r), vec![in_subject.id], "unless asked for");

    let r = search(SearchQuery {
        text: Some("%".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(r.total, 0, "wildcards in the text are literal");
}

pub async fn state_changes(b: Arc<dyn Storage>) {
    let rec = b
        .register(new("st", doc(1)))
        .await
        .expect("register")
        .record;
    let dep = b
        .set_state(rec.id, SchemaState::Deprecated)
        .await
        .expect("deprecate");
    assert_eq!(dep.state, SchemaState::Deprecated);
    assert!(dep.updated_at >= rec.updated_at);
    assert_eq!(
        b.get_latest(&rec.subject).await.expect("latest").id,
        rec.id,
        "deprecated is still latest"
    );
    let again = b
        .set_state(rec.id, SchemaState::Active)
        .await
        .expect("reactivate");
    assert_eq!(again.state, SchemaState::Active);
    assert!(matches!(
        b.set_state(rec.id, SchemaState::Deleted).await,
        Err(StorageError::Invalid(_))
    ));
    b.soft_delete(&rec.subject, &rec.version)
        .await
        .expect("delete");
    let err = b
        .set_state(rec.id, SchemaState::Active)
        .await
        .expect_err("deleted is final");
    assert!(
        matches!(
            err,
            StorageError::Conflict {
                reason: ConflictReason::Deleted,
                ..
            }
        ),
        "{err:?}"
    );
}

/// The encoded point reads (what the HTTP API sends) are the plain records, with every encoding
/// they hold made of exactly that record, and
/// follow every write exactly as the plain reads do — also through a cache that holds them.
pub async fn encoded_reads_match_and_follow_writes(b: Arc<dyn Storage>) {
    async fn check(b: &Arc<dyn Storage>, read: PointRead<'_>, expect: &SchemaRecordLike) {
        let encoded = b.get_encoded(read).await.expect("encoded read");
        assert_eq!(encoded.record.id, expect.0, "{read:?}");
        assert_eq!(encoded.record.state, expect.1, "{read:?}");
        let plain = match read {
            PointRead::Id(id) => b.get_by_id(id).await,
            PointRead::Version(s, v) => b.get_version(s, v).await,
            PointRead::Latest(s) => b.get_latest(s).await,
        }
        .expect("plain read");
        assert_eq!(encoded.record, plain, "{read:?}");
        for (encoding, bytes) in encoded.encodings() {
            assert_eq!(
                bytes.as_ref(),
                (encoding.encode)(&plain),
                "{read:?} {encoding:?}"
            );
        }
    }
    type SchemaRecordLike = (schema_registry_core::SchemaId, SchemaState);

    let first = b.register(new("enc", doc(1))).await.expect("1").record;
    let s = first.subject.clone();
    // Read everything twice: the second time a cache answers from what it stored.
    for _ in 0..2 {
        check(
            &b,
            PointRead::Id(first.id),
            &(first.id, SchemaState::Active),
        )
        .await;
        check(
            &b,
            PointRead::Version(&s, &first.version),
            &(first.id, SchemaState::Active),
        )
        .await;
        check(&b, PointRead::Latest(&s), &(first.id, SchemaState::Active)).await;
    }
    b.set_state(first.id, SchemaState::Deprecated)
        .await
        .expect("deprecate");
    let deprecated = (first.id, SchemaState::Deprecated);
    check(&b, PointRead::Id(first.id), &deprecated).await;
    check(&b, PointRead::Version(&s, &first.version), &deprecated).await;
    check(&b, PointRead::Latest(&s), &deprecated).await;

    let second = b.register(new("enc", doc(2))).await.expect("2").record;
    check(&b, PointRead::Latest(&s), &(second.id, SchemaState::Active)).await;
    b.soft_delete(&s, &second.version).await.expect("delete");
    check(&b, PointRead::Latest(&s), &deprecated).await;
    check(
        &b,
        PointRead::Id(second.id),
        &(second.id, SchemaState::Deleted),
    )
    .await;

    let missing = uuid::Uuid::now_v7();
    assert!(matches!(
        b.get_encoded(PointRead::Id(missing)).await,
        Err(StorageError::NotFound(_))
    ));
}

pub async fn soft_delete_hides_but_keeps(b: Arc<dyn Storage>) {
    let rec = b
        .register(new("sd", doc(1)))
        .await
        .expect("register")
        .record;
    let deleted = b
        .soft_delete(&rec.subject, &rec.version)
        .await
        .expect("delete");
    assert_eq!(deleted.state, SchemaState::Deleted);
    assert_eq!(
        b.soft_delete(&rec.subject, &rec.version)
            .await
            .expect("again")
            .state,
        SchemaState::Deleted
    );
    assert_eq!(
        b.get_by_id(rec.id).await.expect("still by id").state,
        SchemaState::Deleted
    );
    assert!(matches!(
        b.get_latest(&rec.subject).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        b.list_versions(&rec.subject, false).await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(
        b.list_versions(&rec.subject, true)
            .await
            .expect("with deleted"),
        vec![rec.version.clone()]
    );
    // Registering the same content again creates a new version: the deleted one is not revived.
    let again = b.register(new("sd", doc(1))).await.expect("re-register");
    assert!(again.created);
    assert_eq!(again.record.version, v("1.1.0"));
}

pub async fn delete_subject_deletes_every_version(b: Arc<dyn Storage>) {
    for n in 0..3 {
        b.register(new("gone", doc(n))).await.expect("register");
    }
    let deleted = b
        .soft_delete_subject(&subject("gone"))
        .await
        .expect("delete");
    assert_eq!(
        deleted
            .iter()
            .map(|r| r.version.clone())
            .collect::<Vec<_>>(),
        vec![v("1.0.0"), v("1.1.0"), v("1.2.0")]
    );
    assert!(deleted.iter().all(|r| r.state == SchemaState::Deleted));
    assert!(matches!(
        b.soft_delete_subject(&subject("gone")).await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(b.statistics().await.expect("stats").deleted, 3);
}

pub async fn hard_delete_rules(b: Arc<dyn Storage>) {
    let base = b.register(new("base", doc(1))).await.expect("base").record;
    let user = b
        .register(
            new("user", doc(2))
                .with_references(
                    vec![SchemaReference {
                        subject: subject("base"),
                        version: v("1.0.0"),
                    }],
                    &Limits::default(),
                )
                .expect("refs"),
        )
        .await
        .expect("user")
        .record;
    let err = b
        .hard_delete(&base.subject, &base.version)
        .await
        .expect_err("not soft-deleted");
    assert!(
        matches!(
            err,
            StorageError::Conflict {
                reason: ConflictReason::NotSoftDeleted,
                ..
            }
        ),
        "{err:?}"
    );
    b.soft_delete(&base.subject, &base.version)
        .await
        .expect("soft delete");
    let err = b
        .hard_delete(&base.subject, &base.version)
        .await
        .expect_err("referenced");
    assert!(
        matches!(
            err,
            StorageError::Conflict {
                reason: ConflictReason::Referenced,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("user"),
        "the message names the referrer: {err}"
    );
    b.soft_delete(&user.subject, &user.version)
        .await
        .expect("delete referrer");
    let removed = b
        .hard_delete(&base.subject, &base.version)
        .await
        .expect("hard delete");
    assert_eq!(removed.id, base.id);
    assert!(matches!(
        b.get_by_id(base.id).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(
        b.dependencies(user.id, false)
            .await
            .expect("deps")
            .is_empty(),
        "edges go with it"
    );
}

pub async fn references_and_dependency_walks(b: Arc<dyn Storage>) {
    let limits = Limits::default();
    let r = |s: &str, ver: &str| SchemaReference {
        subject: subject(s),
        version: v(ver),
    };
    let err = b
        .register(
            new("a", doc(1))
                .with_references(vec![r("missing", "1.0.0")], &limits)
                .expect("refs"),
        )
        .await
        .expect_err("unknown reference");
    assert!(
        matches!(&err, StorageError::Invalid(e) if e.code() == "unknown_reference"),
        "{err:?}"
    );
    assert!(
        matches!(
            b.list_versions(&subject("a"), true).await,
            Err(StorageError::NotFound(_))
        ),
        "nothing stored"
    );

    let c = b.register(new("c", doc(3))).await.expect("c").record;
    let bb = b
        .register(
            new("b", doc(2))
                .with_references(vec![r("c", "1.0.0")], &limits)
                .expect("refs"),
        )
        .await
        .expect("b")
        .record;
    let a = b
        .register(
            new("a", doc(1))
                .with_references(vec![r("b", "1.0.0"), r("c", "1.0.0")], &limits)
                .expect("refs"),
        )
        .await
        .expect("a")
        .record;
    assert_eq!(a.references, vec![r("b", "1.0.0"), r("c", "1.0.0")]);

    let direct = b.dependencies(a.id, false).await.expect("direct");
    assert_eq!(
        direct.iter().map(|s| (s.id, s.depth)).collect::<Vec<_>>(),
        vec![(bb.id, 1), (c.id, 1)]
    );
    let direct_b = b.dependencies(bb.id, false).await.expect("direct");
    assert_eq!(
        direct_b.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![c.id]
    );
    let all = b.dependencies(a.id, true).await.expect("transitive");
    assert_eq!(
        all.iter().map(|s| (s.id, s.depth)).collect::<Vec<_>>(),
        vec![(bb.id, 1), (c.id, 1)],
        "each once, at its shortest depth"
    );
    let users = b.dependents(c.id, true).await.expect("dependents");
    assert_eq!(
        users.iter().map(|s| (s.id, s.depth)).collect::<Vec<_>>(),
        vec![(a.id, 1), (bb.id, 1)]
    );
    let users_b = b.dependents(bb.id, true).await.expect("dependents");
    assert_eq!(users_b.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a.id]);

    let d = b
        .register(
            new("d", doc(4))
                .with_references(vec![r("a", "1.0.0")], &limits)
                .expect("refs"),
        )
        .await
        .expect("d")
        .record;
    let chain = b.dependencies(d.id, true).await.expect("chain");
    assert_eq!(
        chain
            .iter()
            .map(|s| (s.subject.to_string(), s.depth))
            .collect::<Vec<_>>(),
        vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 2)]
    );
    assert_eq!(b.dependents(c.id, true).await.expect("up").len(), 3);

    b.soft_delete(&subject("c"), &v("1.0.0"))
        .await
        .expect("delete c");
    let err = b
        .register(
            new("e", doc(5))
                .with_references(vec![r("c", "1.0.0")], &limits)
                .expect("refs"),
        )
        .await
        .expect_err("deleted reference");
    assert!(
        matches!(&err, StorageError::Invalid(e) if e.code() == "unknown_reference"),
        "{err:?}"
    );
}

pub async fn batch_registration_is_atomic(b: Arc<dyn Storage>) {
    let limits = Limits::default();
    let ok = b
        .register_all(vec![
            new("batch.base", doc(1)),
            new("batch.user", doc(2))
                .with_references(
                    vec![SchemaReference {
                        subject: subject("batch.base"),
                        version: v("1.0.0"),
                    }],
                    &limits,
                )
                .expect("refs"),
        ])
        .await
        .expect("batch");
    assert_eq!(ok.len(), 2);
    assert!(ok.iter().all(|r| r.created));
    assert_eq!(
        b.dependencies(ok[1].record.id, false).await.expect("deps")[0].id,
        ok[0].record.id,
        "later entries see earlier ones"
    );

    let before = b.statistics().await.expect("stats");
    let err = b
        .register_all(vec![
            new("batch.other", doc(3)),
            new_at("batch.base", "1.0.0", doc(99)),
        ])
        .await
        .expect_err("second entry conflicts");
    assert!(matches!(err, StorageError::VersionExists { .. }), "{err:?}");
    assert_eq!(
        b.statistics().await.expect("stats"),
        before,
        "nothing from the failed batch is stored"
    );
    assert!(matches!(
        b.get_latest(&subject("batch.other")).await,
        Err(StorageError::NotFound(_))
    ));
}

/// Many writers, one subject, auto-assigned versions: every version distinct, no gaps.
pub async fn concurrent_registrations_never_collide(b: Arc<dyn Storage>) {
    const WRITERS: usize = 12;
    const EACH: usize = 5;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..EACH {
                // Odd writers go through the batch API: on PostgreSQL that is the locked path,
                // racing the optimistic path of single registrations.
                let schema = new("race", doc(w * 1000 + i));
                let r = if w % 2 == 1 {
                    let mut all = b.register_all(vec![schema]).await.expect("register_all");
                    all.pop().expect("one result")
                } else {
                    b.register(schema).await.expect("register")
                };
                assert!(r.created);
                got.push(r.record.version);
            }
            got
        }));
    }
    let mut versions = BTreeSet::new();
    for t in tasks {
        for ver in t.await.expect("task") {
            assert!(
                versions.insert(ver.clone()),
                "version {ver} handed out twice"
            );
        }
    }
    let expected: BTreeSet<_> = (0..WRITERS * EACH)
        .map(|m| v(&format!("1.{m}.0")))
        .collect();
    assert_eq!(
        versions,
        expected,
        "versions 1.0.0 .. 1.{}.0 with no gaps",
        WRITERS * EACH - 1
    );
    assert_eq!(
        b.list_versions(&subject("race"), false)
            .await
            .expect("list")
            .len(),
        WRITERS * EACH
    );
}

/// Many writers retrying the same registration: one version is created, all get it.
pub async fn concurrent_identical_registrations_create_one(b: Arc<dyn Storage>) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                let mut all = b
                    .register_all(vec![new("same", doc(7))])
                    .await
                    .expect("register_all");
                all.pop().expect("one result")
            } else {
                b.register(new("same", doc(7))).await.expect("register")
            }
        }));
    }
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let r = t.await.expect("task");
        ids.insert(r.record.id);
        created += usize::from(r.created);
    }
    assert_eq!((ids.len(), created), (1, 1));
}

pub async fn statistics_count_everything(b: Arc<dyn Storage>) {
    let empty = b.statistics().await.expect("stats");
    assert_eq!((empty.schemas, empty.subjects, empty.bytes), (0, 0, 0));
    let a = b.register(new("x", doc(1))).await.expect("x").record;
    let c = b.register(new("y", doc(2))).await.expect("y").record;
    b.register(new("y", doc(3))).await.expect("y2");
    b.set_state(a.id, SchemaState::Deprecated)
        .await
        .expect("deprecate");
    b.soft_delete_subject(&c.subject).await.expect("delete y");
    let s = b.statistics().await.expect("stats");
    assert_eq!(
        (s.schemas, s.subjects, s.active, s.deprecated, s.deleted),
        (3, 1, 0, 1, 2)
    );
    let bytes: u64 = [doc(1), doc(2), doc(3)]
        .into_iter()
        .map(|d| json_schema(d).size_bytes())
        .sum();
    assert_eq!(s.bytes, bytes);
}

pub async fn other_formats_round_trip(b: Arc<dyn Storage>) {
    let avro = "{\"type\": \"record\", \"name\": \"U\", \"fields\": [{\"name\": \"id\", \"type\": \"long\"}]}";
    let proto = "syntax = \"proto3\";\n\nmessage U {\n  int64 id = 1; // ünïcode comment\n}\n";
    for (s, format, text) in [
        ("fmt.avro", SchemaFormat::Avro, avro),
        ("fmt.proto", SchemaFormat::Protobuf, proto),
    ] {
        let content = SchemaContent::parse(format, &json!(text)).expect("valid");
        let rec = b
            .register(NewSchema::new(
                subject(s),
                VersionRequest::Next(Bump::Minor),
                content,
            ))
            .await
            .expect("register")
            .record;
        let back = b.get_by_id(rec.id).await.expect("read");
        assert_eq!(back.format(), format);
        assert_eq!(back.content.text(), text, "byte-exact");
        assert!(back.content.verify());
    }
}

pub async fn hostile_strings_are_data(b: Arc<dyn Storage>) {
    let limits = Limits::default();
    let nasty = "'; DROP TABLE schemas; -- \"quoted\" \\ back % under_ ünï 名前 😀";
    let s = "sub'ject\"-名前-😀;--";
    let rec = b
        .register(
            new(s, json!({"title": nasty, nasty: nasty}))
                .with_description(Some(nasty.into()), &limits)
                .expect("desc")
                .with_tags(vec![nasty.into()], &limits)
                .expect("tag")
                .with_metadata(obj(json!({nasty: nasty})), &limits)
                .expect("meta"),
        )
        .await
        .expect("register")
        .record;
    let back = b.get_latest(&subject(s)).await.expect("read");
    assert_eq!(back, rec);
    let found = b
        .search(&SearchQuery {
            text: Some("DROP TABLE".into()),
            tags: vec![nasty.into()],
            metadata: obj(json!({nasty: nasty})),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(
        found.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![rec.id]
    );
    assert_eq!(
        b.statistics().await.expect("stats").schemas,
        1,
        "the table is still there"
    );
}

pub async fn health_is_ok(b: Arc<dyn Storage>) {
    b.health().await.expect("healthy");
    assert!(!b.kind().is_empty());
}

pub async fn popular_lists_the_most_read_first(b: Arc<dyn Storage>) {
    let a = b.register(new("pop.a", doc(1))).await.expect("a").record;
    let c = b.register(new("pop.c", doc(2))).await.expect("c").record;
    let gone = b
        .register(new("pop.gone", doc(3)))
        .await
        .expect("gone")
        .record;
    for _ in 0..5 {
        b.get_by_id(c.id).await.expect("read c");
    }
    for _ in 0..2 {
        b.get_latest(&a.subject).await.expect("read a");
    }
    for _ in 0..9 {
        b.get_version(&gone.subject, &gone.version)
            .await
            .expect("read gone");
    }
    b.soft_delete(&gone.subject, &gone.version)
        .await
        .expect("delete");
    b.run_maintenance().await.expect("maintenance");
    let top = b.popular(10).await.expect("popular");
    assert_eq!(
        top.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![c.id, a.id],
        "most read first, deleted excluded"
    );
    assert_eq!(b.popular(1).await.expect("popular").len(), 1);
}
