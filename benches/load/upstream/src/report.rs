//! What the rounds measured, reduced to medians over rounds and ratios against storage
//! mode, and printed as Markdown (with every round's values, so the medians can be
//! checked).

use std::collections::BTreeMap;

use crate::gateway::Mode;
use crate::load::{Failures, Pass};
use crate::Knobs;

/// A class of request, for the round-trip counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Cold,
    Warm(usize),
    Archive(usize),
}

impl Class {
    fn label(self) -> String {
        match self {
            Class::Cold => "cold single file".to_owned(),
            Class::Warm(c) => format!("warm single file, C={c}"),
            Class::Archive(c) => format!("whole archive, C={c}"),
        }
    }
}

/// Requests of one class to one gateway, and what they cost elsewhere, over all rounds.
#[derive(Default)]
pub struct Trips {
    pub requests: u64,
    /// GetObject requests the S3 server served.
    pub gets: u64,
    /// HeadObject requests the S3 server served.
    pub heads: u64,
    /// Requests the backend received.
    pub backend: u64,
    /// CPU seconds the gateway process used (user + system, all threads).
    pub cpu: f64,
}

/// One warm pass: requests/s, p50 ms, p99 ms.
type WarmRound = (f64, f64, f64);

pub struct Report {
    knobs: Vec<(&'static str, String)>,
    modes: Vec<Mode>,
    rounds: usize,
    /// Per gateway: each round's (p50, p90) in ms.
    cold: BTreeMap<usize, Vec<(f64, f64)>>,
    /// Per (C, gateway): each round's (requests/s, p50 ms, p99 ms).
    warm: BTreeMap<(usize, usize), Vec<WarmRound>>,
    /// Per (C, gateway): each round's MB/s (10^6 B/s).
    archive: BTreeMap<(usize, usize), Vec<f64>>,
    /// Each round's (archive route p50, p90, job lookup p50, p90) in ms.
    backend: Vec<(f64, f64, f64, f64)>,
    pub trips: BTreeMap<(Class, usize), Trips>,
    /// Per gateway: the `Range` of each storage read of its first cold request.
    pub first_cold_ranges: BTreeMap<usize, Vec<Option<String>>>,
    pub cold_archive_bytes: (usize, usize),
    pub big_archive_bytes: usize,
    pub peak_rss_kib: BTreeMap<usize, u64>,
    pub alive: BTreeMap<usize, bool>,
    /// Load average at the start and at the end.
    pub load: (String, String),
    pub seconds: f64,
}

/// Nearest-rank percentile of sorted µs, in ms.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn list(values: impl IntoIterator<Item = String>) -> String {
    values.into_iter().collect::<Vec<_>>().join(" ")
}

impl Report {
    pub fn new(knobs: &Knobs, modes: Vec<Mode>) -> Self {
        let concs = |c: &[usize]| list(c.iter().map(usize::to_string));
        Report {
            knobs: vec![
                ("ROUNDS", knobs.rounds.to_string()),
                ("COLD_PER_ROUND", knobs.cold_per_round.to_string()),
                ("ENTRIES", knobs.entries.to_string()),
                ("WARM_SECS", knobs.warm_secs.to_string()),
                ("WARM_CONCS", concs(&knobs.warm_concs)),
                ("ARCHIVE_MB", knobs.archive_mib.to_string()),
                ("ARCHIVE_CONCS", concs(&knobs.archive_concs)),
                ("BACKEND_SAMPLES", knobs.backend_samples.to_string()),
                ("NO_CACHE", u8::from(knobs.no_cache).to_string()),
                ("S3_RELAY", u8::from(knobs.relay).to_string()),
                ("PEERS", u8::from(knobs.peers).to_string()),
                ("TEXT_MB", knobs.text_mib.to_string()),
                ("RSS_CONCS", concs(&knobs.rss_concs)),
            ],
            modes,
            rounds: knobs.rounds,
            cold: BTreeMap::new(),
            warm: BTreeMap::new(),
            archive: BTreeMap::new(),
            backend: Vec::new(),
            trips: BTreeMap::new(),
            first_cold_ranges: BTreeMap::new(),
            cold_archive_bytes: (0, 0),
            big_archive_bytes: 0,
            peak_rss_kib: BTreeMap::new(),
            alive: BTreeMap::new(),
            load: Default::default(),
            seconds: 0.0,
        }
    }

