//! The statements whose code is the same in both dialects, written once.
//!
//! Most statements differ between SQLite and PostgreSQL only in their SQL text (parameters,
//! types, row locks) and in how a time is bound. [`dialect_statements!`] writes their code once;
//! each dialect invokes it with its sqlx driver, its types and a `queries` module that holds
//! the SQL text under the same names (`SELECT_BY_ID`, `MARK_VERSION_DELETED`, …) plus `time`,
//! `subject_prefix` and `WALK_DEPTH`. Every expansion is type-checked against its own driver,
//! so no generic sqlx bounds are needed.
//!
//! It generates, in the invoking module:
//! - `find_id`, `find_version`, `id_and_state`: point reads on any connection of the dialect;
//! - `impl Reads` for the dialect's database (reads on its read pool; the pending-content
//!   reads on its writer, which sees every commit at once);
//! - `impl RegistrationReads` and `impl WriteTx` for its write transaction.
//!
//! [`bind_version_row!`] binds a new version's row for either dialect's insert statement.

/// See the module docs. Arguments: `driver` (the sqlx database type), `db` (the dialect's
/// [`Database`](super::Database)), `tx` (its write transaction, with a `tx: Transaction` field),
/// `queries` (the module of SQL text), `reader` and `writer` (the pool fields of `db`).
macro_rules! dialect_statements {
    (
        driver: $driver:ty,
        db: $db:ty,
        tx: $tx:ty,
        queries: $q:ident,
        reader: $reader:ident,
        writer: $writer:ident $(,)?
    ) => {
        use schema_registry_core::{
            SchemaContent as __SchemaContent, SchemaId as __SchemaId,
            SchemaReference as __SchemaReference, SchemaState as __SchemaState,
            SchemaSummary as __SchemaSummary, SchemaVersion as __SchemaVersion,
            Subject as __Subject,
        };
        use $crate::sql::rows::{
            state_from as __state_from, statistics_of as __statistics_of,
            subject_summary_of as __subject_summary_of, to_i64 as __to_i64, to_u64 as __to_u64,
            version_of as __version_of, PendingRow as __PendingRow, RawRecord as __RawRecord,
            RawSummary as __RawSummary,
        };
        use $crate::{
            Page as __Page, StorageResult as __Result, StorageStats as __StorageStats,
            SubjectQuery as __SubjectQuery, SubjectSummary as __SubjectSummary,
        };

        /// Binds a subject and a version as the five parameters that name a version.
        macro_rules! bind_version {
            ($query:expr, $subject:expr, $version:expr) => {
                $query
                    .bind($subject.as_str())
                    .bind($version.major())
                    .bind($version.minor())
                    .bind($version.patch())
                    .bind($version.pre())
            };
        }

        /// A version's row by id, on any connection.
        pub(crate) async fn find_id<'e, E: sqlx::Executor<'e, Database = $driver>>(
            executor: E,
            id: __SchemaId,
        ) -> __Result<Option<__RawRecord>> {
            let row = sqlx::query($q::SELECT_BY_ID)
                .bind(id)
                .fetch_optional(executor)
                .await?;
            row.as_ref().map(__RawRecord::decode).transpose()
        }

        /// A version's row by subject and version, on any connection.
        pub(crate) async fn find_version<'e, E: sqlx::Executor<'e, Database = $driver>>(
            executor: E,
            subject: &__Subject,
            version: &__SchemaVersion,
        ) -> __Result<Option<__RawRecord>> {
            let row = bind_version!(sqlx::query($q::SELECT_BY_VERSION), subject, version)
                .fetch_optional(executor)
                .await?;
            row.as_ref().map(__RawRecord::decode).transpose()
        }

        /// The id and state of a subject's version, on any connection: what `version_exists`
        /// and `resolve` ask.
        pub(crate) async fn id_and_state<'e, E: sqlx::Executor<'e, Database = $driver>>(
            executor: E,
            subject: &__Subject,
            version: &__SchemaVersion,
        ) -> __Result<Option<(__SchemaId, __SchemaState)>> {
            let row = bind_version!(sqlx::query($q::ID_AND_STATE), subject, version)
                .fetch_optional(executor)
                .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some((
                    sqlx::Row::try_get(&row, "id")?,
                    __state_from(sqlx::Row::try_get(&row, "state")?)?,
                ))),
            }
        }

        #[async_trait::async_trait]
        impl $crate::sql::Reads for $db {
            async fn by_id(&self, id: __SchemaId) -> __Result<Option<__RawRecord>> {
                find_id(&self.$reader, id).await
            }

            async fn by_version(
                &self,
                subject: &__Subject,
                version: &__SchemaVersion,
            ) -> __Result<Option<__RawRecord>> {
                find_version(&self.$reader, subject, version).await
            }

            async fn latest(&self, subject: &__Subject) -> __Result<Option<__RawRecord>> {
                let row = sqlx::query($q::SELECT_LATEST)
                    .bind(subject.as_str())
                    .fetch_optional(&self.$reader)
                    .await?;
                row.as_ref().map(__RawRecord::decode).transpose()
            }

            async fn versions(
                &self,
                subject: &__Subject,
                include_deleted: bool,
            ) -> __Result<Vec<__SchemaVersion>> {
                let rows = sqlx::query($q::LIST_VERSIONS)
                    .bind(subject.as_str())
                    .bind(include_deleted)
                    .fetch_all(&self.$reader)
                    .await?;
                rows.iter().map(__version_of).collect()
            }

            async fn subjects(&self, query: &__SubjectQuery) -> __Result<__Page<__SubjectSummary>> {
                let prefix = $q::subject_prefix(query.prefix.as_deref());
                let rows = sqlx::query($q::SUBJECTS_PAGE)
                    .bind(prefix.as_deref())
                    .bind(i64::from(query.limit))
                    .bind(__to_i64(query.offset))
                    .fetch_all(&self.$reader)
                    .await?;
                let total: i64 = sqlx::query_scalar($q::SUBJECTS_TOTAL)
                    .bind(prefix.as_deref())
                    .fetch_one(&self.$reader)
                    .await?;
                Ok(__Page {
                    items: rows
                        .iter()
                        .map(__subject_summary_of)
                        .collect::<__Result<_>>()?,
                    total: __to_u64(total),
                })
            }

            async fn exists(&self, id: __SchemaId) -> __Result<bool> {
                let row = sqlx::query($q::EXISTS)
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.is_some())
            }

            async fn walk(
                &self,
                walk: $crate::sql::Walk,
                id: __SchemaId,
                transitive: bool,
            ) -> __Result<Vec<__SchemaSummary>> {
                let sql = match walk {
                    $crate::sql::Walk::Dependencies => $q::DEPENDENCIES,
                    $crate::sql::Walk::Dependents => $q::DEPENDENTS,
                };
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(transitive)
                    .bind($q::WALK_DEPTH)
                    .fetch_all(&self.$reader)
                    .await?;
                rows.iter().map(__RawSummary::decode).collect()
            }

            async fn statistics(&self) -> __Result<__StorageStats> {
                let row = sqlx::query($q::STATISTICS).fetch_one(&self.$reader).await?;
                __statistics_of(&row)
            }

            async fn popular(&self, limit: u32) -> __Result<Vec<__RawRecord>> {
                let rows = sqlx::query($q::POPULAR)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$reader)
                    .await?;
                __RawRecord::decode_all(&rows)
            }

            async fn content_location(&self, id: __SchemaId) -> __Result<Option<Option<String>>> {
                Ok(sqlx::query_scalar($q::CONTENT_LOCATION)
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await?)
            }

            async fn pending(&self, limit: u32) -> __Result<Vec<__PendingRow>> {
                Ok(sqlx::query_as($q::PENDING)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$writer)
                    .await?)
            }

            async fn count_pending(&self) -> __Result<u64> {
                let left: i64 = sqlx::query_scalar($q::COUNT_PENDING)
                    .fetch_one(&self.$writer)
                    .await?;
                Ok(__to_u64(left))
            }
        }

        #[async_trait::async_trait]
        impl $crate::sql::register::RegistrationReads for $tx {
            async fn find_identical(
                &mut self,
                subject: &__Subject,
                content: &__SchemaContent,
            ) -> __Result<Option<(__SchemaId, __SchemaVersion)>> {
                let row = sqlx::query($q::FIND_IDENTICAL)
                    .bind(subject.as_str())
                    .bind(content.checksum())
                    .bind(content.format().as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((sqlx::Row::try_get(&row, "id")?, __version_of(&row)?))),
                }
            }

            async fn version_exists(
                &mut self,
                subject: &__Subject,
                version: &__SchemaVersion,
            ) -> __Result<bool> {
                Ok(id_and_state(&mut *self.tx, subject, version)
                    .await?
                    .is_some())
            }

            async fn max_assigned(
                &mut self,
                subject: &__Subject,
            ) -> __Result<Option<__SchemaVersion>> {
                let row = sqlx::query($q::MAX_ASSIGNED)
                    .bind(subject.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?;
                row.as_ref().map(__version_of).transpose()
            }

            async fn resolve(
                &mut self,
                r: &__SchemaReference,
            ) -> __Result<Option<(__SchemaId, __SchemaState)>> {
                id_and_state(&mut *self.tx, &r.subject, &r.version).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::sql::WriteTx for $tx {
            async fn fetch_raw(&mut self, id: __SchemaId) -> __Result<Option<__RawRecord>> {
                find_id(&mut *self.tx, id).await
            }

            async fn state_for_update(&mut self, id: __SchemaId) -> __Result<Option<String>> {
                Ok(sqlx::query_scalar($q::STATE_FOR_UPDATE)
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn update_state(
                &mut self,
                id: __SchemaId,
                state: __SchemaState,
                now: chrono::DateTime<chrono::Utc>,
            ) -> __Result<()> {
                sqlx::query($q::UPDATE_STATE)
                    .bind(id)
                    .bind(state.as_str())
                    .bind($q::time(now))
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn find_version(
                &mut self,
                subject: &__Subject,
                version: &__SchemaVersion,
            ) -> __Result<Option<__RawRecord>> {
                find_version(&mut *self.tx, subject, version).await
            }

            async fn mark_version_deleted(
                &mut self,
                subject: &__Subject,
                version: &__SchemaVersion,
                now: chrono::DateTime<chrono::Utc>,
            ) -> __Result<Option<__RawRecord>> {
                let row = bind_version!(sqlx::query($q::MARK_VERSION_DELETED), subject, version)
                    .bind($q::time(now))
                    .fetch_optional(&mut *self.tx)
                    .await?;
                row.as_ref().map(__RawRecord::decode).transpose()
            }

            async fn mark_subject_deleted(
                &mut self,
                subject: &__Subject,
                now: chrono::DateTime<chrono::Utc>,
            ) -> __Result<Vec<__RawRecord>> {
                let rows = sqlx::query($q::MARK_SUBJECT_DELETED)
                    .bind(subject.as_str())
                    .bind($q::time(now))
                    .fetch_all(&mut *self.tx)
                    .await?;
                __RawRecord::decode_all(&rows)
            }

            async fn live_referrer(
                &mut self,
                id: __SchemaId,
            ) -> __Result<Option<$crate::sql::lifecycle::Referrer>> {
                Ok(sqlx::query_as($q::LIVE_REFERRER)
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn delete_row(&mut self, id: __SchemaId) -> __Result<()> {
                sqlx::query($q::DELETE_ROW)
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn rows_pointing_to(&mut self, key: &str) -> __Result<u64> {
                let n: i64 = sqlx::query_scalar($q::ROWS_POINTING_TO)
                    .bind(key)
                    .fetch_one(&mut *self.tx)
                    .await?;
                Ok(__to_u64(n))
            }

            async fn point_to_object(&mut self, id: __SchemaId, key: &str) -> __Result<()> {
                sqlx::query($q::POINT_TO_OBJECT)
                    .bind(id)
                    .bind(key)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn commit(self) -> __Result<()> {
                Ok(self.tx.commit().await?)
            }
        }
    };
}
pub(crate) use dialect_statements;

/// Binds the eighteen values of a new version's row, in the order both dialects' insert
/// statements number them: id, subject, major, minor, patch, pre, pre_key, format, inline
/// content, checksum, size, description, metadata, tags, references, time, object key, pending.
/// `$q` is the dialect's `queries` module (`time`, `metadata`, `tags`, `references`).
macro_rules! bind_version_row {
    ($query:expr, $row:expr, $q:ident) => {{
        let row = $row;
        let new = row.new;
        $query
            .bind(row.id)
            .bind(new.subject.as_str())
            .bind(row.version.major())
            .bind(row.version.minor())
            .bind(row.version.patch())
            .bind(row.version.pre())
            .bind(row.version.pre_key())
            .bind(new.content.format().as_str())
            .bind(row.inline_content())
            .bind(new.content.checksum())
            .bind($crate::sql::rows::to_i64(new.content.size_bytes()))
            .bind(new.description.as_deref())
            .bind($q::metadata(&new.metadata))
            .bind($q::tags(&new.tags))
            .bind($q::references(&new.references))
            .bind($q::time(row.now))
            .bind(row.object_key())
            .bind(row.pending())
    }};
}
pub(crate) use bind_version_row;
