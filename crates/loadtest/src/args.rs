//! The command line of the load test ([`LoadTestArgs`]) and the small parsers behind it:
//! humane durations ([`parse_duration`]) and the operation mix ([`Mix`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The default operation mix: read-heavy, like a registry in production.
pub const DEFAULT_MIX: &str = "get_by_id=70,get_latest=15,get_by_version=10,search=4,register=1";

/// Options of the load test (`llm-schema-registry-load-test --help`; the same flags for
/// `cargo run --example load_test --` and `llm-schema-registry load-test`).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadTestArgs {
    /// Base URL of the running registry to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,

    /// How long the measured run lasts, e.g. `500ms`, `30s`, `2m`, `1h`, `1m30s`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Concurrent requests: worker tasks, each with one request in flight.
    #[arg(long, default_value_t = 64, value_parser = parse_positive_usize)]
    pub concurrency: usize,

    /// Stop after this many operations in total, or at --duration, whichever comes first.
    /// [default: unlimited]
    #[arg(long, value_parser = parse_positive_u64)]
    pub operations: Option<u64>,

    /// Open loop: release operations at this many per second in total, whatever the server's
    /// pace, instead of the closed loop (each worker sends its next request when the last
    /// answer is back). Latency then counts from when an operation was released, so a server
    /// that falls behind shows it as latency, not as fewer requests (no coordinated omission);
    /// --concurrency bounds the requests in flight. [default: closed loop]
    #[arg(long, value_parser = parse_positive_u64)]
    pub rate: Option<u64>,

    /// Relative weights of the operations: `get_by_id`, `get_latest`, `get_by_version`,
    /// `search`, `register` (a kind left out has weight 0).
    #[arg(long, default_value = DEFAULT_MIX)]
    pub mix: Mix,

    /// How keys (ids, subjects) are picked: `zipf` (a few hot keys, a long tail) or `uniform`.
    #[arg(long, value_enum, default_value_t = KeyDistribution::Zipf)]
    pub distribution: KeyDistribution,

    /// Exponent of the Zipf distribution (0 is uniform; higher is more skewed).
    #[arg(long, default_value_t = 1.0, value_parser = parse_exponent)]
    pub zipf_exponent: f64,

    /// Schema versions in the data set, seeded through the API before the run.
    #[arg(long, default_value_t = 1000, value_parser = parse_positive_usize)]
    pub schemas: usize,

    /// Subjects the seeded versions are spread over (at most --schemas).
    #[arg(long, default_value_t = 100, value_parser = parse_positive_usize)]
    pub subjects: usize,

    /// Prefix of the seeded subject names (`<prefix>00000`, `<prefix>00001`, …).
    #[arg(long, default_value = "loadtest.")]
    pub subject_prefix: String,

    /// Seed the data set, then stop without a run.
    #[arg(long, conflicts_with = "skip_seed")]
    pub seed_only: bool,

    /// Do not register anything before the run; use the versions already under the prefix.
    #[arg(long)]
    pub skip_seed: bool,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// No progress bar (it is also off when stdout is not a terminal).
    #[arg(long)]
    pub no_progress: bool,

    /// Approximate size in bytes of each seeded (and registered) JSON Schema document.
    #[arg(long, default_value_t = 512)]
    pub payload_bytes: usize,

    /// Timeout of each request, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = parse_positive_u64)]
    pub timeout_ms: u64,
}

/// How keys are drawn from the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Rank r drawn with probability ∝ 1/r^s (`--zipf-exponent`).
    Zipf,
}

/// The five operations a worker can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// `GET /api/v1/schemas/{id}`.
    GetById,
    /// `GET /api/v1/subjects/{subject}/versions/latest`.
    GetLatest,
    /// `GET /api/v1/subjects/{subject}/versions/{version}`.
    GetByVersion,
    /// `GET /api/v1/search?q=…&limit=10`.
    Search,
    /// `POST /api/v1/subjects/{subject}/versions` with new content.
    Register,
}

impl OpKind {
    /// Every kind, in table order; `kind as usize` indexes per-kind arrays.
    pub const ALL: [OpKind; 5] = [
        OpKind::GetById,
        OpKind::GetLatest,
        OpKind::GetByVersion,
        OpKind::Search,
        OpKind::Register,
    ];
    /// Number of kinds.
    pub const COUNT: usize = Self::ALL.len();

