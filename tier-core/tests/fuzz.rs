//! Fuzzing without a nightly toolchain: mutated exports (bytes flipped, cut, repeated, junk
//! inserted) through the reader and the validator of every built-in, for as long as
//! `TIER_FUZZ_SECONDS` says (`scripts/fuzz.sh`). No input may panic, and every record is a row
//! or a reject: `records = valid + rejected`, indexes without gaps.

use std::time::{Duration, Instant};

use tier_core::generate::{generate, GenerateOptions};
use tier_core::read::Input;
use tier_core::schema::validate::{validate, UnknownFields};
use tier_core::Registry;

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const JUNK: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"\"",
    b"\\",
    b"\\u00",
    b"\\ud800",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"\n{",
    b"\xff",
    b"\x00",
    b"\xef\xbb\xbf",
    b"null",
    b"{\"a\":",
    b"\r\n",
    b"   ",
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        if data.is_empty() {
            data.extend_from_slice(JUNK[rng.below(JUNK.len())]);
            continue;
        }
        let at = rng.below(data.len());
        match rng.below(5) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data.truncate(at),
            2 => {
                let end = (at + rng.below(400)).min(data.len());
                let piece = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, piece);
            }
            3 => {
                let end = (at + rng.below(50)).min(data.len());
                data.drain(at..end);
            }
            _ => {
                let j = JUNK[rng.below(JUNK.len())];
                data.splice(at..at, j.iter().copied());
            }
        }
    }
}

#[test]
#[ignore = "runs for TIER_FUZZ_SECONDS; scripts/fuzz.sh"]
fn mutated_exports_keep_every_record_accounted_for() {
    let seconds: u64 = std::env::var("TIER_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("TIER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("fuzz: seed {seed} (TIER_FUZZ_SEED={seed} replays it), {seconds} s");
    let registry = Registry::builtin();
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut cases, mut records) = (0u64, 0u64);
    while Instant::now() < deadline {
        let dataset = registry.all()[rng.below(2)].clone();
        let opts = GenerateOptions {
            dataset: dataset.clone(),
            records: 1 + rng.below(60) as u64,
            seed: rng.next(),
            defect_rate: 0.2,
            closed: rng.below(2) == 0,
            csv: false,
        };
        let mut data = Vec::new();
        generate(&opts, &mut data).unwrap();
        mutate(&mut rng, &mut data);
        let max = if rng.below(4) == 0 { 256 } else { 1 << 20 };
        let input =
            Input::from_reader("fuzz".as_ref(), Box::new(std::io::Cursor::new(data)), false)
                .unwrap();
        let mut recs = input.records(max);
        let mut unknown = UnknownFields::new();
        let (mut n, mut valid, mut rejected) = (0u64, 0u64, 0u64);
        while let Some(rec) = recs.next_record().unwrap() {
            assert_eq!(rec.index, n, "seed {seed}: record indexes run without gaps");
            n += 1;
            match validate(&dataset, &rec, &mut unknown) {
                Ok(_) => valid += 1,
                Err(_) => rejected += 1,
            }
        }
        assert_eq!(n, valid + rejected, "seed {seed}");
        cases += 1;
        records += n;
    }
    println!(
        "fuzz: {cases} mutated exports, {records} records, no panic, every record accounted for"
    );
}
