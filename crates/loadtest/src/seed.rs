//! The data set: seeding it through the API, and reading it back as the catalogue of keys the
//! workers draw from.
//!
//! Subject `i` (for `i < --subjects`) is named `<prefix><i:05>` and receives
//! `--schemas / --subjects` versions (the remainder going to the first subjects), registered
//! round-robin over the subjects. Version `k` of
//! a subject has deterministic content, so seeding is idempotent: a document the registry already
//! holds comes back `200` instead of `201` and creates nothing. A subject that already has at
//! least its share of live versions (`GET /api/v1/subjects?prefix=`) is not touched at all.
//!
//! After seeding, [`load_catalogue`] lists every live version of those subjects, subject by
//! subject (`GET /api/v1/search?subject_prefix=<subject>`, 1000 per page): ids, subjects and
//! versions, which also picks up versions that earlier runs' `register` operations added.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::args::LoadTestArgs;
use super::http::{describe_transport_error, encode_segment};
use super::progress;
use super::sampler::popularity_order;

/// Page size of the listing calls (the API's maximum).
const PAGE: usize = 1000;
/// Most registrations in flight while seeding: writes serialise in the database anyway.
const MAX_SEED_CONCURRENCY: usize = 32;
/// Attempts per registration when the server answers 429/502/503/504 or the request fails.
const SEED_ATTEMPTS: u32 = 5;

/// One seeded version, as the workers address it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub subject: String,
    pub version: String,
}

/// The keys of the run, each list in popularity order (index 0 hottest).
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalogue {
    pub entries: Vec<Entry>,
    pub subjects: Vec<String>,
}

/// What seeding did.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// `--skip-seed`: nothing was registered.
    pub skipped: bool,
    /// Subjects of the data set.
    pub subjects: usize,
    /// Versions the data set should have (`--schemas`).
    pub target_versions: usize,
    /// Subjects that already had their share of versions and were left alone.
    pub subjects_reused: usize,
    /// Registration requests sent.
    pub registrations: u64,
    /// Of those, versions created (201).
    pub created: u64,
    /// Of those, documents the registry already held (200).
    pub already_present: u64,
    /// Time spent registering, seconds.
    pub secs: f64,
    /// Registrations per second.
    pub registrations_per_sec: f64,
    /// Registrations in flight at once.
    pub concurrency: usize,
    /// Live versions found for the run (ids the workers draw from).
    pub catalogue_versions: usize,
    /// Subjects found for the run.
    pub catalogue_subjects: usize,
    /// Time spent listing them, seconds.
    pub catalogue_secs: f64,
}

/// The name of seeded subject `i`.
pub(crate) fn subject_name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:05}")
}

/// How many versions subject `i` of `subjects` receives out of `schemas`.
pub(crate) fn versions_for(i: usize, schemas: usize, subjects: usize) -> usize {
    schemas / subjects + usize::from(i < schemas % subjects)
}

/// A registration body: a JSON Schema document of about `payload_bytes` bytes whose content is
/// made unique by `tag`, with a description and tag that `search` can find.
pub(crate) fn registration_body(subject: &str, tag: &str, payload_bytes: usize) -> Value {
    json!({
        "schema": document(subject, tag, payload_bytes),
        "description": format!("loadtest document {tag}"),
        "tags": ["loadtest"],
    })
}

/// The document: a small object schema, padded with a description to `payload_bytes`
/// canonical bytes (when that is larger than the skeleton).
fn document(subject: &str, tag: &str, payload_bytes: usize) -> Value {
    let mut doc = json!({
        "$comment": format!("loadtest {subject} {tag}"),
        "title": "LoadTestEvent",
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "created_at": {"type": "string", "format": "date-time"},
            "amount": {"type": "number", "minimum": 0},
            "labels": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "created_at"],
        "additionalProperties": false,
        "description": "",
    });
    let skeleton = serde_json::to_string(&doc).map(|s| s.len()).unwrap_or(0);
    doc["description"] = Value::String(filler(payload_bytes.saturating_sub(skeleton)));
    doc
}

/// `len` bytes of ASCII words.
fn filler(len: usize) -> String {
    const WORDS: &str = "loadtest schema registry payload padding field value event record ";
    WORDS.chars().cycle().take(len).collect()
}

#[derive(Deserialize)]
struct SubjectPage {
    subjects: Vec<SubjectRow>,
    total: usize,
}

#[derive(Deserialize)]
struct SubjectRow {
    subject: String,
    version_count: usize,
}

#[derive(Deserialize)]
struct SearchPage {
    results: Vec<SearchHit>,
    total: usize,
}