    /// The name used in `--mix` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::GetById => "get_by_id",
            OpKind::GetLatest => "get_latest",
            OpKind::GetByVersion => "get_by_version",
            OpKind::Search => "search",
            OpKind::Register => "register",
        }
    }

    fn from_name(name: &str) -> Option<OpKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Weights of the operations (`get_by_id=70,get_latest=15,…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; OpKind::COUNT],
    /// Running sums of `weights`, for picking with one uniform draw.
    cumulative: [u32; OpKind::COUNT],
}

impl Mix {
    /// A mix from per-kind weights (indexed like [`OpKind::ALL`]); at least one must be > 0.
    pub fn new(weights: [u32; OpKind::COUNT]) -> Result<Mix, String> {
        let mut cumulative = [0u32; OpKind::COUNT];
        let mut sum: u32 = 0;
        for (i, w) in weights.iter().enumerate() {
            sum = sum
                .checked_add(*w)
                .ok_or_else(|| "the weights add up to more than 4294967295".to_string())?;
            cumulative[i] = sum;
        }
        if sum == 0 {
            return Err("at least one operation needs a weight above 0".into());
        }
        Ok(Mix {
            weights,
            cumulative,
        })
    }

    /// The weight of `kind`.
    pub fn weight(&self, kind: OpKind) -> u32 {
        self.weights[kind as usize]
    }

    /// Sum of all weights (> 0).
    pub fn total(&self) -> u32 {
        self.cumulative[OpKind::COUNT - 1]
    }

    /// The kinds with a weight above 0.
    pub fn active(&self) -> impl Iterator<Item = OpKind> + '_ {
        OpKind::ALL.into_iter().filter(|k| self.weight(*k) > 0)
    }

    /// The kind for a uniform draw `r` in `0..total()`.
    pub fn pick(&self, r: u32) -> OpKind {
        let i = self.cumulative.partition_point(|&c| c <= r);
        OpKind::ALL[i.min(OpKind::COUNT - 1)]
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `name=weight` pairs separated by commas; unknown or repeated names are errors, a name
    /// left out has weight 0.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut weights = [0u32; OpKind::COUNT];
        let mut seen = [false; OpKind::COUNT];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected NAME=WEIGHT"))?;
            let (name, weight) = (name.trim(), weight.trim());
            let kind = OpKind::from_name(name).ok_or_else(|| {
                let names: Vec<_> = OpKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown operation `{name}` (expected one of {})",
                    names.join(", ")
                )
            })?;
            if std::mem::replace(&mut seen[kind as usize], true) {
                return Err(format!("operation `{name}` is given twice"));
            }
            weights[kind as usize] = weight
                .parse()
                .map_err(|_| format!("`{part}`: the weight must be a whole number ≥ 0"))?;
        }
        Mix::new(weights)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = OpKind::ALL
            .iter()
            .map(|k| format!("{}={}", k.name(), self.weight(*k)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for Mix {
    /// As a map `{"get_by_id": 70, …}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(OpKind::COUNT))?;
        for k in OpKind::ALL {
            map.serialize_entry(k.name(), &self.weight(k))?;
        }
        map.end()
    }
}

/// Parses a humane duration: a number followed by a unit (`ms`, `s`, `m`, `h`), several such
/// parts added together (`1m30s`), or a bare number of seconds. Fractions are allowed
/// (`1.5s`); the total must be above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (try 30s, 2m or 500ms)".into());
    }
    let bad = || format!("`{text}` is not a duration (try 30s, 2m, 500ms or 1m30s)");
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "" if rest.len() == s.len() && after.is_empty() => 1.0,
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * seconds_per_unit;
        rest = after;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("`{text}` is too long"));
    }
    let duration = Duration::from_secs_f64(total);
    if duration.is_zero() {
        return Err("the duration must be above zero".into());
    }
    Ok(duration)
}

/// Formats a duration the way [`parse_duration`] reads it (`1m30s`, `500ms`, `2.5s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) || ms == 0 {
        return format!("{}s", d.as_secs_f64());
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) {
        return format!("{}s", d.as_secs_f64());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn parse_positive_usize(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}`: expected a whole number ≥ 1")),
    }
}

fn parse_positive_u64(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}`: expected a whole number ≥ 1")),
    }
}

fn parse_exponent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("`{s}`: expected a number ≥ 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        let cases = [
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("500ms", Duration::from_millis(500)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5s", Duration::from_millis(1500)),
            ("45", Duration::from_secs(45)),
            (" 10s ", Duration::from_secs(10)),
            ("2min", Duration::from_secs(120)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in [
            "",
            "s",
            "10x",
            "ten seconds",
            "0s",
            "0",
            "-5s",
            "5 s",
            "1..2s",
            "10s5",
            "1e3s",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn durations_format_back() {
        for text in ["500ms", "30s", "2m", "1m30s", "1h", "1h1m1s", "1.5s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn the_default_mix_parses() {
        let mix: Mix = DEFAULT_MIX.parse().unwrap();
        assert_eq!(mix.weight(OpKind::GetById), 70);
        assert_eq!(mix.weight(OpKind::GetLatest), 15);
        assert_eq!(mix.weight(OpKind::GetByVersion), 10);
        assert_eq!(mix.weight(OpKind::Search), 4);
        assert_eq!(mix.weight(OpKind::Register), 1);
        assert_eq!(mix.total(), 100);
        assert_eq!(mix.to_string(), DEFAULT_MIX);
        assert_eq!(mix.active().count(), 5);
    }

    #[test]
    fn mixes_with_omitted_kinds_and_spaces() {
        let mix: Mix = " search = 3 , register=1,".parse().unwrap();
        assert_eq!(mix.weight(OpKind::Search), 3);
        assert_eq!(mix.weight(OpKind::Register), 1);
        assert_eq!(mix.weight(OpKind::GetById), 0);
        assert_eq!(
            mix.active().collect::<Vec<_>>(),
            [OpKind::Search, OpKind::Register]
        );
    }

    #[test]
    fn bad_mixes_are_refused() {
        for text in [
            "",
            "get_by_id",
            "get_by_id=x",
            "get_by_id=-1",
            "fetch=3",
            "get_by_id=0,search=0",
            "search=1,search=2",
            "get_by_id=4294967295,search=1",
        ] {
            assert!(text.parse::<Mix>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn picking_follows_the_weights() {
        let mix: Mix = "get_by_id=2,search=0,register=3".parse().unwrap();
        let picks: Vec<OpKind> = (0..mix.total()).map(|r| mix.pick(r)).collect();
        assert_eq!(
            picks,
            [
                OpKind::GetById,
                OpKind::GetById,
                OpKind::Register,
                OpKind::Register,
                OpKind::Register
            ]
        );
    }

    #[test]
    fn mix_serializes_as_a_map() {
        let mix: Mix = "search=1".parse().unwrap();
        let v = serde_json::to_value(&mix).unwrap();
        assert_eq!(v["search"], 1);
        assert_eq!(v["get_by_id"], 0);
    }
}
