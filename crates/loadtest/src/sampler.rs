//! Key sampling: which seeded id or subject an operation touches.
//!
//! Keys are kept in *popularity order* (index 0 is the hottest). A Zipf draw gives a rank
//! `1..=n` and rank `r` maps to index `r - 1`; a uniform draw ignores the order. The order itself
//! is a fixed pseudo-random permutation of the data set (see [`popularity_order`]), so the hot
//! keys are spread over subjects and creation times, and every run with the same data set has the
//! same hot keys.

use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_distr::Zipf;

use super::args::KeyDistribution;

/// Draws an index in `0..n`, index 0 being the most popular key.
#[derive(Debug, Clone)]
pub(crate) enum KeySampler {
    Uniform { n: usize },
    Zipf { zipf: Zipf<f64>, n: usize },
}

impl KeySampler {
    /// A sampler over `n ≥ 1` keys.
    pub(crate) fn new(
        distribution: KeyDistribution,
        exponent: f64,
        n: usize,
    ) -> anyhow::Result<KeySampler> {
        anyhow::ensure!(n > 0, "cannot sample from an empty set of keys");
        Ok(match distribution {
            KeyDistribution::Uniform => KeySampler::Uniform { n },
            KeyDistribution::Zipf => KeySampler::Zipf {
                zipf: Zipf::new(n as f64, exponent)
                    .map_err(|e| anyhow::anyhow!("invalid Zipf distribution: {e}"))?,
                n,
            },
        })
    }

    /// One index in `0..n`.
    #[inline]
    pub(crate) fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match self {
            KeySampler::Uniform { n } => rng.random_range(0..*n),
            KeySampler::Zipf { zipf, n } => {
                let rank = zipf.sample(rng) as usize; // 1..=n
                rank.saturating_sub(1).min(n - 1)
            }
        }
    }
}

/// Reorders `keys` into popularity order: a permutation fixed by the seed, so that runs over the
/// same data set agree on which keys are hot.
pub(crate) fn popularity_order<T>(keys: &mut [T]) {
    let mut rng = StdRng::seed_from_u64(0x10AD_7E57);
    keys.shuffle(&mut rng);
}

/// A fast per-task generator, seeded from the clock and the task number.
pub(crate) fn task_rng(task: usize) -> StdRng {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    StdRng::seed_from_u64(nanos ^ (task as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sampler: &KeySampler, n: usize, draws: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0usize; n];
        for _ in 0..draws {
            counts[sampler.sample(&mut rng)] += 1;
        }
        counts
    }

    #[test]
    fn zipf_stays_in_range_and_favours_rank_one() {
        let n = 50;
        let sampler = KeySampler::new(KeyDistribution::Zipf, 1.0, n).unwrap();
        let c = counts(&sampler, n, 20_000);
        assert!(c[0] > c[1] && c[1] > c[9] && c[9] > c[49], "{c:?}");
        // With s = 1 and n = 50, rank 1 has probability 1/H(50) ≈ 22 %.
        assert!((3_500..5_500).contains(&c[0]), "{}", c[0]);
    }

    #[test]
    fn uniform_covers_every_key() {
        let n = 20;
        let sampler = KeySampler::new(KeyDistribution::Uniform, 1.0, n).unwrap();
        let c = counts(&sampler, n, 20_000);
        assert!(c.iter().all(|&x| (700..1300).contains(&x)), "{c:?}");
    }

    #[test]
    fn a_single_key_always_comes_back() {
        for d in [KeyDistribution::Uniform, KeyDistribution::Zipf] {
            let sampler = KeySampler::new(d, 1.0, 1).unwrap();
            assert_eq!(counts(&sampler, 1, 100), [100]);
        }
        assert!(KeySampler::new(KeyDistribution::Zipf, 1.0, 0).is_err());
    }

    #[test]
    fn popularity_order_is_a_fixed_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        popularity_order(&mut a);
        popularity_order(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..100).collect::<Vec<_>>());
    }
}
