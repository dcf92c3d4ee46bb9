//! How a registration is written on PostgreSQL: one statement for the whole row set, and the
//! optimistic path that makes the common registration two round trips, or one on a hint.
//!
//! # The locked path and its cost
//! [`register_in`](crate::sql::register::register_in) runs in an explicit transaction: `BEGIN`, the
//! subject's advisory lock, the reads the rules decide on, the write, `COMMIT`. Measured under
//! load, each of those round trips costs PostgreSQL about as much CPU as a whole single-row
//! insert does under `pgbench` (docs/PERFORMANCE.md, section 3), so their number, not the
//! work in each, set the registration rate.
//!
//! # The optimistic path
//! 1. One statement reads, from one snapshot, the subject's **revision**, its highest version
//!    ever assigned and the newest live version with identical content.
//! 2. The shared rules ([`plan`]) decide, exactly as under the lock.
//! 3. One statement writes the subject's new maximum, the version and its dependency edges,
//!    **only if the revision is still the one read** (a compare-and-set in the `ON CONFLICT`
//!    clause), and raises the revision. It commits on its own: no `BEGIN`/`COMMIT`.
//!
//! # Skipping the read: hints
//! After it writes into a subject, this process remembers the subject's new revision and
//! highest version (a [`Hint`]). The next registration of a next version (`VersionRequest::Next`)
//! into that subject skips step 1: the rules decide on the hinted state, with no identical
//! content assumed, and the write carries both guards of step 3 plus two more, in the same
//! statement: no live version with identical content may exist, and the subject's highest
//! version must still be the hinted one ([`Decided::OnHint`]). With the revision unchanged
//! since the hint, nothing was registered since, so the hinted highest version is still the
//! subject's (the second check only guards against a revision column rebuilt under a running
//! server); identical content, which a deletion can change without a registration, is checked
//! by the statement itself. When a guard fails, or the rules say no on the hinted state (they
//! may decide differently once identical content is known), the hint is dropped and the
//! registration takes the path above, as it would have without the hint: a stale hint (another
//! server registered into the subject) costs one statement that wrote nothing. An unavailable
//! database is reported at once instead. A common registration is then one round trip.
//! Measured: docs/PERFORMANCE.md, section 3.
//!
//! Every registration raises the subject's revision, on either path, so an unchanged revision
//! means no registration into the subject committed since the read, and what the rules read
//! (identical content, the highest version, whether an exact version exists) still holds: the
//! outcome is one the locked path could have produced. The write also needs the subject's
//! advisory lock to be free (`pg_try_advisory_xact_lock`, never waiting), so it cannot slip in
//! between a locked writer's read and write, and holds it until it commits, so a locked writer
//! that comes next reads after it. When the revision moved or the lock was taken, nothing was
//! written, and after [`ATTEMPTS`] such tries the registration takes the locked path, which
//! queues fairly, so a hot subject cannot starve a writer. Content bound for object storage
//! always takes the locked path: it needs the content lock as well.
//! References point into other subjects; as on the locked path, the foreign keys keep a
//! referenced row from disappearing under the new edge.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use schema_registry_core::{NewSchema, SchemaId, SchemaVersion, VersionRequest};
use sqlx::Row;

use super::statements::{find_id, id_and_state};
use super::{queries, PostgresDb};
use crate::objects::{ObjectTier, Placement};
use crate::sql::register::{plan, InsertRow, Plan, RegistrationReads};
use crate::sql::rows::{latest_order, version_from_parts, version_of};
use crate::{Registered, StorageError, StorageResult};
use async_trait::async_trait;
use schema_registry_core::{SchemaContent, SchemaReference, SchemaState, Subject};

/// Optimistic tries before a registration takes the locked path. One: when a try loses, the
/// subject is contended, and further tries mostly lose again (each costing a read and a write
/// statement) while the locked path queues fairly. Observed with three tries: seeding 100
/// versions per subject, subject after subject with 32 registrations in flight (so most of them
/// on one subject), ran at 563 registrations/s (docs/PERFORMANCE.md).
pub(super) const ATTEMPTS: usize = 1;

/// What this process last knew of a subject it wrote into (see "Skipping the read").
#[derive(Debug, Clone)]
pub(super) struct Hint {
    revision: i64,
    max: SchemaVersion,
}