    pub fn add_cold(&mut self, g: usize, pass: &Pass) {
        let s = sorted(pass.latencies.clone());
        self.cold
            .entry(g)
            .or_default()
            .push((pct(&s, 0.5), pct(&s, 0.9)));
    }

    pub fn add_warm(&mut self, g: usize, conc: usize, pass: &Pass) {
        let s = sorted(pass.latencies.clone());
        let rps = s.len() as f64 / pass.wall.as_secs_f64();
        self.warm
            .entry((conc, g))
            .or_default()
            .push((rps, pct(&s, 0.5), pct(&s, 0.99)));
    }

    pub fn add_archive(&mut self, g: usize, conc: usize, bytes: usize, pass: &Pass) {
        let mbs = (pass.latencies.len() * bytes) as f64 / pass.wall.as_secs_f64() / 1e6;
        self.archive.entry((conc, g)).or_default().push(mbs);
    }

    pub fn add_backend(&mut self, routes: Vec<u64>, lookups: Vec<u64>) {
        let (r, l) = (sorted(routes), sorted(lookups));
        self.backend
            .push((pct(&r, 0.5), pct(&r, 0.9), pct(&l, 0.5), pct(&l, 0.9)));
    }

    fn label(&self, g: usize) -> &'static str {
        self.modes[g].label()
    }

    /// The gateway index of storage mode, the baseline of every ratio.
    fn baseline(&self) -> usize {
        self.modes.iter().position(|&m| m == Mode::Storage).unwrap()
    }

    pub fn print(&self, failures: &Failures) {
        let base = self.baseline();
        let gateways: Vec<usize> = (0..self.modes.len()).collect();
        println!("## Storage mode vs upstream mode\n");
        println!(
            "{} rounds, {:.0} s; knobs: {}",
            self.rounds,
            self.seconds,
            list(self.knobs.iter().map(|(k, v)| format!("{k}=\"{v}\"")))
        );
        println!(
            "load average (1, 5, 15 min): {} at the start, {} at the end; {} cores",
            self.load.0,
            self.load.1,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "cold archives: {}–{} bytes; large archive: {} bytes; failed checks: **{}**; gateways alive at the end: {}\n",
            self.cold_archive_bytes.0,
            self.cold_archive_bytes.1,
            self.big_archive_bytes,
            failures.count,
            list(gateways.iter().map(|&g| format!("{}={}", self.label(g), self.alive.get(&g).copied().unwrap_or(false))))
        );
        if !failures.examples.is_empty() {
            println!("Failed checks (first few):");
            for e in &failures.examples {
                println!("- {e}");
            }
            println!();
        }

        println!("### Cold single file, ms (median over rounds of each round's p50 / p90)\n");
        println!("| gateway | p50 | p90 | p50 / storage | p90 / storage |");
        println!("|---|---:|---:|---:|---:|");
        let cold_med = |g: usize| {
            let r = &self.cold[&g];
            (median(r.iter().map(|x| x.0)), median(r.iter().map(|x| x.1)))
        };
        for &g in &gateways {
            let (p50, p90) = cold_med(g);
            let (b50, b90) = cold_med(base);
            println!(
                "| {} | {p50:.2} | {p90:.2} | {:.2} | {:.2} |",
                self.label(g),
                p50 / b50,
                p90 / b90
            );
        }

        println!("\n### Backend answers asked directly, ms (median over rounds of each round's p50 / p90)\n");
        println!("| request | p50 | p90 |\n|---|---:|---:|");
        let b = |i: usize| median(self.backend.iter().map(|x| [x.0, x.1, x.2, x.3][i]));
        println!(
            "| archive route `GET …/jobs/:id/artifacts` → 302 (upstream mode's locate) | {:.3} | {:.3} |",
            b(0),
            b(1)
        );
        println!(
            "| job lookup `GET …/jobs/:id` → 200 JSON (storage mode's lookup) | {:.3} | {:.3} |",
            b(2),
            b(3)
        );
        println!(
            "| difference (route − lookup), medians of per-round differences | {:.3} | {:.3} |",
            median(self.backend.iter().map(|x| x.0 - x.2)),
            median(self.backend.iter().map(|x| x.1 - x.3))
        );
        for &g in &gateways {
            if g != base {
                println!(
                    "\nCold p50 difference {} − storage: {:.3} ms (medians of the rounds).",
                    self.label(g),
                    cold_med(g).0 - cold_med(base).0
                );
            }
        }

        println!("\n### Warm single file (median over rounds)\n");
        println!("| C | gateway | req/s | p50 ms | p99 ms | req/s / storage | p50 / storage | p99 / storage |");
        println!("|---:|---|---:|---:|---:|---:|---:|---:|");
        let warm_med = |c: usize, g: usize| {
            let r = &self.warm[&(c, g)];
            (
                median(r.iter().map(|x| x.0)),
                median(r.iter().map(|x| x.1)),
                median(r.iter().map(|x| x.2)),
            )
        };
        let concs: Vec<usize> = {
            let mut c: Vec<usize> = self.warm.keys().map(|k| k.0).collect();
            c.dedup();
            c
        };
        for &c in &concs {
            let (brps, b50, b99) = warm_med(c, base);
            for &g in &gateways {
                let (rps, p50, p99) = warm_med(c, g);
                println!(
                    "| {c} | {} | {rps:.0} | {p50:.3} | {p99:.3} | {:.2} | {:.2} | {:.2} |",
                    self.label(g),
                    rps / brps,
                    p50 / b50,
                    p99 / b99
                );
            }
        }

        println!("\n### Whole archive, MB/s = 10^6 B/s (median over rounds)\n");
        println!("| C | gateway | MB/s | / storage |\n|---:|---|---:|---:|");
        let mut aconcs: Vec<usize> = self.archive.keys().map(|k| k.0).collect();
        aconcs.dedup();
        for &c in &aconcs {
            let bm = median(self.archive[&(c, base)].iter().copied());
            for &g in &gateways {
                let m = median(self.archive[&(c, g)].iter().copied());
                println!("| {c} | {} | {m:.0} | {:.2} |", self.label(g), m / bm);
            }
        }

        println!("\n### Round trips per request (all rounds, warm-up excluded)\n");
        println!("| request | gateway | requests | S3 GETs / request | S3 HEADs / request | backend requests / request | gateway CPU µs / request |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for ((class, g), t) in &self.trips {
            let per = |x: u64| x as f64 / t.requests.max(1) as f64;
            println!(
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.0} |",
                class.label(),
                self.label(*g),
                t.requests,
                per(t.gets),
                per(t.heads),
                per(t.backend),
                t.cpu * 1e6 / t.requests.max(1) as f64
            );
        }
        println!("\nStorage reads of the first cold request (Range of each GET):\n");
        for (g, ranges) in &self.first_cold_ranges {
            println!(
                "- {}: {}",
                self.label(*g),
                list(
                    ranges
                        .iter()
                        .map(|r| r.clone().unwrap_or_else(|| "whole".into()))
                )
            );
        }
        println!(
            "\nGateway peak RSS over the rounds (VmHWM): {}",
            list(gateways.iter().map(|&g| format!(
                "{} {:.1} MiB;",
                self.label(g),
                self.peak_rss_kib.get(&g).copied().unwrap_or(0) as f64 / 1024.0
            )))
        );

        println!("\n### Every round\n");
        for &g in &gateways {
            let r = &self.cold[&g];
            println!(
                "- cold, {}: p50 {} ms; p90 {} ms",
                self.label(g),
                list(r.iter().map(|x| format!("{:.2}", x.0))),
                list(r.iter().map(|x| format!("{:.2}", x.1)))
            );
        }
        println!(
            "- backend, archive route: p50 {} ms; job lookup: p50 {} ms",
            list(self.backend.iter().map(|x| format!("{:.3}", x.0))),
            list(self.backend.iter().map(|x| format!("{:.3}", x.2)))
        );
        for ((c, g), r) in &self.warm {
            println!(
                "- warm C={c}, {}: req/s {}; p50 {} ms; p99 {} ms",
                self.label(*g),
                list(r.iter().map(|x| format!("{:.0}", x.0))),
                list(r.iter().map(|x| format!("{:.3}", x.1))),
                list(r.iter().map(|x| format!("{:.3}", x.2)))
            );
        }
        for ((c, g), r) in &self.archive {
            println!(
                "- archive C={c}, {}: MB/s {}",
                self.label(*g),
                list(r.iter().map(|x| format!("{x:.0}")))
            );
        }
    }
}
