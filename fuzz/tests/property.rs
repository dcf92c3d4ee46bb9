//! The fuzz targets as a bounded property test on stable: every seed of the corpus, then random
//! mutations of them (a deterministic PRNG), through every parser entry point; any panic (one
//! that escapes a parser, or one its guard caught) or failed check fails the test with the input
//! that caused it.
//!
//! `FUZZ_SECONDS` (default 5) bounds the time per target, `FUZZ_ITERATIONS` (default 200,000)
//! the inputs per target, `FUZZ_SEED` picks the random sequence. Every panic's site is listed at
//! the end.

use std::time::{Duration, Instant};

use schema_registry_fuzz::{mutate, panic_sites, seeds, try_check, Prng, Target};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn no_parser_panics_on_the_corpus_or_its_mutations() {
    let seconds = env_u64("FUZZ_SECONDS", 5);
    let iterations = env_u64("FUZZ_ITERATIONS", 200_000);
    let mut rng = Prng::new(env_u64("FUZZ_SEED", 0x5eed_f00d));
    let mut failures = Vec::new();
    for target in Target::ALL {
        let corpus = seeds(target);
        assert!(!corpus.is_empty(), "{} has no seeds", target.name());
        let mut pool = corpus.clone();
        let started = Instant::now();
        let mut runs = 0u64;
        for seed in &corpus {
            runs += 1;
            if let Err(message) = try_check(target, seed) {
                failures.push(format!(
                    "{}: seed {:?}: {message}",
                    target.name(),
                    String::from_utf8_lossy(seed)
                ));
            }
        }
        while runs < iterations && started.elapsed() < Duration::from_secs(seconds) {
            let input = &pool[rng.below(pool.len())];
            let other = &pool[rng.below(pool.len())];
            let mutant = mutate(&mut rng, input, other);
            runs += 1;
            if let Err(message) = try_check(target, &mutant) {
                failures.push(format!(
                    "{}: input {:?}: {message}",
                    target.name(),
                    String::from_utf8_lossy(&mutant)
                ));
                if failures.len() > 20 {
                    break;
                }
            }
            // Keep some mutants, so that mutations build on each other; favour those that are
            // still JSON, which get past the first check of the content parsers.
            let keep = if serde_json::from_slice::<serde_json::Value>(&mutant).is_ok() {
                2
            } else {
                16
            };
            if pool.len() < 4096 && rng.below(keep) == 0 {
                pool.push(mutant);
            }
        }
        eprintln!(
            "fuzz {}: {runs} inputs in {:.1}s",
            target.name(),
            started.elapsed().as_secs_f64()
        );
    }
    // The default hook again, for this test's own verdict.
    drop(std::panic::take_hook());
    for (site, count) in panic_sites() {
        eprintln!("panic ({count}x) at {site}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
