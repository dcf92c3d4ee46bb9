//! What the fuzz targets check, shared by the libFuzzer binaries (`fuzz_targets/`, nightly, via
//! cargo-fuzz) and the bounded property test on stable (`tests/property.rs`).
//!
//! Every parser entry point that takes client input must answer `Ok` or a `DomainError`, never
//! panic, and what it accepts must hold up: parsed again it gives the same value. A panic
//! inside a dependency that the parser itself catches (the Avro guard) keeps the server up, but
//! it still fails the check: the validation before the call should have refused that input with
//! a precise message. Every panic's site is recorded ([`panic_sites`]) for the run's report.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use schema_registry_core::{Bump, SchemaContent, SchemaFormat, SchemaVersion, Subject};
use serde_json::Value;

/// One parser entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ContentJsonSchema,
    ContentAvro,
    ContentProtobuf,
    Subject,
    Version,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::ContentJsonSchema,
        Target::ContentAvro,
        Target::ContentProtobuf,
        Target::Subject,
        Target::Version,
    ];

    /// The name of its fuzz target and of its corpus directory.
    pub fn name(self) -> &'static str {
        match self {
            Target::ContentJsonSchema => "content_json_schema",
            Target::ContentAvro => "content_avro",
            Target::ContentProtobuf => "content_protobuf",
            Target::Subject => "subject",
            Target::Version => "version",
        }
    }
}

/// Feeds `data` to the target's parser and checks what it answers. Panics when a check fails
/// or a parser panics through.
pub fn check(target: Target, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // every entry point takes a `str` (a JSON string, a path segment)
    };
    match target {
        Target::ContentJsonSchema => {
            content(SchemaFormat::JsonSchema, &Value::String(text.to_string()));
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                content(SchemaFormat::JsonSchema, &value);
            }
        }
        Target::ContentAvro => {
            content(SchemaFormat::Avro, &Value::String(text.to_string()));
            if let Ok(value) = serde_json::from_str::<Value>(text) {
                content(SchemaFormat::Avro, &value);
            }
        }
        Target::ContentProtobuf => {
            content(SchemaFormat::Protobuf, &Value::String(text.to_string()))
        }
        Target::Subject => {
            if let Ok(subject) = Subject::parse(text) {
                assert_eq!(subject.as_str(), text, "a subject is kept as given");
                assert!(text.len() <= 255);
                let json = serde_json::to_string(&subject).expect("serialises");
                let back: Subject = serde_json::from_str(&json).expect("deserialises");
                assert_eq!(back, subject);
            }
        }
        Target::Version => {
            if let Ok(version) = SchemaVersion::parse(text) {
                let again = SchemaVersion::parse(&version.to_string()).expect("its own text");
                assert_eq!(again, version);
                let parts = SchemaVersion::from_parts(
                    version.major(),
                    version.minor(),
                    version.patch(),
                    version.pre(),
                )
                .expect("its own parts");
                assert_eq!(parts, version);
                for bump in [Bump::Major, Bump::Minor, Bump::Patch] {
                    if let Ok(next) = version.bump(bump) {
                        assert!(next > version, "{version} {bump:?} gave {next}");
                    }
                }
            }
        }
    }
}

/// A document `format` accepts is canonical: its checksum verifies and parsing its text again
/// gives the same content.
fn content(format: SchemaFormat, document: &Value) {
    if let Ok(parsed) = SchemaContent::parse(format, document) {
        assert!(parsed.verify(), "the checksum covers the canonical text");
        let again = SchemaContent::parse(format, &Value::String(parsed.text().to_string()))
            .unwrap_or_else(|e| panic!("canonical text {:?} refused: {e}", parsed.text()));
        assert_eq!(again, parsed, "canonical form is a fixed point");
    }
}

/// Where panics happened (file:line:col and message, cut short), with how many times, including
/// those a parser caught.
pub fn panic_sites() -> BTreeMap<String, u64> {
    SITES.lock().map(|s| s.clone()).unwrap_or_default()
}

static SITES: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