#[derive(Deserialize)]
struct SearchHit {
    id: String,
    subject: String,
    version: String,
}

/// Live version counts of the subjects under `prefix`.
async fn existing_counts(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
) -> anyhow::Result<HashMap<String, usize>> {
    let url = format!("{base}/api/v1/subjects");
    let mut counts = HashMap::new();
    let mut offset = 0usize;
    loop {
        let query = [
            ("prefix", prefix.to_string()),
            ("limit", PAGE.to_string()),
            ("offset", offset.to_string()),
        ];
        let page: SubjectPage = get_json(client.get(&url).query(&query), &url).await?;
        let got = page.subjects.len();
        counts.extend(
            page.subjects
                .into_iter()
                .map(|r| (r.subject, r.version_count)),
        );
        offset += got;
        if got == 0 || offset >= page.total {
            return Ok(counts);
        }
    }
}

/// Registers what the data set lacks (see the module docs).
pub(crate) async fn seed(
    client: &reqwest::Client,
    base: &str,
    args: &LoadTestArgs,
    show_progress: bool,
) -> anyhow::Result<SeedReport> {
    let (prefix, schemas, subjects) = (args.subject_prefix.as_str(), args.schemas, args.subjects);
    let payload_bytes = args.payload_bytes;
    let existing = existing_counts(client, base, prefix)
        .await
        .context("cannot list the existing subjects")?;
    let mut todo: Vec<(String, usize)> = Vec::new();
    let mut subjects_reused = 0;
    for i in 0..subjects {
        let name = subject_name(prefix, i);
        let want = versions_for(i, schemas, subjects);
        if existing.get(&name).copied().unwrap_or(0) >= want {
            subjects_reused += 1;
        } else {
            todo.push((name, want));
        }
    }
    let work = interleave(&todo);
    let concurrency = args.concurrency.clamp(1, MAX_SEED_CONCURRENCY);
    let bar = progress::seeding_bar(work.len() as u64, show_progress);
    let started = Instant::now();
    let registrations = work.len() as u64;
    let mut results = futures::stream::iter(work)
        .map(|(subject, k)| {
            let body = registration_body(&subject, &format!("seed #{k}"), payload_bytes);
            let url = format!(
                "{base}/api/v1/subjects/{}/versions",
                encode_segment(&subject)
            );
            async move { register_with_retry(client, &url, &body).await }
        })
        .buffer_unordered(concurrency);
    let (mut created, mut already_present) = (0u64, 0u64);
    while let Some(status) = results.next().await {
        match status.context("seeding failed")? {
            StatusCode::CREATED => created += 1,
            _ => already_present += 1,
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    Ok(SeedReport {
        skipped: false,
        subjects,
        target_versions: schemas,
        subjects_reused,
        registrations,
        created,
        already_present,
        secs,
        registrations_per_sec: rate(registrations, secs),
        concurrency,
        catalogue_versions: 0,
        catalogue_subjects: 0,
        catalogue_secs: 0.0,
    })
}

/// Registrations in round-robin order over the subjects (version 0 of every subject, then
/// version 1, ...), so the requests in flight go to different subjects, as independent clients'
/// would, rather than queueing on one subject's lock.
fn interleave(todo: &[(String, usize)]) -> Vec<(String, usize)> {
    let rounds = todo.iter().map(|(_, want)| *want).max().unwrap_or(0);
    let mut work = Vec::with_capacity(todo.iter().map(|(_, want)| want).sum());
    for k in 0..rounds {
        work.extend(
            todo.iter()
                .filter(|(_, want)| k < *want)
                .map(|(name, _)| (name.clone(), k)),
        );
    }
    work
}

/// The report of a `--skip-seed` run.
pub(crate) fn skipped(schemas: usize, subjects: usize) -> SeedReport {
    SeedReport {
        skipped: true,
        subjects,
        target_versions: schemas,
        subjects_reused: 0,
        registrations: 0,
        created: 0,
        already_present: 0,
        secs: 0.0,
        registrations_per_sec: 0.0,
        concurrency: 0,
        catalogue_versions: 0,
        catalogue_subjects: 0,
        catalogue_secs: 0.0,
    }
}

/// One registration, retried with a short backoff on answers that say "try again"; returns
/// 201 or 200.
async fn register_with_retry(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> anyhow::Result<StatusCode> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let problem = match client.post(url).json(body).send().await {
            Ok(response) => {
                let status = response.status();
                if status == StatusCode::CREATED || status == StatusCode::OK {
                    return Ok(status);
                }
                let text = response.text().await.unwrap_or_default();
                let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                let problem = format!("POST {url} answered {status}: {text}");
                if !retryable {
                    anyhow::bail!(problem);
                }
                problem
            }
            Err(e) => format!("POST {url}: {}", describe_transport_error(&e)),
        };
        if attempt >= SEED_ATTEMPTS {
            anyhow::bail!("{problem} (after {attempt} attempts)");
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
    }
}

/// Lists the live versions of the data set's subjects (see the module docs), in popularity
/// order; returns the catalogue and the seconds the listing took.
///
/// One subject at a time (`subject_prefix=<subject>`, several subjects in flight), not one
/// listing of the whole prefix: offset paging over the whole data set re-reads every earlier
/// page on each request, which made a 200k-version listing take minutes. A subject's own
/// listing is a short index range.
pub(crate) async fn load_catalogue(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    subjects: usize,
) -> anyhow::Result<(Catalogue, f64)> {
    let started = Instant::now();
    let url = format!("{base}/api/v1/search");
    let mut listings = futures::stream::iter((0..subjects).map(|i| subject_name(prefix, i)))
        .map(|subject| list_subject(client, &url, subject))
        .buffer_unordered(LISTING_CONCURRENCY);
    let mut seen_ids = HashSet::new();
    let mut entries = Vec::new();
    while let Some(listed) = listings.next().await {
        for entry in listed.context("cannot list the seeded versions")? {
            if seen_ids.insert(entry.id.clone()) {
                entries.push(entry);
            }
        }
    }
    // Sorted first so that the popularity order depends on the data set only.
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    let mut subjects: Vec<String> = entries
        .iter()
        .map(|e| e.subject.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    subjects.sort();
    popularity_order(&mut entries);
    popularity_order(&mut subjects);
    Ok((
        Catalogue { entries, subjects },
        started.elapsed().as_secs_f64(),
    ))
}

/// Subjects listed at once while building the catalogue.
const LISTING_CONCURRENCY: usize = 16;

/// The live versions of one subject (a prefix listing, keeping the exact subject only).
async fn list_subject(
    client: &reqwest::Client,
    url: &str,
    subject: String,
) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    loop {
        let query = [
            ("subject_prefix", subject.clone()),
            ("limit", PAGE.to_string()),
            ("offset", offset.to_string()),
        ];
        let page: SearchPage = get_json(client.get(url).query(&query), url).await?;
        let got = page.results.len();
        entries.extend(
            page.results
                .into_iter()
                .filter(|hit| hit.subject == subject)
                .map(|hit| Entry {
                    id: hit.id,
                    subject: hit.subject,
                    version: hit.version,
                }),
        );
        offset += got;
        if got == 0 || offset >= page.total {
            return Ok(entries);
        }
    }
}

/// Sends `request` and parses a 2xx JSON answer.
async fn get_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<T> {
    let response = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {}", describe_transport_error(&e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {}", describe_transport_error(&e)))?;
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("GET {url}: unexpected answer"))
}