/// The hints of one backend, by subject name. Bounded: when full, it starts over (a missing
/// hint costs the read it would have saved, nothing else).
#[derive(Debug, Default)]
pub(super) struct Hints {
    by_subject: Mutex<HashMap<String, Hint>>,
    /// Registrations written on a hint, for diagnosis and tests.
    written: AtomicU64,
}

impl Hints {
    /// At most this many subjects (about 100 bytes each).
    const CAPACITY: usize = 65_536;

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hint>> {
        // A panic while holding the lock cannot leave a hint half-written (one insert or
        // remove), so a poisoned map is still sound.
        self.by_subject
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, subject: &str) -> Option<Hint> {
        self.map().get(subject).cloned()
    }

    /// Remembers a write into `subject` that expected `revision` and committed: the write
    /// raised the revision by one and left `max` as the highest version.
    fn wrote(&self, subject: &str, revision: i64, max: &SchemaVersion) {
        let mut map = self.map();
        if map.len() >= Self::CAPACITY && !map.contains_key(subject) {
            map.clear();
        }
        let hint = Hint {
            revision: revision + 1,
            max: max.clone(),
        };
        map.insert(subject.to_string(), hint);
    }

    fn forget(&self, subject: &str) {
        self.map().remove(subject);
    }

    pub(super) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// What a write checks besides the revision, by what the rules decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decided<'a> {
    /// On what was read: step 1, or the locked path.
    OnRead,
    /// On a hint: the statement checks that no live version has the new content, and that the
    /// subject's highest version is still `max` (the revision alone could repeat if the
    /// revision column were ever rebuilt, say by reverting and re-applying its migration under
    /// a running server).
    OnHint { max: &'a SchemaVersion },
}

/// Writes `row` in one statement: the subject's new maximum (raising its revision), the version,
/// and its dependency edges. With `expected_revision`, writes nothing and returns `false` unless
/// the subject's revision is still that (0: the subject did not exist) *and* the subject's
/// advisory lock is free: a locked-path writer between its read and its write must not be
/// overtaken, and taking the lock (held to the end of this statement's own transaction) makes
/// the next locked writer read after this write. Without it (the locked path, which holds the
/// lock), always writes. Whenever a revision is expected above 0, the subject must still exist.
/// With [`Decided::OnHint`], also writes nothing when the subject has a live version with
/// identical content or its highest version is no longer the hinted one.
pub(super) async fn insert_version<'e, E>(
    executor: E,
    row: &InsertRow<'_>,
    expected_revision: Option<i64>,
    decided: Decided<'_>,
) -> StorageResult<bool>
where
    E: sqlx::PgExecutor<'e>,
{
    let new = row.new;
    let hinted_max = match decided {
        Decided::OnRead => None,
        Decided::OnHint { max } => Some(max),
    };
    let positions: Vec<i32> = (0..row.depends_on.len())
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    // Data-modifying CTEs run exactly once and see one snapshot; the foreign keys are checked
    // at the end of the statement, when the subject and version rows exist.
    let insert = sqlx::query(
        "WITH may_write AS (
                 SELECT ($23::bigint IS NULL OR pg_try_advisory_xact_lock(hashtextextended($2, 0)))
                    AND ($23::bigint IS NULL OR $23 = 0
                         OR EXISTS (SELECT 1 FROM subjects WHERE subject = $2))
                    AND NOT ($26::bool AND EXISTS (
                        SELECT 1 FROM schemas
                        WHERE subject = $2 AND checksum = $10 AND format = $8 AND state <> 'deleted'))
                    AS ok
         ), subject_row AS (
             INSERT INTO subjects (subject, max_major, max_minor, max_patch, max_pre, created_at, revision)
             SELECT $2, $19, $20, $21, $22, $16, 1 FROM may_write WHERE ok
             ON CONFLICT (subject) DO UPDATE SET
                max_major = excluded.max_major, max_minor = excluded.max_minor,
                max_patch = excluded.max_patch, max_pre = excluded.max_pre,
                revision = subjects.revision + 1
             WHERE ($23::bigint IS NULL OR subjects.revision = $23)
               AND ($27::bigint IS NULL
                    OR (subjects.max_major, subjects.max_minor, subjects.max_patch, subjects.max_pre)
                       = ($27, $28::bigint, $29::bigint, $30::text))
             RETURNING 1
         ), version_row AS (
             INSERT INTO schemas (id, subject, major, minor, patch, pre, pre_key, format, content_text, content,
                                  checksum, size_bytes, state, description, metadata, tags, refs, created_at, updated_at,
                                  content_location, content_pending)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,
                    CASE WHEN $8 = 'protobuf' THEN NULL ELSE $9::jsonb END,
                    $10, $11, 'active', $12, $13, $14, $15, $16, $16, $17, $18
             FROM subject_row
             RETURNING id
         ), edges AS (
             INSERT INTO schema_dependencies (schema_id, depends_on_id, position)
             SELECT version_row.id, dep, pos
             FROM version_row, unnest($24::uuid[], $25::int[]) AS t(dep, pos)
             ON CONFLICT DO NOTHING
         )
         SELECT count(*) FROM version_row",
    );
    let inserted = crate::sql::shared::bind_version_row!(insert, row, queries)
        .bind(row.new_max.major())
        .bind(row.new_max.minor())
        .bind(row.new_max.patch())
        .bind(row.new_max.pre())
        .bind(expected_revision)
        .bind(row.depends_on)
        .bind(&positions)
        .bind(hinted_max.is_some())
        .bind(hinted_max.map(SchemaVersion::major))
        .bind(hinted_max.map(SchemaVersion::minor))
        .bind(hinted_max.map(SchemaVersion::patch))
        .bind(hinted_max.map(SchemaVersion::pre))
        .fetch_one(executor)
        .await;
    match inserted {
        Ok(r) => Ok(r.try_get::<i64, _>(0)? == 1),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(StorageError::VersionExists {
                subject: new.subject.clone(),
                version: row.version.clone(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// What step 1 reads: the subject as one snapshot saw it.
struct SubjectSnapshot {
    /// 0 when the subject does not exist yet.
    revision: i64,
    max: Option<SchemaVersion>,
    identical: Option<(SchemaId, SchemaVersion)>,
}

/// [`RegistrationReads`] over the snapshot, plus the two reads only some requests need.
struct SnapshotReads<'a> {
    pool: &'a sqlx::PgPool,
    snapshot: SubjectSnapshot,
}

#[async_trait]
impl RegistrationReads for SnapshotReads<'_> {
    async fn find_identical(
        &mut self,
        _subject: &Subject,
        _content: &SchemaContent,
    ) -> StorageResult<Option<(SchemaId, SchemaVersion)>> {
        Ok(self.snapshot.identical.clone())
    }

    async fn version_exists(
        &mut self,
        subject: &Subject,
        version: &SchemaVersion,
    ) -> StorageResult<bool> {
        Ok(id_and_state(self.pool, subject, version).await?.is_some())
    }

    async fn max_assigned(&mut self, _subject: &Subject) -> StorageResult<Option<SchemaVersion>> {
        Ok(self.snapshot.max.clone())
    }

    async fn resolve(
        &mut self,
        reference: &SchemaReference,
    ) -> StorageResult<Option<(SchemaId, SchemaState)>> {
        id_and_state(self.pool, &reference.subject, &reference.version).await
    }
}

impl PostgresDb {
    /// One optimistic try for `new`, whose content stays inline (see the module docs). `None`:
    /// something changed in the subject since the read, and nothing was written.
    pub(super) async fn register_optimistically(
        &self,
        new: &NewSchema,
        placement: &Placement,
        objects: Option<&ObjectTier>,
    ) -> StorageResult<Option<Registered>> {
        if let Some(registered) = self.register_on_hint(new, placement).await? {
            return Ok(Some(registered));
        }
        let snapshot = self.subject_snapshot(new).await?;
        let expected = snapshot.revision;
        let mut reads = SnapshotReads {
            pool: &self.pool,
            snapshot,
        };
        let insertion = match plan(&mut reads, new).await? {
            Plan::Existing(id) => {
                // Read on the primary: the version may have been written a moment ago.
                let Some(raw) = find_id(&self.pool, id).await? else {
                    return Ok(None); // permanently deleted since the read
                };
                let record = raw.finish(objects).await?;
                if record.state == SchemaState::Deleted {
                    return Ok(None); // deleted since the read: no longer identical
                }
                return Ok(Some(Registered {
                    record,
                    created: false,
                }));
            }
            Plan::Insert(insertion) => insertion,
        };
        let row = insertion.row(new, placement);
        let written = insert_version(&self.pool, &row, Some(expected), Decided::OnRead).await?;
        if !written {
            self.hints.forget(new.subject.as_str());
            return Ok(None);
        }
        self.hints
            .wrote(new.subject.as_str(), expected, row.new_max);
        Ok(Some(row.registered()))
    }

    /// A registration of the next version on this process's hint for the subject, in one
    /// statement (see "Skipping the read"). `Ok(None)`: there is no hint, the request names an
    /// exact version, or the rules or a guard said no on the hinted state (the hint is then
    /// dropped); nothing was written, and the caller goes on as if there had been no hint. An
    /// error that the state of the data decides (a version that exists, a rule, a reference) is
    /// such a no as well, since the read path may decide otherwise; an unavailable or broken
    /// database is reported at once, not waited out a second time.
    async fn register_on_hint(
        &self,
        new: &NewSchema,
        placement: &Placement,
    ) -> StorageResult<Option<Registered>> {
        if !matches!(new.version, VersionRequest::Next(_)) {
            return Ok(None);
        }
        let subject = new.subject.as_str();
        let Some(hint) = self.hints.get(subject) else {
            return Ok(None);
        };
        let mut reads = SnapshotReads {
            pool: &self.pool,
            snapshot: SubjectSnapshot {
                revision: hint.revision,
                max: Some(hint.max.clone()),
                identical: None,
            },
        };
        let decided = match plan(&mut reads, new).await {
            Ok(Plan::Insert(insertion)) => insertion,
            Ok(Plan::Existing(_)) => return Ok(None), // cannot happen: no identical content assumed
            Err(e) => return self.no_on_hint(subject, e),
        };
        let row = decided.row(new, placement);
        let on_hint = Decided::OnHint { max: &hint.max };
        match insert_version(&self.pool, &row, Some(hint.revision), on_hint).await {
            Ok(true) => {
                self.hints.written.fetch_add(1, Ordering::Relaxed);
                self.hints.wrote(subject, hint.revision, row.new_max);
                Ok(Some(row.registered()))
            }
            Ok(false) => {
                self.hints.forget(subject);
                Ok(None)
            }
            Err(e) => self.no_on_hint(subject, e),
        }
    }

    /// Drops the hint for `subject`; `Ok(None)` (try the read path) when `error` is one the
    /// state of the data decides, the error itself otherwise.
    fn no_on_hint(&self, subject: &str, error: StorageError) -> StorageResult<Option<Registered>> {
        self.hints.forget(subject);
        match error {
            StorageError::VersionExists { .. }
            | StorageError::Invalid(_)
            | StorageError::Conflict { .. }
            | StorageError::NotFound(_) => Ok(None),
            StorageError::Unavailable(_)
            | StorageError::Corrupted(_)
            | StorageError::Internal(_) => Err(error),
        }
    }

    /// Step 1: the subject's revision, highest version and newest identical live version, in
    /// one statement (so from one snapshot).
    async fn subject_snapshot(&self, new: &NewSchema) -> StorageResult<SubjectSnapshot> {
        let row = sqlx::query(concat!(
            "SELECT sub.revision, sub.max_major, sub.max_minor, sub.max_patch, sub.max_pre,
                    same.id, same.major, same.minor, same.patch, same.pre
             FROM (SELECT 1) AS one
             LEFT JOIN subjects AS sub ON sub.subject = $1
             LEFT JOIN LATERAL (
                 SELECT id, major, minor, patch, pre FROM schemas
                 WHERE subject = $1 AND checksum = $2 AND format = $3 AND state <> 'deleted'
                 ORDER BY ",
            latest_order!(),
            " LIMIT 1) AS same ON true"
        ))
        .bind(new.subject.as_str())
        .bind(new.content.checksum())
        .bind(new.content.format().as_str())
        .fetch_one(&self.pool)
        .await?;
        let revision: Option<i64> = row.try_get("revision")?;
        let max = match revision {
            None => None,
            Some(_) => Some(version_from_parts(
                row.try_get("max_major")?,
                row.try_get("max_minor")?,
                row.try_get("max_patch")?,
                &row.try_get::<String, _>("max_pre")?,
            )?),
        };
        let identical = match row.try_get::<Option<SchemaId>, _>("id")? {
            None => None,
            Some(id) => Some((id, version_of(&row)?)),
        };
        Ok(SubjectSnapshot {
            revision: revision.unwrap_or(0),
            max,
            identical,
        })
    }
}