thread_local! {
    static LAST: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Replaces the panic hook, once, with one that records the site instead of printing it (a
/// caught panic in a dependency would otherwise flood the output).
pub fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let site = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let short: String = message.chars().take(120).collect();
            let key = format!("{site}: {short}");
            LAST.with(|l| *l.borrow_mut() = format!("{site}: {message}"));
            if let Ok(mut sites) = SITES.lock() {
                *sites.entry(key).or_default() += 1;
            }
        }));
    });
}

/// [`check`], with a panic returned as its message: one that escaped, and also one that a
/// parser's guard caught, because the checks before the dependency's call should have refused
/// that input precisely (a caught panic is a finding, not a crash of the server).
pub fn try_check(target: Target, data: &[u8]) -> Result<(), String> {
    quiet_panics();
    LAST.with(|l| l.borrow_mut().clear());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(target, data)));
    let last = LAST.with(|l| l.borrow().clone());
    match outcome {
        Err(_) => Err(last),
        Ok(()) if !last.is_empty() => Err(format!("caught by the parser's guard: {last}")),
        Ok(()) => Ok(()),
    }
}

/// The fuzz targets' body: a panic that escapes [`check`] is printed and aborts, which
/// libFuzzer reports as a crash with its input.
pub fn run(target: Target, data: &[u8]) {
    if let Err(message) = try_check(target, data) {
        eprintln!("panic in the {} parser: {message}", target.name());
        std::process::abort();
    }
}

/// The seed corpus of `target`: every file in `fuzz/corpus/<name>/`, and in
/// `fuzz/target/corpus/<name>/` when there is one (what libFuzzer kept in earlier runs), so that
/// the property test replays it.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let kept = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/corpus")
        .join(target.name());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .chain(std::fs::read_dir(&kept).into_iter().flatten())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("seed"))
        .collect()
}

pub fn corpus_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target.name())
}

/// A small deterministic PRNG (xorshift64*), so that a run is reproducible from its seed.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Fragments that steer mutations towards the parsers' interesting paths.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "-1",
    "0",
    "1e308",
    "99999999999999999999",
    "\\u0000",
    "\\ud800",
    "\"type\"",
    "\"name\"",
    "\"namespace\"",
    "\"fields\"",
    "\"symbols\"",
    "\"aliases\"",
    "\"items\"",
    "\"values\"",
    "\"default\"",
    "\"size\"",
    "\"logicalType\"",
    "\"precision\"",
    "\"scale\"",
    "\"record\"",
    "\"enum\"",
    "\"fixed\"",
    "\"array\"",
    "\"map\"",
    "\"error\"",
    "\"decimal\"",
    "\"uuid\"",
    "\"duration\"",
    "\"date\"",
    "\"1R\"",
    "\"my-record\"",
    "\"a.b\"",
    "\".x\"",
    "\"\"",
    "\"$ref\"",
    ".",
    "-",
    "+",
    "rc.1",
    "\u{0}",
    "\u{200B}",
    "\u{061C}",
    "\u{E0041}",
    "\u{FE0F}",
    "\u{3164}",
    "é",
    "名",
    "🚀",
    " ",
    "\n",
];

/// One random mutation of `input`, sometimes spliced with `other`.
pub fn mutate(rng: &mut Prng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.below(out.len() + 1)
        };
        match rng.below(7) {
            0 if !out.is_empty() => {
                // Mostly printable ASCII: a random byte is rarely valid UTF-8 in context.
                let i = rng.below(out.len());
                out[i] = match rng.below(8) {
                    0 => rng.next_u64() as u8,
                    _ => b' ' + rng.below(95) as u8,
                };
            }
            1 => out.insert(at, b' ' + rng.below(95) as u8),
            2 if !out.is_empty() => {
                let len = 1 + rng.below(out.len().min(16));
                let start = rng.below(out.len() - len + 1);
                out.drain(start..start + len);
            }
            3 if !out.is_empty() => {
                let len = 1 + rng.below(out.len().min(32));
                let start = rng.below(out.len() - len + 1);
                let piece = out[start..start + len].to_vec();
                out.splice(at..at, piece);
            }
            4 if !other.is_empty() => {
                let start = rng.below(other.len());
                let len = 1 + rng.below((other.len() - start).min(64));
                out.splice(at..at, other[start..start + len].iter().copied());
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.bytes());
            }
        }
    }
    out.truncate(64 * 1024);
    out
}