/// `count / secs`, 0 when no time passed.
pub(crate) fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_spread_over_subjects() {
        let shares: Vec<usize> = (0..3).map(|i| versions_for(i, 10, 3)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(
            (0..100).map(|i| versions_for(i, 1000, 100)).sum::<usize>(),
            1000
        );
    }

    #[test]
    fn documents_have_the_requested_size_and_differ_by_tag() {
        for size in [512, 2048] {
            let doc = document("loadtest.00001", "seed #3", size);
            assert_eq!(serde_json::to_string(&doc).unwrap().len(), size);
        }
        assert_ne!(document("s", "a", 512), document("s", "b", 512));
        assert_eq!(document("s", "a", 512), document("s", "a", 512));
        // Smaller than the skeleton: the skeleton alone.
        assert!(serde_json::to_string(&document("s", "a", 1)).unwrap().len() > 1);
    }

    #[test]
    fn seeding_goes_round_robin_over_subjects() {
        let todo = vec![
            ("a".to_string(), 2),
            ("b".to_string(), 3),
            ("c".to_string(), 1),
        ];
        let order: Vec<(String, usize)> = interleave(&todo);
        let expected = [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("b", 2)];
        assert_eq!(order, expected.map(|(s, k)| (s.to_string(), k)).to_vec());
    }

    #[test]
    fn subject_names_sort_in_index_order() {
        assert_eq!(subject_name("loadtest.", 7), "loadtest.00007");
        assert!(subject_name("p", 9) < subject_name("p", 10));
    }
}
